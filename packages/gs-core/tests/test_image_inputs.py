"""Method inputs: RGBA files as they are, RGB files masked by their flat background."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gs_core.errors import FileFormatError, GS3DError
from gs_core.image_inputs import MASK_TOLERANCE, load_rgba, mask_from_flat_background
from gs_core.imaging import save_image


def _disc(size: int = 40, bg=(1.0, 1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """RGB ``[size, size, 3]`` of a red disc on ``bg`` and its mask ``[size, size]``."""
    yy, xx = np.mgrid[:size, :size]
    inside = (xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size / 3) ** 2
    rgb = np.empty((size, size, 3), np.float32)
    rgb[:] = bg
    rgb[inside] = (0.8, 0.2, 0.3)
    return rgb, inside.astype(np.float32)


def test_mask_from_flat_background_recovers_the_disc():
    rgb, mask = _disc(bg=(0.0, 0.5, 0.0))
    rgba, bg = mask_from_flat_background(rgb, "x.png")
    assert rgba.shape == (40, 40, 4)
    np.testing.assert_array_equal(rgba[..., 3], mask)
    np.testing.assert_allclose(bg, (0.0, 0.5, 0.0))
    np.testing.assert_array_equal(rgba[..., :3], rgb)


def test_noisy_border_is_refused_naming_the_file():
    noisy = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    with pytest.raises(GS3DError, match=r"^photo.png: RGB image without an alpha channel.*RGBA"):
        mask_from_flat_background(noisy, "photo.png")


def test_load_rgba_keeps_alpha_of_rgba_files(tmp_path):
    rgb, mask = _disc()
    path = tmp_path / "in.png"
    save_image(path, np.concatenate([rgb, mask[..., None]], -1))
    inp = load_rgba(path)
    assert inp.rgba.shape == (1, 4, 40, 40) and inp.rgba.dtype == torch.float32
    assert torch.equal(inp.rgba[0, 3], torch.from_numpy(mask))
    assert inp.background is None and inp.mask_note is None


def test_load_rgba_derives_the_mask_of_rgb_files(tmp_path):
    rgb, mask = _disc()
    path = tmp_path / "in.png"
    save_image(path, rgb)
    inp = load_rgba(path)
    assert torch.equal(inp.rgba[0, 3], torch.from_numpy(mask))
    assert inp.background == pytest.approx((1.0, 1.0, 1.0))
    note = inp.mask_note
    bg_pct = round(100 * (1 - mask.mean()))
    assert note.startswith(f"{path} has no alpha channel") and "(255, 255, 255)" in note
    assert f"within {MASK_TOLERANCE:.0%}" in note and f"({bg_pct}% of the image)" in note


def test_load_rgba_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match="image file not found"):
        load_rgba(tmp_path / "none.png")


def test_photos_are_turned_upright_by_their_exif_orientation(tmp_path):
    from PIL import Image

    from gs_core.image_inputs import load_rgba
    from gs_core.imaging import load_image

    # stored 60 wide x 40 high on white, a red block in the stored top-left corner
    px = np.full((40, 60, 3), 255, np.uint8)
    px[4:16, 4:20] = (220, 20, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    path = tmp_path / "portrait.png"  # lossless (PNG keeps EXIF in its eXIf chunk)
    Image.fromarray(px).save(path, exif=exif)

    stored = load_image(path)  # dataset frames keep the stored grid
    assert stored.shape[:2] == (40, 60)
    inp = load_rgba(path)
    assert tuple(inp.rgba.shape) == (1, 4, 60, 40)  # upright: 40 wide x 60 high
    alpha = inp.rgba[0, 3].numpy()
    rows, cols = np.nonzero(alpha > 0.5)
    # turned clockwise, the stored top-left corner is now the top-right one
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (4, 19, 24, 35)
