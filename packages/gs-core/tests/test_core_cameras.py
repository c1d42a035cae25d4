import json
import math

import pytest
import torch

from gs_core import Cameras, ValidationError


def test_orbit_geometry():
    cams = Cameras.orbit([0, 90, 180], [0, 30, -30], radius=2.0, fov_deg=49.1, width=64, height=48)
    assert cams.n_cameras == 3 and cams.viewmats.shape == (3, 4, 4)
    c = cams.centers
    torch.testing.assert_close(c[0], torch.tensor([0.0, 0.0, 2.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(c.norm(dim=-1), torch.full((3,), 2.0), atol=1e-5, rtol=0)
    assert c[1, 0] > 1.0 and c[1, 1] > 0.9  # azimuth 90 -> +x, elevation 30 -> above
    # the origin projects to the image centre of every camera
    o = cams.viewmats[:, :3, 3]
    uv = (o[:, :2] / o[:, 2:]) * cams.Ks[:, 0, 0:1] + cams.Ks[:, :2, 2]
    torch.testing.assert_close(uv, torch.tensor([[32.0, 24.0]] * 3), atol=1e-4, rtol=0)
    assert (o[:, 2] > 0).all()  # OpenCV: in front means +z
    f = 0.5 * 48 / math.tan(math.radians(49.1) / 2)
    assert abs(float(cams.Ks[0, 1, 1]) - f) < 1e-4


def test_opengl_roundtrip_and_transforms_json():
    cams = Cameras.orbit([10, 200], [20, -5], 1.5, 40.0, 32, 32)
    c2w_gl = cams.camtoworlds_opengl()
    angle_x = 2 * math.atan(0.5 * 32 / float(cams.Ks[0, 0, 0]))
    data = json.loads(
        json.dumps(
            {
                "camera_angle_x": angle_x,
                "frames": [{"transform_matrix": m.tolist()} for m in c2w_gl],
            }
        )
    )
    back = Cameras.from_camtoworlds_opengl(
        torch.tensor([f["transform_matrix"] for f in data["frames"]]),
        32,
        32,
        camera_angle_x=data["camera_angle_x"],
    )
    torch.testing.assert_close(back.viewmats, cams.viewmats, atol=1e-5, rtol=0)
    torch.testing.assert_close(back.Ks, cams.Ks, atol=1e-4, rtol=0)


def test_plucker_rays():
    cams = Cameras.orbit([0, 45], [0, 10], 2.0, 49.1, 8, 6)
    p = cams.plucker_rays()
    assert p.shape == (2, 6, 6, 8)
    o, d = cams.rays()
    torch.testing.assert_close(p[:, 3:].movedim(1, -1), d)
    torch.testing.assert_close(p[:, :3].movedim(1, -1), torch.linalg.cross(o, d, dim=-1))
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(2, 6, 8))
    # the moment is orthogonal to the direction
    assert (p[:, :3] * p[:, 3:]).sum(1).abs().max() < 1e-5


def test_plucker_rays_inside_a_bf16_autocast_region_stay_float32():
    """A training step runs under bf16 autocast: the rays are still exact float32 geometry
    (the rotation was rounded to bf16 and the cross product failed on mixed dtypes)."""
    cams = Cameras.orbit([0, 45], [0, 10], 2.0, 49.1, 8, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        p = cams.plucker_rays()
    assert p.dtype == torch.float32
    torch.testing.assert_close(p, cams.plucker_rays())


def test_batched_and_errors():
    cams = Cameras.orbit([0, 90], 0, 2.0, 49.1, 8, 8)
    b = Cameras(cams.viewmats.expand(3, 2, 4, 4), cams.Ks.expand(3, 2, 3, 3), 8, 8)
    assert b.batch_shape == (3,) and b.plucker_rays().shape == (3, 2, 6, 8, 8)
    with pytest.raises(ValidationError, match="Cameras.Ks"):
        Cameras(cams.viewmats, cams.Ks[:1], 8, 8)
    with pytest.raises(ValidationError, match="Cameras.width"):
        Cameras(cams.viewmats, cams.Ks, 0, 8)
    r = cams.resized(16, 16)
    torch.testing.assert_close(r.Ks[:, 0, 0], cams.Ks[:, 0, 0] * 2)


def test_to_returns_the_same_cameras_when_nothing_changes():
    """No new validation (host reads) when nothing changes: CUDA-graph captures call it."""
    cams = Cameras.orbit([0.0, 90.0], [0.0, 10.0], radius=2.0, width=8, height=8)
    assert cams.to("cpu") is cams
    assert cams.to(torch.float32) is cams
    wider = cams.to(torch.float64)
    assert wider is not cams and wider.viewmats.dtype == torch.float64
    torch.testing.assert_close(wider.viewmats.float(), cams.viewmats)


def test_orbit_refuses_non_finite_angles_before_moving():
    with pytest.raises(ValidationError, match="finite"):
        Cameras.orbit([float("nan")], [0.0])


@pytest.mark.gpu
def test_orbit_on_cuda_equals_cpu_and_never_waits_for_the_gpu():
    ref = Cameras.orbit([0, 45, 200], [10, -5, 30], 1.5, 49.1, 64, 48)
    torch.cuda.set_sync_debug_mode("error")  # any host synchronisation raises
    try:
        cams = Cameras.orbit([0, 45, 200], [10, -5, 30], 1.5, 49.1, 64, 48, device="cuda")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert cams.viewmats.is_cuda and cams.viewmats.is_contiguous() and cams.Ks.is_contiguous()
    torch.testing.assert_close(cams.viewmats.cpu(), ref.viewmats)
    torch.testing.assert_close(cams.Ks.cpu(), ref.Ks)
