"""A whole multi-view split held on the training device, sampled there by index.

:class:`MultiViewDataset` builds every sample on the CPU (decode, composite, pick views, rotate
cameras), which DataLoader workers must keep up with: a few thousand samples per second, while
a generator with a small renderer consumes more. :class:`ResidentViews` decodes every view of
a split once into one ``uint8`` tensor on the device (2,000 objects x 24 views at 128 px are
3.1 GB) and draws whole batches there: input and target views, cameras in the sample's space,
backgrounds, surface points and (optionally) target depth, in a handful of batched kernels and
without a host round trip.

The batch has :class:`MultiViewDataset`'s keys and layout (collated, with the batch first),
so a training step reads it the same way; the strings ``object_id`` and ``category`` are
replaced by ``index [B]`` (``ResidentViews.object_ids`` maps it back).

:meth:`ResidentViews.from_dataset` decodes with a process pool and caches the result as one
safetensors file in the dataset folder, so that further processes (stages, seeds, ablations)
load it in seconds.

To train through the engine, return ``IndexDataset(len(views))`` from ``train_dataset()``: the
engine's stream shuffles, splits over processes and resumes the indices as it would samples,
and ``training_step`` turns its ``[B]`` index batch into samples with :meth:`ResidentViews.sample`.
Randomness comes from the device's torch generator, which the engine seeds and checkpoints.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from gs_core.data.backgrounds import NAMED, RANDOM_KINDS, check_background
from gs_core.data.layout import read_split
from gs_core.data.views import load_object_views
from gs_core.errors import FileFormatError, GS3DError, ValidationError

Space = Literal["world", "azimuth", "camera"]


class IndexDataset(Dataset):
    """The indices ``0 .. n-1`` as a map-style dataset (collates to a ``LongTensor [B]``)."""

    def __init__(self, n: int):
        if n <= 0:
            raise ValidationError("IndexDataset(n)", "a positive number of samples", str(n))
        self.n = int(n)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self.n:
            raise IndexError(index)
        return index


def _half_depth(depth: np.ndarray, directory: Path) -> np.ndarray:
    """``depth`` as float16: half the bytes of float32, within 2^-11 (0.05%) of every depth
    above 6e-5 and exact at 0 (the background); depth past float16's range is refused rather
    than clipped to infinity."""
    far = float(depth.max(initial=0.0))
    if far > float(np.finfo(np.float16).max):
        raise FileFormatError(
            directory / "transforms.json",
            f"depth up to {far:g} does not fit resident data's float16 depth maps",
        )
    return depth.astype(np.float16)


def _load_object(
    directory: Path, resolution: int, points: int, seed: int, depth: bool = False
) -> dict[str, Any]:
    views = load_object_views(directory, resolution, depth=depth)
    out: dict[str, Any] = {
        "rgba": views.rgba,
        "viewmats": views.cameras.viewmats.double().numpy(),
        "Ks": views.cameras.Ks.float().numpy(),
        "category": views.category,
    }
    if depth:
        out["depth"] = _half_depth(views.depth, directory)
    if points:
        path = views.record.points_path
        if path is None:
            raise FileFormatError(
                directory / "points.ply",
                "not found; resident points need each object's coloured surface point cloud "
                "(gs3d data procedural writes it)",
            )
        from gs_core.io import load_point_cloud

        pts, cols = load_point_cloud(path)
        if len(pts) == 0:
            raise FileFormatError(path, "holds no points")
        if cols is None:
            cols = torch.full_like(pts, 0.5)
        # A fixed count per object so they stack: subsample, or repeat when short.
        rng = np.random.default_rng([seed, len(pts)])
        pick = rng.choice(len(pts), size=points, replace=len(pts) < points)
        out["points"] = pts.numpy()[pick]
        out["point_colors"] = cols.numpy()[pick]
    return out


def _decode_split(
    root: Path,
    object_ids: list[str],
    resolution: int,
    points: int,
    workers: int,
    seed: int,
    depth: bool = False,
) -> tuple[dict[str, torch.Tensor], list[str]]:
    dirs = [root / oid for oid in object_ids]
    # Starting a process costs about a second: small splits decode here.
    workers = min(workers, len(dirs) // 64)
    job = partial(_load_object, resolution=resolution, points=points, seed=seed, depth=depth)
    if workers > 1:
        import multiprocessing

        # A forked child cannot use a CUDA context its parent made: spawn then (the calling
        # script needs its `if __name__ == "__main__"` guard, as for DataLoader workers).
        method = "spawn" if torch.cuda.is_initialized() else "fork"
        ctx = multiprocessing.get_context(method)
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as pool:
            items = list(pool.map(job, dirs, chunksize=max(1, len(dirs) // (8 * workers))))
    else:
        items = [job(d) for d in dirs]
    shape = items[0]["rgba"].shape
    for d, item in zip(dirs, items, strict=True):
        if item["rgba"].shape != shape:
            got = "x".join(map(str, item["rgba"].shape[:3]))
            want = "x".join(map(str, shape[:3]))
            raise FileFormatError(
                d / "transforms.json",
                f"views x height x width {got}, but {dirs[0].name} has {want}: resident data "
                "needs the same number and size of views for every object",
            )
    keys = ["rgba", "viewmats", "Ks"] + (["points", "point_colors"] if points else [])
    keys += ["depth"] if depth else []
    tensors = {k: torch.from_numpy(np.stack([item[k] for item in items])) for k in keys}
    tensors["viewmats"] = tensors["viewmats"].float()
    return tensors, [item["category"] for item in items]


def _worker_init() -> None:
    # One thread per decoding process, as DataLoader workers run: the pool is the parallelism.
    torch.set_num_threads(1)


def cache_path(root: Path, split: str, resolution: int) -> Path:
    """Where :meth:`ResidentViews.from_dataset` caches ``split`` at ``resolution``."""
    return Path(root) / ".resident" / f"{split}-{resolution}px.safetensors"


def _save(
    path: Path,
    tensors: dict[str, torch.Tensor],
    object_ids: list[str],
    categories: list[str],
    split: str,
    resolution: int,
) -> None:
    from gs_core.io.atomic import atomic_path
    from gs_core.io.tensor_file import save_tensors

    meta = {
        "object_ids": json.dumps(object_ids),
        "categories": json.dumps(categories),
        "split": split,
        "resolution": str(resolution),
        "points": str(tensors["points"].shape[1] if "points" in tensors else 0),
        "depth": str(int("depth" in tensors)),
    }
    with atomic_path(path) as tmp:
        save_tensors({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)


def _rotation_y(angle: torch.Tensor) -> torch.Tensor:
    """``[B, 4, 4]`` rotations about +y by ``angle [B]`` radians (``gs_core.data.spaces``)."""
    c, s = angle.cos(), angle.sin()
    T = torch.zeros(*angle.shape, 4, 4, dtype=angle.dtype, device=angle.device)
    T[..., 0, 0], T[..., 0, 2], T[..., 2, 0], T[..., 2, 2] = c, s, -s, c
    T[..., 1, 1] = T[..., 3, 3] = 1.0
    return T


class ResidentViews:
    """Every view of a dataset split on one device (build with :meth:`from_dataset`).

    Tensors (``N`` objects, ``V`` views each; every object has the same ``V`` and size)::

        rgba        [N, V, H, W, 4]  uint8, straight alpha
        viewmats    [N, V, 4, 4]     float32 OpenCV world-to-camera
        camtoworlds [N, V, 4, 4]     float32
        Ks          [N, V, 3, 3]     float32
        points, point_colors [N, P, 3]  float32, or None
        depth       [N, V, H, W]     float16 camera-space z (0 = background), or None

    ``object_ids`` and ``categories`` list the objects in split order.
    """

    def __init__(
        self,
        tensors: dict[str, torch.Tensor],
        object_ids: list[str],
        categories: list[str],
        device: str | torch.device = "cpu",
    ):
        self.device = torch.device(device)
        rgba = tensors["rgba"]
        check_fits(sum(t.numel() * t.element_size() for t in tensors.values()), self.device)
        dev = self.device
        self.rgba = rgba.to(dev)
        self.viewmats = tensors["viewmats"].to(dev, torch.float32)
        self.Ks = tensors["Ks"].to(dev, torch.float32)
        self.camtoworlds = torch.linalg.inv(tensors["viewmats"].double()).float().to(dev)
        self.points = self.point_colors = None
        if "points" in tensors:
            self.points = tensors["points"].to(dev, torch.float32)
            self.point_colors = tensors["point_colors"].to(dev, torch.float32)
        self.depth = tensors["depth"].to(dev, torch.float16) if "depth" in tensors else None
        self.object_ids = list(object_ids)
        self.categories = list(categories)
        self.num_objects, self.num_views = rgba.shape[0], rgba.shape[1]
        if len(self.object_ids) != self.num_objects:
            raise GS3DError(
                f"ResidentViews: {len(self.object_ids)} object ids for {self.num_objects} objects"
            )

    @classmethod
    def from_dataset(
        cls,
        root: str | Path,
        split: str = "train",
        resolution: int = 128,
        device: str | torch.device = "cpu",
        points: int = 0,
        workers: int = 0,
        cache: bool = True,
        seed: int = 0,
        depth: bool = False,
    ) -> ResidentViews:
        """Decode ``split`` of the dataset at ``root`` at ``resolution`` onto ``device``.

        Args:
            points: surface points kept per object (subsampled with a fixed seed, or
                repeated); 0 loads none.
            workers: processes decoding the objects (0: in this process). Decoding is mostly
                Python (file parsing, PNG headers): about 40 ms per object of 24 views.
            cache: read (or, when missing, write) the decoded split as one safetensors file,
                ``ROOT/.resident/<split>-<resolution>px.safetensors``, so that the next process
                loads it in seconds; a cache with fewer points than asked, or without depth when
                it is asked, is rebuilt.
            depth: also keep every view's depth map (float16, nearest-neighbour resized as
                :class:`MultiViewDataset` does); :meth:`sample` then returns ``target_depth``.
        """
        root = Path(root)
        path = cache_path(root, split, resolution)
        if cache and path.is_file():
            cached = cls.load(path, device, points=points, root=root, split=split, depth=depth)
            if cached is not None:
                return cached
        object_ids = read_split(root, split)
        tensors, categories = _decode_split(
            root, object_ids, resolution, points, workers, seed, depth
        )
        if cache:
            _save(path, tensors, object_ids, categories, split, resolution)
        return cls(tensors, object_ids, categories, device)

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        points: int = 0,
        root: Path | None = None,
        split: str | None = None,
        depth: bool = False,
    ) -> ResidentViews | None:
        """Read a file :meth:`from_dataset` cached; ``None`` when it holds fewer than ``points``
        points per object, no depth while ``depth`` is asked, or (with ``root``) no longer
        matches the split's object list. Depth a cache holds is dropped when not asked."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                keys = set(f.keys())
        except (SafetensorError, OSError) as e:
            raise FileFormatError(path, f"not a readable safetensors file ({e})") from None
        need = {"rgba", "viewmats", "Ks"}
        if not need <= keys or "object_ids" not in meta:
            raise FileFormatError(
                path,
                f"expected tensors {sorted(need)} and 'object_ids' metadata (a resident-views "
                "cache); delete it to rebuild",
            )
        object_ids = json.loads(meta["object_ids"])
        if root is not None and split is not None and object_ids != read_split(root, split):
            return None
        have = int(meta.get("points", "0"))
        if points > have:
            return None
        if depth and meta.get("depth") != "1":
            return None  # (caches written before depth existed hold none)
        from safetensors.torch import load_file

        tensors = load_file(str(path))
        if not points:
            tensors.pop("points", None)
            tensors.pop("point_colors", None)
        if not depth:
            tensors.pop("depth", None)
        return cls(tensors, object_ids, json.loads(meta.get("categories", "[]")), device)

    def __len__(self) -> int:
        return self.num_objects

    def nbytes(self) -> int:
        tensors = [self.rgba, self.viewmats, self.camtoworlds, self.Ks]
        tensors += [t for t in (self.points, self.point_colors, self.depth) if t is not None]
        return sum(t.numel() * t.element_size() for t in tensors)

    # ------------------------------------------------------------------ sampling
    def _backgrounds(self, spec, b: int, generator) -> torch.Tensor:
        spec = check_background(spec)
        dev = self.device
        if spec in RANDOM_KINDS:
            u = torch.rand(b, 3, device=dev, generator=generator)
            return u if spec == "random" else 1.0 - (1.0 - u) ** 3
        rgb = NAMED[spec] if isinstance(spec, str) else spec
        return torch.tensor(rgb, dtype=torch.float32, device=dev).expand(b, 3).contiguous()

    def _space(self, space: Space, c2w_in: torch.Tensor) -> torch.Tensor:
        """``T [B, 4, 4]`` world -> sample space for input cameras ``c2w_in [B, 4, 4]``."""
        b = c2w_in.shape[0]
        if space == "world":
            return torch.eye(4, device=self.device).expand(b, 4, 4).contiguous()
        center = c2w_in[:, :3, 3]
        if space == "azimuth":
            azimuth = torch.atan2(center[:, 0], center[:, 2])
            return _rotation_y(-azimuth)
        if space == "camera":
            canonical = torch.zeros(b, 4, 4, device=self.device)
            canonical[:, 0, 0], canonical[:, 1, 1], canonical[:, 2, 2] = 1.0, -1.0, -1.0
            canonical[:, 3, 3] = 1.0
            canonical[:, 2, 3] = center.norm(dim=-1)
            return canonical @ torch.linalg.inv(c2w_in)
        raise ValidationError("space", "one of world, azimuth, camera", repr(space))

    def sample(
        self,
        index: torch.Tensor | Sequence[int],
        num_target_views: int = 4,
        *,
        input_view: Literal["random", "first"] = "random",
        background: str | tuple[float, float, float] = "white",
        space: Space = "world",
        num_points: int = 0,
        generator: torch.Generator | None = None,
    ) -> dict[str, Any]:
        """One batch for objects ``index [B]``: a random (or the first) input view and
        ``num_target_views`` distinct other views each, in :class:`MultiViewDataset`'s layout
        (``input_rgba [B, 4, H, W]``, ``target_rgb [B, K, H, W, 3]``, ...); with
        ``num_points``, ``points`` / ``point_colors [B, num_points, 3]`` drawn without
        replacement from the resident ones, in the sample's space; with resident depth,
        ``target_depth [B, K, H, W, 1]`` float32 (camera-space z: the same in every space)."""
        dev = self.device
        idx = torch.as_tensor(index, dtype=torch.long).to(dev).reshape(-1)
        b, V, K = idx.shape[0], self.num_views, num_target_views
        if not 1 <= K <= V - 1:
            raise ValidationError(
                "num_target_views", f"between 1 and {V - 1} (objects have {V} views)", str(K)
            )
        if input_view == "random":
            i_in = torch.randint(V, (b,), device=dev, generator=generator)
        elif input_view == "first":
            i_in = torch.zeros(b, dtype=torch.long, device=dev)
        else:
            raise ValidationError("input_view", "'random' or 'first'", repr(input_view))
        # K distinct targets other than the input: the K smallest of uniform keys, with the
        # input's key pushed past every other.
        keys = torch.rand(b, V, device=dev, generator=generator)
        keys.scatter_(1, i_in[:, None], 2.0)
        targets = keys.topk(K, dim=1, largest=False).indices.sort(dim=1).values

        bg = self._backgrounds(background, b, generator)
        rows = idx[:, None]
        T = self._space(space, self.camtoworlds[idx, i_in])
        T_inv = torch.linalg.inv(T)
        scale = 1.0 / 255.0
        inp = self.rgba[idx, i_in].float().mul_(scale)  # [B, H, W, 4]
        tgt = self.rgba[rows, targets].float().mul_(scale)  # [B, K, H, W, 4]
        a_in, a_t = inp[..., 3:], tgt[..., 3:]
        bg_img = bg[:, None, None, :]
        inp_rgb = inp[..., :3] * a_in + bg_img * (1 - a_in)
        tgt_rgb = tgt[..., :3] * a_t + bg_img[:, None] * (1 - a_t)
        center = self.camtoworlds[idx, i_in][:, :3, 3]
        azimuth = torch.rad2deg(torch.atan2(center[:, 0], center[:, 2])) % 360.0
        radius = center.norm(dim=-1).clamp_min(1e-12)
        elevation = torch.rad2deg(torch.asin((center[:, 1] / radius).clamp(-1.0, 1.0)))
        batch: dict[str, Any] = {
            "index": idx,
            "input_index": i_in,
            "input_rgba": inp.permute(0, 3, 1, 2).contiguous(),
            "input_rgb": inp_rgb.permute(0, 3, 1, 2).contiguous(),
            "input_viewmat": self.viewmats[idx, i_in] @ T_inv,
            "input_K": self.Ks[idx, i_in],
            "target_index": targets,
            "target_rgb": tgt_rgb.contiguous(),
            "target_alpha": a_t.contiguous(),
            "target_viewmats": self.viewmats[rows, targets] @ T_inv[:, None],
            "target_Ks": self.Ks[rows, targets],
            "background": bg,
            "space_transform": T,
            "input_azimuth": azimuth,
            "input_elevation": elevation,
        }
        if self.depth is not None:
            batch["target_depth"] = self.depth[rows, targets].float().unsqueeze(-1)
        if num_points:
            if self.points is None:
                raise GS3DError(
                    "ResidentViews.sample(num_points=...): no points were loaded "
                    "(build it with points=P)"
                )
            P = self.points.shape[1]
            if num_points > P:
                raise ValidationError(
                    "num_points", f"at most the {P} resident points per object", str(num_points)
                )
            pick = torch.rand(b, P, device=dev, generator=generator).argsort(dim=1)
            pick = pick[:, :num_points]
            pts = self.points[rows, pick]
            batch["points"] = pts @ T[:, :3, :3].transpose(1, 2) + T[:, None, :3, 3]
            batch["point_colors"] = self.point_colors[rows, pick]
        return batch


def check_fits(nbytes: int, device: torch.device) -> None:
    """Fail with one line when ``nbytes`` of views would take more than 80% of the CUDA
    device's free memory."""
    if device.type != "cuda":
        return
    free, _ = torch.cuda.mem_get_info(device)
    if nbytes > 0.8 * free:
        raise GS3DError(
            f"resident data: the views need {nbytes / 2**30:.1f} GiB, more than 80% of the "
            f"{free / 2**30:.1f} GiB free on {device}; use fewer objects or the DataLoader path"
        )


__all__ = ["IndexDataset", "ResidentViews", "cache_path", "check_fits"]
