"""Batched gathers and neighbourhood grouping against plain indexing."""

from __future__ import annotations

import pytest
import torch

from gs_core.errors import ValidationError
from gs_core.points import gather_points, group_points


def test_gather_and_group():
    x = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)
    idx = torch.tensor([[[0, 4], [1, 1]], [[3, 2], [0, 0]]])
    out = gather_points(x, idx)
    assert out.shape == (2, 2, 2, 3)
    for b in range(2):
        torch.testing.assert_close(out[b], x[b][idx[b]])
    centers = torch.randn(2, 2, 3)
    g = group_points(x, x, centers, idx)
    torch.testing.assert_close(g[..., :3], out - centers[:, :, None])
    torch.testing.assert_close(g[..., 3:], out)
    torch.testing.assert_close(group_points(None, x, centers, idx), g[..., :3])


def test_gather_gradients_accumulate_on_repeated_rows():
    x = torch.randn(1, 4, 2, requires_grad=True)
    gather_points(x, torch.tensor([[1, 1, 3]])).sum().backward()
    torch.testing.assert_close(x.grad[0, :, 0], torch.tensor([0.0, 2.0, 0.0, 1.0]))


def test_gather_rejects_mismatched_batches():
    with pytest.raises(ValidationError, match="gather_points"):
        gather_points(torch.randn(2, 4, 3), torch.zeros(3, 2, dtype=torch.long))
