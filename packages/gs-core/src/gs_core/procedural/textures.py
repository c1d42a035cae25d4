"""Procedural solid textures: an albedo for every point of a part, from its local coordinates.

Solid (3D) textures need no UV parameterisation, so the same function colours ray hits and
sampled surface points identically.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Literal

import numpy as np

from gs_core.errors import ValidationError

TextureKind = Literal["solid", "stripes", "checker", "gradient", "angular"]
# What random_texture draws from by default; "angular" is only placed deliberately (asymmetric
# objects), so adding it leaves every existing seed's objects unchanged.
TEXTURE_KINDS: tuple[str, ...] = ("solid", "stripes", "checker", "gradient")
ALL_TEXTURE_KINDS: tuple[str, ...] = (*TEXTURE_KINDS, "angular")

F32 = np.float32


@dataclass(frozen=True)
class Texture:
    """Albedo pattern of one part.

    ``stripes`` alternate ``color_a``/``color_b`` along local ``axis`` with ``frequency`` stripe
    pairs per unit length; ``checker`` is the 3D checkerboard of cell size ``1 / (2 frequency)``;
    ``gradient`` blends ``color_a`` -> ``color_b`` along ``axis`` over ``[-extent, extent]``;
    ``angular`` blends them once around ``axis`` (the angle in the plane of the two other axes,
    from -180 to 180 degrees), a pattern that neither repeats under rotation nor survives a mirror.
    """

    kind: TextureKind = "solid"
    color_a: tuple[float, float, float] = (0.8, 0.8, 0.8)
    color_b: tuple[float, float, float] = (0.2, 0.2, 0.2)
    frequency: float = 4.0
    axis: int = 1
    extent: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ALL_TEXTURE_KINDS:
            raise ValidationError("Texture.kind", f"one of {ALL_TEXTURE_KINDS}", repr(self.kind))
        for name in ("color_a", "color_b"):
            c = getattr(self, name)
            if len(c) != 3 or not all(0.0 <= float(v) <= 1.0 for v in c):
                raise ValidationError(f"Texture.{name}", "3 values in [0, 1]", repr(c))
        if self.axis not in (0, 1, 2):
            raise ValidationError("Texture.axis", "0, 1 or 2", repr(self.axis))

    def albedo(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Albedo ``[N, 3]`` float32 at local points given as coordinate arrays ``[N]``."""
        a = np.asarray(self.color_a, np.float32)
        if self.kind == "solid":
            return np.broadcast_to(a, (x.shape[0], 3)).copy()
        b = np.asarray(self.color_b, np.float32)
        coord = (x, y, z)[self.axis]
        if self.kind == "angular":
            u, v = [c for i, c in enumerate((x, y, z)) if i != self.axis]
            w = ((np.arctan2(u, v) + F32(np.pi)) / F32(2 * np.pi)).astype(np.float32)[:, None]
            return a * (1 - w) + b * w
        if self.kind == "gradient":
            w = np.clip((coord / F32(self.extent) + 1) * F32(0.5), 0, 1)[:, None]
            return a * (1 - w) + b * w
        f = F32(2 * self.frequency)
        if self.kind == "stripes":
            parity = np.floor(coord * f).astype(np.int64) & 1
        else:
            parity = (
                np.floor(x * f).astype(np.int64)
                + np.floor(y * f).astype(np.int64)
                + np.floor(z * f).astype(np.int64)
            ) & 1
        return np.where(parity[:, None] == 0, a, b)


def random_color(
    rng: np.random.Generator, hue: float | None = None, sat=(0.35, 0.9), val=(0.45, 0.95)
):
    """A saturated, mid-to-bright colour (never near-black, so shading stays visible)."""
    h = rng.random() if hue is None else hue % 1.0
    s = rng.uniform(*sat)
    v = rng.uniform(*val)
    return tuple(float(c) for c in colorsys.hsv_to_rgb(h, s, v))


def random_texture(
    rng: np.random.Generator,
    extent: float,
    kinds: tuple[str, ...] = TEXTURE_KINDS,
    weights: tuple[float, ...] | None = None,
    base: tuple[float, float, float] | None = None,
) -> Texture:
    """A random texture for a part whose local half-size is about ``extent``."""
    p = None if weights is None else np.asarray(weights, float) / np.sum(weights)
    kind = str(rng.choice(kinds, p=p))
    a = base if base is not None else random_color(rng)
    # The second colour is a clearly different hue, so patterns are visible after shading.
    h, _, _ = colorsys.rgb_to_hsv(*a)
    b = random_color(rng, hue=h + rng.uniform(0.25, 0.75))
    freq = float(rng.uniform(1.0, 3.0)) / max(extent, 1e-3)
    return Texture(
        kind=kind, color_a=a, color_b=b, frequency=freq, axis=int(rng.integers(3)), extent=extent
    )
