"""The triplane diffusion UNet (Sec. 3.3): eps-prediction on triplane latents conditioned on the
shape embedding ``e_s`` and the image embedding ``e_p``.

"The diffusion backbone is a UNet, which contains multiple ResBlocks and down/up sample layers.
The input and output of each ResBlock are triplanes, and we use 3D-aware convolution in each
ResBlock. Shape embedding e_s and image embedding e_p are injected into ResBlocks through cross
attention." The layout (levels, two ResBlocks per level, skip concatenation, a middle block,
scale-shift timestep modulation) follows LDM's UNet, with :class:`gs_nets.TriplaneResBlock`
(TriConv) and :class:`gs_nets.TriplaneCrossAttention`. Each embedding becomes
``context_tokens`` tokens by a linear map; dropped conditions are learned null embeddings
(``null_shape``, ``null_image``), substituted before that map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gs_method_compress3d.config import UNetConfig
from gs_nets import (
    TimestepEmbedding,
    TriConv,
    TriplaneCrossAttention,
    TriplaneDownsample,
    TriplaneGroupNorm,
    TriplaneResBlock,
    TriplaneUpsample,
)


class _Block(nn.Module):
    def __init__(self, cin, cout, emb, ctx, attn: bool, cfg: UNetConfig):
        super().__init__()
        self.res = TriplaneResBlock(cin, cout, emb_dim=emb, groups=cfg.groups)
        self.attn = TriplaneCrossAttention(cout, ctx, cfg.heads, cfg.groups) if attn else None

    def forward(self, h, temb, context):
        h = self.res(h, temb)
        return self.attn(h, context) if self.attn is not None else h


class TriplaneUNet(nn.Module):
    """``forward(z_t [B, 3, c', r', r'], t [B], shape_emb [B, D], image_emb [B, D]) -> eps``."""

    def __init__(self, latent_channels: int, embed_dim: int, cfg: UNetConfig):
        super().__init__()
        self.config = cfg
        ch = cfg.channels
        emb = 4 * ch[0]
        ctx = embed_dim // cfg.context_tokens
        self.time = TimestepEmbedding(emb, freq_dim=ch[0])
        self.null_shape = nn.Parameter(torch.zeros(embed_dim))
        self.null_image = nn.Parameter(torch.zeros(embed_dim))
        self.to_tokens_shape = nn.Linear(embed_dim, embed_dim)
        self.to_tokens_image = nn.Linear(embed_dim, embed_dim)
        self.conv_in = TriConv(latent_channels, ch[0], 3)
        self.down = nn.ModuleList()
        skip_ch = [ch[0]]
        cur = ch[0]
        for lv, c in enumerate(ch):
            for _ in range(cfg.blocks_per_level):
                self.down.append(_Block(cur, c, emb, ctx, lv in cfg.attention_levels, cfg))
                cur = c
                skip_ch.append(cur)
            if lv < len(ch) - 1:
                self.down.append(TriplaneDownsample(cur))
                skip_ch.append(cur)
        self.mid1 = _Block(cur, cur, emb, ctx, True, cfg)
        self.mid2 = TriplaneResBlock(cur, cur, emb_dim=emb, groups=cfg.groups)
        self.up = nn.ModuleList()
        for lv in reversed(range(len(ch))):
            c = ch[lv]
            for _ in range(cfg.blocks_per_level + 1):
                self.up.append(
                    _Block(cur + skip_ch.pop(), c, emb, ctx, lv in cfg.attention_levels, cfg)
                )
                cur = c
            if lv > 0:
                self.up.append(TriplaneUpsample(cur))
        self.norm_out = TriplaneGroupNorm(cfg.groups, cur)
        self.conv_out = TriConv(cur, latent_channels, 3)
        nn.init.zeros_(self.conv_out.conv.weight)
        nn.init.zeros_(self.conv_out.conv.bias)

    def context(
        self,
        shape_emb: torch.Tensor,
        image_emb: torch.Tensor,
        drop_shape: torch.Tensor | None = None,
        drop_image: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Cross-attention tokens ``[B, 2 * context_tokens, D / context_tokens]``; ``drop_*
        [B]`` bool replace an embedding by its learned null (classifier-free guidance)."""
        if drop_shape is not None:
            shape_emb = torch.where(drop_shape[:, None], self.null_shape.to(shape_emb), shape_emb)
        if drop_image is not None:
            image_emb = torch.where(drop_image[:, None], self.null_image.to(image_emb), image_emb)
        b, n = shape_emb.shape[0], self.config.context_tokens
        s = self.to_tokens_shape(shape_emb).reshape(b, n, -1)
        i = self.to_tokens_image(image_emb).reshape(b, n, -1)
        return torch.cat([s, i], dim=1)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        temb = self.time(t)
        h = self.conv_in(z_t)
        skips = [h]
        for mod in self.down:
            h = mod(h, temb, context) if isinstance(mod, _Block) else mod(h)
            skips.append(h)
        h = self.mid2(self.mid1(h, temb, context), temb)
        for mod in self.up:
            if isinstance(mod, _Block):
                h = mod(torch.cat([h, skips.pop()], dim=2), temb, context)
            else:
                h = mod(h)
        return self.conv_out(F.silu(self.norm_out(h)))


__all__ = ["TriplaneUNet"]
