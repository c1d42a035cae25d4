"""Tiny, randomly initialised diffusers checkpoints for tests and CPU smoke runs.

Each ``save_tiny_*`` builds the components of a real checkpoint layout with a few thousand
parameters, writes them with ``save_pretrained`` into ``directory`` and returns it; the guidance
classes then load them offline with ``from_pretrained(directory)`` exactly as they would load
the real model. Random weights are only ever written here, explicitly - loading never invents
them. Method plugins use these to test their own priors (Zero123++, ImageDream) on CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from gs_priors.model_dir import write_model_index

TINY_CROSS_DIM = 16
TINY_LATENT_SIZE = 8  # latents 8x8, images 16x16 (VAE downsamples by 2)


def tiny_unet(in_channels: int = 4, cross_attention_dim: int = TINY_CROSS_DIM, seed: int = 0):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=TINY_LATENT_SIZE,
        in_channels=in_channels,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=2,
        norm_num_groups=4,
    )


def tiny_vae(seed: int = 0):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed + 1)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=2 * TINY_LATENT_SIZE,
    )


def tiny_scheduler(prediction_type: Literal["epsilon", "v_prediction", "sample"] = "epsilon"):
    from diffusers import DDIMScheduler

    # Stable Diffusion's training schedule.
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        prediction_type=prediction_type,
    )


def tiny_clip_tokenizer(max_length: int = 16):
    """A byte-level CLIP tokenizer without merges (every character is a token)."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for c in chars:
            vocab.setdefault(c + suffix, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def tiny_clip_vision(with_projection: bool = True):
    """A CLIP vision tower of 32x32 images in 8 px patches, 16 wide, 2 layers (with a
    ``TINY_CROSS_DIM`` projection, ``CLIPVisionModelWithProjection``, or without), and its
    processor (shortest edge 32, centre crop 32)."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        CLIPVisionModelWithProjection,
    )

    config = CLIPVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=TINY_CROSS_DIM,
    )
    model = (CLIPVisionModelWithProjection if with_projection else CLIPVisionModel)(config)
    processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    return model, processor


def save_tiny_stable_diffusion(
    directory: str | Path,
    seed: int = 0,
    prediction_type: Literal["epsilon", "v_prediction", "sample"] = "epsilon",
) -> Path:
    """A Stable-Diffusion-layout checkpoint (vae, unet, text_encoder, tokenizer, scheduler)."""

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_clip_tokenizer()
    text_encoder = tiny_text_encoder(tokenizer, TINY_CROSS_DIM, seed)
    tiny_vae(seed).save_pretrained(directory / "vae")
    tiny_unet(4, TINY_CROSS_DIM, seed).save_pretrained(directory / "unet")
    text_encoder.save_pretrained(directory / "text_encoder")
    tokenizer.save_pretrained(directory / "tokenizer")
    tiny_scheduler(prediction_type).save_pretrained(directory / "scheduler")
    write_model_index(directory, "stable_diffusion", "gs3d-tiny")
    return directory


def save_tiny_zero123(directory: str | Path, seed: int = 0) -> Path:
    """A Zero123-layout checkpoint (vae, 8-channel unet, image_encoder, feature_extractor,
    clip_camera_projection, scheduler) with CLIP images of 32x32."""
    from gs_priors.zero123 import camera_projection_class

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed + 3)
    image_encoder, processor = tiny_clip_vision()
    torch.manual_seed(seed + 4)
    projection = camera_projection_class()(embedding_dim=TINY_CROSS_DIM, additional_embeddings=4)
    tiny_vae(seed).save_pretrained(directory / "vae")
    tiny_unet(8, TINY_CROSS_DIM, seed).save_pretrained(directory / "unet")
    image_encoder.save_pretrained(directory / "image_encoder")
    processor.save_pretrained(directory / "feature_extractor")
    projection.save_pretrained(directory / "clip_camera_projection")
    tiny_scheduler("epsilon").save_pretrained(directory / "scheduler")
    write_model_index(directory, "zero123", "gs3d-tiny")
    return directory


def tiny_text_encoder(tokenizer, hidden_size: int = TINY_CROSS_DIM, seed: int = 0):
    """A two-layer CLIP text encoder over ``tokenizer``'s vocabulary."""
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed + 2)
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            intermediate_size=2 * hidden_size,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=tokenizer.model_max_length,
            projection_dim=hidden_size,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )


def tiny_multiview_unet(
    seed: int = 0, context_dim: int = TINY_CROSS_DIM, clip_dim: int = 16, ip_dim: int = 4
):
    """An ImageDream-layout multi-view U-Net (camera MLP, ``ip_dim`` image-prompt tokens; 0 for
    MVDream's layout) on 8x8 latents.

    The official initialisation zeroes every block's output layer, so an untrained model would
    predict exactly zero; here those layers get random weights too, so that every path (joint
    attention, camera, text, image prompt, input frame) reaches the output in tests.
    """
    from gs_priors.multiview_unet import MultiViewUNetModel

    torch.manual_seed(seed + 5)
    unet = MultiViewUNetModel(
        image_size=TINY_LATENT_SIZE,
        in_channels=4,
        out_channels=4,
        model_channels=16,
        num_res_blocks=1,
        attention_resolutions=(1, 2),
        channel_mult=(1, 2),
        num_head_channels=8,
        transformer_depth=1,
        context_dim=context_dim,
        camera_dim=16,
        ip_dim=ip_dim,
        norm_num_groups=4,
        ip_embedding_dim=clip_dim,
        ip_depth=1,
        ip_heads=2,
        ip_head_dim=8,
    )
    with torch.no_grad():
        for p in unet.parameters():
            if p.ndim > 1 and not p.any():
                p.normal_(0.0, 0.2)
    return unet


def save_tiny_imagedream(directory: str | Path, seed: int = 0) -> Path:
    """An ImageDream-layout checkpoint (vae, multi-view unet, text_encoder, tokenizer,
    scheduler, image_encoder, feature_extractor) with 16x16 views and CLIP images of 32x32."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_clip_tokenizer()
    torch.manual_seed(seed + 6)
    image_encoder, processor = tiny_clip_vision(with_projection=False)
    tiny_vae(seed).save_pretrained(directory / "vae")
    tiny_multiview_unet(seed, TINY_CROSS_DIM, 16).save_pretrained(directory / "unet")
    tiny_text_encoder(tokenizer, TINY_CROSS_DIM, seed).save_pretrained(directory / "text_encoder")
    tokenizer.save_pretrained(directory / "tokenizer")
    tiny_scheduler("epsilon").save_pretrained(directory / "scheduler")
    image_encoder.save_pretrained(directory / "image_encoder")
    processor.save_pretrained(directory / "feature_extractor")
    write_model_index(directory, "imagedream", "gs3d-tiny")
    return directory


# Zero123++ at view size 8: a 24x16 grid, 12x8 latents; a 12x12 condition image (6x6 latents),
# so the reference and the denoised latents differ in shape, as 64x64 and 120x80 do at paper size.
TINY_ZERO123PLUS_VIEW_SIZE = 8


def save_tiny_zero123plus(directory: str | Path, seed: int = 0) -> Path:
    """A Zero123++-layout checkpoint (vae, unet, text_encoder, tokenizer, vision_encoder,
    feature_extractor_clip, feature_extractor_vae, scheduler, ``ramping_coefficients`` in
    model_index.json); load it with ``view_size=TINY_ZERO123PLUS_VIEW_SIZE``."""
    from transformers import CLIPImageProcessor

    from gs_priors.zero123plus import official_scheduler

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_clip_tokenizer()
    text_encoder = tiny_text_encoder(tokenizer, TINY_CROSS_DIM, seed + 3)
    # The image embedding is added to the text states: one width for both.
    vision_encoder, vision_processor = tiny_clip_vision()
    ramping = torch.rand(tokenizer.model_max_length, generator=torch.Generator().manual_seed(seed))
    tiny_vae(seed).save_pretrained(directory / "vae")
    tiny_unet(4, TINY_CROSS_DIM, seed).save_pretrained(directory / "unet")
    text_encoder.save_pretrained(directory / "text_encoder")
    vision_encoder.save_pretrained(directory / "vision_encoder")
    tokenizer.save_pretrained(directory / "tokenizer")
    vision_processor.save_pretrained(directory / "feature_extractor_clip")
    # v1.2's condition normalisation: mean 0.5, std 0.8.
    CLIPImageProcessor(
        size={"shortest_edge": 12},
        crop_size={"height": 12, "width": 12},
        image_mean=0.5,
        image_std=0.8,
        resample=2,
    ).save_pretrained(directory / "feature_extractor_vae")
    official_scheduler().save_pretrained(directory / "scheduler")
    write_model_index(
        directory,
        "zero123plus",
        "gs3d-tiny",
        ramping_coefficients=[round(float(v), 6) for v in ramping],
    )
    return directory


def paper_size_sd_vae():
    """Stable Diffusion's VAE architecture (the one Zero123, ImageDream and Zero123++ share),
    random weights, on the current default device."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        sample_size=256,
    )


def paper_size_zero123(
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0
):
    """Zero123-XL (``ashawkey/zero123-xl-diffusers``) at paper size with random weights, for
    timing: an SD 1.x U-Net on 8 channels (noisy + image latent), SD's VAE, CLIP ViT-L/14 at
    224 px (quick GELU, 768-d projection) and the 772 -> 768 camera projection; DDIM on SD's
    training schedule."""
    from diffusers import DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from gs_priors.zero123 import Zero123Guidance, camera_projection_class

    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNet2DConditionModel(
            sample_size=32,
            in_channels=8,
            out_channels=4,
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            attention_head_dim=8,
            cross_attention_dim=768,
        )
        encoder = CLIPVisionModelWithProjection(
            CLIPVisionConfig(
                hidden_size=1024,
                intermediate_size=4096,
                num_hidden_layers=24,
                num_attention_heads=16,
                image_size=224,
                patch_size=14,
                projection_dim=768,
                hidden_act="quick_gelu",
            )
        )
        vae = paper_size_sd_vae()
        projection = camera_projection_class()(embedding_dim=768, additional_embeddings=4)
    # The schedule's tables stay on the CPU (the prior keeps a CPU copy of alphas_cumprod).
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    prior = Zero123Guidance(vae, unet, encoder, projection, scheduler)
    return prior.to(device=device, dtype=dtype)


def paper_size_imagedream(
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0
):
    """ImageDream at paper size with random weights, built directly on ``device`` (for timing
    and memory; nothing is written or downloaded): SD's VAE, a 23-layer 1024-wide CLIP text
    encoder, a CLIP ViT-H/14 image encoder at 224 px and the official multi-view U-Net (its
    output layers zero as initialised). The tokenizer is :func:`tiny_clip_tokenizer` at 77
    tokens, so the text embedding table has 514 rows instead of 49,408; compute is unchanged.
    """
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModel

    from gs_priors.imagedream import ImageDreamGuidance
    from gs_priors.multiview_unet import MultiViewUNetModel

    tokenizer = tiny_clip_tokenizer(max_length=77)
    scheduler = tiny_scheduler("epsilon")
    torch.manual_seed(seed)
    with torch.device(device):
        vae = paper_size_sd_vae()
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=1024,
                intermediate_size=4096,
                num_hidden_layers=23,
                num_attention_heads=16,
                max_position_embeddings=77,
                hidden_act="gelu",
                projection_dim=512,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            )
        )
        image_encoder = CLIPVisionModel(
            CLIPVisionConfig(
                hidden_size=1280,
                intermediate_size=5120,
                num_hidden_layers=32,
                num_attention_heads=16,
                image_size=224,
                patch_size=14,
                hidden_act="gelu",
                projection_dim=1024,
            )
        )
        unet = MultiViewUNetModel()
    prior = ImageDreamGuidance(vae, unet, text_encoder, tokenizer, image_encoder, scheduler)
    return prior.to(device=device, dtype=dtype)
