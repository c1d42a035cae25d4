"""``gs_core.loading``: one way to build a registered method (checkpoint, preset, default), the
config overrides of ``from_pretrained``, and the partial initialisation of ``gs3d train --init``."""

from __future__ import annotations

import textwrap
import warnings

import pytest
import torch

from gs_core import CORE_API_VERSION
from gs_core.config import Config
from gs_core.errors import FileFormatError, GS3DError, RandomWeightsWarning, WeightsNotFoundError
from gs_core.loading import init_from, load_method
from gs_core.method import GenerationOutput, Method
from gs_core.plugins.registry import reset_registry
from gs_core.plugins.specs import MethodSpec


class ScaleConfig(Config):
    width: int = 3
    gain: float = 1.0

    presets = {"paper": {"width": 4}, "tiny": {"width": 2}}


class Scale(Method):
    config_class = ScaleConfig
    name = "scale"

    def __init__(self, config):
        super().__init__(config)
        self.w = torch.nn.Parameter(torch.zeros(config.width))

    def generate(self, images, *, seed=None, **kwargs):
        from gs_core.gaussians import Gaussians

        b = images.shape[0]
        means = torch.zeros(b, 1, 3) + self.w.sum() * self.config.gain
        return GenerationOutput(gaussians=Gaussians.from_colors(means, torch.ones(b, 1, 3), 0.1))


class Wide(Scale):
    """Shares ``w`` with :class:`Scale` but also has ``extra``."""

    def __init__(self, config):
        super().__init__(config)
        self.extra = torch.nn.Parameter(torch.ones(2))


@pytest.fixture
def registry():
    reg = reset_registry(discover=False)
    yield reg
    reset_registry()


def register(reg, name="scale", **fields):
    fields.setdefault("method_class", Scale)
    reg.register_method(
        MethodSpec(
            name=name, summary="test", config_class=ScaleConfig, core_api=CORE_API_VERSION, **fields
        )
    )


def trained(tmp_path, width=5):
    m = Scale(ScaleConfig(width=width))
    with torch.no_grad():
        m.w.copy_(torch.arange(float(width)))
    return m.save_pretrained(tmp_path / "ckpt")


def test_checkpoint(registry, tmp_path):
    register(registry)
    ckpt = trained(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)
        m = load_method("scale", checkpoint=str(ckpt))
    assert type(m) is Scale and m.config.width == 5 and not m.training
    assert torch.equal(m.w, torch.arange(5.0))
    # overrides apply to the checkpoint's config before the weights load
    m = load_method("scale", checkpoint=str(ckpt), overrides=["gain=2.5"])
    assert m.config.gain == 2.5 and m.config.width == 5
    with pytest.raises(GS3DError, match="no field 'bogus'"):
        load_method("scale", checkpoint=str(ckpt), overrides=["bogus=1"])
    with pytest.raises(WeightsNotFoundError, match="no such checkpoint directory"):
        load_method("scale", checkpoint=str(tmp_path / "missing"))


def test_preset_builds_random_weights_with_a_warning(registry):
    register(registry)
    with pytest.warns(RandomWeightsWarning, match="random weights"):
        m = load_method("scale", preset="tiny", overrides=["gain=3"])
    assert isinstance(m, Scale) and m.config == ScaleConfig(width=2, gain=3.0)
    assert not m.training
    with pytest.raises(GS3DError, match="unknown preset 'huge'"):
        load_method("scale", preset="huge")


def test_default_checkpoint_is_used_without_arguments(registry, tmp_path):
    register(registry, default_checkpoint=str(trained(tmp_path, width=4)))
    m = load_method("scale")
    assert torch.equal(m.w, torch.arange(4.0))


def test_a_method_without_weights_builds_its_paper_preset_silently(registry):
    register(registry, has_weights=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)
        m = load_method("scale")
        tiny = load_method("scale", preset="tiny")
    assert m.config.width == 4 and tiny.config.width == 2


def test_missing_default_and_both_sources_are_errors(registry, tmp_path):
    register(registry)
    with pytest.raises(GS3DError, match="no default checkpoint.*--preset"):
        load_method("scale")
    with pytest.raises(GS3DError, match="not both"):
        load_method("scale", checkpoint=str(trained(tmp_path)), preset="tiny")
    with pytest.raises(GS3DError, match="unknown method"):
        load_method("nope", preset="tiny")


def test_factory_only_specs_and_lazy_class_paths_load_too(registry, tmp_path, monkeypatch):
    ckpt = trained(tmp_path)
    registry.register_method(
        MethodSpec("legacy", "factory only", ScaleConfig, lambda c: Scale(c), CORE_API_VERSION)
    )
    m = load_method("legacy", checkpoint=str(ckpt), overrides=["gain=2"])
    assert isinstance(m, Scale) and m.config.gain == 2 and torch.equal(m.w, torch.arange(5.0))
    # "module:Class" is imported on first use, not when the method is registered
    pkg = tmp_path / "lazy_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "model.py").write_text(
        textwrap.dedent(f"""
            import sys
            Scale = sys.modules[{__name__!r}].Scale
            IMPORTED = True
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    register(registry, name="lazy", method_class="lazy_pkg.model:Scale")
    import sys

    assert "lazy_pkg.model" not in sys.modules
    m = load_method("lazy", checkpoint=str(ckpt))
    assert type(m) is Scale and "lazy_pkg.model" in sys.modules


def test_from_pretrained_overrides(tmp_path):
    ckpt = trained(tmp_path)
    m = Scale.from_pretrained(ckpt, gain=0.5)
    assert m.config.gain == 0.5 and torch.equal(m.w, torch.arange(5.0))
    m = Scale.from_pretrained(str(ckpt), **{"gain": 4})
    assert m.config.gain == 4.0
    with pytest.raises(GS3DError, match="no field 'bogus'"):
        Scale.from_pretrained(ckpt, bogus=1)
    with pytest.raises(GS3DError, match="gain"):
        Scale.from_pretrained(ckpt, gain="loud")
    # a structural override no longer fits the weights: one clear error naming the directory
    with pytest.raises(FileFormatError, match="ckpt.*do not fit Scale"):
        Scale.from_pretrained(ckpt, width=3)


def test_init_from_copies_the_shared_tensors(tmp_path):
    ckpt = trained(tmp_path)
    wide = Wide(ScaleConfig(width=5))
    msg = init_from(wide, str(ckpt))
    assert msg.startswith("initialised 1/2 tensors from") and "(0 unused)" in msg
    assert torch.equal(wide.w, torch.arange(5.0)) and torch.equal(wide.extra, torch.ones(2))
    with pytest.raises(FileFormatError, match="'w' has shape \\(5,\\), Scale expects \\(3,\\)"):
        init_from(Scale(ScaleConfig(width=3)), ckpt)

    class Other(Method):
        config_class = ScaleConfig

        def __init__(self, config):
            super().__init__(config)
            self.v = torch.nn.Parameter(torch.zeros(1))

    with pytest.raises(FileFormatError, match="no weight name in common with Other"):
        init_from(Other(ScaleConfig()), ckpt)
    with pytest.raises(WeightsNotFoundError, match="no such checkpoint directory"):
        init_from(wide, tmp_path / "missing")
