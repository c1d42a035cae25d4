"""Helpers of the device jobs' tests (tools/device/jobs): a job script run with a stand-in
python3 that records its arguments, and a collect script run against fake job folders."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

END = "--end-of-call--"


def fake_python3(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A stand-in python3 on PATH that appends each call's arguments, one per line and the call
    closed by ``END``, to the returned record file; the environment that puts it first."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "calls"
    fake = bin_dir / "python3"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" {END} >> {shlex.quote(str(record))}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, record


def python3_calls(record: Path) -> list[list[str]]:
    """The calls ``fake_python3`` recorded, each as its argument list."""
    calls, call = [], []
    for line in record.read_text().splitlines() if record.exists() else []:
        if line == END:
            calls.append(call)
            call = []
        else:
            call.append(line)
    return calls


def job_args(script: Path, cwd: Path, tmp_path: Path, env: dict[str, str]) -> list[str]:
    """The arguments ``script`` passes to python3 (its one call), read by ``fake_python3``."""
    path, record = fake_python3(tmp_path)
    subprocess.run(["bash", str(script)], cwd=cwd, env={**path, **env}, check=True)
    (call,) = python3_calls(record)
    return call


def flag_value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def collect(script: Path, out: Path, **env: str) -> list[str]:
    """Runs a collect ``script`` with ``$OUT`` = ``out``; the names it put under ``out/r``."""
    (out / "r").mkdir(parents=True, exist_ok=True)
    subprocess.run(["bash", str(script)], env={**os.environ, "OUT": str(out), **env}, check=True)
    return sorted(p.name for p in (out / "r").iterdir())


# The wheels tools/device/min-wheels.sh leaves out of .whl-min, by the modules they provide;
# its `teacher` variant (.whl-teacher) leaves out gsplat and plyfile too.
MIN_LEFT_OUT = ("open_clip", "ftfy", "wcwidth", "trimesh", "mcubes", "xatlas", "lpips")
TEACHER_LEFT_OUT = (*MIN_LEFT_OUT, "gsplat", "plyfile")

_HIDE = """
import sys

class Hide:  # as on a device machine given fewer wheels: the left-out modules are not found
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {hidden!r}:
            return None
        find = getattr(self.finder, "find_spec", None)
        return find(name, path, target) if find else None
    def __getattr__(self, attr):
        return getattr(self.finder, attr)

sys.meta_path[:] = [Hide(f) for f in sys.meta_path]
"""


def hiding_environment(site: Path, hidden: tuple[str, ...]) -> dict[str, str]:
    """The environment in which a Python process cannot import the top-level modules ``hidden``
    (a ``sitecustomize`` written into ``site``), as on a device machine given .whl-min or
    .whl-teacher (tools/device/min-wheels.sh)."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(_HIDE.format(hidden=set(hidden)))
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}
