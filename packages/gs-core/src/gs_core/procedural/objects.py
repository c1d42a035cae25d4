"""A procedural object: textured primitive parts, normalised into a ball around the origin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gs_core.errors import ValidationError
from gs_core.procedural.primitives import Primitive
from gs_core.procedural.textures import Texture


@dataclass(frozen=True, eq=False)
class Part:
    """One primitive of an object with its texture; ``name`` says what it is ("handle")."""

    name: str
    shape: Primitive
    texture: Texture


@dataclass(frozen=True, eq=False)
class ProceduralObject:
    """The union of ``parts`` (placed in template units), mapped into the world by
    ``world = scale * p + offset``.

    Built with :meth:`normalized`, the world-space object is centred on its bounding-box centre
    and fits inside the ball of radius ``radius`` around the origin (``radius`` is always a
    bound of the world-space object).
    """

    category: str
    parts: tuple[Part, ...]
    scale: float = 1.0
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 1.0

    @classmethod
    def normalized(
        cls, category: str, parts: Sequence[Part], radius: float = 0.5
    ) -> ProceduralObject:
        if not parts:
            raise ValidationError("ProceduralObject.parts", "at least one part", "none")
        if not 0 < radius <= 1:
            raise ValidationError(
                "object_radius", "a radius in (0, 1] (objects live in the unit ball)", repr(radius)
            )
        pts = np.concatenate([p.shape.extreme_points() for p in parts])
        center = 0.5 * (pts.min(0) + pts.max(0))
        # Extreme points cover the surfaces densely (exactly at box corners); a 1% margin covers
        # the gaps between samples on curved parts.
        far = float(np.linalg.norm(pts - center, axis=1).max()) * 1.01
        scale = radius / far
        offset = tuple(float(v) for v in -center * scale)
        return cls(
            category=category,
            parts=tuple(parts),
            scale=float(scale),
            offset=offset,
            radius=float(radius),
        )

    def to_world(self, p: np.ndarray) -> np.ndarray:
        return p * self.scale + np.asarray(self.offset)

    def to_object(self, p: np.ndarray) -> np.ndarray:
        return (p - np.asarray(self.offset)) / self.scale

    def inside(
        self, points_object: np.ndarray, exclude: int | None = None, margin: float = 0.0
    ) -> np.ndarray:
        """Mask ``[N]``: points (object frame) strictly inside any part other than ``exclude``."""
        mask = np.zeros(len(points_object), bool)
        for i, part in enumerate(self.parts):
            if i == exclude:
                continue
            mask |= part.shape.sdf(points_object) < -margin
        return mask
