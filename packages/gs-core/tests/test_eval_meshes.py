"""``gs3d eval`` on meshes and geometry: mesh predictions rendered by the mesh rasteriser at the
protocol cameras, and Chamfer / F-score / normal consistency / volume IoU against the
procedural world's exact geometry, for meshes and Gaussians, in every prediction frame."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gs_core import Gaussians
from gs_core.config import Config
from gs_core.data import load_object_views, space_transform
from gs_core.errors import GS3DError
from gs_core.evaluation import EvalConfig, MethodPredictor, PlyFolderPredictor, evaluate
from gs_core.io import load_point_cloud, save_ply
from gs_core.mesh import Mesh
from gs_core.method import GenerationOutput, Method
from gs_core.procedural import ProceduralConfig, generate
from gs_core.procedural.surface import procedural_reference

pytestmark = pytest.mark.usefixtures("one_thread")
POINTS = 2000  # geometry samples per set: enough at a 0.05 threshold, fast on CPU


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    out = tmp_path_factory.mktemp("evalmesh") / "ds"
    cfg = ProceduralConfig.preset(
        "eval", objects=2, views=3, resolution=24, points=3000, antialias=2
    )
    generate(cfg, out, workers=0, progress=False)
    return out


def exact_mesh(obj_dir, resolution=40) -> Mesh:
    """The object's exact occupancy through marching cubes: within a grid cell (~0.026) of the
    true surface, coloured grey."""
    from gs_core.meshing import marching_cubes

    ref = procedural_reference(obj_dir, points=10)
    lo, hi = ref.bounds
    lo, hi = lo - 0.05, hi + 0.05
    ax = np.linspace(lo, hi, resolution)
    grid = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    occ = ref.contains(grid).reshape((resolution,) * 3).astype(np.float32)
    bounds = torch.tensor([[lo] * 3, [hi] * 3])
    return marching_cubes(torch.from_numpy(occ), bounds, 0.5)


def sphere_mesh(r=0.2, n_lat=8, n_lon=16) -> Mesh:
    import trimesh

    s = trimesh.creation.uv_sphere(radius=r, count=[n_lat, n_lon])
    return Mesh(torch.tensor(s.vertices, dtype=torch.float32), torch.tensor(s.faces))


class MeshConfig(Config):
    pass


class MeshMethod(Method):
    """Returns a fixed mesh (and optionally Gaussians) per object id, mesh-only by default."""

    config_class = MeshConfig
    name = "mesh-test"

    def __init__(self, config, meshes, gaussians=None):
        super().__init__(config)
        self.meshes, self.gaussians, self.current = meshes, gaussians, None

    def generate(self, images, **kw):
        g = self.gaussians[self.current] if self.gaussians else None
        if g is not None:
            g = Gaussians(
                g.means[None], g.quats[None], g.scales[None], g.opacities[None], g.sh[None]
            )
        return GenerationOutput(gaussians=g, meshes=[self.meshes[self.current]])


class ById(MethodPredictor):
    def __call__(self, object_id, input_rgba, seed=None):
        self.method.current = object_id
        return super().__call__(object_id, input_rgba, seed)


def cfg(**kw) -> EvalConfig:
    base = dict(
        protocol="ring15", resolution=24, metrics=["psnr"], sheets=False, geometry_points=POINTS
    )
    return EvalConfig(**{**base, **kw})


def point_gaussians(obj_dir) -> Gaussians:
    pts, cols = load_point_cloud(obj_dir / "points.ply")
    return Gaussians.from_colors(pts, cols, scales=0.012, opacities=0.9)


def test_mesh_method_image_metrics_and_geometry(ds, tmp_path):
    ids = ["mug_00000", "table_00001"]
    exact = {oid: exact_mesh(ds / oid) for oid in ids}
    good = evaluate(
        ById(MeshMethod(MeshConfig(), exact)),
        ds,
        "test",
        cfg(geometry=True, iou_resolution=12),
        out=tmp_path / "good",
    )
    bad = evaluate(
        ById(MeshMethod(MeshConfig(), {oid: sphere_mesh() for oid in ids})),
        ds,
        "test",
        cfg(geometry=True),
    )
    for o in good["objects"]:
        assert o["scored"] == "mesh" and np.isfinite(o["scores"]["psnr"]["ring15"])
        g = o["geometry"]
        assert g["fscore"] > 0.97 and g["chamfer"] < 0.04, g
        assert g["normal_consistency"] > 0.8 and g["volume_iou"] > 0.6
    for o_good, o_bad in zip(good["objects"], bad["objects"], strict=True):
        assert o_bad["geometry"]["fscore"] < o_good["geometry"]["fscore"] - 0.3
        assert o_bad["geometry"]["chamfer"] > 2 * o_good["geometry"]["chamfer"]
        # The exact shape also renders closer to the ground truth than a small grey sphere.
        assert o_good["scores"]["psnr"]["ring15"] > o_bad["scores"]["psnr"]["ring15"]
    assert "volume_iou" not in bad["geometry"]["mean"]
    assert good["geometry"]["fscore_threshold"] == 0.05 and set(good["geometry"]["through"]) == {
        "mesh"
    }
    rep = json.loads((tmp_path / "good" / "results.json").read_text())
    assert rep["geometry"]["mean"]["fscore"] == pytest.approx(good["geometry"]["mean"]["fscore"])
    md = (tmp_path / "good" / "results.md").read_text()
    assert "## Geometry" in md and "volume_iou" in md and "| mug_00000 | mesh |" in md


def test_mesh_render_matches_gaussians_protocol_and_frames(ds):
    """A mesh in the camera frame of an input at azimuth 30, elevation 30 is moved back to the world for
    geometry and rendered at the same cameras: same scores as the world-frame mesh."""
    oid = "mug_00000"
    mesh = exact_mesh(ds / oid)
    world = evaluate(
        ById(MeshMethod(MeshConfig(), {oid: mesh})),
        ds,
        "test",
        cfg(geometry=True, input_index=16, protocol="random", n_random=2),
        categories=["mug"],
    )
    views = load_object_views(ds / oid, 24)
    T = space_transform("camera", views.cameras.camtoworlds[16].double().numpy())
    assert not np.allclose(T, np.eye(4))
    Tt = torch.from_numpy(T).float()
    moved = Mesh(mesh.vertices @ Tt[:3, :3].T + Tt[:3, 3], mesh.faces)
    framed = evaluate(
        ById(MeshMethod(MeshConfig(), {oid: moved})),
        ds,
        "test",
        cfg(geometry=True, input_index=16, protocol="random", n_random=2, frame="camera"),
        categories=["mug"],
    )
    a, b = world["objects"][0], framed["objects"][0]
    assert b["scores"]["psnr"]["random"] == pytest.approx(a["scores"]["psnr"]["random"], abs=0.3)
    for k in ("chamfer", "fscore", "normal_consistency"):
        assert b["geometry"][k] == pytest.approx(a["geometry"][k], abs=2e-3)


def test_geometry_of_gaussians_through_centres_and_score_choice(ds):
    oid = "mug_00000"
    gauss = point_gaussians(ds / oid)
    m = MeshMethod(MeshConfig(), {oid: sphere_mesh()}, gaussians={oid: gauss})
    kw = dict(categories=["mug"])
    auto = evaluate(ById(m), ds, "test", cfg(geometry=True), **kw)
    as_mesh = evaluate(ById(m), ds, "test", cfg(geometry=True, score="mesh"), **kw)
    o, om = auto["objects"][0], as_mesh["objects"][0]
    assert o["scored"] == "gaussians" and om["scored"] == "mesh"
    assert set(auto["geometry"]["through"]) == {"gaussians"}
    assert o["geometry"]["fscore"] > 0.95 and o["geometry"]["chamfer"] < 0.05
    assert om["geometry"]["fscore"] < o["geometry"]["fscore"] - 0.3
    mesh_only = MeshMethod(MeshConfig(), {oid: sphere_mesh()})
    with pytest.raises(GS3DError, match="--score gaussians: the prediction for mug_00000 has no"):
        evaluate(ById(mesh_only), ds, "test", cfg(score="gaussians"), **kw)


def test_geometry_with_seeds_reports_spread(ds):
    oid = "mug_00000"
    m = MeshMethod(MeshConfig(), {oid: sphere_mesh()})
    rep = evaluate(ById(m), ds, "test", cfg(geometry=True, seeds=2), categories=["mug"])
    o = rep["objects"][0]
    assert len(o["geometry_per_seed"]) == 2 and o["geometry_std"]["chamfer"] == 0.0
    assert rep["geometry"]["std"]["fscore"] == 0.0 and len(rep["geometry"]["mean_per_seed"]) == 2


def test_non_procedural_dataset_refuses_geometry_in_one_line(ds, tmp_path):
    import shutil

    from gs_core.cli.main import main

    copy = tmp_path / "ds"
    shutil.copytree(ds, copy)
    tf = copy / "mug_00000" / "transforms.json"
    raw = json.loads(tf.read_text())
    raw.pop("gs3d", None)
    tf.write_text(json.dumps(raw))
    with pytest.raises(GS3DError, match="--geometry needs exact geometry") as e:
        evaluate(ById(MeshMethod(MeshConfig(), {})), copy, "test", cfg(geometry=True))
    assert "\n" not in str(e.value)
    with pytest.raises(GS3DError, match="--iou-resolution needs --geometry"):
        evaluate(ById(MeshMethod(MeshConfig(), {})), ds, "test", cfg(iou_resolution=8))
    preds = tmp_path / "p"
    preds.mkdir()
    with pytest.raises(SystemExit) as ex:
        main(
            ["eval", "--data", str(copy), "--predictions", str(preds), "--out", str(tmp_path / "o")]
            + ["--geometry", "--device", "cpu"]
        )
    assert ex.value.code == 2


def test_cli_predictions_folder_with_glb(ds, tmp_path, capsys):
    from gs_core.cli.main import main

    preds = tmp_path / "preds"
    preds.mkdir()
    exact_mesh(ds / "mug_00000").export(preds / "mug_00000.glb")
    save_ply(preds / "table_00001.ply", point_gaussians(ds / "table_00001"))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(
            ["eval", "--data", str(ds), "--predictions", str(preds), "--out", str(out)]
            + ["--protocol", "ring15", "--resolution", "24", "--metrics", "psnr", "--no-sheets"]
            + [
                "--device",
                "cpu",
                "--geometry",
                "--iou-resolution",
                "8",
                "--geometry-points",
                "2000",
            ]
        )
    assert e.value.code == 0
    rep = json.loads((out / "results.json").read_text())
    by_id = {o["object_id"]: o for o in rep["objects"]}
    assert by_id["mug_00000"]["scored"] == "mesh" and by_id["table_00001"]["scored"] == "gaussians"
    assert "volume_iou" in by_id["mug_00000"]["geometry"]
    assert "volume_iou" not in by_id["table_00001"]["geometry"]
    for o in rep["objects"]:
        assert o["geometry"]["fscore"] > 0.9 and np.isfinite(o["scores"]["psnr"]["ring15"])
    assert "fscore" in capsys.readouterr().out
    # A mesh file that is not a mesh: one line naming the file.
    (preds / "mug_00000.glb").write_bytes(b"not a glb")
    with pytest.raises(Exception, match="mug_00000.glb") as e2:
        PlyFolderPredictor(preds)("mug_00000", torch.zeros(1, 4, 24, 24))
    assert "\n" not in str(e2.value)
