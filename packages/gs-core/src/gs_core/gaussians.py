"""Render-ready 3D Gaussians, the one type every method produces and every renderer consumes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gs_core.errors import ValidationError

# Zeroth-order real spherical harmonic, Y_0^0 = 1 / (2 sqrt(pi)). The INRIA convention stores
# colour as SH coefficients with rgb = 0.5 + SH_C0 * f_dc.
SH_C0 = 0.28209479177387814


def rgb_to_sh0(rgb: torch.Tensor) -> torch.Tensor:
    """Diffuse colour in [0, 1] -> degree-0 SH coefficient (INRIA convention)."""
    return (rgb - 0.5) / SH_C0


def sh0_to_rgb(sh0: torch.Tensor) -> torch.Tensor:
    """Degree-0 SH coefficient -> diffuse colour (unclamped)."""
    return sh0 * SH_C0 + 0.5


def _shape(t: torch.Tensor) -> str:
    return f"shape {tuple(t.shape)}"


@dataclass(frozen=True, eq=False)
class Gaussians:
    """Activated 3DGS parameters, optionally with leading batch dims (as in gsplat).

    Fields:
        means:     ``[..., N, 3]`` world-space centres.
        quats:     ``[..., N, 4]`` unit quaternions, ``wxyz``.
        scales:    ``[..., N, 3]`` linear (positive) standard deviations along the local axes.
        opacities: ``[..., N]`` in ``[0, 1]``.
        sh:        ``[..., N, K, 3]`` SH coefficients; ``K = (sh_degree + 1) ** 2``.

    Construction validates shapes, finiteness and ranges and raises
    :class:`~gs_core.errors.ValidationError` naming the offending field. Use
    ``Gaussians.from_raw`` / ``to_raw`` to move between this type and unconstrained
    optimisable parameters.
    """

    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    sh: torch.Tensor

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self, check_values: bool = True) -> None:
        fields = {
            "means": self.means,
            "quats": self.quats,
            "scales": self.scales,
            "opacities": self.opacities,
            "sh": self.sh,
        }
        for name, t in fields.items():
            if not isinstance(t, torch.Tensor):
                raise ValidationError(f"Gaussians.{name}", "a torch.Tensor", type(t).__name__)
            if not t.is_floating_point():
                raise ValidationError(f"Gaussians.{name}", "a floating-point tensor", str(t.dtype))
        m = self.means
        if m.ndim < 2 or m.shape[-1] != 3:
            raise ValidationError("Gaussians.means", "shape [..., N, 3]", _shape(m))
        lead, n = tuple(m.shape[:-2]), m.shape[-2]
        expect = {
            "quats": (*lead, n, 4),
            "scales": (*lead, n, 3),
            "opacities": (*lead, n),
        }
        for name, shp in expect.items():
            t = fields[name]
            if tuple(t.shape) != shp:
                dims = ", ".join(["..."] if lead else []) + (", " if lead else "")
                want = {"quats": "N, 4", "scales": "N, 3", "opacities": "N"}[name]
                raise ValidationError(
                    f"Gaussians.{name}",
                    f"shape [{dims}{want}] = {shp} to match means {tuple(m.shape)}",
                    _shape(t),
                )
        sh = self.sh
        if sh.ndim != m.ndim + 1 or tuple(sh.shape[:-2]) != (*lead, n) or sh.shape[-1] != 3:
            raise ValidationError(
                "Gaussians.sh", f"shape [..., N, K, 3] with [..., N] = {(*lead, n)}", _shape(sh)
            )
        k = sh.shape[-2]
        deg = math.isqrt(k) - 1
        if (deg + 1) ** 2 != k or k == 0:
            raise ValidationError(
                "Gaussians.sh", "K = (degree+1)^2 in {1, 4, 9, 16, ...}", f"K = {k}"
            )
        devices = {t.device for t in fields.values()}
        if len(devices) > 1:
            raise ValidationError(
                "Gaussians", "all fields on one device", str(sorted(map(str, devices)))
            )
        if not check_values or n == 0:
            return
        with torch.no_grad():
            for name, t in fields.items():
                if not bool(torch.isfinite(t).all()):
                    bad = int((~torch.isfinite(t)).sum())
                    raise ValidationError(
                        f"Gaussians.{name}", "finite values", f"{bad} NaN/Inf entries"
                    )
            if bool((self.scales <= 0).any()):
                raise ValidationError(
                    "Gaussians.scales",
                    "positive linear scales",
                    f"min {float(self.scales.min()):.3g}",
                )
            o = self.opacities
            if bool(((o < 0) | (o > 1)).any()):
                raise ValidationError(
                    "Gaussians.opacities",
                    "values in [0, 1]",
                    f"range [{float(o.min()):.3g}, {float(o.max()):.3g}]",
                )
            qn = self.quats.norm(dim=-1)
            if bool((qn < 1e-12).any()):
                raise ValidationError(
                    "Gaussians.quats", "non-zero quaternions", "a zero quaternion"
                )

    # ------------------------------------------------------------------ properties
    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.means.shape[:-2])

    @property
    def num_gaussians(self) -> int:
        return self.means.shape[-2]

    def __len__(self) -> int:
        return self.num_gaussians

    @property
    def sh_degree(self) -> int:
        return math.isqrt(self.sh.shape[-2]) - 1

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    @property
    def colors(self) -> torch.Tensor:
        """Diffuse colour ``[..., N, 3]`` from the degree-0 coefficient, clamped to [0, 1]."""
        return sh0_to_rgb(self.sh[..., 0, :]).clamp(0.0, 1.0)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def unchecked(cls, means, quats, scales, opacities, sh) -> Gaussians:
        """Construct checking shapes only, not values.

        Value checks synchronise with the device; generators in a training loop produce
        valid values by construction (their activations guarantee the ranges) and use this.
        """
        out = object.__new__(cls)
        for name, t in zip(
            ("means", "quats", "scales", "opacities", "sh"),
            (means, quats, scales, opacities, sh),
            strict=True,
        ):
            object.__setattr__(out, name, t)
        out.validate(check_values=False)
        return out

    @classmethod
    def from_colors(
        cls,
        means: torch.Tensor,
        colors: torch.Tensor,
        scales: torch.Tensor | float,
        opacities: torch.Tensor | float = 1.0,
        quats: torch.Tensor | None = None,
        sh_degree: int = 0,
    ) -> Gaussians:
        """Build Gaussians from diffuse RGB colours (higher SH bands start at zero).

        ``scales`` and ``opacities`` may be scalars (isotropic / uniform, as AGG's canonical
        Gaussians), ``quats`` defaults to the identity ``[1, 0, 0, 0]``.
        """
        lead_n = means.shape[:-1]
        if not isinstance(scales, torch.Tensor):
            scales = torch.full((*lead_n, 3), float(scales), dtype=means.dtype, device=means.device)
        elif scales.shape == lead_n or scales.shape[-1:] == (1,):
            scales = scales.reshape(*lead_n, 1).expand(*lead_n, 3)
        if not isinstance(opacities, torch.Tensor):
            opacities = torch.full(lead_n, float(opacities), dtype=means.dtype, device=means.device)
        if quats is None:
            quats = torch.zeros((*lead_n, 4), dtype=means.dtype, device=means.device)
            quats[..., 0] = 1.0
        k = (sh_degree + 1) ** 2
        sh = torch.zeros((*lead_n, k, 3), dtype=means.dtype, device=means.device)
        sh = torch.cat([rgb_to_sh0(colors).unsqueeze(-2), sh[..., 1:, :]], dim=-2)
        return cls(means=means, quats=quats, scales=scales, opacities=opacities, sh=sh)

    @classmethod
    def from_raw(
        cls,
        means: torch.Tensor,
        quats: torch.Tensor,
        log_scales: torch.Tensor,
        opacity_logits: torch.Tensor,
        sh: torch.Tensor,
    ) -> Gaussians:
        """Activate unconstrained parameters: normalise quats, exp scales, sigmoid opacities.

        This is the standard 3DGS parameterisation used by per-scene optimisers; gradients flow
        through the activations.
        """
        q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return cls(
            means=means,
            quats=q,
            scales=torch.exp(log_scales),
            opacities=torch.sigmoid(opacity_logits),
            sh=sh,
        )

    def to_raw(self) -> dict[str, torch.Tensor]:
        """Inverse of :meth:`from_raw`: ``means, quats, log_scales, opacity_logits, sh``.

        Opacities are clamped to ``[1e-6, 1 - 1e-6]`` before the logit so 0 and 1 stay finite.
        """
        o = self.opacities.clamp(1e-6, 1 - 1e-6)
        return {
            "means": self.means,
            "quats": self.quats,
            "log_scales": torch.log(self.scales),
            "opacity_logits": torch.log(o) - torch.log1p(-o),
            "sh": self.sh,
        }

    # ------------------------------------------------------------------ transforms
    def _map(self, fn, check_values: bool = False) -> Gaussians:
        out = object.__new__(Gaussians)
        for name in ("means", "quats", "scales", "opacities", "sh"):
            object.__setattr__(out, name, fn(getattr(self, name)))
        out.validate(check_values=check_values)
        return out

    def to(self, *args, **kwargs) -> Gaussians:
        return self._map(lambda t: t.to(*args, **kwargs))

    def detach(self) -> Gaussians:
        return self._map(lambda t: t.detach())

    def clone(self) -> Gaussians:
        return self._map(lambda t: t.clone())

    def select(self, index: torch.Tensor | slice) -> Gaussians:
        """Select Gaussians along N with a slice, index tensor or boolean mask ``[N]``."""
        is_mask = isinstance(index, torch.Tensor) and index.dtype == torch.bool
        if is_mask and index.shape != (self.num_gaussians,):
            raise ValidationError(
                "select(index)", f"a boolean mask of shape ({self.num_gaussians},)", _shape(index)
            )
        nb = len(self.batch_shape)
        lead = (slice(None),) * nb
        return self._map(lambda t: t[(*lead, index)])

    @staticmethod
    def concat(items: Sequence[Gaussians]) -> Gaussians:
        """Concatenate along N; batch shapes must match and SH degrees are padded to the max."""
        if not items:
            raise ValidationError("Gaussians.concat(items)", "at least one Gaussians")
        batch = items[0].batch_shape
        for i, g in enumerate(items):
            if g.batch_shape != batch:
                raise ValidationError(
                    f"Gaussians.concat(items[{i}])", f"batch shape {batch}", str(g.batch_shape)
                )
        kmax = max(g.sh.shape[-2] for g in items)

        def pad(sh: torch.Tensor) -> torch.Tensor:
            if sh.shape[-2] == kmax:
                return sh
            z = sh.new_zeros((*sh.shape[:-2], kmax - sh.shape[-2], 3))
            return torch.cat([sh, z], dim=-2)

        d = -2
        return Gaussians(
            means=torch.cat([g.means for g in items], d),
            quats=torch.cat([g.quats for g in items], d),
            scales=torch.cat([g.scales for g in items], d),
            opacities=torch.cat([g.opacities for g in items], -1),
            sh=torch.cat([pad(g.sh) for g in items], -3),
        )

    def with_sh_degree(self, degree: int) -> Gaussians:
        """Truncate or zero-pad the SH bands to ``degree``."""
        k = (degree + 1) ** 2
        sh = self.sh[..., :k, :]
        if sh.shape[-2] < k:
            sh = torch.cat([sh, sh.new_zeros((*sh.shape[:-2], k - sh.shape[-2], 3))], dim=-2)
        return Gaussians(self.means, self.quats, self.scales, self.opacities, sh)

    def __getitem__(self, b) -> Gaussians:
        """Index the leading batch dims (not N): ``g[0]`` on ``[B, N, ...]`` gives ``[N, ...]``."""
        if not self.batch_shape:
            raise ValidationError("Gaussians[...]", "leading batch dims to index", "none")
        return self._map(lambda t: t[b])

    def __repr__(self) -> str:
        return (
            f"Gaussians(batch={self.batch_shape}, n={self.num_gaussians}, "
            f"sh_degree={self.sh_degree}, dtype={self.dtype}, device={self.device})"
        )
