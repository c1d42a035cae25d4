"""The comparison table: one row per method, one column per score, and its markdown form.

Image metrics are the harness's columns (``psnr``, ``ssim``, a perceptual metric's render-gt
column, ``clip_similarity_input`` for render-input pairs) at the protocol's summary group:
``all`` views when the protocol has several groups (``gso``: ring15 and zero123pp), else its
one group. A metric that could not be built (its weights are absent) keeps a column that says
``unavailable``; the reason is in the notes. Geometry columns exist when the dataset has exact
geometry. Time is the method's generation time per object (the harness's ``seconds``, without
rendering and scoring), memory the peak of :mod:`gs_core.comparison.machine`.

With several seeds a cell is the mean over seeds with the spread of the dataset mean across
seeds (``± std``), as ``gs3d eval --seeds`` reports it. The best value of a column is marked
when at least two methods have one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gs_core.comparison.running import ComparisonSetup, MethodResult

# Names the page and markdown show for gs-core's own metrics; others show their column name.
_HEADERS = {"psnr": "PSNR (dB)", "ssim": "SSIM"}
_DIGITS = {"psnr": 2}
GEOMETRY = (
    ("chamfer", "Chamfer", False),
    ("fscore", "F-score", True),
    ("normal_consistency", "normal consistency", True),
)
UNAVAILABLE = "unavailable"
MISSING = "-"


@dataclass(frozen=True)
class Column:
    """``key`` says where the value is: an image-metric column name, ``geometry:NAME``,
    ``seconds`` or ``memory``; ``unavailable`` is the reason a metric has no values."""

    key: str
    header: str
    higher_is_better: bool | None
    digits: int = 4
    unavailable: str | None = None

    @property
    def arrow(self) -> str:
        return "" if self.higher_is_better is None else ("↑" if self.higher_is_better else "↓")


@dataclass(frozen=True)
class Cell:
    value: float | None
    std: float | None
    text: str
    best: bool = False


def summary_group(setup: ComparisonSetup) -> str:
    groups = groups_of(setup)
    return "all" if len(groups) > 1 else groups[0]


def groups_of(setup: ComparisonSetup) -> list[str]:
    """The protocol's view groups, as the harness names them (``ring15``, ``zero123pp``)."""
    first = setup.plan.selections[setup.plan.object_ids[0]]
    return list(first.groups)


def columns(setup: ComparisonSetup, measure: str) -> list[Column]:
    """Every column of the table, image metrics first; ``measure`` names the memory figure."""
    metrics = setup.plan.metrics
    cols = [
        Column(
            col,
            _HEADERS.get(col, col),
            metrics.specs[name].higher_is_better,
            _DIGITS.get(col, 4),
        )
        for col, name, _ in metrics.columns()
    ]
    cols += [
        Column(name, _HEADERS.get(name, name), metrics.specs[name].higher_is_better, 4, why)
        for name, why in metrics.unavailable.items()
    ]
    if setup.config.geometry:
        from gs_core.evaluation.geometry import FSCORE_THRESHOLD

        for name, header, higher in GEOMETRY:
            if name == "fscore":
                header = f"F-score@{FSCORE_THRESHOLD:g}"
            cols.append(Column(f"geometry:{name}", header, higher))
    cols.append(Column("seconds", "s / object", False, 3))
    cols.append(Column("memory", f"{measure or 'peak memory'} (MiB)", False, 0))
    return cols


def value_of(result: MethodResult, col: Column, group: str) -> tuple[float | None, float | None]:
    """``(mean, std)`` of ``col`` for ``result`` (``None`` where it has none); the std only
    with several seeds."""
    report = result.report
    if col.key == "memory":
        b = result.peak_memory_bytes
        return (b / 2**20 if b is not None and result.ok else None), None
    if report is None or col.unavailable:
        return None, None
    seeds = len(report.get("seeds") or [])
    if col.key == "seconds":
        return _finite(report["mean"].get("seconds")), None
    if col.key.startswith("geometry:"):
        geo = report.get("geometry") or {}
        name = col.key.split(":", 1)[1]
        std = (geo.get("std") or {}).get(name) if seeds > 1 else None
        return _finite((geo.get("mean") or {}).get(name)), _finite(std)
    mean = (report["mean"].get(col.key) or {}).get(group)
    std = ((report.get("std") or {}).get(col.key) or {}).get(group) if seeds > 1 else None
    return _finite(mean), _finite(std)


def _finite(v) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _text(col: Column, value: float | None, std: float | None) -> str:
    if col.unavailable:
        return UNAVAILABLE
    if value is None:
        return MISSING
    text = f"{value:.{col.digits}f}"
    return text + (f" ± {std:.{col.digits}f}" if std is not None else "")


def rows(
    setup: ComparisonSetup, results: list[MethodResult], group: str | None = None
) -> tuple[list[Column], list[list[Cell]]]:
    """The columns and, per result, its cells at ``group`` (default: the summary group)."""
    group = group or summary_group(setup)
    measure = next((r.memory_measure for r in results if r.ok), None)
    cols = columns(setup, measure or (results[0].memory_measure if results else ""))
    values = [[value_of(r, c, group) for c in cols] for r in results]
    best: list[float | None] = []
    for j, col in enumerate(cols):
        have = [v[j][0] for v in values if v[j][0] is not None]
        if len(have) < 2 or col.higher_is_better is None:
            best.append(None)
        else:
            best.append(max(have) if col.higher_is_better else min(have))
    table = [
        [
            Cell(m, s, _text(c, m, s), best[j] is not None and m == best[j])
            for j, (c, (m, s)) in enumerate(zip(cols, vals, strict=True))
        ]
        for vals in values
    ]
    return cols, table


def status_text(result: MethodResult, limit: int | None = None) -> str:
    """``ok (default checkpoint)`` or ``no weights: reason``, the reason cut to ``limit``
    characters (the status is not repeated when the reason starts with it)."""
    if result.ok:
        return f"ok ({short_source(result.source)})"
    reason = clip(result.reason or "", limit)
    if not reason or reason.startswith(result.status):
        return reason or result.status
    return f"{result.status}: {reason}"


def clip(text: str, limit: int | None) -> str:
    """``text`` cut to ``limit`` characters, ending in an ellipsis when cut."""
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def short_source(source: str) -> str:
    """What a method was built from without the checkpoint's path."""
    return "default checkpoint" if source.startswith("default checkpoint") else source


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def protocol_line(setup: ComparisonSetup, quote: str = "") -> str:
    """One sentence: the data, protocol, objects, resolution, seeds and device; names are
    wrapped in ``quote`` (a markdown backtick)."""
    plan, cfg = setup.plan, setup.config
    groups = groups_of(setup)
    seeds = setup.seeds
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}..{seeds[-1]}"
    q = quote
    return (
        f"dataset {q}{plan.root}{q} (split {q}{plan.split}{q}, {len(plan.object_ids)} objects), "
        f"protocol {q}{cfg.protocol}{q} ({' + '.join(groups)} views; the table scores "
        f"{summary_group(setup)}), {cfg.resolution} px on {cfg.background}, {seed_text}, "
        f"device {setup.device_name}"
    )


def notes(
    setup: ComparisonSetup, results: list[MethodResult], limit: int | None = None
) -> list[str]:
    """The lines under the table: unavailable metrics, geometry, the no-3D references, time
    and memory."""
    out = []
    for name, why in setup.plan.metrics.unavailable.items():
        out.append(f"{name} unavailable: {clip(why, limit)}")
    if setup.config.geometry:
        from gs_core.evaluation.geometry import FSCORE_THRESHOLD, MIN_OPACITY

        out.append(
            "geometry against the procedural world's exact surface, "
            f"{setup.config.geometry_points} points per set, F-score at {FSCORE_THRESHOLD:g}; "
            f"Gaussians through their centres with opacity >= {MIN_OPACITY}, meshes through "
            "surface samples"
        )
    else:
        out.append(f"no geometry scores: {setup.geometry_note}")
    refs = next(
        (r.report["references"] for r in results if r.report and "references" in r.report), None
    )
    if refs is not None:
        group = summary_group(setup)
        parts = []
        for name, text in (("input_copied", "the input copied to every target"),
                           ("blank", "the blank background")):  # fmt: skip
            scores = ", ".join(
                f"{_HEADERS.get(col, col)} {groups[group]:.{_DIGITS.get(col, 4)}f}"
                for col, groups in refs[name].items()
                if groups.get(group) is not None
            )
            parts.append(f"{text}: {scores}")
        out.append(
            "no-3D references on the same targets (the input's own pose left out): "
            + "; ".join(parts)
        )
    measure = next((r.memory_measure for r in results if r.ok), "")
    out.append(
        "s / object: the method's generation time per object (rendering and scoring excluded); "
        f"{measure or 'peak memory'}: the peak while the method loaded and ran"
    )
    return out


def markdown(setup: ComparisonSetup, results: list[MethodResult], reason_chars: int = 160) -> str:
    """``results.md``: the protocol line, the table and its notes."""
    cols, table = rows(setup, results)
    heads = ["method", "status"] + [f"{c.header} {c.arrow}".strip() for c in cols]
    lines = [
        "# gs3d compare",
        "",
        protocol_line(setup, "`"),
        "",
        "| " + " | ".join(heads) + " |",
        "|" + "---|" * len(heads),
    ]
    for r, cells in zip(results, table, strict=True):
        vals = [f"**{c.text}**" if c.best else c.text for c in cells]
        status = _md(status_text(r, reason_chars))
        lines.append(f"| {_md(r.name)} | {status} | " + " | ".join(vals) + " |")
    lines.append("")
    lines += [f"- {_md(n)}" for n in notes(setup, results, reason_chars)]
    return "\n".join(lines) + "\n"


__all__ = [
    "GEOMETRY",
    "MISSING",
    "UNAVAILABLE",
    "Cell",
    "Column",
    "clip",
    "columns",
    "groups_of",
    "markdown",
    "notes",
    "protocol_line",
    "rows",
    "short_source",
    "status_text",
    "summary_group",
    "value_of",
]
