"""Inverse-distance feature interpolation over the three nearest points, against its formula."""

from __future__ import annotations

import torch

from gs_nets import interpolate_features


def test_interpolate_features_formula():
    torch.manual_seed(0)
    ref_xyz, feats = torch.randn(2, 20, 3), torch.randn(2, 20, 4)
    q = torch.randn(2, 6, 3)
    out = interpolate_features(q, ref_xyz, feats)
    for b in range(2):
        for i in range(6):
            d2 = ((ref_xyz[b] - q[b, i]) ** 2).sum(-1)
            nn3 = d2.argsort()[:3]
            w = 1 / d2[nn3]
            torch.testing.assert_close(out[b, i], (feats[b, nn3] * (w / w.sum())[:, None]).sum(0))
    # a query on a reference point copies that point's features
    torch.testing.assert_close(interpolate_features(ref_xyz[:, :3], ref_xyz, feats), feats[:, :3])
