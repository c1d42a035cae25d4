"""scripts/train_small.py end to end on the tiny preset (CPU, seconds), so it cannot rot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_small.py"


def _script():
    from gs_core.testing import load_script

    return load_script(SCRIPT, "geco_train_small")


def test_train_small_tiny_end_to_end(teacher_dir, tmp_path, monkeypatch):
    from gs_core import rendering
    from gs_core.testing import tiny_rgba_images
    from gs_method_geco.model import GECO
    from gs_priors.tiny import TINY_ZERO123PLUS_VIEW_SIZE

    script, order = _script(), []
    real_fit, real_build = script.fit, rendering.build_before_children

    def fit(*a, **k):
        order.append("fit")
        return real_fit(*a, **k)

    def build(device):
        order.append(("build", device))
        return real_build(device)

    monkeypatch.setattr(script, "fit", fit)
    monkeypatch.setattr(rendering, "build_before_children", build)
    out = tmp_path / "run"
    args = [str(teacher_dir), "--out", str(out), "--preset", "tiny", "--device", "cpu"]
    results = script.main(
        [
            *args,
            "--view-size",
            str(TINY_ZERO123PLUS_VIEW_SIZE),
            "--set",
            "teacher_steps=2",
            "--budget-s",
            '{"stage1": 600}',
            "--pseudo-batch",
            "1",  # one teacher call per image: the pseudo ground truth is merged from chunks
        ]
    )

    saved = json.loads((out / "results.json").read_text())
    # gsplat is built once, before any budgeted stage, so its JIT build spends no stage's budget.
    assert order == [("build", "cpu"), "fit", "fit", "fit"]
    assert saved["renderer"]["gsplat_unavailable"] is None
    assert saved["table2_ordering"] == results["table2_ordering"]
    assert saved["overrides"] == ["teacher_steps=2"]
    assert saved["budget_s"] == {"stage1": 600.0}
    assert set(saved["stages"]) == {"reconstructor", "stage1", "stage2"}
    for stage in saved["stages"].values():  # no budget ran out: every stage trained in full
        assert stage["stopped_by"] is None and stage["steps"] == stage["planned_steps"] > 0
    config = json.loads((out / "checkpoint" / "config.json").read_text())
    assert config["teacher_steps"] == 2  # the override reached the model
    variants = {"teacher_1step_lgm", "teacher_75step_lgm", "geco_without_stage2", "geco"}
    assert set(saved["gaussians"]) == variants
    assert set(saved["six_views"]) == {"teacher_75step", "generator_stage1", "generator"}
    for metric in ("psnr", "ssim"):
        values = saved["table2_ordering"][metric]["values"]
        assert len(values) == 3 and all(math.isfinite(v) for v in values)
        assert saved["table2_ordering"][metric]["holds"] == (values[0] < values[1] < values[2])
    pseudo = out / "pseudo" / "pseudo_ground_truth.safetensors"
    from gs_method_geco.pseudo_ground_truth import load_pseudo_ground_truth

    pgt = load_pseudo_ground_truth(pseudo)
    assert pgt["rgb"].shape[0] == pgt["images"].shape[0] > 1  # every image, across chunks
    assert not (out / "results.partial.json").exists()  # replaced by results.json
    assert saved["seed"] == 0
    sheets = sorted((out / "eval" / "geco" / "sheets").glob("*.png"))  # GECO's picture only
    assert (
        len(sheets)
        == len(json.loads((out / "eval" / "geco" / "results.json").read_text())["objects"])
        > 0
    )
    assert not (out / "eval" / "geco_without_stage2").exists()
    shards = list((out / "checkpoint").glob("*.safetensors"))
    assert shards and all(p.stat().st_size <= 16 * 1024**2 for p in shards)

    model = GECO.from_pretrained(out / "checkpoint").float().eval()
    assert next(model.reconstructor.parameters()).dtype == torch.float32
    with torch.no_grad():
        g = model.generate(tiny_rgba_images(1, 32), seed=0).gaussians
    g.validate(check_values=True)


def test_budget_flag_names_the_stages(teacher_dir, tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit):
        _script().main([str(teacher_dir), "--out", str(tmp_path / "run"), "--budget-s", "0"])
    assert "keyed by reconstructor, stage1, stage2" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_pseudo_batch_must_be_positive(teacher_dir, tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit):
        _script().main([str(teacher_dir), "--out", str(tmp_path / "run"), "--pseudo-batch", "0"])
    assert "--pseudo-batch: expected a positive number" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_run_cut_short_in_evaluation_keeps_the_scores_so_far(teacher_dir, tmp_path, monkeypatch):
    import pytest

    import gs_core.evaluation.harness as harness
    from gs_priors.tiny import TINY_ZERO123PLUS_VIEW_SIZE

    real, calls = harness.evaluate, []

    def evaluate_then_fail(*args, **kwargs):
        calls.append(kwargs.get("label"))
        if len(calls) > 1:
            raise RuntimeError("the lease ended")
        return real(*args, **kwargs)

    monkeypatch.setattr(harness, "evaluate", evaluate_then_fail)
    out = tmp_path / "run"
    argv = [str(teacher_dir), "--out", str(out), "--preset", "tiny", "--device", "cpu"]
    with pytest.raises(RuntimeError, match="the lease ended"):
        _script().main([*argv, "--view-size", str(TINY_ZERO123PLUS_VIEW_SIZE)])
    partial = json.loads((out / "results.partial.json").read_text())
    assert partial["complete"] is False and not (out / "results.json").exists()
    assert list(partial["gaussians"]) == ["teacher_1step_lgm"]
    assert set(partial["stages"]) == {"reconstructor", "stage1", "stage2"}


def _tiny_args(teacher_dir_or_none, out):
    from gs_priors.tiny import TINY_ZERO123PLUS_VIEW_SIZE

    lead = [] if teacher_dir_or_none is None else [str(teacher_dir_or_none)]
    return [
        *lead,
        "--out",
        str(out),
        "--preset",
        "tiny",
        "--device",
        "cpu",
        "--view-size",
        str(TINY_ZERO123PLUS_VIEW_SIZE),
        "--set",
        "teacher_steps=2",
    ]


def test_train_teacher_trains_it_in_a_child_then_geco_runs_on_it(tmp_path, monkeypatch):
    import sys

    script = _script()
    out = tmp_path / "run"
    target = out / "teacher" / "work" / "zero123plus" / "fp16"
    # The child stands in for the teacher's trainer (tested in gs-priors) and writes a tiny
    # teacher where the real one writes its fp16 weights.
    child = (
        f"from gs_priors.tiny import save_tiny_zero123plus; save_tiny_zero123plus({str(target)!r})"
    )
    monkeypatch.setattr(script, "teacher_command", lambda args: [sys.executable, "-c", child])
    results = script.main([*_tiny_args(None, out), "--train-teacher", "30"])

    rec = json.loads((out / "results.json").read_text())["teacher"]
    assert rec == results["teacher"] and rec["directory"] == str(target)
    assert rec["seconds"] >= rec["geco_waited_seconds"] >= 0
    assert (out / "teacher" / "teacher.log").is_file()
    assert set(results["gaussians"]) == {
        "teacher_1step_lgm",
        "teacher_75step_lgm",
        "geco_without_stage2",
        "geco",
    }


def test_a_failed_teacher_run_stops_with_its_log(tmp_path, monkeypatch):
    import sys

    import pytest

    from gs_core.errors import GS3DError

    script = _script()
    out = tmp_path / "run"
    boom = "import sys; print('teacher: out of memory'); sys.exit(3)"
    monkeypatch.setattr(script, "teacher_command", lambda args: [sys.executable, "-c", boom])
    with pytest.raises(GS3DError, match=r"exit code 3.*teacher\.log"):
        script.main([*_tiny_args(None, out), "--train-teacher", "30"])
    assert "out of memory" in (out / "teacher" / "teacher.log").read_text()
    assert not (out / "results.json").exists()


def test_geco_failing_first_stops_the_teacher(tmp_path, monkeypatch):
    import sys

    import pytest

    script = _script()
    procs = []
    real_start = script.start_teacher

    def start(args):
        procs.append(real_start(args))
        return procs[-1]

    def no_data(args):
        raise RuntimeError("disk full")

    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    monkeypatch.setattr(script, "teacher_command", lambda args: sleeper)
    monkeypatch.setattr(script, "start_teacher", start)
    monkeypatch.setattr(script, "make_data", no_data)
    with pytest.raises(RuntimeError, match="disk full"):
        script.main([*_tiny_args(None, tmp_path / "run"), "--train-teacher", "30"])
    assert procs and procs[0].poll() is not None  # terminated, not left training


def test_teacher_command_trains_zero123plus_on_the_run_device(tmp_path):
    script = _script()
    assert script.TEACHER_SCRIPT.is_file()  # the gs-priors script it runs is where it points
    out = tmp_path / "run"
    args = script.parse_args(
        ["--out", str(out), "--train-teacher", "450", "--device", "cuda:1", "--seed", "7"]
    )
    cmd = script.teacher_command(args)
    assert cmd[1] == str(script.TEACHER_SCRIPT)

    def opt(command, name):
        return command[command.index(name) + 1]

    assert opt(cmd, "--gpus") == "1" and opt(cmd, "--priors") == "zero123plus"
    assert json.loads(opt(cmd, "--seconds")) == {"zero123plus": 450.0}
    assert opt(cmd, "--work") == str(out / "teacher" / "work") and opt(cmd, "--seed") == "7"
    on_cpu = script.parse_args(["--out", str(out), "--train-teacher", "9", "--device", "cpu"])
    assert opt(script.teacher_command(on_cpu), "--gpus") == "cpu"
    assert opt(cmd, "--preset") == "procedural" and "--init-from" not in cmd


def test_a_compact_teacher_warm_started_from_the_repository_imagedream(tmp_path, capsys):
    """The same-lease teacher GECO can take without carrying a pack: the compact Zero123++
    started from the compact ImageDream the repository tracks."""
    import pytest

    script = _script()
    pack = script.TEACHER_SCRIPT.parents[1] / "teachers" / "imagedream.safetensors"
    assert pack.is_file()
    out = tmp_path / "run"
    args = script.parse_args(
        [
            "--out",
            str(out),
            "--train-teacher",
            "600",
            "--teacher-preset",
            "compact",
            "--teacher-init-from",
            str(pack),
        ]
    )
    cmd = script.teacher_command(args)
    assert cmd[cmd.index("--preset") + 1] == "compact"
    assert cmd[cmd.index("--init-from") + 1] == str(pack)
    for argv, message in (
        ([str(tmp_path), "--teacher-preset", "compact"], "only with --train-teacher"),
        (
            ["--train-teacher", "9", "--teacher-init-from", str(tmp_path / "no.safetensors")],
            "is not a file",
        ),
    ):
        with pytest.raises(SystemExit):
            script.parse_args(["--out", str(out), *argv])
        assert message in capsys.readouterr().err


def test_a_teacher_directory_or_train_teacher_exactly(teacher_dir, tmp_path, capsys):
    import pytest

    for argv in (
        ["--out", str(tmp_path / "a")],
        [str(teacher_dir), "--out", str(tmp_path / "b"), "--train-teacher", "60"],
        ["--out", str(tmp_path / "c"), "--train-teacher", "0"],
    ):
        with pytest.raises(SystemExit):
            _script().main(argv)
    err = capsys.readouterr().err
    assert "a teacher directory or --train-teacher SECONDS" in err
    assert "--train-teacher: expected a positive number of seconds" in err
    assert not any(tmp_path.iterdir())


def test_the_real_teacher_command_leaves_a_teacher_where_geco_looks(tmp_path, monkeypatch):
    """The real gs-priors script, at its tiny size and a few steps, through teacher_command:
    its arguments are ones that script accepts, and its fp16 teacher is where
    finish_teacher looks."""
    from gs_priors.zero123plus import Zero123PlusGuidance

    script = _script()
    out = tmp_path / "run"
    args = script.parse_args(["--out", str(out), "--train-teacher", "60", "--device", "cpu"])
    real = script.teacher_command
    small = ["--preset", "tiny", "--steps", "2", "--vae-steps", "2", "--objects", "2",
             "--eval-steps", "1"]  # fmt: skip
    monkeypatch.setattr(script, "teacher_command", lambda a: [*real(a), *small])
    out.mkdir()
    directory, record = script.finish_teacher(script.start_teacher(args), args, 0.0)
    assert record["train"]["steps"] == 2 and "checks" in record
    Zero123PlusGuidance.from_pretrained(directory)  # a loadable Zero123++ checkpoint


def test_a_packed_teacher_file_is_unpacked_once_into_the_cache(teacher_dir, tmp_path, monkeypatch):
    """A teacher trained in an earlier lease comes back as gs-priors' one packed file; GECO
    takes it in place of the directory (int8 weights, dequantized on unpacking)."""
    import argparse

    import pytest
    from safetensors.torch import load_file

    from gs_core.errors import FileFormatError
    from gs_priors.teachers.packing import pack_teacher

    script = _script()
    packed = pack_teacher(teacher_dir, tmp_path / "zero123plus.safetensors")
    out = tmp_path / "run"
    monkeypatch.setenv("GS3D_TEACHER_CACHE", str(tmp_path / "cache"))
    directory, record = script.given_teacher(argparse.Namespace(teacher=str(packed), out=out))
    assert directory.parent == tmp_path / "cache"
    again, _ = script.given_teacher(argparse.Namespace(teacher=str(packed), out=tmp_path / "r2"))
    assert again == directory  # a second run (another seed) reuses the unpacked copy
    assert record == {"packed": str(packed), "directory": str(directory)}
    assert (directory / "model_index.json").is_file()
    unet = "unet/diffusion_pytorch_model.safetensors"
    before, after = load_file(teacher_dir / unet), load_file(directory / unet)
    assert before.keys() == after.keys()
    for k, v in before.items():  # int8 per-channel storage: close, not equal
        assert torch.allclose(after[k].float(), v.float(), atol=0.02 * v.abs().max().item() + 1e-3)

    same, none = script.given_teacher(argparse.Namespace(teacher=str(teacher_dir), out=out))
    assert same == teacher_dir and none is None

    stray = tmp_path / "notes.txt"
    stray.write_text("not a teacher")
    with pytest.raises(FileFormatError, match="notes.txt"):
        script.given_teacher(argparse.Namespace(teacher=str(stray), out=tmp_path / "run2"))
