"""Data parallelism: 2 processes under torchrun (gloo, CPU) train to the same parameters as one
process with the same global batch, with no change to the training module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from gs_core.pretrained import load_state_dict
from gs_core.training import read_metrics

TOY = Path(__file__).with_name("test_training_toy.py")

COMMON = {
    "max_steps": 6,
    "grad_accum": 2,  # exercises DDP's no_sync on the first micro-batch
    "checkpoint_every": 3,
    "clip_grad_norm": 0.5,
    "ema_decay": 0.8,
    "log_every": 1,
}


@pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo"
)
def test_training_ddp_two_processes_equal_one_process(tmp_path, toy):
    # one process, global batch 8 = 8 x 1
    _, single, single_trainer, _ = toy.run_toy(
        tmp_path / "one", toy.make_config(batch_size=8, **COMMON)
    )
    with single_trainer.averaged_weights():
        single_ema = {k: v.clone() for k, v in single.net.state_dict().items()}

    # two processes, global batch 8 = 4 x 2
    overrides = [f"train.{k}={v}" for k, v in COMMON.items()] + ["train.batch_size=4"]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(TOY),
        str(tmp_path / "two"),
        *overrides,
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count('DONE {"step": 6, "interrupted": false}') == 2

    ckpt = tmp_path / "two" / "checkpoints" / "step-00000006"
    assert sorted(p.name for p in (ckpt / "rng").iterdir()) == [
        "rank-00000.json",
        "rank-00000.safetensors",
        "rank-00001.json",
        "rank-00001.safetensors",
    ]
    two = load_state_dict(ckpt / "models" / "net")
    for k, v in single.net.state_dict().items():
        torch.testing.assert_close(two[k], v, rtol=1e-5, atol=1e-6)
    # the EMA (kept on every rank, stored once) matches too
    from gs_core.training.state_codec import load_state

    shadow = load_state(ckpt, "trainer")["ema"]["shadow"]
    for k, v in single_ema.items():
        torch.testing.assert_close(shadow[f"net.{k}"], v, rtol=1e-5, atol=1e-6)
    # logged terms are averaged over processes: the same numbers as the single process
    m1 = {r["step"]: r for r in read_metrics(tmp_path / "one" / "logs" / "metrics.jsonl")}
    m2 = {r["step"]: r for r in read_metrics(tmp_path / "two" / "logs" / "metrics.jsonl")}
    assert sorted(m1) == sorted(m2) == list(range(1, 7))
    for s in m1:
        for k in ("loss", "loss/mse", "loss/reg", "grad_norm"):
            assert m2[s][k] == pytest.approx(m1[s][k], rel=1e-5), (s, k)


@pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo"
)
def test_one_rank_failing_ends_the_whole_run_with_its_error(tmp_path):
    # A rank that raises leaves its peer in a collective: the run must still end (torchrun
    # stops the peer), non-zero, with the failing rank's message, rather than hold a GPU lease.
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(TOY), str(tmp_path / "run"), "train.max_steps=6", "train.batch_size=4",
        "fail_at_step=3", "fail_rank=1",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "toy: failing on rank 1 at step 3" in out
    assert "DONE" not in proc.stdout
