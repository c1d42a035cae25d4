"""Configuration of the pixel-cloud method."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from gs_core.config import Config


class PixelCloudConfig(Config):
    resolution: int = Field(64, gt=0, description="input images are resized to this square size")
    depth: float = Field(1.0, gt=0, description="distance of the pixel plane from the camera")
    camera_radius: float = Field(2.0, gt=0, description="input camera distance from the origin")
    fov_deg: float = Field(
        49.1, gt=0, lt=180, description="vertical field of view of the input camera"
    )
    alpha_threshold: float = Field(0.5, ge=0, le=1, description="pixels below become transparent")

    presets: ClassVar[dict] = {"paper": {}, "tiny": {"resolution": 16}}
