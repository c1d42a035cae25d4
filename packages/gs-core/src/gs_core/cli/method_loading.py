"""Building the method a command runs from ``--method``/``--checkpoint``/``--preset``/``--set``.

The loading itself is :func:`gs_core.loading.load_method`; this module adds what a person at a
terminal needs: the random-weights warning as one yellow line instead of a Python warning dump.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence


def load_method_for_cli(
    console,
    name: str,
    *,
    checkpoint: str | None = None,
    preset: str | None = None,
    overrides: Sequence[str] = (),
    device="cpu",
):
    """``gs_core.loading.load_method`` with its :class:`RandomWeightsWarning` printed to ``console``.

    Other warnings pass through unchanged.
    """
    from gs_core.errors import RandomWeightsWarning
    from gs_core.loading import load_method

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RandomWeightsWarning)
        model = load_method(
            name, checkpoint=checkpoint, preset=preset, overrides=tuple(overrides), device=device
        )
    for w in caught:
        if issubclass(w.category, RandomWeightsWarning):
            console.print(
                f"warning: {w.message}",
                style="yellow",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return model
