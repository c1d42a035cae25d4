"""gs-losses' contribution to the plugin registry: LPIPS (VGG and AlexNet) as evaluation metrics."""

from __future__ import annotations

from collections.abc import Callable

import torch

from gs_core.plugins.hookspecs import hookimpl
from gs_core.plugins.specs import MetricSpec


def lpips_metric_factory(
    net: str,
) -> Callable[[torch.device], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """``factory(device) -> fn(pred [B, H, W, 3], target) -> [B]``; raises WeightsNotFoundError
    (from :class:`~gs_losses.perceptual.LPIPS`) when the backbone weights are absent."""

    def factory(device: torch.device):
        from gs_losses.perceptual import LPIPS

        model = LPIPS(net).to(device)

        @torch.no_grad()
        def lpips_fn(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            p = pred.to(device=device, dtype=torch.float32).permute(0, 3, 1, 2)
            t = target.to(device=device, dtype=torch.float32).permute(0, 3, 1, 2)
            return model(p, t)

        return lpips_fn

    return factory


@hookimpl
def gs3d_register_metrics(register) -> None:
    register(
        MetricSpec(
            "lpips_vgg",
            "LPIPS v0.1 with a VGG16 trunk (Zhang et al. 2018); lower is better",
            lpips_metric_factory("vgg"),
            higher_is_better=False,
        )
    )
    register(
        MetricSpec(
            "lpips_alex",
            "LPIPS v0.1 with an AlexNet trunk (Zhang et al. 2018); lower is better",
            lpips_metric_factory("alex"),
            higher_is_better=False,
        )
    )
