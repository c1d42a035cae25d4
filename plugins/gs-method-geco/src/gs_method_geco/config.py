"""Configuration of GECO (Wang et al. 2024, "GECO: Generative Image-to-3D within a SECOnd"), v1:
a one-step Zero123++ generator distilled by VSD (stage I), then jointly fine-tuned with an LGM
reconstructor on pseudo ground truth (stage II).

What the paper fixes and ``paper`` uses exactly (Sec. 3, 4.1): Zero123++ v1.1 as teacher, student
and initial generator; the clean condition image for reference attention in the generator; CFG 4
for generator and teacher, 1 for the student; student ``t ~ U[0.02, 0.98]``; Adam, lr 1e-6,
betas (0.9, 0.999) for both, updated alternately for 5,000 iterations; gray (127) condition
background; LGM as reconstructor; pseudo ground truth from a deterministic 75-step DDIM teacher
sample reconstructed by LGM and rendered at 50 random views; stage II with lr 1e-6, batch 8,
10 epochs, MSE + lambda LPIPS (eq. 3). What it leaves open carries "our choice" and the reason
on its field. No official code is public.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pydantic

from gs_core.config import Config, Resolution, ViewCount
from gs_nets.splatter_unet import SplatterUNetConfig

STAGES = ("vsd", "joint")

# Zero123++ v1.1's networks (gs_priors.zero123plus.PAPER_CONFIGS, written out so that the
# config module imports neither diffusers nor gs_priors).
_PAPER_UNET: dict[str, Any] = {
    "sample_size": 96,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "up_block_types": [
        "UpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
    ],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "attention_head_dim": [5, 10, 20, 20],
    "cross_attention_dim": 1024,
    "use_linear_projection": True,
}
_PAPER_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "sample_size": 768,
    "scaling_factor": 0.18215,
}
_PAPER_VISION: dict[str, Any] = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 14,
    "projection_dim": 1024,
    "hidden_act": "gelu",
}

# gs_priors.tiny.save_tiny_zero123plus's networks (view size 8, 12x12 condition latent input).
_TINY_UNET: dict[str, Any] = {
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 1,
    "block_out_channels": [8, 16],
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "cross_attention_dim": 16,
    "attention_head_dim": 2,
    "norm_num_groups": 4,
}
_TINY_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
    "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"],
    "block_out_channels": [8, 16],
    "latent_channels": 4,
    "layers_per_block": 1,
    "norm_num_groups": 4,
    "sample_size": 16,
}
_TINY_VISION: dict[str, Any] = {
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
    "projection_dim": 16,
}


class GeneratorConfig(Config):
    """The one-step multi-view generator G (Sec. 3.1): Zero123++'s U-Net at the last timestep.

    The network layouts are diffusers / transformers config dicts. ``None`` means "the
    teacher's": :meth:`gs_method_geco.model.GECO.from_teacher` fills them from the teacher
    checkpoint (the ``small`` preset, whose procedural teacher is trained separately).
    """

    unet: dict[str, Any] | None = pydantic.Field(
        default_factory=lambda: dict(_PAPER_UNET),
        description="UNet2DConditionModel config (Zero123++ v1.1's SD2 768-v U-Net)",
    )
    vae: dict[str, Any] | None = pydantic.Field(
        default_factory=lambda: dict(_PAPER_VAE), description="AutoencoderKL config (SD's VAE)"
    )
    vision_encoder: dict[str, Any] | None = pydantic.Field(
        default_factory=lambda: dict(_PAPER_VISION),
        description="CLIPVisionConfig of the image embedding (CLIP ViT-H/14)",
    )
    prompt_tokens: int = pydantic.Field(
        77,
        ge=1,
        le=512,
        description="tokens of the (empty) prompt's text states; the generator stores those "
        "states as a buffer instead of a text encoder because GECO's prompt is always empty",
    )
    view_size: Resolution = pydantic.Field(320, description="side of each of the six views")
    version: Literal["v1.1", "v1.2"] = pydantic.Field(
        "v1.1", description="Zero123++ version of the teacher (the paper: v1.1, Sec. 4.1)"
    )
    clip_size: Resolution = 224
    clip_mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    clip_std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    reference_size: Resolution = pydantic.Field(
        512, description="condition image side before the VAE (feature_extractor_vae)"
    )
    reference_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    reference_std: tuple[float, float, float] = (0.8, 0.8, 0.8)
    # The teacher's noise schedule (Zero123++'s scheduler_config.json).
    num_train_timesteps: int = pydantic.Field(1000, ge=2, le=10_000)
    beta_start: float = pydantic.Field(0.00085, gt=0, lt=1)
    beta_end: float = pydantic.Field(0.012, gt=0, lt=1)
    beta_schedule: Literal["linear", "scaled_linear"] = "linear"
    prediction_type: Literal["v_prediction", "epsilon", "sample"] = "v_prediction"
    guidance_scale: float = pydantic.Field(
        4.0, ge=1.0, description="CFG inside G (Sec. 4.1: 'a fixed guidance scale of 4')"
    )
    reference_timestep: Literal["same", "zero"] = pydantic.Field(
        "same",
        description="timestep embedding of the write pass over the clean condition latent. "
        "The paper keeps the reference clean but does not say at which t; 'same' (our choice) "
        "passes the call's t as the teacher does, so only the reference's noise changes from "
        "the teacher's computation; 'zero' embeds t = 0",
    )


class ReconstructorConfig(Config):
    """The reconstructor R = LGM (Sec. 3.2) and the six-view adapter in front of it."""

    lgm: SplatterUNetConfig = pydantic.Field(
        default_factory=lambda: SplatterUNetConfig.preset("big"),
        description="LGM's splatter UNet ('big': ashawkey/LGM's released model)",
    )
    weights: str | None = pydantic.Field(
        "ashawkey/LGM",
        description="LGM weights loaded when stage I starts (hub id, file or directory); "
        "null: R keeps its own weights (trained here or from a GECO checkpoint)",
    )
    camera_radius: float = pydantic.Field(
        1.5, gt=0, description="radius of the six cameras given to LGM (LGM's training radius)"
    )
    fov_deg: float = pydantic.Field(
        49.1,
        gt=0,
        lt=180,
        description="field of view of the six cameras given to LGM. Zero123++ v1.1 has none of "
        "its own; our choice is LGM's 49.1, the only one the released LGM was trained with",
    )
    prob_grid_distortion: float = pydantic.Field(
        0.5, ge=0, le=1, description="LGM's grid-distortion probability per sample"
    )
    grid_distortion_strength: float = pydantic.Field(0.5, ge=0, le=1)
    prob_camera_jitter: float = pydantic.Field(
        0.5, ge=0, le=1, description="LGM's orbital camera-jitter probability per sample"
    )
    camera_jitter_strength: float = pydantic.Field(0.1, ge=0, le=1)
    background: tuple[float, float, float] = pydantic.Field(
        (1.0, 1.0, 1.0), description="render background of R's Gaussians (LGM: white)"
    )


class GECOConfig(Config):
    """Everything about one GECO model; presets ``paper``, ``small`` (the procedural-world proof,
    ``scripts/train_small.py``), ``tiny`` (CPU tests)."""

    generator: GeneratorConfig = pydantic.Field(default_factory=GeneratorConfig)
    reconstructor: ReconstructorConfig = pydantic.Field(default_factory=ReconstructorConfig)
    teacher: str = pydantic.Field(
        "sudo-ai/zero123plus-v1.1",
        description="the Zero123++ teacher (hub id or diffusers directory) of both stages",
    )

    # Stage I: VSD (Sec. 3.1, eq. 1-2; Sec. 4.1).
    vsd_iterations: int = pydantic.Field(
        5000, ge=1, description="generator/student iterations, each one update of both"
    )
    vsd_batch_size: int = pydantic.Field(
        1, ge=1, le=1024, description="condition images per iteration (our choice: one L40)"
    )
    lr_generator: float = pydantic.Field(1e-6, gt=0)
    lr_student: float = pydantic.Field(1e-6, gt=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    teacher_guidance_scale: float = pydantic.Field(4.0, ge=1.0)
    student_guidance_scale: float = pydantic.Field(1.0, ge=1.0)
    student_t_range: tuple[float, float] = (0.02, 0.98)
    teacher_t_range: tuple[float, float] = pydantic.Field(
        (0.02, 0.98),
        description="t of the generator's VSD term (our choice: the student's range, the paper "
        "names only that one)",
    )
    vsd_weighting: Literal["sds", "uniform"] = pydantic.Field(
        "sds", description="w(t) of eq. 1 (our choice: DreamFusion's 1 - alpha_bar_t)"
    )

    # Pseudo ground truth (Sec. 3.2, 4.1).
    teacher_steps: int = pydantic.Field(75, ge=1, le=1000, description="deterministic DDIM steps")
    teacher_timestep_spacing: Literal["leading", "trailing", "linspace"] | None = pydantic.Field(
        None, description="DDIM timestep spacing; null: the teacher's scheduler config"
    )
    pseudo_views: ViewCount = pydantic.Field(50, description="random views rendered per object")
    pseudo_noises: int = pydantic.Field(
        1,
        ge=1,
        le=64,
        description="noises z drawn per condition image, each with its own teacher sample and "
        "renders (Sec. 3.2 collects D = (z, {I_i^syn(z)}) 'for each sampled noise z'; how many "
        "per image is not given: 1 is our choice, the GPU budget of the offline proof)",
    )
    pseudo_elevation_range: tuple[float, float] = pydantic.Field(
        (-20.0, 30.0),
        description="elevations (deg) of the random views (our choice: the span of the six "
        "Zero123++ v1.1 views, -20 to 30)",
    )
    render_resolution: Resolution = pydantic.Field(
        512, description="pseudo-ground-truth and stage-II renders (LGM big's output size)"
    )

    # Stage II (eq. 3; Sec. 4.1).
    lr_joint: float = pydantic.Field(1e-6, gt=0)
    joint_batch_size: int = pydantic.Field(8, ge=1, le=1024)
    joint_epochs: int = pydantic.Field(10, ge=1)
    joint_views: ViewCount = pydantic.Field(
        4, description="pseudo views per object per step (our choice: LGM trains on 4 targets)"
    )
    lambda_mse: float = pydantic.Field(1.0, ge=0, description="eq. 3, RGB MSE")
    lambda_lpips: float = pydantic.Field(
        1.0, ge=0, description="eq. 3's lambda (not given; our choice: LGM's weight 1)"
    )
    lpips_net: Literal["vgg", "alex"] = pydantic.Field(
        "vgg", description="LPIPS backbone (LGM's VGG)"
    )
    augment_joint: bool = pydantic.Field(
        False,
        description="apply LGM's augmentations to G's views in stage II (our choice: off; the "
        "inconsistency of G's views is what stage II learns to absorb)",
    )

    # Inference.
    cuda_graphs: bool = pydantic.Field(
        True,
        description="replay the condition encoding, G and R as CUDA graphs in generate() on "
        "CUDA (static shapes)",
    )
    compile: list[Literal["condition", "unet", "vae", "lgm"]] = pydantic.Field(
        default_factory=list,
        description=(
            "our choice: torch.compile these parts in place (static shapes) on the first "
            "generate() call: the condition encoders (CLIP vision tower and VAE encoder), G's "
            "U-Net, the VAE decoder, the reconstructor LGM. Off by default "
            "because the first call compiles for minutes at paper size (U-Net 103 s, VAE "
            "decoder 19 s, LGM 39 s on an H200, 2026-12-03); after it, all four cut the graphed "
            "end to end from 120.3 to 67.7 ms in one run (README, Speed). Compiled parts stay "
            "compiled for training calls too"
        ),
    )
    compile_backend: str = pydantic.Field(
        "inductor",
        description="torch.compile backend for `compile` ('eager' traces without generating "
        "code: the CPU tests use it)",
    )

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        # The procedural-world proof: the lead's procedural Zero123++ teacher (its layout is read
        # from its checkpoint), a small LGM trained here on the teacher's view layout, both
        # stages on one GPU in minutes. LPIPS is off: its VGG weights cannot be fetched offline
        # (the same reason AGG's small preset gives); MSE alone is eq. 3 with lambda = 0.
        "small": {
            "generator": {"unet": None, "vae": None, "vision_encoder": None, "view_size": 64},
            "reconstructor": {
                "lgm": {
                    "input_size": 64,
                    "down_channels": [32, 64, 128, 256],
                    "down_attention": [False, False, True, True],
                    "up_channels": [256, 128, 64],
                    "up_attention": [True, False, False],
                    "layers_per_block": 1,
                    "attention_heads": 8,
                    "groups": 16,
                },
                "weights": None,
            },
            "teacher": "procedural-zero123plus",
            "vsd_iterations": 600,
            "vsd_batch_size": 4,
            # A randomly initialised procedural teacher moves further per step than the real
            # one at 1e-6; our choice keeps both learning rates equal as the paper requires.
            "lr_generator": 1e-5,
            "lr_student": 1e-5,
            "teacher_steps": 75,
            "pseudo_views": 16,
            "render_resolution": 64,
            "lr_joint": 1e-4,
            "joint_batch_size": 8,
            "joint_epochs": 10,
            "lambda_lpips": 0.0,
        },
        "tiny": {
            "generator": {
                "unet": _TINY_UNET,
                "vae": _TINY_VAE,
                "vision_encoder": _TINY_VISION,
                "prompt_tokens": 16,
                "view_size": 8,
                "clip_size": 32,
                "clip_mean": (0.48145466, 0.4578275, 0.40821073),
                "clip_std": (0.26862954, 0.26130258, 0.27577711),
                "reference_size": 12,
            },
            "reconstructor": {
                "lgm": {**SplatterUNetConfig.presets["tiny"], "input_size": 16, "groups": 8},
                "weights": None,
            },
            "teacher": "tiny-zero123plus",
            "vsd_iterations": 2,
            "vsd_batch_size": 1,
            "lr_generator": 1e-3,
            "lr_student": 1e-3,
            "teacher_steps": 3,
            "pseudo_views": 4,
            "render_resolution": 16,
            "lr_joint": 1e-4,
            "joint_batch_size": 2,
            "joint_epochs": 1,
            "joint_views": 2,
            "lambda_lpips": 0.0,
        },
    }


__all__ = ["STAGES", "GECOConfig", "GeneratorConfig", "ReconstructorConfig"]
