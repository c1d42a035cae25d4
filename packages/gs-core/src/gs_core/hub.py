"""One resolver for everything pretrained: a local path, a hub id, or ``hf://org/name[@revision]``.

Every package (method checkpoints, encoders, diffusion priors, LGM) finds its weights through
:func:`resolve_pretrained`. The rules:

- a local file or directory is returned as it is (``~`` expanded);
- ``org/name``, ``org/name@revision`` or ``hf://org/name[@revision]`` is a Hugging Face hub
  repo: the local cache is consulted first, and only then the network;
- offline (``HF_HUB_OFFLINE=1``), or when the hub's host cannot be reached within
  :data:`PROBE_TIMEOUT_S`, a repo that is not cached fails at once with a
  :class:`~gs_core.errors.WeightsNotFoundError` saying how to provide the files. huggingface_hub
  on its own would retry for tens of seconds before giving up; nothing here waits for that.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from gs_core.errors import ValidationError, WeightsNotFoundError

HF_SCHEME = "hf://"
DEFAULT_ENDPOINT = "https://huggingface.co"
# Long enough for a real connection, short enough that an offline machine answers at once.
PROBE_TIMEOUT_S = 3.0
# Files a checkpoint snapshot needs; others in a repo (optimiser states, pickles) are skipped.
CHECKPOINT_PATTERNS = ("*.json", "*.safetensors")

_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# A name ending like a weight file is a local path that is missing, never a hub repo.
_FILE_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".json")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class HubRef:
    """A hub repository and optional revision (branch, tag or commit)."""

    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return self.repo_id + (f"@{self.revision}" if self.revision else "")


def parse_hub_ref(spec: str | Path) -> HubRef | None:
    """``hf://org/name[@rev]`` or ``org/name[@rev]`` -> :class:`HubRef`; a local path -> ``None``.

    An existing local path always wins over a hub id of the same spelling.
    """
    if isinstance(spec, Path):
        return None
    text = str(spec)
    explicit = text.startswith(HF_SCHEME)
    if explicit:
        text = text[len(HF_SCHEME) :]
    elif (
        text.startswith((".", "/", "~"))
        or text.endswith(_FILE_SUFFIXES)
        or Path(text).expanduser().exists()
    ):
        return None
    repo, _, revision = text.partition("@")
    if not _REPO_RE.match(repo) or (_ and not revision):
        if explicit:
            raise ValidationError(str(spec), "hf://org/name or hf://org/name@revision")
        return None
    return HubRef(repo, revision or None)


def hub_offline() -> bool:
    """Whether huggingface_hub is told to stay offline (``HF_HUB_OFFLINE``).

    huggingface_hub reads the variable once, at import; its constant is consulted too so that
    a process (or test) that set it after the import is answered the same way.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return True
    constants = sys.modules.get("huggingface_hub.constants")
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


_reachable: dict[str, bool] = {}
_reachable_lock = threading.Lock()


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub endpoint opens within ``timeout`` (cached per process).

    The probe runs in a thread so that a hanging DNS lookup cannot outlast ``timeout`` either.
    """
    endpoint = os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT)
    with _reachable_lock:
        if endpoint in _reachable:
            return _reachable[endpoint]
    url = urlparse(endpoint)
    host = url.hostname or ""
    port = url.port or (80 if url.scheme == "http" else 443)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout)
    ok = bool(result and result[0])
    with _reachable_lock:
        _reachable[endpoint] = ok
    return ok


def resolve_pretrained(
    spec: str | Path,
    *,
    filenames: Sequence[str] | None = None,
    allow_patterns: Sequence[str] | None = CHECKPOINT_PATTERNS,
    ignore_patterns: Sequence[str] | None = None,
    what: str = "pretrained weights",
) -> Path:
    """A local path, or the local copy of a hub repo (or of one file in it).

    Args:
        spec: local file or directory, ``org/name[@rev]`` or ``hf://org/name[@rev]``.
        filenames: for a hub repo, return the first of these files the repo holds (e.g.
            ``["model.safetensors", "pytorch_model.bin"]``) instead of a snapshot directory.
        allow_patterns / ignore_patterns: which files of a snapshot to fetch.
        what: names the thing being loaded in error messages.

    Raises:
        WeightsNotFoundError: a local path that does not exist; a repo that is neither cached
            nor fetchable (offline, unreachable, missing, gated), with the command that fetches
            it where the hub is reachable.
    """
    ref = parse_hub_ref(spec)
    if ref is None:
        path = Path(spec).expanduser()
        if not path.exists():
            raise WeightsNotFoundError(
                f"{what}: {spec} does not exist (no such local file or directory, nor a hub id "
                "'org/name')"
            )
        return path
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise WeightsNotFoundError(
            f"{what}: '{ref}' is a hub id, but huggingface_hub is not installed "
            "(pip install huggingface-hub), or download the files and pass their local path"
        ) from None
    fetch = _fetch_files if filenames else _fetch_snapshot
    args = (ref, list(filenames or ()), allow_patterns, ignore_patterns)
    cached = fetch(*args, local_only=True)
    if cached is not None:
        return cached
    hint = _download_hint(ref, filenames)
    if hub_offline():
        raise WeightsNotFoundError(
            f"{what}: could not fetch '{ref}': it is not in the local Hugging Face cache and "
            f"HF_HUB_OFFLINE is set. {hint}"
        )
    if not hub_reachable():
        endpoint = os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT)
        raise WeightsNotFoundError(
            f"{what}: could not fetch '{ref}': it is not in the local Hugging Face cache and "
            f"{endpoint} cannot be reached. {hint}"
        )
    try:
        found = fetch(*args, local_only=False)
    except Exception as e:  # huggingface_hub raises many types for missing / gated repos
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise WeightsNotFoundError(
            f"{what}: could not fetch '{ref}' from the Hugging Face hub ({type(e).__name__}: {first}). {hint}"
        ) from None
    if found is None:
        raise WeightsNotFoundError(
            f"{what}: the hub repo '{ref}' holds none of {list(filenames or ())}"
        )
    return found


def _fetch_snapshot(ref: HubRef, _filenames, allow, ignore, local_only: bool) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(
                ref.repo_id,
                revision=ref.revision,
                allow_patterns=list(allow) if allow else None,
                ignore_patterns=list(ignore) if ignore else None,
                local_files_only=local_only,
            )
        )
    except LocalEntryNotFoundError:
        if local_only:
            return None
        raise


def _fetch_files(ref: HubRef, filenames, _allow, _ignore, local_only: bool) -> Path | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    for name in filenames:
        try:
            return Path(
                hf_hub_download(
                    ref.repo_id, name, revision=ref.revision, local_files_only=local_only
                )
            )
        except LocalEntryNotFoundError:
            if not local_only:
                raise
        except EntryNotFoundError:
            continue  # the repo is reachable but lacks this name: try the next one
    return None


def _download_hint(ref: HubRef, filenames: Sequence[str] | None) -> str:
    rev = f" --revision {ref.revision}" if ref.revision else ""
    files = f" {filenames[0]}" if filenames else ""
    args = f"download {ref.repo_id}{files}{rev} --local-dir DIR"
    return (
        f"Where the hub is reachable run `hf {args}` (`huggingface-cli {args}` with "
        "huggingface_hub < 1.0) and pass DIR (or its file) instead, or point HF_HOME at a cache "
        "that holds it."
    )


__all__ = [
    "CHECKPOINT_PATTERNS",
    "HF_SCHEME",
    "HubRef",
    "hub_offline",
    "hub_reachable",
    "parse_hub_ref",
    "resolve_pretrained",
]
