"""The device job that runs GECO's Table 2 in segments (tools/device/jobs): the commands it
builds and what a segment brings back."""

from __future__ import annotations

import json
import subprocess
import tarfile

from device_jobs import collect, fake_python3, flag_value, job_args, python3_calls
from isolated import ROOT

JOB = ROOT / "tools" / "device" / "jobs" / "geco.sh"
COLLECT = ROOT / "tools" / "device" / "jobs" / "geco-collect.sh"


def test_seed_zero_on_the_carried_teacher_with_the_whole_schedule(tmp_path):
    args = job_args(JOB, tmp_path, tmp_path, {})
    assert args[0].endswith("gs-method-geco/scripts/train_small.py")
    assert args[1] == ".teacher/zero123plus.safetensors"
    assert flag_value(args, "--out") == "/tmp/geco/seed0"
    assert flag_value(args, "--view-size") == "64" and flag_value(args, "--seed") == "0"
    assert "--budget-s" not in args and "--data" not in args  # the whole schedule, its own data


def test_later_seeds_follow_on_the_first_ones_data_with_one_json_budget(tmp_path):
    budget = '{"reconstructor": 150, "stage1": 200, "stage2": 110}'
    path, record = fake_python3(tmp_path)
    env = {
        **path,
        "SEEDS": "2 3",
        "BUDGET": budget,
        "GECO_ROOT": "/x",
        "GECO_ARGS": "--lgm-steps 9",
    }
    subprocess.run(["bash", str(JOB)], cwd=tmp_path, env=env, check=True)
    first, second = python3_calls(record)
    assert flag_value(first, "--seed") == "2" and flag_value(first, "--out") == "/x/seed2"
    assert "--data" not in first
    assert flag_value(second, "--seed") == "3" and flag_value(second, "--out") == "/x/seed3"
    assert flag_value(second, "--data") == "/x/seed2/data/train"
    assert flag_value(second, "--eval-data") == "/x/seed2/data/procedural-eval"
    for args in (first, second):
        assert json.loads(flag_value(args, "--budget-s")) == json.loads(budget)
        assert args[-2:] == ["--lgm-steps", "9"]


def test_a_teacher_trained_in_the_first_seed_serves_the_later_ones(tmp_path):
    path, record = fake_python3(tmp_path)
    env = {
        **path,
        "SEEDS": "0 1",
        "GECO_ROOT": "/x",
        "TRAIN_TEACHER": "600",
        "TEACHER_ARGS": "--teacher-preset compact --teacher-init-from pack.safetensors",
        "GECO_ARGS": "--lgm-steps 9",
    }
    subprocess.run(["bash", str(JOB)], cwd=tmp_path, env=env, check=True)
    first, second = python3_calls(record)
    assert flag_value(first, "--train-teacher") == "600"
    assert flag_value(first, "--teacher-preset") == "compact"
    assert flag_value(first, "--teacher-init-from") == "pack.safetensors"
    assert ".teacher/zero123plus.safetensors" not in first
    assert second[1] == "/x/seed0/teacher/work/zero123plus/fp16"
    assert "--train-teacher" not in second and "--teacher-preset" not in second
    assert first[-2:] == second[-2:] == ["--lgm-steps", "9"]


def test_a_failed_seed_stops_the_job(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f"#!/bin/sh\necho run >> {tmp_path / 'calls'}\nexit 4\n")
    (bin_dir / "python3").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SEEDS": "0 1"}
    r = subprocess.run(["bash", str(JOB)], cwd=tmp_path, env=env)
    assert r.returncode == 4
    assert (tmp_path / "calls").read_text().split() == ["run"]


def test_collect_brings_back_partial_records_then_results_and_sheets(tmp_path):
    root, job, out = tmp_path / "geco", tmp_path / "g", tmp_path / "out"
    done, running = root / "seed0", root / "seed1"
    running.mkdir(parents=True)
    job.mkdir()
    (job / "job.log").write_text("log")
    env = {"GECO_ROOT": str(root), "JOB_ROOT": str(job)}
    assert collect(COLLECT, out, **env) == ["job.log"]  # nothing written yet
    (running / "results.partial.json").write_text('{"stages": {}}')
    (done / "eval" / "geco").mkdir(parents=True)
    (done / "eval" / "geco" / "object-000.png").write_bytes(b"png")
    (done / "results.json").write_text('{"table2": {}}')
    names = collect(COLLECT, out, **env)
    assert names == [
        "eval-seed0.tar",
        "job.log",
        "results-seed0.json",
        "results-seed1.partial.json",
    ]
    with tarfile.open(out / "r" / "eval-seed0.tar") as tar:
        assert "eval/geco/object-000.png" in tar.getnames()
    # A teacher trained in the lease comes back once its run has written its record.
    teacher = done / "teacher" / "out"
    teacher.mkdir(parents=True)
    (teacher / "zero123plus.safetensors").write_bytes(b"pack")
    assert "teacher-seed0.safetensors" not in collect(COLLECT, tmp_path / "out2", **env)
    (teacher / "results.json").write_text('{"teachers": {}}')
    (teacher / "zero123plus-samples.png").write_bytes(b"png")
    names = collect(COLLECT, tmp_path / "out3", **env)
    assert {"teacher-seed0.json", "teacher-seed0.png", "teacher-seed0.safetensors"} <= set(names)
    assert (tmp_path / "out3" / "r" / "teacher-seed0.safetensors").read_bytes() == b"pack"
