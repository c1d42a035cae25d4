"""Typed descriptions of what plugins provide (nerfstudio-style specs)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from gs_core.errors import GS3DError, PluginError, ValidationError, plugin_failures

# The frames gs_core.data.spaces.space_transform knows; a method's outputs live in one of them.
OUTPUT_FRAMES = ("world", "azimuth", "camera")
OutputFrame = Literal["world", "azimuth", "camera"]

_CLASS_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class StageSpec:
    """One training stage of a method (``gs3d train --stage NAME``).

    Attributes:
        name: the ``--stage`` name (lower case, digits, ``-`` and ``_``).
        summary: one line saying what the stage trains.
        init_from: the stage whose trained weights this one starts from (``gs3d train --init
            RUN/final`` of that stage), or ``None`` when it starts from scratch.
    """

    name: str
    summary: str = ""
    init_from: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _STAGE_NAME.match(self.name):
            raise ValidationError(
                "StageSpec.name", "lower case letters, digits, '-' or '_'", repr(self.name)
            )


@dataclass(frozen=True)
class MethodSpec:
    """A generation method offered by a plugin.

    Attributes:
        name: the ``--method`` name (lower-case, unique across installed plugins).
        summary: one line for ``gs3d plugins``.
        config_class: the method's :class:`gs_core.config.Config` subclass (with presets).
        factory: ``factory(config) -> Method`` building an untrained model; optional, derived
            from ``method_class`` when not given.
        core_api: the ``gs_core.CORE_API_VERSION`` the plugin was written for.
        paper: citation or URL of the paper it implements.
        default_checkpoint: a directory or hub id ``gs3d generate`` uses without ``--checkpoint``.
        examples_dir: a directory of example objects (``transforms.json`` folders whose first
            frame is the input view) that ``gs3d demo`` runs the method on.
        distribution / version: filled in by the registry from the entry point's package.
        method_class: the :class:`gs_core.method.Method` subclass, or ``"module:Class"`` so
            that registering imports nothing heavy; checkpoints load through its
            ``from_pretrained``. Derived from ``factory`` when that is the class itself.
        output_frame: where the generated Gaussians live (see :mod:`gs_core.data.spaces`):
            ``world``, ``azimuth`` (input camera at azimuth 0, at its own elevation) or
            ``camera`` (input camera on +z at elevation 0); ``gs3d demo`` and ``gs3d eval``
            place cameras accordingly.
        stages: the training stages in the order they run; ``gs3d train --stage`` is one of
            them (default: the first). Empty for methods trained in one stage or not at all.
        has_weights: whether the method has trained weights of its own. ``False`` for methods
            that optimise per object or need no learning: they are built from their ``paper``
            preset by default and never warned about random weights.
    """

    name: str
    summary: str
    config_class: type
    factory: Callable[[Any], Any] | None = None
    core_api: str = ""
    paper: str = ""
    default_checkpoint: str | None = None
    examples_dir: str | None = None
    distribution: str = ""
    version: str = ""
    method_class: type | str | None = None
    output_frame: OutputFrame = "azimuth"
    stages: tuple[StageSpec, ...] = ()
    has_weights: bool = True

    def __post_init__(self) -> None:
        where = f"MethodSpec '{self.name}'"
        if not self.core_api:
            raise ValidationError(
                f"{where}.core_api", "the gs_core.CORE_API_VERSION it was written for, e.g. '1.0'"
            )
        method_class = self.method_class
        if method_class is None and isinstance(self.factory, type):
            method_class = self.factory
        if method_class is None and self.factory is None:
            raise ValidationError(
                f"{where}.method_class", "the Method subclass or 'module:Class' (or a factory)"
            )
        if isinstance(method_class, str):
            if not _CLASS_PATH.match(method_class):
                raise ValidationError(
                    f"{where}.method_class", "'package.module:Class'", method_class
                )
        elif method_class is not None:
            from gs_core.method import Method

            if not (isinstance(method_class, type) and issubclass(method_class, Method)):
                raise ValidationError(
                    f"{where}.method_class", "a gs_core.method.Method subclass", repr(method_class)
                )
        object.__setattr__(self, "method_class", method_class)
        if self.factory is None:
            object.__setattr__(self, "factory", _ClassFactory(self.name, method_class))
        if self.output_frame not in OUTPUT_FRAMES:
            raise ValidationError(
                f"{where}.output_frame",
                f"one of {', '.join(OUTPUT_FRAMES)}",
                repr(self.output_frame),
            )
        if not isinstance(self.has_weights, bool):
            raise ValidationError(f"{where}.has_weights", "True or False", repr(self.has_weights))
        if not self.has_weights and self.default_checkpoint is not None:
            raise ValidationError(
                f"{where}.default_checkpoint",
                "None for a method without weights (has_weights=False)",
                repr(self.default_checkpoint),
            )
        stages = tuple(self.stages)
        seen: list[str] = []
        for stage in stages:
            if not isinstance(stage, StageSpec):
                raise ValidationError(f"{where}.stages", "StageSpec entries", type(stage).__name__)
            if stage.name in seen:
                raise ValidationError(f"{where}.stages", "unique names", f"'{stage.name}' twice")
            if stage.init_from is not None and stage.init_from not in seen:
                raise ValidationError(
                    f"{where}.stages['{stage.name}'].init_from",
                    f"an earlier stage ({', '.join(seen) or 'none before it'})",
                    repr(stage.init_from),
                )
            seen.append(stage.name)
        object.__setattr__(self, "stages", stages)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    def resolve_stage(self, stage: str | None) -> str | None:
        """The ``--stage`` to train: ``stage`` checked against :attr:`stages`, or the first
        stage when ``None``. Methods that declare no stages get ``stage`` back unchanged."""
        if not self.stages:
            return stage
        if stage is None:
            return self.stages[0].name
        if stage not in self.stage_names:
            raise GS3DError(
                f"--stage {stage}: method '{self.name}' has the stages "
                f"{', '.join(self.stage_names)}"
            )
        return stage

    def get_stage(self, name: str) -> StageSpec | None:
        return next((s for s in self.stages if s.name == name), None)

    def load_method_class(self) -> type | None:
        """The Method subclass (imported when given as ``"module:Class"``); ``None`` for a
        spec that only has a factory."""
        if self.method_class is None:
            return None
        return _import_method_class(self.name, self.method_class)


def _import_method_class(method: str, cls: type | str) -> type:
    if not isinstance(cls, str):
        return cls
    module_name, _, attr = cls.partition(":")
    try:
        loaded = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise PluginError(
            f"method '{method}': method_class '{cls}' cannot be imported "
            f"({type(e).__name__}: {first})"
        ) from None
    from gs_core.method import Method

    if not (isinstance(loaded, type) and issubclass(loaded, Method)):
        raise PluginError(
            f"method '{method}': method_class '{cls}' is not a gs_core.method.Method subclass"
        )
    return loaded


@dataclass(frozen=True)
class _ClassFactory:
    """``factory(config)`` of a spec given only its method class (imported on first call)."""

    method: str
    method_class: type | str

    def __call__(self, config: Any) -> Any:
        return _import_method_class(self.method, self.method_class)(config)


MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class MetricSpec:
    """An evaluation metric.

    ``factory(device)`` returns ``fn(pred, target) -> [B]`` on images ``[B, H, W, 3]`` in
    ``[0, 1]``; it may load weights and raise :class:`gs_core.errors.WeightsNotFoundError` when
    they are absent, and the harness then reports the metric as unavailable with that message.
    ``pairs`` says what the harness compares: ``"render-gt"`` (prediction vs ground truth at
    the same camera) and/or ``"render-input"`` (every render vs the input image).
    """

    name: str
    summary: str
    factory: Callable[[torch.device], MetricFn]
    higher_is_better: bool = True
    pairs: tuple[str, ...] = ("render-gt",)
    distribution: str = ""
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PriorSpec:
    """A diffusion prior (a pretrained generative model used for guidance) offered by a plugin.

    Attributes:
        name: the prior's name (unique across installed plugins), e.g. ``stable-diffusion``.
        summary: one line for ``gs3d plugins``.
        factory: ``factory(model_id, **kwargs) -> prior`` building it from a hub id or a local
            directory (``model_id``) and prior-specific keyword arguments.
        default_model_id: the hub id :meth:`build` loads when given none.
        paper: citation or URL of the paper the prior comes from.
        distribution / version: filled in by the registry from the entry point's package.
    """

    name: str
    summary: str
    factory: Callable[..., Any]
    default_model_id: str | None = None
    paper: str = ""
    distribution: str = ""
    version: str = ""

    def build(self, model_id: str | None = None, **kwargs: Any) -> Any:
        """The prior loaded from ``model_id`` (default: :attr:`default_model_id`)."""
        model_id = model_id or self.default_model_id
        if model_id is None:
            raise GS3DError(
                f"prior '{self.name}' ({self.distribution or 'unregistered'}) has no default "
                "model id: pass a hub id or a local directory"
            )
        with plugin_failures("prior", self.name, self.distribution, f"loading '{model_id}'"):
            return self.factory(model_id, **kwargs)
