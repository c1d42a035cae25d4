"""``gs3d generate`` (generic over methods; RGBA and flat-background RGB inputs) and ``gs3d demo``
with the bundled AGG model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gs_core.errors import GS3DError
from gs_method_agg import AGG, AGGConfig


def cli(*args):
    from gs_core.cli.main import app

    return CliRunner().invoke(app, list(map(str, args)))


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return AGG(AGGConfig.preset("tiny")).save_pretrained(
        tmp_path_factory.mktemp("ckpt") / "agg-tiny"
    )


def disc_image(rgba: bool, size: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    inside = (xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size / 3) ** 2
    img = np.ones((size, size, 4), np.float32)
    img[inside, :3] = (0.8, 0.2, 0.3)
    img[..., 3] = inside if rgba else 1.0
    return img if rgba else img[..., :3]


def test_mask_from_flat_background():
    from gs_core.image_inputs import mask_from_flat_background

    rgb = disc_image(rgba=False)
    rgba, bg = mask_from_flat_background(rgb, "x.png")
    np.testing.assert_array_equal(rgba[..., 3], disc_image(rgba=True)[..., 3])
    np.testing.assert_allclose(bg, 1.0)
    noisy = np.random.default_rng(0).random((48, 48, 3)).astype(np.float32)
    with pytest.raises(GS3DError, match="RGBA"):
        mask_from_flat_background(noisy, "x.png")


@pytest.mark.parametrize("rgba", [True, False])
def test_generate_writes_ply_and_turntable(tiny_ckpt, tmp_path, rgba):
    from gs_core.imaging import save_image
    from gs_core.io import load_ply

    img = tmp_path / "in.png"
    save_image(img, disc_image(rgba))
    out, gif = tmp_path / "out.ply", tmp_path / "turn.gif"
    r = cli("generate", img, "--method", "agg", "--checkpoint", tiny_ckpt, "-o", out,
            "--turntable", gif, "--frames", 4, "--size", 32)  # fmt: skip
    assert r.exit_code == 0, r.output + repr(r.exception)
    g = load_ply(out)
    cfg = AGGConfig.preset("tiny")
    assert g.num_gaussians == cfg.num_output_gaussians
    assert gif.stat().st_size > 0
    assert ("no alpha channel" in " ".join(r.output.split())) is (not rgba)
    # outputs are not overwritten without --overwrite
    r = cli("generate", img, "--method", "agg", "--checkpoint", tiny_ckpt, "-o", out)
    assert r.exit_code != 0


def test_generate_defaults_to_the_bundled_checkpoint(tmp_path):
    from gs_core.io import load_ply
    from gs_method_agg import EXAMPLES_DIR

    out = tmp_path / "lamp.ply"
    r = cli(
        "generate", EXAMPLES_DIR / "lamp_00014" / "images" / "000.png", "--method", "agg", "-o", out
    )
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert load_ply(out).num_gaussians == 16384


def test_demo(tmp_path):
    import json

    from PIL import Image

    from gs_core.evaluation.showcase import LABEL_PX
    from gs_core.plugins.registry import get_registry

    out = tmp_path / "demo"
    r = cli("demo", "--out", out, "--resolution", 64, "--backend", "torch", "--device", "cpu")
    assert r.exit_code == 0, r.output + repr(r.exception)
    ids = ["chair_00017", "lamp_00014", "snowman_00003"]
    for name in [f"{i}.ply" for i in ids] + ["turntable.gif", "results.md"]:
        assert (out / name).is_file(), name
    assert sorted(p.stem for p in (out / "sheets").glob("*.png")) == ids
    text = " ".join(r.output.split())
    assert "PSNR" in text and "over all 24 objects of procedural-eval" in text
    assert "ranks among those 24" in (out / "results.md").read_text()
    config = json.loads((out / "results.json").read_text())["config"]
    assert config["frame"] == get_registry().get_method("agg").output_frame == "azimuth"
    assert config["backend"] == "torch"
    # sheets: six 64 px columns (input + five views), none of them empty in either row
    sheet = np.asarray(Image.open(out / "sheets" / "lamp_00014.png").convert("L"))
    assert sheet.shape[1] == LABEL_PX + 6 * (64 + 4) + 4
    for col in range(6):
        x = LABEL_PX + 4 + col * 68
        for y in (40 + 4, 40 + 4 + 68):  # ground-truth row, prediction row
            assert (sheet[y + 2 : y + 62, x + 2 : x + 62] < 200).any(), (col, y)
    # the turntable shows all three objects side by side at 256 px
    gif = Image.open(out / "turntable.gif")
    assert gif.size[0] == 3 * 256 + 2 * 4 and gif.size[1] > 256 and gif.n_frames == 24


def test_generate_from_a_preset_warns_about_random_weights(tmp_path):
    from gs_core.imaging import save_image
    from gs_core.io import load_ply

    img = tmp_path / "in.png"
    save_image(img, disc_image(rgba=True))
    out = tmp_path / "random.ply"
    r = cli("generate", img, "--method", "agg", "--preset", "tiny", "-o", out, "--seed", 0)
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert load_ply(out).num_gaussians == AGGConfig.preset("tiny").num_output_gaussians
    text = " ".join(r.output.split())
    assert "warning: method 'agg' built from preset 'tiny'" in text and "random weights" in text
    r = cli("generate", img, "--method", "agg", "--preset", "tiny", "--checkpoint", tmp_path,
            "-o", tmp_path / "x.ply")  # fmt: skip
    assert r.exit_code != 0 and "not both" in str(r.exception)
