"""A method's input image: an RGBA file, or an RGB file whose object mask comes from a flat border.

Every method takes RGBA ``[B, 4, H, W]`` whose alpha is the object mask. People often have an
RGB render or photo on a plain background instead; :func:`mask_from_flat_background` recovers
the mask from it when the border really is one colour and refuses otherwise, because a guessed
mask silently ruins the generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gs_core.errors import GS3DError

# An RGB image's border is "flat" when its pixels stay this close to their median colour.
FLAT_BORDER_TOLERANCE = 0.04
# Pixels farther than this from the background colour are the object.
MASK_TOLERANCE = 0.02


def mask_from_flat_background(rgb: np.ndarray, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """RGB ``[H, W, 3]`` float in [0, 1] -> (RGBA ``[H, W, 4]``, background colour ``[3]``).

    The background colour is the median of the one-pixel border. Raises :class:`GS3DError`
    naming ``path`` when the border is not one colour (no reliable mask).
    """
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]], axis=0)
    bg = np.median(border, axis=0)
    spread = np.abs(border - bg).max(-1)
    if np.quantile(spread, 0.95) > FLAT_BORDER_TOLERANCE:
        raise GS3DError(
            f"{path}: RGB image without an alpha channel, and its border is not one flat colour, so "
            "the object mask cannot be derived. Pass an RGBA PNG whose alpha is the object mask "
            "(e.g. cut the background out with rembg: `rembg i in.png out.png`)."
        )
    alpha = (np.abs(rgb - bg).max(-1) > MASK_TOLERANCE).astype(np.float32)
    return np.concatenate([rgb, alpha[..., None]], -1), bg


@dataclass(frozen=True)
class InputImage:
    """A loaded input: ``rgba [1, 4, H, W]`` float in [0, 1].

    ``background`` is the flat colour the mask was derived from (RGB files), ``None`` when
    the file carried its own alpha channel.
    """

    path: Path
    rgba: torch.Tensor
    background: tuple[float, float, float] | None = None

    @property
    def mask_note(self) -> str | None:
        """One sentence telling the user their mask was derived, or ``None`` for RGBA files."""
        if self.background is None:
            return None
        rgb255 = ", ".join(str(round(v * 255)) for v in self.background)
        bg_share = 1.0 - float(self.rgba[:, 3].mean())
        return (
            f"{self.path} has no alpha channel: the object mask was taken from its flat background "
            f"colour ({rgb255}): pixels within {MASK_TOLERANCE:.0%} of it are background "
            f"({100 * bg_share:.0f}% of the image). Pass an RGBA PNG to control the mask."
        )


def load_rgba(path: str | Path) -> InputImage:
    """Read an image file as a method input; RGB files get the mask of their flat background."""
    from gs_core.imaging import load_image

    path = Path(path)
    img = load_image(path)
    background = None
    if img.shape[-1] == 3:
        img, bg = mask_from_flat_background(img, path)
        background = tuple(float(v) for v in bg)
    rgba = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).contiguous()
    return InputImage(path=path, rgba=rgba, background=background)  # type: ignore[arg-type]


__all__ = [
    "FLAT_BORDER_TOLERANCE",
    "MASK_TOLERANCE",
    "InputImage",
    "load_rgba",
    "mask_from_flat_background",
]
