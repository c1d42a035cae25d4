"""Table 2 over seeds: several ``train_small.py`` runs (one ``results.json`` each, differently
``--seed``-ed) -> per variant the mean and standard deviation of PSNR and SSIM on
``procedural-eval``, whether the paper's ordering holds on the means, and whether every margin
exceeds the larger standard deviation of the two variants it separates (AGG's Table 2 rule).

    python3 plugins/gs-method-geco/scripts/summarise_seeds.py RUN0/results.json RUN1/results.json \
        RUN2/results.json [--out table2-seeds.json]

Prints a markdown table; ``--out`` also writes the numbers (atomically; refused if present
unless ``--overwrite``). Runs at different step counts are listed, so a reader can see whether the
comparison is at equal steps.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from gs_core.evaluation.record_tables import RecordError, record_table_main

# The paper's Table 2 order, worst first; the 75-step teacher + LGM is Table 1's baseline.
ORDER = ("teacher_1step_lgm", "geco_without_stage2", "geco")
ROWS = (*ORDER, "teacher_75step_lgm")
LABELS = {
    "teacher_1step_lgm": "one-step teacher + LGM",
    "geco_without_stage2": "GECO w/o stage II",
    "geco": "GECO",
    "teacher_75step_lgm": "75-step teacher + LGM (Table 1)",
}
METRICS = ("psnr", "ssim")


class InputError(RecordError):
    """A results file that is missing, unreadable or lacks a score."""


def _score(entry: dict, metric: str) -> float:
    value = entry[metric]
    return float(value["all"] if isinstance(value, dict) else value)


def read_run(path: Path) -> dict:
    """One run's seed, stage steps and scores per variant, from its ``results.json``."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a readable results.json ({e})") from None
    gaussians = data.get("gaussians") if isinstance(data, dict) else None
    if not isinstance(gaussians, dict):
        raise InputError(f"{path}: no 'gaussians' scores (a train_small.py results.json?)")
    scores = {}
    for name in ROWS:
        if name not in gaussians:
            raise InputError(f"{path}: 'gaussians' lacks the variant '{name}'")
        try:
            scores[name] = {m: _score(gaussians[name], m) for m in METRICS}
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: 'gaussians.{name}' lacks PSNR / SSIM") from None
    steps = {k: v.get("steps") for k, v in (data.get("stages") or {}).items()}
    return {"path": str(path), "seed": data.get("seed"), "steps": steps, "scores": scores}


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarise(runs: list[dict]) -> dict:
    """Means, standard deviations (``None`` for one run) and the ordering's verdicts."""
    table = {}
    for name in ROWS:
        row = {}
        for m in METRICS:
            values = [r["scores"][name][m] for r in runs]
            row[m], row[m + "_std"] = _mean_std(values)
            row[m + "_runs"] = values
        table[name] = row
    verdict = {}
    pairs = list(zip(ORDER[:-1], ORDER[1:], strict=True))
    for m in METRICS:
        margins = {f"{b} - {a}": table[b][m] - table[a][m] for a, b in pairs}
        stds = [max(table[a][m + "_std"] or 0.0, table[b][m + "_std"] or 0.0) for a, b in pairs]
        seeded = len(runs) > 1
        verdict[m] = {
            "margins": margins,
            "order_holds": all(v > 0 for v in margins.values()),
            "beyond_spread": (
                all(v > s for v, s in zip(margins.values(), stds, strict=True)) if seeded else None
            ),
        }
    return {
        "runs": [{k: r[k] for k in ("path", "seed", "steps")} for r in runs],
        "table": table,
        "ordering": verdict,
    }


def markdown(summary: dict) -> str:
    n = len(summary["runs"])
    lines = [
        f"Table 2 over {n} run(s) (mean ± std; runs in order)",
        "",
        "| method | PSNR | PSNR per run | SSIM | SSIM per run |",
        "| --- | ---: | --- | ---: | --- |",
    ]
    for name in ROWS:
        row = summary["table"][name]
        cells = []
        for m, digits in (("psnr", 2), ("ssim", 4)):
            std = row[m + "_std"]
            mean = f"{row[m]:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")
            runs = " / ".join(f"{v:.{digits}f}" for v in row[m + "_runs"])
            cells += [mean, runs]
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    lines.append("")
    for m in METRICS:
        v = summary["ordering"][m]
        lines.append(
            f"{m.upper()}: order holds on the means: {v['order_holds']}; "
            f"every margin beyond the larger std: {v['beyond_spread']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    return record_table_main(
        argv,
        description=__doc__.split("\n\n")[0],
        records_help="train_small.py results.json files",
        join=lambda paths: summarise([read_run(p) for p in paths]),
        markdown=markdown,
    )


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
