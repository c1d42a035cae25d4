"""Where evaluated predictions come from: a method run on the input view, or a folder of files.

A prediction holds Gaussians, a mesh or both (a method's ``GenerationOutput`` may carry both);
the harness picks which one to score (``EvalConfig.score``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gs_core.data.transforms import GAUSSIANS_NAME
from gs_core.errors import FileFormatError, GS3DError, ValidationError
from gs_core.gaussians import Gaussians
from gs_core.mesh import Mesh

# Mesh files a predictions folder may hold, in the order they are looked for.
MESH_SUFFIXES = (".glb", ".obj")


@dataclass
class Prediction:
    """Gaussians and/or a mesh for one object, the wall time it took to produce them, and
    stage timings. At least one of ``gaussians`` (unbatched ``[N]``) and ``mesh`` is set."""

    gaussians: Gaussians | None = None
    seconds: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    mesh: Mesh | None = None

    def __post_init__(self) -> None:
        if self.gaussians is None and self.mesh is None:
            raise ValidationError("Prediction", "gaussians and/or a mesh", "neither")


class MethodPredictor:
    """Runs ``method.generate`` on the input view (RGBA ``[1, 4, H, W]``) and times it; the
    prediction carries the output's Gaussians and its first mesh, whichever it has.

    ``seed`` (per call, else the one given here) reaches ``generate(images, seed=...)``; with
    neither, ``generate`` is called without one and a stochastic method picks its own.
    """

    def __init__(self, method, label: str | None = None, seed: int | None = None):
        self.method = method
        self.label = label or getattr(method, "name", "") or type(method).__name__
        self.seed = seed

    @torch.no_grad()
    def __call__(
        self, object_id: str, input_rgba: torch.Tensor, seed: int | None = None
    ) -> Prediction:
        dev = self.method.device
        x = input_rgba.to(dev)
        seed = self.seed if seed is None else seed
        kwargs = {} if seed is None else {"seed": seed}
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        out = self.method.generate(x, **kwargs)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        dt = time.perf_counter() - t0
        g = out.gaussians
        if g is not None and g.batch_shape:
            g = g[0]
        mesh = out.meshes[0] if out.meshes else None
        if g is None and mesh is None:
            raise GS3DError(
                f"method '{self.label}' produced neither Gaussians nor a mesh for {object_id}"
            )
        return Prediction(gaussians=g, seconds=dt, timings=dict(out.timings), mesh=mesh)


class PlyFolderPredictor:
    """Reads each object's prediction from a folder, in any of these layouts (first found):

    - ``FOLDER/<object_id>.ply`` (Gaussians, one file per object);
    - ``FOLDER/<object_id>/gaussians.ply``: what ``gs3d fit`` writes into a dataset root, so
      ``gs3d eval --data D --predictions D`` scores the fits of ``gs3d fit D``;
    - ``FOLDER/<object_id>.glb`` or ``.obj``: a mesh (e.g. from ``gs3d mesh``).
    """

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu"):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileFormatError(self.folder, "predictions folder not found")
        self.device = torch.device(device)
        self.label = str(self.folder)

    def candidates(self, object_id: str) -> tuple[Path, ...]:
        return (
            self.folder / f"{object_id}.ply",
            self.folder / object_id / GAUSSIANS_NAME,
            *(self.folder / f"{object_id}{ext}" for ext in MESH_SUFFIXES),
        )

    def find(self, object_id: str) -> Path | None:
        """The prediction file of ``object_id``, or None."""
        return next((p for p in self.candidates(object_id) if p.is_file()), None)

    def require(self, object_ids: list[str]) -> None:
        """Refuse, before anything is rendered, when some objects have no prediction."""
        missing = [oid for oid in object_ids if self.find(oid) is None]
        if not missing:
            return
        oid = missing[0]
        more = f" and {len(missing) - 1} other object(s)" if len(missing) > 1 else ""
        raise FileFormatError(
            self.folder,
            f"no prediction for object '{oid}'{more} of the {len(object_ids)} evaluated (expected "
            f"{oid}.ply, {oid}/{GAUSSIANS_NAME} as gs3d fit writes into a dataset root, "
            f"or a mesh {oid}.glb / {oid}.obj)",
        )

    def __call__(
        self, object_id: str, input_rgba: torch.Tensor, seed: int | None = None
    ) -> Prediction:
        from gs_core.io import load_ply

        if seed is not None:
            raise GS3DError(
                f"{self.folder}: a predictions folder holds one prediction per object; seeds apply to "
                "methods (use --method with --seeds)"
            )
        path = self.find(object_id)
        if path is None:
            self.require([object_id])
        if path.suffix.lower() in MESH_SUFFIXES:
            from gs_core.io.mesh_file import load_mesh

            return Prediction(mesh=load_mesh(path, device=self.device))
        return Prediction(gaussians=load_ply(path, device=self.device))
