"""Background colours for compositing RGBA views: fixed, uniform random, or DD3G's skewed random.

DD3G (Sec. III-C, Eq. 8) draws ``bgc = 255 * (1 - (1 - u)^3)``, ``u ~ U(0, 1)``, so that a
generator trained against it does not learn white "background" Gaussians; the skew favours
light colours (mean 0.75). The paper does not say whether ``u`` is shared by the channels; we
draw it per channel, which gives coloured backgrounds (a shared ``u`` would only give greys).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gs_core.errors import ValidationError

NAMED = {
    "white": (1.0, 1.0, 1.0),
    "black": (0.0, 0.0, 0.0),
    "gray": (0.5, 0.5, 0.5),
    "grey": (0.5, 0.5, 0.5),
}
RANDOM_KINDS = ("random", "dd3g")


def check_background(spec: str | Sequence[float]) -> str | tuple[float, float, float]:
    """Validate a background spec: a name, ``"random"``, ``"dd3g"`` or an RGB triple in [0, 1]."""
    if isinstance(spec, str):
        if spec in NAMED or spec in RANDOM_KINDS:
            return spec
        raise ValidationError(
            "background", f"one of {sorted(NAMED) + list(RANDOM_KINDS)} or (r, g, b)", repr(spec)
        )
    try:
        rgb = tuple(float(v) for v in spec)
    except (TypeError, ValueError):
        raise ValidationError("background", "a name or an (r, g, b) triple", repr(spec)) from None
    if len(rgb) != 3 or not all(0.0 <= v <= 1.0 for v in rgb):
        raise ValidationError("background", "(r, g, b) with values in [0, 1]", repr(spec))
    return rgb


def sample_background(spec: str | Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """One background colour ``[3]`` float32 in [0, 1]."""
    spec = check_background(spec)
    if spec == "random":
        return rng.random(3).astype(np.float32)
    if spec == "dd3g":
        u = rng.random(3)
        return (1.0 - (1.0 - u) ** 3).astype(np.float32)
    if isinstance(spec, str):
        return np.asarray(NAMED[spec], np.float32)
    return np.asarray(spec, np.float32)
