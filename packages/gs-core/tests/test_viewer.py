"""``gs3d view``: camera conversion, the render throttle, training runs, bad input, and the page
itself in headless Chromium."""

from __future__ import annotations

import json
import math
import socket
import threading
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gs_core import CORE_API_VERSION, Cameras, Gaussians
from gs_core.cameras import look_at
from gs_core.config import Config
from gs_core.errors import GS3DError, ValidationError
from gs_core.method import GenerationOutput, Method
from gs_core.viewer.camera import ViewerCamera, render_size, to_cameras
from gs_core.viewer.latest_only import LatestOnlyWorker


def _project(cams: Cameras, point) -> tuple[float, float, float]:
    """Pixel ``(u, v)`` and depth of a world point in the first camera."""
    p = torch.tensor([*point, 1.0], dtype=torch.float64)
    x = cams.viewmats[0].double() @ p
    uvw = cams.Ks[0].double() @ x[:3]
    return float(uvw[0] / uvw[2]), float(uvw[1] / uvw[2]), float(x[2])


def _viser_wxyz(rotation: torch.Tensor) -> tuple[float, ...]:
    """The quaternion viser itself makes of a rotation matrix."""
    tf = pytest.importorskip("viser.transforms")
    return tuple(float(v) for v in tf.SO3.from_matrix(rotation.double().numpy()).wxyz)


# ---------------------------------------------------------------------------- camera conversion
def test_a_browser_camera_sees_its_look_at_point_at_the_image_centre():
    # A pose a real browser sent (viser, y up): at (0, 0.5, 2.5) looking at the origin.
    half = math.atan2(0.5, 2.5) / 2  # rotation about x by pi - atan(0.5 / 2.5)
    wxyz = (math.sin(half), math.cos(half), 0.0, 0.0)
    view = ViewerCamera(wxyz=wxyz, position=(0.0, 0.5, 2.5), fov_y=math.radians(50), aspect=1.6)
    cams = to_cameras(view, 320)
    assert (cams.width, cams.height) == (320, 200)
    u, v, depth = _project(cams, (0.0, 0.0, 0.0))
    assert u == pytest.approx(160, abs=1e-3) and v == pytest.approx(100, abs=1e-3)
    assert depth == pytest.approx(math.hypot(0.5, 2.5), rel=1e-6)
    # World up is up in the image (smaller v), world +x is on the right (the y-up world seen
    # from +z, as Cameras.orbit at azimuth 0 sees it).
    assert _project(cams, (0.0, 0.2, 0.0))[1] < 100 - 10
    assert _project(cams, (0.2, 0.0, 0.0))[0] > 160 + 10
    # The vertical field of view spans the image height: a point half the field of view above
    # the look direction lands on the top edge.
    eye = torch.tensor([0.0, 0.5, 2.5], dtype=torch.float64)
    c2w = look_at(eye, torch.zeros(3, dtype=torch.float64), torch.tensor([0.0, 1.0, 0.0]).double())
    fwd, down = c2w[:3, 2], c2w[:3, 1]
    top_edge = eye + fwd - math.tan(math.radians(25)) * down
    assert _project(cams, top_edge.tolist())[1] == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("seed", range(4))
def test_random_browser_poses_match_gs_core_cameras(seed):
    gen = torch.Generator().manual_seed(seed)
    eye = torch.randn(3, generator=gen, dtype=torch.float64) * 3
    target = torch.randn(3, generator=gen, dtype=torch.float64) * 0.5
    c2w = look_at(eye, target, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    aspect = float(torch.rand(1, generator=gen)) * 1.5 + 0.5
    view = ViewerCamera(_viser_wxyz(c2w[:3, :3]), tuple(eye.tolist()), math.radians(60), aspect)
    cams = to_cameras(view, 256)
    u, v, depth = _project(cams, target.tolist())
    assert u == pytest.approx(cams.width / 2, abs=1e-2)
    assert v == pytest.approx(cams.height / 2, abs=1e-2)
    assert depth == pytest.approx(float((target - eye).norm()), rel=1e-5)
    assert max(cams.width, cams.height) == 256
    assert cams.width / cams.height == pytest.approx(aspect, abs=0.01)


def test_the_start_view_renders_like_the_orbit_turntable_camera():
    """The viewer's first view and ``Cameras.orbit`` at azimuth 0, elevation 15 are one camera."""
    from gs_core.rendering.turntable import DEFAULT_FOV_DEG, frame_scene

    g = _blob()
    target, dist = frame_scene(g)
    orbit = Cameras.orbit([0.0], 15.0, radius=dist, fov_deg=DEFAULT_FOV_DEG, width=96,
                          height=64, target=target)  # fmt: skip
    from gs_core.viewer.server import start_camera

    eye, look = start_camera(g)
    assert np.allclose(look, target) and np.allclose(eye, orbit.centers[0].numpy(), atol=1e-5)
    view = ViewerCamera.looking_at(eye, look, fov_y=math.radians(DEFAULT_FOV_DEG), aspect=1.5)
    cams = to_cameras(view, 96)
    assert torch.allclose(cams.viewmats, orbit.viewmats, atol=1e-5)
    assert torch.allclose(cams.Ks, orbit.Ks, atol=1e-4)


def test_quaternions_of_rotations_round_trip_and_agree_with_viser():
    from gs_core.rendering.projection import quat_to_rotmat
    from gs_core.viewer.camera import wxyz_from_rotation

    gen = torch.Generator().manual_seed(0)
    quats = torch.nn.functional.normalize(torch.randn(64, 4, generator=gen, dtype=torch.float64))
    quats = torch.cat([quats, torch.eye(4, dtype=torch.float64)])  # identity and 180-degree turns
    for q in quats:
        R = quat_to_rotmat(q)
        back = torch.tensor(wxyz_from_rotation(R), dtype=torch.float64)
        assert torch.allclose(quat_to_rotmat(back), R, atol=1e-12)
        assert back.norm() == pytest.approx(1.0, abs=1e-12)
    pytest.importorskip("viser")
    for q in quats[:8]:
        R = quat_to_rotmat(q)
        ours, theirs = torch.tensor(wxyz_from_rotation(R)), torch.tensor(_viser_wxyz(R))
        assert torch.allclose(ours, theirs, atol=1e-9) or torch.allclose(ours, -theirs, atol=1e-9)


def test_render_size_and_bad_cameras():
    assert render_size(2.0, 512) == (512, 256)
    assert render_size(0.5, 512) == (256, 512)
    assert render_size(1.0, 100) == (100, 100)
    with pytest.raises(GS3DError, match="fov_y"):
        ViewerCamera((1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0, 1.0)
    with pytest.raises(GS3DError, match="non-zero quaternion"):
        ViewerCamera((0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1.0, 1.0)
    with pytest.raises(GS3DError, match="finite"):
        ViewerCamera((1.0, 0.0, 0.0, 0.0), (math.nan, 0.0, 0.0), 1.0, 1.0)


# ---------------------------------------------------------------------------- throttle
def test_the_worker_draws_the_latest_camera_only_never_a_queue():
    drawn, gate = [], threading.Event()

    def draw(item, draft):
        gate.wait(5)
        drawn.append((item, draft))

    w = LatestOnlyWorker(draw)
    w.submit(0)  # being drawn while the others arrive
    time.sleep(0.05)
    for i in range(1, 50):
        w.submit(i)
    gate.set()
    _until(lambda: w.drawn >= 2)
    time.sleep(0.1)
    w.close()
    assert drawn == [(0, False), (49, False)]


def test_drafts_while_moving_then_one_full_frame_once_the_camera_rests():
    drawn = []
    w = LatestOnlyWorker(lambda item, draft: drawn.append((item, draft)), settle_s=0.15)
    for i in range(5):
        w.submit(i)
        time.sleep(0.02)
    _until(lambda: (4, False) in drawn)
    time.sleep(0.3)
    w.close()
    assert all(draft for _, draft in drawn[:-1]) and drawn[-1] == (4, False)
    assert drawn.count((4, False)) == 1


def test_a_failing_frame_is_reported_and_the_worker_goes_on():
    errors, drawn = [], []

    def draw(item, draft):
        if item == "bad":
            raise RuntimeError("boom")
        drawn.append(item)

    w = LatestOnlyWorker(draw, on_error=errors.append)
    w.submit("bad")
    _until(lambda: errors)
    w.submit("good")
    _until(lambda: drawn)
    w.close()
    assert str(errors[0]) == "boom" and drawn == ["good"]


# ---------------------------------------------------------------------------- training runs
class TintConfig(Config):
    count: int = 32
    presets = {"paper": {}, "tiny": {}}


class Tint(Method):
    """A trained method in miniature: a blob whose colour is its one weight."""

    config_class = TintConfig
    name = "tint"

    def __init__(self, config):
        super().__init__(config)
        self.color = torch.nn.Parameter(torch.full((3,), 0.5))

    def generate(self, images, seed=None, **kwargs):
        self.check_images(images)
        b, n = images.shape[0], self.config.count
        gen = torch.Generator().manual_seed(0)
        means = torch.randn(n, 3, generator=gen) * 0.2
        g = Gaussians.from_colors(means, self.color.detach().clamp(0, 1).expand(n, 3), 0.05, 0.9)
        batched = Gaussians(*(t.expand(b, *t.shape) for t in
                              (g.means, g.quats, g.scales, g.opacities, g.sh)))  # fmt: skip
        return GenerationOutput(gaussians=batched)


@pytest.fixture
def tint_registered(monkeypatch):
    import gs_core.plugins.registry as reg
    from gs_core.plugins.specs import MethodSpec

    fresh = reg.Registry(discover=False)
    monkeypatch.setattr(reg, "_REGISTRY", fresh)
    fresh.register_method(
        MethodSpec("tint", "test", config_class=TintConfig, factory=Tint, core_api=CORE_API_VERSION)
    )


def _dataset(root):
    """Two one-view objects; ``val`` lists the second."""
    from gs_core.data.transforms import transforms_dict
    from gs_core.imaging import save_image

    for name in ("a_00000", "b_00001"):
        img = np.zeros((16, 16, 4), np.float32)
        img[4:12, 4:12] = (0.8, 0.3, 0.2, 1.0)
        save_image(root / name / "images" / "000.png", img)
        c2w = np.eye(4)[None].copy()
        c2w[0, 2, 3] = 2.0
        meta = transforms_dict(c2w, ["images/000.png"], 16, 16, fl_x=20.0)
        (root / name / "transforms.json").write_text(json.dumps(meta))
    (root / "splits").mkdir()
    (root / "splits" / "val.txt").write_text("b_00001\n")
    return root


def _save_step(run, step: int, color) -> None:
    m = Tint(TintConfig())
    with torch.no_grad():
        m.color.copy_(torch.tensor(color))
    m.save_pretrained(run / "checkpoints" / f"step-{step:08d}" / "models" / "model")


def _run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    data = _dataset(tmp_path / "data")
    (run / "config.json").write_text(json.dumps({"method": "tint", "data": str(data)}))
    return run


def test_a_run_shows_its_newest_checkpoint_on_a_validation_input(tmp_path, tint_registered):
    from gs_core.viewer.training_run import TrainingRun

    run = _run_dir(tmp_path)
    view = TrainingRun(run)
    assert [i.name for i in view.inputs] == ["b_00001"]  # the val split, its front view
    with pytest.raises(GS3DError, match="no checkpoint yet"):
        view.refresh()
    _save_step(run, 10, (1.0, 0.0, 0.0))
    assert view.refresh() and view.checkpoint.label == "step 10"
    assert torch.allclose(view.generate(0).colors, torch.tensor([1.0, 0.0, 0.0]), atol=1e-3)
    assert not view.refresh()  # nothing new
    _save_step(run, 20, (0.0, 0.0, 1.0))
    assert view.refresh() and view.checkpoint.label == "step 20"
    assert torch.allclose(view.generate(0).colors, torch.tensor([0.0, 0.0, 1.0]), atol=1e-3)
    time.sleep(0.01)  # a distinct modification time
    m = Tint(TintConfig())
    with torch.no_grad():
        m.color.copy_(torch.tensor([0.0, 1.0, 0.0]))
    m.save_pretrained(run / "final")  # training ended: final/ is the newest
    assert view.refresh() and view.checkpoint.label == "final"
    assert torch.allclose(view.generate(0).colors, torch.tensor([0.0, 1.0, 0.0]), atol=1e-3)


def test_a_checkpoint_that_does_not_load_as_the_method_is_skipped(tmp_path, tint_registered):
    from gs_core.viewer.training_run import TrainingRun

    run = _run_dir(tmp_path)
    bad = run / "checkpoints" / "step-00000005" / "models" / "model"
    bad.mkdir(parents=True)
    (bad / "config.json").write_text(json.dumps({"count": "many"}))  # and no weights
    lines = []
    view = TrainingRun(run, log=lines.append)
    for _ in range(2):  # a skipped checkpoint is reported once, not at every poll
        with pytest.raises(GS3DError, match="no checkpoint loads as method 'tint'"):
            view.refresh()
    assert len(lines) == 1 and "checkpoint step 5" in lines[0] and "skipped" in lines[0]
    _save_step(run, 6, (0.0, 0.0, 1.0))
    assert view.refresh() and view.checkpoint.label == "step 6"


def test_the_viewer_follows_a_training_run(tmp_path, tint_registered):
    pytest.importorskip("viser")
    from gs_core.viewer.server import Viewer
    from gs_core.viewer.training_run import TrainingRun

    run = _run_dir(tmp_path)
    _save_step(run, 1, (1.0, 0.0, 0.0))
    lines = []
    viewer = Viewer(TrainingRun(run), port=0, resolution=64, poll_s=0.2, log=lines.append)
    try:
        assert torch.allclose(viewer.scene.colors, torch.tensor([1.0, 0.0, 0.0]), atol=1e-3)
        _save_step(run, 2, (0.0, 0.0, 1.0))
        _until(
            lambda: torch.allclose(viewer.scene.colors, torch.tensor([0.0, 0.0, 1.0]), atol=1e-3)
        )
        # The line is logged just after the scene is swapped.
        _until(lambda: any("new checkpoint (step 2)" in line for line in lines))
    finally:
        viewer.stop()


# ---------------------------------------------------------------------------- bad input
def _view(*args):
    from gs_core.cli.main import app

    return CliRunner().invoke(app, ["view", *map(str, args)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gaussian_ply(tmp_path):
    from gs_core.io import save_ply

    return save_ply(tmp_path / "blob.ply", _blob())


def test_bad_files_are_one_clear_line(tmp_path, gaussian_ply):
    pytest.importorskip("viser")
    port = _free_port()
    r = _view(tmp_path / "missing.ply", "--port", port)
    assert "missing.ply: no such file or directory" in str(r.exception)
    (tmp_path / "notes.txt").write_text("hi")
    r = _view(tmp_path / "notes.txt", "--port", port)
    assert "unsupported scene format '.txt'" in str(r.exception)
    (tmp_path / "broken.ply").write_bytes(b"not a ply at all")
    r = _view(tmp_path / "broken.ply", "--port", port)
    assert "broken.ply" in str(r.exception) and "not a PLY file" in str(r.exception)
    (tmp_path / "folder").mkdir()
    r = _view(tmp_path / "folder", "--port", port)
    assert "not a training run directory" in str(r.exception)
    r = _view(gaussian_ply, "--port", port, "--input", gaussian_ply)
    assert "--input: only for a training run directory" in str(r.exception)
    r = _view(gaussian_ply, "--port", port, "--background", "purple")
    assert "--background" in str(r.exception) and isinstance(r.exception, GS3DError)
    r = _view(gaussian_ply, "--port", port, "--display", "hologram")
    assert "--display: expected auto, splats, render, points, got 'hologram'" in str(r.exception)


def test_a_port_in_use_is_refused_not_silently_moved(gaussian_ply):
    pytest.importorskip("viser")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = _view(gaussian_ply, "--port", port)
    assert isinstance(r.exception, GS3DError)
    assert f"--port {port}: already in use on 127.0.0.1" in str(r.exception)


def test_help_imports_neither_viser_nor_torch():
    import subprocess
    import sys

    code = (
        "import sys; from gs_core.cli.main import main\n"
        "try:\n    main(['view', '--help'])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('viser', 'torch', 'gs_method_agg') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "--port" in r.stdout and "--resolution" in r.stdout


def test_missing_viser_says_how_to_install_it(monkeypatch, gaussian_ply):
    import sys

    monkeypatch.setitem(sys.modules, "viser", None)  # import viser now raises ImportError
    r = _view(gaussian_ply)
    assert isinstance(r.exception, GS3DError)
    assert "pip install 'gs3d-core[viewer]'" in str(r.exception)


# ---------------------------------------------------------------------------- in a browser
def test_the_page_shows_webgl_splats_streamed_frames_and_a_mesh_in_headless_chromium(tmp_path):
    """A real browser opens the viewer (one page, three views). The Gaussians are first
    viser's WebGL splats (``--display splats``): drawn where gs3d's renderer puts the object for the browser's
    camera, the white background elsewhere. Switched to gs3d's renderer: the page shows the
    frame gs3d rendered. A vertex-coloured box: drawn by the browser where gs3d's own mesh
    rasteriser puts it for the same camera."""
    pytest.importorskip("viser")
    from gs_core.imaging import load_image
    from gs_core.rendering.mesh_render import render_mesh
    from gs_core.testing.browser import LivePage, require_chromium
    from gs_core.viewer.frames import GaussianFrames
    from gs_core.viewer.server import DISPLAY_RENDERER, DISPLAY_SPLATS, Viewer, start_camera

    require_chromium()
    W, H = 640, 400
    g, mesh = _blob(), _box()
    # Below the control panel (top right) and the notices (top left), right of the axes gizmo.
    region = (slice(int(0.45 * H), H - 5), slice(int(0.15 * W), W - 5))
    viewer = Viewer(g, port=0, resolution=160, device="cpu", display="splats")
    assert viewer.display == DISPLAY_SPLATS
    eye, _ = start_camera(g)

    def browser_camera() -> ViewerCamera | None:
        for client in viewer.server.get_clients().values():
            if client.camera.image_width > 0:
                return ViewerCamera.from_viser(client.camera)
        return None

    def at_start() -> bool:
        view = browser_camera()
        return view is not None and np.allclose(view.position, eye, atol=1e-4)

    def frame_sent() -> bool:  # the full frame of the start camera
        frame = viewer.last_frame
        return frame is not None and np.allclose(frame[0].position, eye, atol=1e-4)

    def box_mask(grow: float) -> np.ndarray:
        """Where the box projects for the browser's camera (it stays where the Gaussians had
        it when the scene changes), by gs3d's own mesh rasteriser."""
        view = viewer.last_frame[0]
        alpha = render_mesh(mesh, to_cameras(view, W), attributes=("alpha",)).alpha[0, ..., 0]
        return alpha.numpy() > grow

    def blue(page: np.ndarray) -> np.ndarray:
        return (page[..., 2] - page[..., 0]) > 0.25

    def blob_drawn(path) -> bool:
        red = load_image(path)[..., :3]
        return ((red[..., 0] - red[..., 2]) > 0.3)[region].mean() > 0.1

    def box_drawn(path) -> bool:
        inside = _far_from(~box_mask(0.5), 6)
        return blue(load_image(path)[..., :3])[inside].mean() > 0.9

    try:
        with LivePage(viewer.url, size=(W, H), timeout_s=90) as page:
            page.wait_until(at_start, settle_ms=0)
            assert viewer.splats_sent == 1 and viewer.last_frame is None  # nothing streamed
            webgl_png = page.capture(tmp_path / "webgl.png", accept=blob_drawn)
            splat_view = browser_camera()
            # The same page switched to gs3d's renderer: the frame it streams replaces them.
            viewer.display = DISPLAY_RENDERER
            page.wait_until(frame_sent, settle_ms=800)
            streamed_png = page.capture(tmp_path / "gaussians.png")
            # The scene swapped for a mesh: the page must drop the streamed image.
            viewer.set_scene(mesh)
            mesh_png = page.capture(tmp_path / "mesh.png", accept=box_drawn)
    finally:
        viewer.stop()

    # What gs3d renders for the browser's camera at the page's size: where the object is.
    exp = GaussianFrames(g, resolution=W).render(splat_view).astype(np.float64)
    assert exp.shape == (H, W, 3)
    darkness = 255 - exp.min(-1)
    obj = np.zeros((H, W), bool)
    obj[region] = darkness[region] > 80
    bg = np.zeros((H, W), bool)
    bg[region] = True
    bg &= _far_from(darkness > 3, 6)
    assert obj.sum() > 500 and bg.sum() > 500
    # viser's splats: another rasteriser, so only roughly the same picture as gs3d's.
    shot = (load_image(webgl_png)[..., :3] * 255).astype(np.float64)
    assert shot.shape == (H, W, 3)
    assert (255 - shot[obj].min(-1)).mean() > 60  # the object is drawn where it projects
    assert (255 - shot[bg].min(-1)).mean() < 8  # the background elsewhere
    assert np.abs(shot[region] - exp[region]).mean() < 25
    red = shot[obj]
    assert (red[:, 0] - red[:, 2]).mean() > 60  # in the Gaussians' colour

    shot = (load_image(streamed_png)[..., :3] * 255).astype(np.float64)
    view, frame = viewer.last_frame
    assert view.aspect == pytest.approx(W / H, abs=0.01)  # the canvas fills the viewport
    # The streamed frame stretched over the canvas: where it shows the object, and where white.
    rows = (np.arange(H) * frame.shape[0] // H)[:, None]
    cols = (np.arange(W) * frame.shape[1] // W)[None, :]
    exp, got = frame[rows, cols].astype(np.float64)[region], shot[region]
    darkness = 255 - exp.min(-1)
    obj, bg = darkness > 80, _far_from(darkness > 3, 6)
    assert obj.sum() > 500 and bg.sum() > 500
    assert (255 - got[obj].min(-1)).mean() > 60  # the object is drawn where it projects
    assert (255 - got[bg].min(-1)).mean() < 8  # the background elsewhere
    assert np.abs(got - exp).mean() < 12  # and it is the frame gs3d rendered

    shot = load_image(mesh_png)[..., :3]
    inside = _far_from(~box_mask(0.5), 6)
    outside = np.zeros((H, W), bool)
    outside[region] = True
    outside &= _far_from(box_mask(0.01), 6)
    assert inside.sum() > 2000 and outside.sum() > 2000
    assert blue(shot)[inside].mean() > 0.9  # the box where it projects
    assert (shot[outside] > 0.95).all(-1).mean() > 0.99  # white elsewhere: no stale frame


def test_the_frame_counter_counts_webgl_frames_drawn_not_idle_ones(tmp_path):
    """``LivePage.frame_counter``: a page drawing WebGL on every animation frame is counted at
    its rate; a static page draws nothing."""
    from gs_core.testing.browser import LivePage, require_chromium

    require_chromium()
    page_html = tmp_path / "spin.html"
    page_html.write_text(
        "<canvas id=c width=64 height=64></canvas><script>"
        "const gl = document.getElementById('c').getContext('webgl2'); let drawing = false;"
        "function f() { if (drawing) { gl.clearColor(Math.random(), 0, 0, 1);"
        "gl.clear(gl.COLOR_BUFFER_BIT); } requestAnimationFrame(f); } f();"
        "window.start = () => { drawing = true; };</script>"
    )

    def reading_after(page, done, seconds=20.0):
        # Polled, not slept: a loaded CI machine delays the browser's animation frames.
        deadline = time.monotonic() + seconds
        while True:
            r = page.frame_counter()
            if done(r) or time.monotonic() > deadline:
                return r
            time.sleep(0.1)

    with LivePage(page_html.as_uri(), size=(64, 64), timeout_s=60) as page:
        a = page.frame_counter()
        b = reading_after(page, lambda r: r["ticks"] >= a["ticks"] + 5)
        page.evaluate("window.start()")
        c = reading_after(page, lambda r: r["drawn"] >= b["drawn"] + 10)
        with pytest.raises(RuntimeError, match="script failed"):
            page.evaluate("no_such_name.x")
    assert b["ticks"] >= a["ticks"] + 5 and b["drawn"] == a["drawn"] == 0  # idle: nothing drawn
    assert c["drawn"] >= b["drawn"] + 10 and c["drawn"] <= c["ticks"]
    # Drawing on every animation frame: most ticks after start() drew.
    assert (c["drawn"] - b["drawn"]) >= 0.5 * (c["ticks"] - b["ticks"]) - 2


def test_meshes_go_to_the_browser_matte_with_their_colours():
    import io
    import struct

    import trimesh

    from gs_core.mesh import Mesh
    from gs_core.viewer.mesh_glb import matte_glb

    def document(glb: bytes) -> dict:
        n = struct.unpack_from("<I", glb, 12)[0]
        assert struct.unpack_from("<I", glb, 8)[0] == len(glb) and n % 4 == 0
        return json.loads(glb[20 : 20 + n])

    def materials(glb: bytes) -> list:
        return document(glb)["materials"]

    box = _box()
    glb = matte_glb(box)
    (m,) = materials(glb)
    assert m["pbrMetallicRoughness"]["metallicFactor"] == 0.0  # glTF's default would be 1
    (primitive,) = document(glb)["meshes"][0]["primitives"]
    assert primitive["material"] == 0 and "COLOR_0" in primitive["attributes"]
    back = trimesh.load(io.BytesIO(glb), file_type="glb", force="mesh")  # still a valid GLB
    assert len(back.faces) == len(box.faces)
    textured = Mesh(vertices=box.vertices, faces=box.faces, uvs=torch.rand(len(box.vertices), 2),
                    texture=torch.rand(4, 4, 3))  # fmt: skip
    (m,) = materials(matte_glb(textured))
    pbr = m["pbrMetallicRoughness"]
    assert pbr["metallicFactor"] == 0.0 and pbr["baseColorFactor"] == [1.0, 1.0, 1.0, 1.0]
    assert "baseColorTexture" in pbr


def test_splat_display_arrays_and_switch():
    from gs_core.viewer.splats import splat_arrays

    half = math.pi / 4  # 90 degrees about z
    g = Gaussians(
        means=torch.tensor([[0.1, 0.2, 0.3]]),
        quats=torch.tensor([[math.cos(half), 0.0, 0.0, math.sin(half)]]),
        scales=torch.tensor([[0.3, 0.1, 0.2]]),
        opacities=torch.tensor([0.7]),
        sh=Gaussians.from_colors(torch.zeros(1, 3), torch.tensor([[0.2, 0.4, 0.6]]), 0.1).sh,
    )
    a = splat_arrays(g)
    k = a["scale"]
    # The long axis (x, 0.3) turned onto y: variance 0.09 along y, 0.01 along x.
    assert np.allclose(a["covariances"][0] * k * k, np.diag([0.01, 0.09, 0.04]), atol=1e-6)
    assert np.allclose(a["centers"] * k, [[0.1, 0.2, 0.3]])
    assert a["opacities"].dtype == np.uint8 and a["opacities"].tolist() == [[round(0.7 * 255)]]
    assert a["rgbs"].tolist() == [[51, 102, 153]]
    pytest.importorskip("viser")
    from gs_core.viewer.server import DISPLAY_RENDERER, DISPLAY_SPLATS, Viewer

    viewer = Viewer(_blob(), port=0, resolution=64, display="render")
    try:
        assert viewer.display == DISPLAY_RENDERER and viewer.splats_sent == 0
        viewer.display = DISPLAY_SPLATS
        assert viewer.display == DISPLAY_SPLATS and viewer.splats_sent == 1
        viewer.display = DISPLAY_RENDERER
        with pytest.raises(GS3DError, match="display"):
            viewer.display = "raytraced"
    finally:
        viewer.stop()


@pytest.mark.parametrize("size", [1e-3, 0.02, 3.0])
def test_splats_reach_viser_as_r_s_s_rt_with_their_colours(size):
    """Random Gaussians (unnormalised quaternions, anisotropic scales, colours beyond [0, 1])
    through viser's own packing: the covariance decoded from the bytes viser sends equals
    ``R S S^T R^T`` with ``R`` from scipy's quaternion convention (scalar last), to float16
    precision relative to the Gaussian's size, centres exactly, colours ``0.5 + C0 * f_dc``
    clamped and rounded to 8 bits."""
    from scipy.spatial.transform import Rotation

    from gs_core.gaussians import SH_C0
    from gs_core.viewer.splats import splat_arrays

    gen = torch.Generator().manual_seed(int(size * 1000))
    n = 64
    quats = torch.randn(n, 4, generator=gen) * 3.0
    scales = size * torch.exp(torch.randn(n, 3, generator=gen) * 0.7)
    dc = torch.randn(n, 3, generator=gen) * 2.5  # some colours far outside [0, 1]
    sh = dc[:, None, :]
    opacities = torch.rand(n, generator=gen)
    means = torch.randn(n, 3, generator=gen) * size * 20
    g = Gaussians(means=means, quats=quats / quats.norm(dim=-1, keepdim=True), scales=scales,
                  opacities=opacities, sh=sh)  # fmt: skip
    a = splat_arrays(g)
    R = Rotation.from_quat(quats[:, [1, 2, 3, 0]].double().numpy()).as_matrix()
    S = np.stack([np.diag(s) for s in scales.double().numpy()])
    expected_cov = R @ S @ S.transpose(0, 2, 1) @ R.transpose(0, 2, 1)
    rgb = np.clip(0.5 + SH_C0 * dc.double().numpy(), 0.0, 1.0)
    assert (np.abs(rgb - 0.5) > 0.49).any()  # the clamp matters
    assert np.array_equal(a["rgbs"], np.round(rgb * 255).astype(np.uint8))
    assert np.array_equal(a["opacities"][:, 0], np.round(opacities.double().numpy() * 255))

    viser = pytest.importorskip("viser")
    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    try:
        handle = server.scene.add_gaussian_splats("/splats", **a)
        buffer = np.asarray(handle.buffer)
        assert handle.scale == a["scale"]
    finally:
        server.stop()
    k = a["scale"]
    centers = buffer[:, 0:3].copy().view(np.float32) * k
    triu = buffer[:, 4:7].copy().view(np.float16).astype(np.float64) * k * k
    cov = triu[:, [0, 1, 2, 1, 3, 4, 2, 4, 5]].reshape(n, 3, 3)
    rgba = buffer[:, 7:8].copy().view(np.uint8)
    assert np.allclose(centers, means.numpy(), rtol=1e-6, atol=0)
    # float16 keeps 11 significant bits: 1e-3 of the largest variance of each Gaussian.
    tol = 2e-3 * np.abs(expected_cov).max(axis=(1, 2))[:, None, None]
    assert (np.abs(cov - expected_cov) <= tol).all()
    assert np.array_equal(rgba[:, :3], a["rgbs"]) and np.array_equal(rgba[:, 3:], a["opacities"])


def test_display_choice_and_draft_steering():
    from gs_core.rendering.numba_compositing import numba_available
    from gs_core.viewer.frames import MAX_DRAFT_STEP, MIN_DRAFT_RESOLUTION, GaussianFrames
    from gs_core.viewer.server import DISPLAY_RENDERER, DISPLAY_SPLATS, resolve_display

    # On the CPU, auto streams the renderer when the numba compositor draws the frames.
    fast_cpu = DISPLAY_RENDERER if numba_available() else DISPLAY_SPLATS
    assert resolve_display("auto", "cpu") == fast_cpu
    assert resolve_display("auto", "cpu", backend="numba") == fast_cpu
    assert resolve_display("auto", "cpu", backend="torch") == DISPLAY_SPLATS
    assert resolve_display("auto", "cuda") == DISPLAY_RENDERER
    assert resolve_display("render", "cpu") == DISPLAY_RENDERER
    assert resolve_display("splats", "cuda") == DISPLAY_SPLATS
    with pytest.raises(
        GS3DError, match="--display: expected auto, splats, render, points, got 'x'"
    ):
        resolve_display("x", "cpu")
    frames = GaussianFrames(_blob(), resolution=512)
    assert frames.draft_resolution == 256  # half size until a draft has been timed
    sizes = []
    for _ in range(12):  # drafts 4x slower than the target: smaller, but never below the floor
        frames._steer_draft(4 * 0.125)
        sizes.append(frames.draft_resolution)
    assert sizes[0] == round(256 / MAX_DRAFT_STEP) and sizes == sorted(sizes, reverse=True)
    assert sizes[-1] == MIN_DRAFT_RESOLUTION
    for _ in range(12):  # fast drafts grow back to the full size, no further
        frames._steer_draft(0.001)
    assert frames.draft_resolution == 512
    view = ViewerCamera.looking_at((0.0, 0.3, 2.0), (0.0, 0.0, 0.0), fov_y=0.9, aspect=2.0)
    frames._draft_resolution = 128
    assert frames.render(view, draft=True).shape == (64, 128, 3)
    assert frames.render(view).shape == (256, 512, 3)
    # A full frame 16x slower than a draft should be: drafts of a quarter of its side, at once.
    frames._draft_resolution = 512
    frames._steer_draft(16 * 0.125, 512)
    assert frames.draft_resolution == 128


# ---------------------------------------------------------------------------- helpers
def _box():
    import trimesh

    from gs_core.mesh import Mesh

    box = trimesh.creation.box(extents=(0.6, 0.4, 0.4))  # faces wound outwards
    colors = torch.tensor([0.1, 0.3, 0.9]).expand(len(box.vertices), 3).clone()
    return Mesh(
        vertices=torch.tensor(box.vertices, dtype=torch.float32),
        faces=torch.tensor(box.faces, dtype=torch.int64),
        vertex_colors=colors,
    ).validate()


def _blob() -> Gaussians:
    gen = torch.Generator().manual_seed(0)
    means = torch.randn(300, 3, generator=gen) * torch.tensor([0.25, 0.15, 0.15])
    colors = torch.tensor([0.8, 0.1, 0.1]).expand(300, 3)
    return Gaussians.from_colors(means, colors, 0.05, 0.9)


def _far_from(mask: np.ndarray, px: int) -> np.ndarray:
    """Pixels at least ``px`` away (in x and y) from any pixel of ``mask``."""
    near = mask.copy()
    for axis in (0, 1):
        grown = near.copy()
        for d in range(1, px + 1):
            grown |= np.roll(near, d, axis) | np.roll(near, -d, axis)
        near = grown
    return ~near


def _until(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_point_display_drops_faint_gaussians_and_keeps_colours():
    from gs_core.viewer.points import POINT_DIAMETER_SIGMAS, point_arrays

    g = Gaussians.from_colors(
        torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.2, 0.0]]),
        torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.4, 0.6]]),
        scales=torch.tensor([[0.01, 0.02, 0.01], [0.03, 0.01, 0.01], [0.05, 0.05, 0.05]]),
        opacities=torch.tensor([0.9, 0.05, 0.5]),
    )
    a = point_arrays(g)
    assert a["points"].shape == (2, 3) and a["colors"].dtype == np.uint8
    assert a["colors"].tolist() == [[255, 0, 0], [51, 102, 153]]  # the faint one is left out
    # torch's median of an even count is the lower middle value: 0.02 of (0.02, 0.05).
    assert a["point_size"] == pytest.approx(POINT_DIAMETER_SIGMAS * 0.02)
    with pytest.raises(ValidationError):
        point_arrays("not gaussians")
    pytest.importorskip("viser")
    from gs_core.viewer.server import DISPLAY_POINTS, Viewer, resolve_display

    assert resolve_display("points", "cuda") == DISPLAY_POINTS
    viewer = Viewer(_blob(), port=0, resolution=64, display="points")
    try:
        assert viewer.display == DISPLAY_POINTS and viewer.splats_sent == 1
        assert viewer.last_frame is None  # nothing streamed
    finally:
        viewer.stop()
