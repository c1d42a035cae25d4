"""Shared fixtures of the GECO plugin tests: one torch thread, and one tiny random Zero123++
teacher (gs_priors.tiny) written once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One torch thread: tiny networks on a few dozen pixels only pay synchronisation for more
    threads (and stall on a busy 2-core host)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def teacher_dir(tmp_path_factory):
    from gs_priors.tiny import save_tiny_zero123plus

    return save_tiny_zero123plus(tmp_path_factory.mktemp("zero123plus"))


@pytest.fixture(scope="session")
def teacher(teacher_dir):
    from gs_priors.tiny import TINY_ZERO123PLUS_VIEW_SIZE
    from gs_priors.zero123plus import Zero123PlusGuidance

    return Zero123PlusGuidance.from_pretrained(teacher_dir, view_size=TINY_ZERO123PLUS_VIEW_SIZE)


@pytest.fixture()
def model(teacher):
    """A tiny GECO whose G starts as the tiny teacher (fresh per test: tests train it)."""
    import torch

    from gs_method_geco.config import GECOConfig
    from gs_method_geco.model import GECO

    torch.manual_seed(0)
    return GECO.from_teacher(teacher, GECOConfig.preset("tiny"))
