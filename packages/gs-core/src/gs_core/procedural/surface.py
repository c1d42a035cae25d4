"""Exact reference geometry of a procedural object, for geometry metrics.

A dataset object is rebuilt from what its ``transforms.json`` records (``gs3d.category``,
``seed``, ``index``, ``object_radius``, ``asymmetric``) exactly as ``gs3d data procedural`` built it: the shape
generator is seeded by ``(seed, index, 0)``, so the rebuilt primitives are the ones that were
ray cast. From the analytic primitives (not from ray casting or a tessellation):

* surface samples come from :func:`gs_core.procedural.sample_surface`: uniform by area on each
  part, minus the points hidden inside another part, with the primitives' exact normals. The
  share of samples between parts uses each part's area, exact except for ellipsoids (Thomsen's
  approximation, < 1.1%), so the density is uniform to about 1%;
* occupancy is exact: a point is inside the object iff it is inside one of its parts (each
  primitive's signed distance, or a function with its sign, is negative).

Numpy only, like the rest of the procedural world; ``contains`` accepts anything
``np.asarray`` reads (a CPU torch tensor included).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gs_core.errors import FileFormatError, GS3DError, ValidationError
from gs_core.procedural.objects import ProceduralObject
from gs_core.procedural.sampling import sample_surface
from gs_core.procedural.templates import CATEGORIES, make_object

# Object ids written by the generator: "<category>_<index, 5 digits>".
_ID = re.compile(r"^(?P<category>[a-z_]+)_(?P<index>\d+)$")
DEFAULT_POINTS = 100_000
DEFAULT_OBJECT_RADIUS = 0.5


@dataclass(frozen=True, eq=False)
class ReferenceGeometry:
    """Exact geometry of one object in world space.

    Fields:
        points:  ``[P, 3]`` float32 surface samples (area-uniform on the visible surface).
        normals: ``[P, 3]`` float32 outward unit normals at ``points``.
        object:  the rebuilt :class:`ProceduralObject` (its ``radius`` bounds it).
    """

    points: np.ndarray
    normals: np.ndarray
    object: ProceduralObject

    def contains(self, points) -> np.ndarray:
        """Exact occupancy: mask ``[N]`` of the world points ``[N, 3]`` inside the solid."""
        p = np.asarray(points, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise ValidationError("points", "world points [N, 3]", f"shape {p.shape}")
        return self.object.inside(self.object.to_object(p))

    occupancy = contains

    @property
    def bounds(self) -> tuple[float, float]:
        """A cube ``(lo, hi)`` per axis that contains the object (its bounding ball's)."""
        r = float(self.object.radius)
        return -r, r


def rebuild_object(
    category: str,
    index: int,
    seed: int,
    object_radius: float = DEFAULT_OBJECT_RADIUS,
    asymmetric: bool = False,
) -> ProceduralObject:
    """Object ``index`` of a ``gs3d data procedural`` run with ``seed``, as it was generated."""
    if category not in CATEGORIES:
        raise GS3DError(
            f"unknown procedural category '{category}' (available: {', '.join(CATEGORIES)})"
        )
    return make_object(
        category,
        np.random.default_rng([seed, index, 0]),
        radius=object_radius,
        asymmetric=asymmetric,
    )


def _from_directory(directory: Path) -> ProceduralObject:
    path = directory / "transforms.json"
    if not path.is_file():
        raise FileFormatError(directory, "no transforms.json: not a dataset object folder")
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("gs3d", {})
    except (json.JSONDecodeError, AttributeError) as e:
        raise FileFormatError(path, f"not a JSON object ({e})") from None
    missing = [k for k in ("category", "seed", "index") if k not in meta]
    if missing or meta.get("generator") != "gs3d data procedural":
        raise FileFormatError(
            path,
            f"field 'gs3d' lacks {', '.join(missing) or 'generator'}: not a procedural object",
        )
    return rebuild_object(
        str(meta["category"]),
        int(meta["index"]),
        int(meta["seed"]),
        float(meta.get("object_radius", DEFAULT_OBJECT_RADIUS)),
        bool(meta.get("asymmetric", False)),
    )


def procedural_reference(
    source: str | Path | ProceduralObject,
    *,
    seed: int | None = None,
    object_radius: float = DEFAULT_OBJECT_RADIUS,
    points: int = DEFAULT_POINTS,
    sample_seed: int = 0,
    asymmetric: bool = False,
) -> ReferenceGeometry:
    """Exact reference geometry of a procedural object.

    ``source``: an object folder written by ``gs3d data procedural`` (its metadata says how to
    rebuild it), an object id ``"mug_00003"`` together with the dataset's ``seed`` (and its
    ``object_radius`` if not the default 0.5, and ``asymmetric`` if it was generated so), or a
    :class:`ProceduralObject`. ``points``
    surface samples are drawn with ``sample_seed``.
    """
    if isinstance(source, ProceduralObject):
        obj = source
    else:
        path = Path(source)
        if path.is_dir():
            obj = _from_directory(path)
        else:
            m = _ID.match(path.name)
            if m is None:
                raise ValidationError(
                    "source",
                    "a procedural object folder or an id like 'mug_00003'",
                    repr(str(source)),
                )
            if seed is None:
                raise ValidationError("seed", "the dataset's seed to rebuild an object id", "None")
            obj = rebuild_object(m["category"], int(m["index"]), seed, object_radius, asymmetric)
    pts, _, nrm = sample_surface(obj, points, np.random.default_rng(sample_seed))
    return ReferenceGeometry(points=pts, normals=nrm, object=obj)


__all__ = ["ReferenceGeometry", "procedural_reference", "rebuild_object"]
