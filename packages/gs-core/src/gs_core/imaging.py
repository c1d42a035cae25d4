"""Image files and pictures for people: PNG I/O, contact sheets, turntable GIF/MP4.

Images are numpy arrays ``[H, W, C]`` (C = 3 or 4), float in ``[0, 1]`` or uint8; torch tensors
are accepted too. All writes are atomic.

Every image gs3d reads goes through :func:`open_image` (missing, unreadable and oversized files
become one :class:`FileFormatError` line) and, for colour, :func:`load_image` (every PIL mode
to float in ``[0, 1]`` with its own bit depth, or refused).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from gs_core.errors import FileFormatError, GS3DError
from gs_core.io.atomic import atomic_write_bytes, check_overwrite

# Largest image gs3d decodes: 8192 x 8192 (64 Mpx, 1 GiB as float RGBA), 32x the side of any
# model input. The check reads only the header, so a tiny file declaring 20000 x 20000 pixels
# (a decompression bomb) is refused before a byte of pixel data is inflated.
MAX_IMAGE_SIDE = 8192
MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE

# 16-bit (``I;16*``) and 32-bit integer (``I``) images are read as 16-bit data: 65535 is white.
# ``I`` is what older Pillow versions and TIFF give for 16-bit greyscale; values outside
# 0..65535 have no agreed meaning as a colour and are refused rather than clipped.
_UINT16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
# Modes PIL converts to RGB faithfully; "a" in RGBa / La is premultiplied alpha.
_TO_RGB_MODES = ("RGBX", "CMYK", "YCbCr", "HSV")
SUPPORTED_MODES = "1, L, LA, P, PA, I;16, I, F, RGB, RGBA, RGBX, CMYK, YCbCr, HSV"


def to_uint8(img) -> np.ndarray:
    """``[H, W, C]`` float in [0, 1] / uint8 / tensor -> uint8 numpy."""
    if hasattr(img, "detach"):  # a torch tensor; checked by duck type so torch stays unimported
        img = img.detach().float().cpu().numpy()
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img
    out = np.multiply(img, 255.0, dtype=np.float32)
    out += 0.5
    return np.clip(out, 0.0, 255.0, out=out).astype(np.uint8)


def _too_large(path: Path, what: str, size: str) -> FileFormatError:
    return FileFormatError(
        path,
        f"{what} {size}, over gs3d's limit of {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels "
        "(refused before decoding; scale it down first)",
    )


@contextlib.contextmanager
def open_image(path: str | Path, what: str = "image file") -> Iterator[Image.Image]:
    """Open an image file lazily (header read, pixels not decoded) and refuse what gs3d won't read.

    Missing, unreadable and oversized files (over :data:`MAX_IMAGE_PIXELS`) raise
    :class:`FileFormatError` naming ``path`` and ``what`` (e.g. ``"image of frames[3]"``), and
    so does any decoding error inside the ``with`` block (call ``im.load()`` there). PIL's own
    decompression-bomb warning and error never escape.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(path, f"{what} not found")
    try:
        with warnings.catch_warnings():
            # Our limit is below PIL's warning threshold, so its warning adds nothing.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError:
        raise _too_large(path, what, "declares more than twice PIL's pixel limit") from None
    except PermissionError:
        raise FileFormatError(path, f"{what}: permission denied") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise FileFormatError(path, f"{what}: not a readable image ({e})") from None
    with im:
        w, h = im.size
        if w * h > MAX_IMAGE_PIXELS:
            raise _too_large(path, what, f"is {w}x{h}")
        try:
            yield im
        except GS3DError:
            raise
        except (OSError, SyntaxError, ValueError) as e:
            raise FileFormatError(path, f"{what}: not a readable image ({e})") from None


def image_size(path: str | Path, what: str = "image file") -> tuple[int, int]:
    """``(width, height)`` from the header alone, with :func:`open_image`'s checks."""
    with open_image(path, what) as im:
        return im.size


def _has_transparency(im: Image.Image) -> bool:
    if "A" in im.getbands() or "a" in im.getbands():
        return True
    if im.mode == "P" and im.palette is not None and im.palette.mode == "RGBA":
        return True
    # tRNS of a P, L or RGB PNG: transparent palette entries or one transparent colour
    return "transparency" in im.info


def _decode(im: Image.Image, path: Path, what: str) -> tuple[np.ndarray, int]:
    """A loaded PIL image -> (samples ``[H, W, C]``, the value of 1.0): C = 1 (grey), 2 (grey +
    alpha), 3 (RGB) or 4 (RGBA); uint8 / 255, uint16 / 65535 or float32 / 1."""
    mode = im.mode
    if mode in _UINT16_MODES or mode == "I":
        arr, scale = np.asarray(im), 65535
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise FileFormatError(
                path,
                f"{what}: integer image ({mode}) with values {lo}..{hi}; expected 16-bit data "
                "in 0..65535",
            )
        arr = arr.astype(np.uint16)
    elif mode == "F":
        arr, scale = np.asarray(im, dtype=np.float32), 1
        if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
            finite = arr[np.isfinite(arr)]
            rng = f"{finite.min():g}..{finite.max():g}" if finite.size else "no finite values"
            extra = "" if np.isfinite(arr).all() else " and non-finite values"
            raise FileFormatError(
                path, f"{what}: float image with values {rng}{extra}; expected values in [0, 1]"
            )
    elif mode in ("1", "L", "LA", "La"):
        arr, scale = np.asarray(im.convert("LA" if _has_transparency(im) else "L")), 255
    elif mode in ("RGB", "RGBA", "RGBa", "P", "PA") or mode in _TO_RGB_MODES:
        arr, scale = np.asarray(im.convert("RGBA" if _has_transparency(im) else "RGB")), 255
    else:
        raise FileFormatError(
            path,
            f"{what}: image mode {mode} is not supported (expected one of {SUPPORTED_MODES}; "
            "save it as an 8- or 16-bit PNG)",
        )
    if arr.ndim == 2:
        arr = arr[..., None]
    if mode in _UINT16_MODES and isinstance(im.info.get("transparency"), int):
        # a 16-bit tRNS colour key (PIL's convert handles 8-bit ones): that grey is transparent
        alpha = (arr[..., 0] != im.info["transparency"]).astype(np.uint16) * np.uint16(65535)
        arr = np.concatenate([arr, alpha[..., None]], -1)
    return arr, scale


def _channels(arr: np.ndarray, mode: str | None) -> np.ndarray:
    """Rearrange decoded samples (grey, grey + alpha, RGB, RGBA) into ``mode``'s channels."""
    channels = arr.shape[-1]
    if mode is None and channels in (3, 4):
        return arr
    if mode == "L":
        if channels >= 3:
            luma = np.asarray((0.299, 0.587, 0.114), np.float32)
            return (arr[..., :3] * luma).sum(-1, keepdims=True, dtype=np.float32)
        return arr[..., :1]
    colour = np.repeat(arr[..., :1], 3, -1) if channels <= 2 else arr[..., :3]
    if mode == "RGB" or (mode is None and channels == 1):
        return colour
    if channels in (2, 4):
        alpha = arr[..., -1:]
    else:
        alpha = np.full_like(
            arr[..., :1], 1 if arr.dtype == np.float32 else np.iinfo(arr.dtype).max
        )
    return np.concatenate([colour, alpha], -1)


def load_image(
    path: str | Path,
    mode: str | None = None,
    what: str = "image file",
    dtype=np.float32,
    orient: bool = False,
) -> np.ndarray:
    """Read any image PIL opens as ``[H, W, C]`` float32 in [0, 1], or refuse it in one line.

    16-bit images keep their 16 bits (65535 is 1.0), palette and colour-key transparency become
    alpha, CMYK / YCbCr become RGB; float images must already lie in [0, 1]. ``mode``:
    ``None`` gives RGB, or RGBA when the file has transparency (grey is repeated into RGB);
    ``"RGB"`` drops alpha, ``"RGBA"`` adds an opaque one, ``"L"`` gives ``[H, W, 1]`` grey
    (ITU-R 601 luma of colour images, as PIL's ``convert("L")``). ``dtype=np.uint8`` gives
    0..255 instead (8-bit files without a round trip through float; others rounded).
    ``orient=True`` turns the pixels upright as the file's EXIF orientation says (as photo
    viewers show them; a phone's portrait photo is stored sideways with orientation 6). Off by
    default: dataset frames must keep the pixel grid their camera intrinsics describe.
    """
    if mode not in (None, "RGB", "RGBA", "L"):
        raise GS3DError(f"load_image: mode must be None, 'RGB', 'RGBA' or 'L', got {mode!r}")
    if dtype not in (np.float32, np.uint8):
        raise GS3DError(f"load_image: dtype must be np.float32 or np.uint8, got {dtype!r}")
    path = Path(path)
    with open_image(path, what) as im:
        im.load()
        if orient:
            im = ImageOps.exif_transpose(im)
        raw, scale = _decode(im, path, what)
    arr = _channels(raw, mode)
    if dtype == np.uint8 and arr.dtype == np.uint8:
        # PIL's buffer is read-only: the caller gets an array of its own
        return np.array(arr, order="C", copy=not arr.flags.writeable or None)
    out = arr.astype(np.float32)  # a copy: the caller owns it, never PIL's buffer
    if scale != 1:
        out /= np.float32(scale)
    return out if dtype == np.float32 else to_uint8(out)


def save_image(path: str | Path, img, overwrite: bool = True) -> Path:
    """Write a PNG/JPEG (by extension) atomically."""
    path = Path(path)
    check_overwrite(path, overwrite, directory=False)
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
    check_overwrite(path, overwrite, directory=False)
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
