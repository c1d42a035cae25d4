"""Image files and pictures for people: PNG I/O, contact sheets, turntable GIF/MP4.

Images are numpy arrays ``[H, W, C]`` (C = 3 or 4), float in ``[0, 1]`` or uint8; torch tensors
are accepted too. All writes are atomic.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from gs_core.errors import FileFormatError, GS3DError
from gs_core.io.atomic import atomic_write_bytes, check_overwrite


def to_uint8(img) -> np.ndarray:
    """``[H, W, C]`` float in [0, 1] / uint8 / tensor -> uint8 numpy."""
    if isinstance(img, torch.Tensor):
        img = img.detach().float().cpu().numpy()
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def load_image(path: str | Path, mode: str | None = None) -> np.ndarray:
    """Read an image as float32 ``[H, W, C]`` in [0, 1]; ``mode`` ("RGB", "RGBA") converts."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(path, "image file not found")
    try:
        with Image.open(path) as im:
            im.load()
            if mode is not None:
                im = im.convert(mode)
            elif im.mode not in ("RGB", "RGBA"):
                im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
            return np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, SyntaxError, ValueError) as e:
        raise FileFormatError(path, f"not a readable image ({e})") from None


def save_image(path: str | Path, img, overwrite: bool = True) -> Path:
    """Write a PNG/JPEG (by extension) atomically."""
    path = Path(path)
    check_overwrite(path, overwrite)
    arr = to_uint8(img)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    buf = io.BytesIO()
    fmt = {"jpg": "JPEG", "jpeg": "JPEG"}.get(path.suffix.lower().lstrip("."), "PNG")
    Image.fromarray(arr).save(buf, format=fmt)
    atomic_write_bytes(path, buf.getvalue())
    return path


def composite(rgba, background: Sequence[float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Alpha-composite float RGBA ``[H, W, 4]`` over a flat colour -> float RGB."""
    rgba = np.asarray(rgba, dtype=np.float32)
    if rgba.shape[-1] == 3:
        return rgba
    a = rgba[..., 3:4]
    return rgba[..., :3] * a + np.asarray(background, np.float32) * (1 - a)


def contact_sheet(
    images: Sequence,
    ncols: int | None = None,
    labels: Sequence[str] | None = None,
    pad: int = 2,
    background: Sequence[float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Tile images (all the same size; RGBA is composited on ``background``) into one uint8 grid.

    ``labels`` are drawn in the top-left corner of each tile.
    """
    if len(images) == 0:
        raise GS3DError("contact_sheet: no images given")
    tiles = []
    for im in images:
        arr = to_uint8(im).astype(np.float32) / 255.0
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, -1)
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, -1)
        tiles.append(composite(arr, background))
    h, w = tiles[0].shape[:2]
    for i, t in enumerate(tiles):
        if t.shape[:2] != (h, w):
            raise GS3DError(
                f"contact_sheet: image {i} is {t.shape[1]}x{t.shape[0]}, expected {w}x{h}"
            )
    n = len(tiles)
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    sheet = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), np.float32)
    sheet[:] = np.asarray(background, np.float32) * 0.85
    for i, t in enumerate(tiles):
        r, c = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        sheet[y : y + h, x : x + w] = t
    out = to_uint8(sheet)
    if labels:
        pil = Image.fromarray(out)
        draw = ImageDraw.Draw(pil)
        for i, text in enumerate(labels[:n]):
            if not text:
                continue
            r, c = divmod(i, ncols)
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            draw.rectangle([x, y, x + 6 * len(text) + 4, y + 12], fill=(0, 0, 0))
            draw.text((x + 2, y), text, fill=(255, 255, 255))
        out = np.asarray(pil)
    return out


def save_animation(
    path: str | Path, frames: Sequence, fps: int = 20, overwrite: bool = True
) -> Path:
    """Write frames as an animated GIF or an MP4 (by extension) atomically.

    MP4 needs the optional ``imageio-ffmpeg`` package (``pip install 'gs3d-core[video]'``).
    """
    import imageio.v3 as iio

    path = Path(path)
    check_overwrite(path, overwrite)
    ext = path.suffix.lower()
    arrs = [to_uint8(composite(to_uint8(f).astype(np.float32) / 255.0)) for f in frames]
    if not arrs:
        raise GS3DError(f"{path}: no frames to write")
    if ext == ".gif":
        data = iio.imwrite("<bytes>", np.stack(arrs), extension=".gif", duration=1000 / fps, loop=0)
    elif ext == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise GS3DError(
                f"{path}: writing MP4 needs imageio-ffmpeg (pip install 'gs3d-core[video]'); or write a .gif"
            ) from None
        data = iio.imwrite("<bytes>", np.stack(arrs), extension=".mp4", fps=fps)
    else:
        raise GS3DError(f"{path}: unsupported animation format '{ext}' (expected .gif or .mp4)")
    atomic_write_bytes(path, data)
    return path
