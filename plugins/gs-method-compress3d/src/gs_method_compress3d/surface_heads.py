"""FlexiCubes and colour heads on the decoded triplane (Sec. 3.1, "Decoder").

* SDF and deformation: "we concatenate the triplane features of each vertex to predict the SDF
  and deformation using another 2 MLP layers" -> two MLPs on the ``3C`` features of each grid
  vertex.
* Cube weights: "we concatenate the triplane features of the eight vertices of each cube and
  predict the cube weight using an MLP layer" -> an MLP on ``8 * 3C`` features giving the 21
  FlexiCubes weights (beta 12, alpha 8, gamma 1). Its first linear layer on the concatenation
  equals the sum over corners of a per-corner linear map of that corner's features; we compute
  it that way (8 projections per vertex, gathered per cube) so the ``[N_c, 8 * 3C]``
  concatenation (2.2 GB at the paper's grid) is never built.
* Colour: an MLP on the triplane features at surface points (the mesh vertices).

The SDF is ``mlp(features) + |x| - init_radius``: a sphere until the MLP learns otherwise (the
last layers of the SDF, deformation and weight MLPs start at zero), so an untrained decoder
already yields a closed surface, as SDF networks are commonly initialised (IGR / threestudio's
sphere initialisation).
"""

from __future__ import annotations

import torch
from torch import nn

from gs_nets import sample_triplane


def _mlp(in_dim: int, hidden: int, out_dim: int, layers: int, zero_last: bool) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden), nn.SiLU()]
        d = hidden
    last = nn.Linear(d, out_dim)
    if zero_last:
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    mods.append(last)
    return nn.Sequential(*mods)


class SurfaceHeads(nn.Module):
    """Heads reading ``planes [B, 3, C, R, R]`` at points in ``[-1, 1]^3``."""

    def __init__(self, channels: int, hidden: int, layers: int, init_radius: float = 0.5):
        super().__init__()
        feat = 3 * channels
        self.init_radius = init_radius
        self.sdf = _mlp(feat, hidden, 1, layers, zero_last=True)
        self.deform = _mlp(feat, hidden, 3, layers, zero_last=True)
        self.weight_in = nn.Linear(feat, 8 * hidden)  # per-corner slices of the first layer
        self.weight_out = _mlp(hidden, hidden, 21, max(layers - 1, 1), zero_last=True)
        self.hidden = hidden
        self.color = _mlp(feat, hidden, 3, layers, zero_last=False)

    def _features(self, planes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Triplane features at ``points`` in the heads' dtype (the geometry stays float32 in a
        model cast to half precision; the heads' outputs come back as float32)."""
        return sample_triplane(planes, points).to(self.weight_in.weight.dtype)

    def vertex_fields(
        self, planes: torch.Tensor, points: torch.Tensor, cubes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """FlexiCubes inputs of one shape.

        Args:
            planes: ``[3, C, R, R]``; points: ``[N_v, 3]`` grid vertices in ``[-1, 1]^3``;
            cubes: ``[N_c, 8]`` corner indices into ``points``.

        Returns:
            ``sdf [N_v]``, ``deform [N_v, 3]`` (raw; FlexiCubes bounds it), ``weights [N_c, 21]``.
        """
        f = self._features(planes, points)  # [N_v, 3C]
        sdf = self.sdf(f)[..., 0].float() + points.norm(dim=-1) - self.init_radius
        deform = self.deform(f).float()
        corner = self.weight_in(f).reshape(-1, 8, self.hidden)  # [N_v, 8, H]
        k = torch.arange(8, device=cubes.device)
        h = corner[cubes, k].sum(1)  # [N_c, H]: the first layer on the 8 concatenated corners
        weights = self.weight_out(torch.nn.functional.silu(h)).float()
        return sdf, deform, weights

    def sdf_at(self, planes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """SDF ``[N]`` of ``planes [3, C, R, R]`` at any ``points [N, 3]`` in ``[-1, 1]^3``."""
        f = self._features(planes, points)
        return self.sdf(f)[..., 0].float() + points.norm(dim=-1) - self.init_radius

    def colors(self, planes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """``planes [3, C, R, R]``, ``points [N, 3]`` in ``[-1, 1]^3`` -> RGB ``[N, 3]`` in (0, 1)."""
        return torch.sigmoid(self.color(self._features(planes, points)).float())


__all__ = ["SurfaceHeads"]
