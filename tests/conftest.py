"""Fixtures for cross-package tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# importlib import mode: make the helper module beside this file importable
sys.path.insert(0, str(Path(__file__).parent))

from isolated import ROOT, IsolatedEnv  # noqa: E402


@pytest.fixture(scope="session")
def core_env(tmp_path_factory) -> IsolatedEnv:
    """gs-core (with its pytest plugin) and pytest, from wheels, in a venv of their own."""
    env = IsolatedEnv(tmp_path_factory.mktemp("isolated"))
    core = env.build(ROOT / "packages" / "gs-core")
    env.install(core, "pytest")
    return env
