"""Graceful failures: NaN/Inf stops naming the term and step and keeps the last good checkpoint;
out-of-memory suggests what to change."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gs_core.training import TrainingDivergedError, TrainingOutOfMemoryError, read_metrics
from gs_core.training.state_codec import load_state


def _checkpoints(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir())


def test_training_nan_loss_stops_naming_term_and_step(tmp_path, toy):
    run = tmp_path / "run"
    cfg = toy.make_config({"nan_at_step": 4}, max_steps=10, checkpoint_every=2, keep_checkpoints=5)
    with pytest.raises(TrainingDivergedError) as err:
        toy.run_toy(run, cfg)
    e = err.value
    assert e.what == "loss term 'mse'" and e.step == 4
    assert "loss term 'mse' is nan at step 4" in str(e)
    assert str(run / "checkpoints" / "step-00000004") in str(e) and "--resume" in str(e)
    # the last good checkpoint is kept and nothing was written after it
    assert _checkpoints(run) == ["step-00000002", "step-00000004"]
    assert load_state(run / "checkpoints" / "step-00000004", "trainer")["step"] == 4
    assert max(r["step"] for r in read_metrics(run / "logs" / "metrics.jsonl")) == 4

    # and it resumes from there once the cause is gone
    _, _, _, result = toy.run_toy(
        run, toy.make_config(max_steps=6, checkpoint_every=2), resume=True
    )
    assert result.step == 6


def test_training_nan_before_any_checkpoint_says_so(tmp_path, toy):
    with pytest.raises(
        TrainingDivergedError, match="at step 1; training stopped, no checkpoint had been written"
    ):
        toy.run_toy(tmp_path / "run", toy.make_config({"nan_at_step": 1}, checkpoint_every=5))


def test_training_nan_in_a_zero_weight_term_is_only_logged(tmp_path, toy):

    class NanProbe(toy.ToyTraining):
        def training_step(self, batch, step):
            terms = dict(super().training_step(batch, step))
            terms["probe"] = terms["probe"] * float("inf")
            return terms

    method = toy.ToyMethod(toy.make_config(max_steps=2))
    result = toy.Trainer(NanProbe(method), tmp_path / "run").fit()
    assert result.step == 2
    records = read_metrics(tmp_path / "run" / "logs" / "metrics.jsonl")
    assert records[-1]["loss/probe"] == float("inf") and records[-1]["loss"] < 10


def test_training_nan_gradient_stops_at_the_clipping_norm(tmp_path, toy):

    class NanGrad(toy.ToyTraining):
        def on_after_backward(self, step):
            if step == 2:
                self.net.head.bias.grad[0] = float("nan")

    method = toy.ToyMethod(toy.make_config(max_steps=6, clip_grad_norm=1.0, checkpoint_every=2))
    with pytest.raises(TrainingDivergedError, match="the gradient norm is nan at step 2"):
        toy.Trainer(NanGrad(method), tmp_path / "run").fit()
    assert torch.isfinite(method.net.head.bias).all()  # the optimiser step was not taken
    assert _checkpoints(tmp_path / "run") == ["step-00000002"]


def test_training_never_checkpoints_nan_weights(tmp_path, toy):

    class NanGrad(toy.ToyTraining):
        def on_after_backward(self, step):
            if step == 1:
                self.net.head.bias.grad[0] = float("nan")  # finite loss, NaN update, no clipping

    method = toy.ToyMethod(toy.make_config(max_steps=6, checkpoint_every=2))
    with pytest.raises(TrainingDivergedError, match="a trained parameter is nan at step 2"):
        toy.Trainer(NanGrad(method), tmp_path / "run").fit()
    assert not (tmp_path / "run" / "checkpoints").exists() or _checkpoints(tmp_path / "run") == []


def test_training_out_of_memory_suggests_batch_and_resolution(tmp_path, toy):

    class Oom(toy.ToyTraining):
        def training_step(self, batch, step):
            if step == 1:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return super().training_step(batch, step)

    method = toy.ToyMethod(toy.make_config(max_steps=4, grad_accum=2, batch_size=4))
    with pytest.raises(TrainingOutOfMemoryError) as err:
        toy.Trainer(Oom(method), tmp_path / "run").fit()
    msg = str(err.value)
    assert "out of memory on cpu at step 1" in msg
    assert "lower batch_size (now 4) and raise grad_accum (now 2)" in msg
    assert "resolution" in msg and "precision=bf16" in msg
