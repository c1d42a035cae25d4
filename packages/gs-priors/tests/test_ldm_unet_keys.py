"""The original Stable Diffusion U-Net layout renamed to diffusers' (ImageDream -> Zero123++ warm
start): every diffusers tensor gets exactly one source, and with one frame, no camera and no
image prompt the renamed multi-view U-Net computes what the original computes."""

from __future__ import annotations

import pytest
import torch

from gs_priors.teachers.ldm_unet_keys import diffusers_key, to_diffusers


def _pair(channels=(16, 32, 48), layers=2, camera=None, ip=0):
    from diffusers import UNet2DConditionModel

    from gs_priors.multiview_unet import MultiViewUNetModel

    n, base = len(channels), channels[0]
    torch.manual_seed(0)
    mv = MultiViewUNetModel(
        image_size=8, in_channels=4, out_channels=4, model_channels=base, num_res_blocks=layers,
        attention_resolutions=tuple(2**k for k in range(1, n)),
        channel_mult=tuple(c // base for c in channels), num_head_channels=8, context_dim=16,
        camera_dim=camera, ip_dim=ip, norm_num_groups=4, ip_embedding_dim=16, ip_depth=1,
        ip_heads=1, ip_head_dim=16,
    )  # fmt: skip
    # The procedural teachers' UNet2DConditionModel (gs_priors.teachers.architecture._unet).
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        block_out_channels=channels, layers_per_block=layers,
        attention_head_dim=tuple(c // 8 for c in channels), cross_attention_dim=16,
        norm_num_groups=4,
    )  # fmt: skip
    return mv, unet


@pytest.mark.parametrize("layers", [1, 2])
def test_renamed_multiview_unet_computes_the_same_as_diffusers(layers):
    mv, unet = _pair(layers=layers)
    with torch.no_grad():  # the original zero-initialises output layers: make every one count
        for q in mv.parameters():
            q.add_(0.1 * torch.randn_like(q))
    target = unet.state_dict()
    renamed = to_diffusers(mv.state_dict(), layers, target)
    assert set(renamed) == set(target)  # one source for every tensor, nothing left over
    assert all(renamed[k].shape == target[k].shape for k in target)
    unet.load_state_dict(renamed)
    x, t, ctx = torch.randn(2, 4, 8, 8), torch.tensor([10, 700]), torch.randn(2, 5, 16)
    with torch.no_grad():
        want = mv(x, t, ctx, num_frames=1, return_dict=False)
        got = unet(x, t, encoder_hidden_states=ctx).sample
    assert want.abs().mean() > 1e-3
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_imagedream_s_camera_and_image_prompt_are_left_out():
    mv, unet = _pair(camera=16, ip=4)
    state = mv.state_dict()
    renamed = to_diffusers(state, 2, unet.state_dict())
    assert set(renamed) == set(unet.state_dict())
    dropped = [k for k in state if diffusers_key(k, 2) is None]
    assert dropped and all(
        k.startswith(("camera_embed.", "image_embed.")) or "_ip." in k for k in dropped
    )
    assert any(".to_k_ip." in k for k in dropped) and any(
        k.startswith("camera_embed.") for k in dropped
    )
    with pytest.raises(KeyError):
        diffusers_key("input_blocks.1.7.weight", 2)
    with pytest.raises(KeyError):
        diffusers_key("something.else", 2)
