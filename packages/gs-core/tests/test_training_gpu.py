"""The engine on CUDA: mixed precision, resume, and NCCL data parallelism over 2 GPUs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gs_core.pretrained import load_state_dict
from gs_core.training import Trainer, seed_everything

TOY = Path(__file__).with_name("test_training_toy.py")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_gpu_resume_continues_the_same_run(tmp_path, precision, toy):
    common = dict(
        device="cuda", precision=precision, deterministic=True, ema_decay=0.9, clip_grad_norm=1.0
    )
    _, full, _, _ = toy.run_toy(tmp_path / "full", toy.make_config(max_steps=6, **common))
    # the same 6-step run (schedules depend on max_steps), stopped by SIGTERM after step 3
    seed_everything(0)
    module = toy.ToyMethod(toy.make_config(max_steps=6, **common)).training_module(
        run_dir=tmp_path / "cut"
    )
    module.on_step_end = lambda step: os.kill(os.getpid(), signal.SIGTERM) if step == 3 else None
    cut = Trainer(module, tmp_path / "cut").fit()
    assert cut.interrupted and 3 <= cut.step < 6
    _, resumed, _, result = toy.run_toy(
        tmp_path / "cut", toy.make_config(max_steps=6, **common), resume=True
    )
    assert result.step == 6
    assert next(resumed.net.parameters()).device.type == "cuda"
    for k, v in full.net.state_dict().items():
        # deterministic kernels: expected equal; a tolerance keeps the test about the engine
        torch.testing.assert_close(resumed.net.state_dict()[k], v, rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_training_gpu_ddp_nccl_two_gpus_equal_one(tmp_path, toy):
    common = {
        "max_steps": 6,
        "grad_accum": 2,
        "checkpoint_every": 6,
        "clip_grad_norm": 0.5,
        "device": "cuda",
    }
    _, single, _, _ = toy.run_toy(tmp_path / "one", toy.make_config(batch_size=8, **common))
    overrides = [f"train.{k}={v}" for k, v in common.items()] + ["train.batch_size=4"]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(TOY),
    ]
    cmd += [str(tmp_path / "two"), *overrides]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1")
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    two = load_state_dict(tmp_path / "two" / "checkpoints" / "step-00000006" / "models" / "net")
    for k, v in single.net.state_dict().items():
        torch.testing.assert_close(two[k], v.cpu(), rtol=1e-4, atol=1e-5)
