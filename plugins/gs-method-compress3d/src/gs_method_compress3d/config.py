"""Configuration of Compress3D (Zhang et al. 2024, "Compress3D: a Compressed Latent Space for 3D
Generation from a Single Image").

What the paper fixes and the ``paper`` preset uses exactly (Sec. 3, 4.2): 100k input points;
feature volume ``r = 128``; downsampled attention volume ``r'' = 32``; triplane latent ``r' = 32``
with 32 channels; decoded triplane 128 x 128 x 32; FlexiCubes grid 90; 512 x 512 renders of RGB,
mask and depth; ``lambda_1 = 10, lambda_2 = 10, lambda_3 = 0.1, lambda_kl = 1e-6``; AdamW with
learning rates decaying 3e-5 -> 3e-6 (autoencoder, UNet) and 1e-5 -> 1e-6 (prior); 1280-d
OpenShape / OpenCLIP ViT-bigG-14 embeddings scaled by 0.25 (shape) and 0.85 (image); prior with
x0-prediction, L1, 1000 steps; UNet with eps-prediction, L1, 1000 steps, condition dropout
5% / 5% / 5%; DDIM 50 steps, ``s_s = 1``, ``s_p = 5``.

What it leaves open (PointNet widths, ResBlock counts, UNet widths, MLP widths, the noise
schedule, ...) is our choice, documented on each field with the source we followed.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pydantic

from gs_core.config import Config, Depth, PointCount, Resolution, Width
from gs_core.training import TrainerConfig

STAGES = ("encoders", "autoencoder", "prior", "diffusion")


class EncoderConfig(Config):
    """Triplane encoder (Sec. 3.1, Fig. 3): coloured points -> low-resolution triplane latent."""

    num_points: PointCount = pydantic.Field(
        100_000, description="input points N (paper: 100k, Sec. 4.2)"
    )
    pointnet_width: Width = pydantic.Field(
        32,
        description="PointNet hidden width; the paper gives none, we follow ConvONet's local-"
        "pooling PointNet (hidden 32 per block) that Compress3D's 'local max pooling' names",
    )
    pointnet_blocks: Depth = pydantic.Field(
        3, description="PointNet ResBlocks, each followed by local max pooling (our choice)"
    )
    position_frequencies: int = pydantic.Field(
        6,
        ge=0,
        le=16,
        description="NeRF sinusoidal position embedding octaves of xyz (paper: 'position "
        "embedding', count unspecified; 6 as NeRF uses for directions)",
    )
    pool_resolution: Resolution = pydantic.Field(
        32,
        description="grid on which points are max-pooled locally (ConvONet pools per plane / "
        "volume cell; our choice: a 32^3 volume)",
    )
    volume_resolution: Resolution = pydantic.Field(128, description="r of V^n (paper: 128)")
    volume_channels: Width = pydantic.Field(
        32, description="c, the point feature / volume channels (our choice: the latent width)"
    )
    plane_channels: list[int] = pydantic.Field(
        default_factory=lambda: [64, 128, 256],
        description="triplane widths from r down to r' (one stride-2 stage between entries; "
        "128 -> 64 -> 32 for the paper; widths our choice, giving an autoencoder of 37M "
        "parameters where the paper has 32M)",
    )
    blocks_per_level: Depth = pydantic.Field(
        1, description="TriplaneResBlocks per resolution (our choice)"
    )
    latent_resolution: Resolution = pydantic.Field(32, description="r' (paper: 32)")
    latent_channels: Width = pydantic.Field(32, description="c' (paper: 32)")
    logvar_init: float = pydantic.Field(
        0.0,
        ge=-30.0,
        le=20.0,
        description="initial bias of the VAE head's log-variance channels (paper silent; 0 is "
        "LDM's default init, a posterior of unit variance). With lambda_kl = 1e-6 the "
        "posterior ends up sharp anyway; starting it sharp spares the many steps Adam needs to "
        "walk the bias down at the autoencoder's learning rate, steps in which the decoder "
        "sees latents mostly made of noise. `small` uses -6 (sigma 0.05 against latent means "
        "of std 0.35 at init): on 8 objects at reduced size its training L_rgb over steps "
        "101-200 was 0.026 against 0.045 with 0, and 0.021 against 0.024 over steps 301-400",
    )
    groups: Width = pydantic.Field(
        16, description="GroupNorm groups of the triplane ResBlocks (our choice)"
    )


class AttentionConfig(Config):
    """3D-aware cross-attention (Sec. 3.1, Eq. 6-11, Fig. 4)."""

    enabled: bool = pydantic.Field(
        True, description="False is Table 2's 'w/o atten' ablation (no residual A added)"
    )
    volume_resolution: Resolution = pydantic.Field(32, description="r'' (paper: 32)")
    volume_channels: Width = pydantic.Field(
        32, description="c'' of V_d^n (our choice: the volume width)"
    )
    qk_dim: Width = pydantic.Field(32, description="d of queries and keys (our choice)")
    heads: Depth = pydantic.Field(
        1, description="attention heads; Eq. 11 is single-head softmax(q k^T / sqrt(d)) v"
    )


class DecoderConfig(Config):
    """Triplane decoder (Fig. 5) and the FlexiCubes / colour heads (Sec. 3.1)."""

    plane_channels: list[int] = pydantic.Field(
        default_factory=lambda: [256, 128, 32],
        description="triplane widths from r' up to the decoded resolution (one x2 upsampling "
        "between entries: 32 -> 64 -> 128 for the paper); the last is the decoded width (32)",
    )
    blocks_per_level: Depth = pydantic.Field(1, description="TriplaneResBlocks per resolution")
    groups: Width = pydantic.Field(16, description="GroupNorm groups (our choice)")
    grid_resolution: Resolution = pydantic.Field(90, description="FlexiCubes grid (paper: 90)")
    grid_scale: float = pydantic.Field(
        1.0,
        gt=0,
        description="FlexiCubes grid spans [-s/2, s/2]^3 (paper: objects normalised to the unit "
        "cube); the procedural presets use 1.1 so objects in the ball of radius 0.5 never "
        "touch the grid's border",
    )
    head_hidden: Width = pydantic.Field(
        64, description="hidden width of the SDF, deformation, weight and colour MLPs (our choice)"
    )
    head_layers: Depth = pydantic.Field(
        2, description="linear layers per head ('an MLP layer' in the paper; 2 is our choice)"
    )
    color_query: Literal["surface_points", "vertices"] = pydantic.Field(
        "surface_points",
        description="where the colour MLP is queried for the rendering losses and the "
        "evaluation: 'surface_points', the paper's 'triplane features of the mesh surface "
        "points' (deferred shading: each pixel's rasterised surface point, as GET3D / nvdiffrec "
        "colour FlexiCubes meshes), or 'vertices' (the mesh's vertices, interpolated by the "
        "rasteriser; what runs 1-3 of the README trained). With 'surface_points' the Gaussians "
        "sampled on generated meshes take the head at their centres too; exported meshes carry "
        "the head at their vertices either way (and a baked texture with texture_size)",
    )
    texture_size: int | None = pydantic.Field(
        None,
        ge=1,
        le=8192,
        description="generate(): also bake the colour head at surface points into a UV texture "
        "of this side (xatlas unwrap, then the head at every texel's 3D point), so exported "
        "meshes carry the head's colour at texel density; null (default, our choice: the "
        "unwrap takes seconds per mesh): vertex colours only",
    )
    init_radius: float = pydantic.Field(
        0.5,
        gt=0,
        lt=1,
        description="the SDF starts as a sphere of this radius (in units of the grid half-"
        "extent) so an untrained decoder already has a surface (SDF sphere initialisation)",
    )


class EmbeddingConfig(Config):
    """Shape and image embeddings (Sec. 3.2)."""

    kind: Literal["openshape", "procedural"] = pydantic.Field(
        "openshape",
        description="'openshape': OpenShape PointBERT (shape) and OpenCLIP ViT-bigG-14 (image), "
        "the paper's; 'procedural': the procedural contrastive encoders trained here (stored in "
        "the checkpoint; never reported as CLIP or OpenShape)",
    )
    dim: Width = pydantic.Field(1280, description="embedding width (paper: 1280)")
    shape_scale: float = pydantic.Field(0.25, gt=0, description="e_s scale (paper: 0.25)")
    image_scale: float = pydantic.Field(0.85, gt=0, description="e_i scale (paper: 0.85)")
    openshape: str = pydantic.Field(
        "OpenShape/openshape-pointbert-vitg14-rgb",
        description="OpenShape weights: hub id or local path (kind='openshape')",
    )
    clip_model: str = pydantic.Field("ViT-bigG-14", description="open_clip architecture")
    clip_pretrained: str = pydantic.Field(
        "laion2b_s39b_b160k",
        description="OpenCLIP tag or local path; the tag OpenShape's vitg14 model aligns with",
    )
    # kind='procedural'
    image_size: Resolution = pydantic.Field(
        64, description="procedural image encoder input size (our choice)"
    )
    image_widths: list[int] = pydantic.Field(
        default_factory=lambda: [32, 64, 128, 256],
        description="procedural image encoder CNN stage widths (stride 2 each; our choice)",
    )
    shape_width: Width = pydantic.Field(
        128, description="procedural shape encoder PointNet width (our choice)"
    )
    shape_points: PointCount = pydantic.Field(
        2048, description="points the procedural shape encoder reads (our choice)"
    )
    temperature: float = pydantic.Field(
        0.07, gt=0, description="initial contrastive temperature (CLIP's initial value)"
    )
    alignment: Literal["openshape", "joint"] = pydantic.Field(
        "openshape",
        description="how the procedural encoders are trained. 'openshape' (OpenShape's recipe: "
        "its point encoder is aligned to a frozen, separately trained CLIP image encoder): the "
        "image encoder first, alone, by InfoNCE between two views of each object, then the "
        "shape encoder by InfoNCE against the frozen image embeddings. 'joint': both at once by "
        "image-to-shape InfoNCE (before 2026-12-02). With 'joint' the image embedding itself "
        "is trained to retrieve shapes and the prior has nothing to add; with 'openshape' the "
        "prior beats it (README, prior retrieval)",
    )
    image_share: float = pydantic.Field(
        0.5,
        gt=0,
        lt=1,
        description="alignment='openshape': share of the encoders stage's steps that train the "
        "image encoder (the rest align the shape encoder; each part has its own LR schedule; "
        "our choice)",
    )


class PriorConfig(Config):
    """Diffusion prior e_i -> e_s (Sec. 3.2): MLP ResBlocks, x0-prediction, L1."""

    width: Width = pydantic.Field(
        1024, description="MLP width (our choice; with 6 blocks 24.4M parameters, paper 25.8M)"
    )
    blocks: Depth = pydantic.Field(6, description="MLP ResBlocks (our choice)")
    skip: bool = pydantic.Field(
        True,
        description="skip connections between blocks at mirrored depths (the paper's 'skip "
        "connections between layers at different depths', U-Net-like)",
    )
    steps: int = pydantic.Field(1000, ge=2, le=4000, description="training steps T (paper)")
    sample_steps: int = pydantic.Field(
        50, ge=1, le=1000, description="DDIM steps at inference (our choice, as the UNet)"
    )
    candidates: int = pydantic.Field(
        2,
        ge=1,
        le=64,
        description="shape embeddings sampled per image, keeping the one with the highest dot "
        "product with the image embedding (paper silent; DALL-E 2's prior, which this one "
        "follows, samples two and keeps the better). Held-out retrieval of the `small` prior "
        "among 256 procedural objects: 70.7 / 75.8 / 80.1 / 83.2% with 1 / 2 / 4 / 8",
    )


class UNetConfig(Config):
    """Triplane diffusion UNet (Sec. 3.3): TriplaneResBlocks + cross-attention to e_s, e_p."""

    channels: list[int] = pydantic.Field(
        default_factory=lambda: [128, 256, 512, 544],
        description="widths per resolution (our choice; LDM's layout, narrower because each "
        "TriConv has 3x the input channels of a 2D conv: with 2 blocks per level 855M "
        "parameters, paper 864M)",
    )
    blocks_per_level: Depth = pydantic.Field(2, description="ResBlocks per level (LDM: 2)")
    attention_levels: list[int] = pydantic.Field(
        default_factory=lambda: [1, 2, 3],
        description="levels whose blocks cross-attend to the embeddings (LDM: all but the first)",
    )
    heads: Depth = pydantic.Field(8, description="cross-attention heads (LDM: 8)")
    groups: Width = pydantic.Field(32, description="GroupNorm groups (LDM: 32)")
    context_tokens: Depth = pydantic.Field(
        4,
        description="tokens each 1280-d embedding is projected to for cross-attention (our "
        "choice; one token per embedding would make the softmax trivial)",
    )
    steps: int = pydantic.Field(1000, ge=2, le=4000, description="training steps T (paper)")
    beta_schedule: Literal["linear", "scaled_linear"] = pydantic.Field(
        "scaled_linear",
        description="noise schedule; the paper gives none, LDM's scaled_linear 0.00085-0.012 "
        "for latents",
    )
    sample_steps: int = pydantic.Field(50, ge=1, le=1000, description="DDIM steps (paper: 50)")
    guidance_shape: float = pydantic.Field(1.0, description="s_s of Eq. 15 (paper: 1.0)")
    guidance_image: float = pydantic.Field(5.0, description="s_p of Eq. 15 (paper: 5.0)")
    drop_image: float = pydantic.Field(0.05, ge=0, le=1, description="P(only e_p dropped)")
    drop_shape: float = pydantic.Field(0.05, ge=0, le=1, description="P(only e_s dropped)")
    drop_both: float = pydantic.Field(0.05, ge=0, le=1, description="P(both dropped)")
    use_prior: bool = pydantic.Field(
        True, description="False is Table 4's 'w/o prior' (conditioned on e_p alone)"
    )
    latent_scale: float = pydantic.Field(
        1.0,
        gt=0,
        description="multiplier bringing the latents to unit variance (LDM's scale factor; set "
        "from the data after the autoencoder stage)",
    )


class LossConfig(Config):
    """Weights of Eq. 12 and the FlexiCubes regularisers."""

    lambda_rgb: float = pydantic.Field(10.0, ge=0, description="lambda_1 (paper: 10)")
    lambda_mask: float = pydantic.Field(10.0, ge=0, description="lambda_2 (paper: 10)")
    lambda_depth: float = pydantic.Field(0.1, ge=0, description="lambda_3 (paper: 0.1)")
    lambda_kl: float = pydantic.Field(1e-6, ge=0, description="lambda_kl (paper: 1e-6)")
    lambda_dev: float = pydantic.Field(
        0.5,
        ge=0,
        description="FlexiCubes L_dev weight (FlexiCubes paper's examples: 0.5); Compress3D "
        "does not list its regularisers",
    )
    lambda_sdf_reg: float = pydantic.Field(
        0.2,
        ge=0,
        description="SDF sign-change entropy regulariser L_SDF of nvdiffrec/FlexiCubes (0.2 as "
        "FlexiCubes' examples)",
    )
    lambda_empty_surface: float = pydantic.Field(
        1.0,
        ge=0,
        description="|SDF| at ground-truth surface points of a shape that decoded to no surface "
        "(our addition, active only then: without a surface no image term has a gradient)",
    )
    views: Depth = pydantic.Field(40, description="random views per object (paper: 40)")
    render_resolution: Resolution = pydantic.Field(512, description="render size (paper: 512)")


class TrainConfig(Config):
    """Optimisation (Sec. 4.2)."""

    lr_autoencoder: float = pydantic.Field(3e-5, gt=0, description="start (paper: 3e-5)")
    lr_autoencoder_end: float = pydantic.Field(3e-6, gt=0, description="end (paper: 3e-6)")
    lr_prior: float = pydantic.Field(1e-5, gt=0, description="start (paper: 1e-5)")
    lr_prior_end: float = pydantic.Field(1e-6, gt=0, description="end (paper: 1e-6)")
    lr_unet: float = pydantic.Field(3e-5, gt=0, description="start (paper: 3e-5)")
    lr_unet_end: float = pydantic.Field(3e-6, gt=0, description="end (paper: 3e-6)")
    lr_encoders: float = pydantic.Field(
        3e-4, gt=0, description="procedural contrastive encoders (our choice)"
    )
    weight_decay: float = pydantic.Field(0.01, ge=0, description="AdamW (torch default)")
    decay: Literal["cosine", "linear"] = pydantic.Field(
        "cosine",
        description="how the learning rate 'gradually decreases' from start to end (paper "
        "silent; cosine)",
    )
    stage_steps: dict[str, int] = pydantic.Field(
        default_factory=lambda: {
            "encoders": 20_000,
            "autoencoder": 200_000,
            "prior": 100_000,
            "diffusion": 300_000,
        },
        description="optimiser steps per stage (the paper gives GPU-days, not steps)",
    )
    stage_batch: dict[str, int] = pydantic.Field(
        default_factory=lambda: {"encoders": 256, "autoencoder": 1, "prior": 256, "diffusion": 32},
        description="micro-batch per process and stage (our choice)",
    )
    resident_data: bool = pydantic.Field(
        False,
        description="decode the training split onto the training device once "
        "(gs_core.data.resident) and draw every stage's batches there, without DataLoader "
        "workers; the prior and diffusion stages then also embed the split once, as their "
        "encoders are frozen: each view's image embedding, and each object's shape embedding "
        "and autoencoder posterior from one fixed draw of its points (the DataLoader path "
        "redraws the points every step). Needs the split to fit in device memory (4,000 "
        "objects x 24 views at 128 px with depth and 16,384 points: 11 GB)",
    )
    resident_points: PointCount = pydantic.Field(
        16_384,
        description="surface points kept per object with resident_data (at least "
        "encoder.num_points and embeddings.shape_points); each encoders / autoencoder step "
        "draws its points from them without replacement, as the DataLoader path draws from "
        "the whole points.ply (procedural clouds have 16,384)",
    )
    trainer: TrainerConfig = pydantic.Field(
        default_factory=lambda: TrainerConfig(precision="bf16", clip_grad_norm=1.0),
        description="engine settings shared by the stages (max_steps / batch_size come from "
        "stage_steps / stage_batch)",
    )

    @pydantic.field_validator("stage_steps", "stage_batch")
    @classmethod
    def _stages(cls, v: dict[str, int]) -> dict[str, int]:
        missing = [s for s in STAGES if s not in v]
        bad = [k for k in v if k not in STAGES]
        if missing or bad:
            raise ValueError(f"keys must be the stages {', '.join(STAGES)}")
        if any(n < 1 for n in v.values()):
            raise ValueError("values must be positive")
        return v


class Compress3DConfig(Config):
    """Everything about one Compress3D model; presets ``paper``, ``small`` (procedural world on
    one GPU), ``tiny`` (CPU tests)."""

    encoder: EncoderConfig = pydantic.Field(default_factory=EncoderConfig)
    attention: AttentionConfig = pydantic.Field(default_factory=AttentionConfig)
    decoder: DecoderConfig = pydantic.Field(default_factory=DecoderConfig)
    embeddings: EmbeddingConfig = pydantic.Field(default_factory=EmbeddingConfig)
    prior: PriorConfig = pydantic.Field(default_factory=PriorConfig)
    unet: UNetConfig = pydantic.Field(default_factory=UNetConfig)
    loss: LossConfig = pydantic.Field(default_factory=LossConfig)
    train: TrainConfig = pydantic.Field(default_factory=TrainConfig)
    gaussians_per_mesh: int = pydantic.Field(
        16_384,
        ge=1,
        le=1_000_000,
        description="flat Gaussians sampled on the output mesh (gs_core mesh_to_gaussians) so "
        "the method joins the Gaussian protocols; our choice (AGG's 16,384)",
    )

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        # The procedural world on one GPU: 64^3 volume, 16^2 latent, 64^2 decoded planes.
        "small": {
            "encoder": {
                "num_points": 8192,
                "volume_resolution": 64,
                "plane_channels": [32, 64, 64],
                "latent_resolution": 16,
                "latent_channels": 16,
                "pool_resolution": 16,
                "logvar_init": -6.0,
            },
            "attention": {"volume_resolution": 16, "volume_channels": 32, "qk_dim": 32},
            "decoder": {
                "plane_channels": [64, 64, 32],
                "grid_resolution": 48,
                "grid_scale": 1.1,
                "head_hidden": 64,
            },
            "embeddings": {
                "kind": "procedural",
                "dim": 256,
                "shape_scale": 1.0,
                "image_scale": 1.0,
            },
            "prior": {"width": 512, "blocks": 4},
            "unet": {
                "channels": [64, 128, 128],
                "blocks_per_level": 2,
                "attention_levels": [1, 2],
                "heads": 4,
                "context_tokens": 4,
            },
            "loss": {"views": 4, "render_resolution": 128},
            "train": {
                "lr_autoencoder": 3e-4,
                "lr_autoencoder_end": 3e-5,
                "lr_prior": 1e-4,
                "lr_prior_end": 1e-5,
                "lr_unet": 1e-4,
                "lr_unet_end": 1e-5,
                "stage_steps": {
                    "encoders": 3000,
                    "autoencoder": 6000,
                    "prior": 4000,
                    "diffusion": 10000,
                },
                "stage_batch": {"encoders": 128, "autoencoder": 4, "prior": 128, "diffusion": 32},
                "resident_data": True,
                "trainer": {"precision": "bf16", "clip_grad_norm": 1.0, "num_workers": 6},
            },
            "gaussians_per_mesh": 16_384,
        },
        "tiny": {
            "encoder": {
                "num_points": 512,
                "pointnet_width": 16,
                "pointnet_blocks": 2,
                "position_frequencies": 2,
                "pool_resolution": 4,
                "volume_resolution": 16,
                "volume_channels": 8,
                "plane_channels": [8, 16],
                "latent_resolution": 8,
                "latent_channels": 4,
                "groups": 4,
            },
            "attention": {"volume_resolution": 8, "volume_channels": 8, "qk_dim": 8},
            "decoder": {
                "plane_channels": [16, 8],
                "groups": 4,
                "grid_resolution": 8,
                "grid_scale": 1.1,
                "head_hidden": 16,
            },
            "embeddings": {
                "kind": "procedural",
                "dim": 16,
                "shape_scale": 1.0,
                "image_scale": 1.0,
                "image_size": 32,
                "image_widths": [8, 16],
                "shape_width": 16,
                "shape_points": 256,
            },
            "prior": {"width": 32, "blocks": 2, "sample_steps": 4},
            "unet": {
                "channels": [8, 16],
                "blocks_per_level": 1,
                "attention_levels": [1],
                "heads": 2,
                "groups": 4,
                "context_tokens": 2,
                "sample_steps": 3,
            },
            "loss": {"views": 2, "render_resolution": 32},
            "train": {
                "lr_autoencoder": 1e-2,
                "lr_autoencoder_end": 1e-3,
                "lr_prior": 1e-3,
                "lr_prior_end": 1e-4,
                "lr_unet": 1e-3,
                "lr_unet_end": 1e-4,
                "lr_encoders": 1e-3,
                "stage_steps": {"encoders": 4, "autoencoder": 3, "prior": 4, "diffusion": 4},
                "stage_batch": {"encoders": 4, "autoencoder": 2, "prior": 4, "diffusion": 4},
                "resident_data": True,
                "resident_points": 512,
                "trainer": {"precision": "fp32", "device": "cpu", "progress": "off"},
            },
            "gaussians_per_mesh": 256,
        },
    }

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Compress3DConfig:
        enc, att, dec = self.encoder, self.attention, self.decoder
        levels = len(enc.plane_channels) - 1
        if enc.volume_resolution != enc.latent_resolution * 2**levels:
            raise ValueError(
                f"encoder.volume_resolution ({enc.volume_resolution}) must be "
                f"latent_resolution * 2^(len(plane_channels) - 1) = "
                f"{enc.latent_resolution * 2**levels}"
            )
        if enc.volume_resolution % att.volume_resolution:
            raise ValueError(
                f"attention.volume_resolution ({att.volume_resolution}) must divide "
                f"encoder.volume_resolution ({enc.volume_resolution}) (the stride o of Eq. 6)"
            )
        if att.volume_resolution % enc.latent_resolution:
            raise ValueError(
                f"attention.volume_resolution ({att.volume_resolution}) must be a multiple of "
                f"encoder.latent_resolution ({enc.latent_resolution}) (m of Eq. 9-10)"
            )
        if att.qk_dim % att.heads:
            raise ValueError(f"attention.qk_dim ({att.qk_dim}) must divide by heads")
        if enc.volume_resolution % enc.pool_resolution:
            raise ValueError("encoder.pool_resolution must divide encoder.volume_resolution")
        for name, chans, groups in (
            ("encoder.plane_channels", enc.plane_channels, enc.groups),
            ("decoder.plane_channels", dec.plane_channels, dec.groups),
            ("unet.channels", self.unet.channels, self.unet.groups),
        ):
            if not chans or any(c % groups for c in chans):
                raise ValueError(f"{name} must be non-empty multiples of their groups ({groups})")
        if any(lv < 0 or lv >= len(self.unet.channels) for lv in self.unet.attention_levels):
            raise ValueError("unet.attention_levels must index unet.channels")
        if self.unet.drop_image + self.unet.drop_shape + self.unet.drop_both > 1:
            raise ValueError("unet.drop_image + drop_shape + drop_both must be at most 1")
        if enc.latent_resolution % 2 ** (len(self.unet.channels) - 1):
            raise ValueError("encoder.latent_resolution must divide by 2^(len(unet.channels) - 1)")
        if self.embeddings.dim % self.unet.context_tokens:
            raise ValueError("embeddings.dim must divide by unet.context_tokens")
        return self

    @property
    def decoded_resolution(self) -> int:
        return self.encoder.latent_resolution * 2 ** (len(self.decoder.plane_channels) - 1)


__all__ = [
    "STAGES",
    "AttentionConfig",
    "Compress3DConfig",
    "DecoderConfig",
    "EmbeddingConfig",
    "EncoderConfig",
    "LossConfig",
    "PriorConfig",
    "TrainConfig",
    "UNetConfig",
]
