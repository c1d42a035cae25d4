"""LPIPS (Zhang, Isola, Efros, Shechtman and Wang, CVPR 2018) through the ``lpips`` package.

``d(x, y) = sum_l 1/(H_l W_l) sum_{h,w} || w_l * (phi_l(x)_hw - phi_l(y)_hw) ||_2^2`` (eq. 1 of
the paper): unit-normalised features ``phi_l`` of five layers of an ImageNet backbone, weighted
per channel by the learned linear layers ``w_l`` ("v0.1" calibration) and averaged spatially.

Two sets of weights are needed:

* the linear layers, shipped inside the ``lpips`` wheel (``lpips/weights/v0.1/{net}.pth``);
* the torchvision ImageNet backbone (VGG16 or AlexNet), which ``lpips`` would download itself.
  Here it comes from the usual torch hub cache (``$TORCH_HOME/hub/checkpoints``), from
  ``$GS3D_LPIPS_VGG_WEIGHTS`` / ``$GS3D_LPIPS_ALEX_WEIGHTS``, or from an explicit path; when
  none holds it, :class:`~gs_core.errors.WeightsNotFoundError` says how to provide it. There is
  no random-backbone fallback: such numbers are not LPIPS.

Both are read with ``torch.load(weights_only=True)`` (or safetensors), never unpickled.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from gs_core.errors import FileFormatError, ValidationError, WeightsNotFoundError

Net = Literal["vgg", "alex"]

_TORCHVISION_WEIGHTS = {"vgg": ("vgg16", "VGG16_Weights"), "alex": ("alexnet", "AlexNet_Weights")}
ENV_VARS = {"vgg": "GS3D_LPIPS_VGG_WEIGHTS", "alex": "GS3D_LPIPS_ALEX_WEIGHTS"}


# torchvision.models.<Arch>_Weights.IMAGENET1K_V1.url, spelled out: looking for the weights must
# not import torchvision (seconds), or a metric whose weights are absent is not reported at once.
# test_losses_lpips checks them against torchvision's own table.
_BACKBONE_URLS = {
    "vgg": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
}


def backbone_weights_url(net: Net) -> str:
    """Where torchvision publishes the ImageNet weights LPIPS's backbone uses."""
    return _BACKBONE_URLS[net]


def default_backbone_path(net: Net) -> Path:
    """The file in the torch hub cache that ``torchvision.models.<net>(weights=...)`` writes."""
    url = backbone_weights_url(net)
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _load_tensor_file(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for foreign files
        raise FileFormatError(
            path,
            f"not a readable weights file ({type(e).__name__}: {str(e).splitlines()[0][:200]})",
        ) from None
    if not isinstance(state, Mapping):
        raise FileFormatError(path, f"expected a state dict, got {type(state).__name__}")
    return dict(state)


def _resolve_backbone(
    net: Net, weights: str | Path | Mapping[str, torch.Tensor] | None
) -> dict[str, torch.Tensor]:
    if isinstance(weights, Mapping):
        return dict(weights)
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"LPIPS({net}) backbone weights: {path} does not exist")
        return _load_tensor_file(path)
    env = os.environ.get(ENV_VARS[net])
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(
                f"LPIPS({net}) backbone weights: {ENV_VARS[net]}={env} does not exist"
            )
        return _load_tensor_file(path)
    path = default_backbone_path(net)
    if path.is_file():
        return _load_tensor_file(path)
    arch = _TORCHVISION_WEIGHTS[net][0]
    raise WeightsNotFoundError(
        f"LPIPS({net}) needs torchvision's ImageNet {arch} weights, not found at {path}. "
        f"Download {backbone_weights_url(net)} to that path (or run, where the internet is reachable, "
        f"python -c \"import torchvision; torchvision.models.{arch}(weights='IMAGENET1K_V1')\"), "
        f"or point {ENV_VARS[net]} or LPIPS(backbone_weights=...) at the file."
    )


class LPIPS(nn.Module):
    """LPIPS distance as a frozen, differentiable module.

    Args:
        net: ``"vgg"`` (VGG16, the usual choice for training losses) or ``"alex"`` (AlexNet, the
            paper's recommended metric).
        backbone_weights: torchvision ImageNet weights of the backbone: a ``.pth`` /
            ``.safetensors`` path or a state dict with torchvision keys (``features.0.weight``...).
            ``None`` looks in ``$GS3D_LPIPS_{VGG,ALEX}_WEIGHTS`` and then the torch hub cache.
        linear_weights: the calibrated linear layers; ``None`` uses the ones in the ``lpips`` wheel.

    ``forward(pred, target)`` takes ``[B, 3, H, W]`` in ``[0, 1]`` and returns ``[B]``.
    """

    def __init__(
        self,
        net: Net = "vgg",
        backbone_weights: str | Path | Mapping[str, torch.Tensor] | None = None,
        linear_weights: str | Path | None = None,
    ):
        super().__init__()
        if net not in _TORCHVISION_WEIGHTS:
            raise ValidationError("LPIPS(net)", "'vgg' or 'alex'", repr(net))
        self.net_name = net
        backbone = _resolve_backbone(net, backbone_weights)
        import lpips

        with warnings.catch_warnings():
            # lpips builds its trunk with torchvision's deprecated `pretrained=` argument.
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(
                net=net, version="0.1", pretrained=False, pnet_rand=True, verbose=False
            )
        lin_path = (
            Path(linear_weights)
            if linear_weights is not None
            else (Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth")
        )
        if not lin_path.is_file():
            raise WeightsNotFoundError(
                f"LPIPS({net}) linear layers not found at {lin_path}; reinstall the lpips package "
                "(pip install --force-reinstall lpips), whose wheel ships them"
            )
        lin = _load_tensor_file(lin_path)
        expected_lin = {
            k for k in model.state_dict() if k.startswith("lin") and not k.startswith("lins.")
        }
        if set(lin) != expected_lin:
            raise FileFormatError(
                lin_path,
                f"expected LPIPS linear layers {sorted(expected_lin)}, got {sorted(lin)[:5]}",
            )
        model.load_state_dict(lin, strict=False)
        _load_backbone(model.net, backbone, net)
        model.eval()
        model.requires_grad_(False)
        self.model = model

    def train(self, mode: bool = True) -> LPIPS:
        # The linear layers carry dropout; LPIPS is only defined in eval mode.
        super().train(mode)
        self.model.eval()
        return self

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        for field, t in (("pred", pred), ("target", target)):
            if (
                not isinstance(t, torch.Tensor)
                or t.ndim != 4
                or t.shape[1] != 3
                or not t.is_floating_point()
            ):
                got = f"shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValidationError(
                    f"LPIPS({field})", "a float tensor [B, 3, H, W] in [0, 1]", got
                )
        if pred.shape != target.shape:
            raise ValidationError(
                "LPIPS(target)", f"shape {tuple(pred.shape)} like pred", f"{tuple(target.shape)}"
            )
        return self.model(pred, target, normalize=True).flatten()


def _load_backbone(trunk: nn.Module, state: dict[str, torch.Tensor], net: str) -> None:
    """Copy torchvision ``features.{i}.*`` tensors into lpips's ``slice{k}.{i}.*`` modules."""
    # lpips splits torchvision's `features` Sequential into slices but keeps the layer indices.
    targets = {}
    for name in trunk.state_dict():
        _slice, idx, param = name.split(".")
        targets[f"features.{idx}.{param}"] = name
    missing = sorted(k for k in targets if k not in state)
    if missing:
        raise FileFormatError(
            f"LPIPS({net}) backbone weights",
            f"not torchvision {_TORCHVISION_WEIGHTS[net][0]} weights: missing {missing[:3]}",
        )
    own = trunk.state_dict()
    remapped = {}
    for src, dst in targets.items():
        if state[src].shape != own[dst].shape:
            raise FileFormatError(
                f"LPIPS({net}) backbone weights",
                f"{src} has shape {tuple(state[src].shape)}, expected {tuple(own[dst].shape)}",
            )
        remapped[dst] = state[src]
    trunk.load_state_dict(remapped, strict=True)
