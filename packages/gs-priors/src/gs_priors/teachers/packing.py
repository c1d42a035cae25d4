"""A teacher directory as one safetensors file, with int8 weight-only storage, so that it
travels to and from the GPU machine (its transfers take few, small files).

Floating-point weights of two or more dimensions are stored as int8 with one fp16 scale per
output channel (symmetric, round to nearest); the rest as fp16. Every small file of the
directory (configs, tokenizer vocabularies, ``model_index.json``) rides in the header's
metadata. :func:`unpack_teacher` writes the directory back in the prior's layout, fp16;
:func:`unpacked_teacher` does so once per file into a cache, which is how every prior's
``from_pretrained`` (through :func:`gs_priors.model_dir.resolve_model_dir`) takes a packed file
directly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch

from gs_core.errors import FileFormatError
from gs_core.weight_quantization import dequantize, quantize

WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "model.safetensors")
FORMAT = "gs3d-teacher-int8/1"
# Where packed teachers are unpacked for loading: $GS3D_TEACHER_CACHE, else this folder.
CACHE_ENV = "GS3D_TEACHER_CACHE"
DEFAULT_CACHE = "~/.cache/gs3d/unpacked-teachers"


def pack_teacher(directory: str | Path, path: str | Path, int8: bool = True) -> Path:
    """Write teacher ``directory`` into the single file ``path``."""
    from safetensors.torch import load_file

    from gs_core.io.tensor_file import save_tensors

    directory, path = Path(directory), Path(path)
    tensors: dict[str, torch.Tensor] = {}
    files: dict[str, str] = {}
    for f in sorted(directory.rglob("*")):
        if not f.is_file():
            continue
        rel = f.relative_to(directory).as_posix()
        if f.name in WEIGHT_FILES:
            for key, w in load_file(str(f)).items():
                name = f"{rel}::{key}"
                if int8 and w.is_floating_point() and w.ndim >= 2:
                    tensors[name + "::q"], tensors[name + "::scale"] = quantize(w)
                else:
                    tensors[name] = w.to(torch.float16) if w.is_floating_point() else w
        elif f.suffix == ".safetensors":
            raise FileFormatError(f, f"unexpected weights file (expected one of {WEIGHT_FILES})")
        else:
            files[rel] = f.read_text()
    meta = {"format": FORMAT, "files": json.dumps(files)}
    tmp = path.with_name(path.name + ".tmp")
    save_tensors({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def unpack_teacher(path: str | Path, directory: str | Path) -> Path:
    """Write the teacher directory stored in ``path`` (fp16 weights) into ``directory``."""
    from safetensors import SafetensorError, safe_open

    from gs_core.io.tensor_file import save_tensors

    path, directory = Path(path), Path(directory)
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise FileFormatError(path, f"not a packed teacher (format {meta.get('format')!r})")
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (OSError, RuntimeError, SafetensorError) as e:
        raise FileFormatError(path, f"cannot read safetensors ({e})") from None
    weights: dict[str, dict[str, torch.Tensor]] = {}
    for name, t in tensors.items():
        parts = name.split("::")
        if len(parts) == 3 and parts[2] == "scale":
            continue
        rel, key = parts[0], parts[1]
        if len(parts) == 3:
            t = dequantize(t, tensors[f"{rel}::{key}::scale"])
        weights.setdefault(rel, {})[key] = t
    for rel, text in json.loads(meta["files"]).items():
        out = directory / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    for rel, state in weights.items():
        out = directory / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        save_tensors(state, str(out), metadata={"format": "pt"})
    return directory


def is_packed_teacher(path: str | Path) -> bool:
    """Whether ``path`` is a file written by :func:`pack_teacher` (reads only its header)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        return False
    try:
        with safe_open(str(path), "pt") as f:
            return (f.metadata() or {}).get("format") == FORMAT
    except (OSError, RuntimeError, SafetensorError):
        return False


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def teacher_digest(path: str | Path) -> str:
    """The sha256 that names teacher ``path``'s content: of the file for a packed teacher, and
    for a teacher directory of every file's relative path and sha256, in sorted order. Runs that
    must have learnt from one teacher (DD3G's tables joined across leases) compare it, since a
    pack rebuilt after a loss has the same file name and other weights."""
    path = Path(path)
    if path.is_file():
        return _file_sha256(path)
    if not path.is_dir():
        raise FileFormatError(path, "no such teacher file or directory")
    digest = hashlib.sha256()
    for f in sorted(q for q in path.rglob("*") if q.is_file()):
        digest.update(f"{f.relative_to(path).as_posix()}\0{_file_sha256(f)}\n".encode())
    return digest.hexdigest()


def unpacked_teacher(path: str | Path, cache: str | Path | None = None) -> Path:
    """The directory of packed teacher ``path``, unpacked once into ``cache`` (default
    ``$GS3D_TEACHER_CACHE`` or ``~/.cache/gs3d/unpacked-teachers``) under the file's content
    hash, so a changed file is unpacked anew and an unchanged one is not. The directory appears
    whole or not at all (written beside it, then renamed)."""
    path = Path(path)
    root = Path(cache or os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()
    target = root / f"{path.stem}-{_file_sha256(path)[:16]}"
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        unpack_teacher(path, tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not target.is_dir():  # not another process's finished copy: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
