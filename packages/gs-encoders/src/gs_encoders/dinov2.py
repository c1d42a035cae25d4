"""DINOv2 image encoder (Oquab et al. 2023) through timm: CLS + patch tokens.

AGG (Sec. 3.2, 4.1) conditions on "a pre-trained DINOv2-base model at 256x256 input resolution",
using the CLS token and the patch tokens. DINOv2 has 14-pixel patches and 256 is not a multiple
of 14, so the input size is handled explicitly: images are resized to the nearest multiple of 14
(256 -> 252, an 18 x 18 grid of 324 patch tokens). The network keeps DINOv2's native 37 x 37
position table (518 px, as published) and timm's ``dynamic_img_size`` interpolates it to the
input grid at run time, bicubically, as the official DINOv2 code does; so the state dict, the
parameter count (86.6 M for base) and the released checkpoint are the same at every input size.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gs_core.errors import FileFormatError, ValidationError
from gs_core.hub import resolve_pretrained
from gs_core.io.atomic import atomic_path, check_overwrite
from gs_encoders.image_preprocessing import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    check_images,
    normalize,
    resize,
    snap_to_multiple,
)
from gs_encoders.weights import (
    find_in_directory,
    load_into,
    read_state_dict,
    strip_prefixes,
)

PATCH_SIZE = 14
OFFICIAL = "official"

# timm architecture names; the short names are what configs and the CLI use.
DINOV2_VARIANTS = {
    "small": "vit_small_patch14_dinov2",
    "base": "vit_base_patch14_dinov2",
    "large": "vit_large_patch14_dinov2",
    "giant": "vit_giant_patch14_dinov2",
    "small-reg4": "vit_small_patch14_reg4_dinov2",
    "base-reg4": "vit_base_patch14_reg4_dinov2",
    "large-reg4": "vit_large_patch14_reg4_dinov2",
    "giant-reg4": "vit_giant_patch14_reg4_dinov2",
}
# A local directory may hold timm's hub layout or the original release's file name.
_DIR_FILES = ("model.safetensors", "pytorch_model.bin", "model.pth", "model.pt")


def resolve_variant(variant: str) -> str:
    """Short name (``"base"``, ``"base-reg4"``) or timm name -> timm name."""
    name = DINOV2_VARIANTS.get(variant, variant)
    if name not in DINOV2_VARIANTS.values():
        raise ValidationError(
            "variant",
            f"one of {sorted(DINOV2_VARIANTS)} or {sorted(DINOV2_VARIANTS.values())}",
            repr(variant),
        )
    return name


def official_hub_id(variant: str) -> str:
    """The hub repo of the released weights (LVD-142M pre-training) for ``variant``."""
    return f"timm/{resolve_variant(variant)}.lvd142m"


@dataclass
class DinoV2Output:
    """Tokens of the last layer after the final LayerNorm.

    Attributes:
        cls: ``[B, 1, D]`` the [CLS] token.
        patches: ``[B, P, D]`` patch tokens in row-major order, ``P = grid[0] * grid[1]``.
        registers: ``[B, R, D]`` register tokens (``R = 0`` for models without registers).
        grid: ``(gh, gw)`` patch grid of the input.
    """

    cls: torch.Tensor
    patches: torch.Tensor
    registers: torch.Tensor
    grid: tuple[int, int]

    def patch_map(self) -> torch.Tensor:
        """Patch tokens as a feature map ``[B, D, gh, gw]``."""
        b, p, d = self.patches.shape
        return self.patches.transpose(1, 2).reshape(b, d, *self.grid)


class DinoV2Encoder(nn.Module):
    """DINOv2 ViT returning CLS and patch tokens of ``images [B, 3, H, W]`` in ``[0, 1]``.

    Args:
        variant: ``small | base | large | giant`` with optional ``-reg4`` (registers), or the
            timm name (``vit_base_patch14_dinov2``).
        pretrained: ``"official"`` (the released weights from the hub, ``timm/<variant>.lvd142m``),
            another hub id, a local ``.safetensors`` / ``.pt`` / ``.pth`` file (timm layout or the
            original facebookresearch release), a directory holding one, or ``None`` for random
            initialisation.
        image_size: the size images are encoded at (int or ``(h, w)``); each side is snapped to
            the nearest multiple of 14 (AGG's 256 -> 252). Inputs of any size are resized to it
            (bicubic, antialiased) before ImageNet normalisation.
        trainable: ``False`` freezes the weights and keeps the module in eval mode; gradients
            still flow to the input images.
        defer: build with random values and load ``pretrained`` on first use
            (:meth:`ensure_weights`, called by ``forward``), unless a state dict holding the
            encoder's weights is loaded first. A method whose checkpoints contain the encoder
            (AGG, DD3G) then loads offline, and fetches the released weights only when it
            starts from them.
    """

    def __init__(
        self,
        variant: str = "base",
        pretrained: str | Path | None = OFFICIAL,
        image_size: int | tuple[int, int] = 224,
        trainable: bool = False,
        defer: bool = False,
    ):
        super().__init__()
        import timm

        self.variant = resolve_variant(variant)
        self.image_size = snap_to_multiple(image_size, PATCH_SIZE)
        load_now = pretrained is not None and not defer
        # With weights to load now, build on the meta device: a random init of ViT-g costs a
        # minute of CPU for values that would be overwritten.
        with torch.device("meta") if load_now else contextlib.nullcontext():
            self.model = timm.create_model(
                self.variant, pretrained=False, num_classes=0, dynamic_img_size=True
            )
        self.source = "random" if pretrained is None else str(pretrained)
        # The weights still to load on first use (``defer``); None once loaded or superseded.
        self.pending_weights: str | None = None
        if load_now:
            self._load(pretrained)
        elif pretrained is not None:
            self.pending_weights = str(pretrained)
            self._register_load_state_dict_pre_hook(self._weights_in_state_dict)
        self.trainable = trainable
        self.requires_grad_(trainable)
        if not trainable:
            self.eval()

    # -- properties -------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        return self.model.embed_dim

    @property
    def num_registers(self) -> int:
        return self.model.num_prefix_tokens - 1

    @property
    def grid_size(self) -> tuple[int, int]:
        """Patch grid at ``image_size`` (AGG: 252 px -> ``(18, 18)``)."""
        return self.image_size[0] // PATCH_SIZE, self.image_size[1] // PATCH_SIZE

    @property
    def num_patches(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    def train(self, mode: bool = True):
        # A frozen encoder stays in eval mode whatever the surrounding model does.
        return super().train(mode and getattr(self, "trainable", True))

    # -- forward ----------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> DinoV2Output:
        check_images(images)
        self.ensure_weights()
        x = resize(images.float(), self.image_size)
        x = normalize(x, IMAGENET_MEAN, IMAGENET_STD)
        x = x.to(self.model.patch_embed.proj.weight.dtype)
        tokens = self.model.forward_features(x)  # [B, 1 + R + P, D], final norm applied
        r = self.num_registers
        return DinoV2Output(
            cls=tokens[:, :1],
            patches=tokens[:, 1 + r :],
            registers=tokens[:, 1 : 1 + r],
            grid=self.grid_size,
        )

    # -- weights ----------------------------------------------------------------------------
    def _weights_in_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        if any(k.startswith(prefix + "model.") for k in state_dict):
            self.pending_weights = None

    def ensure_weights(self) -> None:
        """Load the deferred ``pretrained`` weights if still pending, in place (the module keeps
        its device and dtype). Without them this raises
        :class:`gs_core.errors.WeightsNotFoundError` with one line naming the hub id or file."""
        if self.pending_weights is None:
            return
        source = DinoV2Encoder(self.variant, self.pending_weights, self.image_size)
        self.model.load_state_dict(source.model.state_dict())
        self.pending_weights = None

    def _load(self, pretrained: str | Path) -> None:
        from timm.models.vision_transformer import checkpoint_filter_fn

        what = f"DINOv2 {self.variant}"
        spec = str(pretrained)
        if spec == OFFICIAL:
            spec = official_hub_id(self.variant)
        path = resolve_pretrained(
            spec, filenames=["model.safetensors", "pytorch_model.bin"], what=what
        )
        if path.is_dir():
            path = find_in_directory(path, _DIR_FILES, what)
        # float32 like a freshly built model, whatever precision the file was saved in
        state = {
            k: v.float() if v.is_floating_point() else v
            for k, v in strip_prefixes(read_state_dict(path, what)).items()
        }
        try:
            # Converts the original release's key names and resamples position tables / patch
            # kernels stored at another size.
            state = checkpoint_filter_fn(state, self.model)
        except Exception as e:
            raise FileFormatError(path, f"not DINOv2 weights for {self.variant} ({e})") from None
        load_into(self.model, state, path, what, assign=True)

    def save_pretrained(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Write ``model.safetensors`` (timm layout, loadable with ``pretrained=directory``)."""
        from gs_core.io.tensor_file import save_tensors

        directory = Path(directory)
        check_overwrite(directory, overwrite)
        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            state = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
            save_tensors(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
            cfg = {"architecture": self.variant, "num_features": self.embed_dim}
            (tmp / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        return directory


__all__ = ["DINOV2_VARIANTS", "DinoV2Encoder", "DinoV2Output", "official_hub_id", "resolve_variant"]
