"""Exact resume: a training process killed (SIGKILL) or stopped (SIGTERM) mid-run and resumed
reaches bit-for-bit the same state as an uninterrupted run, on CPU."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gs_core.training import read_metrics

TOY = Path(__file__).with_name("test_training_toy.py")


def load_toy_module():
    name = "gs3d_training_toy"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TOY)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


# Everything that draws random numbers or carries state across steps: dropout and input noise
# (global RNG), a shuffled dataset resumed mid-epoch (3 steps of 8 samples; 4 steps per epoch),
# gradient accumulation, Adam with two param groups, a cosine schedule, clipping, EMA.
OVERRIDES = [
    "dropout=0.2",
    "noise=0.1",
    "train.max_steps=8",
    "train.batch_size=4",
    "train.grad_accum=2",
    "train.checkpoint_every=3",
    "train.keep_checkpoints=2",
    "train.log_every=1",
    "train.clip_grad_norm=0.5",
    "train.ema_decay=0.9",
    "train.seed=7",
]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _start_stalling(run_dir: Path, stall_at: int, resume: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, str(TOY), str(run_dir), *(["--resume"] if resume else []), *OVERRIDES]
    cmd.append(f"stall_at_step={stall_at}")
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    line = proc.stdout.readline()  # blocks until the step stalls (or the process dies: "")
    if not line.startswith(f"STALL {stall_at}"):
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"training did not reach step {stall_at}: {line}{out}{err}")
    return proc


def _state(ckpt: Path) -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {}
    for f in sorted(ckpt.rglob("*.safetensors")):
        for k, v in load_file(str(f)).items():
            tensors[f"{f.relative_to(ckpt)}:{k}"] = v
    doc = json.loads((ckpt / "trainer.json").read_text())
    return tensors, doc


def _assert_same_run(a: Path, b: Path) -> None:
    ta, ja = _state(a / "checkpoints" / "step-00000008")
    tb, jb = _state(b / "checkpoints" / "step-00000008")
    assert sorted(ta) == sorted(tb)
    assert any(k.startswith("models/net/") for k in ta) and any(k.startswith("rng/") for k in ta)
    for k in ta:
        assert ta[k].dtype == tb[k].dtype and torch.equal(ta[k], tb[k]), f"{k} differs"
    assert ja == jb
    ma = {r["step"]: r for r in read_metrics(a / "logs" / "metrics.jsonl")}
    mb = {r["step"]: r for r in read_metrics(b / "logs" / "metrics.jsonl")}
    assert sorted(ma) == sorted(mb) == list(range(1, 9))
    for s in ma:
        for k in ("loss", "loss/mse", "loss/reg", "grad_norm", "lr/net"):
            assert ma[s][k] == mb[s][k], (s, k)


def test_training_sigkill_and_sigterm_then_resume_is_bitwise_identical(tmp_path):
    toy = load_toy_module()
    cfg = toy.ToyConfig().with_overrides(
        ["train.progress=off", "train.tensorboard=off", *OVERRIDES]
    )
    reference = tmp_path / "uninterrupted"  # in this process: the subprocesses must match it
    assert toy.run_toy(reference, cfg)[3].step == 8

    run = tmp_path / "run"
    # 1) SIGKILL inside step 5: steps 0-4 are done, the last checkpoint is at step 3.
    proc = _start_stalling(run, stall_at=5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000003"]
    # the killed run logged steps 4 and 5, which the resumed run redoes; add a torn temporary
    assert max(r["step"] for r in read_metrics(run / "logs" / "metrics.jsonl")) == 5
    (run / "checkpoints" / ".step-00000006.partial" / "models").mkdir(parents=True)

    # 2) resume (mid-epoch: step 3 of 4), then SIGTERM inside step 6: the engine finishes the
    # step and checkpoints at exit (step 7).
    proc = _start_stalling(run, stall_at=6, resume=True)
    proc.send_signal(signal.SIGTERM)
    (run / "release").touch()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert 'DONE {"step": 7, "interrupted": true}' in out
    assert "resumed from" in err and "stopped at step 7" in err
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step-00000006", "step-00000007"]  # keep_checkpoints=2, partial removed
    (run / "release").unlink()

    # 3) resume to the end (here, in this process).
    result = toy.run_toy(run, cfg, resume=True)[3]
    assert result.step == 8 and not result.interrupted
    _assert_same_run(reference, run)


def test_training_resume_without_checkpoint_starts_fresh(tmp_path):
    toy = load_toy_module()
    _, _, _, result = toy.run_toy(tmp_path / "run", toy.make_config(max_steps=2), resume=True)
    assert result.step == 2 and (tmp_path / "run" / "checkpoints" / "step-00000002").is_dir()


def test_training_resume_in_process_continues_the_step_count(tmp_path):
    toy = load_toy_module()
    toy.run_toy(tmp_path / "run", toy.make_config(max_steps=3, checkpoint_every=2))
    _, module, _, result = toy.run_toy(tmp_path / "run", toy.make_config(max_steps=5), resume=True)
    assert result.step == 5
    assert module.seen_steps == [3, 4]  # continued after the exit checkpoint at step 3
