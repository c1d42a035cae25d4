"""The original Stable Diffusion U-Net's parameter names (``input_blocks`` / ``middle_block`` /
``output_blocks``, the layout MVDream and ImageDream keep) in diffusers' ``UNet2DConditionModel``
names (``down_blocks`` / ``mid_block`` / ``up_blocks``).

It lets a trained procedural ImageDream teacher (:class:`gs_priors.multiview_unet.MultiViewUNetModel`)
start a Zero123++ one (:mod:`gs_priors.teachers.warm_start`). With one frame, no camera and no
image prompt the multi-view U-Net computes what a ``UNet2DConditionModel`` of the same widths
computes, so every diffusers tensor has exactly one source. What diffusers has no place for is
left out: the camera MLP, the image-prompt resampler and the cross-attentions' image-prompt
keys and values (``to_k_ip`` / ``to_v_ip``).

The layout, for ``L`` residual blocks per level: ``input_blocks.0`` is the input convolution;
then each level has ``L`` blocks of a residual block (``.0``) with an optional transformer
(``.1``), and every level but the last one more block holding the downsampler (``.0.op``). Each
output level has ``L + 1`` blocks, the upsampler (``.conv``) after the transformer in the last
block of every level but the last.
"""

from __future__ import annotations

import re

import torch

# A residual block's layers: the original's sequential indices, diffusers' names.
_RESNET = {
    "in_layers.0": "norm1",
    "in_layers.2": "conv1",
    "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2",
    "out_layers.3": "conv2",
    "skip_connection": "conv_shortcut",
}
# Parameters with no place in a UNet2DConditionModel (ImageDream's camera and image prompt).
_DROPPED = re.compile(r"^(camera_embed|image_embed|label_emb)\.|\.to_[kv]_ip\.")


def _resnet(rest: str) -> str:
    for old, new in _RESNET.items():
        if rest.startswith(old + "."):
            return new + rest[len(old) :]
    raise KeyError(rest)


def diffusers_key(key: str, layers: int) -> str | None:
    """The diffusers name of the original layout's parameter ``key`` in a U-Net of ``layers``
    residual blocks per level, or ``None`` for a parameter diffusers has no place for. An
    unknown name raises :class:`KeyError`."""
    if _DROPPED.search(key):
        return None
    for old, new in (("time_embed.0.", "time_embedding.linear_1."),
                     ("time_embed.2.", "time_embedding.linear_2."),
                     ("input_blocks.0.0.", "conv_in."),
                     ("out.0.", "conv_norm_out."),
                     ("out.2.", "conv_out.")):  # fmt: skip
        if key.startswith(old):
            return new + key[len(old) :]
    m = re.match(r"input_blocks\.(\d+)\.(\d+)\.(.+)$", key)
    if m:
        i, part, rest = int(m[1]), int(m[2]), m[3]
        level, j = divmod(i - 1, layers + 1)
        if j == layers:  # the level's downsampler
            if rest.startswith("op."):
                return f"down_blocks.{level}.downsamplers.0.conv.{rest[3:]}"
        elif part == 0:
            return f"down_blocks.{level}.resnets.{j}.{_resnet(rest)}"
        elif part == 1:
            return f"down_blocks.{level}.attentions.{j}.{rest}"
        raise KeyError(key)
    m = re.match(r"middle_block\.(\d)\.(.+)$", key)
    if m:
        part, rest = int(m[1]), m[2]
        if part == 1:
            return f"mid_block.attentions.0.{rest}"
        return f"mid_block.resnets.{part // 2}.{_resnet(rest)}"
    m = re.match(r"output_blocks\.(\d+)\.(\d+)\.(.+)$", key)
    if m:
        i, part, rest = int(m[1]), int(m[2]), m[3]
        level, j = divmod(i, layers + 1)
        if part == 0:
            return f"up_blocks.{level}.resnets.{j}.{_resnet(rest)}"
        if rest.startswith("conv."):  # the upsampler: after the transformer, if any
            return f"up_blocks.{level}.upsamplers.0.{rest}"
        if part == 1:
            return f"up_blocks.{level}.attentions.{j}.{rest}"
    raise KeyError(key)


def to_diffusers(
    state: dict[str, torch.Tensor], layers: int, target: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``state`` (the original layout) renamed to diffusers' names, each tensor in the shape of
    ``target``'s tensor of that name where only a pointwise convolution's trailing 1x1 differs
    (the transformers' ``proj_in`` / ``proj_out``: linear in ImageDream, 1x1 convolutions in a
    default ``UNet2DConditionModel``); the parameters diffusers has no place for are left out."""
    out = {}
    for key, value in state.items():
        name = diffusers_key(key, layers)
        if name is None:
            continue
        t = target.get(name)
        pointwise = (
            t is not None
            and t.dim() > value.dim()
            and t.shape[: value.dim()] == value.shape
            and all(s == 1 for s in t.shape[value.dim() :])
        )
        if pointwise:
            value = value.reshape(t.shape)
        out[name] = value
    return out
