"""Typed descriptions of what plugins provide (nerfstudio-style specs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class MethodSpec:
    """A generation method offered by a plugin.

    Attributes:
        name: the ``--method`` name (lower-case, unique across installed plugins).
        summary: one line for ``gs3d plugins``.
        config_class: the method's :class:`gs_core.config.Config` subclass (with presets).
        factory: ``factory(config) -> Method`` building an untrained model.
        core_api: the ``gs_core.CORE_API_VERSION`` the plugin was written for.
        paper: citation or URL of the paper it implements.
        default_checkpoint: a directory or hub id ``gs3d generate`` uses without ``--checkpoint``.
        examples_dir: a directory of example objects (``transforms.json`` folders whose first
            frame is the input view) that ``gs3d demo`` runs the method on.
        distribution / version: filled in by the registry from the entry point's package.
    """

    name: str
    summary: str
    config_class: type
    factory: Callable[[Any], Any]
    core_api: str
    paper: str = ""
    default_checkpoint: str | None = None
    examples_dir: str | None = None
    distribution: str = ""
    version: str = ""


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
