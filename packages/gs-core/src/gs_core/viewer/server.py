"""The browser viewer: a viser server showing Gaussians, a mesh or a training run.

* Gaussians are shown in one of three displays, chosen by ``display`` and switchable in the page:
  viser's own WebGL splats (the browser sorts and draws them on its GPU; the default when the
  server renders on a CPU, where it cannot stream frames at interactive rates), or frames of
  gs3d's renderer (:class:`~gs_core.viewer.frames.GaussianFrames`: exact, what ``gs3d render``
  and the evaluation see) streamed as each browser's background image, the default on CUDA;
  or viser's point cloud (:mod:`gs_core.viewer.points`: one opaque disc per Gaussian, the one
  display that stays interactive in a browser without a GPU).
  One :class:`~gs_core.viewer.latest_only.LatestOnlyWorker` per browser draws only the newest
  camera; on the CPU, frames are drafted small while the camera moves (sized to take about
  :data:`~gs_core.viewer.frames.DRAFT_TARGET_S`) and drawn in full once it rests.
* A mesh is sent once as a GLB (vertex colours or texture kept, matte) and drawn by the
  browser.
* A training run (:class:`~gs_core.viewer.training_run.TrainingRun`) shows its newest
  checkpoint's output on the input chosen in a dropdown and is re-generated when a newer
  checkpoint appears (checked every ``poll_s`` seconds).

viser is imported here only (``gs3d-core[viewer]``); nothing else of gs_core needs it.
"""

from __future__ import annotations

import contextlib
import io
import math
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from gs_core.errors import GS3DError
from gs_core.gaussians import Gaussians
from gs_core.mesh import Mesh
from gs_core.rendering.turntable import DEFAULT_FOV_DEG, frame_scene
from gs_core.viewer.camera import ViewerCamera
from gs_core.viewer.frames import GaussianFrames
from gs_core.viewer.latest_only import LatestOnlyWorker
from gs_core.viewer.mesh_glb import matte_glb
from gs_core.viewer.points import point_arrays
from gs_core.viewer.ports import check_port_free
from gs_core.viewer.splats import splat_arrays
from gs_core.viewer.training_run import TrainingRun

VISER_MISSING = "gs3d view needs viser, which is not installed: pip install 'gs3d-core[viewer]'"
# Seconds without a camera message after which a draft frame is redrawn in full.
SETTLE_S = 0.25
# The first view: in front of the scene (azimuth 0, the input view of an AGG output), slightly
# above it, as the turntables start.
START_ELEVATION_DEG = 15.0
JPEG_QUALITY = 90
# With viser's default lights, faces turned away from them keep this much of their colour.
AMBIENT_LIGHT = 1.0
DISPLAY_RENDERER = "gs3d renderer"
DISPLAY_SPLATS = "browser splats (WebGL)"
DISPLAY_POINTS = "browser points (WebGL)"
DISPLAYS = (DISPLAY_RENDERER, DISPLAY_SPLATS, DISPLAY_POINTS)
# ``--display`` names of the displays; ``auto`` picks by the render device (see resolve_display).
DISPLAY_CHOICES = {"splats": DISPLAY_SPLATS, "render": DISPLAY_RENDERER, "points": DISPLAY_POINTS}


def resolve_display(display: str, device: str | torch.device, backend: str = "auto") -> str:
    """The page's display for a ``--display`` choice: ``splats``, ``render``, ``points``, or
    ``auto``: the renderer's streamed frames where gs3d renders fast (on a GPU, or on the CPU
    with the numba compositor: about 17 full 512x512 frames/s of the bundled AGG output on the
    2-core CPU, ``benchmarks/viewer.py``), the browser's WebGL splats otherwise (the torch
    compositor draws about one such frame/s)."""
    if display in DISPLAYS:
        return display
    if display == "auto":
        dev = torch.device(device)
        if dev.type == "cuda":
            return DISPLAY_RENDERER
        from gs_core.rendering.numba_compositing import numba_available

        fast = dev.type == "cpu" and backend in ("auto", "numba") and numba_available()
        return DISPLAY_RENDERER if fast else DISPLAY_SPLATS
    if display not in DISPLAY_CHOICES:
        raise GS3DError(f"--display: expected auto, {', '.join(DISPLAY_CHOICES)}, got '{display}'")
    return DISPLAY_CHOICES[display]


def import_viser():
    """The viser module, or one :class:`GS3DError` line saying how to install it."""
    try:
        import viser
    except ImportError:
        raise GS3DError(VISER_MISSING) from None
    return viser


def start_camera(scene: Gaussians | Mesh) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(position, look_at)`` of the first view: the whole scene in a 49.1 degree vertical
    field of view, from azimuth 0 and 15 degrees above."""
    target, distance = frame_scene(scene, DEFAULT_FOV_DEG)
    el = math.radians(START_ELEVATION_DEG)
    eye = (
        target[0],
        target[1] + distance * math.sin(el),
        target[2] + distance * math.cos(el),
    )
    return eye, target


class Viewer:
    """A running viewer; :meth:`stop` ends it.

    Args:
        scene: Gaussians (unbatched ``[N]``), a :class:`Mesh`, or a :class:`TrainingRun`.
        host, port: where to listen (``port`` 0: any free port; see :attr:`port`).
        resolution: pixels on the longer side of a streamed frame.
        background: RGB in [0, 1] behind the Gaussians.
        backend, device: of :func:`gs_core.rendering.render`.
        display: how Gaussians are shown first: ``auto``, ``splats`` or ``render`` (see
            :func:`resolve_display`), or one of :data:`DISPLAYS`.
        poll_s: seconds between looks for a newer checkpoint of a training run.
        log: receives one line per event worth telling (a new checkpoint, a failed frame).
    """

    def __init__(
        self,
        scene: Gaussians | Mesh | TrainingRun,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        resolution: int = 512,
        background: Sequence[float] = (1.0, 1.0, 1.0),
        backend: str = "auto",
        device: str | torch.device = "cpu",
        display: str = "auto",
        poll_s: float = 3.0,
        log: Callable[[str], None] | None = None,
    ):
        viser = import_viser()
        self.device = torch.device(device)
        self._display = resolve_display(display, self.device, backend)
        self._log = log or (lambda line: None)
        self._run = scene if isinstance(scene, TrainingRun) else None
        self._input_index = 0
        if self._run is not None:
            self._run.refresh()
            scene = self._run.generate(self._input_index)
        if not isinstance(scene, Gaussians | Mesh):
            raise GS3DError(
                f"scene: expected Gaussians, a Mesh or a TrainingRun, got {type(scene).__name__}"
            )
        self._render_options = dict(
            resolution=resolution, background=background, backend=backend, device=self.device
        )
        self._frames: GaussianFrames | None = None  # made with the first Gaussians shown
        self._scene: Gaussians | Mesh = scene
        self._workers: dict[int, LatestOnlyWorker[ViewerCamera]] = {}
        # Workers of closed tabs that may still be drawing; stop() waits for them, so no
        # render thread is left running into interpreter shutdown.
        self._closing: list[LatestOnlyWorker[ViewerCamera]] = []
        self._clients: dict[int, object] = {}
        self._lock = threading.RLock()
        self._node = None
        self._stopped = threading.Event()
        self._frame_line = ""
        self.splats_sent = 0  # Gaussian sets handed to the browsers' splat display
        self.frames_sent = 0  # streamed frames, drafts included (benchmarks/viewer.py)
        # The camera and image of the newest full frame sent to a browser (tests and the README
        # screenshot wait for the one of the start camera).
        self.last_frame: tuple[ViewerCamera, np.ndarray] | None = None

        check_port_free(host, port)
        # viser prints a banner of its own on stdout; the caller says where to point the
        # browser in its own words (stdout may carry a command's results).
        with contextlib.redirect_stdout(io.StringIO()):
            self.server = viser.ViserServer(host=host, port=port, label="gs3d view", verbose=False)
        self.host = host
        self.port = int(self.server.get_port())
        if port != 0 and self.port != port:  # taken between the check and the bind
            self.server.stop()
            raise GS3DError(
                f"--port {port}: already in use on {host}; choose another with --port N"
            )
        try:
            self._setup(scene)
        except BaseException:
            self.server.stop()
            raise
        self._poller = None
        if self._run is not None:
            self._poll_s = float(poll_s)
            self._poller = threading.Thread(target=self._poll, name="gs3d-viewer-poll", daemon=True)
            self._poller.start()

    def _setup(self, scene: Gaussians | Mesh) -> None:
        # The share button would open a tunnel through viser's public relay: not for a viewer
        # that listens on localhost by default.
        self.server.gui.configure_theme(show_share_button=False)
        self.server.scene.set_up_direction("+y")
        # No environment map: prefiltering it takes tens of seconds in a software-rendered
        # browser (remote desktops, CI), and streamed Gaussians never use it. Meshes are lit by
        # viser's default lights (without shadow maps, as costly) and an ambient light instead.
        self.server.scene.configure_environment_map(None)
        self.server.scene.configure_default_lights(enabled=True, cast_shadow=False)
        self.server.scene.add_light_ambient("/ambient", intensity=AMBIENT_LIGHT)
        eye, target = start_camera(scene)
        cam = self.server.initial_camera
        cam.fov = math.radians(DEFAULT_FOV_DEG)
        cam.up = (0.0, 1.0, 0.0)
        cam.position = eye  # position before look_at: viser moves look_at with the position
        cam.look_at = target
        self._build_gui()
        self._show(scene)
        self.server.on_client_connect(self._connect)
        self.server.on_client_disconnect(self._disconnect)

    # ------------------------------------------------------------------ public
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{self.port}/"

    @property
    def scene(self) -> Gaussians | Mesh:
        return self._scene

    @property
    def clients(self) -> int:
        """Browsers connected now."""
        with self._lock:
            return len(self._clients)

    @property
    def display(self) -> str:
        """How Gaussians are shown: one of :data:`DISPLAYS`."""
        return self._display

    @display.setter
    def display(self, value: str) -> None:
        if value not in DISPLAYS:
            raise GS3DError(f"display: expected one of {', '.join(DISPLAYS)}, got '{value}'")
        self._display_dd.value = value  # the page shows the choice too
        self._set_display(value)

    def set_scene(self, scene: Gaussians | Mesh) -> None:
        """Show ``scene`` instead, keeping every browser's camera."""
        with self._lock:
            self._scene = scene
            self._show(scene)

    def wait(self) -> None:
        """Block until :meth:`stop` (from another thread) or Ctrl+C."""
        try:
            while not self._stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            workers = [*self._workers.values(), *self._closing]
            self._workers.clear()
            self._closing.clear()
        for w in workers:
            w.close()
        if self._poller is not None:
            self._poller.join(timeout=10)
        self.server.stop()

    # ------------------------------------------------------------------ scene
    def _show(self, scene: Gaussians | Mesh) -> None:
        if self._node is not None:
            self._node.remove()
            self._node = None
        self._display_dd.visible = isinstance(scene, Gaussians)  # a mesh is always the browser's
        if isinstance(scene, Mesh):
            self._node = self.server.scene.add_glb(
                "/mesh", matte_glb(scene), cast_shadow=False, receive_shadow=False
            )
            self._clear_backgrounds()
            self._frame_line = ""
            self._status(f"mesh: {scene.num_vertices:,} vertices, {scene.num_faces:,} faces")
            return
        if self._frames is None:
            self._frames = GaussianFrames(scene, **self._render_options)
        else:
            self._frames.gaussians = scene
        if self._display == DISPLAY_SPLATS:
            self._node = self.server.scene.add_gaussian_splats("/splats", **splat_arrays(scene))
            self._clear_backgrounds()
            self.splats_sent += 1
        elif self._display == DISPLAY_POINTS:
            self._node = self.server.scene.add_point_cloud("/points", **point_arrays(scene))
            self._clear_backgrounds()
            self.splats_sent += 1
        else:
            for w in list(self._workers.values()):
                w.redraw()
        how = {
            DISPLAY_SPLATS: "viser's WebGL splats",
            DISPLAY_POINTS: "viser's WebGL points (one opaque disc per Gaussian)",
        }.get(self._display, f"gs3d renderer ({self._frames.backend_name}) on {self.device}")
        self._status(f"{scene.num_gaussians:,} Gaussians: {how}")

    def _clear_backgrounds(self) -> None:
        for client in list(self._clients.values()):
            client.scene.set_background_image(None)

    # ------------------------------------------------------------------ GUI
    def _build_gui(self) -> None:
        gui = self.server.gui
        self._status_md = gui.add_markdown("")
        self._display_dd = gui.add_dropdown(
            "display",
            DISPLAYS,
            initial_value=self._display,
            hint="gs3d renderer: what gs3d render and the evaluation see, streamed as images "
            "(slow on a CPU server). Browser splats: viser's WebGL splats, drawn by your "
            "browser's GPU (degree-0 colour only; slow where the browser has no GPU). Browser "
            "points: one opaque disc per Gaussian, fast even without a GPU.",
        )
        self._display_dd.on_update(lambda _: self._set_display(self._display_dd.value))
        self._input_dd = None
        self._checkpoint_md = None
        if self._run is not None:
            names = _unique([inp.name for inp in self._run.inputs])
            self._input_names = names
            self._input_dd = gui.add_dropdown("input", names, initial_value=names[0])
            self._input_dd.on_update(lambda _: self._choose_input(self._input_dd.value))
            self._checkpoint_md = gui.add_markdown(self._checkpoint_line())

    def _status(self, line: str) -> None:
        self._scene_line = line
        self._status_md.content = f"{line}  \n{self._frame_line}"

    def _set_display(self, value: str) -> None:
        with self._lock:
            if value == self._display:
                return
            self._display = value
            self._show(self._scene)

    def _choose_input(self, name: str) -> None:
        index = self._input_names.index(name)
        self._input_index = index
        self._regenerate(f"input {name}")

    def _checkpoint_line(self) -> str:
        ref = self._run.checkpoint if self._run is not None else None
        when = time.strftime("%H:%M:%S")
        return f"checkpoint: {ref.label if ref else 'none'} (loaded {when})  \n`{ref.path if ref else ''}`"

    # ------------------------------------------------------------------ training run
    def _regenerate(self, why: str) -> None:
        try:
            scene = self._run.generate(self._input_index)
        except GS3DError as e:
            self._log(f"{why}: {e}")
            return
        self.set_scene(scene)
        self._log(f"{why}: showing {self._run.inputs[self._input_index].name}")

    def _poll(self) -> None:
        while not self._stopped.wait(self._poll_s):
            try:
                changed = self._run.refresh()
            except GS3DError as e:
                self._log(f"checkpoint not reloaded: {e}")
                continue
            if changed:
                self._checkpoint_md.content = self._checkpoint_line()
                self._regenerate(f"new checkpoint ({self._run.checkpoint.label})")

    # ------------------------------------------------------------------ browsers
    def _connect(self, client) -> None:
        def draw(view: ViewerCamera, draft: bool) -> None:
            with self._lock:
                frames = self._frames
                streaming = self._display == DISPLAY_RENDERER and isinstance(self._scene, Gaussians)
            if not streaming or frames is None:
                return
            t0 = time.perf_counter()
            image = frames.render(view, draft=draft)
            ms = (time.perf_counter() - t0) * 1000
            with self._lock:
                if client.client_id not in self._clients:  # the tab closed while drawing
                    return
            client.scene.set_background_image(image, format="jpeg", jpeg_quality=JPEG_QUALITY)
            self.frames_sent += 1
            if not draft:
                self.last_frame = (view, image)
                self._frame_line = f"last frame {image.shape[1]}x{image.shape[0]} in {ms:.0f} ms"
                self._status_md.content = f"{self._scene_line}  \n{self._frame_line}"

        settle = SETTLE_S if self.device.type == "cpu" else None
        worker: LatestOnlyWorker[ViewerCamera] = LatestOnlyWorker(
            draw, settle_s=settle, on_error=lambda e: self._log(f"frame not drawn: {e}")
        )
        with self._lock:
            self._workers[client.client_id] = worker
            self._clients[client.client_id] = client

        def moved(camera) -> None:
            if camera.image_width > 0 and camera.image_height > 0:
                worker.submit(ViewerCamera.from_viser(camera))

        client.camera.on_update(moved)
        moved(client.camera)

    def _disconnect(self, client) -> None:
        with self._lock:
            worker = self._workers.pop(client.client_id, None)
            self._clients.pop(client.client_id, None)
        if worker is not None:
            worker.close(timeout=0)  # not waited for here: viser's event loop calls this
            with self._lock:
                self._closing.append(worker)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


__all__ = [
    "DISPLAY_CHOICES",
    "DISPLAYS",
    "Viewer",
    "import_viser",
    "resolve_display",
    "start_camera",
]
