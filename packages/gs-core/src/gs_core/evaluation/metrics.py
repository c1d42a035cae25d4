"""Metric plumbing: the metrics the plugin registry offers, built for one device.

gs-core contributes PSNR and SSIM; other packages add theirs through the
``gs3d_register_metrics`` hook (LPIPS from gs-losses, CLIP similarity from gs-encoders), so a
metric exists exactly when its package is installed. A metric whose factory fails (missing
weights, missing optional dependency) is reported as unavailable with the reason instead of
aborting the evaluation, unless it was asked for by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from gs_core.errors import GS3DError
from gs_core.plugins.specs import MetricFn, MetricSpec

PAIRS = ("render-gt", "render-input")


@dataclass
class LoadedMetrics:
    """Ready-to-call metrics and the ones that could not be built (name -> reason)."""

    fns: dict[str, MetricFn] = field(default_factory=dict)
    specs: dict[str, MetricSpec] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    def columns(self) -> list[tuple[str, str, str]]:
        """``(column name, metric name, pair)``: ``psnr`` for render-gt, ``clip_input`` for
        render-input pairs."""
        cols = []
        for name, spec in self.specs.items():
            if name not in self.fns:
                continue
            for pair in spec.pairs:
                if pair not in PAIRS:
                    continue
                cols.append((name if pair == "render-gt" else f"{name}_input", name, pair))
        return cols


def available_metrics() -> dict[str, MetricSpec]:
    from gs_core.plugins.registry import get_registry

    return get_registry().metrics()


def load_metrics(names: Sequence[str] | None, device: torch.device) -> LoadedMetrics:
    """Build the metrics ``names`` (None: every registered one) for ``device``.

    Unknown names raise :class:`GS3DError` listing what is installed. A factory that raises is
    an error when the metric was named explicitly, else it is recorded in ``unavailable``.
    """
    specs = available_metrics()
    if names is not None:
        unknown = [n for n in names if n not in specs]
        if unknown:
            raise GS3DError(
                f"unknown metric(s) {', '.join(unknown)} (installed: {', '.join(specs) or 'none'}; "
                "LPIPS comes with gs-losses, CLIP with gs-encoders)"
            )
        chosen = {n: specs[n] for n in names}
    else:
        chosen = specs
    out = LoadedMetrics(specs=dict(chosen))
    for name, spec in chosen.items():
        try:
            out.fns[name] = spec.factory(device)
        except Exception as e:  # a plugin's factory may fail in many ways (weights, imports)
            if names is not None:
                raise GS3DError(
                    f"metric '{name}' ({spec.distribution or 'unknown package'}) is unavailable: {e}"
                ) from None
            out.unavailable[name] = f"{type(e).__name__}: {e}"
    return out


@torch.no_grad()
def score(fn: MetricFn, pred: torch.Tensor, target: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """``fn`` over ``[K, H, W, 3]`` image pairs in chunks; returns ``[K]`` float32 on the CPU."""
    vals = []
    for a in range(0, pred.shape[0], chunk):
        v = fn(pred[a : a + chunk], target[a : a + chunk])
        v = torch.as_tensor(v).reshape(-1).float().cpu()
        if v.numel() != min(chunk, pred.shape[0] - a):
            raise GS3DError(
                f"metric returned {v.numel()} values for {min(chunk, pred.shape[0] - a)} image pairs"
            )
        vals.append(v)
    return torch.cat(vals)
