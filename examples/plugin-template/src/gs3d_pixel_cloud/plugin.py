"""gs3d plugin hooks: registers the ``pixel-cloud`` method."""

from __future__ import annotations

from gs3d_pixel_cloud.config import PixelCloudConfig
from gs_core.plugins.hookspecs import hookimpl
from gs_core.plugins.specs import MethodSpec


def _build(config: PixelCloudConfig):
    from gs3d_pixel_cloud.model import PixelCloud

    return PixelCloud(config)


@hookimpl
def gs3d_register_methods(register):
    register(
        MethodSpec(
            name="pixel-cloud",
            summary="Example plugin: one Gaussian per input pixel at unit depth (no learning).",
            config_class=PixelCloudConfig,
            factory=_build,
            core_api="1.0",
            paper="(none: a template for plugin authors)",
        )
    )
