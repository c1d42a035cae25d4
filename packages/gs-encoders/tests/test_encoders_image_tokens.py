"""ImageTokenEncoder: one module for a generator's image tokens, DINOv2 or a scratch ViT."""

from __future__ import annotations

import pydantic
import pytest
import torch

from gs_core.errors import WeightsNotFoundError
from gs_encoders import ImageTokenEncoder, ImageTokenEncoderConfig


def _vit(**kw) -> ImageTokenEncoder:
    cfg = dict(kind="vit", image_size=16, patch_size=8, dim=24, depth=2, num_heads=2)
    return ImageTokenEncoder(ImageTokenEncoderConfig(**{**cfg, **kw}))


def test_vit_tokens_put_cls_first_and_resize_inputs():
    torch.manual_seed(0)
    enc = _vit()
    rgb = torch.rand(3, 3, 40, 40)
    tokens = enc(rgb)
    assert tokens.shape == (3, 1 + 4, 24) and enc.dim == 24
    assert torch.equal(tokens, enc.vit(rgb))  # the ViT's own output, CLS first
    assert enc.dino is None
    assert all(k.startswith("vit.") for k in enc.state_dict())  # checkpoints' key layout
    assert not any(p.requires_grad for p in enc.parameters())  # frozen unless trainable
    assert all(p.requires_grad for p in _vit(trainable=True).parameters())
    enc.ensure_weights()  # nothing pending: a scratch ViT's weights live in its checkpoint


def test_dinov2_tokens_are_cls_then_patches():
    cfg = ImageTokenEncoderConfig(variant="small", pretrained=None, image_size=28)
    enc = ImageTokenEncoder(cfg)
    rgb = torch.rand(2, 3, 28, 28)
    out = enc.dino(rgb)
    tokens = enc(rgb)
    assert tokens.shape == (2, 1 + 4, 384) and enc.dim == 384
    assert torch.equal(tokens[:, :1], out.cls) and torch.equal(tokens[:, 1:], out.patches)
    assert enc.vit is None and all(k.startswith("dino.") for k in enc.state_dict())


def test_official_dinov2_is_fetched_on_first_use_not_at_construction(offline_hub):
    enc = ImageTokenEncoder(ImageTokenEncoderConfig(variant="small", image_size=28))
    with pytest.raises(WeightsNotFoundError, match="dinov2"):
        enc.ensure_weights()


def test_bad_fields_are_named():
    with pytest.raises(pydantic.ValidationError, match="kind"):
        ImageTokenEncoderConfig(kind="resnet")
    with pytest.raises(pydantic.ValidationError, match="extra|unknown|dims"):
        ImageTokenEncoderConfig(dims=3)
