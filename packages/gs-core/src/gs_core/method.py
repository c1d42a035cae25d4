"""The Method contract: what every generation method plugin provides.

A method plugin ships

1. a config class (``gs_core.config.Config`` subclass) with named presets — at least ``paper``
   (the paper's exact settings) and ``tiny`` (builds and runs in seconds on a CPU);
2. a model class subclassing :class:`Method` (an ``nn.Module`` built as ``Cls(config)``), whose
   :meth:`Method.generate` turns input images into a :class:`GenerationOutput`;
3. ``save_pretrained(dir)`` / ``from_pretrained(dir_or_hub_id, **overrides)`` (inherited:
   ``config.json`` + ``model.safetensors``). Building a method (``Cls(config)``) never fetches
   pretrained sub-weights (an image encoder's, say): a checkpoint holds every weight, and a
   method that needs released weights before training fetches them in an explicit step of
   :meth:`Method.training_module` or on first use, so loading never depends on how the method
   was built;
4. for trainable methods, :meth:`Method.training_module`, which returns the object the shared
   training engine (``gs_core.training``) drives for one stage;
5. a :class:`~gs_core.plugins.specs.MethodSpec` registered from the ``gs3d_register_methods``
   hook of a module named by an entry point in the ``gs3d`` group: the method class, its output
   frame, its training stages and whether it has weights of its own. Get a ready method by
   name with :func:`gs_core.loading.load_method`.

Inputs to :meth:`Method.generate` are RGBA images ``[B, 4, H, W]`` in ``[0, 1]`` (alpha is the
object mask; methods that need a background composite it themselves), square or not; each
method resizes to its own input size. ``generate(images, seed=s)`` is reproducible: a
stochastic method draws all its randomness from ``s`` (e.g. a ``torch.Generator`` seeded with
it, see :meth:`Method.seeded_generator`), never from the global RNG state, so equal seeds give
equal outputs; ``seed=None`` draws a fresh seed. Deterministic methods accept and ignore it.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from gs_core.config import Config
from gs_core.errors import GS3DError, ValidationError
from gs_core.gaussians import Gaussians
from gs_core.mesh import Mesh
from gs_core.pretrained import PretrainedMixin


@dataclass
class GenerationOutput:
    """What :meth:`Method.generate` returns.

    ``gaussians`` has batch dims ``[B]`` (one set per input image) or is ``None`` for mesh-only
    methods; ``meshes`` holds one :class:`Mesh` per input when the method outputs meshes;
    ``timings`` maps stage names to seconds (wall clock, synchronised on CUDA).
    """

    gaussians: Gaussians | None = None
    meshes: list[Mesh] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.gaussians is None and not self.meshes:
            raise ValidationError("GenerationOutput", "gaussians and/or meshes")


class Method(PretrainedMixin, nn.Module):
    """Base class of generation methods. Subclasses set ``config_class`` and ``name``."""

    config_class: ClassVar[type[Config]]
    name: ClassVar[str] = ""

    def __init__(self, config: Config):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise ValidationError(
                f"{type(self).__name__}(config)", self.config_class.__name__, type(config).__name__
            )
        self.config = config

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def generate(
        self, images: torch.Tensor, *, seed: int | None = None, **kwargs: Any
    ) -> GenerationOutput:
        """Images ``[B, 4, H, W]`` RGBA in [0, 1] -> :class:`GenerationOutput`.

        ``seed`` fixes the randomness of stochastic methods (ignored by deterministic ones).
        """
        raise GS3DError(
            f"method '{self.name or type(self).__name__}' does not implement generate()"
        )

    def training_module(self, stage: str | None = None, **kwargs: Any):
        """Return the ``gs_core.training`` module the engine drives for ``stage``."""
        raise GS3DError(f"method '{self.name or type(self).__name__}' cannot be trained")

    def seeded_generator(self, seed: int | None) -> torch.Generator:
        """A ``torch.Generator`` on the method's device seeded with ``seed`` (a fresh random
        seed when ``None``), for stochastic :meth:`generate` implementations."""
        gen = torch.Generator(device=self.device)
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(int(seed))
        return gen

    @staticmethod
    def check_images(images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 4:
            raise ValidationError("images", "RGBA tensor [B, 4, H, W] in [0, 1]", _desc(images))
        if not images.is_floating_point():
            raise ValidationError("images", "a float tensor in [0, 1]", str(images.dtype))
        return images


@contextmanager
def timed(timings: dict[str, float], key: str, device: torch.device | None = None):
    """Record the wall time of a block into ``timings[key]`` (CUDA-synchronised)."""
    sync = device is not None and device.type == "cuda"
    if sync:
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    yield
    if sync:
        torch.cuda.synchronize(device)
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0


def _desc(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"shape {tuple(x.shape)}"
    return type(x).__name__
