"""The method-plugin conformance suite (see :mod:`gs_core.testing`)."""

from __future__ import annotations

import warnings
from typing import ClassVar

import torch

from gs_core.config import Config
from gs_core.gaussians import Gaussians
from gs_core.method import GenerationOutput, Method
from gs_core.plugins.specs import OUTPUT_FRAMES, MethodSpec


def tiny_rgba_images(batch: int = 1, size: int = 32, seed: int = 0) -> torch.Tensor:
    """``[B, 4, size, size]`` RGBA test inputs: a coloured disc on a transparent background."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    alpha = ((xx**2 + yy**2) < 0.6).float()
    rgb = torch.rand(batch, 3, 1, 1, generator=g) * 0.6 + 0.2
    shade = 0.7 + 0.3 * (1 - yy).clamp(0, 1) / 2
    img = torch.cat(
        [rgb * shade.expand(batch, 1, size, size), alpha.expand(batch, 1, size, size)], 1
    )
    return img * torch.cat(
        [alpha.expand(batch, 3, size, size), torch.ones(batch, 1, size, size)], 1
    )


class MethodConformanceTests:
    """Subclass as ``TestX(MethodConformanceTests)`` and set ``method``; pytest collects the rest.

    Optional class attributes: ``image_size`` (default 32), ``generate_kwargs``.
    """

    method: ClassVar[str] = ""
    image_size: ClassVar[int] = 32
    generate_kwargs: ClassVar[dict] = {}

    # ------------------------------------------------------------------ helpers
    def _spec(self) -> MethodSpec:
        from gs_core.plugins.registry import get_registry

        assert self.method, f"{type(self).__name__}.method must name the method under test"
        return get_registry().get_method(self.method)

    def _tiny(self) -> Method:
        spec = self._spec()
        torch.manual_seed(0)
        model = spec.factory(spec.config_class.preset("tiny"))
        return model.eval()

    def _generate(self, model: Method, seed: int = 0) -> GenerationOutput:
        images = tiny_rgba_images(1, self.image_size)
        torch.manual_seed(seed)
        with torch.no_grad():
            return model.generate(images, seed=seed, **self.generate_kwargs)

    @staticmethod
    def _assert_same(a: GenerationOutput, b: GenerationOutput) -> None:
        if a.gaussians is not None:
            assert b.gaussians is not None
            for f in ("means", "quats", "scales", "opacities", "sh"):
                torch.testing.assert_close(
                    getattr(a.gaussians, f), getattr(b.gaussians, f), rtol=0, atol=0
                )
        else:
            for ma, mb in zip(a.meshes or [], b.meshes or [], strict=True):
                torch.testing.assert_close(ma.vertices, mb.vertices, rtol=0, atol=0)

    # ------------------------------------------------------------------ the suite
    def test_spec_well_formed(self):
        from gs_core import CORE_API_VERSION

        spec = self._spec()
        assert spec.name == self.method
        assert spec.summary.strip(), "MethodSpec.summary must be a non-empty line"
        assert issubclass(spec.config_class, Config)
        assert callable(spec.factory)
        assert spec.core_api.split(".")[0] == CORE_API_VERSION.split(".")[0]
        assert spec.distribution and spec.version, "the registry fills these from the entry point"
        for required in ("paper", "tiny"):
            assert required in spec.config_class.presets, f"preset '{required}' is required"
        assert spec.output_frame in OUTPUT_FRAMES
        assert isinstance(spec.has_weights, bool)
        if not spec.has_weights:
            assert spec.default_checkpoint is None, "a method without weights has no checkpoint"

    def test_method_class(self):
        spec = self._spec()
        cls = spec.load_method_class()
        assert cls is not None, "MethodSpec.method_class must name the Method subclass"
        assert issubclass(cls, Method) and cls.config_class is spec.config_class
        assert isinstance(spec.factory(spec.config_class.preset("tiny")), cls)

    def test_stages_are_trainable(self):
        spec = self._spec()
        names = [s.name for s in spec.stages]
        assert len(set(names)) == len(names)
        for i, stage in enumerate(spec.stages):
            assert stage.init_from is None or stage.init_from in names[:i]
        if spec.stages:
            assert spec.resolve_stage(None) == names[0]

    def test_presets_validate(self):
        spec = self._spec()
        for name in spec.config_class.presets:
            cfg = spec.config_class.preset(name)
            assert isinstance(cfg, spec.config_class)
            # a config survives its own JSON round trip
            assert spec.config_class.model_validate_json(cfg.model_dump_json()) == cfg

    def test_tiny_generate_returns_valid_gaussians(self):
        model = self._tiny()
        assert isinstance(model, Method)
        out = self._generate(model)
        assert isinstance(out, GenerationOutput)
        if out.gaussians is not None:
            g = out.gaussians
            assert isinstance(g, Gaussians)
            assert g.batch_shape == (1,), (
                f"one set of Gaussians per input image, got {g.batch_shape}"
            )
            assert g.num_gaussians > 0
            g.validate(check_values=True)
        else:
            assert out.meshes and len(out.meshes) == 1
        assert all(v >= 0 for v in out.timings.values())

    def test_seed_makes_generate_reproducible(self):
        """``generate(x, seed=s)`` twice gives identical outputs, whatever the global RNG."""
        model = self._tiny()
        images = tiny_rgba_images(1, self.image_size)
        outs = []
        for global_seed in (1, 2):
            torch.manual_seed(global_seed)
            with torch.no_grad():
                outs.append(model.generate(images, seed=1234, **self.generate_kwargs))
        self._assert_same(*outs)

    def test_load_method_from_tiny_preset(self):
        from gs_core.errors import RandomWeightsWarning
        from gs_core.loading import load_method

        spec = self._spec()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = load_method(self.method, preset="tiny")
        random = [w for w in caught if issubclass(w.category, RandomWeightsWarning)]
        assert len(random) == (1 if spec.has_weights else 0)
        assert isinstance(model, Method) and not model.training
        assert model.config == spec.config_class.preset("tiny")
        out = self._generate(model)
        assert out.gaussians is not None or out.meshes

    def test_save_load_roundtrip(self, tmp_path):
        from gs_core.loading import load_method

        model = self._tiny()
        path = model.save_pretrained(tmp_path / "ckpt")
        assert (path / "config.json").is_file()
        loaded = type(model).from_pretrained(path).eval()
        assert loaded.config == model.config
        a = self._generate(model)
        self._assert_same(a, self._generate(loaded))
        by_name = load_method(self.method, checkpoint=str(path))
        assert type(by_name) is type(model) and not by_name.training
        self._assert_same(a, self._generate(by_name))
