"""Nested training state (optimiser/scheduler/scaler/RNG state dicts) as JSON + safetensors.

``torch.save`` would pickle these trees; instead every tensor goes into one safetensors file and
the structure around it (numbers, strings, tuples, dicts with int keys) into JSON, so a
checkpoint never executes code when it is read. Floats round-trip exactly (JSON keeps
``repr``), tensors bitwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from gs_core.errors import FileFormatError, GS3DError

_TENSOR, _TUPLE, _ITEMS = "__tensor__", "__tuple__", "__items__"


def encode_state(tree: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split ``tree`` into a JSON-able skeleton and a flat ``{key: tensor}`` dict (on CPU)."""
    tensors: dict[str, torch.Tensor] = {}
    seen_storage: set[int] = set()

    def enc(x: Any, path: str) -> Any:
        if isinstance(x, torch.Tensor):
            key = f"t{len(tensors):06d}"
            t = x.detach().cpu().contiguous()
            ptr = t.untyped_storage().data_ptr() if t.numel() else -1
            if ptr in seen_storage:  # safetensors refuses aliased storage
                t = t.clone()
            seen_storage.add(ptr)
            tensors[key] = t
            return {_TENSOR: key}
        if x is None or isinstance(x, bool | int | float | str):
            return x
        if isinstance(x, tuple):
            return {_TUPLE: [enc(v, f"{path}[{i}]") for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [enc(v, f"{path}[{i}]") for i, v in enumerate(x)]
        if isinstance(x, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in x):
                return {k: enc(v, f"{path}.{k}") for k, v in x.items()}
            return {_ITEMS: [[enc(k, path), enc(v, f"{path}[{k!r}]")] for k, v in x.items()]}
        raise GS3DError(
            f"training state at '{path or '(root)'}' holds a {type(x).__name__}, which a checkpoint "
            "cannot store (allowed: tensors, numbers, strings, None, lists, tuples, dicts)"
        )

    return enc(tree, ""), tensors


def decode_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`encode_state`."""

    def dec(x: Any) -> Any:
        if isinstance(x, list):
            return [dec(v) for v in x]
        if isinstance(x, dict):
            if _TENSOR in x:
                return tensors[x[_TENSOR]]
            if _TUPLE in x:
                return tuple(dec(v) for v in x[_TUPLE])
            if _ITEMS in x:
                return {_hashable(dec(k)): dec(v) for k, v in x[_ITEMS]}
            return {k: dec(v) for k, v in x.items()}
        return x

    return dec(skeleton)


def _hashable(k: Any) -> Any:
    return tuple(_hashable(v) for v in k) if isinstance(k, list) else k


def save_state(directory: Path, name: str, tree: Any) -> None:
    """Write ``tree`` as ``directory/name.json`` + ``directory/name.safetensors``."""
    from gs_core.io.tensor_file import save_tensors

    skeleton, tensors = encode_state(tree)
    save_tensors(tensors, str(directory / f"{name}.safetensors"), metadata={"format": "pt"})
    text = json.dumps({"format": "gs3d-training-state/1", "state": skeleton}, indent=1)
    (directory / f"{name}.json").write_text(text + "\n", encoding="utf-8")


def load_state(directory: Path, name: str) -> Any:
    """Read what :func:`save_state` wrote."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    jpath, tpath = directory / f"{name}.json", directory / f"{name}.safetensors"
    for p in (jpath, tpath):
        if not p.is_file():
            raise FileFormatError(
                p, "missing from the checkpoint (it is incomplete or not a gs3d checkpoint)"
            )
    try:
        doc = json.loads(jpath.read_text(encoding="utf-8"))
        skeleton = doc["state"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise FileFormatError(jpath, f"not a gs3d training-state file ({e})") from None
    try:
        tensors = load_file(str(tpath))
    except (SafetensorError, OSError) as e:
        raise FileFormatError(tpath, f"not a readable safetensors file ({e})") from None
    try:
        return decode_state(skeleton, tensors)
    except KeyError as e:
        raise FileFormatError(tpath, f"tensor {e} named in {jpath.name} is missing") from None


__all__ = ["decode_state", "encode_state", "load_state", "save_state"]
