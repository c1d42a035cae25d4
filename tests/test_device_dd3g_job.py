"""The device job that trains DD3G's procedural tables in segments (tools/device/jobs): the
command it builds and what a segment brings back for scripts/summarise_runs.py."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import tarfile
from pathlib import Path

from isolated import ROOT

JOB = ROOT / "tools" / "device" / "jobs" / "dd3g.sh"
COLLECT = ROOT / "tools" / "device" / "jobs" / "dd3g-collect.sh"


def _job_args(tmp_path: Path, env: dict[str, str]) -> list[str]:
    """The arguments dd3g.sh passes to python3, read by a stand-in python3 on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python3"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {shlex.quote(str(tmp_path / "args"))}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    full = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **env}
    subprocess.run(["bash", str(JOB)], cwd=tmp_path, env=full, check=True)
    return (tmp_path / "args").read_text().splitlines()


def _value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_table_iii_by_default_one_run_per_job(tmp_path):
    args = _job_args(tmp_path, {})
    assert args[0].endswith("gs-method-dd3g/scripts/train_small.py")
    assert _value(args, "--teacher") == ".teacher/imagedream.safetensors"
    assert _value(args, "--variants") == "pepd_joint,pepd_es,pepd_iv"
    assert _value(args, "--steps") == "3000" and _value(args, "--eval-every") == "1000"
    assert _value(args, "--first-seed") == "0" and _value(args, "--jobs") == "3"


def test_a_later_lease_trains_other_variants_and_seeds_at_once(tmp_path):
    args = _job_args(
        tmp_path,
        {
            "VARIANTS": "hybrid_es,splatter_es,pd_es",
            "FIRST_SEED": "1",
            "SEEDS": "2",
            "DD3G_ARGS": "--set iv_random_background=false",
        },
    )
    assert _value(args, "--variants") == "hybrid_es,splatter_es,pd_es"
    assert _value(args, "--first-seed") == "1" and _value(args, "--seeds") == "2"
    assert _value(args, "--jobs") == "6"  # every run of the lease at once
    assert args[-2:] == ["--set", "iv_random_background=false"]


def test_collect_brings_back_the_records_then_the_results(tmp_path):
    root, job, out = tmp_path / "d", tmp_path / "g", tmp_path / "out"
    runs = root / "out" / "work" / "runs"
    runs.mkdir(parents=True)
    (runs / "setup.json").write_text("{}")
    (runs / "pepd_es-0.json").write_text('{"evals": []}')
    job.mkdir()
    (job / "job.log").write_text("log")
    (out / "r").mkdir(parents=True)
    env = {**os.environ, "OUT": str(out), "DD3G_ROOT": str(root), "JOB_ROOT": str(job)}
    subprocess.run(["bash", str(COLLECT)], env=env, check=True)
    assert sorted(p.name for p in (out / "r").iterdir()) == ["job.log", "runs.tar"]
    with tarfile.open(out / "r" / "runs.tar") as tar:
        assert sorted(tar.getnames()) == ["runs", "runs/pepd_es-0.json", "runs/setup.json"]
    for p in (out / "r").iterdir():
        p.unlink()
    (root / "out" / "results.json").write_text('{"tables": {}}')
    subprocess.run(["bash", str(COLLECT)], env=env, check=True)
    assert sorted(p.name for p in (out / "r").iterdir()) == ["job.log", "results.json"]
