"""The diffusion prior: image embedding -> shape embedding (Sec. 3.2, Eq. 13).

"An MLP with skip connections between layers at different depths ... multiple MLP ResBlocks. In
each block, image embedding is injected ... through concatenation, and the timestep embedding
... through addition"; x0-prediction with an L1 loss, 1000 steps. The skips join block ``i`` to
block ``n - 1 - i`` (U-Net style, summed); widths and depth are our choice (config).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gs_method_compress3d.config import PriorConfig
from gs_method_compress3d.noise_schedule import NoiseSchedule, ddim_timesteps
from gs_nets import TimestepEmbedding


class _PriorBlock(nn.Module):
    def __init__(self, width: int, cond_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc0 = nn.Linear(width + cond_dim, width)
        self.fc1 = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, cond: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        x = self.fc0(torch.cat([self.norm(h), cond], dim=-1)) + temb
        return h + self.fc1(F.silu(x))


class EmbeddingPrior(nn.Module):
    """``forward(e_s_t [B, D], t [B], e_i [B, D]) -> predicted e_s [B, D]`` (scaled embeddings)."""

    def __init__(self, dim: int, config: PriorConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.inp = nn.Linear(dim, w)
        self.time = TimestepEmbedding(w)
        self.blocks = nn.ModuleList(_PriorBlock(w, dim) for _ in range(config.blocks))
        self.out_norm = nn.LayerNorm(w)
        self.out = nn.Linear(w, dim)
        self.schedule = NoiseSchedule(config.steps, "cosine")

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, image_emb: torch.Tensor) -> torch.Tensor:
        h = self.inp(x_t)
        temb = self.time(t)
        n = len(self.blocks)
        skips: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            if self.config.skip and i >= (n + 1) // 2:
                h = h + skips[n - 1 - i]
            h = block(h, image_emb, temb)
            if self.config.skip and i < n // 2:
                skips.append(h)
        return self.out(self.out_norm(h))

    def loss(
        self,
        shape_emb: torch.Tensor,
        image_emb: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Eq. 13: ``|| f(e_s^(t), t, e_i) - e_s ||_1`` at uniform ``t``."""
        b = shape_emb.shape[0]
        dev = shape_emb.device
        t = torch.randint(0, self.config.steps, (b,), device=dev, generator=generator)
        noise = torch.randn(shape_emb.shape, device=dev, generator=generator, dtype=shape_emb.dtype)
        pred = self(self.schedule.add_noise(shape_emb, noise, t), t, image_emb)
        l1 = (pred - shape_emb).abs().mean()
        return {"loss": l1, "prior_l1": l1}

    @torch.no_grad()
    def sample(
        self,
        image_emb: torch.Tensor,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        fn=None,
    ) -> torch.Tensor:
        """DDIM from noise to a shape embedding ``[B, D]`` given ``image_emb [B, D]``; ``fn``
        replaces ``self`` as the denoiser (e.g. its CUDA-graph replay).

        ``config.candidates`` (K) embeddings are sampled per image in one batch ``[K * B, D]``
        and the one with the highest dot product with the image embedding is kept (DALL-E 2).
        """
        fn = fn or self
        b, k = image_emb.shape[0], self.config.candidates
        cond = image_emb.repeat(k, 1) if k > 1 else image_emb
        x = torch.randn(cond.shape, device=cond.device, generator=generator).to(cond.dtype)
        ts = ddim_timesteps(self.config.steps, steps or self.config.sample_steps)
        for i, t in enumerate(ts):
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
            x0 = fn(x, tt, cond)
            x = self.schedule.ddim_step(x, t, ts[i + 1] if i + 1 < len(ts) else -1, x0=x0)
        if k == 1:
            return x
        found = x.view(k, b, -1)
        best = (found.float() * image_emb.float()).sum(-1).argmax(0)  # [B]
        return found[best, torch.arange(b, device=x.device)]


__all__ = ["EmbeddingPrior"]
