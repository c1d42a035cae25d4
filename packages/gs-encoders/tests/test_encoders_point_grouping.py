"""OpenShape's set abstraction groups its patches by the official rule: 384 (here 16) centres
by farthest point sampling from point 0, then a ball (or the k nearest) around each."""

import numpy as np
import pytest
import torch

from gs_encoders import OpenShapeConfig
from gs_encoders.openshape import _SetAbstraction

_BN_SCALE = (1 + 1e-5) ** -1.5  # three eval BatchNorms at their initial statistics


def _fps_reference(pts: np.ndarray, m: int) -> list[int]:
    chosen = [0]
    while len(chosen) < m:
        d = np.min(((pts[:, None, :] - pts[None, chosen, :]) ** 2).sum(-1), axis=1)
        chosen.append(int(np.argmax(d)))
    return chosen


def _max_member_index_sa(cfg: OpenShapeConfig) -> _SetAbstraction:
    """A set abstraction whose first output channel is the largest point index in each patch
    (input channels: relative xyz, then the point's index)."""
    sa = _SetAbstraction(4, (64, 64, cfg.sa_dim), cfg).eval()
    with torch.no_grad():
        for conv in sa.mlp_convs:
            conv.weight.zero_()
            conv.bias.zero_()
        sa.mlp_convs[0].weight[0, 3] = 1.0
        sa.mlp_convs[1].weight[0, 0] = 1.0
        sa.mlp_convs[2].weight[0, 0] = 1.0
    return sa


@pytest.mark.parametrize("grouping", ["ball", "knn"])
def test_patches_are_fps_centres_with_their_ball_or_nearest_points(grouping):
    cfg = OpenShapeConfig.preset("tiny", grouping=grouping)
    g = torch.Generator().manual_seed(0)
    xyz = torch.rand(2, 200, 3, generator=g) * 2 - 1
    index = torch.arange(200, dtype=torch.float32).expand(2, 200)[..., None]
    with torch.no_grad():
        centres, feats = _max_member_index_sa(cfg)(xyz, index)
    for b in range(2):
        pts = xyz[b].double().numpy()
        centre_idx = _fps_reference(pts, cfg.num_patches)
        torch.testing.assert_close(centres[b], xyz[b, centre_idx])
        for s, c in enumerate(centre_idx):
            d2 = ((pts - pts[c]) ** 2).sum(-1)
            if grouping == "ball":
                inside = np.flatnonzero(d2 <= cfg.ball_radius**2)[: cfg.group_size]
            else:
                inside = np.argsort(d2, kind="stable")[: cfg.group_size]
            assert feats[b, s, 0].item() == pytest.approx(inside.max() * _BN_SCALE, rel=1e-5)
