"""Deferred shading in ``render_mesh(surface_color=fn)``: a colour function queried at each
pixel's world-space surface point. CPU, well under a second.

A linear colour function is the exact check: interpolating it at the vertices with the
perspective-correct barycentrics equals evaluating it at the interpolated point, so the deferred
image must match the vertex-colour image pixel for pixel, silhouettes (antialiasing) included.
"""

from __future__ import annotations

import pytest
import torch

from gs_core import Cameras, Mesh
from gs_core.errors import ValidationError
from gs_core.rendering.mesh_render import render_mesh

pytestmark = pytest.mark.usefixtures("one_thread")


def _cube() -> Mesh:
    v = torch.tensor(
        [[x, y, z] for x in (-0.4, 0.4) for y in (-0.4, 0.4) for z in (-0.4, 0.4)],
        dtype=torch.float32,
    )
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = [t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))]
    return Mesh(vertices=v, faces=torch.tensor(faces))


CAMS = Cameras.orbit([20, 110, 250], 25, radius=2.5, width=48, height=48)
A = torch.tensor([[0.6, -0.2, 0.1], [0.3, 0.5, -0.4], [-0.1, 0.2, 0.7]])
B = torch.tensor([0.5, 0.5, 0.5])


def _linear(p: torch.Tensor) -> torch.Tensor:
    return p @ A.T + B


@pytest.fixture(params=["covered", "every-pixel"])
def pixels(request, monkeypatch):
    """The CPU's path (only covered pixels) and the accelerators' (every pixel, masked)."""
    from gs_core.rendering import mesh_raster

    if request.param == "every-pixel":
        monkeypatch.setattr(mesh_raster, "_dense", lambda t: True)
    return request.param


@pytest.mark.parametrize("antialias", [False, True])
def test_a_linear_colour_function_matches_vertex_colours(antialias, pixels):
    cube = _cube()
    by_vertex = Mesh(vertices=cube.vertices, faces=cube.faces, vertex_colors=_linear(cube.vertices))
    ref = render_mesh(by_vertex, CAMS, background=1.0, antialias=antialias)
    out = render_mesh(cube, CAMS, background=1.0, antialias=antialias, surface_color=_linear)
    assert ref.alpha.sum() > 500  # the cube fills part of every view
    torch.testing.assert_close(out.rgb, ref.rgb, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.alpha, ref.alpha)


def test_detail_inside_a_face_is_resolved_and_takes_precedence_over_vertex_colours(pixels):
    """Stripes along x are invisible to vertex colours (every vertex sits at x = +-0.4, where the
    stripe function is the same) but show per pixel; the function wins over vertex colours."""
    cube = _cube()
    flat = torch.full((8, 3), 0.5)
    mesh = Mesh(vertices=cube.vertices, faces=cube.faces, vertex_colors=flat)

    def stripes(p):
        s = (torch.sin(p[:, :1] * 20.0) > 0).to(p.dtype)
        return s.expand(-1, 3)

    out = render_mesh(mesh, CAMS, background=1.0, antialias=False, surface_color=stripes)
    covered = out.alpha[..., 0] > 0.5
    seen = out.rgb[covered][:, 0]
    assert (seen < 0.01).sum() > 100 and (seen > 0.99).sum() > 100  # both stripes visible
    plain = render_mesh(mesh, CAMS, background=1.0, antialias=False)
    assert torch.allclose(plain.rgb[covered], torch.tensor(0.5))


def test_gradients_reach_the_colour_function_and_the_vertices(pixels):
    cube = _cube()
    verts = cube.vertices.clone().requires_grad_(True)
    weight = A.clone().requires_grad_(True)
    out = render_mesh(
        Mesh(vertices=verts, faces=cube.faces),
        CAMS,
        background=1.0,
        surface_color=lambda p: p @ weight.T + B,
    )
    out.rgb.sum().backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    assert verts.grad is not None and verts.grad.abs().sum() > 0


def test_a_colour_function_of_the_wrong_shape_is_refused_naming_the_field(pixels):
    with pytest.raises(ValidationError, match="surface_color"):
        render_mesh(_cube(), CAMS, surface_color=lambda p: p[:, :2])


@pytest.mark.gpu
def test_on_cuda_a_linear_colour_function_matches_vertex_colours():
    cube = _cube()
    dev = torch.device("cuda")
    verts, faces = cube.vertices.to(dev), cube.faces.to(dev)
    a, b = A.to(dev), B.to(dev)
    by_vertex = Mesh(vertices=verts, faces=faces, vertex_colors=verts @ a.T + b)
    ref = render_mesh(by_vertex, CAMS, background=1.0)
    out = render_mesh(Mesh(vertices=verts, faces=faces), CAMS, background=1.0,
                      surface_color=lambda p: p @ a.T + b)  # fmt: skip
    assert ref.alpha.sum() > 500
    torch.testing.assert_close(out.rgb, ref.rgb, atol=1e-5, rtol=0)
