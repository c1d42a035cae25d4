"""CUDA-graph replay with autograd (GraphedFunction) and the graphed mesh renderer: the same
images and gradients as the eager path, fresh inputs on every replay, bad input named."""

from __future__ import annotations

import math

import pytest
import torch

from gs_core import Cameras, Mesh
from gs_core.cuda_graphs import GraphedFunction
from gs_core.errors import GS3DError, ValidationError
from gs_core.rendering.mesh_render import GraphedMeshRenderer, render_mesh


def uv_sphere(n: int = 12, r: float = 0.8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Latitude-longitude sphere: ``verts [(n + 1) 2n, 3]``, ``faces [4 n^2, 3]`` and per-vertex
    ``uvs`` (the pole faces are degenerate, which the rasteriser skips)."""
    theta = torch.linspace(0, math.pi, n + 1)[:, None]
    phi = torch.arange(2 * n)[None] * (math.pi / n)
    v = torch.stack(
        [theta.sin() * phi.cos(), theta.cos().expand(-1, 2 * n), theta.sin() * phi.sin()], -1
    ).reshape(-1, 3)
    i = torch.arange(n)[:, None] * (2 * n)
    j = torch.arange(2 * n)[None]
    a, b = i + j, i + (j + 1) % (2 * n)
    c, d = a + 2 * n, b + 2 * n
    f = torch.cat([torch.stack([a, c, b], -1), torch.stack([b, c, d], -1)]).reshape(-1, 3)
    uv = torch.stack([phi.expand(n + 1, -1) / (2 * math.pi), 1 - theta.expand(-1, 2 * n) / math.pi])
    return v * r, f, uv.permute(1, 2, 0).reshape(-1, 2)


def cams(device="cpu") -> Cameras:
    return Cameras.orbit([10.0, 130.0], 20.0, radius=2.5, width=40, height=32, device=device)


def test_graphed_function_refuses_cpu_tensors():
    g = GraphedFunction(lambda x: x * 2)
    with pytest.raises(ValidationError, match="CUDA"):
        g(torch.ones(3))
    with pytest.raises(ValidationError, match="tensors"):
        g()


def test_graphed_mesh_renderer_refuses_bad_input_by_name():
    v, f, _ = uv_sphere(4)
    with pytest.raises(ValidationError, match="faces: expected a tensor on a CUDA device"):
        GraphedMeshRenderer(f)
    with pytest.raises(ValidationError, match="faces: expected a non-empty integer tensor"):
        GraphedMeshRenderer(f.float())
    with pytest.raises(ValidationError, match="faces: expected a non-empty integer tensor"):
        GraphedMeshRenderer(torch.zeros(0, 3, dtype=torch.long))


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@cuda
def test_graphed_function_gradients_match_eager_and_refuse_stale_backward():
    def fn(x, w):
        h = torch.tanh(x @ w)
        return {"out": h.square().sum(-1), "index": h.argmax(-1)}

    g = GraphedFunction(fn)
    w = torch.randn(6, 5, device="cuda", requires_grad=True)
    for seed in range(3):  # records once, then replays with new inputs
        x = torch.randn(4, 6, device="cuda", generator=None).requires_grad_()
        torch.manual_seed(seed)
        weight = torch.rand(4, device="cuda")
        out = g(x, w)
        (out["out"] * weight).sum().backward()
        gx, gw = x.grad.clone(), w.grad.clone()
        x.grad, w.grad = None, None
        ref = fn(x, w)
        (ref["out"] * weight).sum().backward()
        assert torch.allclose(out["out"], ref["out"], atol=1e-6)
        assert torch.equal(out["index"], ref["index"])
        assert torch.allclose(gx, x.grad, atol=1e-6) and torch.allclose(gw, w.grad, atol=1e-6)
        w.grad = None
    first = g(x, w)
    kept = first["out"].detach().clone()
    g(x * 2, w)["out"].sum().backward()  # the later call's backward is fine
    assert torch.equal(first["out"].detach(), kept)  # outputs are copies
    with pytest.raises(GS3DError, match="backward of an earlier call"):
        first["out"].sum().backward()


def _loss(out, seed=0):
    w = torch.rand(out.rgb.shape, generator=torch.Generator().manual_seed(seed)).to(out.rgb)
    return (out.rgb * w).sum() + out.alpha.sum() + 0.3 * out.depth.sum() + out.normal.sum()


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("mode", ["vertex", "texture"])
def test_graphed_renderer_matches_render_mesh(mode):
    v, f, uv = uv_sphere(12)
    v, f, uv = v.cuda(), f.cuda(), uv.cuda()
    c = cams("cuda")
    gen = torch.Generator().manual_seed(0)
    renderer = GraphedMeshRenderer(f, uvs=uv if mode == "texture" else None)
    for step in range(3):  # new vertices, colours and cameras every call
        verts = (v * (1 + 0.05 * step)).requires_grad_()
        colour = (
            torch.rand(16, 16, 3, generator=gen) if mode == "texture" else torch.rand(len(v), 3)
        )
        colour = colour.cuda().requires_grad_()
        kwargs = {"texture" if mode == "texture" else "vertex_colors": colour}
        step_cams = Cameras.orbit(
            [10.0 + 20 * step, 130.0], 20.0, radius=2.5, width=40, height=32, device="cuda"
        )
        out = renderer(verts, step_cams, **kwargs)
        _loss(out).backward()
        gv, gc = verts.grad.clone(), colour.grad.clone()
        verts.grad, colour.grad = None, None
        mesh = Mesh(verts, f, vertex_colors=colour) if mode == "vertex" else None
        if mode == "texture":
            mesh = Mesh(verts, f, uvs=uv, texture=colour)
        ref = render_mesh(mesh, step_cams)
        _loss(ref).backward()
        assert torch.equal(out.meta["tri_id"], ref.meta["rast"].tri_id)
        for name in ("rgb", "alpha", "depth", "normal"):
            assert torch.allclose(getattr(out, name), getattr(ref, name), atol=1e-5), name
        assert torch.allclose(gv, verts.grad, rtol=1e-3, atol=1e-4 * float(gv.abs().max()))
        assert torch.allclose(gc, colour.grad, rtol=1e-3, atol=1e-5)
    with pytest.raises(ValidationError, match=r"faces: expected indices in \[0, 10\)"):
        renderer(v[:10], c)
    with pytest.raises(ValidationError, match="vertices: expected a float32 tensor"):
        renderer(v.double(), c)
    with pytest.raises(ValidationError, match="cameras"):
        renderer(v, cams("cpu"))
