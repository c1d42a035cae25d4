"""The device job that trains procedural teachers in segments (tools/device/jobs): the command it
builds for one or several teachers, and what a segment brings back for the next to resume."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from device_jobs import (
    TEACHER_LEFT_OUT,
    collect,
    fake_python3,
    flag_value,
    hiding_environment,
    job_args,
    python3_calls,
)
from isolated import ROOT

JOB = ROOT / "tools" / "device" / "jobs" / "teacher.sh"
COLLECT = ROOT / "tools" / "device" / "jobs" / "teacher-collect.sh"


def _job_args(tmp_path: Path, env: dict[str, str], packs: tuple[str, ...] = ()) -> list[str]:
    """The arguments teacher.sh passes to python3, with ``packs`` carried in .teacher."""
    tree = tmp_path / "tree"
    (tree / ".teacher").mkdir(parents=True)
    for name in packs:
        (tree / ".teacher" / f"{name}.safetensors").write_bytes(b"x")
    return job_args(JOB, tree, tmp_path, {"TEACHER_ROOT": str(tmp_path / "t"), **env})


def test_one_teacher_from_scratch(tmp_path):
    args = _job_args(tmp_path, {"TEACHER": "zero123", "SECONDS_TRAIN": "600"})
    assert args[0].endswith("train_procedural_teachers.py")
    assert flag_value(args, "--gpus") == "0"
    assert flag_value(args, "--priors") == "zero123"
    assert json.loads(flag_value(args, "--seconds")) == {"zero123": 600}
    assert "--compile-graphs" in args and "--resume" not in args


def test_two_teachers_share_the_gpu_and_resume_from_one_pack(tmp_path):
    args = _job_args(
        tmp_path,
        {"TEACHER": "zero123 imagedream", "SECONDS_TRAIN": '{"zero123": 500, "imagedream": 1300}'},
        packs=("zero123",),
    )
    assert flag_value(args, "--gpus") == "0,0"
    i = args.index("--priors")
    assert args[i + 1 : i + 3] == ["zero123", "imagedream"]
    assert json.loads(flag_value(args, "--seconds")) == {"zero123": 500, "imagedream": 1300}
    assert flag_value(args, "--resume") == ".teacher"


def test_the_compact_pack_in_the_repository_continues_in_place(tmp_path):
    tracked = tmp_path / "tree" / "packages" / "gs-priors" / "teachers"
    tracked.mkdir(parents=True)
    (tracked / "imagedream.safetensors").write_bytes(b"x")
    env = {
        "TEACHER": "imagedream",
        "RESUME_DIR": "packages/gs-priors/teachers",
        "TEACHER_ARGS": "--preset compact --set cooldown=0.3",
    }
    args = _job_args(tmp_path, env)
    assert flag_value(args, "--resume") == "packages/gs-priors/teachers"
    assert flag_value(args, "--preset") == "compact"
    (tmp_path / "empty").mkdir()
    env["RESUME_DIR"] = "nowhere"
    assert "--resume" not in _job_args(tmp_path / "empty", env)


def test_two_gpus_give_each_teacher_its_own(tmp_path):
    args = _job_args(tmp_path, {"TEACHER": "imagedream zero123plus", "TEACHER_GPU": "0,1"})
    assert flag_value(args, "--gpus") == "0,1"
    i = args.index("--priors")
    assert args[i + 1 : i + 3] == ["imagedream", "zero123plus"]


def test_cpu_mode_names_the_cpu_once(tmp_path):
    args = _job_args(
        tmp_path,
        {
            "TEACHER": "zero123 imagedream",
            "SECONDS_TRAIN": "4",
            "TEACHER_GPU": "cpu",
            "COMPILE": "",
            "TEACHER_ARGS": "--preset tiny",
        },
    )
    assert flag_value(args, "--gpus") == "cpu"
    assert json.loads(flag_value(args, "--seconds")) == {"zero123": 4, "imagedream": 4}
    assert "--compile-graphs" not in args and flag_value(args, "--preset") == "tiny"


def test_collect_brings_back_each_pack_in_parts(tmp_path):
    root, job, out = tmp_path / "t", tmp_path / "g", tmp_path / "out"
    big = os.urandom(15_000_000 + 1234)
    (root / "out").mkdir(parents=True)
    (root / "out" / "zero123.safetensors").write_bytes(big)  # the final pack wins
    (root / "work" / "zero123").mkdir(parents=True)
    (root / "work" / "zero123" / "zero123.safetensors").write_bytes(b"older")
    (root / "work" / "zero123" / "result.json").write_text("{}")
    (root / "work" / "imagedream").mkdir(parents=True)
    (root / "work" / "imagedream" / "imagedream.safetensors").write_bytes(b"checkpoint")
    (root / "out" / "results.json").write_text("{}")
    job.mkdir()
    (job / "job.log").write_text("log")
    env = {"TEACHER": "zero123 imagedream", "TEACHER_ROOT": str(root), "JOB_ROOT": str(job)}
    got = collect(COLLECT, out, **env)
    # done: results.json holds every teacher's result, so no NAME-result.json beside it (two
    # teachers' four parts, results, job.log and wait.sh's smi.log: 7 of the 8 files returned)
    assert got == [
        "imagedream.safetensors.part-00",
        "job.log",
        "results.json",
        "zero123.safetensors.part-00",
        "zero123.safetensors.part-01",
    ]
    parts = sorted((out / "r").glob("zero123.safetensors.part-*"))
    assert b"".join(p.read_bytes() for p in parts) == big
    assert all(p.stat().st_size < 16 * 2**20 for p in parts)
    # still running: each finished teacher's own result comes back
    (root / "out" / "results.json").unlink()
    for p in (out / "r").iterdir():
        p.unlink()
    got = collect(COLLECT, out, **env)
    assert "zero123-result.json" in got and "results.json" not in got


def test_teacher_args_reach_the_script_as_separate_flags(tmp_path):
    args = _job_args(
        tmp_path,
        {
            "TEACHER": "zero123 imagedream",
            "TEACHER_ARGS": "--set zero123:cooldown=1 --set imagedream:cooldown=0.3 --guidance 5",
        },
    )
    tail = args[-6:]
    assert tail == [
        "--set", "zero123:cooldown=1", "--set", "imagedream:cooldown=0.3", "--guidance", "5",
    ]  # fmt: skip


def test_a_zero123plus_lease_warm_starts_from_the_carried_zero123_pack(tmp_path):
    # The fourteenth run (gs-priors docs/teacher-runs.md): Zero123++ on the Zero123 pack's VAE, its U-Net and
    # CLIP tower copied from that pack (--init-from), the pack itself not trained.
    args = _job_args(
        tmp_path,
        {
            "TEACHER": "zero123plus",
            "SECONDS_TRAIN": "1100",
            "TEACHER_ARGS": "--set cooldown=0.3 --init-from .teacher/zero123.safetensors",
        },
        packs=("zero123",),
    )
    assert flag_value(args, "--priors") == "zero123plus" and "zero123" not in args
    assert json.loads(flag_value(args, "--seconds")) == {"zero123plus": 1100}
    assert flag_value(args, "--resume") == ".teacher"
    assert args[-4:] == ["--set", "cooldown=0.3", "--init-from", ".teacher/zero123.safetensors"]


def test_a_brought_back_pack_is_evaluated_alone(tmp_path):
    # The command for a pack whose lease ended before its evaluation (gs-priors docs/teacher-runs.md).
    args = _job_args(
        tmp_path, {"TEACHER": "zero123", "TEACHER_ARGS": "--eval-only"}, packs=("zero123",)
    )
    assert flag_value(args, "--resume") == ".teacher" and args[-1] == "--eval-only"


def test_a_new_teacher_beside_another_pack_resumes_for_its_vae_and_evaluates_it(tmp_path):
    # ImageDream from scratch on Zero123's carried VAE, and Zero123's pack evaluated beside it.
    tree = tmp_path / "tree"
    (tree / ".teacher").mkdir(parents=True)
    (tree / ".teacher" / "zero123.safetensors").write_bytes(b"x")
    path, record = fake_python3(tmp_path)
    env = {**path, "TEACHER": "imagedream", "TEACHER_GPU": "1", "EVAL_ALSO": "zero123"}
    env["EVAL_ARGS"] = "--eval-sampler ddpm --guidance 2,3"  # the evaluation's own flags
    env |= {"JOB_ROOT": str(tmp_path), "TEACHER_ROOT": str(tmp_path / "t")}
    subprocess.run(["bash", str(JOB)], cwd=tree, env=env, check=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(python3_calls(record)) < 2:
        time.sleep(0.1)  # the evaluation runs in the background
    calls = python3_calls(record)
    train = next(c for c in calls if "--eval-only" not in c)
    ev = next(c for c in calls if "--eval-only" in c)
    assert flag_value(train, "--priors") == "imagedream"
    assert flag_value(train, "--resume") == ".teacher"
    assert flag_value(ev, "--priors") == "zero123" and flag_value(ev, "--gpus") == "1"
    assert flag_value(ev, "--resume") == ".teacher"
    assert flag_value(ev, "--out") != flag_value(train, "--out")
    assert ev[-4:] == ["--eval-sampler", "ddpm", "--guidance", "2,3"]
    assert "--eval-sampler" not in train


def test_collect_brings_back_the_evaluation_beside_the_training(tmp_path):
    root, job, out = tmp_path / "t", tmp_path / "g", tmp_path / "out"
    (root / "eval-out").mkdir(parents=True)
    (root / "eval-out" / "results.json").write_text('{"teachers": {}}')
    job.mkdir()
    collect(COLLECT, out, TEACHER="imagedream", TEACHER_ROOT=str(root), JOB_ROOT=str(job))
    assert (out / "r" / "eval-results.json").read_text() == '{"teachers": {}}'


def test_collect_brings_back_the_sample_sheet_of_a_teacher_trained_alone(tmp_path):
    root, job, out = tmp_path / "t", tmp_path / "g", tmp_path / "out"
    (root / "out").mkdir(parents=True)
    for name in ("zero123plus", "imagedream"):
        (root / "out" / f"{name}.safetensors").write_bytes(b"pack")
        (root / "out" / f"{name}-samples.png").write_bytes(b"png")
    (root / "out" / "results.json").write_text("{}")
    job.mkdir()
    env = {"TEACHER_ROOT": str(root), "JOB_ROOT": str(job)}
    got = collect(COLLECT, out, TEACHER="zero123plus", **env)
    assert "zero123plus-samples.png" in got and "imagedream-samples.png" not in got
    # two teachers: their parts, results and logs fill the eight files a call brings back
    got = collect(COLLECT, tmp_path / "out2", TEACHER="zero123plus imagedream", **env)
    assert not [n for n in got if n.endswith(".png")]
    assert "imagedream.safetensors.part-00" in got


def test_collect_without_teacher_finds_the_job_s_teachers_in_its_work_folder(tmp_path):
    # Session 45: a follow-up call left TEACHER out, the collect looked for zero123 only, and
    # the finished ImageDream pack stayed on the machine.
    root, job, out = tmp_path / "t", tmp_path / "g", tmp_path / "out"
    (root / "out").mkdir(parents=True)
    (root / "work" / "imagedream").mkdir(parents=True)
    (root / "work" / "imagedream" / "imagedream.safetensors").write_bytes(b"checkpoint")
    (root / "work" / "vae").mkdir()  # a folder without a pack of its name is no teacher
    (root / "out" / "imagedream.safetensors").write_bytes(b"final pack")
    (root / "out" / "imagedream-samples.png").write_bytes(b"png")
    (root / "out" / "results.json").write_text("{}")
    job.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "TEACHER"}
    env.update(OUT=str(out), TEACHER_ROOT=str(root), JOB_ROOT=str(job))
    (out / "r").mkdir(parents=True)
    subprocess.run(["bash", str(COLLECT)], env=env, check=True)
    got = sorted(p.name for p in (out / "r").iterdir())
    assert got == ["imagedream-samples.png", "imagedream.safetensors.part-00", "results.json"]
    assert (out / "r" / "imagedream.safetensors.part-00").read_bytes() == b"final pack"


def test_a_second_stage_continues_the_first_stage_s_pack(tmp_path):
    # The gs-priors README's compact Zero123 in one lease ("Rebuilding the packs"): 1,000 s
    # warm-started from the tracked ImageDream, then 300 s from that pack with the learning
    # rate's warm-up and cooldown again.
    tree, root = tmp_path / "tree", tmp_path / "t"
    tree.mkdir()
    for earlier in ("out", "stage1"):  # an earlier job's folders on a machine still warm
        (root / earlier).mkdir(parents=True)
        (root / earlier / "results.json").write_text(f"the earlier {earlier}")
    path, record = fake_python3(tmp_path)
    packing = tmp_path / "packing"  # python3 that also packs zero123 into its --out, as the script
    packing.mkdir()
    (packing / "python3").write_text(
        "#!/bin/bash\n"
        f'{path["PATH"].split(os.pathsep)[0]}/python3 "$@"\n'
        'while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done\n'
        'mkdir -p "$out" && echo "pack of call $(grep -c -- --end-of-call-- '
        f'{record})" > "$out/zero123.safetensors"\n'
    )
    (packing / "python3").chmod(0o755)
    env = {
        "PATH": f"{packing}{os.pathsep}{path['PATH']}",
        "TEACHER": "zero123",
        "TEACHER_ROOT": str(root),
        "SECONDS_TRAIN": "1000",
        "TEACHER_ARGS": "--preset compact --set cooldown=0.3",
        "THEN_SECONDS": "300",
        "THEN_ARGS": "--preset compact --set cooldown=1",
    }
    subprocess.run(["bash", str(JOB)], cwd=tree, env=env, check=True)
    first, second = python3_calls(record)
    assert json.loads(flag_value(first, "--seconds")) == {"zero123": 1000}
    assert first[-4:] == ["--preset", "compact", "--set", "cooldown=0.3"]
    assert json.loads(flag_value(second, "--seconds")) == {"zero123": 300}
    assert flag_value(second, "--resume") == str(root / "stage1")
    assert flag_value(second, "--work") == flag_value(first, "--work")  # data and VAE reused
    assert flag_value(first, "--out") == flag_value(second, "--out") == str(root / "out")
    assert second[-4:] == ["--preset", "compact", "--set", "cooldown=1"]
    assert "--vae-seconds" not in second and "--compile-graphs" in second
    assert (root / "stage1" / "zero123.safetensors").read_text() == "pack of call 1\n"
    assert (root / "out" / "zero123.safetensors").read_text() == "pack of call 2\n"
    kept = sorted(p.name for p in root.iterdir() if p.name.startswith(("out.", "stage1.")))
    assert [k.split(".")[0] for k in kept] == ["out", "stage1"]  # nothing of the earlier job lost
    assert {(root / k / "results.json").read_text() for k in kept} == {
        "the earlier out",
        "the earlier stage1",
    }


def test_no_second_stage_without_the_first_stage_s_pack(tmp_path):
    tree, root = tmp_path / "tree", tmp_path / "t"
    tree.mkdir()
    path, record = fake_python3(tmp_path)
    env = {**path, "TEACHER": "zero123", "TEACHER_ROOT": str(root), "THEN_SECONDS": "300"}
    (root / "out").mkdir(parents=True)
    (root / "out" / "zero123.safetensors").write_bytes(b"an earlier job's, set aside")
    done = subprocess.run(["bash", str(JOB)], cwd=tree, env=env, capture_output=True, text=True)
    assert done.returncode == 4 and "no " + str(root / "out" / "zero123.safetensors") in done.stderr
    assert len(python3_calls(record)) == 1


def test_collect_brings_back_the_first_stage_s_results(tmp_path):
    root, job, out = tmp_path / "t", tmp_path / "g", tmp_path / "out"
    (root / "stage1").mkdir(parents=True)
    (root / "stage1" / "results.json").write_text('{"stage": 1}')
    (root / "work" / "zero123").mkdir(parents=True)
    (root / "work" / "zero123" / "zero123.safetensors").write_bytes(b"stage 2 checkpoint")
    job.mkdir()
    got = collect(COLLECT, out, TEACHER="zero123", TEACHER_ROOT=str(root), JOB_ROOT=str(job))
    assert "stage1-results.json" in got and "zero123.safetensors.part-00" in got
    assert (out / "r" / "stage1-results.json").read_text() == '{"stage": 1}'


def _tiny_teachers_without(hidden: tuple[str, ...], tmp_path: Path) -> subprocess.CompletedProcess:
    """The teacher script end to end on the CPU (data, VAE, the three teachers, evaluation,
    sheet) with ``hidden`` modules not importable."""
    import sys

    script = ROOT / "packages" / "gs-priors" / "scripts" / "train_procedural_teachers.py"
    cmd = [
        sys.executable, str(script), "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o"),
        "--preset", "tiny", "--gpus", "cpu", "--steps", "2", "--vae-steps", "2", "--seeds", "1",
        "--eval-steps", "1", "--eval-pairs", "2", "--objects", "2", "--sheet", "1",
    ]  # fmt: skip
    env = hiding_environment(tmp_path / "site", hidden)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_teacher_wheels_leave_out_only_what_the_teachers_do_not_use(tmp_path):
    text = (ROOT / "tools" / "device" / "min-wheels.sh").read_text()
    for wheel in ("open_clip_torch", "lpips", "gsplat", "plyfile"):
        assert f"{wheel}-*" in text
    r = _tiny_teachers_without(TEACHER_LEFT_OUT, tmp_path / "teacher")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    results = json.loads((tmp_path / "teacher" / "o" / "results.json").read_text())
    assert results["exit_codes"] == [0]
    # the hiding is real: without a wheel the teachers need, the same run fails
    r = _tiny_teachers_without(("diffusers",), tmp_path / "needed")
    assert r.returncode != 0
