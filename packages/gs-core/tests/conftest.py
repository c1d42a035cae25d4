"""Shared fixtures of gs-core's tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

TOY = Path(__file__).with_name("test_training_toy.py")


def load_toy():
    """The toy method of the training tests, imported once under one name.

    Several test files and the subprocess scripts share its classes, so it must be one module
    instance (pytest's importlib mode would otherwise give each file its own copy).
    """
    name = "gs3d_training_toy"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TOY)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.fixture
def toy():
    return load_toy()


@pytest.fixture(scope="module")
def one_thread():
    """Run a test module with one torch thread: tests that render many tiny images only pay
    intra-op synchronisation for more threads (and stall on a busy 2-core host)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
