"""CLIP image and text embeddings (Radford et al. 2021) for any open_clip model.

GECO, DreamGaussian and Zero123 condition on CLIP image embeddings; Compress3D's prior maps an
OpenCLIP ViT-bigG-14 image embedding (1280-d, the space OpenShape is aligned with) to a shape
embedding; evaluation reports CLIP similarity. Preprocessing is done on tensors (resize the
shortest side, centre crop, normalise, with the model's own settings), so embeddings stay
differentiable with respect to the images.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import FileFormatError, GS3DError, ValidationError, WeightsNotFoundError
from gs_core.hub import resolve_pretrained
from gs_core.io.atomic import atomic_path, check_overwrite
from gs_encoders.image_preprocessing import (
    check_images,
    normalize,
    resize,
    resize_longest_pad,
    resize_shortest_center_crop,
)
from gs_encoders.weights import find_in_directory

# open_clip's hub files: the safetensors copy first, the pickle second (read weights-only).
_HUB_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_DIR_FILES = (*_HUB_FILES, "model.safetensors", "pytorch_model.bin")
_CONFIG = "gs3d_clip.json"
_PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode", "fill_color")
CLIP_EXTRA = "gs-encoders[clip]"


def import_open_clip():
    """The ``open_clip`` module, or a :class:`GS3DError` naming the extra that installs it."""
    try:
        import open_clip
    except ModuleNotFoundError as e:
        if e.name != "open_clip":
            raise
        raise GS3DError(
            f"CLIP needs open_clip, which is not installed (pip install '{CLIP_EXTRA}')"
        ) from None
    return open_clip


def clip_embed_dim(model_name: str) -> int:
    """Embedding width of an open_clip architecture, without building it (ViT-bigG-14: 1280)."""
    open_clip = import_open_clip()
    cfg = open_clip.get_model_config(model_name)
    if cfg is None:
        raise ValidationError(
            "model_name", "an open_clip model name (open_clip.list_models())", repr(model_name)
        )
    return int(cfg["embed_dim"])


class ClipEncoder(nn.Module):
    """An open_clip model with tensor preprocessing; images ``[B, 3, H, W]`` in ``[0, 1]``.

    Args:
        model_name: open_clip architecture (``"ViT-L-14"``, ``"ViT-bigG-14"``, ...).
        pretrained: an open_clip pretrained tag of that model (``"openai"``,
            ``"laion2b_s39b_b160k"``; fetched from the Hugging Face hub), a local weights file
            (``.safetensors``, or a ``.bin`` / ``.pt`` read weights-only), a directory holding
            one (as written by :meth:`save_pretrained` or downloaded from the hub), or ``None``
            for random initialisation.
        quick_gelu: activation of OpenAI-trained weights. ``None`` takes it from the tag, or the
            directory's config, else the architecture default; set it when loading OpenAI
            weights from a bare local file.
        trainable: ``False`` freezes the weights (gradients still reach the images).
        device: where the model is built and loaded (building a large model directly on the
            GPU skips a slow CPU initialisation).
    """

    def __init__(
        self,
        model_name: str = "ViT-L-14",
        pretrained: str | Path | None = "openai",
        quick_gelu: bool | None = None,
        trainable: bool = False,
        device: str | torch.device = "cpu",
    ):
        super().__init__()
        open_clip = import_open_clip()

        if open_clip.get_model_config(model_name) is None:
            raise ValidationError(
                "model_name",
                "an open_clip model name (see open_clip.list_models())",
                repr(model_name),
            )
        self.model_name = model_name
        what = f"CLIP {model_name}"
        path, tag_cfg, dir_cfg = None, {}, {}
        if pretrained is not None:
            path, tag_cfg, dir_cfg = self._resolve(model_name, pretrained, what)
            if quick_gelu is None:
                quick_gelu = tag_cfg.get("quick_gelu", dir_cfg.get("quick_gelu"))
        self.quick_gelu = bool(quick_gelu)
        with torch.device(device):
            model = open_clip.create_model(
                model_name,
                pretrained=None,
                force_quick_gelu=self.quick_gelu,
                pretrained_text=False,  # never fetch tower weights behind the caller's back
                pretrained_image=False,
                device=device,
            )
        if path is not None:
            try:
                open_clip.load_checkpoint(
                    model, str(path), strict=True, weights_only=True, device=device
                )
            except Exception as e:
                raise FileFormatError(
                    path, f"not loadable as {what} weights ({type(e).__name__}: {str(e)[:300]})"
                ) from None
        self.model = model
        self.source = "random" if pretrained is None else str(pretrained)
        pre = dict(model.visual.preprocess_cfg)
        for cfg in (tag_cfg, dir_cfg):
            pre.update({k: cfg[k] for k in _PREPROCESS_KEYS if k in cfg})
        self.mean, self.std = tuple(pre["mean"]), tuple(pre["std"])
        self.interpolation = (
            "bicubic" if pre.get("interpolation", "bicubic") == "bicubic" else "bilinear"
        )
        self.resize_mode = pre.get("resize_mode", "shortest")
        self.fill = float(pre.get("fill_color", 0)) / 255.0
        size = model.visual.image_size
        self.image_size = (size, size) if isinstance(size, int) else tuple(size)
        self._tokenizer = None
        self.trainable = trainable
        self.requires_grad_(trainable)
        if not trainable:
            self.eval()

    @staticmethod
    def _resolve(model_name: str, pretrained: str | Path, what: str):
        open_clip = import_open_clip()

        spec = str(pretrained)
        tag_cfg = (
            open_clip.get_pretrained_cfg(model_name, spec) if isinstance(pretrained, str) else {}
        )
        local = Path(spec).expanduser()
        if tag_cfg and not local.exists():
            hub = tag_cfg.get("hf_hub", "")
            if not hub:
                raise WeightsNotFoundError(
                    f"{what}: tag '{spec}' is only published at {tag_cfg.get('url')}; download "
                    "that file and pass its local path as pretrained"
                )
            repo, _, filename = hub.rpartition("/")  # "org/repo/" or "org/repo/file.bin"
            names = [filename] if filename else list(_HUB_FILES)
            if filename.endswith((".bin", ".pth")):
                names.insert(0, filename.rsplit(".", 1)[0] + ".safetensors")
            try:
                return resolve_pretrained(repo, filenames=names, what=what), tag_cfg, {}
            except WeightsNotFoundError as e:
                if not tag_cfg.get("quick_gelu"):
                    raise
                raise WeightsNotFoundError(
                    f"{e} These '{spec}' weights use QuickGELU: with a local file also pass "
                    "quick_gelu=True."
                ) from None
        if local.is_dir():
            dir_cfg = {}
            if (local / _CONFIG).is_file():
                try:
                    dir_cfg = json.loads((local / _CONFIG).read_text())
                except json.JSONDecodeError as e:
                    raise FileFormatError(local / _CONFIG, f"not valid JSON ({e})") from None
                if dir_cfg.get("model_name", model_name) != model_name:
                    raise FileFormatError(
                        local, f"holds {dir_cfg['model_name']} weights, not {model_name}"
                    )
            return find_in_directory(local, _DIR_FILES, what), {}, dir_cfg
        if local.is_file():
            return local, {}, {}
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        raise WeightsNotFoundError(
            f"{what}: pretrained='{spec}' is neither a local file or directory nor a pretrained "
            f"tag of {model_name} (tags: {', '.join(tags) or 'none'})"
        )

    # -- properties -------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        return int(self.model.visual.output_dim)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def train(self, mode: bool = True):
        return super().train(mode and getattr(self, "trainable", True))

    # -- encoding ---------------------------------------------------------------------------
    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in ``[0, 1]`` -> the normalised network input ``[B, 3, S, S]``."""
        check_images(images)
        x = images.float()
        if self.resize_mode == "shortest":
            x = resize_shortest_center_crop(x, self.image_size, self.interpolation)
        elif self.resize_mode == "longest":
            x = resize_longest_pad(x, self.image_size, self.fill, self.interpolation)
        else:  # "squash"
            x = resize(x, self.image_size, self.interpolation)
        return normalize(x, self.mean, self.std)

    def encode_image(
        self, images: torch.Tensor, normalized: bool = True, batch_size: int | None = None
    ) -> torch.Tensor:
        """Image embeddings ``[B, D]`` (float32; unit length when ``normalized``)."""
        check_images(images)
        chunks = images.split(batch_size) if batch_size else (images,)
        out = []
        for chunk in chunks:
            x = self.preprocess(chunk).to(self.dtype)
            out.append(self.model.encode_image(x).float())
        emb = torch.cat(out)
        return F.normalize(emb, dim=-1) if normalized else emb

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        open_clip = import_open_clip()

        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts) or not texts:
            raise ValidationError("texts", "a non-empty list of strings", repr(texts)[:80])
        if self._tokenizer is None:
            self._tokenizer = open_clip.get_tokenizer(self.model_name)
        return self._tokenizer(list(texts))

    def encode_text(self, texts: Sequence[str], normalized: bool = True) -> torch.Tensor:
        """Text embeddings ``[T, D]`` (float32; unit length when ``normalized``)."""
        device = next(self.model.parameters()).device
        emb = self.model.encode_text(self.tokenize(texts).to(device)).float()
        return F.normalize(emb, dim=-1) if normalized else emb

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode_image(images)

    # -- saving -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Write ``open_clip_model.safetensors`` + ``gs3d_clip.json`` (loadable as ``pretrained``)."""
        from gs_core.io.tensor_file import save_tensors

        directory = Path(directory)
        check_overwrite(directory, overwrite)
        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            state = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
            save_tensors(state, str(tmp / _HUB_FILES[0]), metadata={"format": "pt"})
            cfg = {
                "model_name": self.model_name,
                "quick_gelu": self.quick_gelu,
                "mean": list(self.mean),
                "std": list(self.std),
                "interpolation": self.interpolation,
                "resize_mode": self.resize_mode,
                "fill_color": round(self.fill * 255),
            }
            (tmp / _CONFIG).write_text(json.dumps(cfg, indent=2) + "\n")
        return directory


__all__ = ["ClipEncoder", "clip_embed_dim"]
