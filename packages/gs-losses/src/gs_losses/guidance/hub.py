"""Finding a diffusers model directory: a local path, or a hub repo fetched (or cached) offline-safe.

Every failure is one :class:`~gs_core.errors.WeightsNotFoundError` or
:class:`~gs_core.errors.FileFormatError` naming the model and what to do; nothing ever falls
back to random weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gs_core.errors import FileFormatError, WeightsNotFoundError

# Components holding no weights (configs, vocabularies) - everything else must ship weights.
CONFIG_ONLY = ("tokenizer", "scheduler", "feature_extractor")
WEIGHT_SUFFIXES = (".safetensors", ".bin")


def _has_weights(folder: Path) -> bool:
    return any(p.suffix in WEIGHT_SUFFIXES for p in folder.iterdir() if p.is_file())


def check_model_dir(directory: Path, components: Sequence[str]) -> Path:
    """Raise unless ``directory`` holds every component subfolder (with weights where needed)."""
    missing = [c for c in components if not (directory / c).is_dir()]
    if missing:
        raise FileFormatError(
            directory,
            f"not a complete diffusers model directory: missing subfolder(s) {missing} "
            f"(expected {list(components)})",
        )
    no_weights = [c for c in components if c not in CONFIG_ONLY and not _has_weights(directory / c)]
    if no_weights:
        raise WeightsNotFoundError(
            f"{directory}: no weights (*.safetensors or *.bin) in {no_weights}; the download is incomplete"
        )
    return directory


def resolve_model_dir(name_or_path: str | Path, components: Sequence[str]) -> Path:
    """A local diffusers directory, or a Hugging Face hub repo id downloaded to the cache.

    Only the listed components' configs, vocabularies and default-precision weights are
    fetched (safetensors, or ``*.bin`` for components that have no safetensors). With
    ``HF_HUB_OFFLINE=1`` only the local cache is consulted.
    """
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        return check_model_dir(p, components)
    if p.exists():
        raise FileFormatError(p, "expected a diffusers model directory, found a file")
    s = str(name_or_path)
    if s.startswith((".", "/", "~")) or s.count("/") != 1:
        raise WeightsNotFoundError(
            f"{s}: no such model directory (and not a hub repo id 'owner/name')"
        )
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise WeightsNotFoundError(
            f"{s}: not a local directory, and huggingface_hub is not installed to fetch it "
            "(pip install huggingface-hub, or download the model and pass its directory)"
        ) from None
    patterns = ["model_index.json"]
    for c in components:
        patterns += [f"{c}/*.json", f"{c}/*.txt", f"{c}/*.safetensors"]
    ignore = ["*.fp16.*", "*non_ema*", "*.ckpt"]
    try:
        local = Path(snapshot_download(s, allow_patterns=patterns, ignore_patterns=ignore))
        for c in components:
            folder = local / c
            if c not in CONFIG_ONLY and folder.is_dir() and not _has_weights(folder):
                local = Path(
                    snapshot_download(s, allow_patterns=[f"{c}/*.bin"], ignore_patterns=ignore)
                )
    except Exception as e:  # huggingface_hub raises many types for offline / missing / gated repos
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise WeightsNotFoundError(
            f"{s}: could not fetch the diffusers model from the Hugging Face hub ({type(e).__name__}: {first}). "
            f"Where the hub is reachable run `hf download {s} --local-dir DIR` (huggingface-cli download "
            "on older versions) and pass DIR instead, or unset HF_HUB_OFFLINE if it is set."
        ) from None
    return check_model_dir(local, components)
