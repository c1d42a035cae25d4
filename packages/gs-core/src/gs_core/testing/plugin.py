"""pytest plugin shipped with gs-core (entry point ``pytest11``): the ``gpu`` marker and the
``offline_hub`` fixture."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device (skipped cleanly without one)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import torch  # only when GPU tests are collected

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """The Hugging Face hub offline and its cache empty, whatever this machine has; returns the
    test's ``tmp_path``. Code that would fetch weights then fails at once, as it must here.

    huggingface_hub reads ``HF_HUB_OFFLINE`` and its cache folder once, at import, so its
    constants are patched as well as the environment. Use it per test or per module
    (``pytestmark = pytest.mark.usefixtures("offline_hub")``).
    """
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        import huggingface_hub.constants as hf_constants
    except ImportError:  # gs-core's `hub` extra absent: nothing can reach the hub anyway
        return tmp_path
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    return tmp_path
