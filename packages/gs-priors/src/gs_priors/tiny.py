"""Tiny, randomly initialised diffusers checkpoints for tests and CPU smoke runs.

Each ``save_tiny_*`` builds the components of a real checkpoint layout with a few thousand
parameters, writes them with ``save_pretrained`` into ``directory`` and returns it; the guidance
classes then load them offline with ``from_pretrained(directory)`` exactly as they would load
the real model. Random weights are only ever written here, explicitly - loading never invents
them. Method plugins use these to test their own priors (Zero123++, ImageDream) on CPU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch

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


def _write_index(directory: Path, components: dict[str, tuple[str, str]]) -> None:
    index = {"_class_name": "gs3d-tiny", **{k: list(v) for k, v in components.items()}}
    (directory / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def save_tiny_stable_diffusion(
    directory: str | Path,
    seed: int = 0,
    prediction_type: Literal["epsilon", "v_prediction", "sample"] = "epsilon",
) -> Path:
    """A Stable-Diffusion-layout checkpoint (vae, unet, text_encoder, tokenizer, scheduler)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_clip_tokenizer()
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=TINY_CROSS_DIM,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=tokenizer.model_max_length,
            projection_dim=TINY_CROSS_DIM,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    tiny_vae(seed).save_pretrained(directory / "vae")
    tiny_unet(4, TINY_CROSS_DIM, seed).save_pretrained(directory / "unet")
    text_encoder.save_pretrained(directory / "text_encoder")
    tokenizer.save_pretrained(directory / "tokenizer")
    tiny_scheduler(prediction_type).save_pretrained(directory / "scheduler")
    _write_index(
        directory,
        {
            "vae": ("diffusers", "AutoencoderKL"),
            "unet": ("diffusers", "UNet2DConditionModel"),
            "text_encoder": ("transformers", "CLIPTextModel"),
            "tokenizer": ("transformers", "CLIPTokenizer"),
            "scheduler": ("diffusers", "DDIMScheduler"),
        },
    )
    return directory


def save_tiny_zero123(directory: str | Path, seed: int = 0) -> Path:
    """A Zero123-layout checkpoint (vae, 8-channel unet, image_encoder, feature_extractor,
    clip_camera_projection, scheduler) with CLIP images of 32x32."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from gs_priors.zero123 import camera_projection_class

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed + 3)
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
            projection_dim=TINY_CROSS_DIM,
        )
    )
    torch.manual_seed(seed + 4)
    projection = camera_projection_class()(embedding_dim=TINY_CROSS_DIM, additional_embeddings=4)
    processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    tiny_vae(seed).save_pretrained(directory / "vae")
    tiny_unet(8, TINY_CROSS_DIM, seed).save_pretrained(directory / "unet")
    image_encoder.save_pretrained(directory / "image_encoder")
    processor.save_pretrained(directory / "feature_extractor")
    projection.save_pretrained(directory / "clip_camera_projection")
    tiny_scheduler("epsilon").save_pretrained(directory / "scheduler")
    _write_index(
        directory,
        {
            "vae": ("diffusers", "AutoencoderKL"),
            "unet": ("diffusers", "UNet2DConditionModel"),
            "image_encoder": ("transformers", "CLIPVisionModelWithProjection"),
            "feature_extractor": ("transformers", "CLIPImageProcessor"),
            "clip_camera_projection": ("zero123", "CLIPCameraProjection"),
            "scheduler": ("diffusers", "DDIMScheduler"),
        },
    )
    return directory
