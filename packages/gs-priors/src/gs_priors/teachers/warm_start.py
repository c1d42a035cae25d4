"""Start a new procedural teacher from another trained teacher's weights.

Every official prior starts from a pretrained image model rather than from scratch (Zero123 from
Stable Diffusion image variations, Zero123++ from Stable Diffusion 2, ImageDream from MVDream /
SD 2.1). The procedural teachers have no such base; a useful teacher of the same widths is the
closest one here. Zero123's and Zero123++'s procedural U-Nets are both
``UNet2DConditionModel`` of the same widths, and both have a CLIP vision tower of one
configuration, so a useful Zero123 can seed Zero123++ (:data:`SOURCES`). ImageDream's U-Net has
the same widths in the original Stable Diffusion layout, with a camera MLP, an image-prompt
resampler and image-prompt keys and values beside it; renamed
(:mod:`gs_priors.teachers.ldm_unet_keys`) and without those, it seeds Zero123++ too, and its
CLIP tower is Zero123++'s without the projection. Rebuilding Zero123++ then needs the ImageDream
pack (one or two leases) instead of a useful Zero123 (two). The same ImageDream seeds Zero123,
whose camera projection alone then starts from scratch.

Tensors are copied where the key and shape agree; a key of another shape means another size and
is refused. The one expected mismatch is the U-Net's ``conv_in``: Zero123 reads 8 channels (the
noisy latent, then the input view's latent, as its pipeline concatenates them) where Zero123++
and ImageDream read 4 (their condition reaches the U-Net by attention). From Zero123 to
Zero123++ the first 4 input channels are kept (``cut``). From ImageDream to Zero123 the 4 are
copied and the input latent's 4 start at zero (``widened``): the start computes the source's
function of the noisy latent, and the input view enters as training moves those weights, as
InstructPix2Pix starts the image channels it adds to Stable Diffusion. A key the source lacks
stays as initialised and is reported, as is the number of source tensors left unused.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gs_core.errors import FileFormatError, ValidationError
from gs_priors.teachers.ldm_unet_keys import to_diffusers
from gs_priors.teachers.packing import WEIGHT_FILES

# target prior -> source prior -> {target subfolder: source subfolder}
SOURCES: dict[str, dict[str, dict[str, str]]] = {
    "zero123plus": {
        "zero123": {"unet": "unet", "vision_encoder": "image_encoder"},
        "imagedream": {"unet": "unet", "vision_encoder": "image_encoder"},
    },
    "zero123": {
        "imagedream": {"unet": "unet", "image_encoder": "image_encoder"},
    },
}


def _source_names(prior: str, sub: str, src: dict, target: dict, source: Path) -> dict:
    """``src``, the weights of ``source / sub``, under the names of ``target``'s tensors."""
    if (prior, sub) == ("imagedream", "unet"):  # the original Stable Diffusion layout
        layers = json.loads((source / "teacher_config.json").read_text())["unet_layers"]
        return to_diffusers(src, layers, target)
    # A CLIPVisionModel (ImageDream's tower) saves its weights without the ``vision_model.``
    # prefix that a CLIPVisionModelWithProjection's keys carry: a property of the class, so it
    # is matched for every source.
    return {
        (f"vision_model.{k}" if k not in target and f"vision_model.{k}" in target else k): v
        for k, v in src.items()
    }


def teacher_prior(path: str | Path) -> str:
    """The prior of teacher ``path``, a directory or a packed file (its header only)."""
    from safetensors import SafetensorError, safe_open

    from gs_priors.teachers.packing import is_packed_teacher

    path = Path(path)
    if is_packed_teacher(path):
        try:
            with safe_open(str(path), "pt") as f:
                text = json.loads((f.metadata() or {})["files"])["teacher_config.json"]
        except (KeyError, ValueError, OSError, SafetensorError):
            raise FileFormatError(path, "a packed teacher without teacher_config.json") from None
    elif (path / "teacher_config.json").is_file():
        text = (path / "teacher_config.json").read_text()
    else:
        raise FileFormatError(
            path, "not a procedural teacher (a packed file or a directory with teacher_config.json)"
        )
    return json.loads(text)["prior"]


def can_warm_start(target_prior: str, source_prior: str) -> bool:
    """Whether a ``target_prior`` teacher can start from a ``source_prior`` one."""
    return source_prior in SOURCES.get(target_prior, {})


def _weights(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise FileFormatError(folder, f"no weights file ({' or '.join(WEIGHT_FILES)})")


def _input_channels_matched(source: torch.Tensor, target: torch.Tensor):
    """``source`` fitted to ``target``'s shape when only their input channels (dim 1) differ:
    ``("cut", its leading channels)`` or ``("widened", it in the leading channels of zeros)``;
    None for any other difference."""
    if source.dim() != target.dim() or source.dim() < 2:
        return None
    if source.shape[:1] != target.shape[:1] or source.shape[2:] != target.shape[2:]:
        return None
    have, want = source.shape[1], target.shape[1]
    if have > want:
        return "cut", source[:, :want].to(target.dtype).contiguous()
    if have < want:
        out = torch.zeros_like(target)
        out[:, :have] = source.to(target.dtype)
        return "widened", out
    return None


def warm_start(target: str | Path, source: str | Path) -> dict:
    """Overwrite the weights of teacher directory ``target`` with those of teacher ``source``
    (a directory or a packed file) where :data:`SOURCES` pairs their modules; returns, per
    target module, how many tensors were ``copied``, ``cut`` (leading input channels),
    ``widened`` (more input channels, the extra ones zero) and ``kept`` (absent from the
    source, left as initialised, with their keys), and how many source
    tensors went ``unused`` (ImageDream's camera and image prompt). A source module of
    another size raises :class:`~gs_core.errors.ValidationError`."""
    from safetensors.torch import load_file

    from gs_core.io.tensor_file import save_tensors
    from gs_priors.teachers.packing import is_packed_teacher, unpacked_teacher

    target, source = Path(target), Path(source)
    to, frm = teacher_prior(target), teacher_prior(source)
    if is_packed_teacher(source):
        source = unpacked_teacher(source)
    pairs = SOURCES.get(to, {}).get(frm)
    if pairs is None:
        known = [f"{s} -> {t}" for t, by in SOURCES.items() for s in by]
        raise ValidationError("warm start", f"one of {', '.join(known)}", f"{frm} -> {to}")
    report = {}
    for sub, src_sub in pairs.items():
        path = _weights(target / sub)
        state = load_file(str(path))
        src = load_file(str(_weights(source / src_sub)))
        total = len(src)
        src = _source_names(frm, src_sub, src, state, source)
        copied, cut, widened, kept, other = 0, [], [], [], []
        for key, t in state.items():
            s = src.get(key)
            if s is None:
                kept.append(key)
            elif s.shape == t.shape:
                state[key] = s.to(t.dtype)
                copied += 1
            elif (fit := _input_channels_matched(s, t)) is not None:
                kind, state[key] = fit
                (cut if kind == "cut" else widened).append(key)
            else:
                other.append(f"{key} {tuple(s.shape)} for {tuple(t.shape)}")
        if other:
            # Another size (e.g. a tiny source for a procedural teacher): half a start is none.
            raise ValidationError(
                f"warm start {source / src_sub}",
                f"the sizes of {target / sub}",
                f"{len(other)} tensors of other shapes, e.g. {other[0]}",
            )
        tmp = path.with_name(f".{path.name}.tmp")
        save_tensors(state, str(tmp), metadata={"format": "pt"})
        tmp.replace(path)
        unused = total - copied - len(cut) - len(widened)
        report[sub] = {
            "from": src_sub,
            "copied": copied,
            "cut": cut,
            "widened": widened,
            "kept": kept,
            "unused": unused,
        }
    return report


def summarise(report: dict) -> dict:
    """:func:`warm_start`'s report for a results file: the kept keys counted, not listed."""
    return {sub: {**r, "kept": len(r["kept"])} for sub, r in report.items()}
