"""``gs3d mesh``: Gaussians of a procedural object -> a GLB scored against the exact surface,
other formats, and the bad inputs each refused in one line with exit code 2. CPU, seconds.

The Gaussians fill the object's exact solid (a lattice of its occupancy), so the extracted
surface must lie on the true one to about the lattice spacing: a stand-in for a `gs3d fit`
result (that path is measured in the README) that takes no fitting time.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import trimesh

from gs_core import Gaussians, Mesh
from gs_core.cli.main import main
from gs_core.evaluation.geometry import mesh_geometry_scores
from gs_core.io import save_ply
from gs_core.procedural import ProceduralConfig, generate
from gs_core.procedural.surface import procedural_reference

SPACING = 0.04  # lattice spacing of the Gaussians, in object units (objects span about 1)
# The iso-surface of a lattice this fine sits within a fraction of a spacing of the true one:
# a mesh of another shape (the mug below) scores several times this.
CHAMFER_BOUND = SPACING


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """(dataset root, snowman folder, mug folder, PLY of Gaussians filling the snowman)."""
    root = tmp_path_factory.mktemp("meshcli") / "ds"
    cfg = ProceduralConfig.preset(
        "tiny", objects=2, views=2, resolution=16, categories=["snowman", "mug"]
    )
    generate(cfg, root, workers=0, progress=False)
    snowman, mug = root / "snowman_00000", root / "mug_00001"
    ref = procedural_reference(snowman, points=1000)
    ax = torch.arange(-0.5, 0.5 + 1e-6, SPACING)
    p = torch.stack(torch.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    p = p[torch.as_tensor(ref.contains(p))].float()
    g = Gaussians.from_colors(p, torch.full_like(p, 0.7), scales=0.6 * SPACING, opacities=0.5)
    ply = root / "snowman.ply"
    save_ply(ply, g)
    return root, snowman, mug, ply


def _run(args, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(["mesh", *map(str, args)])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def _fails_in_one_line(args, capsys, text: str) -> None:
    code, _, err = _run(args, capsys)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and text in errors[0], err
    assert "Traceback" not in err


def _load(path) -> Mesh:
    m = trimesh.load(path, force="mesh", process=False)
    return Mesh(
        vertices=torch.tensor(m.vertices, dtype=torch.float32),
        faces=torch.tensor(m.faces, dtype=torch.long),
    )


def test_glb_with_chamfer_against_the_exact_surface(scene, tmp_path, capsys):
    _, snowman, mug, ply = scene
    glb = tmp_path / "snowman.glb"
    args = [ply, "-o", glb, "--resolution", 40, "--reference", snowman, "--samples", 3000]
    code, out, err = _run([*args, "--json", "--device", "cpu"], capsys)
    assert code == 0, err
    res = json.loads(out)
    loaded = _load(glb)
    assert loaded.num_faces == res["faces"] > 500
    assert trimesh.load(glb, force="mesh").visual.kind == "vertex"  # colours came along
    scores = res["reference"]
    assert scores["threshold"] == 0.05 and scores["samples"] == 3000
    assert scores["chamfer"] < CHAMFER_BOUND, scores
    assert scores["fscore"] > 0.95 and scores["normal_consistency"] > 0.85, scores
    assert "Chamfer" in err and "F-score@0.05" in err  # the human line on stderr
    # The GLB on disk is the mesh that was scored, and the score tells shapes apart.
    again = mesh_geometry_scores(loaded, procedural_reference(snowman), samples=3000)
    assert again["chamfer"] == pytest.approx(scores["chamfer"], rel=0.1)
    other = mesh_geometry_scores(loaded, procedural_reference(mug), samples=3000)
    assert other["chamfer"] > 3 * scores["chamfer"], other


def test_obj_and_ply_outputs_and_face_budget(scene, tmp_path, capsys):
    ply = scene[3]
    for suffix in (".obj", ".ply"):
        out = tmp_path / f"m{suffix}"
        code, _, err = _run([ply, "-o", out, "--resolution", 24, "--faces", 300], capsys)
        assert code == 0, err
        m = trimesh.load(out, force="mesh", process=False)
        assert 0 < len(m.faces) <= 300


def test_bad_inputs_one_line_exit_2(scene, tmp_path, capsys):
    root, _, _, ply = scene
    glb = tmp_path / "x.glb"
    (tmp_path / "scene.txt").write_text("not a ply")
    _fails_in_one_line([tmp_path / "scene.txt", "-o", glb], capsys, "expected a 3DGS .ply")
    (tmp_path / "junk.ply").write_bytes(b"junk")
    _fails_in_one_line([tmp_path / "junk.ply", "-o", glb], capsys, "junk.ply")
    _fails_in_one_line([ply, "-o", tmp_path / "x.stl"], capsys, "unsupported mesh format '.stl'")
    _fails_in_one_line([ply, "-o", ply], capsys, "different from the input SCENE")
    glb.write_bytes(b"keep")
    _fails_in_one_line([ply, "-o", glb], capsys, "already exists")
    assert glb.read_bytes() == b"keep"
    glb.unlink()
    _fails_in_one_line([ply, "-o", glb, "--level", 1000, "--resolution", 16], capsys, "--level:")
    _fails_in_one_line([ply, "-o", glb, "--level", -1], capsys, "--level:")
    _fails_in_one_line([ply, "-o", glb, "--reference", root / "nope"], capsys, "--reference")
    _fails_in_one_line([ply, "-o", glb, "--reference", root], capsys, "transforms.json")
    assert not glb.exists()  # no refusal left a partial output


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mesh_on_gpu(scene, tmp_path, capsys):
    _, snowman, _, ply = scene
    glb = tmp_path / "gpu.glb"
    args = [ply, "-o", glb, "--resolution", 40, "--reference", snowman, "--samples", 3000]
    code, out, err = _run([*args, "--json", "--device", "cuda"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert res["device"].startswith("cuda") and _load(glb).num_faces == res["faces"] > 500
    assert res["reference"]["chamfer"] < CHAMFER_BOUND, res


def test_command_module_imports_no_torch():
    code = (
        "import sys; import gs_core.cli.mesh\n"
        "assert 'torch' not in sys.modules and 'trimesh' not in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
