"""gs-core's own contributions to the registry: the light image metrics PSNR and SSIM."""

from __future__ import annotations

from gs_core.plugins.hookspecs import hookimpl
from gs_core.plugins.specs import MetricSpec


def _psnr_factory(device):
    from gs_core.metrics import psnr

    return psnr


def _ssim_factory(device):
    from gs_core.metrics import ssim

    return ssim


@hookimpl
def gs3d_register_metrics(register):
    register(
        MetricSpec(
            "psnr", "peak signal-to-noise ratio in dB (images in [0, 1])", _psnr_factory, True
        )
    )
    register(
        MetricSpec(
            "ssim",
            "structural similarity, 11x11 Gaussian window (Wang et al. 2004)",
            _ssim_factory,
            True,
        )
    )
