"""A method's input image: an RGBA file, or an RGB file whose object mask comes from a flat border,
framed the way the methods' training views are.

Every method takes RGBA ``[B, 4, H, W]`` whose alpha is the object mask. People often have an
RGB render or photo on a plain background instead; :func:`mask_from_flat_background` recovers
the mask from it when the border really is one colour and refuses otherwise, because a guessed
mask silently ruins the generation. An input with no object at all is refused for the same
reason.

The bundled methods learnt from procedural views (``gs3d data procedural``): square images with
the object's box centred and its longer side filling 0.50-0.75 of the picture (median 0.67,
measured with :data:`OBJECT_ALPHA` on 160 random views; the object ball of radius 0.5 seen from
1.5 at 49.1 degrees cannot exceed 0.77). :func:`recenter` brings any picture to that framing,
as the LGM / Zero123 / DreamGaussian preprocessing does for theirs (they use 0.8 because their
Objaverse renders fill more of the frame).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gs_core.errors import GS3DError

# An RGB image's border is "flat" when its pixels stay this close to their median colour.
FLAT_BORDER_TOLERANCE = 0.04
# Pixels farther than this from the background colour are the object.
MASK_TOLERANCE = 0.02
# A pixel belongs to the object (for its box and for "is there an object at all") when its alpha
# is at least this: the anti-aliased silhouette edge, the threshold the fill was measured with.
OBJECT_ALPHA = 0.5
# Longer side of the object's box / image side after :func:`recenter`: the median of the
# procedural training views (see the module docstring).
RECENTER_FILL = 0.67
# A picture already framed like the training views is left alone: square, box centre within
# this fraction of the side from the image centre (training views: 0.03 on average) ...
FRAMED_CENTRE_TOLERANCE = 0.05
# ... and fill within the range the training views span (5th percentile .. the ball's limit).
FRAMED_FILL_RANGE = (0.5, 0.77)
# Output side of :func:`recenter` at most: methods read 256 px or less, larger only costs memory.
RECENTER_MAX_SIZE = 1024


def mask_from_flat_background(
    rgb: np.ndarray, path: str | Path, kind: str = "RGB image without an alpha channel"
) -> tuple[np.ndarray, np.ndarray]:
    """RGB ``[H, W, 3]`` float in [0, 1] -> (RGBA ``[H, W, 4]``, background colour ``[3]``).

    The background colour is the median of the one-pixel border. Raises :class:`GS3DError`
    naming ``path`` (and ``kind``, what the file is) when the border is not one colour (no
    reliable mask).
    """
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]], axis=0)
    bg = np.median(border, axis=0)
    spread = np.abs(border - bg).max(-1)
    if np.quantile(spread, 0.95) > FLAT_BORDER_TOLERANCE:
        raise GS3DError(
            f"{path}: {kind}, and its border is not one flat colour, so "
            "the object mask cannot be derived. Pass an RGBA PNG whose alpha is the object mask "
            "(e.g. cut the background out with rembg: `rembg i in.png out.png`)."
        )
    alpha = (np.abs(rgb - bg).max(-1) > MASK_TOLERANCE).astype(np.float32)
    return np.concatenate([rgb, alpha[..., None]], -1), bg


def object_box(alpha: torch.Tensor | np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` (end exclusive) of the pixels with alpha >= :data:`OBJECT_ALPHA`
    in ``alpha [H, W]``, or ``None`` when there are none."""
    inside = torch.as_tensor(alpha) >= OBJECT_ALPHA
    rows = torch.nonzero(inside.any(1)).flatten()
    cols = torch.nonzero(inside.any(0)).flatten()
    if rows.numel() == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def recenter(
    rgba: torch.Tensor, fill_fraction: float = RECENTER_FILL, size: int | None = None
) -> torch.Tensor:
    """Pad to square, centre the object's box and scale it so its longer side is
    ``fill_fraction`` of the side.

    ``rgba [4, H, W]`` or ``[B, 4, H, W]`` float in [0, 1] (straight alpha) -> the same layout at
    ``size x size`` (default: the longer input side, at most :data:`RECENTER_MAX_SIZE`). Each
    image is framed by its own box; the whole picture moves (soft edges outside the box are
    kept) and what lands outside the source is transparent. Resampling is anti-aliased bilinear
    on premultiplied colour, so transparent pixels do not darken the edge.
    """
    if not 0.0 < fill_fraction <= 1.0:
        raise GS3DError(f"recenter: fill_fraction must be in (0, 1], got {fill_fraction}")
    if rgba.ndim == 3:
        return recenter(rgba[None], fill_fraction, size)[0]
    if rgba.ndim != 4 or rgba.shape[1] != 4:
        raise GS3DError(f"recenter: expected RGBA [B, 4, H, W], got {tuple(rgba.shape)}")
    H, W = rgba.shape[-2:]
    side_out = size or min(max(H, W), RECENTER_MAX_SIZE)
    out = []
    for i, img in enumerate(rgba):
        box = object_box(img[3])
        if box is None:
            raise GS3DError(
                f"recenter: image {i} has no object (alpha < {OBJECT_ALPHA} everywhere)"
            )
        x0, y0, x1, y1 = box
        side = max(1, round(max(x1 - x0, y1 - y0) / fill_fraction))
        left = round((x0 + x1 - side) / 2)
        top = round((y0 + y1 - side) / 2)
        prem = torch.cat([img[:3] * img[3:], img[3:]], 0)
        crop = prem[:, max(0, top) : min(H, top + side), max(0, left) : min(W, left + side)]
        pad = (
            max(0, -left),
            max(0, left + side - W),
            max(0, -top),
            max(0, top + side - H),
        )
        window = torch.nn.functional.pad(crop, pad)
        res = torch.nn.functional.interpolate(
            window[None], size=(side_out, side_out), mode="bilinear", antialias=True
        )[0].clamp_(0.0, 1.0)
        a = res[3:]
        rgb = torch.where(a > 1e-6, res[:3] / a.clamp_min(1e-6), torch.zeros_like(res[:3]))
        out.append(torch.cat([rgb.clamp_(0.0, 1.0), a], 0))
    return torch.stack(out)


@dataclass(frozen=True)
class InputImage:
    """A loaded input: ``rgba [1, 4, H, W]`` float in [0, 1].

    ``background`` is the flat colour the mask was derived from (files without transparency),
    ``None`` when the file carried its own alpha channel; ``opaque_alpha`` says the file had an
    alpha channel that was opaque everywhere (so it held no mask).
    """

    path: Path
    rgba: torch.Tensor
    background: tuple[float, float, float] | None = None
    opaque_alpha: bool = False

    @property
    def mask_note(self) -> str | None:
        """One sentence telling the user their mask was derived, or ``None`` for RGBA files."""
        if self.background is None:
            return None
        rgb255 = ", ".join(str(round(v * 255)) for v in self.background)
        bg_share = 1.0 - float(self.rgba[:, 3].mean())
        what = (
            "an alpha channel that is opaque everywhere"
            if self.opaque_alpha
            else "no alpha channel"
        )
        return (
            f"{self.path} has {what}: the object mask was taken from its flat background "
            f"colour ({rgb255}): pixels within {MASK_TOLERANCE:.0%} of it are background "
            f"({100 * bg_share:.0f}% of the image). Pass an RGBA PNG to control the mask."
        )

    def framed(self, fill_fraction: float = RECENTER_FILL) -> tuple[InputImage, str]:
        """This input framed like the training views (see :func:`recenter`) and one line saying
        what was done; returned unchanged when it already is framed so."""
        H, W = self.rgba.shape[-2:]
        x0, y0, x1, y1 = object_box(self.rgba[0, 3])  # type: ignore[misc]  # never empty: load_rgba
        fill = max(x1 - x0, y1 - y0) / max(H, W)
        off = max(abs((x0 + x1) / 2 - W / 2), abs((y0 + y1) / 2 - H / 2)) / max(H, W)
        box = f"object box {x1 - x0}x{y1 - y0} px at ({x0}, {y0})"
        lo, hi = FRAMED_FILL_RANGE
        if H == W and lo <= fill <= hi and off <= FRAMED_CENTRE_TOLERANCE:
            return self, (
                f"{self.path}: {box} already framed like the training views "
                f"(fills {fill:.0%}); used as is"
            )
        rgba = recenter(self.rgba, fill_fraction)
        side = rgba.shape[-1]
        scale = side * fill_fraction / max(x1 - x0, y1 - y0)
        note = (
            f"{self.path}: {W}x{H}, {box}: padded to square, centred and scaled x{scale:.2f} to "
            f"fill {fill_fraction:.0%} of a {side}x{side} input as in the training views "
            "(--no-recenter to use the picture as it is)"
        )
        return dataclasses.replace(self, rgba=rgba), note


def load_rgba(path: str | Path) -> InputImage:
    """Read an image file as a method input.

    Photos are turned upright by their EXIF orientation. Files without transparency (no alpha
    channel, or one opaque everywhere) get the mask of their flat background. Raises
    :class:`GS3DError` naming the file when no pixel is object (alpha below
    :data:`OBJECT_ALPHA` everywhere): a method would "generate" from nothing.
    """
    from gs_core.imaging import load_image

    path = Path(path)
    img = load_image(path, orient=True)
    background = None
    opaque = img.shape[-1] == 4 and bool((img[..., 3] >= 1.0).all())
    if img.shape[-1] == 3 or opaque:
        kind = (
            "RGBA image whose alpha is opaque everywhere"
            if opaque
            else "RGB image without an alpha channel"
        )
        img, bg = mask_from_flat_background(img[..., :3], path, kind)
        background = tuple(float(v) for v in bg)
    if object_box(img[..., 3]) is None:
        if background is None:
            why = f"its alpha channel is below {OBJECT_ALPHA} everywhere (fully transparent)"
        else:
            rgb255 = ", ".join(str(round(v * 255)) for v in background)
            why = (
                f"every pixel is within {MASK_TOLERANCE:.0%} of its flat background colour "
                f"({rgb255})"
            )
        raise GS3DError(f"{path}: no object to generate from: {why}")
    rgba = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).contiguous()
    return InputImage(path=path, rgba=rgba, background=background, opaque_alpha=opaque)  # type: ignore[arg-type]


__all__ = [
    "FLAT_BORDER_TOLERANCE",
    "FRAMED_CENTRE_TOLERANCE",
    "FRAMED_FILL_RANGE",
    "MASK_TOLERANCE",
    "OBJECT_ALPHA",
    "RECENTER_FILL",
    "RECENTER_MAX_SIZE",
    "InputImage",
    "load_rgba",
    "mask_from_flat_background",
    "object_box",
    "recenter",
]
