"""The pixel-cloud "model": deterministic, no learned weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gs3d_pixel_cloud.config import PixelCloudConfig
from gs_core import Cameras, Gaussians
from gs_core.method import GenerationOutput, Method, timed


class PixelCloud(Method):
    """One Gaussian per input pixel on the plane ``depth`` in front of the input camera.

    The input camera is the orbit camera at azimuth 0, elevation 0 (``Cameras.orbit``), so the
    cloud re-renders the input exactly from there and shows a flat card from elsewhere.
    """

    config_class = PixelCloudConfig
    name = "pixel-cloud"
    config: PixelCloudConfig

    def input_camera(self) -> Cameras:
        c = self.config
        return Cameras.orbit([0.0], [0.0], c.camera_radius, c.fov_deg, c.resolution, c.resolution)

    def generate(
        self, images: torch.Tensor, *, seed: int | None = None, **kwargs
    ) -> GenerationOutput:
        """RGBA ``[B, 4, H, W]`` -> ``resolution**2`` Gaussians per image. Deterministic:
        ``seed`` is accepted for the Method contract and has no effect."""
        images = self.check_images(images)
        c = self.config
        timings: dict[str, float] = {}
        with timed(timings, "total", images.device):
            img = F.interpolate(
                images, size=(c.resolution, c.resolution), mode="bilinear", align_corners=False
            )
            img = img.clamp(0, 1)
            b = img.shape[0]
            cam = self.input_camera().to(images.device)
            K, c2w = cam.Ks[0], cam.camtoworlds[0]
            v, u = torch.meshgrid(
                torch.arange(c.resolution, device=images.device) + 0.5,
                torch.arange(c.resolution, device=images.device) + 0.5,
                indexing="ij",
            )
            x = (u - K[0, 2]) / K[0, 0] * c.depth
            y = (v - K[1, 2]) / K[1, 1] * c.depth
            pts_cam = torch.stack([x, y, torch.full_like(x, c.depth)], -1).reshape(-1, 3)
            means = pts_cam @ c2w[:3, :3].T + c2w[:3, 3]
            n = means.shape[0]
            rgb = img[:, :3].flatten(2).transpose(1, 2)  # [B, N, 3]
            alpha = img[:, 3].flatten(1)
            opacity = torch.where(alpha >= c.alpha_threshold, alpha, torch.zeros_like(alpha))
            # a pixel's footprint at that depth, so neighbouring splats overlap just enough
            scale = 0.75 * c.depth / float(K[0, 0])
            g = Gaussians.from_colors(means.expand(b, n, 3), rgb, scale, opacity)
        return GenerationOutput(gaussians=g, timings=timings)
