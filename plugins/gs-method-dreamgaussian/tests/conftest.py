"""Shared settings of the DreamGaussian plugin tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One torch thread: the tiny runs render and denoise images of a few dozen pixels, where
    more threads only add intra-op synchronisation (and stall on a busy 2-core host)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
