"""tools/device/segment.sh on this machine, with a job folder of its own (JOB_ROOT) and a job
that ends at once: it starts a job, follows it, and starts the next one on a machine still warm
from a finished job (session 60's FIRST=1 call followed the finished job instead)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from isolated import ROOT


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "tools" / "device").mkdir(parents=True)
    for name in ("segment.sh", "job.sh", "wait.sh"):
        shutil.copy(ROOT / "tools" / "device" / name, tree / "tools" / "device" / name)
    (tree / "tools" / "device" / "env.sh").write_text("true  # no wheels to install here\n")
    (tree / "cmd.sh").write_text('echo "the job ran: $MARK"\n')
    return tree


def _segment(tree: Path, tmp_path: Path, mark: str, **env: str) -> str:
    env = {**os.environ, "JOB_ROOT": str(tmp_path / "g"), "OUT": str(tmp_path / "out"), **env}
    env["MARK"] = mark
    done = subprocess.run(
        ["bash", "tools/device/segment.sh", "cmd.sh", "30"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_first_starts_a_job_and_a_later_first_starts_the_next(tmp_path):
    tree = _tree(tmp_path)
    g = tmp_path / "g"
    out = _segment(tree, tmp_path, "one", FIRST="1")
    assert "segment: starting cmd.sh" in out and (g / "done").exists()
    assert (g / "job.log").read_text() == "the job ran: one\n" and (g / "rc").read_text() == "0\n"
    # a call without FIRST=1 follows the job on this machine (here: done, so it returns at once)
    out = _segment(tree, tmp_path, "not started", RESUME_FILE="missing")
    assert "following the job" in out and "not started" not in (g / "job.log").read_text()
    # FIRST=1 on a machine whose job is over: the next job, the previous one's folder kept
    out = _segment(tree, tmp_path, "two", FIRST="1")
    assert "the previous job on this machine is over" in out and "starting cmd.sh" in out
    assert (g / "job.log").read_text() == "the job ran: two\n"
    (kept,) = tmp_path.glob("g.*")
    assert (kept / "job.log").read_text() == "the job ran: one\n"


def test_without_first_on_a_fresh_machine_it_exits_at_once(tmp_path):
    tree = _tree(tmp_path)
    env = {**os.environ, "JOB_ROOT": str(tmp_path / "g"), "OUT": str(tmp_path / "out")}
    env.pop("FIRST", None)
    done = subprocess.run(
        ["bash", "tools/device/segment.sh", "cmd.sh", "30"],
        cwd=tree,
        env={**env, "RESUME_FILE": str(tmp_path / "nothing")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3 and "nothing to resume from" in done.stderr
    assert not (tmp_path / "g").exists()
