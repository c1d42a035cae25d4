"""Where evaluated Gaussians come from: a method run on the input view, or a folder of PLYs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gs_core.errors import FileFormatError, GS3DError
from gs_core.gaussians import Gaussians


@dataclass
class Prediction:
    """Gaussians for one object, the wall time it took to produce them, and stage timings."""

    gaussians: Gaussians
    seconds: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


def load_method(name: str, checkpoint: str | None = None, device: str | torch.device = "cpu"):
    """A registered method with trained weights (a checkpoint directory or a hub id).

    Falls back to the method's ``default_checkpoint``; never to random weights.
    """
    from gs_core.plugins.registry import get_registry
    from gs_core.pretrained import CONFIG_NAME, load_state_dict, resolve_pretrained_dir

    spec = get_registry().get_method(name)
    ckpt = checkpoint or spec.default_checkpoint
    if ckpt is None:
        raise GS3DError(
            f"method '{name}' has no default checkpoint: pass --checkpoint DIR (a directory written by "
            "gs3d train / save_pretrained, holding config.json and model.safetensors)"
        )
    directory = resolve_pretrained_dir(ckpt)
    cfg_path = directory / CONFIG_NAME
    if not cfg_path.is_file():
        raise FileFormatError(directory, f"no {CONFIG_NAME} in checkpoint directory")
    model = spec.factory(spec.config_class.load_json(cfg_path))
    state = load_state_dict(directory, device="cpu")
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise FileFormatError(
            directory, f"weights do not fit method '{name}': {str(e).splitlines()[0]}"
        ) from None
    if missing or unexpected:
        raise FileFormatError(
            directory,
            f"weights do not match method '{name}': missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]}",
        )
    return model.to(device).eval()


class MethodPredictor:
    """Runs ``method.generate`` on the input view (RGBA ``[1, 4, H, W]``) and times it."""

    def __init__(self, method, label: str | None = None):
        self.method = method
        self.label = label or getattr(method, "name", "") or type(method).__name__

    @torch.no_grad()
    def __call__(self, object_id: str, input_rgba: torch.Tensor) -> Prediction:
        dev = self.method.device
        x = input_rgba.to(dev)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        out = self.method.generate(x)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        dt = time.perf_counter() - t0
        if out.gaussians is None:
            raise GS3DError(
                f"method '{self.label}' produced no Gaussians for {object_id} (mesh-only output)"
            )
        g = out.gaussians
        if g.batch_shape:
            g = g[0]
        return Prediction(gaussians=g, seconds=dt, timings=dict(out.timings))


class PlyFolderPredictor:
    """Reads ``FOLDER/<object_id>.ply`` (or ``FOLDER/<object_id>/gaussians.ply``)."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu"):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileFormatError(self.folder, "predictions folder not found")
        self.device = torch.device(device)
        self.label = str(self.folder)

    def __call__(self, object_id: str, input_rgba: torch.Tensor) -> Prediction:
        from gs_core.io import load_ply

        for p in (self.folder / f"{object_id}.ply", self.folder / object_id / "gaussians.ply"):
            if p.is_file():
                return Prediction(gaussians=load_ply(p, device=self.device))
        raise FileFormatError(
            self.folder / f"{object_id}.ply",
            f"no prediction for object '{object_id}' (expected {object_id}.ply or {object_id}/gaussians.ply)",
        )
