"""gs_core.testing.assert_block_trains fails on exactly the faults it names."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gs_core.testing import assert_block_trains


class _TwoHeads(nn.Module):
    def __init__(self, use_b: bool = True, scale: float = 1.0):
        super().__init__()
        self.a, self.b, self.use_b, self.scale = nn.Linear(3, 4), nn.Linear(3, 2), use_b, scale

    def forward(self, x):
        return (self.a(x) * self.scale, self.b(x)) if self.use_b else self.a(x) * self.scale


def test_a_sound_block_passes_and_returns_its_outputs():
    x = torch.randn(5, 3, requires_grad=True)
    outs = assert_block_trains(_TwoHeads(), [x], (5, 4))
    assert [tuple(o.shape) for o in outs] == [(5, 4), (5, 2)] and x.grad is not None


def test_an_unused_parameter_is_named():
    with pytest.raises(AssertionError, match=r"b\.weight"):
        assert_block_trains(_TwoHeads(use_b=False), [torch.randn(5, 3)])


def test_a_wrong_shape_and_a_non_finite_output_fail():
    with pytest.raises(AssertionError, match="output"):
        assert_block_trains(_TwoHeads(), [torch.randn(5, 3)], (5, 3))
    with pytest.raises(AssertionError, match="not finite"):
        assert_block_trains(_TwoHeads(scale=float("inf")), [torch.randn(5, 3)])


def test_an_input_cut_from_the_graph_is_caught():
    x = torch.randn(5, 3, requires_grad=True)
    block = nn.Sequential(nn.Flatten(0), nn.Unflatten(0, (5, 3)))
    cut = nn.ModuleDict({"m": nn.Linear(3, 3)})
    cut.forward = lambda t: cut["m"](t.detach())
    assert_block_trains(block, [x])
    with pytest.raises(AssertionError, match="input 0"):
        assert_block_trains(cut, [torch.randn(5, 3, requires_grad=True)])
