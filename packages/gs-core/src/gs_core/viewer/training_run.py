"""A training run directory (``gs3d train --out RUN``) as a scene that changes while it trains.

The viewer shows the newest checkpoint's output on one input picture: a held-out object of the
run's data (its split ``val``, else ``test``, else every object; the view nearest azimuth 0 /
elevation 0, as the evaluation picks it), an example the method ships, or a picture given on
the command line. :meth:`TrainingRun.refresh` looks for a newer checkpoint (the ``final/``
model or the latest ``checkpoints/step-N/models/<name>/``) and reloads when one appeared.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gs_core.errors import FileFormatError, GS3DError
from gs_core.gaussians import Gaussians
from gs_core.mesh import Mesh
from gs_core.training.run_dir import RunDir

# Validation splits tried in order before falling back to every object of the data.
VALIDATION_SPLITS = ("val", "test")
# A dropdown longer than this is no help; the first objects of the split are offered.
MAX_INPUTS = 64
# The name the training module gives the method it trains (``self.model``); other names are
# taken when a checkpoint holds only one model.
METHOD_MODEL_NAME = "model"
CONFIG_NAME = "config.json"


@dataclass(frozen=True)
class CheckpointRef:
    """A loadable model directory of a run (``config.json`` + weights).

    ``stamp`` (the nanosecond modification time of its ``config.json``) tells a rewritten
    ``final/`` from the one loaded before.
    """

    path: Path
    label: str
    stamp: int


@dataclass(frozen=True)
class RunInput:
    """A picture to generate from. ``frame`` pads and recentres it like the training views
    (pictures from the command line); dataset and example views are framed already."""

    name: str
    path: Path
    frame: bool = False


def is_run_directory(path: str | Path) -> bool:
    """Whether ``path`` looks like ``gs3d train --out`` wrote it (it holds a ``config.json`` or
    ``checkpoints/``; :func:`read_run_settings` then checks the file)."""
    p = Path(path)
    return p.is_dir() and ((p / CONFIG_NAME).is_file() or (p / "checkpoints").is_dir())


def read_run_settings(root: Path) -> tuple[str, Path | None]:
    """``(method, data)`` recorded in ``RUN/config.json``; ``data`` is ``None`` when absent."""
    path = root / CONFIG_NAME
    if not path.is_file():
        raise FileFormatError(
            root, f"no {CONFIG_NAME}: expected a run directory written by `gs3d train --out`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FileFormatError(path, f"not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise FileFormatError(path, f"expected a JSON object, got {type(data).__name__}")
    method = data.get("method")
    if not isinstance(method, str) or not method:
        raise FileFormatError(path, f"field 'method': expected a method name, got {method!r}")
    where = data.get("data")
    if where is not None and not isinstance(where, str):
        raise FileFormatError(
            path, f"field 'data': expected a path (string) or null, got {where!r}"
        )
    return method, (Path(where) if where else None)


def checkpoint_candidates(root: Path) -> list[CheckpointRef]:
    """The models of a run worth loading, newest first: ``final/`` and the method model of the
    latest step checkpoint; empty before the first checkpoint."""
    run = RunDir(root)
    found: list[CheckpointRef] = []
    final = run.final / CONFIG_NAME
    if final.is_file():
        found.append(CheckpointRef(run.final, "final", final.stat().st_mtime_ns))
    latest = run.latest_checkpoint()
    if latest is not None:
        step, directory = latest
        model_dir = _method_model_dir(directory / "models")
        if model_dir is not None:
            stamp = (model_dir / CONFIG_NAME).stat().st_mtime_ns
            found.append(CheckpointRef(model_dir, f"step {step}", stamp))
    return sorted(found, key=lambda ref: ref.stamp, reverse=True)


def _method_model_dir(models: Path) -> Path | None:
    if not models.is_dir():
        return None
    named = sorted(p for p in models.iterdir() if (p / CONFIG_NAME).is_file())
    by_name = {p.name: p for p in named}
    if METHOD_MODEL_NAME in by_name:
        return by_name[METHOD_MODEL_NAME]
    return named[0] if len(named) == 1 else None


def dataset_inputs(root: Path, limit: int = MAX_INPUTS) -> list[RunInput]:
    """The front views of up to ``limit`` objects of a dataset's validation split."""
    from gs_core.data.layout import read_split
    from gs_core.data.transforms import read_transforms
    from gs_core.evaluation.protocols import find_front

    ids: list[str] = []
    for split in (*VALIDATION_SPLITS, "all"):
        try:
            ids = read_split(root, split)
        except GS3DError:
            continue
        break
    inputs = []
    for object_id in ids[:limit]:
        record = read_transforms(root / object_id)
        centers = np.stack([f.center for f in record.frames])
        frame = record.frames[find_front(centers)]
        inputs.append(RunInput(object_id, frame.image_path))
    return inputs


class TrainingRun:
    """The newest checkpoint of a run directory, run on a chosen input.

    Thread-safe: the viewer's poll thread and its GUI callbacks call :meth:`refresh` and
    :meth:`generate` concurrently; one lock serialises loading and generation.

    Args:
        root: the run directory.
        device: where the method runs.
        inputs: pictures to offer (default: :meth:`default_inputs`).
        extra_inputs: pictures offered before those.
        log: receives one line per checkpoint that is skipped because it does not load.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        device: str | torch.device = "cpu",
        inputs: Sequence[RunInput] | None = None,
        extra_inputs: Sequence[RunInput] = (),
        log: Callable[[str], None] | None = None,
    ):
        self.root = Path(root)
        self.method, self.data = read_run_settings(self.root)
        self.device = torch.device(device)
        offered = self.default_inputs() if inputs is None else inputs
        self.inputs = [*extra_inputs, *offered]
        if not self.inputs:
            raise GS3DError(
                f"{self.root}: no input pictures to generate from (the run records no data "
                "folder with objects and the method ships no examples); pass --input IMAGE"
            )
        self.checkpoint: CheckpointRef | None = None
        self._model = None
        self._unloadable: dict[CheckpointRef, str] = {}
        self._log = log or (lambda line: None)
        self._lock = threading.RLock()

    def default_inputs(self) -> list[RunInput]:
        """The run's held-out objects, else the method's bundled examples."""
        if self.data is not None and self.data.is_dir():
            found = dataset_inputs(self.data)
            if found:
                return found
        from gs_core.plugins.registry import get_registry

        examples = get_registry().get_method(self.method).examples_dir
        if examples and Path(examples).is_dir():
            return dataset_inputs(Path(examples))
        return []

    def refresh(self) -> bool:
        """Load the newest checkpoint that loads as the run's method, when it is not the one
        loaded already; ``True`` when the model changed.

        A step checkpoint holds the networks a training module names, which need not be the
        whole method; one that does not load is skipped (said once through ``log``) and the
        next older candidate is tried.

        Raises:
            GS3DError: on the first call only (later calls keep the model they have): the run
                has no checkpoint yet, or none of its checkpoints loads.
        """
        from gs_core.loading import load_method

        with self._lock:
            candidates = checkpoint_candidates(self.root)
            for ref in candidates:
                if ref == self.checkpoint:
                    return False
                if ref in self._unloadable:
                    continue
                try:
                    model = load_method(self.method, checkpoint=str(ref.path), device=self.device)
                except GS3DError as e:
                    self._unloadable[ref] = str(e)
                    self._log(f"checkpoint {ref.label} ({ref.path}) skipped: {e}")
                    continue
                self._model, self.checkpoint = model, ref
                return True
            if self._model is not None:
                return False
            if not candidates:
                raise GS3DError(
                    f"{self.root}: no checkpoint yet (neither final/ nor "
                    "checkpoints/step-N/models/); start the viewer again once training has "
                    "saved one"
                )
            first = candidates[0]
            raise GS3DError(
                f"{self.root}: no checkpoint loads as method '{self.method}' (newest, "
                f"{first.label}: {self._unloadable[first]})"
            )

    def generate(self, index: int) -> Gaussians | Mesh:
        """The loaded model's output for ``inputs[index]``: unbatched Gaussians ``[N]`` when the
        method makes them, else its first mesh."""
        from gs_core.image_inputs import load_rgba

        with self._lock:
            if self._model is None:
                self.refresh()
            inp = self.inputs[index]
            image = load_rgba(inp.path)
            if inp.frame:
                image, _ = image.framed()
            with torch.no_grad():
                out = self._model.generate(image.rgba.to(self.device))
            if out.gaussians is not None:
                g = out.gaussians
                return (g[0] if g.batch_shape else g).detach()
            if out.meshes:
                return out.meshes[0]
            raise GS3DError(f"method '{self.method}' produced neither Gaussians nor a mesh")


__all__ = [
    "CheckpointRef",
    "RunInput",
    "TrainingRun",
    "dataset_inputs",
    "is_run_directory",
    "checkpoint_candidates",
    "read_run_settings",
]
