"""Table 2 from the ablation records of several ``train_bundled.py`` runs (``ablations.json``,
or the records under ``measurements/``): leases that trained other variants (``--variants``) or
other seeds (``--seed-list``) at the same steps join one table, with the mean and standard
deviation over seeds, the paper's order and whether every margin exceeds the spread
(``gs_method_agg.ablations``), and each margin seed by seed.

    python3 plugins/gs-method-agg/scripts/summarise_ablations.py \
        plugins/gs-method-agg/measurements/table2-full-4035-2026-12-02.json \
        plugins/gs-method-agg/measurements/table2-nosr-4035-2026-12-03.json [NOTEX.json] \
        [--out table2.json [--overwrite]]

Records of different step counts are refused (the table compares equal steps), and so is the
same variant and seed twice. Prints a markdown table; ``--out`` also writes the numbers
(atomically; refused if present unless ``--overwrite``).
"""

from __future__ import annotations

import json
from pathlib import Path

from gs_core.evaluation.record_tables import RecordError, record_table_main


class InputError(RecordError):
    """A record that cannot join the table."""


def read_record(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a readable ablation record ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list) or "steps" not in data:
        raise InputError(f"{path}: expected 'steps' and a 'runs' list (train_bundled.py's "
                         "ablations.json)")  # fmt: skip
    return data


def join(paths: list[Path]) -> dict:
    from gs_method_agg.ablations import VARIANTS, paired_margins, summarise_ablations

    records = [read_record(p) for p in paths]
    steps = records[0]["steps"]
    runs, owner = [], {}
    for path, rec in zip(paths, records, strict=True):
        if rec["steps"] != steps:
            raise InputError(f"{path}: steps {rec['steps']} where {paths[0]} has {steps}; "
                             "Table 2 compares equal steps")  # fmt: skip
        for r in rec["runs"]:
            if r.get("variant") not in VARIANTS:
                raise InputError(f"{path}: a run of unknown variant {r.get('variant')!r}")
            key = (r["variant"], r["seed"])
            if key in owner:
                raise InputError(f"{path}: {r['variant']} seed {r['seed']} is also in "
                                 f"{owner[key]}")  # fmt: skip
            owner[key] = path
            runs.append(r)
    runs.sort(key=lambda r: (r["seed"], list(VARIANTS).index(r["variant"])))
    return {
        "records": [str(p) for p in paths],
        "steps": steps,
        "runs": runs,
        "summary": summarise_ablations(runs),
        "paired": paired_margins(runs),
    }


def markdown(joined: dict) -> str:
    from gs_method_agg.ablations import LABELS

    summary = joined["summary"]
    lines = [
        f"Table 2 at steps {joined['steps']} (mean ± std over seeds)",
        "",
        "| model | PSNR per seed | PSNR mean ± std | SSIM per seed | SSIM mean ± std |",
        "| --- | --- | ---: | --- | ---: |",
    ]
    for variant, row in reversed(list(summary["table"].items())):  # worst first, as the paper
        per = {m: [r[m] for r in joined["runs"] if r["variant"] == variant
                   and r.get("complete", True)] for m in ("psnr", "ssim")}  # fmt: skip
        cells = []
        for m, digits in (("psnr", 2), ("ssim", 4)):
            std = row[m + "_std"]
            cells.append(" / ".join(f"{v:.{digits}f}" for v in per[m]))
            cells.append(f"{row[m]:.{digits}f}" + (f" ± {std:.{digits}f}" if std else ""))
        lines.append(f"| {LABELS[variant]} | " + " | ".join(cells) + " |")
    lines.append("")
    for m in ("psnr", "ssim"):
        if m in summary:
            v = summary[m]
            lines.append(f"{m.upper()}: order holds on the means: {v['order_holds']}; every "
                         f"margin beyond the larger std: {v['beyond_spread']}")  # fmt: skip
    for name, pair in joined["paired"].items():
        lines.append(
            f"{name}, paired by seed {pair['seeds']}: PSNR "
            + " / ".join(f"{d:+.2f}" for d in pair["psnr"]["per_seed"])
            + ", SSIM "
            + " / ".join(f"{d:+.4f}" for d in pair["ssim"]["per_seed"])
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    return record_table_main(
        argv,
        description=__doc__.split("\n\n")[0],
        records_help="ablation records (JSON)",
        join=join,
        markdown=markdown,
    )


if __name__ == "__main__":
    main()
