"""Meshes in ``gs3d render`` (grid, turntable; GLB, OBJ and face PLYs) and ``gs3d generate
--mesh``, and bad meshes refused in one line (exit code 2) by the CLI and by ``render_mesh``.
CPU, seconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from gs_core import CORE_API_VERSION, Cameras, Gaussians, Mesh
from gs_core.cli.main import main
from gs_core.config import Config
from gs_core.errors import ValidationError
from gs_core.imaging import save_image
from gs_core.io import save_ply
from gs_core.io.mesh_file import is_gaussian_ply, load_mesh
from gs_core.method import GenerationOutput, Method
from gs_core.rendering.mesh_render import render_mesh
from gs_core.rendering.turntable import frame_scene, render_orbit

pytestmark = pytest.mark.usefixtures("one_thread")

RED = (1.0, 0.0, 0.0)


def _cube(tmp_path, name="cube.glb", color=(255, 0, 0, 255)):
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    box.apply_translation((2.0, 0.0, 0.0))  # off the origin: framing must follow the bounds
    box.visual.vertex_colors = np.tile(np.array(color, np.uint8), (len(box.vertices), 1))
    path = tmp_path / name
    box.export(path)
    return path


def _run(args, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main([*map(str, args)])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def _red_fraction(img: np.ndarray) -> float:
    """Fraction of pixels clearly red (the cube's colour, shaded), against white."""
    img = img[..., :3].astype(np.float64) / 255.0 if img.dtype == np.uint8 else img[..., :3]
    red = (img[..., 0] > 0.3) & (img[..., 1] < 0.2) & (img[..., 2] < 0.2)
    return float(red.mean())


def test_load_glb_cube_and_frame_it(tmp_path):
    mesh = load_mesh(_cube(tmp_path))
    assert mesh.num_faces == 12 and mesh.vertex_colors is not None
    assert torch.allclose(mesh.vertex_colors[0], torch.tensor(RED))
    (cx, cy, cz), dist = frame_scene(mesh)
    assert (cx, cy, cz) == pytest.approx((2.0, 0.0, 0.0), abs=1e-6)
    # The bounding sphere (radius sqrt(3)/2) fits the 49.1-degree view, with 5% margin.
    assert dist == pytest.approx(3**0.5 / 2 / np.sin(np.radians(49.1) / 2) * 1.05, rel=1e-6)


def test_render_orbit_mesh_shades_and_covers_the_projection(tmp_path):
    mesh = load_mesh(_cube(tmp_path))
    (img,) = render_orbit(mesh, [30.0], elevation=20.0, resolution=48, background=1.0)
    assert img.shape == (48, 48, 3)
    # The cube is centred: middle pixel red, corners white background.
    assert img[24, 24, 0] > 0.3 and img[24, 24, 1] < 0.2
    assert np.allclose(img[0, 0], 1.0) and np.allclose(img[-1, -1], 1.0)
    # Headlight shading: faces at different angles to the camera get different brightness.
    reds = img[..., 0][(img[..., 1] < 0.05)]
    assert reds.max() - reds.min() > 0.1
    # Over black the background stays black.
    (dark,) = render_orbit(mesh, [30.0], resolution=48, background=0.0)
    assert np.allclose(dark[0, 0], 0.0)


def test_render_grid_and_turntable_of_glb(tmp_path, capsys):
    glb = _cube(tmp_path)
    grid, gif = tmp_path / "grid.png", tmp_path / "turn.gif"
    code, _, err = _run(
        ["render", glb, "--grid", grid, "--turntable", gif, "--views", 2, "--frames", 3,
         "--resolution", 32, "--device", "cpu"],
        capsys,
    )  # fmt: skip
    assert code in (0, None), err
    sheet = np.asarray(Image.open(grid).convert("RGB"))
    assert 0.05 < _red_fraction(sheet) < 0.6  # the cube shows, and the background too
    with Image.open(gif) as im:
        assert im.n_frames == 3
        for k in range(3):
            im.seek(k)
            frame = np.asarray(im.convert("RGB"))
            assert frame.shape == (32, 32, 3)
            assert 0.05 < _red_fraction(frame) < 0.9
            assert (frame[0, 0] > 240).all()  # corner: white background


def test_render_obj_and_face_ply_and_gaussian_ply(tmp_path, capsys):
    box = trimesh.creation.box()
    for name in ("cube.obj", "cube.ply"):
        box.export(tmp_path / name)
        out = tmp_path / f"{name}.png"
        code, stdout, err = _run(
            ["render", tmp_path / name, "--grid", out, "--views", 1, "--resolution", 24,
             "--device", "cpu"], capsys)  # fmt: skip
        assert code in (0, None), err
        assert "mesh of 8 vertices, 12 faces (uncoloured)" in stdout + err
        img = np.asarray(Image.open(out).convert("RGB"))
        assert (img < 200).all(-1).any()  # uncoloured grey cube on white
    assert not is_gaussian_ply(tmp_path / "cube.ply")
    # A 3DGS PLY still goes through the Gaussian loader.
    g = Gaussians.from_colors(0.1 * torch.randn(4, 3), torch.rand(4, 3), 0.05, 0.9)
    save_ply(tmp_path / "g.ply", g)
    assert is_gaussian_ply(tmp_path / "g.ply")
    code, stdout, err = _run(
        ["render", tmp_path / "g.ply", "--grid", tmp_path / "g.png", "--views", 1,
         "--resolution", 16, "--device", "cpu", "--backend", "torch"], capsys)  # fmt: skip
    assert code in (0, None), err
    assert "4 Gaussians" in stdout + err


def test_load_scene_tells_gaussians_from_meshes(tmp_path):
    """The library call behind ``gs3d render`` / ``gs3d view``: one function, any scene file."""
    from gs_core.errors import FileFormatError, GS3DError
    from gs_core.io.scene_file import load_scene
    from gs_core.mesh import Mesh

    trimesh.creation.box().export(tmp_path / "cube.ply")
    assert isinstance(load_scene(tmp_path / "cube.ply"), Mesh)
    g = Gaussians.from_colors(0.1 * torch.randn(4, 3), torch.rand(4, 3), 0.05, 0.9)
    save_ply(tmp_path / "g.ply", g)
    assert load_scene(str(tmp_path / "g.ply")).num_gaussians == 4
    points = _ascii_ply(tmp_path / "points.ply", [(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], False)
    with pytest.raises(FileFormatError, match="neither a 3DGS PLY"):
        load_scene(points)
    (tmp_path / "scene.xyz").write_text("0 0 0\n")
    with pytest.raises(GS3DError, match="unsupported scene format"):
        load_scene(tmp_path / "scene.xyz")


def _ascii_ply(path, verts, faces, with_faces=True):
    lines = ["ply", "format ascii 1.0", f"element vertex {len(verts)}"]
    lines += ["property float x", "property float y", "property float z"]
    if with_faces:
        lines += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    lines += ["end_header"]
    lines += [" ".join(map(str, v)) for v in verts]
    if with_faces:
        lines += ["3 " + " ".join(map(str, f)) for f in faces]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_mesh_files_one_line_exit_2(tmp_path, capsys):
    tri = [(0, 0, 0), (1, 0, 0), (0, 1, 0)]
    cases = {
        "nan.ply": (
            _ascii_ply(tmp_path / "nan.ply", [(0, 0, 0), (1, 0, 0), ("nan", 1, 0)], [(0, 1, 2)]),
            "Mesh.vertices",
        ),  # fmt: skip
        "range.ply": (_ascii_ply(tmp_path / "range.ply", tri, [(0, 1, 7)]), "Mesh.faces"),
        "points.ply": (
            _ascii_ply(tmp_path / "points.ply", tri, [], with_faces=False),
            "neither a 3DGS PLY",
        ),  # fmt: skip
        "junk.glb": (tmp_path / "junk.glb", "not a readable mesh"),
        "cube.stl": (tmp_path / "cube.stl", "unsupported scene format"),
    }
    (tmp_path / "junk.glb").write_bytes(b"not a glb at all")
    (tmp_path / "cube.stl").write_bytes(b"solid x\nendsolid x\n")
    for name, (path, expected) in cases.items():
        code, _, err = _run(
            ["render", path, "--grid", tmp_path / f"{name}.png", "--device", "cpu"], capsys
        )
        assert code == 2, name
        assert expected in err, (name, err)
        assert len(err.strip().splitlines()) == 1, (name, err)
        assert not (tmp_path / f"{name}.png").exists()


def _cams():
    return Cameras.orbit([0.0], 10.0, radius=3.0, fov_deg=50.0, width=16, height=16)


def test_render_mesh_refuses_bad_meshes_with_field_names():
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    f = torch.tensor([[0, 1, 2]])
    empty = Mesh(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long))
    with pytest.raises(ValidationError, match="Mesh.vertices"):
        render_mesh(empty, _cams())
    no_faces = Mesh(v, torch.zeros(0, 3, dtype=torch.long))
    with pytest.raises(ValidationError, match="Mesh.faces"):
        render_mesh(no_faces, _cams())
    # Meshes are frozen dataclasses but their tensors are not: corrupted after construction.
    nan = Mesh(v.clone(), f)
    nan.vertices[1, 0] = float("nan")
    with pytest.raises(ValidationError, match="Mesh.vertices.*NaN"):
        render_mesh(nan, _cams())
    bad = Mesh(v, f.clone())
    bad.faces[0, 2] = 5
    with pytest.raises(ValidationError, match=r"Mesh.faces.*\[0, 3\)"):
        render_mesh(bad, _cams())
    with pytest.raises(ValidationError) as err:
        render_mesh(bad, _cams())
    assert "\n" not in str(err.value)


def test_render_mesh_skips_degenerate_faces():
    box = trimesh.creation.box()
    v = torch.tensor(box.vertices, dtype=torch.float32)
    f = torch.tensor(box.faces, dtype=torch.long)
    extra = torch.tensor([[0, 0, 1], [2, 3, 2]])  # repeated vertices: zero area
    clean = render_mesh(Mesh(v, f), _cams())
    degen = render_mesh(Mesh(v, torch.cat([f, extra])), _cams())
    for a, b in ((clean.rgb, degen.rgb), (clean.alpha, degen.alpha), (clean.depth, degen.depth)):
        assert torch.isfinite(b).all()
        assert torch.allclose(a, b)


# ------------------------------------------------------------------ gs3d generate --mesh
class ToyConfig(Config):
    output: str = "mesh"  # "mesh", "gaussians" or "both"
    presets = {"paper": {}}


class ToyMesher(Method):
    """Returns a red cube mesh (and/or a few Gaussians) whatever the image."""

    config_class = ToyConfig
    name = "toy-mesher"

    def generate(self, images, seed=None, **kwargs):
        self.check_images(images)
        box = trimesh.creation.box(extents=(0.8, 0.8, 0.8))
        v = torch.tensor(box.vertices, dtype=torch.float32)
        mesh = Mesh(v, torch.tensor(box.faces), vertex_colors=torch.tensor(RED).expand(8, 3))
        out = self.config.output
        g = None
        if out in ("gaussians", "both"):
            g = Gaussians.from_colors(v, torch.full_like(v, 0.5), 0.05, 0.9)
            g = Gaussians(*(t[None] for t in (g.means, g.quats, g.scales, g.opacities, g.sh)))
        return GenerationOutput(gaussians=g, meshes=[mesh] if out != "gaussians" else None)


@pytest.fixture
def toy(monkeypatch, tmp_path):
    import gs_core.plugins.registry as reg
    from gs_core.plugins.specs import MethodSpec

    fresh = reg.Registry(discover=False)
    monkeypatch.setattr(reg, "_REGISTRY", fresh)
    common = dict(config_class=ToyConfig, factory=ToyMesher, core_api=CORE_API_VERSION)
    fresh.register_method(MethodSpec("toy-mesher", "test", has_weights=False, **common))
    img = np.zeros((24, 24, 4), np.float32)
    img[6:18, 6:18] = (0.2, 0.6, 0.9, 1.0)
    save_image(tmp_path / "in.png", img)
    return tmp_path / "in.png"


def _generate(image, *args, capsys):
    return _run(["generate", image, "--method", "toy-mesher", "--device", "cpu", *args], capsys)


def test_generate_mesh_writes_the_method_mesh(toy, tmp_path, capsys):
    glb, gif = tmp_path / "out.glb", tmp_path / "t.gif"
    code, out, err = _generate(
        toy, "--mesh", glb, "--turntable", gif, "--frames", 2, "--size", 16, capsys=capsys
    )
    assert code in (0, None), err
    m = load_mesh(glb)
    assert m.num_faces == 12
    assert torch.allclose(m.vertex_colors, torch.tensor(RED).expand(8, 3))
    assert float(m.vertices.abs().max()) == pytest.approx(0.4)
    with Image.open(gif) as im:  # the turntable shows the red mesh
        assert _red_fraction(np.asarray(im.convert("RGB"))) > 0.05
    # Both outputs of a method that returns both.
    ply, glb2 = tmp_path / "both.ply", tmp_path / "both.obj"
    code, _, err = _generate(toy, "-o", ply, "--mesh", glb2, "--set", "output=both", capsys=capsys)
    assert code in (0, None), err
    assert ply.is_file() and load_mesh(glb2).num_faces == 12


def test_generate_mesh_option_errors(toy, tmp_path, capsys):
    cases = [
        # A mesh-only method cannot fill -o's PLY: say so, point at --mesh, write nothing.
        (["-o", tmp_path / "a.ply"], "outputs meshes only", tmp_path / "a.ply"),
        (
            ["--mesh", tmp_path / "b.glb", "--set", "output=gaussians"],
            "gs3d mesh",
            tmp_path / "b.glb",
        ),  # fmt: skip
        (["--mesh", tmp_path / "c.stl"], "unsupported mesh format", tmp_path / "c.stl"),
        ([], "-o OUT.ply and/or --mesh", None),
    ]
    for args, expected, path in cases:
        code, _, err = _generate(toy, *args, capsys=capsys)
        assert code == 2, args
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and expected in errors[0], (args, err)
        if path is not None:
            assert not path.exists()
    # Gaussians-only methods with -o alone keep working.
    code, _, err = _generate(toy, "-o", tmp_path / "g.ply", "--set", "output=gaussians",
                             capsys=capsys)  # fmt: skip
    assert code in (0, None), err
    assert is_gaussian_ply(tmp_path / "g.ply")
