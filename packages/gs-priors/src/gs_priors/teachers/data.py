"""Procedural views held on the training device, and the batches each prior trains on.

Views come from ``gs3d data procedural`` datasets (one camera layout per prior, see
:data:`gs_priors.teachers.config.LAYOUTS`), decoded once into ``uint8`` tensors ``[N, V, 4, H, W]``
with their angles ``[N, V, 2]`` (azimuth, elevation in degrees, gs3d's convention), so a
training step only indexes memory on the GPU.
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gs_core.errors import ValidationError


def _load_one(task: tuple[str, int]) -> tuple[np.ndarray, np.ndarray]:
    from gs_core.data.views import load_object_views

    path, resolution = task
    views = load_object_views(path, resolution=resolution)
    angles = np.array(
        [[f.extras["azimuth"], f.extras["elevation"]] for f in views.record.frames],
        dtype=np.float32,
    )
    return views.rgba, angles


@dataclass
class ViewBank:
    """Every view of a dataset: ``rgba [N, V, 4, H, W]`` uint8, ``angles [N, V, 2]`` float."""

    rgba: torch.Tensor
    angles: torch.Tensor
    object_ids: list[str]

    @classmethod
    def load(
        cls,
        dataset: str | Path,
        resolution: int,
        device: str | torch.device = "cpu",
        workers: int = 0,
        max_objects: int | None = None,
    ) -> ViewBank:
        from gs_core.data.layout import list_objects

        root = Path(dataset)
        ids = list_objects(root)[:max_objects]
        if not ids:
            raise ValidationError("dataset", "a gs3d data procedural dataset", str(root))
        tasks = [(str(root / oid), resolution) for oid in ids]
        if workers > 1:
            with mp.get_context("fork").Pool(workers) as pool:
                loaded = pool.map(_load_one, tasks, chunksize=16)
        else:
            loaded = [_load_one(t) for t in tasks]
        counts = {a.shape[0] for _, a in loaded}
        if len(counts) != 1:
            raise ValidationError(f"{root}", "the same number of views per object", str(counts))
        rgba = torch.from_numpy(np.stack([r for r, _ in loaded])).permute(0, 1, 4, 2, 3)
        angles = torch.from_numpy(np.stack([a for _, a in loaded]))
        return cls(rgba.contiguous().to(device), angles.to(device), ids)

    @property
    def num_objects(self) -> int:
        return self.rgba.shape[0]

    @property
    def views_per_object(self) -> int:
        return self.rgba.shape[1]

    def images(self, obj: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
        """Views ``[B, 4, H, W]`` in [0, 1] (straight alpha) of objects ``obj`` ``[B]``."""
        return self.rgba[obj, view].float() / 255.0


def _wrap(deg: torch.Tensor) -> torch.Tensor:
    return (deg + 180.0) % 360.0 - 180.0


@dataclass
class Zero123Batch:
    inputs: torch.Tensor  # [B, 4, H, W]
    targets: torch.Tensor  # [B, 4, H, W]
    d_elevation: torch.Tensor  # [B] degrees
    d_azimuth: torch.Tensor  # [B]
    obj: torch.Tensor  # [B] object, input view and target view indices into the bank
    src: torch.Tensor
    dst: torch.Tensor


def zero123_batch(bank: ViewBank, b: int, generator: torch.Generator) -> Zero123Batch:
    """Two different random views of random objects: one the input, one the target."""
    dev = bank.rgba.device
    v = bank.views_per_object
    obj = torch.randint(bank.num_objects, (b,), generator=generator, device=dev)
    src = torch.randint(v, (b,), generator=generator, device=dev)
    dst = (src + torch.randint(1, v, (b,), generator=generator, device=dev)) % v
    a_src, a_dst = bank.angles[obj, src], bank.angles[obj, dst]
    return Zero123Batch(
        bank.images(obj, src),
        bank.images(obj, dst),
        a_dst[:, 1] - a_src[:, 1],
        _wrap(a_dst[:, 0] - a_src[:, 0]),
        obj,
        src,
        dst,
    )


@dataclass
class MultiViewBatch:
    inputs: torch.Tensor  # [B, 4, H, W]
    targets: torch.Tensor  # [B, V, 4, H, W]
    elevation: torch.Tensor  # [B, V] absolute degrees
    d_azimuth: torch.Tensor  # [B, V] relative to the input
    obj: torch.Tensor  # [B] object, input view [B] and target views [B, V] indices
    src: torch.Tensor
    dst: torch.Tensor


def zero123plus_batch(bank: ViewBank, b: int, generator: torch.Generator) -> MultiViewBatch:
    """A random set of the ``zero123pp`` layout: its input and six views in grid order."""
    dev = bank.rgba.device
    sets = bank.views_per_object // 7
    obj = torch.randint(bank.num_objects, (b,), generator=generator, device=dev)
    start = 7 * torch.randint(sets, (b,), generator=generator, device=dev)
    idx = start[:, None] + torch.arange(7, device=dev)
    ang = bank.angles[obj[:, None], idx]
    return MultiViewBatch(
        bank.images(obj, start),
        bank.rgba[obj[:, None], idx[:, 1:]].float() / 255.0,
        ang[:, 1:, 1],
        _wrap(ang[:, 1:, 0] - ang[:, :1, 0]),
        obj,
        start,
        idx[:, 1:],
    )


def imagedream_batch(bank: ViewBank, b: int, generator: torch.Generator) -> MultiViewBatch:
    """A ring of the ``ring24`` layout: a random view is the input, the four orthogonal views
    starting at it (0, 90, 180, 270 degrees) the targets, as ImageDream's front view faces its
    input."""
    dev = bank.rgba.device
    n = bank.views_per_object
    if n % 4:
        raise ValidationError("dataset", "rings of a multiple of 4 views (ring24)", f"{n} views")
    obj = torch.randint(bank.num_objects, (b,), generator=generator, device=dev)
    start = torch.randint(n, (b,), generator=generator, device=dev)
    idx = (start[:, None] + (n // 4) * torch.arange(4, device=dev)) % n
    ang = bank.angles[obj[:, None], idx]
    return MultiViewBatch(
        bank.images(obj, start),
        bank.rgba[obj[:, None], idx].float() / 255.0,
        ang[:, :, 1],
        _wrap(ang[:, :, 0] - ang[:, :1, 0]),
        obj,
        start,
        idx,
    )


# The seed of each prior's procedural training data (the GPU runs' `train` split); the warm-start
# toy draws the first of the same objects.
TRAIN_SEEDS = {"zero123": 1001, "zero123plus": 1002, "imagedream": 1003}

BATCHES = {
    "zero123": zero123_batch,
    "zero123plus": zero123plus_batch,
    "imagedream": imagedream_batch,
}

# Views per object as in the GPU runs' training sets (train_procedural_teachers.py DATA), so the
# first objects a probe makes are the first objects those runs trained on; and per held-out
# object: one Zero123++ set of 7, one ImageDream ring of 24.
TRAIN_VIEWS = {"zero123": 12, "zero123plus": 14, "imagedream": 24}
HELD_OUT_VIEWS = {"zero123": 12, "zero123plus": 7, "imagedream": 24}


def probe_dataset_config(name: str, split: str, resolution: int, objects: int):
    """The :class:`~gs_core.procedural.generator.ProceduralConfig` of a teacher probe's objects:
    ``split`` ``"train"`` (the first of the GPU runs' training objects) or ``"unseen"`` (the
    held-out ``eval-hard`` objects the usefulness checks score), in ``name``'s layout."""
    from gs_core.procedural.generator import ProceduralConfig
    from gs_priors.teachers.config import LAYOUTS

    common = {"resolution": resolution, "camera_layout": LAYOUTS[name], "points": 0,
              "depth": False, "normals": False, "objects": objects}  # fmt: skip
    if split == "train":
        return ProceduralConfig(
            views=TRAIN_VIEWS[name], seed=TRAIN_SEEDS[name], split="train", asymmetric=True,
            **common,
        )  # fmt: skip
    if split == "unseen":
        return ProceduralConfig.model_validate(
            ProceduralConfig.preset("eval-hard")
            .model_copy(update={**common, "views": HELD_OUT_VIEWS[name]})
            .model_dump()
        )
    raise ValidationError("split", "'train' or 'unseen'", repr(split))
