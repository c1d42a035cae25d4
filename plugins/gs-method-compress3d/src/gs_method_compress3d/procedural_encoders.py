"""Procedural contrastive encoders: the offline stand-in for OpenCLIP (images) and OpenShape
(coloured point clouds).

Compress3D's embeddings come from OpenShape, whose point encoder is trained to land next to the
OpenCLIP embeddings of the same object's renders. Neither set of weights can be fetched here, so
a small image CNN and a small point encoder are trained on the procedural world with the same
kind of objective (CLIP's symmetric InfoNCE with a learnable temperature). By default in
OpenShape's order (``EmbeddingConfig.alignment``): the image encoder alone first (two views of
an object are a positive pair), then the point encoder against its frozen image embeddings.
Their embeddings are unit vectors times ``sqrt(D)`` (unit variance per dimension, the property
the paper's 0.25 / 0.85 scales establish). They are named
"procedural contrastive encoders" everywhere and never reported as CLIP or OpenShape.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import ValidationError
from gs_method_compress3d.config import EmbeddingConfig


def _unit_scaled(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1) * math.sqrt(x.shape[-1])


class ProceduralImageEncoder(nn.Module):
    """``forward(rgb [B, 3, H, W] in [0, 1]) -> [B, D]``: stride-2 conv stages, mean pool, linear."""

    def __init__(self, cfg: EmbeddingConfig):
        super().__init__()
        self.image_size = cfg.image_size
        layers: list[nn.Module] = []
        cin = 3
        for w in cfg.image_widths:
            layers += [
                nn.Conv2d(cin, w, 3, stride=2, padding=1),
                nn.GroupNorm(min(8, w), w),
                nn.SiLU(),
                nn.Conv2d(w, w, 3, padding=1),
                nn.SiLU(),
            ]
            cin = w
        self.features = nn.Sequential(*layers)
        self.proj = nn.Linear(cin, cfg.dim)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if rgb.ndim != 4 or rgb.shape[1] != 3:
            raise ValidationError("images", "RGB [B, 3, H, W]", str(tuple(rgb.shape)))
        # Resized in float32 (antialiased bilinear has no bf16 / fp16 CPU kernel), then in the
        # weights' dtype: a model cast to half precision takes float32 images from its callers.
        size = (self.image_size,) * 2
        x = F.interpolate(rgb.float(), size=size, mode="bilinear", antialias=True)
        x = x.to(self.proj.weight.dtype)
        x = self.features(x * 2.0 - 1.0).mean(dim=(-1, -2))
        return _unit_scaled(self.proj(x))


class ProceduralShapeEncoder(nn.Module):
    """``forward(xyz [B, N, 3], rgb [B, N, 3]) -> [B, D]``: a PointNet (shared MLP, max and mean
    pooling) on centred points and colours."""

    def __init__(self, cfg: EmbeddingConfig):
        super().__init__()
        w = cfg.shape_width
        self.mlp = nn.Sequential(
            nn.Linear(6, w), nn.SiLU(), nn.Linear(w, w), nn.SiLU(), nn.Linear(w, 2 * w)
        )
        self.head = nn.Sequential(nn.Linear(4 * w, 2 * w), nn.SiLU(), nn.Linear(2 * w, cfg.dim))

    def forward(self, xyz: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        if xyz.ndim != 3 or xyz.shape[-1] != 3 or rgb.shape != xyz.shape:
            raise ValidationError("points", "xyz and rgb [B, N, 3]", str(tuple(xyz.shape)))
        h = self.mlp(torch.cat([xyz, rgb], dim=-1))
        pooled = torch.cat([h.amax(dim=1), h.mean(dim=1)], dim=-1)
        return _unit_scaled(self.head(pooled))


class ProceduralContrastiveEncoders(nn.Module):
    """Both encoders and the learnable temperatures of their InfoNCE objectives: image to shape
    (``log_scale``) and, for OpenShape's recipe, view to view (``view_log_scale``)."""

    def __init__(self, cfg: EmbeddingConfig):
        super().__init__()
        self.image = ProceduralImageEncoder(cfg)
        self.shape = ProceduralShapeEncoder(cfg)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.temperature)))
        self.view_log_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.temperature)))

    def loss(
        self,
        rgb: torch.Tensor,
        xyz: torch.Tensor,
        point_rgb: torch.Tensor,
        image_frozen: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Symmetric InfoNCE over a batch of (image, point cloud) pairs of the same objects;
        ``image_frozen``: the image embeddings are targets (OpenShape aligns its point encoder
        to a frozen image encoder)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not image_frozen):
            ei = self.image(rgb)
        loss, acc = info_nce(ei, self.shape(xyz, point_rgb), self.log_scale)
        return {"loss": loss, "contrastive": loss, "retrieval_acc": acc}

    def view_loss(self, rgb_a: torch.Tensor, rgb_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """Symmetric InfoNCE between two views ``[B, 3, H, W]`` each of the same objects: the
        image encoder trained alone, as the frozen image side of OpenShape's alignment."""
        loss, acc = info_nce(self.image(rgb_a), self.image(rgb_b), self.view_log_scale)
        return {"loss": loss, "view_contrastive": loss, "view_retrieval_acc": acc}


def info_nce(
    a: torch.Tensor, b: torch.Tensor, log_scale: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP's symmetric InfoNCE between ``a[i]`` and ``b[i]`` (``[B, D]`` each) with the
    learnable logit scale ``exp(log_scale)`` (capped at 100, as CLIP caps it), and the top-1
    accuracy of ``a`` retrieving ``b`` in the batch (detached)."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T * log_scale.clamp(max=math.log(100.0)).exp()
    target = torch.arange(len(a), device=a.device)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    acc = (logits.argmax(dim=1) == target).float().mean()
    return loss, acc.detach()


def retrieval_accuracy(queries: torch.Tensor, keys: torch.Tensor) -> float:
    """Top-1 accuracy of retrieving ``keys[i]`` for ``queries[i]`` by cosine similarity among
    all keys (``[N, D]`` each)."""
    sim = F.normalize(queries.float(), dim=-1) @ F.normalize(keys.float(), dim=-1).T
    target = torch.arange(len(queries), device=queries.device)
    return float((sim.argmax(dim=1) == target).float().mean())


__all__ = [
    "ProceduralContrastiveEncoders",
    "ProceduralImageEncoder",
    "ProceduralShapeEncoder",
    "info_nce",
    "retrieval_accuracy",
]
