"""The ``{N, C, II, OI}`` quadruples of explicit supervision (Sec. III-B, IV-A): the start noise
``N`` of a deterministic 50-step DDIM trajectory of the teacher (the discretised probability-
flow ODE, ``gs_priors.samplers.sample``), the cameras ``C`` it denoised for, the input image
``II`` and the decoded outputs ``OI``. Only the endpoints are kept: DD3G supervises the
trajectory's start and end, never its intermediate states.

A :class:`QuadrupleSet` holds them as tensors (images as uint8) and saves to one safetensors
file (``quadruples.safetensors``) with a JSON header of how they were made.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from gs_core.errors import FileFormatError, ValidationError
from gs_core.io.atomic import atomic_path
from gs_method_dd3g.cameras import orbit_views, random_view_sets

FILENAME = "quadruples.safetensors"
_KEYS = ("images", "noise", "azimuths", "elevations", "outputs")


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255.0).round().to(torch.uint8)


@dataclass
class QuadrupleSet:
    """``images [Q, 4, H, W]`` (II, RGBA uint8), ``noise [Q, V, C, s, s]`` (N, float32),
    ``azimuths`` / ``elevations`` ``[Q, V]`` (C, degrees), ``outputs [Q, V, 3, R, R]`` (OI, RGB
    uint8 on the teacher's white background)."""

    images: torch.Tensor
    noise: torch.Tensor
    azimuths: torch.Tensor
    elevations: torch.Tensor
    outputs: torch.Tensor
    meta: dict

    def __post_init__(self) -> None:
        q = self.images.shape[0]
        for k in _KEYS:
            t = getattr(self, k)
            if t.shape[0] != q:
                raise ValidationError(f"QuadrupleSet.{k}", f"{q} rows like images", str(t.shape[0]))
        if self.images.ndim != 4 or self.images.shape[1] != 4:
            raise ValidationError(
                "QuadrupleSet.images", "[Q, 4, H, W]", str(tuple(self.images.shape))
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    def host_angles(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Azimuths and elevations ``[B, V]`` (float32, CPU) of rows ``index [B]``, from a CPU
        copy kept beside device tensors: the cameras of a training step are built on the host,
        and reading device angles back would wait for the GPU at every step."""
        host = self.__dict__.get("_host_angles")
        if host is None:
            host = (self.azimuths.detach().cpu().float(), self.elevations.detach().cpu().float())
            self.__dict__["_host_angles"] = host
        index = index.cpu()
        return host[0][index], host[1][index]

    def to(self, device) -> QuadrupleSet:
        return QuadrupleSet(**{k: getattr(self, k).to(device) for k in _KEYS}, meta=self.meta)

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Rows ``index [B]`` as float tensors (images and outputs in [0, 1])."""
        dev = self.images.device
        index = index.to(dev)
        return {
            "images": self.images[index].float() / 255.0,
            "noise": self.noise[index].float(),
            "azimuths": self.azimuths[index].float(),
            "elevations": self.elevations[index].float(),
            "outputs": self.outputs[index].float() / 255.0,
        }

    @staticmethod
    def cat(sets: list[QuadrupleSet]) -> QuadrupleSet:
        if not sets:
            raise ValidationError("QuadrupleSet.cat", "at least one set", "none")
        return QuadrupleSet(
            **{k: torch.cat([getattr(s, k) for s in sets]) for k in _KEYS}, meta=sets[0].meta
        )

    def save(self, directory: str | Path) -> Path:
        from gs_core.io.tensor_file import save_tensors

        path = Path(directory) / FILENAME
        tensors = {k: getattr(self, k).detach().cpu().contiguous() for k in _KEYS}
        with atomic_path(path) as tmp:
            save_tensors(tensors, str(tmp), metadata={"dd3g": json.dumps(self.meta)})
        return path

    @classmethod
    def load(cls, directory: str | Path) -> QuadrupleSet:
        from safetensors import safe_open

        path = Path(directory)
        path = path / FILENAME if path.is_dir() else path
        if not path.is_file():
            raise FileFormatError(path, f"not found (expected {FILENAME} of generate_quadruples)")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {}).get("dd3g", "{}"))
                tensors = {k: f.get_tensor(k) for k in _KEYS}
        except KeyError as e:
            raise FileFormatError(
                path, f"missing tensor {e} (expected {', '.join(_KEYS)})"
            ) from None
        except Exception as e:  # safetensors raises its own error types for corrupt headers
            raise FileFormatError(path, f"not a safetensors quadruple file ({e})") from None
        return cls(**tensors, meta=meta)


@torch.no_grad()
def generate_quadruples(
    teacher,
    images: torch.Tensor,
    *,
    num_views: int = 4,
    elevation_range: tuple[float, float] = (0.0, 0.0),
    steps: int = 50,
    guidance_scale: float = 5.0,
    generator: torch.Generator | None = None,
    batch_size: int = 8,
    per_image: int = 1,
    input_elevations: torch.Tensor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> QuadrupleSet:
    """Run the teacher's deterministic DDIM ``per_image`` times per input image.

    Args:
        teacher: an ``ImageDreamGuidance`` (the real one or the procedural teacher).
        images: RGBA ``[Q, 4, H, W]`` in [0, 1] (the inputs II).
        num_views / elevation_range: the random ``C`` (:func:`random_view_sets`).
        steps: DDIM steps (IV-A: 50). guidance_scale: CFG (ImageDream's pipeline: 5).
        generator: draws ``C`` and ``N``; equal seeds give equal quadruples.
        batch_size: rows per teacher call (with ``per_image`` 1, images).
        per_image: quadruples per input image, each with its own ``N``, ``C`` and reference
            latent, in adjacent rows (image ``i`` is rows ``i * per_image ...``). IV-A made 2.8
            million quadruples from 120k images, about 23 per image: a student that sees an image
            with a single noise cannot tell what the noise changes from what the image does.
            1 gives exactly the rows of earlier versions.
        input_elevations: ``[Q]`` degrees, each image's own camera elevation, or ``None``.
            Given, every view of ``C`` is at its image's elevation instead of one drawn from
            ``elevation_range`` (the same draws are made, so ``N`` and the azimuths do not
            change): the procedural ImageDream teacher trained on rings where the input and its
            four views share one elevation (gs_priors ``imagedream_batch``), so that is what its
            outputs show. The student is not told the elevation; only ``C`` carries it.
        progress: called as ``progress(done, total)`` after each batch, in rows.
    """
    from gs_priors.samplers import sample

    if images.ndim != 4 or images.shape[1] != 4:
        raise ValidationError("images", "RGBA [Q, 4, H, W] in [0, 1]", str(tuple(images.shape)))
    if per_image < 1:
        raise ValidationError("per_image", "an integer >= 1", str(per_image))
    if input_elevations is not None:
        input_elevations = torch.as_tensor(input_elevations, dtype=torch.float32).reshape(-1)
        if input_elevations.shape[0] != images.shape[0]:
            raise ValidationError(
                "input_elevations",
                f"one elevation per image ({images.shape[0]})",
                str(tuple(input_elevations.shape)),
            )
    if per_image > 1:
        images = images.repeat_interleave(per_image, dim=0)
        if input_elevations is not None:
            input_elevations = input_elevations.repeat_interleave(per_image)
    dev = teacher.device
    shape_lat = None
    sets = []
    for start in range(0, images.shape[0], batch_size):
        ii = images[start : start + batch_size].to(dev).float()
        b = ii.shape[0]
        az, el = random_view_sets(b, num_views, elevation_range, generator, "cpu")
        if input_elevations is not None:
            el = input_elevations[start : start + b, None].expand(b, num_views).contiguous()
        cams = orbit_views(az, el, 1.0, 49.1, teacher.image_size)
        # The reference latent is a VAE posterior sample: drawn from the same generator.
        cond = teacher.condition(teacher.encode_reference(ii, generator=generator), cams)
        if shape_lat is None:
            z = teacher.encode_images(
                torch.ones(1, 3, teacher.image_size, teacher.image_size, device=dev)
            )
            shape_lat = tuple(z.shape[1:])
        src = generator.device if generator is not None else torch.device("cpu")
        noise = torch.randn((b * num_views, *shape_lat), generator=generator, device=src)
        res = sample(
            teacher,
            cond,
            (b * num_views, *shape_lat),
            sampler="ddim",
            steps=steps,
            guidance_scale=guidance_scale,
            noise=noise.to(dev),
        )
        out = teacher.decode_latents(res.latents)
        sets.append(
            QuadrupleSet(
                images=_to_uint8(ii.cpu()),
                noise=res.noise.reshape(b, num_views, *shape_lat).cpu(),
                azimuths=az,
                elevations=el,
                outputs=_to_uint8(out.reshape(b, num_views, *out.shape[1:]).cpu()),
                meta={},
            )
        )
        if progress is not None:
            progress(start + b, images.shape[0])
    out = QuadrupleSet.cat(sets)
    out.meta = {
        "sampler": "ddim",
        "steps": steps,
        "guidance_scale": guidance_scale,
        "num_views": num_views,
        "per_image": per_image,
        "latent_shape": list(shape_lat),
        "image_size": int(teacher.image_size),
    }
    return out


__all__ = ["FILENAME", "QuadrupleSet", "generate_quadruples"]
