"""A network block's shapes and gradient flow, the check every block test repeats.

``assert_block_trains(module, inputs, shape)`` runs ``module(*inputs)`` once and fails unless the
first output has ``shape`` (when given), every output is finite, and the backward of a loss on
the outputs reaches every parameter and every input that requires a gradient with finite
values: a parameter left without a gradient is a branch the forward never used.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def assert_block_trains(
    module: nn.Module, inputs: Sequence, shape: tuple[int, ...] | None = None
) -> list[torch.Tensor]:
    """Forward ``module(*inputs)``, backward ``sum(mean(out^2))``; return the outputs (a tuple or
    list output as a list, a tensor as a list of one)."""
    out = module(*inputs)
    outs = list(out) if isinstance(out, tuple | list) else [out]
    if shape is not None:
        assert tuple(outs[0].shape) == tuple(shape), f"output {tuple(outs[0].shape)} != {shape}"
    assert all(torch.isfinite(o).all() for o in outs), "an output is not finite"
    sum(o.float().square().mean() for o in outs if o.requires_grad).backward()
    missing = [
        k
        for k, p in module.named_parameters()
        if p.grad is None or not torch.isfinite(p.grad).all()
    ]
    assert missing == [], f"parameters without a finite gradient: {missing}"
    for i, x in enumerate(inputs):
        if isinstance(x, torch.Tensor) and x.requires_grad:
            assert x.grad is not None and torch.isfinite(x.grad).all(), f"input {i}: no gradient"
    return outs


__all__ = ["assert_block_trains"]
