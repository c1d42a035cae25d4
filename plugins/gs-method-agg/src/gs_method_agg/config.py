"""Configuration of AGG (Xu et al. 2024, "AGG: Amortized Generative 3D Gaussians for Single Image
to 3D"): network sizes, canonical Gaussians, training stages.

What the paper fixes and the ``paper`` preset uses exactly: DINOv2-base at 256x256 with CLS and
patch tokens (Sec. 3.2, 4.1); one learnable query per Gaussian, 4,096 coarse Gaussians with
isotropic scale 0.03, super-resolution by ``r = 4`` to 16,384 Gaussians with scale 0.01, rotation
``[1, 0, 0, 0]``, SH degree 0 (Sec. 3.1, 4.1); transformer blocks of cross-attention,
self-attention and MLP with LayerNorm/GELU (Sec. 3.2); a triplane texture field with a shared
decoding MLP; a point-voxel UNet with cross-attention before and after the feature expansion
(Sec. 3.3); ``L = L_rgba + w1 L_lpips`` (eq. 4) and the attribute Chamfer warm-up (Sec. 3.4.2).
What it leaves open (transformer widths and depths, triplane size, MLP widths, learning rates,
``w1``) is our choice and documented as such on each field.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pydantic

from gs_core.config import (
    MAX_GAUSSIANS,
    MAX_RESOLUTION,
    Config,
    Depth,
    GaussianCount,
    PointCount,
    Resolution,
    ViewCount,
    Width,
)
from gs_core.training import ScheduleConfig, TrainerConfig
from gs_encoders.image_tokens import ImageTokenEncoderConfig
from gs_method_agg.point_upsampler import PointUpsamplerConfig
from gs_method_agg.triplane_generator import TriplaneGeneratorConfig

STAGES = ("warmup", "coarse", "sr")


def _sa(mlp: list[int], pv: tuple[int, int, int], k: int = 16) -> dict:
    return {
        "pv_channels": pv[0],
        "pv_blocks": pv[1],
        "voxel_resolution": pv[2],
        "stride": 4,
        "k": k,
        "mlp": mlp,
    }


def _fp(mlp: list[int], pv: tuple[int, int, int]) -> dict:
    return {"mlp": mlp, "pv_channels": pv[0], "pv_blocks": pv[1], "voxel_resolution": pv[2]}


# Two-level point-voxel UNet of the bundled model (PVCNN++ "small" halved in depth and voxels).
_SMALL_UNET = {
    "sa_levels": [_sa([32, 64], (32, 1, 16)), _sa([64, 128], (64, 1, 8))],
    "fp_levels": [_fp([128, 64], (64, 1, 8)), _fp([64, 64], (32, 1, 16))],
}


class ImageEncoderConfig(ImageTokenEncoderConfig):
    """The image encoder: DINOv2 through timm, or a DINOv2-architecture ViT trained from scratch.

    ``kind="dinov2"`` is the paper's encoder (``variant="base"``, ``image_size=256``, which
    gs-encoders snaps to 252 = 18 x 14). ``kind="vit"`` is a small ViT of the same block design
    (pre-norm, LayerScale, GELU MLP) whose weights live in the AGG checkpoint; the bundled
    procedural-world model uses it because pretrained DINOv2 weights cannot be fetched on the
    offline machines it was trained on and DINOv2-small alone would exceed the 48 MiB bundle.
    The fields and the module are gs-encoders' (:class:`gs_encoders.ImageTokenEncoder`).
    """

    image_size: Resolution = pydantic.Field(256, description="encoder input side (Sec. 4.1)")


class GeometryConfig(Config):
    """The geometry predictor (Sec. 3.2): queries -> AGG blocks -> MLP head -> xyz.

    Widths and depth are our choice (the paper gives none)."""

    dim: Width = 512
    depth: Depth = 8
    num_heads: Depth = 8
    mlp_ratio: float = pydantic.Field(4.0, gt=0, le=64)
    head_hidden: Width = 256
    layer_scale_init: float | None = 1e-5


class AGGConfig(Config):
    """Everything about one AGG model; presets ``paper``, ``small`` (the bundled
    procedural-world model), ``tiny`` (CPU tests)."""

    encoder: ImageEncoderConfig = pydantic.Field(default_factory=ImageEncoderConfig)
    geometry: GeometryConfig = pydantic.Field(default_factory=GeometryConfig)
    texture: TriplaneGeneratorConfig = pydantic.Field(default_factory=TriplaneGeneratorConfig)
    texture_decoder_hidden: Width = pydantic.Field(
        128, description="hidden width of the shared triplane decoding MLP (our choice)"
    )
    upsampler: PointUpsamplerConfig = pydantic.Field(
        default_factory=lambda: PointUpsamplerConfig.preset("paper")
    )

    # Canonical Gaussians (Sec. 3.1, 3.4.1, 4.1).
    num_gaussians: GaussianCount = pydantic.Field(4096, description="coarse Gaussians = queries")
    coarse_scale: float = pydantic.Field(0.03, gt=0)
    fine_scale: float = pydantic.Field(0.01, gt=0)
    position_bound: float = pydantic.Field(
        0.6, gt=0, description="means lie in [-b, b]^3 (tanh); the triplane spans this cube"
    )
    sr_offset_scale: float = pydantic.Field(
        0.05, gt=0, description="largest move of a super-resolved child from its parent"
    )

    # Ablations of Table 2.
    texture_field: bool = pydantic.Field(
        True,
        description="False: 'w/o Texture Field', the geometry predictor decodes all attributes",
    )
    super_resolution: bool = pydantic.Field(
        True, description="False: 'w/o Super Resolution', only the coarse generator"
    )

    # Rendering supervision (eq. 4) and the camera system of the data (Sec. 4.1).
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    render_resolution: Resolution = pydantic.Field(
        256, description="target views and renders (our choice: the encoder input size)"
    )
    num_target_views: ViewCount = pydantic.Field(4, description="random novel views per object")
    camera_radius: float = pydantic.Field(1.5, gt=0, description="of generate()'s default views")
    fov_deg: float = pydantic.Field(49.1, gt=0, lt=180)
    lambda_rgb: float = pydantic.Field(1.0, ge=0, description="L_rgba, colour part (L1)")
    lambda_alpha: float = pydantic.Field(1.0, ge=0, description="L_rgba, alpha part (L1)")
    lambda_lpips: float = pydantic.Field(1.0, ge=0, description="w1 of eq. 4 (our choice)")
    lpips_net: Literal["vgg", "alex"] = "vgg"

    # Warm-up (Sec. 3.4.2): attribute Chamfer against per-object 3DGS pseudo labels.
    warmup_target: Literal["fitted", "points"] = pydantic.Field(
        "fitted",
        description="'fitted': gaussians.ply of `gs3d fit` (the paper); 'points': the "
        "ground-truth coloured surface points with opacity 1",
    )
    warmup_points: PointCount = pydantic.Field(8192, description="pseudo-label points per object")
    lambda_chamfer_xyz: float = pydantic.Field(1.0, ge=0)
    lambda_chamfer_opacity: float = pydantic.Field(1.0, ge=0)
    lambda_chamfer_rgb: float = pydantic.Field(1.0, ge=0)

    # Optimisation.
    lr: float = pydantic.Field(4e-4, gt=0)
    weight_decay: float = pydantic.Field(0.05, ge=0)
    lr_schedule: ScheduleConfig = pydantic.Field(
        default_factory=lambda: ScheduleConfig(kind="cosine", warmup_steps=500, final_ratio=0.05)
    )
    sr_train_coarse: bool = pydantic.Field(
        False, description="sr stage: also update the coarse generator (cascade: frozen)"
    )
    resident_data: bool = pydantic.Field(
        False,
        description="decode the whole training split onto the training device once and draw "
        "batches there (gs_core.data.resident), instead of DataLoader workers; needs the "
        "split's views to fit in device memory (2,000 objects x 24 views at 128 px: 3.1 GB)",
    )
    train: TrainerConfig = pydantic.Field(
        default_factory=lambda: TrainerConfig(
            max_steps=100_000, batch_size=8, precision="bf16", clip_grad_norm=1.0
        )
    )

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        # The bundled procedural-world model: the paper's Gaussians (4,096 coarse queries,
        # r = 4 -> 16,384, canonical scales 0.03 / 0.01) with smaller networks, trained from
        # scratch, 14.0 M parameters (fp16 under the repository's 32 MiB weight budget).
        "small": {
            "encoder": {
                "kind": "vit",
                "pretrained": None,
                "trainable": True,
                "image_size": 128,
                "patch_size": 8,
                "dim": 192,
                "depth": 6,
                "num_heads": 3,
            },
            "geometry": {"dim": 256, "depth": 4, "num_heads": 4, "head_hidden": 128},
            "texture": {
                "context_dim": 192,
                "dim": 256,
                "depth": 4,
                "num_heads": 4,
                "token_resolution": 16,
                # 64 x 64 planes: a texel is 0.0375 wide in the position cube, so patterns
                # (checker, stripes) survive; the deconvolution costs 0.1 M parameters.
                "upsample_factor": 4,
                "plane_channels": 32,
            },
            "texture_decoder_hidden": 64,
            "upsampler": {
                "context_dim": 192,
                "latent_channels": 32,
                "encoder": {**_SMALL_UNET, "in_channels": 4},
                "decoder": {**_SMALL_UNET, "in_channels": 32},
            },
            "num_gaussians": 4096,
            "coarse_scale": 0.03,
            "fine_scale": 0.01,
            "render_resolution": 128,
            "lambda_lpips": 0.0,
            "warmup_target": "points",
            "warmup_points": 4096,
            "lr": 4e-4,
            "lr_schedule": {"kind": "cosine", "warmup_steps": 200, "final_ratio": 0.05},
            # A few thousand steps leave the coarse generator far from converged: it keeps
            # learning, through the super-resolved Gaussians, during the sr stage.
            "sr_train_coarse": True,
            "resident_data": True,
            "train": {
                "max_steps": 2000,
                "batch_size": 32,
                "precision": "bf16",
                "num_workers": 0,
                "clip_grad_norm": 1.0,
            },
        },
        "tiny": {
            "encoder": {
                "kind": "vit",
                "pretrained": None,
                "trainable": True,
                "image_size": 32,
                "patch_size": 8,
                "dim": 32,
                "depth": 1,
                "num_heads": 2,
            },
            "geometry": {"dim": 32, "depth": 1, "num_heads": 2, "head_hidden": 32},
            "texture": {**TriplaneGeneratorConfig.presets["tiny"], "context_dim": 32},
            "texture_decoder_hidden": 16,
            "upsampler": {**PointUpsamplerConfig.presets["tiny"], "context_dim": 32},
            "num_gaussians": 128,
            "coarse_scale": 0.08,
            "fine_scale": 0.05,
            "render_resolution": 32,
            "num_target_views": 2,
            "lambda_lpips": 0.0,
            "warmup_target": "points",
            "warmup_points": 256,
            "lr": 1e-3,
            "lr_schedule": {"kind": "constant"},
            "train": {
                "max_steps": 4,
                "batch_size": 2,
                "precision": "fp32",
                "progress": "off",
                "tensorboard": "off",
                "checkpoint_every": 1000,
            },
        },
    }

    @pydantic.model_validator(mode="after")
    def _consistent(self):
        enc_dim = 768 if self.encoder.kind == "dinov2" else self.encoder.dim
        if self.encoder.kind == "dinov2":
            from_variant = {"small": 384, "base": 768, "large": 1024, "giant": 1536}
            enc_dim = from_variant.get(self.encoder.variant.split("-")[0], enc_dim)
        if self.texture.context_dim != enc_dim:
            raise ValueError(
                f"texture.context_dim ({self.texture.context_dim}) must equal the encoder's "
                f"token width ({enc_dim})"
            )
        if self.upsampler.context_dim != enc_dim:
            raise ValueError(
                f"upsampler.context_dim ({self.upsampler.context_dim}) must equal the encoder's "
                f"token width ({enc_dim})"
            )
        if self.upsampler.in_channels != 4 or self.upsampler.out_channels != 7:
            raise ValueError(
                "upsampler: AGG's super-resolution reads rgb + opacity (in_channels=4) and "
                "predicts an xyz offset, rgb and opacity (out_channels=7)"
            )
        if self.encoder.kind == "vit" and self.encoder.image_size % self.encoder.patch_size:
            raise ValueError("encoder.image_size must be a multiple of encoder.patch_size")
        plane = self.texture.token_resolution * self.texture.upsample_factor
        if plane > MAX_RESOLUTION:
            raise ValueError(
                f"texture.token_resolution x texture.upsample_factor = {plane:,}: triplanes of "
                f"at most {MAX_RESOLUTION:,} pixels a side"
            )
        if self.num_output_gaussians > MAX_GAUSSIANS:
            raise ValueError(
                f"num_gaussians x upsampler.ratio = {self.num_output_gaussians:,} output "
                f"Gaussians; expected at most {MAX_GAUSSIANS:,}"
            )
        return self

    @property
    def encoder_dim(self) -> int:
        return self.texture.context_dim

    @property
    def num_output_gaussians(self) -> int:
        return self.num_gaussians * (self.upsampler.ratio if self.super_resolution else 1)
