"""Texture baking (``gs_core.meshing.bake_texture``) and ``gs3d mesh --texture``. CPU, seconds.

The case is textured by construction: Gaussians on a sphere, red where x < 0 and blue where
x > 0, so every texel's true colour follows from its 3D point.
"""

from __future__ import annotations

import math

import pytest
import torch
import trimesh

from gs_core import Cameras, Gaussians, Mesh
from gs_core.cli.main import main
from gs_core.errors import ValidationError
from gs_core.io import save_ply
from gs_core.meshing import bake_texture, gaussians_to_mesh, unwrap_uv
from gs_core.meshing.bake import uv_rasterize
from gs_core.rendering import render
from gs_core.rendering.mesh_raster import interpolate
from gs_core.rendering.mesh_render import render_mesh

pytestmark = pytest.mark.usefixtures("one_thread")

RED = torch.tensor([0.9, 0.1, 0.1])
BLUE = torch.tensor([0.1, 0.2, 0.9])
SIZE = 64


def _sphere_gaussians(n: int = 3000, radius: float = 0.5) -> Gaussians:
    i = torch.arange(n) + 0.5  # Fibonacci sphere: near-uniform points
    phi = torch.acos(1 - 2 * i / n)
    th = math.pi * (1 + 5**0.5) * i
    p = radius * torch.stack(
        [torch.sin(phi) * torch.cos(th), torch.cos(phi), torch.sin(phi) * torch.sin(th)], -1
    )
    c = torch.where(p[:, :1] < 0, RED, BLUE)
    return Gaussians.from_colors(p, c, scales=0.03, opacities=0.9)


@pytest.fixture(scope="module")
def baked():
    torch.manual_seed(0)
    g = _sphere_gaussians()
    mesh = unwrap_uv(gaussians_to_mesh(g, resolution=32))
    # Vertex colours removed so the hole filling falls back to the Gaussians themselves.
    mesh = Mesh(vertices=mesh.vertices, faces=mesh.faces, uvs=mesh.uvs)
    return g, mesh, bake_texture(mesh, g, size=SIZE, resolution=96)


@pytest.mark.parametrize("mip", [False, True])
def test_render_of_baked_mesh_matches_gaussians(baked, mip):
    """With mip-mapping too: the level of detail must not jump at UV seams (a seam pixel's
    larger one-sided UV difference would sample the texture's average colour)."""
    g, _, out = baked
    assert out.texture.shape == (SIZE, SIZE, 3)
    cams = Cameras.orbit([30, 120, 210, 300], 20, radius=2.5, width=64, height=64)
    gi = render(g, cams, background=1.0)
    mi = render_mesh(out, cams, background=1.0, attributes=("rgb", "alpha"), mip=mip)
    mask = (mi.alpha[..., 0] > 0.99) & (gi.alpha[..., 0] > 0.99)
    assert int(mask.sum()) > 2000
    err = (gi.rgb - mi.rgb).abs().max(-1).values[mask]
    assert float(err.mean()) < 0.04
    # Large errors only on the red/blue boundary and the silhouette ring.
    assert float((err > 0.1).float().mean()) < 0.1


def test_every_island_texel_has_its_sides_colour(baked):
    _, mesh, out = baked
    rast = uv_rasterize(mesh, SIZE)
    inside = rast.tri_id[0] >= 0
    pts = interpolate(mesh.vertices, rast, mesh.faces)[0]
    x = pts[..., 0]
    tex = out.texture
    # Away from the boundary plane every texel is the colour of its side, seen or not.
    for side, colour in ((x < -0.1, RED), (x > 0.1, BLUE)):
        sel = inside & side
        assert int(sel.sum()) > 200
        assert float((tex[sel] - colour).abs().max()) < 0.15


def test_dilation_covers_border_texels(baked):
    _, mesh, out = baked
    inside = (uv_rasterize(mesh, SIZE).tri_id[0] >= 0).float()[None, None]
    ring = (torch.nn.functional.max_pool2d(inside, 3, 1, 1) > 0) & (inside == 0)
    ring = ring[0, 0]
    assert int(ring.sum()) > 50
    tex = out.texture[ring]
    # Each border texel carries an island colour (red or blue), not the empty texture (black)
    # nor the mean of both sides (purple).
    d = torch.minimum((tex - RED).abs().max(-1).values, (tex - BLUE).abs().max(-1).values)
    assert float((d < 0.3).float().mean()) > 0.9
    assert float(tex.sum(-1).min()) > 0.3


def test_bad_inputs_name_the_field(baked):
    g, mesh, _ = baked
    plain = Mesh(vertices=mesh.vertices, faces=mesh.faces)
    with pytest.raises(ValidationError, match="mesh.uvs"):
        bake_texture(plain, g, size=8)
    with pytest.raises(ValidationError, match="size"):
        bake_texture(mesh, g, size=0)
    with pytest.raises(ValidationError, match="gaussians"):
        bake_texture(mesh, g.select(torch.zeros(g.num_gaussians, dtype=torch.bool)), size=8)


def test_textured_obj_writes_side_files(baked, tmp_path):
    out = baked[2]
    path = out.export(tmp_path / "m.obj")
    assert (tmp_path / "m.mtl").is_file() and (tmp_path / "m.png").is_file()
    loaded = trimesh.load(path, process=False)
    assert loaded.visual.material.image.size == (SIZE, SIZE)


def test_cli_mesh_texture_writes_textured_glb(tmp_path, capsys):
    ply = tmp_path / "sphere.ply"
    save_ply(ply, _sphere_gaussians(1500))
    out = tmp_path / "sphere.glb"
    with pytest.raises(SystemExit) as e:
        main(["mesh", str(ply), "-o", str(out), "--resolution", "24", "--texture", "64"])
    assert e.value.code == 0, capsys.readouterr().err
    scene = trimesh.load(out)
    (geom,) = scene.geometry.values()
    image = geom.visual.material.baseColorTexture
    assert image is not None and image.size == (64, 64)
    assert geom.visual.uv.shape == (len(geom.vertices), 2)


def test_cli_mesh_texture_refuses_ply(tmp_path, capsys):
    ply = tmp_path / "sphere.ply"
    save_ply(ply, _sphere_gaussians(200))
    with pytest.raises(SystemExit) as e:
        main(["mesh", str(ply), "-o", str(tmp_path / "x.ply"), "--texture", "64"])
    assert e.value.code == 2
    assert "--texture" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bake_on_cuda_matches_cpu(baked):
    # The same texels from the GPU's rasteriser and renders (the fixture baked on the CPU with
    # the torch renderer, used here too), up to texels where visibility tests round
    # differently.
    g, mesh, out = baked
    cuda = lambda t: None if t is None else t.cuda()  # noqa: E731
    m = Mesh(cuda(mesh.vertices), cuda(mesh.faces), uvs=cuda(mesh.uvs))
    gpu = bake_texture(m, g.to("cuda"), size=SIZE, resolution=96, backend="torch")
    assert gpu.texture.device.type == "cuda"
    off = (gpu.texture.cpu() - out.texture).abs().amax(-1) > 0.02
    assert float(off.float().mean()) < 0.02


def test_bake_surface_colors_holds_the_function_at_texel_density():
    """A colour function with detail inside faces (stripes along x): the baked texture,
    rendered, matches the function at each pixel's surface point (the deferred render), where
    vertex colours cannot; bad input is one line naming the field."""
    from gs_core.meshing import bake_surface_colors

    torch.manual_seed(0)
    mesh = unwrap_uv(gaussians_to_mesh(_sphere_gaussians(), resolution=24))
    mesh = Mesh(vertices=mesh.vertices, faces=mesh.faces, uvs=mesh.uvs)

    def stripes(p):
        s = 0.5 + 0.4 * torch.sin(p[:, :1] * 25.0)
        return torch.cat([s, 1 - s, torch.full_like(s, 0.3)], -1)

    baked = bake_surface_colors(mesh, stripes, size=256)
    assert baked.texture.shape == (256, 256, 3) and baked.uvs is mesh.uvs
    cams = Cameras.orbit([30, 160], 20, radius=2.5, width=64, height=64)
    tex = render_mesh(baked, cams, background=1.0, antialias=False, mip=False)
    deferred = render_mesh(mesh, cams, background=1.0, antialias=False, surface_color=stripes)
    inside = tex.alpha[..., 0] > 0.5
    err = (tex.rgb[inside] - deferred.rgb[inside]).abs().mean()
    assert err < 0.03
    flat = Mesh(vertices=mesh.vertices, faces=mesh.faces, vertex_colors=stripes(mesh.vertices))
    by_vertex = render_mesh(flat, cams, background=1.0, antialias=False)
    assert (by_vertex.rgb[inside] - deferred.rgb[inside]).abs().mean() > 2 * err
    with pytest.raises(ValidationError, match="mesh.uvs"):
        bake_surface_colors(Mesh(vertices=mesh.vertices, faces=mesh.faces), stripes)
    with pytest.raises(ValidationError, match="color_fn"):
        bake_surface_colors(mesh, lambda p: p[:, :1], size=16)
    with pytest.raises(ValidationError, match="size"):
        bake_surface_colors(mesh, stripes, size=0)
