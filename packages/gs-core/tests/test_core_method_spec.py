"""``MethodSpec``: the method class, output frame, training stages and ``has_weights``, each
validated with one clear error."""

from __future__ import annotations

import pytest
import torch

from gs_core import CORE_API_VERSION
from gs_core.config import Config
from gs_core.data.spaces import SPACES
from gs_core.errors import GS3DError, PluginError, ValidationError
from gs_core.method import Method
from gs_core.plugins.specs import OUTPUT_FRAMES, MethodSpec, StageSpec


class TinyConfig(Config):
    width: int = 2

    presets = {"paper": {}, "tiny": {}}


class Tiny(Method):
    config_class = TinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.w = torch.nn.Parameter(torch.zeros(config.width))


def spec(**fields) -> MethodSpec:
    fields.setdefault("method_class", Tiny)
    return MethodSpec(
        name="tiny", summary="test", config_class=TinyConfig, core_api=CORE_API_VERSION, **fields
    )


def test_defaults_and_derived_fields():
    s = spec()
    assert s.output_frame == "azimuth" and s.stages == () and s.has_weights
    assert isinstance(s.factory(TinyConfig()), Tiny)  # derived from the class
    assert s.load_method_class() is Tiny
    legacy = MethodSpec("tiny", "test", TinyConfig, Tiny, CORE_API_VERSION)
    assert legacy.method_class is Tiny  # a factory that is the class names it
    by_lambda = MethodSpec("tiny", "test", TinyConfig, lambda c: Tiny(c), CORE_API_VERSION)
    assert by_lambda.load_method_class() is None
    assert OUTPUT_FRAMES == SPACES


def test_lazy_class_path_is_not_imported_until_asked():
    s = spec(method_class="no_such_package.model:Thing")
    assert s.method_class == "no_such_package.model:Thing"
    with pytest.raises(PluginError, match="method 'tiny': method_class .* cannot be imported"):
        s.load_method_class()
    with pytest.raises(PluginError, match="cannot be imported"):
        s.factory(TinyConfig())
    not_a_method = spec(method_class="gs_core.config:Config")
    with pytest.raises(PluginError, match="not a gs_core.method.Method subclass"):
        not_a_method.load_method_class()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"output_frame": "screen"}, "MethodSpec 'tiny'.output_frame: expected one of world"),
        ({"has_weights": "yes"}, "MethodSpec 'tiny'.has_weights: expected True or False"),
        (
            {"has_weights": False, "default_checkpoint": "org/model"},
            "MethodSpec 'tiny'.default_checkpoint: expected None for a method without weights",
        ),
        ({"method_class": None}, "MethodSpec 'tiny'.method_class: expected the Method subclass"),
        ({"method_class": "not a path"}, "expected 'package.module:Class'"),
        ({"method_class": TinyConfig}, "expected a gs_core.method.Method subclass"),
        ({"core_api": ""}, "MethodSpec 'tiny'.core_api: expected the gs_core.CORE_API_VERSION"),
        ({"stages": ("warmup",)}, "MethodSpec 'tiny'.stages: expected StageSpec entries"),
        (
            {"stages": (StageSpec("a"), StageSpec("a"))},
            "MethodSpec 'tiny'.stages: expected unique names, got 'a' twice",
        ),
        (
            {"stages": (StageSpec("a", init_from="b"), StageSpec("b"))},
            "stages['a'].init_from: expected an earlier stage (none before it), got 'b'",
        ),
        (
            {"stages": (StageSpec("a"), StageSpec("b", init_from="c"))},
            "stages['b'].init_from: expected an earlier stage (a), got 'c'",
        ),
    ],
)
def test_invalid_fields_are_one_clear_error(fields, message):
    fields = {"core_api": CORE_API_VERSION, **fields}
    core_api = fields.pop("core_api")
    fields.setdefault("method_class", Tiny)
    with pytest.raises(ValidationError) as e:
        MethodSpec(
            name="tiny", summary="test", config_class=TinyConfig, core_api=core_api, **fields
        )
    assert message in str(e.value)


@pytest.mark.parametrize("name", ["", "Coarse", "two words", "1st"])
def test_stage_names(name):
    with pytest.raises(ValidationError, match="StageSpec.name"):
        StageSpec(name)


def test_stages_order_default_and_lookup():
    s = spec(
        stages=[StageSpec("warmup"), StageSpec("coarse", init_from="warmup")],
        output_frame="world",
    )
    assert isinstance(s.stages, tuple) and s.stage_names == ("warmup", "coarse")
    assert s.resolve_stage(None) == "warmup" and s.resolve_stage("coarse") == "coarse"
    assert s.get_stage("coarse").init_from == "warmup" and s.get_stage("sr") is None
    with pytest.raises(GS3DError, match="--stage sr: method 'tiny' has the stages warmup, coarse"):
        s.resolve_stage("sr")
    assert spec().resolve_stage(None) is None and spec().resolve_stage("x") == "x"


def test_the_registry_keeps_the_new_fields(tmp_path):
    from gs_core.plugins.registry import Registry

    reg = Registry(discover=False)
    reg.register_method(
        spec(stages=(StageSpec("main"),), output_frame="camera", has_weights=False),
        "dist",
        "1.2",
    )
    got = reg.get_method("tiny")
    assert got.distribution == "dist" and got.version == "1.2"
    assert got.stage_names == ("main",) and got.output_frame == "camera" and not got.has_weights
    assert got.load_method_class() is Tiny
