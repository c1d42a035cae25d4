"""The layout of a training run directory.

::

    RUN_DIR/
      config.json              what was run: method, preset, stage, overrides, seed, data,
                               the method config and the engine config (rewritten on resume)
      checkpoints/
        step-00001000/         one per checkpoint, the last ``keep_checkpoints`` kept (and the
                               newest one training has run on from, when keep_checkpoints=1)
          models/<name>/       weights of each model (save_pretrained: config.json +
                               model.safetensors)
          trainer.json         step, data position, optimiser / scheduler / grad-scaler / EMA
          trainer.safetensors  state and the module's training_state (JSON + tensors)
          rng/rank-00000.*     random-number state of each process
        step-00001200.diverged/  a checkpoint whose weights gave NaN/Inf in the next step, set
                               aside so --resume continues from the last good one
      logs/
        metrics.jsonl          one JSON object per logged step: loss terms, lr, grad norm, it/s
        tensorboard/           event files, when TensorBoard is installed or asked for
      samples/
        step-00001000[-name].png   validation contact sheets
      final/                   the trained model for inference (``gs3d train`` writes it with
                               save_pretrained; EMA weights when EMA is on)

A checkpoint directory appears only complete: it is written as ``.step-NNNNNNNN.partial`` and
renamed when every file is in place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_CKPT = re.compile(r"^step-(\d{8})$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


@dataclass(frozen=True)
class RunDir:
    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def metrics(self) -> Path:
        return self.logs / "metrics.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.logs / "tensorboard"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def final(self) -> Path:
        return self.root / "final"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / checkpoint_name(step)

    def list_checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints, oldest first."""
        if not self.checkpoints.is_dir():
            return []
        found = []
        for p in self.checkpoints.iterdir():
            m = _CKPT.match(p.name)
            if m and p.is_dir():
                found.append((int(m.group(1)), p))
        return sorted(found)

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        found = self.list_checkpoints()
        return found[-1] if found else None


__all__ = ["RunDir", "checkpoint_name"]
