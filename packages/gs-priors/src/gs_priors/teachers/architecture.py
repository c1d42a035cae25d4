"""Write a fresh procedural teacher as a checkpoint directory in its prior's official layout.

The directory is then loaded by the prior's own ``from_pretrained`` - the real-checkpoint code
path - and trained. The VAE is trained once beforehand (:mod:`gs_priors.teachers.vae`) and copied
into every teacher; the text encoders are never trained (the teachers are conditioned on images,
the prompt is always empty), so theirs stay as initialised from a fixed seed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from gs_priors.model_dir import write_model_index
from gs_priors.teachers.config import TeacherConfig

TEXT_TOKENS = 8  # the empty prompt fills the context with padding: a few tokens suffice
CLASS_NAME = "gs3d-procedural-teacher"


def build_vae(cfg: TeacherConfig, seed: int = 0):
    """The shared AutoencoderKL (4 latent channels, ``len(vae_channels) - 1`` halvings)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    n = len(cfg.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(cfg.vae_channels),
        layers_per_block=1 if cfg.resolution < 32 else 2,
        latent_channels=4,
        norm_num_groups=min(cfg.groups, cfg.vae_channels[0]),
        sample_size=cfg.resolution,
    )


def _latent_size(cfg: TeacherConfig) -> int:
    return cfg.resolution // 2 ** (len(cfg.vae_channels) - 1)


def _unet(cfg: TeacherConfig, in_channels: int):
    from diffusers import UNet2DConditionModel

    n = len(cfg.unet_channels)
    return UNet2DConditionModel(
        sample_size=_latent_size(cfg),
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        block_out_channels=tuple(cfg.unet_channels),
        layers_per_block=cfg.unet_layers,
        attention_head_dim=tuple(c // cfg.head_channels for c in cfg.unet_channels),
        cross_attention_dim=cfg.context_dim,
        norm_num_groups=cfg.groups,
    )


def _vision_config(cfg: TeacherConfig, projection: bool):
    from transformers import CLIPVisionConfig

    extra = {"projection_dim": cfg.context_dim} if projection else {}
    return CLIPVisionConfig(
        hidden_size=cfg.encoder_width,
        intermediate_size=4 * cfg.encoder_width,
        num_hidden_layers=cfg.encoder_layers,
        num_attention_heads=max(1, cfg.encoder_width // 64),
        image_size=cfg.encoder_image_size,
        patch_size=8,
        **extra,
    )


def _processor(size: int, **kwargs):
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}, **kwargs
    )


def _scheduler(prediction_type: str):
    from diffusers import DDIMScheduler

    # Stable Diffusion's training schedule (Zero123 and ImageDream keep it; Zero123++ switches
    # to linear betas and v-prediction, and ships an Euler-ancestral scheduler config:
    # gs_priors.zero123plus.official_scheduler).
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type=prediction_type,
    )


@torch.no_grad()
def _official_projection_init(projection, dim: int) -> None:
    """Zero123's init of its camera projection: the CLIP block the identity, the bias zero (the
    token starts as the CLIP embedding; the camera columns keep their random init)."""
    linear = next(m for m in projection.modules() if isinstance(m, torch.nn.Linear))
    linear.weight[:, :dim] = torch.eye(dim)
    linear.bias.zero_()


def write_teacher(cfg: TeacherConfig, directory: str | Path, vae_dir: str | Path, seed: int = 0):
    """A freshly initialised teacher of ``cfg.prior`` in ``directory`` with the VAE of
    ``vae_dir``; returns the directory. Load it with :func:`gs_priors.teachers.load_teacher`."""
    from transformers import CLIPVisionModel, CLIPVisionModelWithProjection

    from gs_priors.tiny import tiny_clip_tokenizer, tiny_text_encoder

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(vae_dir, directory / "vae", dirs_exist_ok=True)
    torch.manual_seed(seed)
    if cfg.prior == "zero123":
        from gs_priors.zero123 import camera_projection_class

        _unet(cfg, 8).save_pretrained(directory / "unet")
        CLIPVisionModelWithProjection(_vision_config(cfg, True)).save_pretrained(
            directory / "image_encoder"
        )
        _processor(cfg.encoder_image_size).save_pretrained(directory / "feature_extractor")
        projection = camera_projection_class()(
            embedding_dim=cfg.context_dim, additional_embeddings=4
        )
        _official_projection_init(projection, cfg.context_dim)
        projection.save_pretrained(directory / "clip_camera_projection")
        _scheduler("epsilon").save_pretrained(directory / "scheduler")
        write_model_index(directory, "zero123", CLASS_NAME)
    elif cfg.prior == "zero123plus":
        from gs_priors.zero123plus import official_scheduler

        tokenizer = tiny_clip_tokenizer(max_length=TEXT_TOKENS)
        _unet(cfg, 4).save_pretrained(directory / "unet")
        tiny_text_encoder(tokenizer, cfg.context_dim, seed).save_pretrained(
            directory / "text_encoder"
        )
        tokenizer.save_pretrained(directory / "tokenizer")
        CLIPVisionModelWithProjection(_vision_config(cfg, True)).save_pretrained(
            directory / "vision_encoder"
        )
        _processor(cfg.encoder_image_size).save_pretrained(directory / "feature_extractor_clip")
        # The condition image at the tile size, normalised as v1.2 does (mean 0.5, std 0.8).
        _processor(cfg.resolution, image_mean=0.5, image_std=0.8, resample=2).save_pretrained(
            directory / "feature_extractor_vae"
        )
        official_scheduler().save_pretrained(directory / "scheduler")
        write_model_index(
            directory,
            "zero123plus",
            CLASS_NAME,
            # The learned per-token scale of the image embedding starts at 1 everywhere.
            ramping_coefficients=[1.0] * TEXT_TOKENS,
        )
    else:
        from gs_priors.multiview_unet import MultiViewUNetModel

        tokenizer = tiny_clip_tokenizer(max_length=TEXT_TOKENS)
        n = len(cfg.unet_channels)
        base = cfg.unet_channels[0]
        MultiViewUNetModel(
            image_size=_latent_size(cfg),
            in_channels=4,
            out_channels=4,
            model_channels=base,
            num_res_blocks=cfg.unet_layers,
            attention_resolutions=tuple(2**k for k in range(1, n)),
            channel_mult=tuple(c // base for c in cfg.unet_channels),
            num_head_channels=cfg.head_channels,
            context_dim=cfg.context_dim,
            camera_dim=16,
            ip_dim=16,
            norm_num_groups=cfg.groups,
            ip_embedding_dim=cfg.encoder_width,
            ip_depth=2,
            ip_heads=max(1, cfg.context_dim // 64),
            ip_head_dim=min(64, cfg.context_dim),
        ).save_pretrained(directory / "unet")
        tiny_text_encoder(tokenizer, cfg.context_dim, seed).save_pretrained(
            directory / "text_encoder"
        )
        tokenizer.save_pretrained(directory / "tokenizer")
        CLIPVisionModel(_vision_config(cfg, False)).save_pretrained(directory / "image_encoder")
        _processor(cfg.encoder_image_size).save_pretrained(directory / "feature_extractor")
        _scheduler("epsilon").save_pretrained(directory / "scheduler")
        write_model_index(directory, "imagedream", CLASS_NAME)
    (directory / "teacher_config.json").write_text(cfg.model_dump_json(indent=1) + "\n")
    return directory


def load_teacher(directory: str | Path, device="cpu", dtype=torch.float32):
    """The prior of a teacher directory (or of a packed teacher file, unpacked once into a cache)
    through its class's ``from_pretrained``."""
    from gs_priors.teachers.packing import is_packed_teacher, unpacked_teacher

    directory = Path(directory)
    if is_packed_teacher(directory):
        directory = unpacked_teacher(directory)
    cfg = TeacherConfig.model_validate_json((directory / "teacher_config.json").read_text())
    if cfg.prior == "zero123":
        from gs_priors.zero123 import Zero123Guidance

        return Zero123Guidance.from_pretrained(directory, device=device, dtype=dtype)
    if cfg.prior == "zero123plus":
        from gs_priors.zero123plus import Zero123PlusGuidance

        return Zero123PlusGuidance.from_pretrained(
            directory, device=device, dtype=dtype, view_size=cfg.resolution
        )
    from gs_priors.imagedream import ImageDreamGuidance

    return ImageDreamGuidance.from_pretrained(directory, device=device, dtype=dtype)
