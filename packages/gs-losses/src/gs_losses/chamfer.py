"""Chamfer distance between point sets and AGG's attribute Chamfer loss on Gaussians.

Correspondences come from :func:`gs_core.points.nearest_neighbors`: blockwise (the ``[B, N, M]``
distance matrix is never held whole, only ``[B, chunk, M]`` slices of at most
``max_block_elements`` entries), both directions from one pass, without autograd. Distances to
the found neighbours are then recomputed from the inputs, so the gradient is the usual Chamfer
subgradient and the backward pass costs O(N + M) memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch

from gs_core.errors import ValidationError
from gs_core.gaussians import Gaussians, sh0_to_rgb
from gs_core.points import gather_points, nearest_neighbors
from gs_losses.terms import LossTerms

# 2^26 float32 entries = 256 MiB per block; 16k x 16k points take 4 blocks.
DEFAULT_BLOCK_ELEMENTS = 1 << 26


def _as_batched_points(x: torch.Tensor, field: str, dim: int | None = None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim not in (2, 3):
        got = (
            f"shape {tuple(x.shape)}, {x.dtype}"
            if isinstance(x, torch.Tensor)
            else type(x).__name__
        )
        raise ValidationError(field, "a float tensor [B, N, D] (or [N, D])", got)
    if dim is not None and x.shape[-1] != dim:
        raise ValidationError(field, f"last dim {dim}", f"shape {tuple(x.shape)}")
    if x.shape[-2] == 0:
        raise ValidationError(field, "at least one point", f"shape {tuple(x.shape)}")
    return x if x.ndim == 3 else x.unsqueeze(0)


def _nearest_both_ways(
    a: torch.Tensor, b: torch.Tensor, max_block_elements: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``idx_ab [B, N]``, ``idx_ba [B, M]`` for ``a [B, N, D]``, ``b [B, M, D]`` (no gradient)."""
    # the search counts float32 bytes per block
    return nearest_neighbors(a.detach(), b.detach(), max_bytes=4 * max_block_elements)


def chamfer_distance(
    a: torch.Tensor,
    b: torch.Tensor,
    squared: bool = True,
    reduction: Literal["mean", "none"] = "mean",
    max_block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> torch.Tensor:
    """Symmetric Chamfer distance between point sets.

    ``CD(A, B) = 1/|A| sum_a min_b d(a, b) + 1/|B| sum_b min_a d(a, b)`` with ``d`` the
    squared (default, as pytorch3d) or plain Euclidean distance.

    Args:
        a: ``[B, N, 3]`` (or ``[N, 3]``); b: ``[B, M, 3]`` (or ``[M, 3]``); any point dim D works.
        reduction: ``"mean"`` over the batch (a scalar) or ``"none"`` (``[B]``).

    Returns:
        The distance, differentiable in ``a`` and ``b``.
    """
    a3 = _as_batched_points(a, "chamfer_distance(a)")
    b3 = _as_batched_points(b, "chamfer_distance(b)", a3.shape[-1])
    idx_ab, idx_ba = _nearest_both_ways(a3, b3, max_block_elements)
    d_ab = (a3 - gather_points(b3, idx_ab)).square().sum(-1)
    d_ba = (b3 - gather_points(a3, idx_ba)).square().sum(-1)
    if not squared:
        # sqrt'(0) is infinite; coincident points get a zero gradient instead of NaN.
        d_ab = d_ab.clamp_min(1e-20).sqrt()
        d_ba = d_ba.clamp_min(1e-20).sqrt()
    per_batch = d_ab.mean(1) + d_ba.mean(1)
    if reduction == "none":
        return per_batch
    if reduction == "mean":
        return per_batch.mean()
    raise ValidationError("chamfer_distance(reduction)", "'mean' or 'none'", repr(reduction))


def gaussian_attributes(g: Gaussians) -> dict[str, torch.Tensor]:
    """The attributes AGG's Chamfer loss compares: ``xyz``, ``opacity`` and diffuse ``rgb``.

    Colour is the degree-0 SH coefficient turned into RGB (INRIA convention); shapes
    ``[B, N, 3]``, ``[B, N, 1]`` and ``[B, N, 3]`` with any batch dims flattened into ``B``.
    """
    n = g.num_gaussians
    return {
        "xyz": g.means.reshape(-1, n, 3),
        "opacity": g.opacities.reshape(-1, n, 1),
        "rgb": sh0_to_rgb(g.sh[..., 0, :]).reshape(-1, n, 3),
    }


def attribute_chamfer(
    pred: Gaussians | Mapping[str, torch.Tensor],
    target: Gaussians | Mapping[str, torch.Tensor],
    w1: float = 1.0,
    w2: float = 1.0,
    max_block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> LossTerms:
    """AGG's Chamfer loss on Gaussian attributes (AGG section 3.4.2, the equation there).

    ``L(f) = w1/|P1| sum_{i in P1} ||f_1i - f_2j(i)||_1 + w2/|P2| sum_{j in P2} ||f_2j - f_1i(j)||_1``

    where ``j(i) = argmin_j ||p_1i - p_2j||^2`` and ``i(j)`` likewise: correspondences come from
    the Gaussians' means only (in both directions, without gradient) and each attribute ``f`` -
    location, opacity, colour - is compared with an L1 norm over its channels. ``P1`` is the
    prediction, ``P2`` the pseudo label.

    Args:
        pred, target: :class:`~gs_core.gaussians.Gaussians` (compared on ``xyz``, ``opacity``,
            ``rgb``, see :func:`gaussian_attributes`) or dicts of ``[B, N, F]`` tensors that
            hold ``"xyz"`` ``[B, N, 3]`` and the same keys in both.
        w1, w2: weights of the prediction->label and label->prediction directions.

    Returns:
        One term per attribute, ``{"xyz": ..., "opacity": ..., "rgb": ...}``, each averaged over
        the batch.
    """
    p = gaussian_attributes(pred) if isinstance(pred, Gaussians) else dict(pred)
    q = gaussian_attributes(target) if isinstance(target, Gaussians) else dict(target)
    if "xyz" not in p or "xyz" not in q:
        raise ValidationError(
            "attribute_chamfer", "attributes including 'xyz' (the Gaussians' means)", str(sorted(p))
        )
    if set(p) != set(q):
        raise ValidationError(
            "attribute_chamfer(target)", f"the attributes of pred {sorted(p)}", str(sorted(q))
        )
    p = {k: _as_batched_points(v, f"attribute_chamfer(pred[{k!r}])") for k, v in p.items()}
    q = {k: _as_batched_points(v, f"attribute_chamfer(target[{k!r}])") for k, v in q.items()}
    bsz, n = p["xyz"].shape[:2]
    m = q["xyz"].shape[1]
    for k in p:
        if (
            p[k].shape[:2] != (bsz, n)
            or q[k].shape[:2] != (bsz, m)
            or p[k].shape[-1] != q[k].shape[-1]
        ):
            raise ValidationError(
                f"attribute_chamfer[{k!r}]",
                f"pred [B={bsz}, N={n}, F] and target [B={bsz}, M={m}, F] with one F",
                f"{tuple(p[k].shape)} and {tuple(q[k].shape)}",
            )
    idx_pq, idx_qp = _nearest_both_ways(p["xyz"], q["xyz"], max_block_elements)
    terms: LossTerms = {}
    for k in p:
        fwd = (p[k] - gather_points(q[k], idx_pq)).abs().sum(-1).mean(1)
        bwd = (q[k] - gather_points(p[k], idx_qp)).abs().sum(-1).mean(1)
        terms[k] = (w1 * fwd + w2 * bwd).mean()
    return terms
