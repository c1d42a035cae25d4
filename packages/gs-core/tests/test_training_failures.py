"""Graceful failures: out-of-memory suggests what to change (NaN/Inf: test_training_divergence.py)."""

from __future__ import annotations

import pytest
import torch

from gs_core.training import TrainingOutOfMemoryError


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
