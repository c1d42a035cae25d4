"""The viewer's render path: Gaussians seen from a browser camera, as an 8-bit image.

This is what ``gs3d view`` streams to the browser and what ``benchmarks/viewer.py`` times. It
goes through :func:`gs_core.rendering.render` like every other picture gs3d makes (gsplat on
CUDA; on the CPU the torch backend's projection with the numba compositor, or the torch
compositor where numba is missing), so the viewer shows exactly what ``gs3d render`` and the
evaluation see.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from gs_core.errors import ValidationError
from gs_core.gaussians import Gaussians
from gs_core.viewer.camera import ViewerCamera, to_cameras

# Drafts (drawn while the camera moves, on the CPU) start at this fraction of the full size (a
# quarter of the pixels) and then follow DRAFT_TARGET_S.
DRAFT_FRACTION = 0.5
# Seconds a draft should take: the draft size is steered towards it after every draft, so a
# slow machine (the 2-core CPU, or one busy with other jobs) still follows the mouse at about
# 8 frames/s with blurrier drafts, and a fast one drafts at full size.
DRAFT_TARGET_S = 0.125
# Below this, a draft is too blurry to steer by.
MIN_DRAFT_RESOLUTION = 96
# One step of the draft-size controller changes the side by at most this factor either way:
# a draft that was slow because of a passing load spike must not shrink the next one 4x.
MAX_DRAFT_STEP = 1.5


class GaussianFrames:
    """Renders unbatched Gaussians (means ``[N, 3]``) for browser cameras.

    Args:
        gaussians: what to show; moved to ``device`` once here.
        resolution: pixels on the longer side of a full frame.
        background: RGB in [0, 1] behind the Gaussians.
        backend: ``auto``, ``torch``, ``gsplat`` or ``numba`` (see
            :func:`gs_core.rendering.render`; frames need no gradients, so ``auto`` draws with
            numba on the CPU when it is installed).
        device: where the Gaussians live and render.
    """

    def __init__(
        self,
        gaussians: Gaussians,
        *,
        resolution: int = 512,
        background: Sequence[float] = (1.0, 1.0, 1.0),
        backend: str = "auto",
        device: str | torch.device = "cpu",
    ):
        self.device = torch.device(device)
        self.resolution = int(resolution)
        self.background = tuple(float(v) for v in background)
        self.backend = backend
        self._gaussians = self._prepare(gaussians)
        self._draft_resolution = min(
            self.resolution, max(MIN_DRAFT_RESOLUTION, round(self.resolution * DRAFT_FRACTION))
        )

    @property
    def gaussians(self) -> Gaussians:
        return self._gaussians

    @gaussians.setter
    def gaussians(self, value: Gaussians) -> None:
        # One attribute assignment: a frame being drawn keeps the set it started with.
        self._gaussians = self._prepare(value)

    @property
    def backend_name(self) -> str:
        """The backend that draws the frames (what ``auto`` resolves to here)."""
        if self.backend != "auto":
            return self.backend
        if self.device.type != "cuda":
            from gs_core.rendering.numba_compositing import numba_available

            return "numba" if numba_available() else "torch"
        from gs_core.rendering import gsplat_available

        return "gsplat" if gsplat_available() else "torch"

    @property
    def draft_resolution(self) -> int:
        """Pixels on the longer side of the next draft (see :data:`DRAFT_TARGET_S`)."""
        return self._draft_resolution

    def _steer_draft(self, seconds: float, resolution: int | None = None) -> None:
        """Size the next draft from a frame of ``resolution`` (default: the current draft size)
        that took ``seconds``: render time grows with the pixel count, the square of the side."""
        base = self._draft_resolution if resolution is None else resolution
        step = math.sqrt(DRAFT_TARGET_S / max(seconds, 1e-6))
        if resolution is None:
            step = min(MAX_DRAFT_STEP, max(1.0 / MAX_DRAFT_STEP, step))
        low = min(self.resolution, MIN_DRAFT_RESOLUTION)
        self._draft_resolution = min(self.resolution, max(low, round(base * step)))

    def _prepare(self, g: Gaussians) -> Gaussians:
        if not isinstance(g, Gaussians):
            raise ValidationError("gaussians", "gs_core.Gaussians", type(g).__name__)
        if g.batch_shape:
            raise ValidationError("gaussians", "unbatched Gaussians [N]", f"batch {g.batch_shape}")
        return g.detach().to(self.device)

    @torch.inference_mode()
    def render(self, view: ViewerCamera, *, draft: bool = False) -> np.ndarray:
        """``[H, W, 3]`` uint8 image of the Gaussians from ``view``; ``H`` and ``W`` follow the
        canvas aspect with the longer side at the full (or draft) resolution."""
        from gs_core.rendering.api import render

        g = self._gaussians
        res = self.draft_resolution if draft else self.resolution
        t0 = time.perf_counter()
        cams = to_cameras(view, res, device=self.device)
        out = render(g, cams, background=self.background, backend=self.backend)
        rgb = out.rgb[0].clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
        image = rgb.cpu().numpy()  # waits for the device: the time below is the whole frame
        seconds = time.perf_counter() - t0
        if draft:
            self._steer_draft(seconds)
        elif seconds > DRAFT_TARGET_S:
            # A slow full frame sizes the drafts that follow it at once, unclamped (the first
            # drafts of a session would otherwise each take as long as several good ones), but
            # only downwards: per-Gaussian costs make small frames slower than their pixel
            # count says, which the drafts' own timings then correct.
            previous = self._draft_resolution
            self._steer_draft(seconds, res)
            self._draft_resolution = min(previous, self._draft_resolution)
        return image


__all__ = ["DRAFT_FRACTION", "DRAFT_TARGET_S", "GaussianFrames"]
