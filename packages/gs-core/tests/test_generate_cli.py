"""``gs3d generate`` over any registered method: presets, seeds, backend and device options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gs_core import CORE_API_VERSION, Gaussians
from gs_core.config import Config
from gs_core.imaging import save_image
from gs_core.io import load_ply
from gs_core.method import GenerationOutput, Method


class SprayConfig(Config):
    count: int = 64
    presets = {"paper": {}, "tiny": {"count": 16}}


class Spray(Method):
    """A stochastic method: ``count`` Gaussians at seeded random positions, coloured by the input."""

    config_class = SprayConfig
    name = "spray"
    calls: list = []

    def generate(self, images, seed=None, **kwargs):
        self.check_images(images)
        Spray.calls.append(seed)
        gen = torch.Generator().manual_seed(12345 if seed is None else seed)
        b, n = images.shape[0], self.config.count
        means = torch.randn(b, n, 3, generator=gen) * 0.3
        colors = images[:, :3].mean((2, 3))[:, None].expand(b, n, 3)
        g = Gaussians.from_colors(means.reshape(-1, 3), colors.reshape(-1, 3), 0.05, 0.9)
        batched = Gaussians(*(t.reshape(b, n, *t.shape[1:]) for t in
                              (g.means, g.quats, g.scales, g.opacities, g.sh)))  # fmt: skip
        return GenerationOutput(gaussians=batched, timings={"spray": 0.0})


@pytest.fixture
def registry(monkeypatch):
    import gs_core.plugins.registry as reg
    from gs_core.plugins.specs import MethodSpec

    fresh = reg.Registry(discover=False)
    monkeypatch.setattr(reg, "_REGISTRY", fresh)
    common = dict(config_class=SprayConfig, factory=Spray, core_api=CORE_API_VERSION)
    fresh.register_method(MethodSpec("spray", "test", has_weights=False, **common))
    fresh.register_method(MethodSpec("spray-trained", "test", **common))
    Spray.calls = []
    return fresh


@pytest.fixture
def image(tmp_path):
    img = np.zeros((24, 24, 4), np.float32)
    img[6:18, 6:18] = (0.2, 0.6, 0.9, 1.0)
    path = tmp_path / "in.png"
    save_image(path, img)
    return path


def cli(*args):
    from gs_core.cli.main import app

    return CliRunner().invoke(app, list(map(str, args)))


def test_seed_reaches_the_method_and_fixes_the_output(registry, image, tmp_path):
    outs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        out = tmp_path / f"{name}.ply"
        r = cli(
            "generate", image, "--method", "spray", "-o", out, "--seed", seed, "--device", "cpu"
        )
        assert r.exit_code == 0, r.output + repr(r.exception)
        outs[name] = load_ply(out).means
    assert Spray.calls == [7, 7, 8]
    assert torch.equal(outs["a"], outs["b"]) and not torch.equal(outs["a"], outs["c"])
    assert outs["a"].shape == (64, 3)  # a method without weights: its paper preset
    assert "warning" not in r.output


def test_preset_and_set_build_the_method(registry, image, tmp_path):
    out = tmp_path / "t.ply"
    r = cli("generate", image, "--method", "spray-trained", "--preset", "tiny", "-o", out)
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert load_ply(out).num_gaussians == 16 and Spray.calls == [None]
    text = " ".join(r.output.split())
    assert "warning: method 'spray-trained' built from preset 'tiny'" in text
    out2 = tmp_path / "s.ply"
    r = cli("generate", image, "--method", "spray", "--set", "count=5", "-o", out2)
    assert r.exit_code == 0 and load_ply(out2).num_gaussians == 5


def test_option_errors(registry, image, tmp_path):
    from gs_core.rendering import BackendUnavailableError

    out = tmp_path / "x.ply"
    r = cli("generate", image, "--method", "spray", "-o", out, "--checkpoint", tmp_path,
            "--preset", "tiny")  # fmt: skip
    assert r.exit_code != 0 and "not both" in str(r.exception)
    r = cli("generate", image, "--method", "spray", "-o", out, "--device", "tpu")
    assert r.exit_code != 0 and str(r.exception).startswith("--device 'tpu'")
    r = cli("generate", image, "--method", "spray", "-o", out, "--backend", "metal")
    assert r.exit_code != 0 and "--backend: expected auto, torch, gsplat" in str(r.exception)
    r = cli("generate", image, "--method", "spray", "-o", out, "--turntable", tmp_path / "t.avi")
    assert r.exit_code != 0 and ".gif or .mp4" in str(r.exception)
    gif = tmp_path / "t.gif"
    r = cli("generate", image, "--method", "spray", "-o", out, "--turntable", gif, "--frames", 2,
            "--size", 16, "--backend", "gsplat", "--device", "cpu")  # fmt: skip
    assert isinstance(r.exception, BackendUnavailableError) and not gif.exists()
    r = cli("generate", image, "--method", "spray", "-o", out, "--overwrite", "--turntable", gif,
            "--frames", 2, "--size", 16, "--backend", "torch", "--device", "cpu")  # fmt: skip
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert gif.stat().st_size > 0
