"""Example gs3d method plugin: one Gaussian per input pixel at unit depth."""

from gs3d_pixel_cloud.config import PixelCloudConfig
from gs3d_pixel_cloud.model import PixelCloud

__version__ = "0.1.0"
__all__ = ["PixelCloud", "PixelCloudConfig", "__version__"]
