"""ImageDream (Wang & Shi 2023, "Image-Prompt Multi-view Diffusion") as a ``DiffusionPrior``.

The checkpoint is ``ashawkey/imagedream-ipmv-diffusers`` (the diffusers conversion of the
official ``sd-v2.1-base-4view-ipmv`` weights): SD 2.1 base's VAE, OpenCLIP ViT-H text encoder
and tokenizer, DDIM schedule (epsilon prediction), a CLIP ViT-H/14 image encoder and the
multi-view U-Net of :mod:`gs_priors.multiview_unet`. Conditioning, as its pipeline and the
official code do it:

* four views of 256 x 256 (32 x 32 latents) denoised jointly, plus the input image as a fifth
  frame: its clean, scaled VAE latent takes the fifth frame's place, with an all-zero camera;
* per frame, the text embedding (cross-attention), the camera (a flattened 4x4 matrix through
  the camera MLP, added to the timestep embedding) and the image-prompt tokens (the resampler
  over the penultimate CLIP ViT-H hidden states of the input, ``[B, 257, 1280]`` at 224 px);
* classifier-free guidance: the unconditional branch uses the negative prompt, all-zero CLIP
  features (through the resampler, so the tokens are not zero) and an all-zero input latent;
  cameras stay. The pipeline's guidance scale is 5.

Cameras. The model was trained on camera-to-world matrices in OpenGL camera axes (x right,
y up, z backward) expressed in a z-up ("Blender") world, the camera position normalised onto
the unit sphere, flattened row-major (16 values). gs_core's world is y-up with orbit azimuth 0
on +z growing towards +x and elevation positive above the object - the convention ImageDream's
own ``create_camera_to_world_matrix`` uses before its OpenGL-to-Blender flip - so
:func:`imagedream_cameras` takes any :class:`~gs_core.cameras.Cameras` and applies that flip.
The pipeline's default views are elevation 0, azimuths 0 / 90 / 180 / 270, the first one
facing the input image (:func:`orthogonal_cameras`).

Batching. Score distillation hands the prior ``N = B * V`` latents, views of one object
adjacent; :class:`ImageDreamCondition` holds one row per view (``num_views = V``) and
:meth:`ImageDreamGuidance.model_output` regroups them into ``B`` objects of ``V + 1`` frames.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from gs_core.cameras import Cameras
from gs_core.errors import FileFormatError, ValidationError
from gs_priors.diffusers_prior import DiffusersPrior, load_component, scheduler_from_dir
from gs_priors.model_dir import resolve_model_dir
from gs_priors.prior import Condition
from gs_priors.text_states import clip_text_states
from gs_priors.zero123 import CLIP_MEAN, CLIP_STD, _read_preprocessor

COMPONENTS = (
    "vae",
    "unet",
    "text_encoder",
    "tokenizer",
    "scheduler",
    "image_encoder",
    "feature_extractor",
)
DEFAULT_MODEL_ID = "ashawkey/imagedream-ipmv-diffusers"
NUM_VIEWS = 4
CAMERA_DIM = 16
GUIDANCE_SCALE = 5.0
# ImageDream's convert_opengl_to_blender: world y-up -> z-up (y' = -z, z' = y), on the left.
_Y_UP_TO_Z_UP = torch.tensor(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)


def imagedream_cameras(cameras: Cameras) -> torch.Tensor:
    """ImageDream's camera input ``[..., C, 16]`` for gs_core cameras ``[..., C]``.

    OpenGL camera-to-world in the z-up world, camera centre scaled onto the unit sphere (the
    orbit radius is not an input of the model), flattened row-major.
    """
    if not isinstance(cameras, Cameras):
        raise ValidationError("cameras", "gs_core Cameras", type(cameras).__name__)
    c2w = cameras.camtoworlds_opengl().to(torch.float64)
    centre = c2w[..., :3, 3]
    c2w = c2w.clone()
    c2w[..., :3, 3] = centre / centre.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    c2w = _Y_UP_TO_Z_UP.to(c2w) @ c2w
    return c2w.flatten(-2).float()


def orbit_cameras(
    elevation_deg: float | Sequence[float] | torch.Tensor,
    azimuth_deg: float | Sequence[float] | torch.Tensor,
) -> torch.Tensor:
    """ImageDream cameras ``[C, 16]`` looking at the origin from gs_core orbit angles (degrees,
    broadcast against each other)."""
    el, az = torch.broadcast_tensors(
        torch.as_tensor(elevation_deg, dtype=torch.float64).reshape(-1),
        torch.as_tensor(azimuth_deg, dtype=torch.float64).reshape(-1),
    )
    return imagedream_cameras(Cameras.orbit(az, el, radius=1.0))


def orthogonal_cameras(
    elevation_deg: float = 0.0, azimuth_start_deg: float = 0.0, num_views: int = NUM_VIEWS
) -> torch.Tensor:
    """The pipeline's views ``[num_views, 16]``: equally spaced azimuths from the input's."""
    if num_views < 1:
        raise ValidationError("num_views", "a positive int", repr(num_views))
    azimuths = azimuth_start_deg + 360.0 * torch.arange(num_views, dtype=torch.float64) / num_views
    return orbit_cameras(elevation_deg, azimuths)


@dataclass(frozen=True)
class ImageDreamReference(Condition):
    """An encoded input image (and prompt), ``R`` of them.

    Fields: ``text_embeddings`` / ``null_text_embeddings`` ``[R, L, D]`` (prompt and negative
    prompt), ``image_tokens`` / ``null_image_tokens`` ``[R, Q, D]`` (the resampler over the
    image's CLIP features / over zeros), ``input_latents`` ``[R, 4, h, w]`` (scaled VAE latent).
    """

    text_embeddings: torch.Tensor
    null_text_embeddings: torch.Tensor
    image_tokens: torch.Tensor
    null_image_tokens: torch.Tensor
    input_latents: torch.Tensor


@dataclass(frozen=True)
class ImageDreamCondition(Condition):
    """One row per target view, ``N = B * num_views`` rows, the views of an object adjacent.

    The fields of :class:`ImageDreamReference` repeated per view, plus ``cameras [N, 16]``.
    The input-image frame of object ``b`` takes its text, tokens and latent from row
    ``b * num_views``.
    """

    text_embeddings: torch.Tensor
    null_text_embeddings: torch.Tensor
    image_tokens: torch.Tensor
    null_image_tokens: torch.Tensor
    input_latents: torch.Tensor
    cameras: torch.Tensor
    num_views: int = NUM_VIEWS


def _as_list(values: str | Sequence[str], n: int, field: str) -> list[str]:
    out = [values] * n if isinstance(values, str) else list(values)
    if len(out) != n or not all(isinstance(v, str) for v in out):
        raise ValidationError(field, f"one string or {n} strings (one per image)", repr(values))
    return out


class ImageDreamGuidance(DiffusersPrior):
    """ImageDream as a :class:`~gs_priors.prior.DiffusionPrior` (epsilon prediction).

    Usage::

        dream = ImageDreamGuidance.from_pretrained(
            "ashawkey/imagedream-ipmv-diffusers", device="cuda", dtype=torch.float16
        )
        ref = dream.encode_reference(input_rgba)          # [1, 4, H, W] in [0, 1], once
        cond = dream.condition(ref, orthogonal_cameras())  # or imagedream_cameras(cams)
        eps = dream.model_output(latents_t, t, cond)       # latents_t [4, 4, 32, 32]
        # gs_losses SDS over renders [B, 4, 3, H, W]: a condition of B * 4 rows (B references).
        loss = SDS(dream, SDSConfig(guidance_scale=5.0))(renders, cond)["sds"]
    """

    def __init__(
        self,
        vae,
        unet,
        text_encoder,
        tokenizer,
        image_encoder,
        scheduler,
        clip_size: int = 224,
        clip_mean: tuple[float, ...] = CLIP_MEAN,
        clip_std: tuple[float, ...] = CLIP_STD,
        **kwargs,
    ):
        cfg = unet.config
        ip_dim, camera_dim = getattr(cfg, "ip_dim", 0), getattr(cfg, "camera_dim", None)
        if not ip_dim or ip_dim <= 0 or camera_dim != CAMERA_DIM:
            raise ValidationError(
                "unet",
                f"an ImageDream multi-view U-Net (ip_dim > 0, camera_dim {CAMERA_DIM})",
                f"ip_dim {ip_dim}, camera_dim {camera_dim}",
            )
        for what, have, want in (
            ("in_channels (VAE latent channels)", cfg.in_channels, vae.config.latent_channels),
            ("context_dim (text width)", cfg.context_dim, text_encoder.config.hidden_size),
            (
                "ip_embedding_dim (CLIP width)",
                cfg.ip_embedding_dim,
                image_encoder.config.hidden_size,
            ),
        ):
            if have != want:
                raise ValidationError(
                    f"unet.{what.split()[0]}", f"{want} to match {what}", str(have)
                )
        vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
        kwargs.setdefault("image_size", int(cfg.image_size) * vae_scale)
        super().__init__(vae, unet, scheduler, **kwargs)
        # Its timestep spacing (steps_offset 1) is what gs_priors.samplers samples with.
        self.scheduler_config = dict(scheduler.config)
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.image_encoder = image_encoder
        for m in (self.text_encoder, self.image_encoder):
            m.requires_grad_(False)
            m.eval()
        self._register_clip_preprocessing(clip_size, clip_mean, clip_std)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = DEFAULT_MODEL_ID,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        **kwargs,
    ) -> ImageDreamGuidance:
        """Load an ImageDream diffusers directory or hub repo (offline-safe, no random init).

        Only configs and weights are read: the repo's own ``unet/mv_unet.py`` and pipeline
        code are never executed (:class:`~gs_priors.multiview_unet.MultiViewUNetModel` reads
        its ``unet/config.json`` and ``diffusion_pytorch_model.safetensors``).
        """
        from diffusers import AutoencoderKL
        from transformers import CLIPTextModel, CLIPTokenizer, CLIPVisionModel

        from gs_priors.multiview_unet import MultiViewUNetModel

        directory = resolve_model_dir(name_or_path, COMPONENTS)
        vae = load_component(AutoencoderKL, directory, "vae", torch_dtype=dtype)
        unet = load_component(MultiViewUNetModel, directory, "unet", torch_dtype=dtype)
        text_encoder = load_component(CLIPTextModel, directory, "text_encoder", dtype=dtype)
        tokenizer = load_component(CLIPTokenizer, directory, "tokenizer")
        image_encoder = load_component(CLIPVisionModel, directory, "image_encoder", dtype=dtype)
        scheduler = scheduler_from_dir(directory)
        clip_size, mean, std = _read_preprocessor(directory / "feature_extractor")
        try:
            prior = cls(
                vae,
                unet,
                text_encoder,
                tokenizer,
                image_encoder,
                scheduler,
                clip_size=clip_size,
                clip_mean=mean,
                clip_std=std,
                **kwargs,
            )
        except ValidationError as e:
            raise FileFormatError(directory, f"not an ImageDream checkpoint ({e})") from None
        return prior.to(device)

    # ------------------------------------------------------------------ conditioning
    @torch.no_grad()
    def _embed_text(self, prompts: list[str]) -> torch.Tensor:
        return clip_text_states(self.tokenizer, self.text_encoder, prompts, self.device)

    def _clip_input(self, x: torch.Tensor) -> torch.Tensor:
        # CLIPImageProcessor's shortest-edge resize + centre crop == centre square, then resize.
        h, w = x.shape[-2:]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        x = x[..., top : top + s, left : left + s]
        x = F.interpolate(
            x, (self.clip_size, self.clip_size), mode="bicubic", align_corners=False, antialias=True
        )
        return (x.clamp(0, 1) - self.clip_mean) / self.clip_std

    @torch.no_grad()
    def encode_reference(
        self,
        images: torch.Tensor,
        prompt: str | Sequence[str] = "",
        negative_prompt: str | Sequence[str] = "",
        generator: torch.Generator | None = None,
        input_latents: torch.Tensor | None = None,
    ) -> ImageDreamReference:
        """Input images ``[R, 3|4, H, W]`` in ``[0, 1]`` (RGBA composited on white) and their
        prompts (ImageDream works with an empty one) -> :class:`ImageDreamReference`.

        The input latent is the VAE posterior sampled with ``generator`` (the pipeline's
        choice; ``latent_sample="mode"`` at construction makes it deterministic);
        ``input_latents`` ``[R, 4, h, w]``: :meth:`encode_images` of the images when already
        computed (a trainer caches them per view)."""
        x = self._check_images(images, "images").to(self.device)
        r = x.shape[0]
        features = self.image_encoder(
            self._clip_input(x).to(self.dtype), output_hidden_states=True
        ).hidden_states[-2]
        tokens = self.unet.image_prompt_tokens(features).float()
        null_tokens = self.unet.image_prompt_tokens(torch.zeros_like(features)).float()
        return ImageDreamReference(
            text_embeddings=self._embed_text(_as_list(prompt, r, "prompt")),
            null_text_embeddings=self._embed_text(_as_list(negative_prompt, r, "negative_prompt")),
            image_tokens=tokens,
            null_image_tokens=null_tokens,
            input_latents=(
                self.encode_images(x, generator=generator)
                if input_latents is None
                else input_latents.to(self.device).float()
            ),
        )

    @torch.no_grad()
    def condition(
        self,
        reference: ImageDreamReference,
        cameras: Cameras | torch.Tensor | None = None,
    ) -> ImageDreamCondition:
        """The condition for ``V`` target views of each reference.

        Args:
            reference: from :meth:`encode_reference` (``R`` images).
            cameras: gs_core :class:`Cameras` (``[V]`` shared or ``[R, V]``), ImageDream
                camera vectors ``[V, 16]`` / ``[R, V, 16]`` (:func:`orbit_cameras`), or
                ``None`` for the four orthogonal views at elevation 0.

        Returns:
            an :class:`ImageDreamCondition` of ``R * V`` rows (object-major).
        """
        if not isinstance(reference, ImageDreamReference):
            raise ValidationError(
                "reference",
                "an ImageDreamReference (ImageDreamGuidance.encode_reference)",
                type(reference).__name__,
            )
        if cameras is None:
            cams = orthogonal_cameras()
        elif isinstance(cameras, Cameras):
            cams = imagedream_cameras(cameras)
        else:
            cams = torch.as_tensor(cameras, dtype=torch.float32)
        if cams.ndim not in (2, 3) or cams.shape[-1] != CAMERA_DIM:
            raise ValidationError(
                "cameras",
                f"[V, {CAMERA_DIM}] or [R, V, {CAMERA_DIM}]",
                f"shape {tuple(cams.shape)}",
            )
        r = reference.batch_size
        if cams.ndim == 3 and cams.shape[0] != r:
            if r != 1:
                raise ValidationError(
                    "cameras", f"[{r}, V, {CAMERA_DIM}] (one set per reference)", str(cams.shape)
                )
            r = cams.shape[0]
        views = cams.shape[-2]
        cams = cams.expand(r, views, CAMERA_DIM).reshape(r * views, CAMERA_DIM)
        ref = reference.expand_batch(r).repeat_interleave(views).to(self.device)
        return ImageDreamCondition(
            **{f.name: getattr(ref, f.name) for f in dataclasses.fields(ref)},
            cameras=cams.to(self.device),
            num_views=views,
        )

    def null_condition(self, condition: ImageDreamCondition) -> ImageDreamCondition:
        return dataclasses.replace(
            condition,
            text_embeddings=condition.null_text_embeddings,
            image_tokens=condition.null_image_tokens,
            input_latents=torch.zeros_like(condition.input_latents),
        )

    def model_output(
        self, latents_t: torch.Tensor, t: torch.Tensor, condition: ImageDreamCondition
    ) -> torch.Tensor:
        """Noise predicted for the ``N = B * V`` target-view latents ``[N, 4, h, w]`` at ``t [N]``,
        the input image added as each object's ``V + 1``-th frame."""
        if not isinstance(condition, ImageDreamCondition):
            raise ValidationError(
                "condition",
                "an ImageDreamCondition (ImageDreamGuidance.condition)",
                type(condition).__name__,
            )
        n, v = latents_t.shape[0], condition.num_views
        if latents_t.ndim != 4 or condition.batch_size != n or n % v:
            raise ValidationError(
                "latents_t",
                f"[N, C, h, w] with N = the condition's {condition.batch_size} rows "
                f"(objects x {v} views)",
                f"shape {tuple(latents_t.shape)}",
            )
        b, frames = n // v, v + 1
        dev = latents_t.device
        t = torch.as_tensor(t, device=dev).expand(n)

        def with_input_frame(x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
            grouped = x.reshape(b, v, *x.shape[1:])
            extra = grouped[:, :1] if extra is None else extra
            return torch.cat([grouped, extra], dim=1).reshape(b * frames, *x.shape[1:])

        input_latents = condition.input_latents.to(dev).reshape(b, v, *latents_t.shape[1:])[:, 0]
        out = self.unet_forward(
            with_input_frame(latents_t, torch.zeros_like(latents_t[:b, None])),
            with_input_frame(t),
            context=with_input_frame(condition.text_embeddings.to(dev)),
            camera=with_input_frame(
                condition.cameras.to(dev), condition.cameras.new_zeros(b, 1, CAMERA_DIM).to(dev)
            ),
            num_frames=frames,
            ip_tokens=with_input_frame(condition.image_tokens.to(dev)),
            ip_img=input_latents,
        )
        return out.reshape(b, frames, *out.shape[1:])[:, :v].reshape(n, *out.shape[1:])


__all__ = [
    "CAMERA_DIM",
    "COMPONENTS",
    "DEFAULT_MODEL_ID",
    "GUIDANCE_SCALE",
    "NUM_VIEWS",
    "ImageDreamCondition",
    "ImageDreamGuidance",
    "ImageDreamReference",
    "imagedream_cameras",
    "orbit_cameras",
    "orthogonal_cameras",
]
