"""DreamGaussian's orderings of issue #17 on the procedural world, in one command.

Runs ``gs3d eval`` once per variant and category group, several at once as child processes
sharing the device, then reads the per-object scores back and writes the table:

* ``full``: stage 1 + mesh + stage 2, the refined mesh scored (``--score mesh``);
* ``stage1``: stage 1 alone (``stage2.enabled=false``), its Gaussians scored;
* ``uniform``: stage 1 with t uniform in [20, 980] (``stage1.anneal_timestep=false``);
* ``nodensify``: stage 1 with a fixed count (``stage1.densify=false``);
* ``refonly``: stage 1 on the reference view only (``stage1.sds=false``).

With ``--geometry-points`` (default 50,000; 0 turns it off) each job also scores Chamfer and
F-score against the procedural world's exact surface (``gs3d eval --geometry``), reported per
variant beside PSNR / SSIM.

Each ordering (full >= stage 1, SDS > reference only, annealed > uniform, densify > fixed) is
reported on paired per-object differences (the same objects, seeds and cameras): the mean
difference, the objects where it is positive, and the spread over seeds of each variant's
dataset mean; an ordering is ``beyond_spread`` when its mean difference exceeds the larger of
the two spreads.

    python3 plugins/gs-method-dreamgaussian/scripts/ablations.py --data data/procedural-eval \\
        --teacher TEACHER_DIR --out OUT --seeds 3 --jobs 15 --groups 3 --device cuda

``--set KEY=VALUE`` applies to every variant (``--set stage1.steps=200`` for a short run);
``--budget-s`` starts no new job after that many seconds. ``--resume`` continues a run that a
budget or a lease cut short: with the same ``--groups`` (and ``--categories``), the jobs whose
``results.json`` is already in ``--out`` are kept and only the others run; the table is then
written over all of them. ``--preset tiny --teacher ''`` runs
the tiny random Zero123 (the test does).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

VARIANTS: dict[str, tuple[list[str], str]] = {
    # name: (config overrides, what gs3d eval scores)
    "full": ([], "mesh"),
    "stage1": (["stage2.enabled=false"], "gaussians"),
    "uniform": (["stage2.enabled=false", "stage1.anneal_timestep=false"], "gaussians"),
    "nodensify": (["stage2.enabled=false", "stage1.densify=false"], "gaussians"),
    "refonly": (["stage2.enabled=false", "stage1.sds=false"], "gaussians"),
}
# (better, worse, strict): issue #17's orderings at equal steps.
ORDERINGS = {
    "full >= stage 1 alone": ("full", "stage1", False),
    "SDS on > reference view only": ("stage1", "refonly", True),
    "annealed t > uniform t": ("stage1", "uniform", True),
    "densification > fixed count": ("stage1", "nodensify", True),
}


def _categories(data: Path) -> list[str]:
    from gs_core.data.layout import list_objects, read_split

    ids = read_split(data, "test") if (data / "splits").exists() else list_objects(data)
    cats = []
    for oid in ids:
        meta = json.loads((data / oid / "transforms.json").read_text())
        cat = meta.get("gs3d", {}).get("category") or oid.rsplit("_", 1)[0]
        if cat not in cats:
            cats.append(cat)
    return cats


def _command(a, variant: str, categories: list[str], out: Path) -> list[str]:
    sets, score = VARIANTS[variant]
    cmd = [sys.executable, "-m", "gs_core.cli.main", "eval", "--data", str(a.data)]
    cmd += ["--method", "dreamgaussian", "--preset", a.preset, "--score", score]
    cmd += ["--seeds", str(a.seeds), "--device", a.device, "--out", str(out)]
    cmd += ["--metrics", "psnr,ssim", "--categories", ",".join(categories)]
    if a.geometry_points:
        cmd += ["--geometry", "--geometry-points", str(a.geometry_points)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    if a.max_objects:
        cmd += ["--max-objects", str(a.max_objects)]
    if a.teacher:
        cmd += ["--set", f"prior.model_id={a.teacher}"]
    for s in [*sets, *a.set]:
        cmd += ["--set", s]
    return cmd


def _read(out: Path, variant: str, groups: int) -> dict:
    """Per object: PSNR / SSIM (mean over seeds), and the per-seed dataset means."""
    objects, per_seed = {}, []
    for g in range(groups):
        f = out / f"{variant}-g{g}" / "results.json"
        if not f.exists():
            continue
        r = json.loads(f.read_text())
        for o in r["objects"]:
            objects[o["object_id"]] = {
                "psnr": o["scores"]["psnr"]["all"],
                "ssim": o["scores"]["ssim"]["all"],
                "per_seed": [s["psnr"]["all"] for s in o.get("per_seed") or []],
                "seconds": o.get("seconds"),
                "geometry": o.get("geometry"),
            }
    seeds = {len(o["per_seed"]) for o in objects.values()}
    if objects and seeds and min(seeds) > 0:
        n = min(seeds)
        per_seed = [statistics.mean(o["per_seed"][k] for o in objects.values()) for k in range(n)]
    return {"objects": objects, "dataset_mean_per_seed": per_seed}


def job_order(variants: list[str], groups: list[list[str]]) -> list[tuple[str, int, list[str]]]:
    """``(variant, group index, categories)`` in launch order: group-major, so when
    ``--budget-s`` stops new jobs every variant has run on the same objects and the paired
    orderings stay defined on what finished."""
    return [(v, g, cs) for g, cs in enumerate(groups) for v in variants]


def summarise(results: dict[str, dict]) -> dict:
    """The table and the orderings from :func:`_read`'s records of every variant."""
    table = {}
    for v, r in results.items():
        objs = r["objects"]
        if not objs:
            continue
        ps = r["dataset_mean_per_seed"]
        table[v] = {
            "objects": len(objs),
            "psnr": statistics.mean(o["psnr"] for o in objs.values()),
            "ssim": statistics.mean(o["ssim"] for o in objs.values()),
            "seeds": len(ps),
            "psnr_seed_std": statistics.stdev(ps) if len(ps) > 1 else 0.0,
            "seconds_per_object": statistics.mean(o["seconds"] or 0.0 for o in objs.values()),
        }
        geo = [o["geometry"] for o in objs.values() if o.get("geometry")]
        if geo:
            table[v]["geometry"] = {
                k: statistics.mean(g[k] for g in geo) for k in ("chamfer", "fscore") if k in geo[0]
            }
    orderings = {}
    for label, (better, worse, strict) in ORDERINGS.items():
        if better not in table or worse not in table:
            continue
        a, b = results[better]["objects"], results[worse]["objects"]
        common = sorted(set(a) & set(b))
        diffs = [a[k]["psnr"] - b[k]["psnr"] for k in common]
        mean = statistics.mean(diffs)
        spread = max(table[better]["psnr_seed_std"], table[worse]["psnr_seed_std"])
        seeded = min(table[better]["seeds"], table[worse]["seeds"]) > 1
        holds = mean > 0 if strict else mean >= 0
        orderings[label] = {
            "better": better,
            "worse": worse,
            "objects": len(common),
            "mean_difference_db": mean,
            "objects_better": sum(d > 0 for d in diffs),
            "paired_std_db": statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
            "seed_spread_db": spread,
            "holds": holds,
            # Unknown (None) with one seed: there is no spread to compare against.
            "beyond_spread": (holds and abs(mean) > spread) if seeded else None,
        }
    return {"table": table, "orderings": orderings}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="gs3d data procedural --preset eval")
    p.add_argument("--teacher", default="", help="procedural Zero123 directory (prior.model_id)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--preset", default="procedural")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--categories", default=None, help="only these, e.g. mug,car (default: all)")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--groups", type=int, default=1, help="category groups per variant (jobs)")
    p.add_argument("--jobs", type=int, default=1, help="gs3d eval processes at once")
    p.add_argument("--device", default="cuda")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per process")
    p.add_argument(
        "--max-objects",
        type=int,
        default=None,
        help="at most this many objects per job (gs3d eval --max-objects; with one category "
        "per group, objects per category)",
    )
    p.add_argument(
        "--geometry-points",
        type=int,
        default=50_000,
        help="Chamfer / F-score against the exact procedural surface with this many samples "
        "per set (gs3d eval --geometry); 0: no geometry",
    )
    p.add_argument("--budget-s", type=float, default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the jobs already finished in --out (their results.json), run the rest",
    )
    a = p.parse_args(argv)
    if a.resume and a.overwrite:
        raise SystemExit("--resume keeps the finished jobs in --out; --overwrite reruns them")

    from gs_core.io.atomic import atomic_write_text, check_overwrite

    variants = [v for v in a.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; expected some of {list(VARIANTS)}")
    if not (a.data / "splits").exists() and not any(a.data.glob("*/transforms.json")):
        raise SystemExit(f"--data {a.data}: expected a gs3d data procedural dataset")
    from gs_core.errors import GS3DError

    try:
        check_overwrite(a.out / "results.json", a.overwrite or a.resume)
    except GS3DError as e:
        raise SystemExit(str(e)) from None
    a.out.mkdir(parents=True, exist_ok=True)
    cats = _categories(a.data)
    if a.categories:
        wanted = a.categories.split(",")
        missing = [c for c in wanted if c not in cats]
        if missing:
            raise SystemExit(f"--categories: {missing} not in {a.data} (it has {cats})")
        cats = wanted
    groups = [cats[g :: a.groups] for g in range(a.groups) if cats[g :: a.groups]]
    jobs = job_order(variants, groups)
    kept = []
    if a.resume:
        kept = [f"{v}-g{g}" for v, g, _ in jobs if (a.out / f"{v}-g{g}" / "results.json").exists()]
        jobs = [(v, g, cs) for v, g, cs in jobs if f"{v}-g{g}" not in kept]
        print(f"resume: {len(kept)} finished jobs kept, {len(jobs)} to run", flush=True)
    from gs_core.devices import child_environment
    from gs_core.rendering import build_before_children

    if (why := build_before_children(a.device)) is not None:
        print(f"warning: the jobs will render with the torch backend: {why}", flush=True)
    env = child_environment(a.jobs)
    t0 = time.time()
    pending, active, failed = list(jobs), [], []
    while pending or active:
        while pending and len(active) < a.jobs:
            if a.budget_s is not None and time.time() - t0 > a.budget_s:
                skipped = [f"{v}-g{g}" for v, g, _ in pending]
                print(f"budget spent: not started {skipped}", flush=True)
                failed += skipped
                pending = []
                break
            v, g, cs = pending.pop(0)
            out = a.out / f"{v}-g{g}"
            log = open(a.out / f"{v}-g{g}.log", "w")  # noqa: SIM115 (closed when the job ends)
            cmd = _command(a, v, cs, out)
            if a.overwrite:
                cmd.append("--overwrite")
            active.append(
                (
                    f"{v}-g{g}",
                    subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env),
                    log,
                )
            )
        time.sleep(0.5)
        for item in list(active):
            name, proc, log = item
            if proc.poll() is not None:
                active.remove(item)
                log.close()
                state = "done" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
                print(f"[{time.time() - t0:.0f} s] {name} {state}", flush=True)
                if proc.returncode:
                    failed.append(name)
    results = {v: _read(a.out, v, len(groups)) for v in variants}
    summary = summarise(results)
    report = {
        "data": str(a.data),
        "teacher": a.teacher,
        "preset": a.preset,
        "overrides": a.set,
        "seeds": a.seeds,
        "device": a.device,
        "failed": failed,
        "resumed": kept,
        "wall_s": time.time() - t0,
        **summary,
        "objects": {v: r["objects"] for v, r in results.items()},
    }
    atomic_write_text(a.out / "results.json", json.dumps(report, indent=1) + "\n")
    for v, row in summary["table"].items():
        geo = row.get("geometry") or {}
        extra = "".join(f" {k} {val:.4f}" for k, val in geo.items())
        print(
            f"{v}: PSNR {row['psnr']:.2f} (seed std {row['psnr_seed_std']:.2f}) "
            f"SSIM {row['ssim']:.3f}{extra}"
        )
    for label, o in summary["orderings"].items():
        print(
            f"{label}: {o['mean_difference_db']:+.2f} dB, {o['objects_better']}/{o['objects']} "
            f"objects, holds {o['holds']}, beyond the seed spread {o['beyond_spread']}"
        )
    return report


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
