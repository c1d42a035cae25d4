"""SmallViT: the from-scratch image ViT shared by AGG and DD3G."""

from __future__ import annotations

import torch

from gs_nets import SmallViT


def test_a_half_precision_vit_takes_float32_images_of_any_size():
    # Methods cast to bf16 pass the float32 images they are given; the antialiased resize has
    # no bf16 CPU kernel, so it must run in float32 and the patch embedding in the weights'.
    torch.manual_seed(0)
    vit = SmallViT(image_size=16, patch_size=8, dim=8, depth=2, num_heads=2).eval()
    rgb = torch.rand(2, 3, 40, 24)
    ref = vit(rgb)
    out = vit.to(dtype=torch.bfloat16)(rgb)
    assert ref.shape == out.shape == (2, 5, 8) and out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() < 0.1
