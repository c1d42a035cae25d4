import torch

from gs3d_pixel_cloud import PixelCloud, PixelCloudConfig
from gs_core.testing import MethodConformanceTests, tiny_rgba_images


class TestPixelCloudConformance(MethodConformanceTests):
    method = "pixel-cloud"


def test_means_project_to_pixel_centres():
    model = PixelCloud(PixelCloudConfig.preset("tiny"))
    out = model.generate(tiny_rgba_images(2, 16))
    g = out.gaussians
    assert g.batch_shape == (2,) and g.num_gaussians == 16 * 16
    cam = model.input_camera()
    p = g.means[0] @ cam.viewmats[0, :3, :3].T + cam.viewmats[0, :3, 3]
    uv = (p[:, :2] / p[:, 2:]) @ cam.Ks[0, :2, :2].T + cam.Ks[0, :2, 2]
    v, u = torch.meshgrid(torch.arange(16) + 0.5, torch.arange(16) + 0.5, indexing="ij")
    torch.testing.assert_close(uv, torch.stack([u, v], -1).reshape(-1, 2), atol=1e-4, rtol=0)
    torch.testing.assert_close(p[:, 2], torch.ones(256), atol=1e-5, rtol=0)


def test_transparent_pixels_get_zero_opacity():
    images = tiny_rgba_images(1, 16)
    images[:, 3] = 0
    out = PixelCloud(PixelCloudConfig.preset("tiny")).generate(images)
    assert float(out.gaussians.opacities.max()) == 0.0


def test_pixel_cloud_info_command_reports_the_generated_cloud():
    """`gs3d pixel-cloud-info`, added through gs3d_register_commands (the plugin is installed)."""
    import json

    from typer.testing import CliRunner

    from gs_core.cli.main import app

    r = CliRunner().invoke(app, ["pixel-cloud-info", "--preset", "tiny", "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["method"] == "pixel-cloud" and info["distribution"] == "gs3d-pixel-cloud"
    assert info["gaussians_per_image"] == 16 * 16
    fx = float(PixelCloud(PixelCloudConfig.preset("tiny")).input_camera().Ks[0, 0, 0])
    thickness, side_a, side_b = sorted(info["card_extent"])
    # a flat square card: pixel centres span 15 pixel footprints at depth 1
    assert thickness < 1e-4 and abs(side_a - 15 / fx) < 1e-4 and abs(side_b - 15 / fx) < 1e-4
