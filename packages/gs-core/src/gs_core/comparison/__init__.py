"""``gs3d compare``: every installed method under one evaluation protocol, in one report.

:func:`choose_methods` picks the methods (default: every installed one, each at its default
checkpoint or preset); :func:`prepare_comparison` checks the dataset once and builds the shared
plan; :func:`run_method` scores one method through the ``gs3d eval`` harness, turning its
failures into a status and a reason; :func:`write_report` writes ``index.html``,
``results.json``, ``results.md`` and the pictures atomically.
"""

from gs_core.comparison.report import results_json, write_report
from gs_core.comparison.running import (
    ComparisonSetup,
    MethodResult,
    prepare_comparison,
    run_comparison,
    run_method,
)
from gs_core.comparison.selection import MethodChoice, choose_methods, parse_methods

__all__ = [
    "ComparisonSetup",
    "MethodChoice",
    "MethodResult",
    "choose_methods",
    "parse_methods",
    "prepare_comparison",
    "results_json",
    "run_comparison",
    "run_method",
    "write_report",
]
