"""The multi-view torch Dataset: one input view plus K target views per object.

Each item is a dict of tensors (collates with ``torch.utils.data.default_collate``)::

    object_id, category          str
    input_rgba      [4, H, W]     straight RGB + alpha in [0, 1] (the Method.generate input)
    input_rgb       [3, H, W]     input composited on ``background``
    input_viewmat   [4, 4]        OpenCV world-to-camera, in the sample's space
    input_K         [3, 3]
    target_rgb      [K, H, W, 3]  targets composited on ``background`` (renderer layout)
    target_alpha    [K, H, W, 1]
    target_viewmats [K, 4, 4]
    target_Ks       [K, 3, 3]
    target_index    [K]           frame indices of the targets; input_index: scalar
    target_depth    [K, H, W, 1]  with load_depth: camera-space z of the targets (0 = background)
    background      [3]
    space_transform [4, 4]        world -> sample space (identity for space="world")
    input_azimuth, input_elevation  degrees, in the world frame
    points, point_colors [P, 3]   with load_points: surface points (sample space) and colours
    fitted_points   [P, 3]        with load_fitted: centres of the per-object 3DGS fit

Decoded, resized views are cached in memory (LRU up to ``cache_bytes``), so after the first
epoch a sample costs a few array copies. :func:`batch_cameras` turns a collated batch into
:class:`~gs_core.cameras.Cameras`.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydantic
import torch
from torch.utils.data import Dataset

from gs_core.cameras import Cameras
from gs_core.config import MAX_VIEWS, Config, PointCount, Resolution
from gs_core.data.backgrounds import check_background, sample_background
from gs_core.data.layout import check_object_id, read_split
from gs_core.data.spaces import azimuth_elevation, space_transform
from gs_core.data.transforms import read_transforms
from gs_core.data.views import ObjectViews, load_object_views
from gs_core.errors import FileFormatError, GS3DError, ValidationError


class MultiViewConfig(Config):
    """Options of :class:`MultiViewDataset`."""

    resolution: Resolution = pydantic.Field(128, description="square output size in pixels")
    num_target_views: int = pydantic.Field(
        4, ge=-1, le=MAX_VIEWS, description="K; -1 = every other view"
    )
    input_view: Literal["random", "first", "front"] | int = "random"
    targets_include_input: bool = False
    background: str | tuple[float, float, float] = "white"
    space: Literal["world", "azimuth", "camera"] = "world"
    load_depth: bool = False
    load_points: bool = False
    num_points: PointCount = 4096
    load_fitted: bool = False
    num_fitted: PointCount = 4096
    alpha_from_background: tuple[float, float, float] | None = None
    cache_bytes: int = pydantic.Field(2 * 1024**3, ge=0)
    seed: int | None = None

    presets = {
        "tiny": {"resolution": 32, "num_target_views": 2},
        "small": {"resolution": 64, "num_target_views": 4},
    }

    @pydantic.field_validator("background")
    @classmethod
    def _bg(cls, v):
        return check_background(v)


class MultiViewDataset(Dataset):
    """Objects of a dataset split (see :mod:`gs_core.data.layout`) as input/target view samples.

    Args:
        root: dataset root folder.
        split: ``"train"``, ``"val"``, ``"test"``, any ``splits/<name>.txt``, or ``"all"``.
        config: a :class:`MultiViewConfig`; keyword overrides are applied on top.
        categories: keep only objects of these categories (``categories/<name>.txt``).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        config: MultiViewConfig | None = None,
        categories: list[str] | None = None,
        **overrides: Any,
    ):
        cfg = config or MultiViewConfig()
        if overrides:
            cfg = cfg.with_overrides(overrides)
        self.config = cfg
        self.root = Path(root)
        self.split = split
        self.object_ids = read_split(self.root, split, categories)
        self._cache: OrderedDict[str, ObjectViews] = OrderedDict()
        self._cache_used = 0
        self._aux: dict[str, dict[str, np.ndarray]] = {}
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.object_ids)

    def set_epoch(self, epoch: int) -> None:
        """Reseed the per-item randomness (with ``config.seed``) for a new epoch."""
        self.epoch = int(epoch)

    # ------------------------------------------------------------------ loading
    def views(self, index: int) -> ObjectViews:
        """Decoded views of object ``index`` (cached)."""
        oid = self.object_ids[index]
        hit = self._cache.get(oid)
        if hit is not None:
            self._cache.move_to_end(oid)
            return hit
        v = load_object_views(
            self.root / oid,
            self.config.resolution,
            alpha_from_background=self.config.alpha_from_background,
            depth=self.config.load_depth,
        )
        if self.config.cache_bytes > 0:
            self._cache[oid] = v
            self._cache_used += v.nbytes()
            while self._cache_used > self.config.cache_bytes and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cache_used -= old.nbytes()
        return v

    def _points(self, views: ObjectViews, kind: str) -> dict[str, np.ndarray]:
        key = f"{views.object_id}/{kind}"
        if key in self._aux:
            return self._aux[key]
        rec = views.record
        if kind == "points":
            path = rec.points_path
            if path is None:
                raise FileFormatError(
                    rec.directory / "points.ply",
                    "not found; load_points needs each object's coloured surface point cloud "
                    "(gs3d data procedural writes it; for other datasets sample it from the mesh)",
                )
            from gs_core.io import load_point_cloud

            pts, cols = load_point_cloud(path)
            if cols is None:
                cols = torch.full_like(pts, 0.5)
            out = {"points": pts.numpy(), "colors": cols.numpy()}
        else:
            path = rec.gaussians_path
            if path is None:
                raise FileFormatError(
                    rec.directory / "gaussians.ply",
                    "not found; load_fitted needs a per-object 3DGS fit (run `gs3d fit ROOT --split ...`)",
                )
            from gs_core.io import load_ply

            g = load_ply(path)
            out = {"points": g.means.numpy(), "colors": g.colors.numpy()}
        if len(out["points"]) == 0:
            raise FileFormatError(path, "holds no points")
        self._aux[key] = out
        return out

    def _poses(self, views: ObjectViews) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """OpenCV ``c2w``, ``viewmats`` (float64) and ``Ks`` (float32) of an object, cached."""
        key = f"{views.object_id}/poses"
        if key not in self._aux:
            v = views.cameras.viewmats.double().numpy()
            self._aux[key] = {
                "c2w": np.linalg.inv(v),
                "viewmats": v,
                "Ks": views.cameras.Ks.numpy(),
            }
        p = self._aux[key]
        return p["c2w"], p["viewmats"], p["Ks"]

    # ------------------------------------------------------------------ sampling
    def _rng(self, index: int) -> np.random.Generator:
        if self.config.seed is not None:
            return np.random.default_rng([self.config.seed, self.epoch, index])
        # Follows torch's RNG, which DataLoader seeds differently in every worker.
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))

    def _choose(self, views: ObjectViews, rng: np.random.Generator) -> tuple[int, np.ndarray]:
        V = views.num_views
        sel = self.config.input_view
        if sel == "random":
            i_in = int(rng.integers(V))
        elif sel == "first":
            i_in = 0
        elif sel == "front":
            c2w = self._poses(views)[0]
            ang = []
            for c in c2w[:, :3, 3]:
                az, el, _ = azimuth_elevation(c)
                ang.append(min(az, 360 - az) ** 2 + el**2)
            i_in = int(np.argmin(ang))
        else:
            if not 0 <= sel < V:
                raise ValidationError(
                    "input_view",
                    f"a frame index in [0, {V})",
                    f"{sel} for object {views.object_id}",
                )
            i_in = int(sel)
        pool = np.arange(V) if self.config.targets_include_input else np.delete(np.arange(V), i_in)
        K = self.config.num_target_views
        if K == -1:
            return i_in, pool
        if len(pool) < K:
            raise GS3DError(
                f"{views.record.directory}: object has {V} views; num_target_views={K} needs at least "
                f"{K + (0 if self.config.targets_include_input else 1)}"
            )
        return i_in, np.sort(rng.choice(pool, size=K, replace=False))

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        views = self.views(index)
        rng = self._rng(index)
        i_in, targets = self._choose(views, rng)
        bg = sample_background(self.config.background, rng)
        c2w, viewmats_w, Ks = self._poses(views)
        T = space_transform(self.config.space, c2w[i_in])
        viewmats = viewmats_w @ np.linalg.inv(T)
        az, el, _ = azimuth_elevation(c2w[i_in][:3, 3])
        # numpy for the per-sample arithmetic: small single-threaded ops (torch's intra-op
        # threads only add synchronisation here, and stall badly on busy hosts).
        scale = np.float32(1 / 255)
        inp = views.rgba[i_in].astype(np.float32) * scale  # [H, W, 4]
        tgt = views.rgba[targets].astype(np.float32) * scale  # [K, H, W, 4]
        a_in, a_t = inp[..., 3:], tgt[..., 3:]
        t = torch.from_numpy
        item: dict[str, Any] = {
            "object_id": views.object_id,
            "category": views.category,
            "input_index": torch.tensor(i_in),
            "input_rgba": t(np.ascontiguousarray(inp.transpose(2, 0, 1))),
            "input_rgb": t(
                np.ascontiguousarray((inp[..., :3] * a_in + bg * (1 - a_in)).transpose(2, 0, 1))
            ),
            "input_viewmat": t(viewmats[i_in].astype(np.float32)),
            "input_K": t(Ks[i_in].copy()),
            "target_index": t(np.asarray(targets, np.int64)),
            "target_rgb": t(tgt[..., :3] * a_t + bg * (1 - a_t)),
            "target_alpha": t(np.ascontiguousarray(a_t)),
            "target_viewmats": t(viewmats[targets].astype(np.float32)),
            "target_Ks": t(Ks[targets].copy()),
            "background": t(bg),
            "space_transform": t(T.astype(np.float32)),
            "input_azimuth": torch.tensor(az, dtype=torch.float32),
            "input_elevation": torch.tensor(el, dtype=torch.float32),
        }
        if views.depth is not None:
            item["target_depth"] = torch.from_numpy(views.depth[targets])[..., None]
        for flag, kind, count, prefix in (
            (self.config.load_points, "points", self.config.num_points, "points"),
            (self.config.load_fitted, "fitted", self.config.num_fitted, "fitted_points"),
        ):
            if not flag:
                continue
            data = self._points(views, kind)
            n = len(data["points"])
            # A fixed count per sample so batches collate: subsample, or repeat when short.
            pick = rng.choice(n, size=count, replace=n < count)
            p = data["points"][pick].astype(np.float64) @ T[:3, :3].T + T[:3, 3]
            item[prefix] = torch.from_numpy(p).float()
            if kind == "points":
                item["point_colors"] = torch.from_numpy(data["colors"][pick]).float()
        return item


def batch_cameras(batch: dict[str, Any], which: Literal["input", "target"] = "target") -> Cameras:
    """Cameras of a collated batch: ``target`` -> ``[B, K]`` cameras, ``input`` -> ``[B, 1]``."""
    if which == "target":
        v, k = batch["target_viewmats"], batch["target_Ks"]
        h, w = batch["target_rgb"].shape[-3:-1]
    elif which == "input":
        v, k = batch["input_viewmat"].unsqueeze(-3), batch["input_K"].unsqueeze(-3)
        h, w = batch["input_rgba"].shape[-2:]
    else:
        raise ValidationError("which", "'input' or 'target'", repr(which))
    return Cameras(viewmats=v, Ks=k, width=int(w), height=int(h))


def object_record(root: str | Path, object_id: str):
    """The parsed ``transforms.json`` of one object of a dataset."""
    return read_transforms(Path(root) / check_object_id(object_id, root))
