"""Analytic solid primitives: exact ray intersection, normals, inside tests and surface sampling.

Every primitive lives in its own local frame (symmetry axis = local ``y``) and is placed by a
rotation ``R`` (world-from-local) and a centre ``c``. Rays are passed as structure-of-arrays
``(ox, oy, oz, dx, dy, dz)``, each ``[N]`` float32, with unit directions; since the placement is
rigid, the ray parameter ``t`` is the same in the local and the placing frame.

Intersections are closed-form (sphere/ellipsoid, box slabs, capped frustum quadric, capsule);
the torus, whose closed form is a badly conditioned quartic, is found by sphere tracing its
exact signed distance to a tolerance of ``1e-6`` object units.

Everything here is numpy: the procedural world runs in worker processes without touching torch,
and numpy's elementwise float32 maths is deterministic, so the same seed gives the same bytes.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from gs_core.errors import ValidationError

# Rays whose hit is closer than this (object units) are ignored: no self-intersection worries,
# since every camera sits outside every object.
T_EPS = 1e-5
F32 = np.float32

Rays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def rotation_matrix(axis: str | np.ndarray, angle_rad: float) -> np.ndarray:
    """World-from-local rotation ``[3, 3]`` about a principal axis (``"x"``, ``"y"``, ``"z"``)."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    if isinstance(axis, str):
        axis = {"x": np.array([1.0, 0, 0]), "y": np.array([0, 1.0, 0]), "z": np.array([0, 0, 1.0])}[
            axis
        ]
    a = np.asarray(axis, np.float64)
    a = a / np.linalg.norm(a)
    x, y, z = a
    C = 1 - c
    return np.array(
        [
            [c + x * x * C, x * y * C - z * s, x * z * C + y * s],
            [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
            [z * x * C - y * s, z * y * C + x * s, c + z * z * C],
        ]
    )


def _quadratic_roots(A, B, C):
    """Both roots of ``A t^2 + 2 B t + C = 0`` (stable form), NaN where the discriminant < 0."""
    disc = B * B - A * C
    with np.errstate(invalid="ignore", divide="ignore"):
        sq = np.sqrt(disc)
        q = -(B + np.copysign(sq, B))
        t_a = q / A
        t_b = C / q
    return np.minimum(t_a, t_b), np.maximum(t_a, t_b), disc >= 0


def _first_positive(t_near, t_far, valid_near, valid_far):
    inf = F32(np.inf)
    return np.where(
        valid_near & (t_near > T_EPS), t_near, np.where(valid_far & (t_far > T_EPS), t_far, inf)
    )


def _normalize(x, y, z):
    n = np.sqrt(x * x + y * y + z * z)
    n = np.maximum(n, F32(1e-12))
    return x / n, y / n, z / n


@dataclass(frozen=True, eq=False)
class Primitive(ABC):
    """Base class: placement and the local <-> world plumbing shared by all shapes."""

    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    center: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self) -> None:
        R = np.asarray(self.rotation, np.float64)
        c = np.asarray(self.center, np.float64).reshape(3)
        if R.shape != (3, 3) or not np.allclose(R @ R.T, np.eye(3), atol=1e-6):
            raise ValidationError(
                f"{type(self).__name__}.rotation", "a 3x3 rotation matrix", str(R.shape)
            )
        object.__setattr__(self, "rotation", R)
        object.__setattr__(self, "center", c)
        object.__setattr__(self, "_R32", R.astype(np.float32))
        object.__setattr__(self, "_c32", c.astype(np.float32))
        object.__setattr__(self, "_identity", bool(np.array_equal(R, np.eye(3))))
        for name, value in self._size_fields().items():
            if not (value > 0 and math.isfinite(value)):
                raise ValidationError(
                    f"{type(self).__name__}.{name}", "a positive finite size", repr(value)
                )

    # -- per-shape interface (local frame) ---------------------------------------------------
    def _size_fields(self) -> dict[str, float]:
        return {}

    @abstractmethod
    def local_bound_radius(self) -> float:
        """Radius of a sphere about the local origin that contains the shape."""

    @abstractmethod
    def intersect_local(self, rays: Rays) -> np.ndarray:
        """Smallest ``t > T_EPS`` at which each local-frame ray enters the solid (inf: miss)."""

    @abstractmethod
    def normal_local(self, x, y, z):
        """Outward unit normal at local surface points."""

    @abstractmethod
    def sdf_local(self, x, y, z) -> np.ndarray:
        """Signed distance (or a function with the same sign: negative inside) at local points."""

    @abstractmethod
    def area(self) -> float:
        """Surface area (used to share surface samples between parts)."""

    @abstractmethod
    def sample_local(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` points ``[n, 3]`` uniformly distributed (by area) on the local surface."""

    @abstractmethod
    def extreme_points_local(self) -> np.ndarray:
        """A deterministic set of surface points that includes (or densely covers) the extremes."""

    # -- placement ---------------------------------------------------------------------------
    def to_local(self, x, y, z):
        """Placing-frame points -> local frame (directions go through :meth:`dir_to_local`)."""
        c = self._c32
        x, y, z = x - c[0], y - c[1], z - c[2]
        return self.dir_to_local(x, y, z)

    def dir_to_local(self, x, y, z):
        if self._identity:
            return x, y, z
        R = self._R32
        # local = R^T world
        return (
            R[0, 0] * x + R[1, 0] * y + R[2, 0] * z,
            R[0, 1] * x + R[1, 1] * y + R[2, 1] * z,
            R[0, 2] * x + R[1, 2] * y + R[2, 2] * z,
        )

    def dir_to_world(self, x, y, z):
        if self._identity:
            return x, y, z
        R = self._R32
        return (
            R[0, 0] * x + R[0, 1] * y + R[0, 2] * z,
            R[1, 0] * x + R[1, 1] * y + R[1, 2] * z,
            R[2, 0] * x + R[2, 1] * y + R[2, 2] * z,
        )

    def intersect(self, rays: Rays) -> np.ndarray:
        """Entry distance ``t [N]`` of placing-frame rays (inf where they miss)."""
        ox, oy, oz = self.to_local(*rays[:3])
        dx, dy, dz = self.dir_to_local(*rays[3:])
        return self.intersect_local((ox, oy, oz, dx, dy, dz))

    def normal(self, x, y, z):
        lx, ly, lz = self.to_local(x, y, z)
        return self.dir_to_world(*self.normal_local(lx, ly, lz))

    def sdf(self, points: np.ndarray) -> np.ndarray:
        p = points.astype(np.float32)
        return self.sdf_local(*self.to_local(p[:, 0], p[:, 1], p[:, 2]))

    def bound_sphere(self) -> tuple[np.ndarray, float]:
        return self.center, self.local_bound_radius()

    def _place(self, local: np.ndarray) -> np.ndarray:
        return local @ self.rotation.T + self.center

    def sample_surface(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` placing-frame points ``[n, 3]`` uniform by area on the surface."""
        return self._place(self.sample_local(rng, n))

    def extreme_points(self) -> np.ndarray:
        return self._place(self.extreme_points_local())


def _fibonacci_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = math.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.cos(phi), np.sin(theta) * np.sin(phi)], 1)


def _uniform_sphere(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True).clip(1e-12)


@dataclass(frozen=True, eq=False)
class Ellipsoid(Primitive):
    """Axis-aligned ellipsoid with semi-axes ``radii = (a, b, c)`` along local x, y, z."""

    radii: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def _size_fields(self):
        return {"radii[0]": self.radii[0], "radii[1]": self.radii[1], "radii[2]": self.radii[2]}

    def local_bound_radius(self):
        return float(max(self.radii))

    def intersect_local(self, rays):
        ox, oy, oz, dx, dy, dz = rays
        a, b, c = (F32(1.0 / r) for r in self.radii)
        ox, oy, oz, dx, dy, dz = ox * a, oy * b, oz * c, dx * a, dy * b, dz * c
        A = dx * dx + dy * dy + dz * dz
        B = ox * dx + oy * dy + oz * dz
        C = ox * ox + oy * oy + oz * oz - F32(1.0)
        t0, t1, ok = _quadratic_roots(A, B, C)
        return _first_positive(t0, t1, ok, ok)

    def normal_local(self, x, y, z):
        a, b, c = (F32(1.0 / (r * r)) for r in self.radii)
        return _normalize(x * a, y * b, z * c)

    def sdf_local(self, x, y, z):
        # Same sign as the true distance (exact for spheres, scaled for ellipsoids).
        a, b, c = self.radii
        k = np.sqrt((x / F32(a)) ** 2 + (y / F32(b)) ** 2 + (z / F32(c)) ** 2)
        return (k - F32(1.0)) * F32(min(self.radii))

    def area(self):
        # Knud Thomsen's approximation (relative error < 1.1%), only used to share samples.
        a, b, c = self.radii
        p = 1.6075
        return 4 * math.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)

    def sample_local(self, rng, n):
        r = np.asarray(self.radii, np.float64)
        out = np.empty((0, 3))
        # Rejection: a unit-sphere direction u maps to r*u with area density ~ |u / r|.
        gmax = float(np.max(1.0 / r))
        while len(out) < n:
            u = _uniform_sphere(rng, 2 * (n - len(out)) + 16)
            g = np.linalg.norm(u / r, axis=1)
            keep = rng.random(len(u)) * gmax < g
            out = np.concatenate([out, (u * r)[keep]])
        return out[:n]

    def extreme_points_local(self):
        return _fibonacci_sphere(512) * np.asarray(self.radii)


@dataclass(frozen=True, eq=False)
class Box(Primitive):
    """Box with half extents ``half = (hx, hy, hz)``."""

    half: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def _size_fields(self):
        return {"half[0]": self.half[0], "half[1]": self.half[1], "half[2]": self.half[2]}

    def local_bound_radius(self):
        return float(np.linalg.norm(self.half))

    def intersect_local(self, rays):
        o, d = rays[:3], rays[3:]
        tmin = np.full_like(o[0], -np.inf)
        tmax = np.full_like(o[0], np.inf)
        for oi, di, h in zip(o, d, self.half, strict=True):
            # Parallel rays: a tiny same-signed direction keeps the slab test finite and exact
            # enough (the ray is outside the slab iff |o| > h either way).
            di = np.where(np.abs(di) < 1e-12, np.copysign(F32(1e-12), di), di)
            inv = F32(1.0) / di
            t1 = (F32(-h) - oi) * inv
            t2 = (F32(h) - oi) * inv
            tmin = np.maximum(tmin, np.minimum(t1, t2))
            tmax = np.minimum(tmax, np.maximum(t1, t2))
        hit = tmax >= np.maximum(tmin, F32(T_EPS))
        return _first_positive(tmin, tmax, hit, hit)

    def normal_local(self, x, y, z):
        hx, hy, hz = self.half
        ax, ay, az = np.abs(x) / F32(hx), np.abs(y) / F32(hy), np.abs(z) / F32(hz)
        zero = np.zeros_like(x)
        is_x = (ax >= ay) & (ax >= az)
        is_y = ~is_x & (ay >= az)
        is_z = ~is_x & ~is_y
        one = np.ones_like(x)
        return (
            np.where(is_x, np.copysign(one, x), zero),
            np.where(is_y, np.copysign(one, y), zero),
            np.where(is_z, np.copysign(one, z), zero),
        )

    def sdf_local(self, x, y, z):
        qx, qy, qz = (np.abs(v) - F32(h) for v, h in zip((x, y, z), self.half, strict=True))
        outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
        inside = np.minimum(np.maximum(qx, np.maximum(qy, qz)), 0)
        return outside + inside

    def area(self):
        hx, hy, hz = self.half
        return 8 * (hx * hy + hx * hz + hy * hz)

    def sample_local(self, rng, n):
        h = np.asarray(self.half, np.float64)
        # Face pairs normal to x, y, z with areas 4*hy*hz etc.
        areas = np.array([h[1] * h[2], h[0] * h[2], h[0] * h[1]])
        axis = rng.choice(3, size=n, p=areas / areas.sum())
        p = (rng.random((n, 3)) * 2 - 1) * h
        side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        p[np.arange(n), axis] = side * h[axis]
        return p

    def extreme_points_local(self):
        corners = np.array(
            [[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float
        )
        return corners * np.asarray(self.half)


@dataclass(frozen=True, eq=False)
class Frustum(Primitive):
    """Capped truncated cone along local y: radius ``r_bottom`` at ``y = -h``, ``r_top`` at ``+h``.

    ``r_top == r_bottom`` is a cylinder, ``r_top == 0`` a cone (see :func:`cylinder`, :func:`cone`).
    """

    r_bottom: float = 0.5
    r_top: float = 0.5
    half_height: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.r_top < 0 or self.r_bottom < 0 or max(self.r_top, self.r_bottom) <= 0:
            raise ValidationError(
                "Frustum radii",
                "r_bottom, r_top >= 0 and not both 0",
                f"{self.r_bottom}, {self.r_top}",
            )

    def _size_fields(self):
        return {"half_height": self.half_height}

    @property
    def _mk(self) -> tuple[float, float]:
        m = (self.r_top - self.r_bottom) / (2 * self.half_height)
        k = (self.r_top + self.r_bottom) / 2
        return m, k

    def local_bound_radius(self):
        return float(math.hypot(max(self.r_top, self.r_bottom), self.half_height))

    def intersect_local(self, rays):
        ox, oy, oz, dx, dy, dz = rays
        h = F32(self.half_height)
        m, k = (F32(v) for v in self._mk)
        r_o = m * oy + k
        A = dx * dx + dz * dz - m * m * dy * dy
        B = ox * dx + oz * dz - m * dy * r_o
        C = ox * ox + oz * oz - r_o * r_o
        t0, t1, ok = _quadratic_roots(A, B, C)

        def on_side(t):
            y = oy + t * dy
            return ok & (np.abs(y) <= h) & (m * y + k >= 0)

        side = _first_positive(t0, t1, on_side(t0), on_side(t1))
        best = side
        safe_dy = np.where(np.abs(dy) < 1e-12, np.copysign(F32(1e-12), dy), dy)
        for y_cap, r_cap in ((h, self.r_top), (-h, self.r_bottom)):
            if r_cap <= 0:
                continue
            t = (y_cap - oy) / safe_dy
            px, pz = ox + t * dx, oz + t * dz
            hit = (t > T_EPS) & (px * px + pz * pz <= F32(r_cap * r_cap))
            best = np.minimum(best, np.where(hit, t, F32(np.inf)))
        return best

    def normal_local(self, x, y, z):
        m, k = (F32(v) for v in self._mk)
        h = F32(self.half_height)
        # Which face: compare the distance to the cap planes with the distance to the side.
        r = np.sqrt(x * x + z * z)
        slant = F32(1.0 / math.sqrt(1.0 + float(m) ** 2))
        d_side = np.abs(r - (m * y + k)) * slant
        d_cap = np.abs(np.abs(y) - h)
        nx, ny, nz = _normalize(x, -m * (m * y + k), z)
        cap = d_cap < d_side
        return np.where(cap, 0, nx), np.where(cap, np.sign(y), ny), np.where(cap, 0, nz)

    def sdf_local(self, x, y, z):
        # Negative inside; the magnitude is a lower bound of the distance (enough for culling).
        m, k = self._mk
        slant = 1.0 / math.sqrt(1.0 + m * m)
        r = np.sqrt(x * x + z * z)
        d_side = (r - (F32(m) * y + F32(k))) * F32(slant)
        d_caps = np.abs(y) - F32(self.half_height)
        return np.maximum(d_side, d_caps)

    def _side_area(self):
        slant = math.hypot(self.r_top - self.r_bottom, 2 * self.half_height)
        return math.pi * (self.r_top + self.r_bottom) * slant

    def area(self):
        return self._side_area() + math.pi * (self.r_top**2 + self.r_bottom**2)

    def sample_local(self, rng, n):
        h, r0, r1 = self.half_height, self.r_bottom, self.r_top
        parts = np.array([self._side_area(), math.pi * r1 * r1, math.pi * r0 * r0])
        which = rng.choice(3, size=n, p=parts / parts.sum())
        u, v = rng.random(n), rng.random(n)
        ang = 2 * math.pi * rng.random(n)
        # Side: the area density along s in [0, 1] (bottom->top) is proportional to r(s), linear;
        # invert its CDF.
        if abs(r1 - r0) < 1e-12:
            s = u
        else:
            s = (np.sqrt(r0 * r0 + u * (r1 * r1 - r0 * r0)) - r0) / (r1 - r0)
        r_side = r0 + s * (r1 - r0)
        y_side = -h + 2 * h * s
        rad = np.where(which == 0, r_side, np.sqrt(v) * np.where(which == 1, r1, r0))
        y = np.where(which == 0, y_side, np.where(which == 1, h, -h))
        return np.stack([rad * np.cos(ang), y, rad * np.sin(ang)], 1)

    def extreme_points_local(self):
        ang = np.linspace(0, 2 * math.pi, 128, endpoint=False)
        pts = []
        for y, r in ((self.half_height, self.r_top), (-self.half_height, self.r_bottom)):
            pts.append(np.stack([r * np.cos(ang), np.full_like(ang, y), r * np.sin(ang)], 1))
        return np.concatenate(pts)


def cylinder(radius: float, half_height: float, **placement) -> Frustum:
    return Frustum(r_bottom=radius, r_top=radius, half_height=half_height, **placement)


def cone(radius: float, half_height: float, **placement) -> Frustum:
    """A cone with its base at ``y = -h`` and its apex at ``y = +h``."""
    return Frustum(r_bottom=radius, r_top=0.0, half_height=half_height, **placement)


@dataclass(frozen=True, eq=False)
class Torus(Primitive):
    """Torus around the local y axis: ``major`` radius to the tube centre, ``minor`` tube radius."""

    major: float = 0.5
    minor: float = 0.1
    max_steps: int = 96

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.minor >= self.major:
            raise ValidationError("Torus.minor", f"< major radius {self.major}", repr(self.minor))

    def _size_fields(self):
        return {"major": self.major, "minor": self.minor}

    def local_bound_radius(self):
        return float(self.major + self.minor)

    def sdf_local(self, x, y, z):
        q = np.sqrt(x * x + z * z) - F32(self.major)
        return np.sqrt(q * q + y * y) - F32(self.minor)

    def intersect_local(self, rays):
        ox, oy, oz, dx, dy, dz = rays
        n = ox.shape[0]
        out = np.full(n, np.inf, np.float32)
        # Start at the bounding sphere and march with the exact SDF: the step never overshoots,
        # so the first zero found is the first hit.
        Rb = F32(self.major + self.minor)
        t0, t1, ok = _quadratic_roots(
            dx * dx + dy * dy + dz * dz,
            ox * dx + oy * dy + oz * dz,
            ox * ox + oy * oy + oz * oz - Rb * Rb,
        )
        idx = np.nonzero(ok & (t1 > T_EPS))[0]
        if idx.size == 0:
            return out
        t = np.maximum(t0[idx], F32(0))
        t_exit = t1[idx]
        px, py, pz, qx, qy, qz = ox[idx], oy[idx], oz[idx], dx[idx], dy[idx], dz[idx]
        tol = F32(1e-6 * max(1.0, self.major))
        for _ in range(self.max_steps):
            dist = self.sdf_local(px + t * qx, py + t * qy, pz + t * qz)
            hit = dist < tol
            gone = t > t_exit
            done = hit | gone
            if done.any():
                sel = idx[hit]
                out[sel] = np.where(t[hit] > T_EPS, t[hit], np.inf)
                keep = ~done
                idx, t, t_exit = idx[keep], t[keep], t_exit[keep]
                px, py, pz, qx, qy, qz = px[keep], py[keep], pz[keep], qx[keep], qy[keep], qz[keep]
                dist = dist[keep]
                if idx.size == 0:
                    break
            t = t + dist
        if idx.size:
            # Out of steps: only rays grazing the tube remain; they count as hits when they are
            # within a hair of the surface.
            dist = self.sdf_local(px + t * qx, py + t * qy, pz + t * qz)
            hit = dist < F32(1e-4 * self.minor)
            out[idx[hit]] = t[hit]
        return out

    def normal_local(self, x, y, z):
        r = np.maximum(np.sqrt(x * x + z * z), F32(1e-12))
        s = F32(self.major) / r
        return _normalize(x - x * s, y, z - z * s)

    def area(self):
        return 4 * math.pi**2 * self.major * self.minor

    def sample_local(self, rng, n):
        R, r = self.major, self.minor
        out = np.empty((0, 2))
        # Tube angle theta has area density ~ (R + r cos theta): rejection sampling.
        while len(out) < n:
            m = 2 * (n - len(out)) + 16
            th = 2 * math.pi * rng.random(m)
            keep = rng.random(m) * (R + r) < R + r * np.cos(th)
            phi = 2 * math.pi * rng.random(m)
            out = np.concatenate([out, np.stack([th, phi], 1)[keep]])
        th, phi = out[:n, 0], out[:n, 1]
        rad = R + r * np.cos(th)
        return np.stack([rad * np.cos(phi), r * np.sin(th), rad * np.sin(phi)], 1)

    def extreme_points_local(self):
        th, phi = np.meshgrid(
            np.linspace(0, 2 * math.pi, 16, endpoint=False),
            np.linspace(0, 2 * math.pi, 128, endpoint=False),
        )
        rad = self.major + self.minor * np.cos(th)
        return np.stack(
            [rad * np.cos(phi), self.minor * np.sin(th), rad * np.sin(phi)], -1
        ).reshape(-1, 3)


@dataclass(frozen=True, eq=False)
class Capsule(Primitive):
    """Capsule: the points within ``radius`` of the segment ``y in [-half_length, half_length]``."""

    radius: float = 0.2
    half_length: float = 0.3

    def _size_fields(self):
        return {"radius": self.radius, "half_length": self.half_length}

    def local_bound_radius(self):
        return float(self.radius + self.half_length)

    def intersect_local(self, rays):
        ox, oy, oz, dx, dy, dz = rays
        r, h = F32(self.radius), F32(self.half_length)
        # The capsule is the union of a cylinder side and two end spheres; the first entry into
        # a union of convex pieces is the first entry into any piece.
        t0, t1, ok = _quadratic_roots(
            dx * dx + dz * dz, ox * dx + oz * dz, ox * ox + oz * oz - r * r
        )
        y0 = oy + t0 * dy
        best = _first_positive(t0, t1, ok & (np.abs(y0) <= h), np.zeros_like(ok))
        A = dx * dx + dy * dy + dz * dz
        for cy in (h, -h):
            py = oy - cy
            s0, s1, sok = _quadratic_roots(
                A, ox * dx + py * dy + oz * dz, ox * ox + py * py + oz * oz - r * r
            )
            best = np.minimum(best, _first_positive(s0, s1, sok, sok))
        return best

    def normal_local(self, x, y, z):
        h = F32(self.half_length)
        return _normalize(x, y - np.clip(y, -h, h), z)

    def sdf_local(self, x, y, z):
        h = F32(self.half_length)
        yy = y - np.clip(y, -h, h)
        return np.sqrt(x * x + yy * yy + z * z) - F32(self.radius)

    def area(self):
        return 4 * math.pi * self.radius**2 + 2 * math.pi * self.radius * 2 * self.half_length

    def sample_local(self, rng, n):
        r, h = self.radius, self.half_length
        p_side = (4 * math.pi * r * h) / self.area()
        side = rng.random(n) < p_side
        ang = 2 * math.pi * rng.random(n)
        y_side = (rng.random(n) * 2 - 1) * h
        u = _uniform_sphere(rng, n) * r
        # Each sphere half goes to the end it caps.
        u[:, 1] = u[:, 1] + np.where(u[:, 1] >= 0, h, -h)
        pts = np.stack([r * np.cos(ang), y_side, r * np.sin(ang)], 1)
        return np.where(side[:, None], pts, u)

    def extreme_points_local(self):
        s = _fibonacci_sphere(256) * self.radius
        s[:, 1] += np.where(s[:, 1] >= 0, self.half_length, -self.half_length)
        return s
