"""The device job that trains DD3G's procedural tables in segments (tools/device/jobs): the
command it builds and what a segment brings back for scripts/summarise_runs.py."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

from device_jobs import MIN_LEFT_OUT, collect, flag_value, hiding_environment, job_args
from isolated import ROOT

JOB = ROOT / "tools" / "device" / "jobs" / "dd3g.sh"
COLLECT = ROOT / "tools" / "device" / "jobs" / "dd3g-collect.sh"


def _job_args(tmp_path: Path, env: dict[str, str]) -> list[str]:
    return job_args(JOB, tmp_path, tmp_path, env)


def test_table_iii_by_default_one_run_per_job(tmp_path):
    args = _job_args(tmp_path, {})
    assert args[0].endswith("gs-method-dd3g/scripts/train_small.py")
    # The compact teacher tracked in the repository: a lease carries none.
    teacher = flag_value(args, "--teacher")
    assert teacher == "packages/gs-priors/teachers/imagedream.safetensors"
    assert (ROOT / teacher).is_file()
    (tmp_path / "other").mkdir()
    other = _job_args(tmp_path / "other", {"TEACHER_FILE": ".teacher/imagedream.safetensors"})
    assert flag_value(other, "--teacher") == ".teacher/imagedream.safetensors"
    assert flag_value(args, "--variants") == "pepd_joint,pepd_es,pepd_iv"
    assert flag_value(args, "--steps") == "3000" and flag_value(args, "--eval-every") == "1000"
    assert flag_value(args, "--first-seed") == "0" and flag_value(args, "--jobs") == "0"


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
    assert flag_value(args, "--variants") == "hybrid_es,splatter_es,pd_es"
    assert flag_value(args, "--first-seed") == "1" and flag_value(args, "--seeds") == "2"
    assert flag_value(args, "--jobs") == "0"  # every run of the lease at once: train_small counts
    assert args[-2:] == ["--set", "iv_random_background=false"]
    (tmp_path / "probe").mkdir()
    probe = "splatter_es+splatter.down_channels=[24,48]"  # a list value's comma is no new run
    args = _job_args(tmp_path / "probe", {"VARIANTS": f"pd_es,{probe}", "SEEDS": "2"})
    assert flag_value(args, "--variants") == f"pd_es,{probe}"
    (tmp_path / "more").mkdir()  # one row with more seeds than the others, a probe with fewer
    # A file its list value matches as a glob ([24,48] is a bracket expression) changes nothing.
    (tmp_path / "more" / "splatter_es+splatter.down_channels=2=1").touch()
    args = _job_args(
        tmp_path / "more",
        {"VARIANTS": f"pd_es,{probe}", "SEEDS": "2", "SEEDS_OF": f"pd_es=4 {probe}=1"},
    )
    assert [args[i + 1] for i, a in enumerate(args) if a == "--seeds-of"] == [
        "pd_es=4",
        f"{probe}=1",
    ]


def test_a_budget_lets_the_probe_set_equal_steps_for_all_six(tmp_path):
    six = "pepd_joint,pepd_es,pepd_iv,hybrid_es,splatter_es,pd_es"
    args = _job_args(tmp_path, {"VARIANTS": six, "BUDGET_S": "1200"})
    assert flag_value(args, "--budget-s") == "1200" and flag_value(args, "--evals") == "4"
    assert "--steps" not in args and "--eval-every" not in args
    assert flag_value(args, "--jobs") == "0"
    (tmp_path / "again").mkdir()
    args = _job_args(tmp_path / "again", {"VARIANTS": six, "BUDGET_S": "900", "EVALS": "3"})
    assert flag_value(args, "--evals") == "3"


def test_collect_brings_back_the_records_then_the_results(tmp_path):
    root, job, out = tmp_path / "d", tmp_path / "g", tmp_path / "out"
    runs = root / "out" / "work" / "runs"
    runs.mkdir(parents=True)
    (runs / "setup.json").write_text("{}")
    (runs / "pepd_es-0.json").write_text('{"evals": []}')
    job.mkdir()
    (job / "job.log").write_text("log")
    env = {"DD3G_ROOT": str(root), "JOB_ROOT": str(job)}
    assert collect(COLLECT, out, **env) == ["job.log", "runs.tar"]
    with tarfile.open(out / "r" / "runs.tar") as tar:
        assert sorted(tar.getnames()) == ["runs", "runs/pepd_es-0.json", "runs/setup.json"]
    for p in (out / "r").iterdir():
        p.unlink()
    (root / "out" / "results.json").write_text('{"tables": {}}')
    assert collect(COLLECT, out, **env) == ["job.log", "results.json"]


def test_collect_brings_back_the_checkpoints_asked_for(tmp_path):
    root, job, out = tmp_path / "d", tmp_path / "g", tmp_path / "out"
    (root / "out").mkdir(parents=True)
    (root / "out" / "results.json").write_text("{}")
    probe = "pepd_joint+eta=0.1+splatter.down_channels=[24,48]"  # a list value's comma
    for name, size in (("pepd_es", 1000), (probe, 1000), ("splatter_es", 17 * 2**20)):
        ckpt = root / "out" / "checkpoints" / name
        ckpt.mkdir(parents=True)
        (ckpt / "config.json").write_text("{}")
        (ckpt / "model.safetensors").write_bytes(b"\0" * size)
    job.mkdir()
    env = {"DD3G_ROOT": str(root), "JOB_ROOT": str(job)}
    bring = f"pepd_es,{probe},pd_es,splatter_es"
    names = collect(COLLECT, out, BRING=bring, **env)
    # no pd_es; splatter's tar is over 16 MiB, so it comes back in two parts
    assert names == ["ckpt-1.tar", "ckpt-2.tar", "ckpt-4.tar.0", "ckpt-4.tar.1", "results.json"]
    with tarfile.open(out / "r" / "ckpt-2.tar") as tar:
        assert f"{probe}/model.safetensors" in tar.getnames()
    assert (out / "r" / "ckpt-4.tar.0").stat().st_size == 16 * 2**20
    joined = tmp_path / "ckpt-4.tar"
    joined.write_bytes(b"".join((out / "r" / f"ckpt-4.tar.{k}").read_bytes() for k in (0, 1)))
    with tarfile.open(joined) as tar:
        member = tar.getmember("splatter_es/model.safetensors")
        assert member.size == 17 * 2**20
    for p in (out / "r").iterdir():
        p.unlink()
    # what a call cannot bring back (64 MiB) is left out, and the rest still comes
    (root / "out" / "checkpoints" / "splatter_es" / "model.safetensors").write_bytes(
        b"\0" * (64 * 2**20)
    )
    assert collect(COLLECT, out, BRING=bring, **env) == ["ckpt-1.tar", "ckpt-2.tar", "results.json"]
    for p in (out / "r").iterdir():
        p.unlink()
    assert collect(COLLECT, out, **env) == ["results.json"]  # none asked for
    (root / "out" / "results.json").unlink()
    (out / "r" / "results.json").unlink()
    (root / "out" / "work" / "runs").mkdir(parents=True)
    assert collect(COLLECT, out, BRING=bring, **env) == ["runs.tar"]  # only with results.json


def _tiny_dd3g_without(hidden: tuple[str, ...], tmp_path: Path) -> subprocess.CompletedProcess:
    """DD3G's tiny end-to-end script test (teacher quadruples, joint training through the
    teacher, the Table II generators, evaluation) with ``hidden`` modules not importable."""
    test = "plugins/gs-method-dd3g/tests/test_train_small_script.py::test_train_small_tiny"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test]
    env = hiding_environment(tmp_path / "site", hidden)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_min_wheels_leave_out_only_what_dd3g_does_not_use(tmp_path):
    text = (ROOT / "tools" / "device" / "min-wheels.sh").read_text()
    for wheel in ("open_clip_torch", "ftfy", "wcwidth", "trimesh", "PyMCubes", "xatlas", "lpips"):
        assert f"{wheel}-*" in text
    r = _tiny_dd3g_without(MIN_LEFT_OUT, tmp_path)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "1 passed" in r.stdout
    # the hiding is real: without a wheel DD3G needs, the same run fails
    (tmp_path / "needed").mkdir()
    r = _tiny_dd3g_without(("diffusers",), tmp_path / "needed")
    assert r.returncode != 0
