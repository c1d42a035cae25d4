"""gs3d plugin hooks: registers the ``pixel-cloud`` method and the ``gs3d pixel-cloud-info``
command (this module is named by both entry-point groups, ``gs3d`` and ``gs3d.commands``)."""

from __future__ import annotations

from gs3d_pixel_cloud.config import PixelCloudConfig
from gs_core.plugins.hookspecs import hookimpl
from gs_core.plugins.specs import MethodSpec


@hookimpl
def gs3d_register_methods(register):
    register(
        MethodSpec(
            name="pixel-cloud",
            summary="Example plugin: one Gaussian per input pixel at unit depth (no learning).",
            config_class=PixelCloudConfig,
            # "module:Class": registering (gs3d plugins, gs3d --help) imports no model code.
            method_class="gs3d_pixel_cloud.model:PixelCloud",
            core_api="1.1",
            paper="(none: a template for plugin authors)",
            # The cloud sits in front of Cameras.orbit(0, 0, radius): the input camera on +z at
            # elevation 0, i.e. the "camera" frame of gs_core.data.spaces.
            output_frame="camera",
            # Nothing is learned: gs3d generate / demo / eval build it from its paper preset.
            has_weights=False,
        )
    )


@hookimpl
def gs3d_register_commands(cli):
    from gs3d_pixel_cloud.commands import pixel_cloud_info

    cli.command("pixel-cloud-info")(pixel_cloud_info)
