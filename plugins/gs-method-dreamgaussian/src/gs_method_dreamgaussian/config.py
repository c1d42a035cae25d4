"""Configuration of DreamGaussian (Tang et al. 2024, "DreamGaussian: Generative Gaussian
Splatting for Efficient 3D Content Creation"), image-to-3D.

Every default is the official code's (``configs/image.yaml``, ``main.py``, ``main2.py``,
``gs_renderer.py``, ``mesh_renderer.py``, ``guidance/zero123_utils.py`` at HEAD 69a3c70), not the
paper's text where the two differ; each field says where its value comes from. Angles use
gs3d's convention (elevation positive above the object, azimuth 0 on +z growing towards +x);
DreamGaussian's own elevation is positive *downwards*, and the fields that keep its numbers say
so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import pydantic

from gs_core.config import Config, GaussianCount, Resolution, ViewCount, bounded_int
from gs_core.limits import MAX_RESOLUTION

Steps = bounded_int(1_000_000, "steps")
DDIMSteps = bounded_int(1000, "steps")
GridResolution = bounded_int(512, "samples per axis", minimum=8)
FaceCount = bounded_int(10_000_000, "faces", minimum=4)

# Where the procedural preset looks for its teacher, and how that checkpoint is made.
PROCEDURAL_TEACHER_DIR = "~/.cache/gs3d/priors/zero123-procedural"
PROCEDURAL_TEACHER_HINT = (
    "the procedural Zero123 teacher (a small Zero123 trained on gs3d's procedural world) is made "
    "by packages/gs-priors/scripts/train_procedural_teachers.py on a GPU; pass its packed "
    "zero123.safetensors (or a Zero123-layout folder) with --set prior.model_id=PATH, or unpack "
    "it there with gs_priors.teachers.packing.unpack_teacher(FILE, DIR)"
)


class PriorConfig(Config):
    """The Zero123 model that guides both stages (``gs_priors.Zero123Guidance``)."""

    source: Literal["pretrained", "local", "tiny_random"] = pydantic.Field(
        "pretrained",
        description="'pretrained': model_id is a hub id or a local diffusers directory, "
        "resolved by gs-core's offline-safe resolver; 'local': model_id must be an existing "
        "local directory or packed teacher file (a checkpoint made here), its absence is "
        "reported with missing_hint; "
        "'tiny_random': gs_priors.tiny's random Zero123 of a few thousand parameters (CPU "
        "tests and timing only, warned about)",
    )
    model_id: str = pydantic.Field(
        "ashawkey/zero123-xl-diffusers",
        description="image.yaml's Zero123-XL (image_sai.yaml: ashawkey/stable-zero123-diffusers)",
    )
    variant: Literal["auto", "zero123", "stable_zero123"] = pydantic.Field(
        "auto",
        description="camera embedding; 'auto' takes Stable Zero123's when the id contains "
        "'stable', as the official code does",
    )
    dtype: Literal["float16", "bfloat16", "float32"] = pydantic.Field(
        "float16",
        description="weights on CUDA (the official code runs Zero123 in fp16 only); on the CPU "
        "the prior always runs in float32",
    )
    reference_latent: Literal["sample", "mode"] = pydantic.Field(
        "sample",
        description="the input view's VAE latent concatenated to the U-Net input: a posterior "
        "sample as the official get_img_embeds (gs_priors' encode_reference takes the mode)",
    )
    cuda_graph: bool = pydantic.Field(
        True,
        description="on CUDA, replay the guided U-Net call (conditional + unconditional batch) "
        "from a recorded CUDA graph; the numbers are the eager ones",
    )
    channels_last: Literal["none", "vae", "unet", "all"] = pydantic.Field(
        "unet",
        description="on CUDA, store convolution weights channels-last: 'vae' the VAE's, 'unet' "
        "the U-Net's, 'all' both; the numbers are the same up to rounding. 'unet' is the "
        "default because it was the fastest measured (benchmarks/dreamgaussian.py --compare "
        "prior.channels_last=..., one H200, 2026-12-02): against 'none', stage 1 0.87x and "
        "stage 2 0.79x at paper size, whole object 0.86x with the procedural teacher; 'vae' "
        "and 'all' were slower than 'unet' (stage 1 1.10x and 0.93x of 'none')",
    )
    tiny_seed: int = pydantic.Field(0, ge=0, description="seed of the tiny_random weights")
    missing_hint: str = pydantic.Field(
        "", description="what to do when a 'local' model_id does not exist (said in the error)"
    )

    def local_path(self) -> Path:
        return Path(self.model_id).expanduser()


class CameraConfig(Config):
    """The training cameras (image.yaml, main.py)."""

    radius: float = pydantic.Field(2.0, gt=0, description="orbit radius (opt.radius)")
    fov_deg: float = pydantic.Field(
        49.1, gt=0, lt=180, description="vertical field of view (opt.fovy, Zero123's renders)"
    )
    input_elevation_deg: float = pydantic.Field(
        0.0,
        ge=-80,
        le=80,
        description="elevation of the input view, gs3d sign (positive: looking down on the "
        "object); the official opt.elevation is its negative, 0 by default",
    )
    min_ver: int = pydantic.Field(
        -30,
        ge=-90,
        le=0,
        description="novel views cover at least [min_ver, max_ver] of elevation around the "
        "equator, DreamGaussian's sign (opt.min_ver)",
    )
    max_ver: int = pydantic.Field(30, ge=0, le=90, description="opt.max_ver, DreamGaussian's sign")
    elevation_limit: int = pydantic.Field(
        80,
        ge=1,
        le=89,
        description="novel views stay within +-this absolute elevation (main.py's 80)",
    )
    reference_size: Resolution = pydantic.Field(
        256, description="side of the input view and its renders (opt.ref_size)"
    )
    recenter_fill: float | None = pydantic.Field(
        0.8,
        gt=0,
        le=1,
        description="before optimising, the input is padded to square and its object box "
        "scaled to this fraction of the side (process.py's border ratio 0.2); null: used as "
        "given",
    )


class Stage1Config(Config):
    """Gaussians by score distillation (main.py, gs_renderer.py)."""

    steps: Steps = pydantic.Field(500, description="opt.iters")
    num_points: GaussianCount = pydantic.Field(5000, description="opt.num_pts")
    init_radius: float = pydantic.Field(
        0.5, gt=0, description="Gaussians start uniform in a ball of this radius"
    )
    init_opacity: float = pydantic.Field(0.1, gt=0, lt=1, description="initial opacity")
    # Adam, one optimiser per parameter (gsplat's strategy interface), eps 1e-15 as 3DGS.
    position_lr_init: float = pydantic.Field(1e-3, gt=0, description="opt.position_lr_init")
    position_lr_final: float = pydantic.Field(2e-5, gt=0, description="opt.position_lr_final")
    position_lr_scale: float = pydantic.Field(
        10.0,
        gt=0,
        description="the official spatial_lr_scale for a random init: positions decay "
        "log-linearly 1e-2 -> 2e-4",
    )
    position_lr_max_steps: Steps | None = pydantic.Field(
        None,
        description="steps of the log-linear decay (opt.position_lr_max_steps, 500); null: "
        "stage1.steps. position_lr_delay_mult is inert there (no delay steps) and absent here",
    )
    color_lr: float = pydantic.Field(0.01, gt=0, description="opt.feature_lr (SH DC)")
    opacity_lr: float = pydantic.Field(0.05, gt=0, description="opt.opacity_lr")
    scaling_lr: float = pydantic.Field(0.005, gt=0, description="opt.scaling_lr")
    rotation_lr: float = pydantic.Field(0.005, gt=0, description="opt.rotation_lr")
    adam_eps: float = pydantic.Field(1e-15, gt=0, description="3DGS's Adam epsilon")
    fused_adam: bool = pydantic.Field(
        True,
        description="torch's fused Adam (the same update as the official torch.optim.Adam, in "
        "one kernel per parameter instead of foreach's several); False: the default "
        "implementation",
    )

    # Densification (gsplat strategy subclass; see densification.py).
    densify: bool = pydantic.Field(
        True, description="False: the 'fixed count' ablation (no clone, split or prune)"
    )
    densify_from: Steps = pydantic.Field(
        100, description="statistics accumulate and refinement runs from this step on"
    )
    densify_until: Steps = pydantic.Field(3000, description="opt.density_end_iter (inclusive)")
    densify_every: Steps = pydantic.Field(100, description="opt.densification_interval")
    densify_grad_threshold: float = pydantic.Field(
        0.01,
        gt=0,
        description="mean screen-space gradient norm (NDC units) above which a Gaussian is "
        "cloned or split (opt.densify_grad_threshold since 016008a; 0.5 before)",
    )
    percent_dense: float = pydantic.Field(
        0.01,
        gt=0,
        description="clone if max scale <= percent_dense x scene_extent, else split in two "
        "with scales / 1.6 (since 016008a; 0.1 before)",
    )
    scene_extent: float = pydantic.Field(
        4.0, gt=0, description="the 'extent' main.py passes to densify_and_prune (0.5 before)"
    )
    prune_opacity: float = pydantic.Field(
        0.01, ge=0, lt=1, description="prune below this opacity (min_opacity)"
    )
    prune_scale: float = pydantic.Field(
        0.1,
        gt=0,
        description="prune Gaussians whose max scale exceeds this x scene_extent, at every "
        "densification (3DGS's world-size test, which DreamGaussian applies from the start)",
    )
    opacity_reset_every: Steps = pydantic.Field(
        700, description="opt.opacity_reset_interval (never reached in 500 steps)"
    )
    final_prune_opacity: float = pydantic.Field(
        0.01, ge=0, lt=1, description="after training: prune below this opacity"
    )
    final_prune_scale: float = pydantic.Field(
        0.1, gt=0, description="after training: prune max scale above this (extent 1 x 0.1)"
    )

    # Reference view (known camera).
    lambda_rgb: float = pydantic.Field(10000.0, ge=0, description="MSE of the input view's rgb")
    lambda_alpha: float = pydantic.Field(1000.0, ge=0, description="MSE of its mask")
    warmup_reference: bool = pydantic.Field(
        True,
        description="opt.warmup_rgb_loss: the reference weights ramp linearly with the step "
        "ratio (off in image_sai.yaml, weights then constant)",
    )

    # Novel views and Zero123 SDS.
    sds: bool = pydantic.Field(
        True,
        description="False: the 'reference view only' ablation (no Zero123, no novel views; "
        "densification statistics then come from the reference view, the only one with a "
        "gradient)",
    )
    lambda_sds: float = pydantic.Field(1.0, gt=0, description="opt.lambda_zero123")
    guidance_scale: float = pydantic.Field(5.0, ge=1, description="classifier-free guidance")
    t_range: tuple[float, float] = pydantic.Field(
        (0.02, 0.98), description="t in [20, 980] of 1000 training timesteps"
    )
    anneal_timestep: bool = pydantic.Field(
        True,
        description="opt.anneal_timestep: t = round((1 - r) T) clipped to t_range, r = step / "
        "steps; False: t uniform in t_range (the ablation)",
    )
    novel_views: ViewCount = pydantic.Field(1, description="opt.batch_size")
    novel_resolutions: tuple[Resolution, Resolution, Resolution] = pydantic.Field(
        (128, 256, 512),
        description="novel-view render size before, between and after the resolution milestones",
    )
    resolution_milestones: tuple[float, float] = pydantic.Field(
        (0.3, 0.6), description="step ratios at which the novel-view size grows"
    )
    white_background_prob: float = pydantic.Field(
        0.5,
        ge=0,
        le=1,
        description="novel views on white with this probability, else black (invert_bg_prob)",
    )

    @pydantic.model_validator(mode="after")
    def _consistent(self):
        lo, hi = self.t_range
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"t_range: expected 0 <= t_min <= t_max <= 1, got {self.t_range}")
        a, b = self.resolution_milestones
        if not 0.0 <= a <= b <= 1.0:
            raise ValueError(
                f"resolution_milestones: expected 0 <= a <= b <= 1, got {self.resolution_milestones}"
            )
        return self


class Stage2Config(Config):
    """Mesh extraction, UV texture baking and texture refinement (main.py's save_model,
    main2.py, mesh_renderer.py)."""

    enabled: bool = pydantic.Field(
        True, description="False: stop after stage 1 (Gaussians only, no mesh)"
    )
    steps: Steps = pydantic.Field(50, description="opt.iters_refine")
    # Extraction (gs_core.meshing.gaussians_to_mesh; its defaults follow extract_mesh).
    grid_resolution: GridResolution = pydantic.Field(128, description="density grid per axis")
    density_level: float = pydantic.Field(1.0, gt=0, description="opt.density_thresh")
    min_opacity: float = pydantic.Field(
        0.005, ge=0, lt=1, description="Gaussians at or below are left out of the density"
    )
    max_faces: FaceCount = pydantic.Field(100_000, description="decimation target (1e5)")
    remesh_edge: float | None = pydantic.Field(
        0.015,
        gt=0,
        description="the official clean_mesh remeshes isotropically to this edge length "
        "(pymeshlab, not available here); the mesh is instead decimated to the face count "
        "such a remeshing gives (area / (sqrt(3) / 4 x edge^2)), which sets the size of the UV "
        "atlas as the official one; null: up to max_faces",
    )
    uv_pieces: int = pydantic.Field(
        8,
        ge=1,
        description="the official code unwraps the whole mesh with xatlas (10.7 s of stage 2 for "
        "93,000 faces on the H200 machine); cut into this many slabs, xatlas charts them on "
        "separate threads and its chart search, worse than linear in faces, runs on smaller "
        "meshes: 3x faster on 2 cores at 8, for seams along the cuts (gs_core.meshing.unwrap_uv); "
        "1: the official single mesh",
    )
    # Texture.
    texture_size: Resolution = pydantic.Field(1024, description="albedo side in texels")
    bake_resolution: Resolution = pydantic.Field(
        512, description="render size of the 26 baking views"
    )
    bake_min_cosine: float = pydantic.Field(
        0.5, ge=0, lt=1, description="texels baked only where the view cosine exceeds this"
    )
    texture_lr: float = pydantic.Field(0.2, gt=0, description="Adam on the texture logits")
    mip: bool = pydantic.Field(
        True, description="linear-mipmap-linear sampling of the texture logits"
    )
    render_resolution: Resolution = pydantic.Field(
        512, description="novel-view render size (main2.py's render_resolution)"
    )
    ssaa_range: tuple[float, float] = pydantic.Field(
        (0.125, 2.0),
        description="each render is drawn at size x ssaa, ssaa = clip(2 U[0, 1], lo, hi), "
        "sides rounded up to multiples of 8, and resized back",
    )
    lambda_reference: float = pydantic.Field(
        1.0, ge=0, description="masked MSE against the input view"
    )
    reference_min_cosine: float = pydantic.Field(
        0.5, ge=0, lt=1, description="the reference mask: covered and view cosine above this"
    )
    lambda_refine: float = pydantic.Field(
        1.0, ge=0, description="MSE against the Zero123-refined novel view"
    )
    refine_steps: DDIMSteps = pydantic.Field(50, description="DDIM steps of the refine schedule")
    strength_start: float = pydantic.Field(
        0.8,
        gt=0,
        lt=1,
        description="refine starts at DDIM index int(refine_steps x strength), strength = "
        "strength_start + strength_slope x step ratio (0.8 -> 0.95: t 181 -> 41)",
    )
    strength_slope: float = pydantic.Field(0.15, ge=0, lt=1)
    refine_guidance_scale: float = pydantic.Field(5.0, ge=1)

    @pydantic.model_validator(mode="after")
    def _consistent(self):
        lo, hi = self.ssaa_range
        if not 0 < lo <= hi <= 8:
            raise ValueError(f"ssaa_range: expected 0 < lo <= hi <= 8, got {self.ssaa_range}")
        if self.strength_start + self.strength_slope >= 1.0:
            raise ValueError(
                "strength_start + strength_slope must stay below 1 (at least one DDIM step)"
            )
        if self.render_resolution * hi > MAX_RESOLUTION:
            raise ValueError(
                f"render_resolution x ssaa_range[1] = {self.render_resolution * hi:g}: renders "
                f"of at most {MAX_RESOLUTION} pixels a side"
            )
        return self


class DreamGaussianConfig(Config):
    """Everything about one DreamGaussian run; presets ``paper`` (image.yaml with Zero123-XL),
    ``paper_stable`` (image_sai.yaml, Stable Zero123), ``procedural`` (the procedural-world
    Zero123 teacher), ``tiny`` (CPU tests in seconds, random tiny Zero123)."""

    prior: PriorConfig = pydantic.Field(default_factory=PriorConfig)
    camera: CameraConfig = pydantic.Field(default_factory=CameraConfig)
    stage1: Stage1Config = pydantic.Field(default_factory=Stage1Config)
    stage2: Stage2Config = pydantic.Field(default_factory=Stage2Config)
    backend: Literal["auto", "torch", "gsplat"] = pydantic.Field(
        "auto", description="Gaussian renderer (gsplat on CUDA when it can run)"
    )

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        "paper_stable": {
            "prior": {"model_id": "ashawkey/stable-zero123-diffusers"},
            "stage1": {"warmup_reference": False},
        },
        # The teacher trained on gs3d's procedural world, whose views are 49.1 degree cameras
        # at distance 1.5 with the object filling about 0.67 of the frame (gs_core.image_inputs).
        "procedural": {
            "prior": {
                "source": "local",
                "model_id": PROCEDURAL_TEACHER_DIR,
                "missing_hint": PROCEDURAL_TEACHER_HINT,
            },
            "camera": {"radius": 1.5, "recenter_fill": 0.67},
            # Novel views on white only. The procedural teacher has seen white backgrounds only
            # (as Zero123 has), and its SDS on black-background renders fills the scene with
            # grey haze that grows with the steps: 500 stage-1 steps on mug_00000 (2-core CPU,
            # 2026-12-01) scored PSNR 9.72 / SSIM 0.633 with the official 0.5, 13.23 / 0.788
            # with 1.0 (the plugin README has the pictures). The paper presets keep 0.5.
            "stage1": {"white_background_prob": 1.0},
        },
        "tiny": {
            "prior": {"source": "tiny_random", "model_id": "tiny-random"},
            "camera": {"reference_size": 32},
            "stage1": {
                "steps": 8,
                "num_points": 300,
                "densify_from": 2,
                "densify_every": 3,
                "novel_resolutions": (16, 24, 32),
            },
            "stage2": {
                "steps": 2,
                "grid_resolution": 24,
                # Eight steps leave opacities near their initial 0.1: a lower iso-level.
                "density_level": 0.3,
                "max_faces": 2000,
                "texture_size": 32,
                "bake_resolution": 24,
                "render_resolution": 32,
                "refine_steps": 10,
            },
            "backend": "torch",
        },
    }

    @pydantic.model_validator(mode="after")
    def _consistent(self):
        if self.prior.source == "tiny_random" and self.prior.model_id != "tiny-random":
            raise ValueError("prior.source 'tiny_random' takes model_id 'tiny-random'")
        return self
