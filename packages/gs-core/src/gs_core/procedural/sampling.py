"""Coloured surface point clouds of procedural objects.

Points are drawn uniformly by area on every part, and those that fall strictly inside another
part (hidden surface of the union) are dropped, so the cloud covers exactly the visible surface
of the solid. Colours are the shaded radiance the views show (the shading is view-independent,
see :mod:`gs_core.procedural.shading`).
"""

from __future__ import annotations

import numpy as np

from gs_core.errors import ValidationError
from gs_core.procedural.objects import ProceduralObject
from gs_core.procedural.shading import lambert


def sample_surface(
    obj: ProceduralObject, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` world-space surface points ``[n, 3]``, their colours ``[n, 3]`` and normals ``[n, 3]``
    (float32)."""
    if n <= 0:
        raise ValidationError("n", "a positive number of points", repr(n))
    areas = np.array([p.shape.area() for p in obj.parts])
    prob = areas / areas.sum()
    pts, cols, nrms = [], [], []
    have = 0
    # Hidden surface is rarely more than half of the total; top up until there are enough.
    while have < n:
        m = int((n - have) * 1.6) + 64
        counts = rng.multinomial(m, prob)
        for i, (part, k) in enumerate(zip(obj.parts, counts, strict=True)):
            if k == 0:
                continue
            p = part.shape.sample_surface(rng, int(k)).astype(np.float32)
            keep = ~obj.inside(p, exclude=i, margin=1e-5)
            p = p[keep]
            if len(p) == 0:
                continue
            lx, ly, lz = part.shape.to_local(p[:, 0], p[:, 1], p[:, 2])
            nx, ny, nz = part.shape.dir_to_world(*part.shape.normal_local(lx, ly, lz))
            cols.append(lambert(part.texture.albedo(lx, ly, lz), nx, ny, nz))
            nrms.append(np.stack([nx, ny, nz], 1))
            pts.append(p)
            have += len(p)
        if not pts:
            raise ValidationError("object", "parts with visible surface", "every sample is hidden")
    P = np.concatenate(pts)
    C = np.concatenate(cols)
    N = np.concatenate(nrms)
    pick = rng.permutation(len(P))[:n]
    world = obj.to_world(P[pick].astype(np.float64)).astype(np.float32)
    return world, C[pick].astype(np.float32), N[pick].astype(np.float32)
