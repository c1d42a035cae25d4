"""DD3G's Tables II and III from several ``train_small.py`` runs: leases that trained other
seeds (``--first-seed``) or other variants (``--variants``) of the same setup join one table, read
at the largest evaluated step every run reached, with the mean and standard deviation over seeds
and the orderings' verdicts (``gs_method_dd3g.tables``).

    python3 plugins/gs-method-dd3g/scripts/summarise_runs.py OUT_A/results.json \
        OUT_B/results.json [--out tables.json [--overwrite]]

A record followed by ``@VARIANT,...`` joins with those variants' runs only
(``old.json@pepd_es,pd_es``): an older lease whose joint and IV runs a later one supersedes,
or whose seed another lease repeats, still gives its other rows.

A results.json may be gzip-compressed (``results.json.gz``: leases' raw records kept in
``measurements/`` so that a later lease's seeds can join them).

In place of a results.json, a folder holding ``setup.json`` and run records (``train_small.py``'s
``OUT/work/runs/``, rewritten after every evaluation) joins as it is: a lease that ended before
its results.json still counts with the evaluations it reached.

The runs must share the setup that makes them comparable (preset, overrides, the teacher's
content hash, quadruples and how many per image, DDIM steps, protocol, student and eval seeds,
and for runs through the verifier its normalisation, schedule, backgrounds and guidance,
compared as the values the runs had, whether a preset or ``--set`` gave them); a file that
differs is named with the field. A teacher
pack rebuilt after a loss keeps its file name, not its weights, so the hash
(``gs_priors.teachers.packing.teacher_digest``) is what is compared. The same (variant, seed) in
two files is refused. Prints a markdown table; ``--out`` also writes the numbers (atomically;
refused if present unless ``--overwrite``).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from gs_core.evaluation.record_tables import RecordError, record_table_main

# What must match for runs of different leases to share a table.
SETUP = (
    "preset",
    "overrides",
    "teacher_sha256",
    "quadruples",
    "quadruples_per_image",
    "quadruple_batch",
    "student_elevation",
    "eval_elevation",
    "ddim_steps",
    "protocol",
    "student_seed",
    "eval_seed",
)
ROW_ORDER = ("pepd_joint", "pepd_es", "pepd_iv", "pd_es", "splatter_es", "hybrid_es")
# How the verifier was normalised and scheduled; records from before session 46 lack the key
# and ran with these. It must match only where a file holds a run that used the verifier.
OLD_VERIFICATION = {"reduction": "batch_mean", "iv_only_schedule": "verification"}
# How records from before sessions 50 and 51 made their quadruples.
OLD_DATA = {
    "quadruples_per_image": 1,
    "quadruple_batch": 16,
    "student_elevation": [0.0, 0.0],
    "eval_elevation": [0.0, 0.0],
}
# The verifier's settings a record's 'verification' holds, by the config field an override
# names. Such overrides are compared there, as effective values, not as 'overrides' text: a
# lease that set one by --set joins one whose preset has it as its default, and explicit
# supervision runs (which never run the verifier) join whatever the verifier's settings.
VERIFIER_FIELDS = {
    "iv_reduction": "reduction",
    "iv_only_schedule": "iv_only_schedule",
    "iv_random_background": "random_background",
    "iv_guidance_scale": "guidance_scale",
}
# What records from before session 50 lack in 'verification': every preset then had Eq. 8's
# random backgrounds and guidance 5, unless the lease's overrides said otherwise.
OLD_VERIFIER_DEFAULTS = {"iv_random_background": True, "iv_guidance_scale": 5.0}


class InputError(RecordError):
    """A results file that cannot join the table."""


def _read_json(path: Path, what: str):
    try:
        raw = Path(path).read_bytes()
        # Leases' raw records are kept in measurements/ gzip-compressed (an eighth the size).
        return json.loads(gzip.decompress(raw) if Path(path).suffix == ".gz" else raw)
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a readable {what} ({e})") from None


def read_runs_folder(path: Path) -> dict:
    """``OUT/work/runs/`` (``setup.json`` and one record per run) as a results.json would hold
    it; runs without an evaluation yet are kept (the table leaves them out by name)."""
    setup_file = path / "setup.json"
    if not setup_file.is_file():
        raise InputError(f"{path}: a folder without setup.json (train_small.py's OUT/work/runs?)")
    data = _read_json(setup_file, "setup.json")
    runs = []
    for f in sorted(path.glob("*.json")):
        if f.name != "setup.json":
            record = _read_json(f, "run record")
            if not isinstance(record, dict) or not {"variant", "seed", "evals"} <= set(record):
                raise InputError(f"{f}: not a run record (variant, seed, evals)")
            runs.append(record)
    return {**data, "runs": runs} if isinstance(data, dict) else data


def split_selection(record: Path | str) -> tuple[Path, list[str] | None]:
    """``PATH@VARIANT,...`` -> (PATH, the variants kept); a plain path keeps every run."""
    from gs_method_dd3g.tables import VARIANTS, parse_variant, split_variants

    text = str(record)
    head, sep, tail = text.rpartition("@")
    if not sep or not head or "/" in tail:
        return Path(text), None
    try:
        names = split_variants(tail)
        if not names:
            raise ValueError("no names")
        for n in names:
            parse_variant(n)
    except ValueError as e:
        raise InputError(
            f"{text}: after '@' expected variant names separated by commas "
            f"({', '.join(VARIANTS)}), got {tail!r} ({e})"
        ) from None
    return Path(head), names


def read_results(record: Path | str) -> dict:
    path, keep = split_selection(record)
    data = read_runs_folder(path) if path.is_dir() else _read_json(path, "results.json")
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise InputError(f"{path}: no 'runs' list (a DD3G train_small.py results.json?)")
    if keep is not None:
        runs = [r for r in data["runs"] if r.get("variant") in keep]
        if not runs:
            held = sorted({str(r.get("variant")) for r in data["runs"]})
            raise InputError(f"{record}: no runs of {', '.join(keep)} (it holds {held})")
        data = {**data, "runs": runs}
    # Older records made one quadruple per image, in batches of 16, at elevation 0.
    data = {**OLD_DATA, **data}
    missing = [k for k in SETUP if k not in data]
    if missing:
        raise InputError(
            f"{path}: lacks {', '.join(missing)} (written by an older train_small.py?)"
        )
    return data


def _override_field(text: str) -> str:
    return str(text).partition("=")[0].strip()


def setup_overrides(data: dict) -> list[str]:
    """The lease's overrides less the verifier's settings (compared in :func:`verification`)."""
    return sorted(o for o in data["overrides"] if _override_field(o) not in VERIFIER_FIELDS)


def verification(data: dict) -> dict:
    """The file's verifier settings (``train_small.py``'s setup ``verification``); what an older
    record lacks comes from its overrides, else from the defaults it ran with."""
    v = dict(data.get("verification", OLD_VERIFICATION))
    missing = {f: k for f, k in VERIFIER_FIELDS.items() if k not in v}
    if missing:
        from gs_method_dd3g import DD3GConfig

        # The paper preset still holds the old defaults; only the lease's verifier overrides
        # are applied, so an unknown field of a newer record cannot fail here.
        named = [o for o in data.get("overrides", []) if _override_field(o) in missing]
        cfg = DD3GConfig.preset("paper").with_overrides(named)
        for field, key in missing.items():
            set_here = any(_override_field(o) == field for o in named)
            v[key] = getattr(cfg, field) if set_here else OLD_VERIFIER_DEFAULTS[field]
    return v


def _uses_verifier(data: dict) -> bool:
    from gs_method_dd3g.tables import VARIANTS, parse_variant

    return any(VARIANTS[parse_variant(r["variant"])[0]][1] in ("joint", "iv") for r in data["runs"])


def _check_verification(paths: list[Path], files: list[dict]) -> None:
    """Runs trained through the verifier join only under one verifier setting; explicit
    supervision never runs it, so those runs join whatever the setting."""
    users = [(p, d) for p, d in zip(paths, files, strict=True) if _uses_verifier(d)]
    if not users:
        return
    first_path, first = users[0]
    for path, data in users[1:]:
        if verification(data) != verification(first):
            raise InputError(
                f"{path}: 'verification' is {verification(data)!r} where {first_path} has "
                f"{verification(first)!r}; runs through different verifiers do not share a table"
            )


def join(paths: list[Path]) -> dict:
    """The runs of every file as one table (see the module docstring)."""
    from gs_method_dd3g.tables import aggregate, orderings, pairwise_flags

    files = [read_results(p) for p in paths]
    first = files[0]
    for path, data in zip(paths[1:], files[1:], strict=True):
        for key in SETUP:
            a, b = first[key], data[key]
            if key == "overrides":
                a, b = setup_overrides(first), setup_overrides(data)
            if a != b:
                raise InputError(
                    f"{path}: '{key}' is {data[key]!r} where {paths[0]} has {first[key]!r}; "
                    "runs of different setups do not share a table"
                )
    _check_verification(paths, files)
    records, owner = [], {}
    for path, data in zip(paths, files, strict=True):
        for r in data["runs"]:
            key = (r["variant"], r["seed"])
            if key in owner:
                raise InputError(
                    f"{path}: {r['variant']} seed {r['seed']} is also in {owner[key]}; "
                    "give each lease its own seeds (--first-seed)"
                )
            owner[key] = path
            records.append(r)
    agg = aggregate(records)
    trained = {(r["variant"], r["seed"]) for r in records}
    return {
        "files": [str(p) for p in paths],
        "setup": {k: first[k] for k in SETUP},
        "verification": sorted(
            {json.dumps(verification(d), sort_keys=True) for d in files if _uses_verifier(d)}
        ),
        "teachers": sorted({str(d.get("teacher")) for d in files}),
        "equal_steps": agg["step"],
        "variants": agg["variants"],
        "orderings": orderings(agg["variants"]),
        **pairwise_flags(agg["variants"]),
        "left_out": sorted(
            f"{n}:{s}"
            for n, s in trained
            if n not in agg["variants"] or s not in agg["variants"][n]["seeds"]
        ),
        "baselines": first.get("baselines"),
    }


def markdown(summary: dict) -> str:
    from gs_method_dd3g.tables import VARIANTS

    lines = [
        f"DD3G tables at step {summary['equal_steps']} (mean ± std over seeds)",
        "",
        "| variant | rows | seeds | PSNR | PSNR per seed | SSIM |",
        "| --- | --- | --- | ---: | --- | ---: |",
    ]
    # The rows, then probes of one setting (a row's name with +KEY=VALUE) under their rows.
    probes = sorted(n for n in summary["variants"] if n not in VARIANTS)
    for name in [*ROW_ORDER, *probes]:
        row = summary["variants"].get(name)
        if row is None:
            continue
        per_seed = " / ".join(f"{p:.2f}" for p in row["psnr_per_seed"])
        lines.append(
            f"| {name} | {'; '.join(row['rows'])} | {', '.join(map(str, row['seeds']))} | "
            f"{row['psnr']:.2f} ± {row['psnr_std']:.2f} | {per_seed} | "
            f"{row['ssim']:.3f} ± {row['ssim_std']:.3f} |"
        )
    lines.append("")
    for key, o in summary["orderings"].items():
        lines.append(
            f"{key}: {' < '.join(o['order'])}: holds {o['holds']}, smallest margin "
            f"{o['smallest_margin_db']:+.2f} dB, largest seed std {o['largest_seed_std_db']:.2f} "
            f"dB, beyond the spread {o['beyond_spread']}"
        )
    if summary["left_out"]:
        lines.append(f"left out (no evaluation at that step): {', '.join(summary['left_out'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    return record_table_main(
        argv,
        description=__doc__.split("\n\n")[0],
        records_help="train_small.py results.json files (or OUT/work/runs folders), each "
        "optionally followed by @VARIANT,... to join only those variants' runs",
        join=join,
        markdown=markdown,
    )


if __name__ == "__main__":
    main()
