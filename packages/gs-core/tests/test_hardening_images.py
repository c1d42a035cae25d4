"""Images as a hostile user supplies them: decompression bombs, every PIL mode, inputs with no
object, and pictures framed unlike the training views. One mechanism each: ``open_image`` /
``load_image`` in gs_core.imaging for every file read, ``load_rgba``'s object check and
``recenter`` in gs_core.image_inputs."""

from __future__ import annotations

import re
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gs_core import CORE_API_VERSION, Gaussians
from gs_core.config import Config
from gs_core.errors import FileFormatError, GS3DError
from gs_core.image_inputs import (
    OBJECT_ALPHA,
    RECENTER_FILL,
    load_rgba,
    object_box,
    recenter,
)
from gs_core.imaging import MAX_IMAGE_SIDE, image_size, load_image, save_image, to_uint8
from gs_core.method import GenerationOutput, Method

REPO = Path(__file__).resolve().parents[3]


def _png(path: Path, w: int, h: int, color_type: int, bit_depth: int, pixels=None, chunks=()):
    """Write a PNG by hand (PIL cannot write 16-bit colour or declare sizes it does not hold).

    ``pixels``: a uint8 / big-endian uint16 array of the raw samples, or None for no pixel data
    (enough for a header-only check). ``chunks``: extra ``(type, data)`` before IDAT.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b""
    if pixels is not None:
        rows = np.ascontiguousarray(pixels).reshape(h, -1).view(np.uint8)
        raw = b"".join(b"\x00" + r.tobytes() for r in rows)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + b"".join(chunk(k, d) for k, d in chunks)
    body += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


# ---------------------------------------------------------------- decompression bombs


@pytest.mark.parametrize("side", [20000, 10000, MAX_IMAGE_SIDE + 1])
def test_oversized_images_are_refused_from_the_header(tmp_path, side):
    # 20000^2 is past PIL's error threshold, 10000^2 in its warning range, 8193^2 only past ours
    bomb = _png(tmp_path / "bomb.png", side, side, 0, 8)
    assert bomb.stat().st_size < 100
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's DecompressionBombWarning must not escape either
        for read in (load_image, image_size, load_rgba):
            with pytest.raises(FileFormatError) as e:
                read(bomb)
            msg = str(e.value)
            assert msg.startswith(f"{bomb}: image file ") and "\n" not in msg
            assert f"limit of {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels" in msg


def test_bomb_in_a_dataset_names_the_frame(tmp_path):
    from gs_core.data import load_object_views, write_object

    d = write_object(
        tmp_path / "obj", np.zeros((2, 8, 8, 4), np.uint8), np.stack([np.eye(4)] * 2), fl_x=8.0
    )
    _png(d / "images" / "001.png", 20000, 20000, 6, 8)
    with pytest.raises(FileFormatError, match=r"001\.png: image of frames\[1\] declares more"):
        load_object_views(d)


def test_bomb_on_the_command_line_is_one_line(tmp_path, capsys):
    from gs_core.cli.main import main

    bomb = _png(tmp_path / "bomb.png", 20000, 20000, 6, 8)
    out = tmp_path / "o.ply"
    with pytest.raises(SystemExit) as e:
        main(["generate", str(bomb), "--method", "agg", "-o", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith(f"error: {bomb}: ")
    assert not out.exists()


# ---------------------------------------------------------------- every image mode


def _save(im: Image.Image, path: Path, **kw) -> Path:
    im.save(path, **kw)
    return path


def _modes(tmp: Path):
    """(name, path, expected float array) for every mode PIL opens."""
    g = np.array([[0, 64], [128, 255]], np.uint8)
    a = np.array([[255, 0], [128, 255]], np.uint8)
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]], np.uint8)
    u16 = np.array([[0, 1000], [30000, 65535]], np.uint16)
    pal = [255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9)
    idx = np.array([[0, 1], [2, 1]], np.uint8)
    pal_rgb = np.asarray(pal, np.uint8).reshape(-1, 3)[idx] / 255

    def p_image():
        im = Image.fromarray(idx, "P")
        im.putpalette(pal)
        return im

    out = []
    bits = np.array([[1, 0], [0, 1]], bool)
    out.append(
        ("1", _save(Image.fromarray(bits), tmp / "1.png"), np.repeat(bits[..., None], 3, -1))
    )
    out.append(
        ("L", _save(Image.fromarray(g), tmp / "l.png"), np.repeat(g[..., None], 3, -1) / 255)
    )
    la = np.stack([g, a], -1)
    exp_la = np.concatenate([np.repeat(g[..., None], 3, -1), a[..., None]], -1) / 255
    out.append(("LA", _save(Image.fromarray(la, "LA"), tmp / "la.png"), exp_la))
    out.append(("P", _save(p_image(), tmp / "p.png"), pal_rgb))
    # tRNS: palette entry 1 (green) transparent
    exp_p_t = np.concatenate([pal_rgb, (idx != 1)[..., None]], -1)
    out.append(("P+tRNS", _save(p_image(), tmp / "pt.png", transparency=1), exp_p_t))
    # per-entry partial alpha
    exp_p_a = np.concatenate([pal_rgb, (np.array([255, 51, 0])[idx] / 255)[..., None]], -1)
    out.append(
        ("P+alpha", _save(p_image(), tmp / "pa.png", transparency=bytes([255, 51, 0])), exp_p_a)
    )
    exp16 = np.repeat((u16 / 65535)[..., None], 3, -1)
    out.append(("I;16", _save(Image.fromarray(u16), tmp / "i16.png"), exp16))
    out.append(("I", _save(Image.fromarray(u16.astype(np.int32)), tmp / "i.tif"), exp16))
    f = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    out.append(("F", _save(Image.fromarray(f), tmp / "f.tif"), np.repeat(f[..., None], 3, -1)))
    out.append(("RGB", _save(Image.fromarray(rgb), tmp / "rgb.png"), rgb / 255))
    rgba = np.concatenate([rgb, a[..., None]], -1)
    out.append(("RGBA", _save(Image.fromarray(rgba), tmp / "rgba.png"), rgba / 255))
    cmyk = np.array([[[255, 0, 0, 0], [0, 255, 0, 0]], [[0, 0, 255, 0], [0, 0, 0, 255]]], np.uint8)
    exp_cmyk = np.array([[[0, 1, 1], [1, 0, 1]], [[1, 1, 0], [0, 0, 0]]], np.float32)
    out.append(("CMYK", _save(Image.fromarray(cmyk, "CMYK"), tmp / "cmyk.tif"), exp_cmyk))
    # 8-bit colour keys (tRNS of L and RGB)
    exp_lk = np.concatenate([np.repeat(g[..., None], 3, -1) / 255, (g != 64)[..., None]], -1)
    out.append(("L+key", _save(Image.fromarray(g), tmp / "lk.png", transparency=64), exp_lk))
    exp_rk = np.concatenate([rgb / 255, [[[1], [0]], [[1], [1]]]], -1)
    out.append(
        ("RGB+key", _save(Image.fromarray(rgb), tmp / "rk.png", transparency=(0, 255, 0)), exp_rk)
    )
    # hand-made 16-bit PNGs: grey + key, grey + alpha, RGB, RGBA (PIL keeps 8 bits of colour)
    key = struct.pack(">H", 1000)
    exp_k16 = np.concatenate([exp16, (u16 != 1000)[..., None]], -1)
    out.append(
        (
            "I;16+key",
            _png(tmp / "k16.png", 2, 2, 0, 16, u16.astype(">u2"), [(b"tRNS", key)]),
            exp_k16,
        )
    )
    la16 = np.stack([u16, u16[::-1]], -1).astype(">u2")
    exp_la16 = np.concatenate([exp16, (u16[::-1] / 65535)[..., None]], -1)
    out.append(("LA16", _png(tmp / "la16.png", 2, 2, 4, 16, la16), exp_la16))
    rgb16 = np.stack([u16, u16.T, 65535 - u16], -1)
    out.append(("RGB16", _png(tmp / "rgb16.png", 2, 2, 2, 16, rgb16.astype(">u2")), rgb16 / 65535))
    rgba16 = np.concatenate([rgb16, u16[..., None]], -1)
    out.append(
        ("RGBA16", _png(tmp / "rgba16.png", 2, 2, 6, 16, rgba16.astype(">u2")), rgba16 / 65535)
    )
    return out


def test_every_mode_loads_with_its_own_scale(tmp_path):
    for name, path, expected in _modes(tmp_path):
        got = load_image(path)
        assert got.dtype == np.float32 and got.shape == expected.shape, name
        # 16-bit colour PNGs are decoded by PIL at 8 bits: right to within one 8-bit step
        tol = 1 / 255 + 1e-6 if name in ("LA16", "RGB16", "RGBA16") else 1e-6
        np.testing.assert_allclose(got, expected, atol=tol, err_msg=name)
        assert got.min() >= 0.0 and got.max() <= 1.0, name
        as_bytes = load_image(path, dtype=np.uint8)  # the dataset loader's form
        np.testing.assert_array_equal(as_bytes, to_uint8(got), err_msg=name)


def test_mode_requests_convert_on_floats(tmp_path):
    u16 = np.array([[0, 1000], [30000, 65535]], np.uint16)
    path = _save(Image.fromarray(u16), tmp_path / "i16.png")
    np.testing.assert_allclose(load_image(path, "L")[..., 0], u16 / 65535, atol=1e-6)
    rgba = load_image(path, "RGBA")
    assert rgba.shape == (2, 2, 4) and (rgba[..., 3] == 1).all()
    rgb = np.array([[[255, 0, 0]]], np.uint8)
    path = _save(Image.fromarray(rgb), tmp_path / "rgb.png")
    assert load_image(path, "L")[0, 0, 0] == pytest.approx(0.299)


@pytest.mark.parametrize(
    "make, problem",
    [
        (
            lambda: Image.fromarray(np.array([[0, 70000]], np.int32)),
            r"integer image \(I\) with values 0\.\.70000; expected 16-bit data",
        ),
        (
            lambda: Image.fromarray(np.array([[-1, 5]], np.int32)),
            r"integer image \(I\) with values -1\.\.5",
        ),
        (
            lambda: Image.fromarray(np.array([[0.0, 2.5]], np.float32)),
            r"float image with values 0\.\.2\.5; expected values in \[0, 1\]",
        ),
        (
            lambda: Image.fromarray(np.array([[0.0, np.nan]], np.float32)),
            r"float image with values 0\.\.0 and non-finite values",
        ),
        (lambda: Image.new("LAB", (2, 2)), r"image mode LAB is not supported \(expected one of"),
    ],
)
def test_values_without_a_colour_meaning_are_refused(tmp_path, make, problem):
    path = _save(make(), tmp_path / "x.tif")
    with pytest.raises(FileFormatError, match=rf"^{re.escape(str(path))}: image file: {problem}"):
        load_image(path)


def test_dataset_views_read_16_bit_images(tmp_path):
    """The dataset loader goes through load_image: 16-bit greyscale is not clipped at 255."""
    from gs_core.data import load_object_views, write_object

    d = write_object(tmp_path / "obj", np.zeros((1, 2, 2, 4), np.uint8), np.eye(4)[None], fl_x=2.0)
    u16 = np.array([[0, 1000], [30000, 65535]], np.uint16)
    Image.fromarray(u16).save(d / "images" / "000.png")
    Image.fromarray(np.full((2, 2), 255, np.uint8)).save(d / "mask.png")
    import json

    doc = json.loads((d / "transforms.json").read_text())
    doc["frames"][0]["mask_file_path"] = "mask.png"
    (d / "transforms.json").write_text(json.dumps(doc))
    rgba = load_object_views(d).rgba[0]
    expected = np.round(u16 / 65535 * 255).astype(np.uint8)
    np.testing.assert_array_equal(rgba[..., 0], expected)
    assert (rgba[..., 3] == 255).all()


def test_every_image_read_goes_through_gs_core_imaging():
    """Only gs_core/imaging.py opens image files: a loader elsewhere would skip the bomb guard
    and the mode conversion."""
    offenders = []
    for root in ("packages", "plugins", "examples"):
        for path in (REPO / root).rglob("*.py"):
            if "tests" in path.parts or path.name == "imaging.py" or ".venv" in path.parts:
                continue
            text = path.read_text(encoding="utf-8")
            if re.search(r"Image\.open\(|imageio.*imread|iio\.imread", text):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


# ---------------------------------------------------------------- inputs with no object


def test_transparent_and_empty_inputs_are_refused(tmp_path):
    clear = tmp_path / "clear.png"
    save_image(clear, np.zeros((16, 16, 4), np.float32))
    with pytest.raises(
        GS3DError, match=rf"^{re.escape(str(clear))}: no object to generate from: its alpha"
    ):
        load_rgba(clear)
    faint = tmp_path / "faint.png"
    img = np.zeros((16, 16, 4), np.float32)
    img[4:8, 4:8] = (1, 0, 0, 0.2)  # a wisp below OBJECT_ALPHA is no object
    assert OBJECT_ALPHA > 0.2
    save_image(faint, img)
    with pytest.raises(GS3DError, match="no object to generate from"):
        load_rgba(faint)
    white = tmp_path / "white.png"
    save_image(white, np.ones((16, 16, 3), np.float32))
    with pytest.raises(
        GS3DError, match=r"white\.png: no object.*flat background colour \(255, 255, 255\)"
    ):
        load_rgba(white)


def test_opaque_alpha_is_no_mask(tmp_path):
    """An RGBA file opaque everywhere holds no mask: it is masked by its flat background like RGB."""
    img = np.ones((20, 20, 4), np.float32)
    img[5:15, 5:15, :3] = (0.2, 0.3, 0.4)
    path = tmp_path / "opaque.png"
    save_image(path, img)
    inp = load_rgba(path)
    assert inp.opaque_alpha and inp.background == pytest.approx((1.0, 1.0, 1.0))
    assert object_box(inp.rgba[0, 3]) == (5, 5, 15, 15)
    assert "alpha channel that is opaque everywhere" in inp.mask_note
    noisy = np.random.default_rng(0).random((20, 20, 4)).astype(np.float32)
    noisy[..., 3] = 1
    save_image(path, noisy, overwrite=True)
    with pytest.raises(
        GS3DError,
        match="opaque.png: RGBA image whose alpha is opaque everywhere, and its border is not one flat colour",
    ):
        load_rgba(path)


def test_cli_refuses_a_transparent_input_in_one_line(tmp_path, capsys):
    from gs_core.cli.main import main

    clear = tmp_path / "clear.png"
    save_image(clear, np.zeros((16, 16, 4), np.float32))
    out = tmp_path / "o.ply"
    with pytest.raises(SystemExit) as e:
        main(["generate", str(clear), "--method", "agg", "-o", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {clear}: no object to generate from") and not out.exists()


# ---------------------------------------------------------------- framing like the training views


def _box_rgba(h, w, box, colour=(0.9, 0.2, 0.1)) -> torch.Tensor:
    x0, y0, x1, y1 = box
    img = torch.zeros(4, h, w)
    img[:3, y0:y1, x0:x1] = torch.tensor(colour)[:, None, None]
    img[3, y0:y1, x0:x1] = 1
    return img


def test_recenter_pads_centres_and_scales_the_box():
    img = _box_rgba(60, 100, (10, 5, 30, 45))  # 20x40 box in the top-left of a wide picture
    out = recenter(img)
    assert out.shape == (4, 100, 100)
    x0, y0, x1, y1 = object_box(out[3])
    assert abs((y1 - y0) - RECENTER_FILL * 100) <= 1.5  # longer side fills the fraction
    assert abs((x1 - x0) - RECENTER_FILL * 50) <= 1.5  # aspect kept
    assert abs((x0 + x1) / 2 - 50) <= 1 and abs((y0 + y1) / 2 - 50) <= 1
    # premultiplied resampling: colour under partial alpha stays the object's, no dark fringe
    edge = out[3] > 0.05
    assert torch.allclose(out[:3][:, edge], torch.tensor([0.9, 0.2, 0.1])[:, None], atol=2e-3)
    assert recenter(img[None], 0.5, size=32).shape == (1, 4, 32, 32)
    with pytest.raises(GS3DError, match="no object"):
        recenter(torch.zeros(4, 8, 8))


def test_framed_leaves_training_like_views_alone_and_says_what_it_did(tmp_path):
    path = tmp_path / "in.png"
    save_image(path, _box_rgba(64, 64, (12, 20, 52, 44)).permute(1, 2, 0).numpy())  # 62% fill
    inp = load_rgba(path)
    same, note = inp.framed()
    assert same is inp and "already framed like the training views" in note
    save_image(path, _box_rgba(48, 80, (0, 0, 10, 10)).permute(1, 2, 0).numpy(), overwrite=True)
    inp = load_rgba(path)
    moved, note = inp.framed()
    assert moved.rgba.shape == (1, 4, 80, 80)
    assert note.startswith(f"{path}: 80x48, object box 10x10 px at (0, 0): padded to square")
    assert "--no-recenter" in note and "\n" not in note


class RecConfig(Config):
    presets = {"paper": {}}


class Rec(Method):
    """A method without weights that records the images it is given."""

    config_class = RecConfig
    name = "rec"
    seen: list = []

    def generate(self, images, seed=None, **kwargs):
        Rec.seen.append(images.clone())
        g = Gaussians.from_colors(torch.zeros(1, 3), torch.ones(1, 3), 0.05, 0.9)
        return GenerationOutput(gaussians=g, timings={})


@pytest.fixture
def recorder(monkeypatch):
    import gs_core.plugins.registry as reg
    from gs_core.plugins.specs import MethodSpec

    fresh = reg.Registry(discover=False)
    monkeypatch.setattr(reg, "_REGISTRY", fresh)
    fresh.register_method(
        MethodSpec(
            "rec",
            "test",
            config_class=RecConfig,
            factory=Rec,
            core_api=CORE_API_VERSION,
            has_weights=False,
        )  # fmt: skip
    )
    Rec.seen = []
    return fresh


def test_generate_recenters_unless_told_not_to(recorder, tmp_path, capsys):
    from gs_core.cli.main import main

    path = tmp_path / "in.png"
    save_image(path, _box_rgba(48, 80, (4, 4, 20, 24)).permute(1, 2, 0).numpy())
    with pytest.raises(SystemExit) as e:
        main(["generate", str(path), "--method", "rec", "-o", str(tmp_path / "a.ply"), "--device", "cpu"])  # fmt: skip
    assert e.value.code in (0, None), capsys.readouterr().err
    err = capsys.readouterr().err
    assert f"{path}: 80x48, object box 16x20 px at (4, 4): padded to square" in err
    assert "warning: the bundled" not in err  # a method without weights of its own
    main_args = ["generate", str(path), "--method", "rec", "-o", str(tmp_path / "b.ply"), "--no-recenter"]  # fmt: skip
    with pytest.raises(SystemExit):
        main(main_args)
    assert "padded" not in capsys.readouterr().err
    framed, raw = Rec.seen
    assert framed.shape == (1, 4, 80, 80) and raw.shape == (1, 4, 48, 80)
    assert object_box(raw[0, 3]) == (4, 4, 20, 24)
    x0, y0, x1, y1 = object_box(framed[0, 3])
    assert abs((y1 - y0) - RECENTER_FILL * 80) <= 1.5


def test_bundled_weights_warning(tmp_path, monkeypatch):
    import gs_core.plugins.registry as reg
    from gs_core.cli.generate import bundled_weights_warning
    from gs_core.plugins.specs import MethodSpec

    class C(Config):
        presets = {"paper": {}}

    fresh = reg.Registry(discover=False)
    monkeypatch.setattr(reg, "_REGISTRY", fresh)
    bundled, examples = tmp_path / "procedural-small", tmp_path / "examples"
    bundled.mkdir()
    examples.mkdir()
    common = dict(config_class=C, method_class="gs_core.method:Method", core_api=CORE_API_VERSION)
    fresh.register_method(
        MethodSpec("m", "t", default_checkpoint=str(bundled), examples_dir=str(examples), **common)
    )
    fresh.register_method(MethodSpec("hub", "t", default_checkpoint="org/model", **common))
    own = tmp_path / "cat.png"
    msg = bundled_weights_warning("m", own, None, None)
    assert msg.startswith(
        "warning: the bundled 'm' weights (procedural-small) know only gs3d's procedural objects ("
    )
    assert bundled_weights_warning("m", examples / "mug" / "000.png", None, None) is None
    assert bundled_weights_warning("m", own, str(bundled), None) is None
    assert bundled_weights_warning("m", own, None, "paper") is None
    assert bundled_weights_warning("hub", own, None, None) is None
