"""GraphedCallable: replayed CUDA graphs give the eager results and re-record when they must."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gs_core.cuda_graphs import GraphedCallable

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_graphed_callable_refuses_cpu_tensors():
    g = GraphedCallable(lambda x: x * 2)
    with pytest.raises(ValueError, match="CUDA"):
        g(torch.ones(3))
    with pytest.raises(ValueError, match="tensors"):
        g()


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 16)
        self.b = nn.Linear(16, 4)

    def forward(self, x, y):
        h = torch.relu(self.a(x))
        return {"out": self.b(h) + y.mean(), "pair": (h.sum(-1), x.shape[0] * h[:, :2])}


@pytest.mark.gpu
@cuda
def test_graphed_callable_matches_eager_and_rerecords():
    torch.manual_seed(0)
    net = _Net().cuda().eval()
    g = GraphedCallable(net, net)
    x, y = torch.randn(5, 8, device="cuda"), torch.randn(3, device="cuda")
    with torch.no_grad():
        ref = net(x, y)
        got = g(x, y)
        torch.testing.assert_close(got["out"], ref["out"])
        torch.testing.assert_close(got["pair"][1], ref["pair"][1])
        assert isinstance(got["pair"], tuple)
        # new inputs are copied in; earlier outputs are not overwritten by the replay
        x2 = torch.randn(5, 8, device="cuda")
        got2 = g(x2, y)
        torch.testing.assert_close(got2["out"], net(x2, y)["out"])
        torch.testing.assert_close(got["out"], ref["out"])
        assert len(g._recordings) == 1
        # another shape records again
        x3 = torch.randn(7, 8, device="cuda")
        torch.testing.assert_close(g(x3, y)["out"], net(x3, y)["out"])
        assert len(g._recordings) == 2
        # in-place weight updates are seen by the replay
        net.b.bias.add_(1.0)
        torch.testing.assert_close(g(x, y)["out"], net(x, y)["out"])
        assert len(g._recordings) == 2
        # a replaced parameter is a new signature, never a replay over its old memory
        net.b.weight = nn.Parameter(net.b.weight.detach().clone() * 2)
        torch.testing.assert_close(g(x, y)["out"], net(x, y)["out"])
        assert len(g._recordings) == 3
        with torch.autocast("cuda", dtype=torch.bfloat16):
            torch.testing.assert_close(g(x, y)["out"], net(x, y)["out"])
    assert len(g._recordings) == 4
    g.clear()
    assert not g._recordings


class _SlicingBlock(torch.nn.Module):
    """Slices its ModuleList in forward, as diffusers' mid blocks do."""

    def __init__(self):
        super().__init__()
        self.nets = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(3)])

    def forward(self, x):
        x = self.nets[0](x)
        for net in self.nets[1:]:
            x = net(x)
        return x


def test_registration_counter_does_not_recompile_compiled_modules():
    """The module-registration counter must not become a dynamo guard: a compiled forward that
    builds a ModuleList (a slice) compiles once, not once per call."""
    import torch._dynamo

    torch._dynamo.reset()
    block = _SlicingBlock()
    compiled = torch.compile(block, backend="eager", dynamic=False)
    x = torch.randn(2, 4)
    with torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(3):
            out = compiled(x)
    assert torch.allclose(out, block(x))
    torch._dynamo.reset()
