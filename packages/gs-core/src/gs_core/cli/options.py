"""Parsers and help texts of the options several ``gs3d`` commands share.

Imported when ``gs3d`` starts, so it must stay free of torch and of every plugin.
"""

from __future__ import annotations

from typing import Any

import typer

from gs_core.errors import GS3DError

BACKENDS = ("auto", "torch", "gsplat", "numba")
DEVICE_HELP = "auto, cpu, cuda or cuda:N."
BACKEND_HELP = (
    "Renderer: auto (gsplat on CUDA when it can run, numba on the CPU when installed, else "
    "torch), torch, gsplat or numba (CPU, no gradients)."
)
PRESET_HELP = (
    "Build the method from this config preset instead of a checkpoint (random weights for a "
    "trained method; the normal path for methods without weights of their own)."
)
SET_HELP = "Method config fields: key=value (repeatable)."
THREADS_HELP = (
    "CPU threads of torch. Default: 1 on a machine with at most 2 cores (there `gs3d fit` ran "
    "2.5-15x faster than with 2 threads), else torch's own choice; OMP_NUM_THREADS, when set, "
    "wins. 0: torch's own choice."
)
NAMED_BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "gray": (0.5, 0.5, 0.5)}


def parse_floats(text: str, n: int, option: str) -> tuple[float, ...]:
    """``"a,b,c"`` -> ``n`` floats, or one :class:`GS3DError` line naming ``option``."""
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != n:
        raise GS3DError(f"{option}: expected {n} comma-separated numbers, got '{text}'")
    return vals


def parse_background(text: str, option: str = "--background") -> tuple[float, float, float]:
    """``white``, ``black``, ``gray`` or ``r,g,b`` in [0, 1] -> an RGB triple."""
    if text.lower() in NAMED_BACKGROUNDS:
        return NAMED_BACKGROUNDS[text.lower()]
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3 or not all(0.0 <= v <= 1.0 for v in vals):
        raise GS3DError(
            f"{option}: expected white, black, gray or 'r,g,b' with values in [0, 1], got '{text}'"
        )
    return vals  # type: ignore[return-value]


def check_backend(value: str, option: str = "--backend") -> str:
    """A renderer backend name accepted by ``gs_core.rendering.render``."""
    if value not in BACKENDS:
        raise GS3DError(f"{option}: expected {', '.join(BACKENDS)}, got '{value}'")
    return value


def threads_option() -> Any:
    """The ``--threads`` option of every command that computes on the CPU (one definition)."""
    return typer.Option(None, "--threads", min=0, help=THREADS_HELP)
