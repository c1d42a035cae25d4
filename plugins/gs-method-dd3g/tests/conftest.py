"""Shared settings and fixtures of the DD3G plugin tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One torch thread: tiny models on a shared 2-core host only lose to more threads."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory):
    """gs_priors' tiny random ImageDream checkpoint (16 px views, 8x8 latents)."""
    from gs_priors.tiny import save_tiny_imagedream

    return save_tiny_imagedream(tmp_path_factory.mktemp("imagedream"))


@pytest.fixture(scope="session")
def tiny_teacher(tiny_teacher_dir):
    from gs_priors import ImageDreamGuidance

    return ImageDreamGuidance.from_pretrained(tiny_teacher_dir)


@pytest.fixture(scope="session")
def tiny_quadruples(tiny_teacher):
    import torch

    from gs_core.testing import tiny_rgba_images
    from gs_method_dd3g.quadruples import generate_quadruples

    return generate_quadruples(
        tiny_teacher, tiny_rgba_images(4, 32), steps=4, generator=torch.Generator().manual_seed(0)
    )
