"""``gs3d pixel-cloud-info``: what the method produces for a preset, measured by running it."""

from __future__ import annotations

import json

import typer


def pixel_cloud_info(
    preset: str = typer.Option("paper", help="Preset of PixelCloudConfig to describe."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Run pixel-cloud on an opaque image and report its Gaussians: count, card size, splat size."""
    # Heavy imports live here: `gs3d --help` and `gs3d pixel-cloud-info --help` need none of them.
    import torch

    from gs_core.plugins.registry import get_registry

    spec = get_registry().get_method("pixel-cloud")
    config = spec.config_class.preset(preset)
    method = spec.factory(config)
    opaque = torch.ones(1, 4, config.resolution, config.resolution)
    g = method.generate(opaque).gaussians
    means = g.means[0]  # [N, 3]
    extent = (means.max(0).values - means.min(0).values).tolist()
    info = {
        "method": spec.name,
        "distribution": spec.distribution,
        "version": spec.version,
        "preset": preset,
        "gaussians_per_image": g.num_gaussians,
        "card_extent": [round(x, 6) for x in extent],
        "splat_scale": round(float(g.scales[0, 0, 0]), 6),
        "depth": config.depth,
        "camera_radius": config.camera_radius,
    }
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    x, y, z = info["card_extent"]
    typer.echo(
        f"{spec.name} {spec.version} (preset {preset}): {info['gaussians_per_image']} Gaussians per "
        f"image ({config.resolution} x {config.resolution} pixels)\n"
        f"  a card of extent x {x:.3f}, y {y:.3f}, z {z:.3f} at depth {config.depth} in front of "
        f"the input camera (orbit radius {config.camera_radius})\n"
        f"  splat scale {info['splat_scale']:.4f}"
    )
