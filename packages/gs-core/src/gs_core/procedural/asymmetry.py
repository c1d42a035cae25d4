"""Asymmetric structure for procedural objects, so that the back of an object cannot be guessed.

Most templates are rotationally or mirror symmetric (a mug is mirror symmetric about its handle
plane, a bottle about every vertical plane), so mirroring the input view predicts the unseen
side well and a view-synthesis teacher can look good without knowing anything. With
``asymmetric=True`` (:func:`gs_core.procedural.make_object`, ``gs3d data procedural --set
asymmetric=true``) an object gets, after its template has drawn everything it draws (so the
base shape is the same object as without the flag):

* an *angular* texture on its largest part: the colour turns from ``color_a`` to ``color_b``
  once around the part's axis, so the pattern neither repeats under rotation nor survives a
  mirror (a reflection reverses the direction of the ramp);
* one to three *markers* (a sphere, a yawed box or a capsule in a colour of their own) attached
  on one side, at azimuths at least 15 degrees away from the templates' mirror planes (x = 0,
  z = 0), sunk halfway into the first part a horizontal ray meets.
"""

from __future__ import annotations

import math

import numpy as np

from gs_core.procedural.objects import Part
from gs_core.procedural.primitives import Box, Capsule, Ellipsoid, rotation_matrix
from gs_core.procedural.textures import Texture, random_color

# Markers keep this far (degrees) from the azimuths of the templates' mirror planes.
MIRROR_CLEARANCE_DEG = 15.0


def _largest_part(parts: list[Part]) -> int:
    return int(np.argmax([p.shape.local_bound_radius() for p in parts]))


def _angular_texture(rng: np.random.Generator, base: Texture) -> Texture:
    h = rng.random()
    a = random_color(rng, hue=h)
    b = random_color(rng, hue=h + rng.uniform(0.3, 0.7))
    # The axis the ramp turns around is the part's "up" in its local frame for every template
    # part except rotated tori and x-aligned axes, whose pattern then turns around that axis.
    return Texture(kind="angular", color_a=a, color_b=b, axis=1, extent=base.extent)


def _marker_azimuth(rng: np.random.Generator) -> float:
    """An azimuth (radians) at least ``MIRROR_CLEARANCE_DEG`` from every multiple of 90 deg."""
    quadrant = int(rng.integers(4))
    off = rng.uniform(MIRROR_CLEARANCE_DEG, 90.0 - MIRROR_CLEARANCE_DEG)
    return math.radians(90.0 * quadrant + off)


def _attach_point(
    parts: list[Part], lo: np.ndarray, hi: np.ndarray, azimuth: float, height: float
) -> np.ndarray | None:
    """The first point inside the object on the horizontal ray towards the bounding box's
    vertical axis from ``azimuth`` at ``height``; ``None`` if the ray misses every part."""
    centre = 0.5 * (lo + hi)
    reach = float(np.linalg.norm(hi - lo))
    direction = np.array([math.sin(azimuth), 0.0, math.cos(azimuth)])
    s = np.linspace(reach, 0.0, 400)[:, None]
    ray = np.array([centre[0], height, centre[2]]) + s * direction
    sdf = np.min([p.shape.sdf(ray) for p in parts], axis=0)
    hit = np.flatnonzero(sdf < 0)
    return None if hit.size == 0 else ray[hit[0]]


def add_asymmetry(parts: list[Part], rng: np.random.Generator) -> list[Part]:
    """``parts`` plus an angular texture on the largest part and one to three markers."""
    parts = list(parts)
    k = _largest_part(parts)
    parts[k] = Part(parts[k].name, parts[k].shape, _angular_texture(rng, parts[k].texture))
    pts = np.concatenate([p.shape.extreme_points() for p in parts])
    lo, hi = pts.min(0), pts.max(0)
    extent = float(np.max(hi - lo))
    markers = []
    for m in range(int(rng.integers(1, 4))):
        size = extent * float(rng.uniform(0.06, 0.11))
        colour = Texture(kind="solid", color_a=random_color(rng))
        kind = int(rng.integers(3))
        yaw = float(rng.uniform(0, 2 * math.pi))
        where = None
        for _ in range(8):  # rays between legs or under a table top may miss: try elsewhere
            az = _marker_azimuth(rng)
            y = float(rng.uniform(lo[1] + 0.15 * (hi[1] - lo[1]), hi[1] - 0.15 * (hi[1] - lo[1])))
            where = _attach_point(parts, lo, hi, az, y)
            if where is not None:
                break
        if where is None:
            continue
        if kind == 0:
            shape = Ellipsoid(radii=(size, size, size), center=where)
        elif kind == 1:
            half = (size, 0.7 * size, 0.5 * size)
            shape = Box(half=half, center=where, rotation=rotation_matrix("y", yaw))
        else:
            shape = Capsule(
                radius=0.5 * size,
                half_length=size,
                center=where,
                # lying down (local y -> world x), then turned about the vertical
                rotation=rotation_matrix("y", yaw) @ rotation_matrix("z", math.pi / 2),
            )
        markers.append(Part(f"marker{m}", shape, colour))
    return parts + markers


__all__ = ["MIRROR_CLEARANCE_DEG", "add_asymmetry"]
