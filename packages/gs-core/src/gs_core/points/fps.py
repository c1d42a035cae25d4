"""Farthest point sampling (PointNet++ / PVCNN's ``furthest_point_sample``).

The reference CUDA op starts from a given point and repeatedly takes the point whose distance
to the already chosen set is largest (first index on ties). The loop here does the same with one
``[B, N]`` running-minimum buffer, so memory is ``O(B * N)`` whatever ``M``. Distances are
float32 whatever the input dtype: bf16 coordinates would reorder the picks.

FPS is sequential: ``M`` iterations of a few small kernels, where Python dispatch, not the GPU,
is the cost. On CUDA, clouds of up to 32,768 points therefore run as one Triton kernel
(:mod:`gs_core.points.fps_triton`) when Triton is installed; otherwise blocks of iterations are
recorded once as a CUDA graph per ``(B, N, device)`` and replayed (``cuda_graph=True``). All
paths give the same indices.
"""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError
from gs_core.points import fps_triton
from gs_core.triton_support import triton_available

_GRAPH_BLOCK = 64
_GRAPHS: dict[tuple[int, int, int], _FPSGraph] = {}


def _fps_step(
    pts: torch.Tensor, min_d2: torch.Tensor, cur: torch.Tensor, out: torch.Tensor
) -> None:
    """One iteration, in place: record ``cur`` in ``out``, update distances, pick the next."""
    b = pts.shape[0]
    out.copy_(cur)
    center = torch.gather(pts, 1, cur.view(b, 1, 1).expand(b, 1, 3))
    torch.minimum(min_d2, (pts - center).square_().sum(-1), out=min_d2)
    cur.copy_(min_d2.argmax(dim=-1))


class _FPSGraph:
    """Static buffers and a CUDA graph running ``_GRAPH_BLOCK`` FPS iterations."""

    def __init__(self, b: int, n: int, device: torch.device):
        self.pts = torch.zeros(b, n, 3, device=device)
        self.min_d2 = torch.full((b, n), float("inf"), device=device)
        self.cur = torch.zeros(b, dtype=torch.long, device=device)
        self.out = torch.zeros(b, _GRAPH_BLOCK, dtype=torch.long, device=device)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # warm-up outside the capture (lazy init, workspaces)
            self._body()
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            self._body()

    def _body(self) -> None:
        for j in range(_GRAPH_BLOCK):
            _fps_step(self.pts, self.min_d2, self.cur, self.out[:, j])

    def run(self, pts: torch.Tensor, m: int, start: torch.Tensor) -> torch.Tensor:
        self.pts.copy_(pts)
        self.min_d2.fill_(float("inf"))
        self.cur.copy_(start)
        idx = torch.empty(pts.shape[0], m, dtype=torch.long, device=pts.device)
        full = m // _GRAPH_BLOCK
        for t in range(full):
            self.graph.replay()
            idx[:, t * _GRAPH_BLOCK : (t + 1) * _GRAPH_BLOCK] = self.out
        for i in range(full * _GRAPH_BLOCK, m):
            _fps_step(self.pts, self.min_d2, self.cur, idx[:, i])
        return idx


def _start_indices(start_index: int | torch.Tensor, b: int, n: int, device) -> torch.Tensor:
    """``[B]`` int64 first picks on ``device`` from an int or a ``[B]`` / scalar tensor."""
    if isinstance(start_index, torch.Tensor):
        if start_index.is_floating_point() or start_index.numel() not in (1, b):
            raise ValidationError(
                "start_index",
                f"an int or [B={b}] int indices",
                f"{start_index.dtype} {tuple(start_index.shape)}",
            )
        start = start_index.to(device=device, dtype=torch.long).reshape(-1).expand(b)
        if start.numel() and not bool(((start >= 0) & (start < n)).all()):
            raise ValidationError("start_index", f"indices in [0, N={n})", str(start.tolist()))
        return start.clone()
    if not 0 <= start_index < n:
        raise ValidationError("start_index", f"an int in [0, N={n})", str(start_index))
    return torch.full((b,), start_index, dtype=torch.long, device=device)


@torch.no_grad()
def farthest_point_sample(
    xyz: torch.Tensor,
    num_samples: int,
    start_index: int | torch.Tensor = 0,
    cuda_graph: bool | None = None,
    use_triton: bool | None = None,
) -> torch.Tensor:
    """Indices of ``num_samples`` farthest-point samples of each cloud.

    Args:
        xyz: ``[B, N, 3]`` points.
        num_samples: ``M <= N``.
        start_index: the first sample, one int for every cloud (PVCNN / PointNet++ use 0) or
            ``[B]`` indices (dgl, as OpenShape uses it, starts at a random point).
        cuda_graph: replay recorded CUDA graphs (default: on CUDA when ``M >= 64``); the
            result is the same either way.
        use_triton: the single-kernel Triton path (default: on CUDA when Triton imports and
            ``N <= 32768``).

    Returns:
        ``[B, M]`` int64 indices into ``N``; ``idx[:, 0] == start_index``.
    """
    if not isinstance(xyz, torch.Tensor) or xyz.ndim != 3 or xyz.shape[-1] != 3:
        got = f"shape {tuple(xyz.shape)}" if isinstance(xyz, torch.Tensor) else type(xyz).__name__
        raise ValidationError("xyz", "shape [B, N, 3]", got)
    b, n, _ = xyz.shape
    if not 0 < num_samples <= n:
        raise ValidationError("num_samples", f"an int in [1, N={n}]", str(num_samples))
    start = _start_indices(start_index, b, n, xyz.device)
    if use_triton is None:
        use_triton = xyz.is_cuda and n <= fps_triton.MAX_POINTS and triton_available()
    if use_triton and not (xyz.is_cuda and n <= fps_triton.MAX_POINTS):
        raise ValidationError(
            "use_triton", f"a CUDA tensor with N <= {fps_triton.MAX_POINTS}", f"{xyz.device}, N={n}"
        )
    if use_triton:
        with torch.autocast(device_type="cuda", enabled=False):
            return fps_triton.farthest_point_sample_triton(xyz.float(), num_samples, start)
    if cuda_graph is None:
        cuda_graph = xyz.is_cuda and num_samples >= _GRAPH_BLOCK
    if cuda_graph and not xyz.is_cuda:
        raise ValidationError("cuda_graph", "False for a tensor off CUDA", str(xyz.device))
    with torch.autocast(device_type=xyz.device.type, enabled=False):
        pts = xyz.float()
        if cuda_graph:
            key = (b, n, xyz.device.index or 0)
            if key not in _GRAPHS:
                _GRAPHS[key] = _FPSGraph(b, n, xyz.device)
            return _GRAPHS[key].run(pts, num_samples, start)
        idx = torch.empty(b, num_samples, dtype=torch.long, device=xyz.device)
        min_d2 = torch.full((b, n), float("inf"), device=xyz.device)
        for i in range(num_samples):
            _fps_step(pts, min_d2, start, idx[:, i])
    return idx


__all__ = ["farthest_point_sample"]
