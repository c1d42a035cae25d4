"""Helpers of the device jobs' tests (tools/device/jobs): a job script run with a stand-in
python3 that records its arguments, and a collect script run against fake job folders."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path


def job_args(script: Path, cwd: Path, tmp_path: Path, env: dict[str, str]) -> list[str]:
    """The arguments ``script`` passes to python3, read by a stand-in python3 on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python3"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {shlex.quote(str(tmp_path / "args"))}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    full = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **env}
    subprocess.run(["bash", str(script)], cwd=cwd, env=full, check=True)
    return (tmp_path / "args").read_text().splitlines()


def flag_value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def collect(script: Path, out: Path, **env: str) -> list[str]:
    """Runs a collect ``script`` with ``$OUT`` = ``out``; the names it put under ``out/r``."""
    (out / "r").mkdir(parents=True, exist_ok=True)
    subprocess.run(["bash", str(script)], env={**os.environ, "OUT": str(out), **env}, check=True)
    return sorted(p.name for p in (out / "r").iterdir())
