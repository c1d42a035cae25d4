"""Building a registered method: from a checkpoint, from a preset, or from its default.

:func:`load_method` is the one way ``gs3d generate``, ``demo``, ``eval`` and library users get a
ready :class:`~gs_core.method.Method` by name; :func:`init_from` is the partial weight
initialisation of ``gs3d train --init``. Checkpoints load through the method class's
``from_pretrained`` (:func:`gs_core.pretrained.load_pretrained`), and files come from
:func:`gs_core.hub.resolve_pretrained`, so a method never knows how it was loaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from gs_core.errors import (
    FileFormatError,
    GS3DError,
    PluginError,
    RandomWeightsWarning,
    plugin_failures,
)
from gs_core.method import Method

# The preset a method without weights of its own is built from when nothing else is asked.
DEFAULT_PRESET = "paper"


def load_method(
    name: str,
    *,
    checkpoint: str | None = None,
    preset: str | None = None,
    overrides: Sequence[str] = (),
    device: str | torch.device = "cpu",
) -> Method:
    """The registered method ``name``, in eval mode on ``device``.

    - ``checkpoint`` (a ``save_pretrained`` directory, ``org/name[@rev]`` or
      ``hf://org/name[@rev]``): its config with ``overrides`` applied, and its weights;
    - ``preset``: built from that config preset with ``overrides``. For a method that has
      weights of its own (``MethodSpec.has_weights``) the weights are random, and a
      :class:`~gs_core.errors.RandomWeightsWarning` says so;
    - neither: the method's ``default_checkpoint``, or, for a method without weights of its
      own, its ``paper`` preset.

    ``overrides`` are ``key=value`` config fields (``"train.max_steps=5"``).

    Raises:
        GS3DError: both ``checkpoint`` and ``preset``; no checkpoint to fall back to; an
            unknown preset or config field.
        WeightsNotFoundError / FileFormatError: a checkpoint that is missing or malformed.
    """
    from gs_core.plugins.registry import get_registry

    spec = get_registry().get_method(name)
    if checkpoint is not None and preset is not None:
        raise GS3DError(
            f"method '{name}': give a checkpoint (--checkpoint) or a preset (--preset), not both"
        )
    if checkpoint is None and preset is None:
        if spec.default_checkpoint is not None:
            checkpoint = spec.default_checkpoint
        elif not spec.has_weights:
            preset = DEFAULT_PRESET
        else:
            raise GS3DError(
                f"method '{name}' has no default checkpoint: pass --checkpoint DIR (a directory "
                "written by gs3d train / save_pretrained, holding config.json and "
                "model.safetensors) or a hub id, or --preset P to run it with random weights"
            )
    overrides = list(overrides)
    if checkpoint is not None:
        model = _from_checkpoint(spec, checkpoint, overrides, device)
    else:
        config = spec.config_class.preset(preset)
        if overrides:
            config = config.with_overrides(overrides)
        if spec.has_weights:
            warnings.warn(
                RandomWeightsWarning(
                    f"method '{name}' built from preset '{preset}' without a checkpoint: its "
                    "outputs come from random weights (pass --checkpoint for trained ones)"
                ),
                stacklevel=2,
            )
        model = build_method(spec, config).to(device)
    return model.eval()


def build_method(spec, config) -> Method:
    """``spec.factory(config)``: an untrained model of a registered method.

    Raises:
        PluginError: the plugin's factory or constructor raised (naming the method, its
            distribution and the exception's first line), or built something not a Method.
    """
    with _plugin_code(spec, "building the model"):
        model = spec.factory(config)
    return _check_method(spec.name, model)


def init_from(method: Method, source: str | Path) -> str:
    """Copy into ``method`` every tensor of the checkpoint ``source`` whose name it shares (a
    previous training stage's ``RUN/final``); returns one line saying how many.

    Raises:
        FileFormatError: no name in common, or a shared name with another shape.
    """
    from gs_core.pretrained import checkpoint_directory, load_state_dict

    directory = checkpoint_directory(source)
    state = load_state_dict(directory)
    own = method.state_dict()
    common = [k for k in state if k in own]
    if not common:
        raise FileFormatError(directory, f"no weight name in common with {type(method).__name__}")
    for k in common:
        if state[k].shape != own[k].shape:
            raise FileFormatError(
                directory,
                f"'{k}' has shape {tuple(state[k].shape)}, {type(method).__name__} expects "
                f"{tuple(own[k].shape)}",
            )
    method.load_state_dict({k: state[k] for k in common}, strict=False)
    return (
        f"initialised {len(common)}/{len(own)} tensors from {directory} "
        f"({len(state) - len(common)} unused)"
    )


def _from_checkpoint(spec, checkpoint: str, overrides: list[str], device) -> Method:
    from gs_core.config import _split as parse_override
    from gs_core.pretrained import load_pretrained

    with _plugin_code(spec, "loading the checkpoint"):
        cls = spec.load_method_class()
        if cls is not None:
            fields = dict(parse_override(item) for item in overrides)
            model = cls.from_pretrained(checkpoint, device=device, **fields)
        else:  # a spec registered with a factory only
            model = load_pretrained(
                spec.factory, spec.config_class, checkpoint, device=device, overrides=overrides
            )
    return _check_method(spec.name, model)


def _plugin_code(spec, what: str):
    return plugin_failures("method", spec.name, spec.distribution, what)


def _check_method(name: str, model) -> Method:
    if not isinstance(model, Method):
        raise PluginError(f"method '{name}': built a {type(model).__name__}, not a gs_core Method")
    return model


__all__ = ["DEFAULT_PRESET", "build_method", "init_from", "load_method"]
