"""Category templates: random-proportioned arrangements of primitives (y up, front = +z).

Each template draws its proportions, part variants and textures from the given generator, so
one ``(category, rng state)`` pair always builds the same object. Sizes are in template units;
:meth:`ProceduralObject.normalized` rescales the result into the unit ball.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from gs_core.errors import GS3DError
from gs_core.procedural.objects import Part, ProceduralObject
from gs_core.procedural.primitives import (
    Box,
    Capsule,
    Ellipsoid,
    Frustum,
    Torus,
    cone,
    cylinder,
    rotation_matrix,
)
from gs_core.procedural.textures import Texture, random_color, random_texture

U = np.random.Generator
ROT_X90 = rotation_matrix("x", math.pi / 2)  # local y -> world z
ROT_Z90 = rotation_matrix("z", math.pi / 2)  # local y -> world -x (an x-aligned axis)


def _solid(c) -> Texture:
    return Texture(kind="solid", color_a=tuple(float(v) for v in c))


def _sphere(r: float, center) -> Ellipsoid:
    return Ellipsoid(radii=(r, r, r), center=np.asarray(center, float))


def _legs(rng: U, xs: float, zs: float, height: float, texture: Texture) -> list[Part]:
    """Four legs under the corners ``(+-xs, +-zs)``, from the floor to ``height``."""
    round_legs = rng.random() < 0.5
    w = float(rng.uniform(0.025, 0.05))
    parts = []
    for sx in (-1, 1):
        for sz in (-1, 1):
            c = (sx * xs, height / 2, sz * zs)
            shape = (
                cylinder(w, height / 2, center=c)
                if round_legs
                else Box(half=(w, height / 2, w), center=c)
            )
            parts.append(Part("leg", shape, texture))
    return parts


def mug(rng: U) -> list[Part]:
    rb = float(rng.uniform(0.28, 0.42))
    hb = float(rng.uniform(0.28, 0.48))
    r_top = rb * float(rng.uniform(1.0, 1.15))
    body_tex = random_texture(rng, extent=max(rb, hb))
    parts = [Part("body", cylinder(rb, hb) if r_top == rb else _frustum(rb, r_top, hb), body_tex)]
    R = float(rng.uniform(0.14, 0.2)) * hb / 0.35
    r = float(rng.uniform(0.03, 0.055))
    handle_tex = _solid(body_tex.color_a) if rng.random() < 0.6 else _solid(random_color(rng))
    # A vertical ring half sunk into the body wall.
    handle = Torus(major=R, minor=r, rotation=ROT_X90, center=(0.5 * (rb + r_top), 0.0, 0.0))
    parts.append(Part("handle", handle, handle_tex))
    if rng.random() < 0.5:
        parts.append(Part("rim", Torus(major=r_top, minor=0.02, center=(0, hb, 0)), handle_tex))
    return parts


def _frustum(r_bottom: float, r_top: float, half_height: float, **placement) -> Frustum:
    return Frustum(r_bottom=r_bottom, r_top=r_top, half_height=half_height, **placement)


def table(rng: U) -> list[Part]:
    H = float(rng.uniform(0.55, 0.85))
    t = float(rng.uniform(0.03, 0.06))
    top_tex = random_texture(rng, extent=0.6, kinds=("solid", "checker", "stripes", "gradient"))
    leg_tex = _solid(random_color(rng))
    if rng.random() < 0.6:
        w, d = float(rng.uniform(0.5, 0.8)), float(rng.uniform(0.35, 0.6))
        parts = [Part("top", Box(half=(w, t, d), center=(0, H - t, 0)), top_tex)]
        parts += _legs(rng, w * 0.85, d * 0.8, H - 2 * t, leg_tex)
    else:
        r = float(rng.uniform(0.45, 0.7))
        parts = [Part("top", cylinder(r, t, center=(0, H - t, 0)), top_tex)]
        pole = float(rng.uniform(0.04, 0.08))
        parts.append(
            Part("pole", cylinder(pole, (H - 2 * t) / 2, center=(0, (H - 2 * t) / 2, 0)), leg_tex)
        )
        parts.append(Part("foot", cylinder(r * 0.5, 0.025, center=(0, 0.025, 0)), leg_tex))
    return parts


def lamp(rng: U) -> list[Part]:
    rb, hb = float(rng.uniform(0.18, 0.3)), float(rng.uniform(0.03, 0.06))
    L = float(rng.uniform(0.55, 0.95))
    metal = _solid(random_color(rng, sat=(0.0, 0.25)))
    parts = [
        Part("base", cylinder(rb, hb, center=(0, hb, 0)), metal),
        Part(
            "pole",
            cylinder(float(rng.uniform(0.02, 0.04)), L / 2, center=(0, 2 * hb + L / 2, 0)),
            metal,
        ),
    ]
    sb, st, sh = (
        float(rng.uniform(0.25, 0.4)),
        float(rng.uniform(0.08, 0.2)),
        float(rng.uniform(0.14, 0.24)),
    )
    y_shade = 2 * hb + L
    parts.append(
        Part("shade", _frustum(sb, st, sh, center=(0, y_shade, 0)), random_texture(rng, extent=sb))
    )
    parts.append(
        Part(
            "bulb",
            _sphere(float(rng.uniform(0.06, 0.1)), (0, y_shade - sh * 0.6, 0)),
            _solid((1.0, 0.95, 0.7)),
        )
    )
    return parts


def snowman(rng: U) -> list[Part]:
    r1 = float(rng.uniform(0.33, 0.45))
    r2 = r1 * float(rng.uniform(0.65, 0.8))
    r3 = r2 * float(rng.uniform(0.6, 0.8))
    snow = _solid(random_color(rng, sat=(0.0, 0.12), val=(0.85, 1.0)))
    y1 = r1
    y2 = y1 + 0.8 * (r1 + r2)
    y3 = y2 + 0.8 * (r2 + r3)
    parts = [
        Part("bottom", _sphere(r1, (0, y1, 0)), snow),
        Part("middle", _sphere(r2, (0, y2, 0)), snow),
    ]
    parts.append(Part("head", _sphere(r3, (0, y3, 0)), snow))
    nose_h = float(rng.uniform(0.08, 0.14))
    parts.append(
        Part(
            "nose",
            cone(
                float(rng.uniform(0.035, 0.055)),
                nose_h,
                rotation=ROT_X90,
                center=(0, y3, r3 + nose_h * 0.7),
            ),
            _solid((1.0, 0.5, 0.1)),
        )
    )
    dark = _solid((0.08, 0.08, 0.1))
    for sx in (-1, 1):
        e = (sx * r3 * 0.35, y3 + r3 * 0.3, r3 * 0.88)
        parts.append(Part("eye", _sphere(r3 * 0.1, e), dark))
    for k in range(int(rng.integers(2, 4))):
        el = math.radians(25 - 22 * k)
        b = (0, y2 + r2 * math.sin(el), r2 * math.cos(el))
        parts.append(Part("button", _sphere(r2 * 0.08, b), dark))
    if rng.random() < 0.6:
        hat = _solid(random_color(rng, val=(0.15, 0.5)))
        brim_y = y3 + r3 * 0.8
        parts.append(Part("brim", cylinder(r3 * 1.0, 0.02, center=(0, brim_y, 0)), hat))
        th = float(rng.uniform(0.12, 0.22))
        parts.append(Part("hat", cylinder(r3 * 0.65, th, center=(0, brim_y + th, 0)), hat))
    return parts


def car(rng: U) -> list[Part]:
    w, h, length = (
        float(rng.uniform(0.32, 0.45)),
        float(rng.uniform(0.1, 0.18)),
        float(rng.uniform(0.7, 1.0)),
    )
    wr = float(rng.uniform(0.14, 0.21))
    paint = random_texture(
        rng, extent=length, kinds=("solid", "stripes", "gradient"), weights=(3, 1, 1)
    )
    y_body = wr + h * 0.6
    parts = [Part("body", Box(half=(w, h, length), center=(0, y_body, 0)), paint)]
    hc, lc = float(rng.uniform(0.1, 0.18)), length * float(rng.uniform(0.4, 0.6))
    glass = _solid(random_color(rng, sat=(0.1, 0.4), val=(0.5, 0.8)))
    parts.append(
        Part(
            "cabin",
            Box(
                half=(w * 0.85, hc, lc),
                center=(0, y_body + h + hc, -length * float(rng.uniform(0.0, 0.2))),
            ),
            glass,
        )
    )
    tyre = _solid((0.12, 0.12, 0.14))
    tw = float(rng.uniform(0.05, 0.09))
    for sx in (-1, 1):
        for sz in (-1, 1):
            parts.append(
                Part(
                    "wheel",
                    cylinder(
                        wr,
                        tw,
                        rotation=ROT_Z90,
                        center=(sx * (w - tw * 0.5), wr, sz * length * 0.62),
                    ),
                    tyre,
                )
            )
    light = _solid((1.0, 0.95, 0.6))
    for sx in (-1, 1):
        parts.append(
            Part("headlight", _sphere(h * 0.35, (sx * w * 0.65, y_body + h * 0.2, length)), light)
        )
    return parts


def chair(rng: U) -> list[Part]:
    s, d, t = (
        float(rng.uniform(0.3, 0.45)),
        float(rng.uniform(0.3, 0.45)),
        float(rng.uniform(0.03, 0.06)),
    )
    hs = float(rng.uniform(0.42, 0.6))
    wood = random_texture(rng, extent=s, kinds=("solid", "stripes", "gradient"), weights=(2, 2, 1))
    parts = [Part("seat", Box(half=(s, t, d), center=(0, hs, 0)), wood)]
    hb = float(rng.uniform(0.25, 0.45))
    back_tex = wood if rng.random() < 0.5 else random_texture(rng, extent=hb)
    parts.append(Part("back", Box(half=(s, hb, t), center=(0, hs + t + hb, -d + t)), back_tex))
    parts += _legs(rng, s * 0.85, d * 0.85, hs - t, _solid(random_color(rng)))
    return parts


def tree(rng: U) -> list[Part]:
    tr, th = float(rng.uniform(0.06, 0.12)), float(rng.uniform(0.15, 0.3))
    bark = _solid(random_color(rng, hue=0.07, sat=(0.4, 0.7), val=(0.3, 0.55)))
    parts = [Part("trunk", cylinder(tr, th, center=(0, th, 0)), bark)]
    leaf_hue = float(rng.uniform(0.22, 0.42))
    leaves = random_texture(
        rng,
        extent=0.4,
        kinds=("solid", "gradient", "checker"),
        weights=(3, 2, 1),
        base=random_color(rng, hue=leaf_hue),
    )
    if rng.random() < 0.55:
        y = 2 * th
        r = float(rng.uniform(0.35, 0.5))
        for _ in range(int(rng.integers(2, 4))):
            ch = r * float(rng.uniform(0.8, 1.2))
            parts.append(Part("foliage", cone(r, ch, center=(0, y + ch, 0)), leaves))
            y += ch * 1.1
            r *= 0.72
    else:
        r = float(rng.uniform(0.3, 0.45))
        parts.append(
            Part(
                "crown",
                Ellipsoid(
                    radii=(r, r * float(rng.uniform(0.8, 1.3)), r), center=(0, 2 * th + r * 0.8, 0)
                ),
                leaves,
            )
        )
    return parts


def rocket(rng: U) -> list[Part]:
    r, hh = float(rng.uniform(0.14, 0.22)), float(rng.uniform(0.38, 0.55))
    body_tex = random_texture(
        rng, extent=hh, kinds=("solid", "stripes", "gradient"), weights=(2, 2, 1)
    )
    parts = [Part("body", cylinder(r, hh, center=(0, hh, 0)), body_tex)]
    nh = float(rng.uniform(0.15, 0.3))
    trim = _solid(random_color(rng))
    parts.append(Part("nose", cone(r, nh, center=(0, 2 * hh + nh, 0)), trim))
    n_fins = int(rng.integers(3, 5))
    fh, fl = float(rng.uniform(0.12, 0.22)), float(rng.uniform(0.1, 0.18))
    for k in range(n_fins):
        a = 2 * math.pi * k / n_fins
        R = rotation_matrix("y", a)
        c = R @ np.array([0.0, 0.0, r + fl * 0.5]) + np.array([0.0, fh, 0.0])
        parts.append(
            Part("fin", Box(half=(0.015, fh, fl * 0.5 + 0.02), rotation=R, center=c), trim)
        )
    parts.append(
        Part(
            "window",
            _sphere(r * 0.35, (0, hh * 1.3, r * 0.85)),
            _solid(random_color(rng, sat=(0.3, 0.6), val=(0.7, 1.0))),
        )
    )
    parts.append(
        Part(
            "nozzle",
            _frustum(r * 0.6, r * 0.8, 0.05, center=(0, -0.04, 0)),
            _solid((0.3, 0.3, 0.33)),
        )
    )
    return parts


def mushroom(rng: U) -> list[Part]:
    rs = float(rng.uniform(0.1, 0.17))
    hs = float(rng.uniform(0.18, 0.32))
    stem = _solid(random_color(rng, sat=(0.0, 0.2), val=(0.8, 1.0)))
    parts = [
        Part("stem", _frustum(rs, rs * float(rng.uniform(0.65, 1.0)), hs, center=(0, hs, 0)), stem)
    ]
    rc = float(rng.uniform(0.33, 0.5))
    ry = rc * float(rng.uniform(0.45, 0.7))
    cap_c = np.array([0.0, 2 * hs, 0.0])
    cap_tex = random_texture(
        rng, extent=rc, kinds=("solid", "gradient", "checker"), weights=(3, 2, 1)
    )
    parts.append(Part("cap", Ellipsoid(radii=(rc, ry, rc), center=cap_c), cap_tex))
    spot = _solid((0.97, 0.97, 0.95))
    for _ in range(int(rng.integers(3, 7))):
        az, el = rng.uniform(0, 2 * math.pi), rng.uniform(0.35, 1.2)
        p = cap_c + np.array(
            [rc * math.cos(el) * math.sin(az), ry * math.sin(el), rc * math.cos(el) * math.cos(az)]
        )
        parts.append(Part("spot", _sphere(rc * float(rng.uniform(0.08, 0.14)), p), spot))
    return parts


def dumbbell(rng: U) -> list[Part]:
    L, rb = float(rng.uniform(0.35, 0.55)), float(rng.uniform(0.03, 0.05))
    metal = _solid(random_color(rng, sat=(0.0, 0.2), val=(0.5, 0.8)))
    parts = [Part("bar", Capsule(radius=rb, half_length=L, rotation=ROT_Z90), metal)]
    weight = random_texture(
        rng, extent=0.2, kinds=("solid", "stripes", "checker"), weights=(3, 1, 1)
    )
    if rng.random() < 0.5:
        r = float(rng.uniform(0.15, 0.24))
        for sx in (-1, 1):
            parts.append(Part("weight", _sphere(r, (sx * L, 0, 0)), weight))
    else:
        r, w = float(rng.uniform(0.16, 0.26)), float(rng.uniform(0.04, 0.08))
        for sx in (-1, 1):
            for k in range(int(rng.integers(1, 3))):
                parts.append(
                    Part(
                        "plate",
                        cylinder(
                            r * (1 - 0.15 * k),
                            w,
                            rotation=ROT_Z90,
                            center=(sx * (L - 2 * w * k - w), 0, 0),
                        ),
                        weight,
                    )
                )
    return parts


def house(rng: U) -> list[Part]:
    w, h, d = (
        float(rng.uniform(0.4, 0.6)),
        float(rng.uniform(0.25, 0.4)),
        float(rng.uniform(0.35, 0.55)),
    )
    walls = random_texture(rng, extent=w, kinds=("solid", "stripes", "gradient"), weights=(3, 1, 1))
    parts = [Part("walls", Box(half=(w, h, d), center=(0, h, 0)), walls)]
    a = d * 1.1 / math.sqrt(2)
    roof_tex = random_texture(
        rng, extent=w, kinds=("solid", "stripes", "checker"), weights=(2, 1, 1)
    )
    # A box turned 45 degrees about x: a gabled roof with its ridge along x.
    parts.append(
        Part(
            "roof",
            Box(
                half=(w * 1.06, a, a),
                rotation=rotation_matrix("x", math.pi / 4),
                center=(0, 2 * h, 0),
            ),
            roof_tex,
        )
    )
    if rng.random() < 0.6:
        parts.append(
            Part(
                "chimney",
                Box(half=(0.05, 0.14, 0.05), center=(w * 0.5, 2 * h + d * 0.55, -d * 0.3)),
                _solid(random_color(rng, val=(0.3, 0.6))),
            )
        )
    door = _solid(random_color(rng, val=(0.25, 0.6)))
    dh = h * 0.55
    parts.append(
        Part(
            "door",
            Box(half=(w * 0.14, dh, 0.015), center=(float(rng.uniform(-0.4, 0.4)) * w, dh, d)),
            door,
        )
    )
    glass = _solid(random_color(rng, sat=(0.2, 0.5), val=(0.75, 1.0)))
    for sx in (-1, 1):
        parts.append(
            Part(
                "window", Box(half=(0.015, h * 0.22, d * 0.2), center=(sx * w, h * 1.15, 0)), glass
            )
        )
    return parts


def bottle(rng: U) -> list[Part]:
    r, hb = float(rng.uniform(0.15, 0.25)), float(rng.uniform(0.28, 0.45))
    glass = _solid(random_color(rng))
    parts = [Part("body", cylinder(r, hb, center=(0, hb, 0)), glass)]
    rn = float(rng.uniform(0.05, 0.08))
    hs, hn = float(rng.uniform(0.07, 0.14)), float(rng.uniform(0.08, 0.15))
    parts.append(Part("shoulder", _frustum(r, rn, hs, center=(0, 2 * hb + hs, 0)), glass))
    parts.append(Part("neck", cylinder(rn, hn, center=(0, 2 * hb + 2 * hs + hn, 0)), glass))
    parts.append(
        Part(
            "cap",
            cylinder(rn * 1.2, 0.03, center=(0, 2 * hb + 2 * hs + 2 * hn + 0.02, 0)),
            _solid(random_color(rng)),
        )
    )
    label = random_texture(rng, extent=hb * 0.5, kinds=("stripes", "checker", "gradient"))
    parts.append(
        Part(
            "label",
            cylinder(r * 1.01, hb * float(rng.uniform(0.35, 0.6)), center=(0, hb, 0)),
            label,
        )
    )
    return parts


CATEGORIES: dict[str, Callable[[U], list[Part]]] = {
    "mug": mug,
    "table": table,
    "lamp": lamp,
    "snowman": snowman,
    "car": car,
    "chair": chair,
    "tree": tree,
    "rocket": rocket,
    "mushroom": mushroom,
    "dumbbell": dumbbell,
    "house": house,
    "bottle": bottle,
}


def make_object(
    category: str, rng: np.random.Generator, radius: float = 0.5, asymmetric: bool = False
) -> ProceduralObject:
    """Build one random object of ``category``, normalised into the ball of ``radius``.

    ``asymmetric`` adds :mod:`gs_core.procedural.asymmetry`'s angular texture and side markers
    after the template's own draws, so the base shape is the same as without it.
    """
    try:
        template = CATEGORIES[category]
    except KeyError:
        raise GS3DError(
            f"unknown procedural category '{category}' (available: {', '.join(CATEGORIES)})"
        ) from None
    parts = template(rng)
    if asymmetric:
        from gs_core.procedural.asymmetry import add_asymmetry

        parts = add_asymmetry(parts, rng)
    return ProceduralObject.normalized(category, parts, radius=radius)
