"""diffusers-style checkpoints: ``config.json`` (the pydantic config) + ``model.safetensors``.

Every model built from a config loads through :func:`load_pretrained` (``from_pretrained`` of
:class:`PretrainedMixin`, and :func:`gs_core.loading.load_method` for registered methods);
where the files come from is :func:`gs_core.hub.resolve_pretrained`'s business.

Large models are sharded (``model-00001-of-00003.safetensors`` + ``model.safetensors.index.json``)
so each file stays under a size limit. No pickle anywhere.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from gs_core.config import Config
from gs_core.errors import FileFormatError, WeightsNotFoundError
from gs_core.io.atomic import atomic_path, check_overwrite

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"


def save_state_dict(
    state: dict[str, torch.Tensor],
    directory: Path,
    max_shard_bytes: int | None = None,
    int8: bool = False,
) -> None:
    """Write ``state`` into ``directory`` as one file or as shards below ``max_shard_bytes``;
    ``int8``: large weights as int8 with per-channel scales (:mod:`gs_core.weight_quantization`),
    read back as fp16 by :func:`load_state_dict`."""
    from gs_core.io.tensor_file import save_tensors

    state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    if int8:
        from gs_core.weight_quantization import quantize_state_dict

        state = quantize_state_dict(state)
    # safetensors refuses tensors that share storage; clone the aliases.
    seen: dict[int, str] = {}
    for k, v in list(state.items()):
        ptr = v.untyped_storage().data_ptr() if v.numel() else -1
        if ptr in seen and ptr != -1:
            state[k] = v.clone()
        seen[ptr] = k
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for k, v in state.items():
        nbytes = v.numel() * v.element_size()
        if max_shard_bytes is not None and shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][k] = v
        size += nbytes
    n = len(shards)
    if n == 1:
        # Everything fits one shard: a plain model.safetensors, as transformers writes it, spares
        # an index naming every tensor (72 KB for AGG's bundled model).
        save_tensors(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
        return
    weight_map = {}
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{n:05d}.safetensors"
        save_tensors(shard, str(directory / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
    (directory / INDEX_NAME).write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map}, indent=2)
    )


def load_state_dict(
    directory: str | Path, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Read the weights written by :func:`save_state_dict` (single file or sharded; int8
    weights come back dequantised to fp16)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    single, index = directory / WEIGHTS_NAME, directory / INDEX_NAME
    files: list[Path]
    if single.is_file():
        files = [single]
    elif index.is_file():
        files = [directory / f for f in _read_index(index)]
    else:
        raise WeightsNotFoundError(f"{directory}: no {WEIGHTS_NAME} or {INDEX_NAME} found")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        if not f.is_file():
            raise WeightsNotFoundError(f"{f}: weight shard listed in the index is missing")
        try:
            state.update(load_file(str(f), device=str(device)))
        except (SafetensorError, OSError) as e:
            raise FileFormatError(f, f"not a readable safetensors file ({e})") from None
    return _dequantized(state, directory)


def _dequantized(state: dict[str, torch.Tensor], directory: Path) -> dict[str, torch.Tensor]:
    """``state`` with its int8 weights dequantised, after checking each scale has its weight."""
    from gs_core.weight_quantization import SCALE_SUFFIX, dequantize_state_dict

    for k, scale in state.items():
        if not k.endswith(SCALE_SUFFIX):
            continue
        name = k[: -len(SCALE_SUFFIX)]
        w = state.get(name)
        if w is None or w.dtype != torch.int8 or scale.shape != w.shape[:1]:
            got = "missing" if w is None else f"{w.dtype} {tuple(w.shape)}"
            raise FileFormatError(
                directory,
                f"tensor {k!r}: expected the per-channel scales of an int8 weight {name!r}, "
                f"which is {got}",
            )
    return dequantize_state_dict(state)


def _read_index(index: Path) -> list[str]:
    """The shard file names of ``model.safetensors.index.json``, each checked to be a plain
    file name inside the checkpoint folder (an index must not point elsewhere on disk)."""
    try:
        raw = json.loads(index.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FileFormatError(index, f"not valid JSON ({e})") from None
    if not isinstance(raw, dict):
        raise FileFormatError(index, f"expected a JSON object, got {type(raw).__name__}")
    wm = raw.get("weight_map")
    if not isinstance(wm, dict) or not wm:
        got = "missing" if wm is None else f"{type(wm).__name__} {str(wm)[:40]}"
        raise FileFormatError(
            index, f"field 'weight_map': expected an object {{tensor name: shard file}}, got {got}"
        )
    shards = set()
    for key, name in wm.items():
        if not isinstance(name, str) or not name:
            raise FileFormatError(
                index, f"field 'weight_map.{key}': expected a shard file name, got {name!r}"
            )
        if Path(name).name != name or name in (".", ".."):
            raise FileFormatError(
                index,
                f"field 'weight_map.{key}': expected a file name inside the checkpoint folder, "
                f"got {name!r}",
            )
        shards.add(name)
    return sorted(shards)


def checkpoint_directory(name_or_path: str | Path) -> Path:
    """A ``save_pretrained`` directory: local as is, or a hub repo fetched through
    :func:`gs_core.hub.resolve_pretrained` (``org/name[@rev]``, ``hf://org/name[@rev]``)."""
    from gs_core.hub import parse_hub_ref, resolve_pretrained

    if parse_hub_ref(name_or_path) is None and not Path(name_or_path).expanduser().exists():
        raise WeightsNotFoundError(
            f"{name_or_path}: no such checkpoint directory (nor a hub id 'org/name')"
        )
    directory = resolve_pretrained(name_or_path, what="checkpoint")
    if not directory.is_dir():
        raise FileFormatError(
            directory, "expected a checkpoint directory holding config.json and model.safetensors"
        )
    return directory


def load_pretrained(
    build: Callable[[Config], Any],
    config_class: type[Config],
    name_or_path: str | Path,
    *,
    device: str | torch.device = "cpu",
    strict: bool = True,
    overrides: Mapping[str, Any] | Sequence[str] = (),
):
    """``build(config)`` from a checkpoint's ``config.json`` (with ``overrides`` applied), then
    its weights; the one loading path behind every ``from_pretrained``.

    ``overrides`` are config fields, as ``{"train.max_steps": 5}`` or ``["train.max_steps=5"]``;
    an unknown field raises :class:`~gs_core.errors.GS3DError` naming it.
    """
    directory = checkpoint_directory(name_or_path)
    cfg_path = directory / CONFIG_NAME
    if not cfg_path.is_file():
        raise FileFormatError(directory, f"no {CONFIG_NAME} in checkpoint directory")
    config = config_class.load_json(cfg_path)
    if overrides:
        items = dict(overrides) if isinstance(overrides, Mapping) else list(overrides)
        config = config.with_overrides(items)
    model = build(config)
    what = type(model).__name__
    state = load_state_dict(directory, device="cpu")
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise FileFormatError(
            directory, f"weights do not fit {what}: {str(e).splitlines()[0]}"
        ) from None
    if strict and (missing or unexpected):
        raise FileFormatError(
            directory,
            f"weights do not match {what}(config): missing {list(missing)[:5]}, "
            f"unexpected {list(unexpected)[:5]}",
        )
    return model.to(device)


class PretrainedMixin:
    """Adds ``save_pretrained`` / ``from_pretrained`` to an ``nn.Module`` built from a Config.

    The module must be constructible as ``cls(config)`` and keep it as ``self.config``.
    """

    config_class: ClassVar[type[Config]]
    config: Config

    def save_pretrained(
        self,
        directory: str | Path,
        overwrite: bool = False,
        max_shard_bytes: int | None = None,
        int8: bool = False,
    ) -> Path:
        """``config.json`` and the weights (``int8``: int8 weight-only, see
        :func:`save_state_dict`) into ``directory``, atomically."""
        directory = Path(directory)
        check_overwrite(directory, overwrite)
        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            cfg = self.config.model_dump(mode="json")
            cfg = {"_class_name": type(self).__name__, "_gs3d_version": _core_version(), **cfg}
            (tmp / CONFIG_NAME).write_text(json.dumps(cfg, indent=2) + "\n")
            state = self.state_dict()  # type: ignore[attr-defined]
            save_state_dict(state, tmp, max_shard_bytes, int8=int8)
        return directory

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        device: str | torch.device = "cpu",
        strict: bool = True,
        **overrides: Any,
    ):
        """Build from a ``save_pretrained`` directory, a hub id (``org/name[@rev]``) or
        ``hf://org/name[@rev]``.

        ``overrides`` replace fields of the saved config before the model is built (dotted
        paths through ``**{"train.max_steps": 5}``); the config validates them, and an unknown
        field raises :class:`~gs_core.errors.GS3DError`. Building never fetches pretrained
        sub-weights: the checkpoint holds every weight.
        """
        return load_pretrained(
            cls, cls.config_class, name_or_path, device=device, strict=strict, overrides=overrides
        )


def copy_checkpoint(src: str | Path, dst: str | Path, overwrite: bool = False) -> Path:
    """Copy a checkpoint directory atomically (used when bundling models)."""
    src, dst = Path(src), Path(dst)
    if not (src / CONFIG_NAME).is_file():
        raise FileFormatError(src, f"no {CONFIG_NAME} in checkpoint directory")
    check_overwrite(dst, overwrite)
    with atomic_path(dst) as tmp:
        shutil.copytree(src, tmp)
    return dst


def _core_version() -> str:
    from gs_core import __version__

    return __version__


__all__ = [
    "CONFIG_NAME",
    "INDEX_NAME",
    "WEIGHTS_NAME",
    "PretrainedMixin",
    "checkpoint_directory",
    "copy_checkpoint",
    "load_pretrained",
    "load_state_dict",
    "save_state_dict",
]
