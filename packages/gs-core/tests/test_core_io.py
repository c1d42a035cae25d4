import struct

import numpy as np
import pytest
import torch

from gs_core import FileFormatError, Gaussians, Mesh
from gs_core.io import (
    OutputExistsError,
    load_ply,
    load_point_cloud,
    load_splat,
    save_ply,
    save_point_cloud,
    save_splat,
)


def rand_g(n, degree, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g)
    return Gaussians(
        torch.randn(n, 3, generator=g), q / q.norm(dim=-1, keepdim=True), torch.rand(n, 3, generator=g) + 0.01,
        torch.rand(n, generator=g) * 0.98 + 0.01, torch.randn(n, (degree + 1) ** 2, 3, generator=g),
    )  # fmt: skip


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_ply_roundtrip(tmp_path, degree):
    g = rand_g(64, degree)
    save_ply(tmp_path / "a.ply", g)
    h = load_ply(tmp_path / "a.ply")
    assert h.sh_degree == degree
    for f in ("means", "quats", "scales", "opacities", "sh"):
        torch.testing.assert_close(getattr(h, f), getattr(g, f), atol=2e-6, rtol=2e-6)
    # saving what was loaded reproduces the file: same header, values within float32 rounding
    save_ply(tmp_path / "b.ply", load_ply(tmp_path / "a.ply", dtype=torch.float64))
    ha, ba = (tmp_path / "a.ply").read_bytes().split(b"end_header\n")
    hb, bb = (tmp_path / "b.ply").read_bytes().split(b"end_header\n")
    assert ha == hb
    np.testing.assert_allclose(
        np.frombuffer(bb, "<f4"), np.frombuffer(ba, "<f4"), rtol=1e-6, atol=1e-7
    )


def test_ply_layout_is_inria(tmp_path):
    g = rand_g(3, 1)
    save_ply(tmp_path / "a.ply", g)
    blob = (tmp_path / "a.ply").read_bytes()
    header, body = blob.split(b"end_header\n")
    names = [ln.split()[-1] for ln in header.decode().splitlines() if ln.startswith("property")]
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert names[9:18] == [f"f_rest_{i}" for i in range(9)]
    assert names[18:] == [
        "opacity",
        "scale_0",
        "scale_1",
        "scale_2",
        "rot_0",
        "rot_1",
        "rot_2",
        "rot_3",
    ]
    assert b"binary_little_endian" in header
    row = np.frombuffer(body, "<f4").reshape(3, len(names))
    # f_rest channel-major: first K-1 values are red of bands 1..3
    np.testing.assert_allclose(row[0, 9:12], g.sh[0, 1:, 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        row[0, 18], np.log(g.opacities[0] / (1 - g.opacities[0])).item(), rtol=1e-5
    )
    np.testing.assert_allclose(row[0, 19:22], np.log(g.scales[0].numpy()), rtol=1e-5)


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"garbage bytes", "not a PLY"),
        (b"ply\nformat binary_little_endian 1.0\nelement vertex 10\nproperty float x\n", "end_header"),
        (b"ply\nformat binary_little_endian 1.0\nelement vertex 10\nproperty float x\nend_header\n\x00\x00", "truncated"),
        (b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\nend_header\n" + b"\x00" * 12, "missing vertex properties"),
    ],
)  # fmt: skip
def test_bad_ply_errors(tmp_path, content, needle):
    p = tmp_path / "bad.ply"
    p.write_bytes(content)
    with pytest.raises(FileFormatError) as e:
        load_ply(p)
    assert needle in str(e.value) and str(p) in str(e.value)


def test_truncated_real_ply(tmp_path):
    save_ply(tmp_path / "a.ply", rand_g(10, 2))
    blob = (tmp_path / "a.ply").read_bytes()
    (tmp_path / "t.ply").write_bytes(blob[:-7])
    with pytest.raises(FileFormatError, match="truncated"):
        load_ply(tmp_path / "t.ply")


def test_no_overwrite_and_atomic(tmp_path, monkeypatch):
    g = rand_g(5, 0)
    save_ply(tmp_path / "a.ply", g)
    with pytest.raises(OutputExistsError):
        save_ply(tmp_path / "a.ply", g, overwrite=False)
    # a failure mid-write leaves neither a partial file nor a temp file behind
    import gs_core.io.ply as ply

    monkeypatch.setattr(
        ply, "gaussians_to_ply_bytes", lambda g: (_ for _ in ()).throw(RuntimeError("boom"))
    )
    with pytest.raises(RuntimeError):
        save_ply(tmp_path / "b.ply", g)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ply"]


def test_splat_records(tmp_path):
    g = rand_g(50, 2)
    save_splat(tmp_path / "a.splat", g)
    blob = (tmp_path / "a.splat").read_bytes()
    assert len(blob) == 50 * 32
    h = load_splat(tmp_path / "a.splat")
    # records are sorted by opacity * volume, decreasing
    key = g.scales.prod(1) * g.opacities
    order = torch.argsort(-key, stable=True)
    torch.testing.assert_close(h.means, g.means[order])
    torch.testing.assert_close(h.scales, g.scales[order])
    assert (h.colors - g.colors[order]).abs().max() < 1 / 255 + 1e-6
    assert (h.opacities - g.opacities[order]).abs().max() < 1 / 255 + 1e-6
    first = struct.unpack("<3f3f4B4B", blob[:32])
    assert first[:3] == pytest.approx(g.means[order[0]].tolist(), abs=1e-6)


def test_point_cloud_roundtrip(tmp_path):
    pts, cols = torch.randn(100, 3), torch.rand(100, 3)
    save_point_cloud(tmp_path / "p.ply", pts, cols)
    p2, c2 = load_point_cloud(tmp_path / "p.ply")
    torch.testing.assert_close(p2, pts)
    assert (c2 - cols).abs().max() <= 0.5 / 255 + 1e-6


def test_mesh_export(tmp_path):
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    f = torch.tensor([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]])
    m = Mesh(v, f, vertex_colors=torch.rand(4, 3))
    for ext in ("glb", "obj"):
        m.export(tmp_path / f"m.{ext}")
        import trimesh

        loaded = trimesh.load(tmp_path / f"m.{ext}", force="mesh")
        assert len(loaded.faces) == 4
    with pytest.raises(Exception, match="Mesh.faces"):
        Mesh(v, torch.tensor([[0, 1, 9]]))


def test_textured_glb_has_a_white_base_colour(tmp_path):
    """The texture alone is the colour: no grey material factor darkening it in glTF viewers."""
    import trimesh

    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    uv = torch.tensor([[0.0, 0], [1, 0], [0, 1]])
    Mesh(v, torch.tensor([[0, 1, 2]]), uvs=uv, texture=torch.full((8, 8, 3), 0.5)).export(
        tmp_path / "t.glb"
    )
    loaded = trimesh.load(tmp_path / "t.glb", force="mesh")
    assert list(loaded.visual.material.baseColorFactor) == [255, 255, 255, 255]
