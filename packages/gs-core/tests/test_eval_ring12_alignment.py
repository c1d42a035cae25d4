"""``gs3d eval`` with DD3G's ring12 protocol and azimuth alignment: a prediction turned by a known
azimuth is turned back by ``align_azimuth`` (and scores higher), and a dataset without ring12
views is refused in one line naming it and the protocol.

The ring dataset is rendered here from a known asymmetric Gaussian object (24 views 15 degrees
apart at elevation 0, the input at azimuth 0), so the unturned prediction is the ground truth."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gs_core import Gaussians
from gs_core.cameras import Cameras
from gs_core.data.layout import write_splits
from gs_core.data.writer import write_object
from gs_core.errors import GS3DError
from gs_core.evaluation import EvalConfig, evaluate
from gs_core.evaluation.alignment import rotate_about_y
from gs_core.evaluation.harness import _yaw
from gs_core.evaluation.predictors import Prediction
from gs_core.procedural import ProceduralConfig, generate
from gs_core.rendering import render

TURN_DEG = 70.0
SIZE = 32


def _object(seed: int) -> Gaussians:
    """Blobs of three colours placed asymmetrically about the y axis."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.25, 0.0, 0.2], [-0.2, 0.05, -0.25], [0.0, 0.3, 0.05]])
    centres = centres + 0.05 * torch.randn(3, 3, generator=g)
    colours = torch.tensor([[1.0, 0.1, 0.1], [0.1, 0.1, 1.0], [0.1, 0.9, 0.1]])
    means = (centres[:, None] + 0.06 * torch.randn(3, 80, 3, generator=g)).reshape(-1, 3)
    return Gaussians.from_colors(
        means=means, colors=colours.repeat_interleave(80, 0), scales=0.05, opacities=0.9
    )


def _turned(g: Gaussians, turn_deg: float) -> Gaussians:
    R = torch.from_numpy(_yaw(turn_deg)[:3, :3]).float()
    return Gaussians.from_colors(g.means @ R.T, g.colors, scales=0.05, opacities=0.9)


@pytest.fixture(scope="module")
def ring_ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("ringds")
    cams = Cameras.orbit(
        [15.0 * k for k in range(24)], [0.0] * 24, radius=1.5, width=SIZE, height=SIZE
    )
    objects = {}
    for k in range(2):
        oid = f"blobs_{k}"
        g = _object(k)
        r = render(g, cams, background=0.0, backend="torch")
        a = r.alpha.clamp(0, 1)
        straight = torch.where(a > 0, r.rgb / a.clamp_min(1e-6), 0.0).clamp(0, 1)
        rgba = (torch.cat([straight, a], -1) * 255).round().to(torch.uint8).numpy()
        write_object(
            root / oid,
            rgba,
            cams.camtoworlds_opengl().double().numpy(),
            fl_x=float(cams.Ks[0, 0, 0]),
            meta={"category": "blobs"},
        )
        objects[oid] = g
    write_splits(root, {"test": sorted(objects)})
    return root, objects


def _predictor(objects, turn_deg: float):
    def predict(object_id, input_rgba):
        return Prediction(gaussians=_turned(objects[object_id], turn_deg))

    return predict


def test_yaw_is_the_world_motion_of_rotate_about_y():
    cams = Cameras.orbit([10.0, 200.0], [5.0, -20.0], radius=2.0)
    turned = rotate_about_y(cams, 33.0)
    want = cams.viewmats.double() @ torch.from_numpy(np.linalg.inv(_yaw(33.0)))
    torch.testing.assert_close(turned.viewmats.double(), want, atol=1e-5, rtol=0)


def test_align_azimuth_recovers_a_turned_prediction(ring_ds):
    root, objects = ring_ds
    base = EvalConfig(protocol="ring12", resolution=SIZE, metrics=["psnr"], sheets=False)
    predict = _predictor(objects, TURN_DEG)
    plain = evaluate(predict, root, "test", base)
    aligned = evaluate(predict, root, "test", base.with_overrides({"align_azimuth": True}))
    truth = evaluate(_predictor(objects, 0.0), root, "test", base)
    assert plain["num_objects"] == aligned["num_objects"] == 2
    for p, a, t in zip(plain["objects"], aligned["objects"], truth["objects"], strict=True):
        assert a["input_index"] == 0
        assert a["targets"]["ring12"] == [2 * k for k in range(12)]
        assert "azimuth_offset_deg" not in p
        (offset,) = a["azimuth_offset_deg"]
        assert abs(offset - TURN_DEG) <= 1.0
        psnr_p, psnr_a = p["scores"]["psnr"]["ring12"], a["scores"]["psnr"]["ring12"]
        assert psnr_a > psnr_p + 5.0
        # Turned back, the prediction scores as the ground truth itself does.
        assert psnr_a == pytest.approx(t["scores"]["psnr"]["ring12"], abs=0.5)
        assert psnr_a > 40.0
    assert aligned["config"]["align_azimuth"] is True


def test_ring12_needs_ring12_views(tmp_path):
    root = tmp_path / "random_views"
    cfg = ProceduralConfig.preset("tiny", objects=1, views=4, resolution=16, split="test")
    generate(cfg, root, workers=0, progress=False)
    oid = (root / "splits" / "test.txt").read_text().split()[0]
    g = Gaussians.from_colors(torch.zeros(1, 3), torch.ones(1, 3), scales=0.1, opacities=0.5)
    with pytest.raises(GS3DError) as e:
        evaluate(
            _predictor({oid: g}, 0.0),
            root,
            "test",
            EvalConfig(protocol="ring12", resolution=16, metrics=["psnr"]),
        )
    msg = str(e.value)
    assert "\n" not in msg
    assert f"dataset {root}" in msg and "protocol 'ring12'" in msg and "ring24" in msg


def test_cli_eval_align_azimuth(ring_ds, tmp_path):
    from gs_core.cli.main import main
    from gs_core.io import save_ply

    root, objects = ring_ds
    preds = tmp_path / "preds"
    preds.mkdir()
    for oid, g in objects.items():
        save_ply(preds / f"{oid}.ply", _turned(g, TURN_DEG))
    out = tmp_path / "cli"
    args = ["eval", "--data", str(root), "--predictions", str(preds), "--out", str(out)]
    args += ["--protocol", "ring12", "--resolution", str(SIZE), "--metrics", "psnr"]
    args += ["--no-sheets", "--device", "cpu", "--max-objects", "1", "--align-azimuth"]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 0
    rep = json.loads((out / "results.json").read_text())
    assert math.isclose(rep["objects"][0]["azimuth_offset_deg"][0], TURN_DEG, abs_tol=1.0)
    assert "azimuth-aligned" in (out / "results.md").read_text()
