"""The Zero123 prior of both stages: loading it, encoding the input view as the official
``get_img_embeds`` does, and the CUDA-graphed guided U-Net call of score distillation.
"""

from __future__ import annotations

import dataclasses
import tempfile
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from gs_core.errors import RandomWeightsWarning, WeightsNotFoundError
from gs_method_dreamgaussian.config import PriorConfig
from gs_priors.prior import DelegatingPrior

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass
class LoadedPrior:
    """A Zero123 prior (``gs_priors.Zero123Guidance``) and ``model``, what score distillation
    calls: the prior itself, or a :class:`GraphedZero123` around it on CUDA."""

    prior: Any
    model: Any
    layout: str = "none"  # PriorConfig.channels_last as applied to the prior's weights


# One prior per process: reloading Zero123 for every object would cost more than optimising it.
_CACHE: dict[tuple, LoadedPrior] = {}


def _key(cfg: PriorConfig, device: torch.device) -> tuple[tuple, torch.dtype]:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        # "cuda" and "cuda:0" are one device (a method's parameters report the index).
        device = torch.device("cuda", torch.cuda.current_device())
    dtype = _DTYPES[cfg.dtype] if device.type == "cuda" else torch.float32
    return (cfg.source, cfg.model_id, cfg.variant, cfg.tiny_seed, str(device), dtype), dtype


def install_prior(cfg: PriorConfig, device: torch.device, prior: Any) -> None:
    """Make ``prior`` (a ``Zero123Guidance`` on ``device``) what :func:`load_prior` returns for
    ``cfg`` in this process, instead of loading ``model_id``: for priors built in memory (a
    benchmark's random paper-size Zero123, a teacher being trained)."""
    key, _ = _key(cfg, device)
    _CACHE.clear()
    _CACHE[key] = LoadedPrior(prior=prior, model=prior)


def load_prior(cfg: PriorConfig, device: torch.device) -> LoadedPrior:
    """The prior of ``cfg`` on ``device`` (cached per process, one at a time).

    Raises:
        WeightsNotFoundError: a ``local`` model_id that does not exist (naming it and
            ``missing_hint``), or a hub id that is neither cached nor reachable.
    """
    key, dtype = _key(cfg, device)
    hit = _CACHE.get(key)
    if hit is None:
        _CACHE.clear()
        prior = _load(cfg, device, dtype)
        hit = LoadedPrior(prior=prior, model=prior)
        _CACHE[key] = hit
    if cfg.source == "tiny_random":
        warnings.warn(
            "dreamgaussian: prior.source='tiny_random' - the Zero123 prior has random weights "
            "(gs_priors.tiny); the result is for tests and timing only",
            RandomWeightsWarning,
            stacklevel=3,
        )
    layout = cfg.channels_last if device.type == "cuda" else "none"
    if hit.layout != layout:
        _set_layout(hit.prior, layout)
        hit.layout = layout
        hit.model = hit.prior  # recorded graphs read the previous weights' storage
    graphed = cfg.cuda_graph and device.type == "cuda"
    if graphed and not isinstance(hit.model, GraphedZero123):
        hit.model = GraphedZero123(hit.prior)
    elif not graphed:
        hit.model = hit.prior
    return hit


def _set_layout(prior, layout: str) -> None:
    """Store the VAE's (``layout`` 'vae' or 'all') and the U-Net's ('unet' or 'all') weights
    channels-last, the others contiguous; cuDNN then runs those convolutions channels-last."""
    last, plain = torch.channels_last, torch.contiguous_format
    prior.vae.to(memory_format=last if layout in ("vae", "all") else plain)
    prior.unet.to(memory_format=last if layout in ("unet", "all") else plain)


def _load(cfg: PriorConfig, device: torch.device, dtype: torch.dtype):
    from gs_priors.model_dir import resolve_model_dir
    from gs_priors.zero123 import COMPONENTS, Zero123Guidance

    if cfg.source == "tiny_random":
        from gs_priors.tiny import save_tiny_zero123

        with tempfile.TemporaryDirectory(prefix="gs3d-tiny-zero123-") as tmp:
            directory = save_tiny_zero123(tmp, seed=cfg.tiny_seed)
            return Zero123Guidance.from_pretrained(
                directory, device=device, dtype=dtype, variant=_variant(cfg)
            )
    if cfg.source == "local":
        path = cfg.local_path()
        if not (path.is_dir() or path.is_file()):  # a file: a packed teacher
            hint = f"; {cfg.missing_hint}" if cfg.missing_hint else ""
            raise WeightsNotFoundError(
                f"{path}: the Zero123 checkpoint of prior.model_id does not exist{hint}"
            )
        name: Any = path
    else:
        name = cfg.model_id
    directory = resolve_model_dir(name, COMPONENTS)
    return Zero123Guidance.from_pretrained(
        directory, device=device, dtype=dtype, variant=_variant(cfg)
    )


def _variant(cfg: PriorConfig) -> str:
    # The directory a hub id resolves to no longer carries its name; decide from the id.
    if cfg.variant != "auto":
        return cfg.variant
    return "stable_zero123" if "stable" in cfg.model_id.lower() else "zero123"


@torch.no_grad()
def encode_input(prior, rgb: torch.Tensor, cfg: PriorConfig):
    """The input view ``rgb [1, 3, S, S]`` (composited on white, in [0, 1]) as a
    ``Zero123Reference``: CLIP image embedding and the VAE latent that Zero123 concatenates,
    a posterior sample (``reference_latent='sample'``, the official choice) or its mode. Draws
    from the global generator (seeded by the caller)."""
    ref = prior.encode_reference(rgb)
    if cfg.reference_latent == "mode":
        return ref
    # encode_images samples the posterior and multiplies by the scaling factor; Zero123 takes
    # the latent unscaled (get_img_embeds divides it back).
    latents = prior.encode_images(rgb) / prior.latent_scaling
    return dataclasses.replace(ref, image_latents=latents)


class GraphedZero123(DelegatingPrior):
    """The ``DiffusionPrior`` protocol of a Zero123 prior whose ``model_output`` (the guided
    U-Net call: unconditional and conditional batched) replays a CUDA graph
    (:class:`gs_core.cuda_graphs.GraphedCallable`), and whose VAE encoder replays a forward
    and a backward graph (``torch.cuda.make_graphed_callables``) when it encodes a render that
    needs its gradient; everything else is the prior's own."""

    # Stage 1 encodes one shape (the render resized to the prior's size); a few more are kept.
    max_vae_graphs = 4

    def __init__(self, prior):
        from gs_core.cuda_graphs import GraphedCallable

        super().__init__(prior)
        self._prior = prior
        self._graphed = GraphedCallable(self._forward, prior.unet)
        self._vae_graphs: dict[tuple, Any] = {}
        # Stage 2 encodes a render and decodes the refined latents at every step, without
        # gradients: forward-only graphs (one per shape, as GraphedCallable keys them).
        self._encode_graph = GraphedCallable(prior.vae._encode, prior.vae)
        self._decode_graph = GraphedCallable(prior.decode_latents, prior.vae)

    def _forward(self, latents_t, t, embeddings, image_latents):
        from gs_priors.zero123 import Zero123Condition

        cond = Zero123Condition(embeddings=embeddings, image_latents=image_latents)
        return self._prior.model_output(latents_t, t, cond)

    def model_output(self, latents_t: torch.Tensor, t: torch.Tensor, condition) -> torch.Tensor:
        t = torch.as_tensor(t, device=latents_t.device).expand(latents_t.shape[0]).contiguous()
        return self._graphed(
            latents_t.contiguous(),
            t,
            condition.embeddings.contiguous(),
            condition.image_latents.contiguous(),
        )

    def encode_images(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The prior's ``encode_images`` with the moments from the graphed encoder."""
        p = self._prior
        return p.latents_from_moments(self._vae_moments(p.encoder_input(images)), generator)

    def _replayable(self, x: torch.Tensor) -> bool:
        """Whether the VAE's call on ``x`` has static shapes a graph can replay (CUDA, no tiling,
        no slicing of a batch)."""
        vae = self._prior.vae
        return x.is_cuda and not vae.use_tiling and not (vae.use_slicing and x.shape[0] > 1)

    def _vae_moments(self, x: torch.Tensor) -> torch.Tensor:
        vae = self._prior.vae
        if not self._replayable(x):
            return vae._encode(x)
        if not torch.is_grad_enabled():
            return self._encode_graph(x.contiguous())
        # Stage 1 encodes a render and backpropagates through the encoder every step; replayed
        # from graphs the two took 4.59 s of 500 paper-size steps on an H200 instead of 5.83 s
        # (profiled sections, README "Speed").
        if not x.requires_grad or any(q.requires_grad for q in vae.parameters()):
            return vae._encode(x)
        key = (tuple(x.shape), x.dtype, x.device)
        fn = self._vae_graphs.get(key)
        if fn is None:
            if len(self._vae_graphs) >= self.max_vae_graphs:
                return vae._encode(x)
            sample = torch.zeros_like(x, requires_grad=True)
            fn = torch.cuda.make_graphed_callables(vae._encode, (sample,))
            self._vae_graphs[key] = fn
        return fn(x)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """The prior's ``decode_latents``, replayed from a graph on CUDA without gradients."""
        if self._replayable(latents) and not torch.is_grad_enabled():
            return self._decode_graph(latents.contiguous())
        return self._prior.decode_latents(latents)

    def __getattr__(self, name: str):
        if name.startswith("_"):  # never delegate private names (copying looks them up early)
            raise AttributeError(name)
        return getattr(self._prior, name)
