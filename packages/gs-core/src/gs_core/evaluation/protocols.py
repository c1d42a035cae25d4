"""Evaluation protocols: which views of an object are the input and which are the targets.

Protocol views are given as (azimuth, elevation) in degrees on the orbit of ``Cameras.orbit``;
azimuths are relative to the input view's azimuth (the input is the "0-degree view").

- ``ring15`` — 15 views evenly spaced in azimuth at elevation 0 (GECO Sec. 4.1, after
  SyncDreamer's GSO protocol).
- ``ring12`` — 12 views evenly spaced in azimuth (every 30 degrees) at elevation 0: DD3G's
  comparison setting (Sec. IV-B, "we render 12 images from different viewpoints"; the paper
  gives no elevation, 0 is our reading). DD3G and the methods it compares with treat the input's
  azimuth as hidden, so predictions are first aligned to the input view
  (:mod:`gs_core.evaluation.alignment`).
- ``zero123pp`` — the 6 Zero123++ v1.1 views: azimuths 30, 90, ..., 330 relative to the input,
  absolute elevations alternating 30 / -20 (GECO Sec. 4.1).
- ``gso`` — both sets (GECO reports each).
- ``random`` — ``n`` random views of the dataset (Compress3D renders 40 random views).
- ``all`` — every view of the dataset except the input.

For ``ring15``/``ring12``/``zero123pp``/``gso``, a dataset object must contain frames at those cameras
(the procedural evaluation split does; for renders of GSO, render them); frames are matched by
the direction of the camera centre within ``tolerance_deg``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gs_core.data.spaces import azimuth_elevation
from gs_core.errors import GS3DError, ValidationError

RING15: tuple[tuple[float, float], ...] = tuple((24.0 * k, 0.0) for k in range(15))
RING12: tuple[tuple[float, float], ...] = tuple((30.0 * k, 0.0) for k in range(12))
ZERO123PP: tuple[tuple[float, float], ...] = tuple(
    (30.0 + 60.0 * k, 30.0 if k % 2 == 0 else -20.0) for k in range(6)
)
PROTOCOLS = ("ring15", "ring12", "zero123pp", "gso", "random", "all")


def protocol_views(name: str) -> dict[str, tuple[tuple[float, float], ...]]:
    """Named groups of (relative azimuth, elevation) views of a fixed-camera protocol."""
    if name == "ring15":
        return {"ring15": RING15}
    if name == "ring12":
        return {"ring12": RING12}
    if name == "zero123pp":
        return {"zero123pp": ZERO123PP}
    if name == "gso":
        return {"ring15": RING15, "zero123pp": ZERO123PP}
    raise ValidationError(
        "protocol",
        "one of ring15, ring12, zero123pp, gso (fixed-camera protocols)",
        repr(name),
    )


def _direction(az_deg: float, el_deg: float) -> np.ndarray:
    az, el = math.radians(az_deg), math.radians(el_deg)
    return np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])


@dataclass
class ViewSelection:
    """Frame indices: the input and, per group name, the targets."""

    input_index: int
    groups: dict[str, list[int]]

    @property
    def targets(self) -> list[int]:
        return [i for g in self.groups.values() for i in g]


def find_front(centers: np.ndarray) -> int:
    """Index of the camera nearest azimuth 0 / elevation 0 (the usual input view)."""
    d = centers / np.linalg.norm(centers, axis=1, keepdims=True)
    return int(np.argmax(d @ _direction(0.0, 0.0)))


def select_views(
    centers: np.ndarray,
    protocol: str,
    input_index: int | None = None,
    n_random: int = 16,
    seed: int = 0,
    tolerance_deg: float = 2.0,
    object_id: str = "",
) -> ViewSelection:
    """Choose the input frame and the protocol's target frames from camera centres ``[V, 3]``.

    ``input_index`` defaults to the frame nearest azimuth 0 / elevation 0. Raises
    :class:`GS3DError` naming the object and the missing view when a protocol view has no frame
    within ``tolerance_deg``.
    """
    centers = np.asarray(centers, np.float64)
    V = len(centers)
    if V < 2:
        raise GS3DError(f"object {object_id}: {V} view(s); evaluation needs an input and targets")
    i_in = find_front(centers) if input_index is None else int(input_index)
    if not 0 <= i_in < V:
        raise ValidationError("input_index", f"a frame index in [0, {V})", str(i_in))
    others = [i for i in range(V) if i != i_in]
    if protocol == "all":
        return ViewSelection(i_in, {"all": others})
    if protocol == "random":
        rng = np.random.default_rng([seed, V])
        k = min(n_random, len(others))
        return ViewSelection(
            i_in, {"random": sorted(rng.choice(others, size=k, replace=False).tolist())}
        )
    az_in, _, _ = azimuth_elevation(centers[i_in])
    dirs = centers / np.linalg.norm(centers, axis=1, keepdims=True)
    groups = {}
    for name, views in protocol_views(protocol).items():
        idx = []
        for az, el in views:
            want = _direction(az_in + az, el)
            cos = np.clip(dirs @ want, -1, 1)
            # Prefer frames other than the input when two share a camera (the ring's 0-degree view).
            cos_others = cos.copy()
            cos_others[i_in] = -2
            j = int(np.argmax(cos_others))
            if math.degrees(math.acos(cos_others[j])) > tolerance_deg:
                j = int(np.argmax(cos))
            err = math.degrees(math.acos(cos[j]))
            if err > tolerance_deg:
                raise GS3DError(
                    f"object {object_id}: protocol '{protocol}' needs a view at azimuth {az:g} deg (relative to "
                    f"the input) and elevation {el:g} deg; the nearest frame is {err:.1f} deg away. Render these "
                    "views (gs3d data procedural --preset eval does) or use --protocol random / all."
                )
            idx.append(j)
        groups[name] = idx
    return ViewSelection(i_in, groups)
