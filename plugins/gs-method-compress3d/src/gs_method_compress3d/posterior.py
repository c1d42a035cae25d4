"""The VAE head's diagonal Gaussian over triplane latents and its KL term (Eq. 12)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DiagonalGaussian:
    """``N(mean, exp(logvar))`` with ``mean, logvar [B, 3, c', r', r']`` (logvar clamped to
    [-30, 20] as LDM's autoencoder does, so a runaway head cannot overflow ``exp``)."""

    mean: torch.Tensor
    logvar: torch.Tensor

    def __post_init__(self) -> None:
        self.logvar = self.logvar.clamp(-30.0, 20.0)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(
            self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
        )
        return self.mean + torch.exp(0.5 * self.logvar) * noise

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """``KL(N(mean, var) || N(0, 1))`` summed over a latent, ``[B]`` (LDM's convention)."""
        kl = 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar)
        return kl.flatten(1).sum(1)


__all__ = ["DiagonalGaussian"]
