"""Finding a diffusers model directory: a local path, or a hub repo through gs-core's resolver.

:func:`gs_core.hub.resolve_pretrained` does the finding (cache first, offline-safe, ``hf://``
and ``@revision`` spellings); this module only says which files a diffusers layout needs and
checks that every component arrived. Every failure is one
:class:`~gs_core.errors.WeightsNotFoundError` or :class:`~gs_core.errors.FileFormatError`
naming the model and what to do; nothing ever falls back to random weights.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gs_core.errors import FileFormatError, WeightsNotFoundError
from gs_core.hub import parse_hub_ref, resolve_pretrained

# Components holding no weights (configs, vocabularies) - everything else must ship weights.
CONFIG_ONLY = ("tokenizer", "scheduler", "feature_extractor")
WEIGHT_SUFFIXES = (".safetensors", ".bin")
# Half-precision duplicates, EMA-less training copies and original-format checkpoints are
# never loaded, so they are never downloaded either.
IGNORE_PATTERNS = ("*.fp16.*", "*non_ema*", "*.ckpt")


# ``model_index.json`` of each checkpoint layout: component -> (library, class), as the official
# repositories list them (gs_priors' own classes where diffusers has none).
MODEL_INDEX: dict[str, dict[str, tuple[str, str]]] = {
    "stable_diffusion": {
        "vae": ("diffusers", "AutoencoderKL"),
        "unet": ("diffusers", "UNet2DConditionModel"),
        "text_encoder": ("transformers", "CLIPTextModel"),
        "tokenizer": ("transformers", "CLIPTokenizer"),
        "scheduler": ("diffusers", "DDIMScheduler"),
    },
    "zero123": {
        "vae": ("diffusers", "AutoencoderKL"),
        "unet": ("diffusers", "UNet2DConditionModel"),
        "image_encoder": ("transformers", "CLIPVisionModelWithProjection"),
        "feature_extractor": ("transformers", "CLIPImageProcessor"),
        "clip_camera_projection": ("zero123", "CLIPCameraProjection"),
        "scheduler": ("diffusers", "DDIMScheduler"),
    },
    "zero123plus": {
        "vae": ("diffusers", "AutoencoderKL"),
        "unet": ("diffusers", "UNet2DConditionModel"),
        "text_encoder": ("transformers", "CLIPTextModel"),
        "tokenizer": ("transformers", "CLIPTokenizer"),
        "vision_encoder": ("transformers", "CLIPVisionModelWithProjection"),
        "feature_extractor_clip": ("transformers", "CLIPImageProcessor"),
        "feature_extractor_vae": ("transformers", "CLIPImageProcessor"),
        "scheduler": ("diffusers", "EulerAncestralDiscreteScheduler"),
    },
    "imagedream": {
        "vae": ("diffusers", "AutoencoderKL"),
        "unet": ("gs_priors.multiview_unet", "MultiViewUNetModel"),
        "text_encoder": ("transformers", "CLIPTextModel"),
        "tokenizer": ("transformers", "CLIPTokenizer"),
        "scheduler": ("diffusers", "DDIMScheduler"),
        "image_encoder": ("transformers", "CLIPVisionModel"),
        "feature_extractor": ("transformers", "CLIPImageProcessor"),
    },
}


def write_model_index(directory: Path, layout: str, class_name: str, **extra: Any) -> Path:
    """Write ``directory/model_index.json`` for a checkpoint of ``layout`` (a key of
    :data:`MODEL_INDEX`), with ``extra`` entries (e.g. Zero123++'s ``ramping_coefficients``)."""
    index = {
        "_class_name": class_name,
        **{k: list(v) for k, v in MODEL_INDEX[layout].items()},
        **extra,
    }
    path = Path(directory) / "model_index.json"
    path.write_text(json.dumps(index, indent=2) + "\n")
    return path


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


def hub_patterns(components: Sequence[str]) -> list[str]:
    """The files of ``components`` a snapshot needs: configs, vocabularies, safetensors weights."""
    patterns = ["model_index.json"]
    for c in components:
        patterns += [f"{c}/*.json", f"{c}/*.txt", f"{c}/*.safetensors"]
    return patterns


def resolve_model_dir(name_or_path: str | Path, components: Sequence[str]) -> Path:
    """A local diffusers directory, a packed teacher file (unpacked once into a cache:
    :func:`gs_priors.teachers.packing.unpacked_teacher`), or a hub repo (``org/name[@rev]``,
    ``hf://...``) fetched once.

    Only the listed components' configs, vocabularies and default-precision weights are
    fetched: safetensors, and ``*.bin`` for the components a repo ships without safetensors.
    With ``HF_HUB_OFFLINE=1`` or an unreachable hub only the local cache is consulted.
    """
    what = f"diffusers model ({', '.join(components)})"
    local = Path(name_or_path).expanduser()
    if local.is_file():
        # A teacher packed by gs_priors.teachers.packing (one int8 file, as teacher runs bring
        # them back from the GPU machine) loads like its directory.
        from gs_priors.teachers.packing import is_packed_teacher, unpacked_teacher

        if not is_packed_teacher(local):
            raise FileFormatError(
                local,
                "expected a diffusers model directory or a packed teacher file "
                "(gs_priors.teachers.packing.pack_teacher)",
            )
        return check_model_dir(unpacked_teacher(local), components)
    directory = resolve_pretrained(
        name_or_path,
        allow_patterns=hub_patterns(components),
        ignore_patterns=IGNORE_PATTERNS,
        what=what,
    )
    if not directory.is_dir():
        raise FileFormatError(directory, "expected a diffusers model directory, found a file")
    if parse_hub_ref(name_or_path) is not None:
        for c in components:
            folder = directory / c
            if c not in CONFIG_ONLY and folder.is_dir() and not _has_weights(folder):
                # Older repos ship some components as *.bin only; diffusers and transformers read
                # those with torch.load(weights_only=True).
                directory = resolve_pretrained(
                    name_or_path,
                    allow_patterns=[f"{c}/*.bin"],
                    ignore_patterns=IGNORE_PATTERNS,
                    what=what,
                )
    return check_model_dir(directory, components)


__all__ = ["CONFIG_ONLY", "check_model_dir", "hub_patterns", "resolve_model_dir"]
