"""Finding and reading pretrained weights, one policy for every encoder.

``pretrained`` is one of:

- a Hugging Face hub id (``"org/name[@revision]"`` or ``"hf://org/name[@revision]"``): the named
  file is found by :func:`gs_core.hub.resolve_pretrained` (the local cache first; offline or
  with the hub unreachable it fails at once, saying how to fetch the file);
- a local file: ``.safetensors``, or a torch checkpoint read with ``torch.load(weights_only=True)``
  (never a full unpickle);
- a local directory holding one of the file names the encoder expects;
- ``None``: random initialisation, asked for explicitly. Nothing here ever falls back to it: when
  weights cannot be found the error names the missing file and how to provide it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from gs_core.errors import FileFormatError, WeightsNotFoundError

# Containers training scripts wrap a state dict in (OpenShape: "state_dict"; others: "model").
_STATE_KEYS = ("state_dict", "model", "model_state_dict")


def find_in_directory(directory: Path, names: Iterable[str], what: str) -> Path:
    """The first of ``names`` present in ``directory``."""
    names = list(names)
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise WeightsNotFoundError(
        f"{what}: {directory} holds none of the expected weight files ({', '.join(names)})"
    )


def read_state_dict(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """Read tensors from a ``.safetensors`` file or a weights-only torch checkpoint.

    A checkpoint that wraps its weights (``{"state_dict": ...}``, as OpenShape's training script
    saves them next to optimizer state) is unwrapped; other entries are ignored.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(f"{what}: weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as e:
            raise FileFormatError(path, f"not a readable safetensors file ({e})") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError (zip), EOFError ...
        raise FileFormatError(
            path,
            "not loadable with torch.load(weights_only=True) "
            f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); gs3d never unpickles "
            "arbitrary objects. On a machine you trust, re-save only the tensors, e.g. "
            "`safetensors.torch.save_file(torch.load(p, weights_only=False)['state_dict'], "
            "'weights.safetensors')`, and pass that file",
        ) from None
    return _unwrap(obj, path)


def _unwrap(obj, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):
        if not isinstance(obj, dict):
            break
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        inner = next((obj[k] for k in _STATE_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    raise FileFormatError(
        path,
        "expected a state dict of tensors, or a checkpoint holding one under "
        f"{'/'.join(_STATE_KEYS)}",
    )


def strip_prefixes(
    state: dict[str, torch.Tensor], prefixes: Sequence[str] = ("module.", "_orig_mod.")
) -> dict[str, torch.Tensor]:
    """Remove wrapper prefixes (DDP's ``module.``, torch.compile's ``_orig_mod.``).

    Only a prefix every key shares is removed, so a real sub-module called ``module`` survives.
    """
    changed = True
    while changed and state:
        changed = False
        for prefix in prefixes:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                changed = True
    return state


def select_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Keys under ``prefix`` with it removed, when any key has it; else ``state`` unchanged.

    Checkpoints that store several networks side by side (a point encoder next to text
    projections) keep each under its own prefix.
    """
    picked = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return picked or state


def load_into(
    module: torch.nn.Module,
    state: dict[str, torch.Tensor],
    source,
    what: str,
    assign: bool = False,
) -> None:
    """``load_state_dict(strict=True)`` with one clear error naming the mismatch.

    ``assign=True`` adopts the tensors (for modules built on the meta device).
    """
    try:
        missing, unexpected = module.load_state_dict(state, strict=False, assign=assign)
    except RuntimeError as e:  # shape mismatches
        lines = [ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln][:3]
        raise FileFormatError(
            source, f"weights do not fit {what}: {'; '.join(lines) or str(e)[:300]}"
        ) from None
    if missing or unexpected:
        raise FileFormatError(
            source,
            f"weights do not match {what}: {len(missing)} missing keys {list(missing)[:4]}, "
            f"{len(unexpected)} unexpected keys {list(unexpected)[:4]}",
        )


__all__ = [
    "find_in_directory",
    "load_into",
    "read_state_dict",
    "select_prefix",
    "strip_prefixes",
]
