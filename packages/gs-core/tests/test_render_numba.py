"""The numba compositor: the torch compositor's images, no gradients, chosen by ``auto`` only
where nothing needs gradients."""

from __future__ import annotations

import pytest
import torch

from gs_core import Cameras, Gaussians, render
from gs_core.rendering import BackendUnavailableError
from gs_core.rendering.api import _require_numba

pytest.importorskip("numba")


def scene(n=300, batch=(), seed=0, sh_degree=1, opacity=(0.1, 0.9), scale=(0.03, 0.13)):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(*batch, n, 3, generator=g) * 2 - 1) * 0.6
    quats = torch.randn(*batch, n, 4, generator=g)
    lo, hi = scale
    scales = torch.rand(*batch, n, 3, generator=g) * (hi - lo) + lo
    lo, hi = opacity
    opac = torch.rand(*batch, n, generator=g) * (hi - lo) + lo
    sh = torch.randn(*batch, n, (sh_degree + 1) ** 2, 3, generator=g) * 0.3
    return Gaussians(means, quats, scales, opac, sh)


# Odd sizes: tiles cut by the image edge; 45 x 37 has partial tiles on both axes.
CAMS = Cameras.orbit([0.0, 130.0, 250.0], [10.0, 35.0, -20.0], radius=2.2, width=45, height=37)


@pytest.mark.parametrize("mode", ["RGB", "RGB+D", "RGB+ED", "D", "ED"])
def test_matches_the_torch_compositor_in_every_mode(mode):
    g = scene()
    bg = torch.tensor([[0.2, 0.5, 0.9], [1.0, 1.0, 1.0], [0.0, 0.3, 0.1]])
    ref = render(g, CAMS, background=bg, mode=mode, backend="torch")
    out = render(g, CAMS, background=bg, mode=mode, backend="numba")
    assert out.meta["backend"] == "numba"
    assert torch.allclose(out.alpha, ref.alpha, atol=1e-5)
    for a, b in ((out.rgb, ref.rgb), (out.depth, ref.depth)):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.shape == b.shape and a.dtype == b.dtype
            assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()


def test_matches_with_opaque_crowds_batches_and_float64():
    # Nearly opaque, large Gaussians: pixels stop early at the transmittance floor, the rule
    # most likely to differ between the two compositors.
    g = scene(n=400, batch=(2,), opacity=(0.95, 0.999), scale=(0.08, 0.3), seed=3)
    g64 = g.to(dtype=torch.float64)
    for gg, tol in ((g, 1e-4), (g64, 1e-9)):
        ref = render(gg, CAMS, background=0.5, backend="torch")
        out = render(gg, CAMS, background=0.5, backend="numba")
        assert out.rgb.shape == (2, 3, 37, 45, 3) and out.rgb.dtype == gg.means.dtype
        assert torch.allclose(out.rgb, ref.rgb, atol=tol), (out.rgb - ref.rgb).abs().max()
        assert torch.allclose(out.alpha, ref.alpha, atol=tol)
    assert float(ref.alpha.amax()) > 0.999  # the floor was reached somewhere


def test_gaussians_off_the_image_and_behind_the_camera():
    g = scene(n=200, seed=5)
    means = g.means.clone()
    means[:50] += torch.tensor([30.0, 0.0, 0.0])  # far off to the side
    means[50:60] *= -40.0  # some behind the cameras
    g = Gaussians(means, g.quats, g.scales, g.opacities, g.sh)
    ref = render(g, CAMS, background=1.0, backend="torch")
    out = render(g, CAMS, background=1.0, backend="numba")
    assert torch.allclose(out.rgb, ref.rgb, atol=1e-4)


def test_auto_uses_numba_only_without_gradients():
    g = scene(n=50)
    with torch.no_grad():
        assert render(g, CAMS).meta["backend"] == "numba"
    means = g.means.clone().requires_grad_()
    g2 = Gaussians(means, g.quats, g.scales, g.opacities, g.sh)
    out = render(g2, CAMS)
    assert out.meta["backend"] == "torch"
    out.rgb.sum().backward()
    assert means.grad is not None and bool(means.grad.abs().sum() > 0)
    with torch.no_grad():
        assert render(g2, CAMS).meta["backend"] == "numba"


def test_numba_backend_refuses_gradients_and_other_devices_with_the_reason():
    g = scene(n=20)
    means = g.means.clone().requires_grad_()
    g2 = Gaussians(means, g.quats, g.scales, g.opacities, g.sh)
    with pytest.raises(BackendUnavailableError, match="no gradients.*torch.no_grad"):
        render(g2, CAMS, backend="numba")
    with pytest.raises(BackendUnavailableError, match="CPU tensors only"):
        _require_numba(torch.device("cuda"), needs_grad=False)


def test_frames_from_several_threads_are_the_same_frames():
    # The viewer renders from a worker thread while other threads may render too.
    from concurrent.futures import ThreadPoolExecutor

    g = scene(n=200, seed=7)
    with torch.no_grad():
        ref = render(g, CAMS, background=1.0, backend="numba").rgb
        with ThreadPoolExecutor(4) as pool:
            outs = list(pool.map(lambda _: render(g, CAMS, background=1.0).rgb, range(8)))
    assert all(torch.equal(o, ref) for o in outs)


def test_a_frame_leaves_torchs_thread_count_alone():
    # gs3d runs torch on 1 thread on small machines; numba's OpenMP layer shares the setting
    # and sets it when it starts: a fresh process, so that start happens here.
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import torch
        from gs_core import Cameras, Gaussians, render
        torch.set_num_threads(1)
        g = Gaussians(torch.rand(50, 3) - 0.5, torch.randn(50, 4), torch.rand(50, 3) * 0.1,
                      torch.rand(50), torch.rand(50, 1, 3))
        cams = Cameras.orbit([0.0], [10.0], radius=2.5, width=32, height=32)
        with torch.no_grad():
            assert render(g, cams).meta["backend"] == "numba"
        print(torch.get_num_threads())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
