"""The paper's Tables II and III from per-run evaluation records, so that runs trained in
different GPU leases (other seeds, other variants) join one table.

A record is what ``scripts/train_small.py`` writes per ``(variant, seed)``: ``{"variant",
"seed", "evals": [{"step", "psnr", "ssim", "objects"}, ...]}``.

A variant name is a table row (:data:`VARIANTS`) optionally followed by config settings of its
own, ``pepd_joint+eta=0.2+iv_random_background=false``: a probe of one choice the paper leaves
open, trained beside the rows at equal steps. Such a variant joins no ordering. A list value
keeps its commas inside brackets (``splatter_es+splatter.down_channels=[24,48,96,192]``), so
lists of variants split only at the commas outside them (:func:`split_variants`).
"""

from __future__ import annotations

import numpy as np

VARIANTS = {
    # name: (generator, objective, table rows)
    "pepd_joint": ("pepd", "joint", ["III: joint", "II (d)"]),
    "pepd_es": ("pepd", "es", ["III: explicit supervision only", "II (d), ES"]),
    "pepd_iv": ("pepd", "iv", ["III: implicit verification only"]),
    "pd_es": ("pd", "es", ["II (c): PD only, ES"]),
    "splatter_es": ("splatter", "es", ["II (b): single-image splatter network, ES"]),
    "hybrid_es": ("hybrid", "es", ["II (a): TGS / AGG-like hybrid generator, ES"]),
}
# Config fields a variant's own settings may not change: they are what the row's name, or the
# lease's shared setup (summarise_runs.SETUP and its 'verification'), already fixes.
FIXED_BY_ROW = ("generator", "objective", "iv_reduction", "iv_only_schedule")


def parse_variant(name: str) -> tuple[str, list[str]]:
    """``"pepd_joint+eta=0.2"`` -> ``("pepd_joint", ["eta=0.2"])``; raises ``ValueError``
    naming what is wrong (an unknown row, a setting without ``=``, one the row fixes)."""
    base, *settings = name.split("+")
    if base not in VARIANTS:
        raise ValueError(f"{name!r}: unknown variant {base!r}; expected one of {sorted(VARIANTS)}")
    for s in settings:
        key, sep, value = s.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{name!r}: setting {s!r} is not KEY=VALUE")
        if key.split(".")[0] in FIXED_BY_ROW:
            raise ValueError(
                f"{name!r}: {key!r} is fixed by the row or the lease's setup "
                f"({', '.join(FIXED_BY_ROW)}); set it for every run with --set"
            )
        if "/" in s:
            raise ValueError(f"{name!r}: setting {s!r} has a '/' (names are file names)")
    return base, settings


def split_variants(text: str) -> list[str]:
    """``"pd_es,splatter_es+splatter.down_channels=[24,48]"`` -> ``["pd_es",
    "splatter_es+splatter.down_channels=[24,48]"]``: the names between the commas outside
    brackets, empty ones dropped; raises ``ValueError`` on unbalanced brackets."""
    names, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if depth < 0:
            raise ValueError(f"{text!r}: a ']' at character {i + 1} closes no '['")
        if ch == "," and depth == 0:
            names.append(text[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"{text!r}: a '[' is never closed")
    return [n for n in (*names, text[start:]) if n]


def seed_plan(
    names: list[str], first: int, seeds: int, seeds_of: list[str] | None = None
) -> list[tuple[str, int]]:
    """The ``(variant, seed)`` runs of one lease: every variant trains seeds ``first``,
    ``first + 1``, ... -- ``seeds`` of them, or the count ``seeds_of`` gives it (entries
    ``"NAME=N"``; a probe's name may hold ``=``, so the count is after the last one). Seed by
    seed, then in the variants' order. Raises ``ValueError`` naming a bad entry."""
    counts = dict.fromkeys(names, seeds)
    for entry in seeds_of or []:
        name, sep, n = entry.rpartition("=")
        if not sep or not n.strip().isdigit() or int(n) < 1:
            raise ValueError(f"{entry!r}: expected NAME=N with N a positive integer")
        if name not in counts:
            raise ValueError(f"{entry!r}: {name!r} is not one of the variants {names}")
        counts[name] = int(n)
    top = max(counts.values(), default=0)
    return [(n, s) for s in range(first, first + top) for n in names if s < first + counts[n]]


# Orderings (worst first) as the paper's tables state them.
ORDERINGS = {
    "table3": ["pepd_iv", "pepd_es", "pepd_joint"],
    "table2": ["hybrid_es", "splatter_es", "pd_es", "pepd_es"],
}


def aggregate(records: list[dict]) -> dict:
    """Per variant, PSNR / SSIM over seeds at the largest evaluated step every run reached
    (a run that never reached its first evaluation is left out)."""
    records = [r for r in records if r["evals"]]
    reached = [{e["step"] for e in r["evals"]} for r in records]
    common = set.intersection(*reached) if reached else set()
    if not common:
        return {"step": None, "variants": {}}
    step = max(common)
    by_variant: dict[str, list[dict]] = {}
    for r in records:
        e = next(e for e in r["evals"] if e["step"] == step)
        by_variant.setdefault(r["variant"], []).append({"seed": r["seed"], **e})
    table = {}
    for name, rows in by_variant.items():
        rows.sort(key=lambda x: x["seed"])
        p = np.array([x["psnr"] for x in rows])
        q = np.array([x["ssim"] for x in rows])
        base, settings = parse_variant(name)
        table[name] = {
            "generator": VARIANTS[base][0],
            "objective": VARIANTS[base][1],
            "rows": VARIANTS[base][2] if not settings else [f"probe of {base}"],
            **({"settings": settings} if settings else {}),
            "steps": step,
            "seeds": [x["seed"] for x in rows],
            "psnr_per_seed": p.tolist(),
            "psnr": float(p.mean()),
            "psnr_std": float(p.std(ddof=1)) if len(p) > 1 else 0.0,
            "ssim": float(q.mean()),
            "ssim_std": float(q.std(ddof=1)) if len(q) > 1 else 0.0,
            "per_object": rows[0]["objects"],
        }
    return {"step": step, "variants": table}


def orderings(table: dict) -> dict:
    """Each ordering that the trained variants cover: does it hold on the means, and is its
    smallest step larger than the largest standard deviation over seeds among its variants?"""
    out = {}
    for key, chain in ORDERINGS.items():
        have = [n for n in chain if n in table]
        if len(have) < 2:
            continue
        means = [table[n]["psnr"] for n in have]
        steps = [b - a for a, b in zip(means, means[1:], strict=False)]
        spread = max(table[n]["psnr_std"] for n in have)
        out[key] = {
            "order": have,
            "psnr": means,
            "holds": all(d > 0 for d in steps),
            "smallest_margin_db": min(steps),
            "largest_seed_std_db": spread,
            # Unknown (None) with one seed: there is no spread to compare against.
            "beyond_spread": (all(d > 0 for d in steps) and min(steps) > spread)
            if min(len(table[n]["seeds"]) for n in have) > 1
            else None,
        }
    return out


def pairwise_flags(table: dict) -> dict[str, bool]:
    """The paper's pairwise claims that the trained variants cover, on the PSNR means."""
    v = table
    flags = {}
    if {"pepd_joint", "pepd_es", "pepd_iv"} <= set(v):
        flags["table3_order_holds"] = (
            v["pepd_joint"]["psnr"] > v["pepd_es"]["psnr"] > v["pepd_iv"]["psnr"]
        )
    if {"pd_es", "pepd_es"} <= set(v):
        flags["table2_pd_below_pepd"] = v["pd_es"]["psnr"] < v["pepd_es"]["psnr"]
    if {"splatter_es", "pd_es"} <= set(v):
        flags["table2_splatter_below_pd"] = v["splatter_es"]["psnr"] < v["pd_es"]["psnr"]
    if {"hybrid_es", "splatter_es"} <= set(v):
        flags["table2_hybrid_below_splatter"] = v["hybrid_es"]["psnr"] < v["splatter_es"]["psnr"]
    return flags


__all__ = [
    "FIXED_BY_ROW",
    "ORDERINGS",
    "VARIANTS",
    "aggregate",
    "orderings",
    "pairwise_flags",
    "parse_variant",
    "seed_plan",
    "split_variants",
]
