"""What a procedural teacher is: the prior it imitates, its size and how it is trained.

A procedural teacher is a small configuration of one of the real prior classes (Zero123,
Zero123++, ImageDream), written as a checkpoint directory in that prior's official layout and
trained here on the procedural world, so that the code which loads and runs the real
checkpoint is the code the students and DreamGaussian use offline.
"""

from __future__ import annotations

from typing import Literal

import pydantic

from gs_core.config import Config

PriorName = Literal["zero123", "zero123plus", "imagedream"]
# The camera layout of ``gs3d data procedural`` each prior trains on.
LAYOUTS: dict[str, str] = {"zero123": "random", "zero123plus": "zero123pp", "imagedream": "ring24"}
# The guidance scale each official pipeline samples with (Zero123's diffusers pipeline 3.0,
# Zero123++ 4.0, ImageDream 5.0): the "paper" scale of the usefulness checks.
PAPER_GUIDANCE: dict[str, float] = {"zero123": 3.0, "zero123plus": 4.0, "imagedream": 5.0}


class TeacherConfig(Config):
    """Architecture and training of one procedural teacher (``presets``: one per prior at the
    procedural size, and ``tiny-*`` for CPU tests)."""

    prior: PriorName = "zero123"
    resolution: int = pydantic.Field(
        128,
        ge=8,
        le=512,
        description="side of one view in pixels (Zero123++: of one of the six tiles). 128 keeps "
        "the latents at 32x32 (the official models: 256 / 320 px views, 32x32 / 40x40 latents)",
    )
    vae_channels: list[int] = pydantic.Field(
        [32, 64, 128],
        description="AutoencoderKL block widths; len - 1 halvings (3 blocks: a 4x smaller latent, "
        "SD's VAE has 4 blocks and 8x); one VAE is trained first and shared by all teachers",
    )
    unet_channels: list[int] = pydantic.Field(
        [64, 128, 192],
        description="U-Net block widths; attention at every level but the first (SD attends at "
        "64/32/16 of 64x64 latents, here at 16/8 of 32x32); 16.5 M parameters, 17 MB as int8, "
        "so a teacher travels to the GPU machine with a student",
    )
    unet_layers: int = pydantic.Field(2, ge=1, le=4, description="res blocks per level (SD: 2)")
    head_channels: int = pydantic.Field(32, ge=4, description="channels per attention head")
    context_dim: int = pydantic.Field(
        256, ge=8, description="cross-attention width (CLIP embedding / text state width)"
    )
    encoder_width: int = pydantic.Field(256, ge=8, description="CLIP vision tower width")
    encoder_layers: int = pydantic.Field(4, ge=1, description="CLIP vision tower depth")
    encoder_image_size: int = pydantic.Field(
        64, ge=16, description="CLIP input side (patch 8: 64 tokens; the official towers: 224)"
    )
    groups: int = pydantic.Field(32, ge=1, description="group-norm groups")
    # training
    batch_size: int = pydantic.Field(256, ge=1, description="samples (objects) per step")
    lr: float = pydantic.Field(3e-4, gt=0, description="AdamW learning rate after warm-up")
    warmup_steps: int = pydantic.Field(200, ge=0)
    cooldown: float = pydantic.Field(
        0.0,
        ge=0,
        le=1,
        description="final share of a run's budget (its seconds or steps, whichever runs out "
        "first) over which the learning rate falls linearly to 0; 0 keeps it constant. The decay "
        "phase of a warmup-stable-decay schedule, for a continued pack whose pose check stalled "
        "at a constant rate (the ninth and tenth runs: README)",
    )
    weight_decay: float = pydantic.Field(0.01, ge=0)
    ema_decay: float = pydantic.Field(
        0.999, ge=0, lt=1, description="EMA of the weights, which is what is saved and sampled"
    )
    condition_dropout: float = pydantic.Field(
        0.1,
        ge=0,
        le=1,
        description="share of samples trained on the prior's null condition (its "
        "classifier-free guidance branch; Zero123 and ImageDream trained with 5-10%)",
    )
    reference_dropout: float = pydantic.Field(
        0.0,
        ge=0,
        le=0.5,
        description="Zero123 only: share of samples trained with the input's CLIP embedding "
        "zeroed before the camera projection (the camera kept), and the same share again with "
        "only its VAE latent zeroed, on top of condition_dropout's whole null condition. The "
        "official Zero123 training (ldm/models/diffusion/ddpm.py, get_input with uncond = 0.05) "
        "draws these three bands of 5% each; the image-only band makes the U-Net draw from the "
        "CLIP-and-camera token alone, the one path by which the camera reaches it (the second "
        "run's teacher, trained without it, ignored its camera: README)",
    )
    camera_projection_lr_scale: float = pydantic.Field(
        10.0,
        gt=0,
        description="Zero123 only: learning-rate multiplier of clip_camera_projection, the "
        "layer that mixes the camera into the CLIP token (the official training optimises it "
        "at 10x the U-Net's rate: ddpm.py configure_optimizers). Its CLIP block starts as the "
        "identity and its bias at zero, as there; the camera columns keep nn.Linear's init",
    )
    grad_clip: float = pydantic.Field(1.0, gt=0)
    loss_weighting: Literal["uniform", "v"] = pydantic.Field(
        "v",
        description="per-timestep weight of the denoising MSE. 'uniform': the plain MSE of the "
        "prior's own target (the official Zero123 / ImageDream recipes; the teachers' first two "
        "runs). 'v': the MSE re-weighted to equal the v-prediction loss whatever the target "
        "(epsilon: 1 / alpha_bar; Zero123++ is v-prediction, so both are the same there), which "
        "moves the weight to high noise, where only the condition (input view, camera) tells the "
        "model what to draw; the prediction type and checkpoint layout stay the prior's. "
        "Measured with scripts/camera_toy.py (CPU, ~1,150 steps): the camera is learned at the "
        "same step, with 2x lower x0 error at t = 800 and 2.9x at t = 950",
    )

    presets = {
        # Zero123's official dropout: 5% whole condition, 5% CLIP only, 5% image only.
        "zero123": {"prior": "zero123", "condition_dropout": 0.05, "reference_dropout": 0.05},
        "zero123plus": {
            "prior": "zero123plus",
            "resolution": 64,
            # 64 px tiles make a 192x128 grid (48x32 latents, as many tokens as ImageDream's
            # four 32x32 frames / 2.7).
            "batch_size": 192,
        },
        "imagedream": {"prior": "imagedream", "batch_size": 96},
        # ImageDream small enough to live in the repository (17.2 MB as int8 against 27.6 MB:
        # U-Net 11.0, VAE 3.5, CLIP tower 1.9, text encoder 0.7), so that DD3G's teacher
        # survives between sessions instead of being retrained every lease (packs outside the
        # repository were lost three times). Beside AGG's 14.3 MB bundle it keeps the weights
        # under 32 MiB and the tree under 40 MiB. 48 channels need 16 groups (48 / 32 is not
        # whole) and 48-channel heads (2 and 3 heads at 96 and 144: whole, as 64 / 128 / 192
        # are with 32).
        "compact-imagedream": {
            "prior": "imagedream",
            "batch_size": 96,
            "unet_channels": [48, 96, 144],
            "groups": 16,
            "head_channels": 48,
            "encoder_width": 192,
            "context_dim": 192,
        },
        # Zero123++ at the compact ImageDream's widths, so that it warm-starts from the pack in
        # the repository (every U-Net tensor; the procedural Zero123++ has the procedural
        # ImageDream's widths and cannot). GECO's teacher is then one lease away from a tracked
        # pack; the weight budget has no room to track its own pack beside it.
        "compact-zero123plus": {
            "prior": "zero123plus",
            "resolution": 64,
            "batch_size": 192,
            "unet_channels": [48, 96, 144],
            "groups": 16,
            "head_channels": 48,
            "encoder_width": 192,
            "context_dim": 192,
        },
        # Zero123 at the same widths, so that it too warm-starts from the tracked ImageDream:
        # its U-Net from the renamed ImageDream U-Net (the 4 extra input channels of the
        # concatenated input latent start at zero), its CLIP tower from ImageDream's, and only
        # the camera projection from scratch. Rebuilding Zero123 then starts from a tracked pack,
        # not from scratch (two leases in the twelfth run, whose pack was lost).
        "compact-zero123": {
            "prior": "zero123",
            "condition_dropout": 0.05,
            "reference_dropout": 0.05,
            "unet_channels": [48, 96, 144],
            "groups": 16,
            "head_channels": 48,
            "encoder_width": 192,
            "context_dim": 192,
        },
        "tiny-zero123": {
            "prior": "zero123",
            "resolution": 16,
            "vae_channels": [8, 16],
            "unet_channels": [16, 32],
            "unet_layers": 1,
            "head_channels": 8,
            "context_dim": 16,
            "encoder_width": 16,
            "encoder_layers": 1,
            "encoder_image_size": 16,
            "groups": 4,
            "batch_size": 4,
            "warmup_steps": 2,
        },
    }


for _prior in ("zero123plus", "imagedream"):
    TeacherConfig.presets[f"tiny-{_prior}"] = {
        **TeacherConfig.presets["tiny-zero123"],
        "prior": _prior,
        "batch_size": 2,
    }
