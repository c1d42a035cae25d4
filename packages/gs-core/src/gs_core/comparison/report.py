"""Writing a comparison report: ``index.html``, ``results.json``, ``results.md`` and the
pictures, all at once.

The whole folder is built beside ``out`` under a temporary name and renamed into place when
complete (:func:`gs_core.io.atomic.atomic_path`): a reader never sees half a report, an
interrupted run leaves the previous one (with ``--overwrite``) untouched.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from gs_core.comparison import layout
from gs_core.comparison.page import render_page
from gs_core.comparison.running import ComparisonSetup, MethodResult
from gs_core.comparison.table import groups_of, markdown, notes, rows, summary_group
from gs_core.comparison.thumbnails import strip_caption
from gs_core.imaging import save_image
from gs_core.io.atomic import atomic_path, atomic_write_text


def results_json(
    setup: ComparisonSetup, results: list[MethodResult], created: str
) -> dict[str, Any]:
    """The report as data: the shared protocol, each method's status, summary scores and full
    harness report, and where its pictures are."""
    from gs_core import __version__

    plan, cfg = setup.plan, setup.config
    cols, table = rows(setup, results)
    methods = []
    for k, (r, cells) in enumerate(zip(results, table, strict=True)):
        methods.append(
            {
                "name": r.name,
                "status": r.status,
                "reason": r.reason,
                "source": r.source,
                "distribution": r.distribution,
                "version": r.version,
                "summary": {c.key: cell.value for c, cell in zip(cols, cells, strict=True)},
                "summary_std": {
                    c.key: cell.std
                    for c, cell in zip(cols, cells, strict=True)
                    if cell.std is not None
                },
                "load_seconds": r.load_seconds,
                "wall_seconds": r.wall_seconds,
                "peak_memory_bytes": r.peak_memory_bytes,
                "memory_measure": r.memory_measure,
                "images": {oid: layout.method_image(oid, k, r.name) for oid in r.strips},
                "report": r.report,
            }
        )
    return {
        "gs3d_version": __version__,
        "created": created,
        "dataset": str(plan.root),
        "split": plan.split,
        "protocol": cfg.protocol,
        "groups": groups_of(setup),
        "summary_group": summary_group(setup),
        "resolution": cfg.resolution,
        "background": cfg.background,
        "seeds": setup.seeds,
        "device": setup.device_name,
        "objects": list(plan.object_ids),
        "columns": [
            {
                "key": c.key,
                "header": c.header,
                "higher_is_better": c.higher_is_better,
                "available": c.unavailable is None,
                "reason": c.unavailable,
            }
            for c in cols
        ],
        "geometry": cfg.geometry,
        "notes": notes(setup, results),
        "strip": strip_caption(plan.selections[plan.object_ids[0]].groups),
        "images": {
            oid: {"input": layout.input_image(oid), "ground_truth": layout.ground_truth_image(oid)}
            for oid in plan.object_ids
        },
        "methods": methods,
    }


def _json_text(data: dict[str, Any]) -> str:
    # JSON has no NaN: a score that does not exist (a group without views) is null.
    text = json.dumps(data, indent=2, default=str)
    return json.dumps(json.loads(text, parse_constant=lambda _: None), indent=2) + "\n"


def write_report(
    out: str | Path, setup: ComparisonSetup, results: list[MethodResult], overwrite: bool = False
) -> Path:
    """Write the report folder ``out`` (see the module docstring); returns the page's path.

    Refuses a file, or a non-empty folder without ``overwrite``
    (:func:`~gs_core.comparison.layout.check_report_dir`).
    """
    out = layout.check_report_dir(out, overwrite)
    created = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    from gs_core import __version__

    with atomic_path(out) as tmp:
        tmp.mkdir()
        for oid in setup.plan.object_ids:
            save_image(tmp / layout.input_image(oid), setup.inputs[oid])
            save_image(tmp / layout.ground_truth_image(oid), setup.ground_truth[oid])
        for k, r in enumerate(results):
            for oid, strip in r.strips.items():
                save_image(tmp / layout.method_image(oid, k, r.name), strip)
        atomic_write_text(tmp / layout.JSON_NAME, _json_text(results_json(setup, results, created)))
        atomic_write_text(tmp / layout.MARKDOWN_NAME, markdown(setup, results))
        footer = f"gs3d {__version__}, {created}"
        atomic_write_text(tmp / layout.PAGE_NAME, render_page(setup, results, footer))
    return out / layout.PAGE_NAME


__all__ = ["results_json", "write_report"]
