"""The CUDA-graph argument contract of DD3G's graphed paths (model and benchmark), on a CPU.

A :class:`~gs_core.cuda_graphs.GraphedCallable` is called with the stage's input tensors,
copies them into static buffers and replays what it recorded; a call without tensors, or a
function that reads its changing inputs from anywhere but its arguments, breaks on a GPU only.
``ContractGraph`` keeps that contract (static input buffers, tensor-tree outputs) and runs
eagerly, so these tests fail on a CPU where the real graph would fail or go stale on a GPU.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import gs_core.cuda_graphs as cuda_graphs
from gs_core.errors import ValidationError
from gs_core.testing import tiny_rgba_images
from gs_method_dd3g import DD3G, DD3GConfig, gaussians_from_attributes
from gs_method_dd3g.cameras import plucker_inputs

BENCHMARK = Path(__file__).resolve().parents[3] / "benchmarks" / "dd3g.py"


class ContractGraph:
    """GraphedCallable's calling contract without CUDA: ``ContractGraph(fn, module)(*tensors)``;
    the first call "records" into static buffers, later calls copy into them and re-run."""

    def __init__(self, fn, module=None, warmup: int = 2, max_recordings: int = 4):
        self.fn = fn
        self.module = module
        self.static: list[torch.Tensor] | None = None
        self.calls = 0

    def __call__(self, *args):
        if not args or not all(isinstance(a, torch.Tensor) for a in args):
            raise ValidationError("GraphedCallable arguments", "one or more tensors", repr(args))
        sig = [(a.shape, a.dtype) for a in args]
        if self.static is None or sig != [(s.shape, s.dtype) for s in self.static]:
            self.static = [a.detach().clone() for a in args]
        for s, a in zip(self.static, args, strict=True):
            s.copy_(a)
        out = self.fn(*self.static)
        leaves: list[torch.Tensor] = []
        spec = cuda_graphs._flatten(out, leaves)  # raises on non-tensor outputs, as the real one
        self.calls += 1
        return cuda_graphs._unflatten(spec, [t.clone() for t in leaves], [0])


def _tiny(**overrides) -> DD3G:
    torch.manual_seed(0)
    return DD3G(DD3GConfig.preset("tiny", **overrides)).eval()


def test_contract_graph_refuses_what_the_real_one_refuses():
    g = ContractGraph(lambda x: x * 2)
    with pytest.raises(ValidationError, match="one or more tensors"):
        g()
    with pytest.raises(ValidationError, match="tuples, lists or dicts"):
        ContractGraph(lambda x: {"n": 3})(torch.zeros(1))
    # Replays read the new inputs through the static buffers.
    assert torch.equal(g(torch.ones(2)), torch.full((2,), 2.0))
    assert torch.equal(g(torch.full((2,), 3.0)), torch.full((2,), 6.0))


@pytest.mark.parametrize("generator", ["pepd", "splatter"])
def test_model_graphed_path_matches_eager_for_new_inputs(monkeypatch, generator):
    """Every attribute of the Gaussians comes through the graph, Splatter Image's band-1 SH
    coefficients included."""
    monkeypatch.setattr(cuda_graphs, "GraphedCallable", ContractGraph)
    m = _tiny(generator=generator)
    encode, pepd = m._graphed()
    for seed in (0, 1):  # the second call replays with other inputs
        gen = torch.Generator().manual_seed(seed)
        az, el, noise = m.sample_inputs(2, gen)
        rays = plucker_inputs(m.view_cameras(az, el), m.config.latent_size)
        rgb = m.input_rgb(tiny_rgba_images(2, 32, seed=seed))
        with torch.no_grad():
            tokens = encode(rgb)
            got = pepd(tokens, noise, rays)
            want = m(rgb, noise, rays)
        torch.testing.assert_close(tokens, m.encoder(rgb))
        names = {"position", "log_scale", "rotation", "color", "opacity"}
        assert set(got) == names | ({"sh_rest"} if generator == "splatter" else set())
        for k in got:
            torch.testing.assert_close(got[k], want[k])
    graphs = m.__dict__["_cuda_graphs"]
    assert graphs[1].calls == 2
    # The splatter baseline's encoder hands the image on: no graph, which would be empty.
    assert graphs[0] is m.encoder if generator == "splatter" else graphs[0].calls == 2
    degree = 1 if generator == "splatter" else 0
    assert gaussians_from_attributes(got).sh_degree == degree
    assert m.generate(tiny_rgba_images(1, 32), seed=3).gaussians.sh_degree == degree


def _benchmark():
    spec = importlib.util.spec_from_file_location("dd3g_benchmark", BENCHMARK)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_stages_keep_the_graph_contract():
    bench = _benchmark()
    m = bench.build_model("tiny", torch.device("cpu"), torch.float32)
    rows = bench.measure(m, 2, torch.float32, ("eager", "graphed"), 1, 0, ContractGraph)
    assert [r["mode"] for r in rows] == ["eager", "graphed"]
    for r in rows:
        for k in ("encoder", "pe", "pd", "heads", "total"):
            assert r[f"{k}_ms"] > 0
        assert r["per_object_ms"] == pytest.approx(r["total_ms"] / 2)
