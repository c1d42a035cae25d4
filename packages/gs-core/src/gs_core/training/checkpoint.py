"""Writing and reading training checkpoints (layout in :mod:`gs_core.training.run_dir`).

Weights go through ``save_pretrained`` (``config.json`` + ``model.safetensors``); the rest of
the state through :mod:`~gs_core.training.state_codec` (JSON + safetensors). Nothing is
pickled. Every process writes its own RNG state into a shared temporary directory, the main
process writes everything else and renames the directory into place, so a crash at any point
leaves either the complete checkpoint or none. A shared filesystem between processes is
assumed (one node, or a network filesystem).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from gs_core.errors import FileFormatError
from gs_core.pretrained import PretrainedMixin, load_state_dict, save_state_dict
from gs_core.training.distributed import DistInfo, barrier
from gs_core.training.rng import get_rng_state
from gs_core.training.run_dir import RunDir, checkpoint_name
from gs_core.training.state_codec import load_state, save_state

TRAINER_STATE = "trainer"


def _rng_name(rank: int) -> str:
    return f"rank-{rank:05d}"


def save_model_dir(directory: Path, model: nn.Module) -> None:
    """``save_pretrained`` when the model has it, else a bare ``model.safetensors``."""
    if isinstance(model, PretrainedMixin):
        model.save_pretrained(directory)
    else:
        directory.mkdir(parents=True)
        save_state_dict(model.state_dict(), directory)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems do not fsync directories
    finally:
        os.close(fd)


def save_checkpoint(
    run: RunDir,
    step: int,
    dist: DistInfo,
    models: dict[str, nn.Module],
    trainer_state: Callable[[], dict[str, Any]],
) -> Path:
    """Write ``checkpoints/step-NNNNNNNN`` atomically; collective over all processes."""
    name = checkpoint_name(step)
    final = run.checkpoint(step)
    tmp = run.checkpoints / f".{name}.partial"
    if dist.is_main:
        if tmp.exists():
            shutil.rmtree(tmp)
        (tmp / "rng").mkdir(parents=True)
    barrier(dist)
    save_state(tmp / "rng", _rng_name(dist.rank), get_rng_state())
    barrier(dist)
    if dist.is_main:
        for model_name, model in models.items():
            save_model_dir(tmp / "models" / model_name, model)
        save_state(tmp, TRAINER_STATE, trainer_state())
        _fsync_tree(tmp)
        if final.exists():  # the same step saved again (e.g. a resumed run stopping at once)
            old = run.checkpoints / f".{name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(run.checkpoints)
    barrier(dist)
    return final


def prune_checkpoints(run: RunDir, keep: int, current_step: int | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints (main process only).

    With ``current_step``, the newest checkpoint older than it is kept as well: training has
    run from it without NaN/Inf, while the one just written may still turn out to diverge (so
    ``keep=1`` holds two checkpoints until the next one is written).
    """
    found = run.list_checkpoints()
    verified = [path for step, path in found if current_step is not None and step < current_step]
    protected = {verified[-1]} if verified else set()
    removed = []
    for _, path in found[: max(0, len(found) - keep)]:
        if path in protected:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def set_aside_checkpoint(run: RunDir, step: int) -> Path | None:
    """Rename checkpoint ``step`` to ``step-NNNNNNNN.diverged`` (main process only), so resuming
    skips it but it stays for inspection; ``None`` when there is no such checkpoint."""
    path = run.checkpoint(step)
    if not path.is_dir():
        return None
    aside = path.with_name(f"{path.name}.diverged")
    shutil.rmtree(aside, ignore_errors=True)  # an earlier divergence at the same step
    os.replace(path, aside)
    _fsync_dir(run.checkpoints)
    return aside


def remove_partial_checkpoints(run: RunDir) -> None:
    """Remove temporaries a killed run left behind (main process only)."""
    if not run.checkpoints.is_dir():
        return
    for p in run.checkpoints.iterdir():
        if p.name.startswith(".step-") and (p.name.endswith(".partial") or p.name.endswith(".old")):
            shutil.rmtree(p, ignore_errors=True)


def load_trainer_state(path: Path) -> dict[str, Any]:
    state = load_state(path, TRAINER_STATE)
    if not isinstance(state, dict) or "step" not in state:
        raise FileFormatError(path / f"{TRAINER_STATE}.json", "no 'step' in the trainer state")
    return state


def load_rng_state(path: Path, rank: int) -> dict[str, Any] | None:
    """This process's RNG state, or ``None`` when the checkpoint has none for ``rank``."""
    rng_dir = path / "rng"
    if not (rng_dir / f"{_rng_name(rank)}.json").is_file():
        return None
    return load_state(rng_dir, _rng_name(rank))


def load_model_states(path: Path, names: list[str]) -> dict[str, dict]:
    """``{name: state_dict}`` of the models stored in checkpoint ``path``."""
    out = {}
    for name in names:
        directory = path / "models" / name
        if not directory.is_dir():
            stored = (
                sorted(p.name for p in (path / "models").iterdir())
                if (path / "models").is_dir()
                else []
            )
            raise FileFormatError(
                directory, f"the checkpoint has no weights for model '{name}' (it holds {stored})"
            )
        out[name] = load_state_dict(directory)
    return out


__all__ = [
    "load_model_states",
    "load_rng_state",
    "load_trainer_state",
    "prune_checkpoints",
    "remove_partial_checkpoints",
    "save_checkpoint",
    "save_model_dir",
    "set_aside_checkpoint",
]
