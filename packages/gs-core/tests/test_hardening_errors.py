"""Issue #14, "tracebacks instead of one line" and "nothing lost": every class of bad input a
user can cause ends in one line naming the file or field, exit code 2, and no debris.

Classes: operating-system and memory failures reaching the CLI; atomic-write temporaries of
interrupted writes; PLY header abuse and empty scenes; malformed checkpoint indexes; dataset
paths escaping their folder; plugin factories that raise; hand-edited run snapshots; absurd
sizes in configs and options.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from gs_core import CORE_API_VERSION, Gaussians
from gs_core.cli import main as cli_main
from gs_core.config import Config, GaussianCount, Resolution
from gs_core.errors import FileFormatError, GS3DError, PluginError
from gs_core.io import OutputWriteError, atomic_path, atomic_write_bytes, load_ply, save_ply
from gs_core.io.atomic import (
    OutputExistsError,
    clean_stale_temps,
    fresh_output_dir,
    temp_path_for,
)


def _run(argv: list[str], capsys) -> tuple[int, str]:
    """``gs3d ARGV`` in-process: exit code and stderr."""
    with pytest.raises(SystemExit) as e:
        cli_main.main(argv)
    return e.value.code, capsys.readouterr().err


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _scene(path, n=3):
    means = torch.linspace(-0.2, 0.2, 3 * n).reshape(n, 3)
    save_ply(path, Gaussians.from_colors(means, torch.full((n, 3), 0.5), 0.05, 0.9))
    return path


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ------------------------------------------------------ OS and memory errors reach one line
def test_writes_the_os_refuses_name_the_output_path(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(OutputWriteError, match=r"afile/out\.ply: cannot write: .*not a directory"):
        atomic_write_bytes(blocker / "out.ply", b"data")
    (tmp_path / "adir.ply").mkdir()
    with pytest.raises(OutputWriteError, match=r"adir\.ply: cannot write: it is a directory"):
        atomic_write_bytes(tmp_path / "adir.ply", b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.ply", "afile"]


def test_a_full_disk_names_the_target_not_the_temporary(tmp_path, monkeypatch):
    target = tmp_path / "big.ply"

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr("pathlib.Path.write_bytes", full)
    with pytest.raises(OutputWriteError) as e:
        atomic_write_bytes(target, b"x")
    assert str(e.value) == f"{target}: cannot write: no space left on device"
    assert list(tmp_path.iterdir()) == []


def test_render_into_a_directory_is_refused_before_rendering(tmp_path, capsys):
    scene = _scene(tmp_path / "three.ply")
    (tmp_path / "out.png").mkdir()
    code, err = _run(
        ["render", str(scene), "--grid", str(tmp_path / "out.png"), "--overwrite"], capsys
    )
    assert code == 2
    assert "out.png: cannot write: it is a directory" in _one_error_line(err)
    assert "rendering" not in err  # refused up front, not after the work


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (PermissionError(errno.EACCES, "Permission denied", "/data/out.ply"), "error: /data/out.ply: permission denied"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "out.ply"), "error: out.ply: it is a directory"),
        (OSError(errno.ENOSPC, "No space left on device", "/x.ply"), "error: /x.ply: no space left on device"),
        (MemoryError(), "error: out of memory; try a smaller --resolution"),
        (RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 TB"), "error: out of memory (["),
        (GS3DError("model 'a[b]': hint pip install 'gs3d-core[cuda]'"), "error: model 'a[b]': hint pip install 'gs3d-core[cuda]'"),
    ],
)  # fmt: skip
def test_main_turns_os_memory_and_gs3d_errors_into_one_line(monkeypatch, capsys, exc, expected):
    def app(**kwargs):
        raise exc

    monkeypatch.delenv(cli_main.DEBUG_ENV, raising=False)
    monkeypatch.setattr(cli_main, "app", app)
    code, err = _run(["anything"], capsys)
    assert code == 2
    assert _one_error_line(err).startswith(expected)


def test_bugs_and_debug_mode_keep_their_traceback(monkeypatch):
    def app(**kwargs):
        raise RuntimeError("an internal bug")

    monkeypatch.setattr(cli_main, "app", app)
    with pytest.raises(RuntimeError, match="internal bug"):
        cli_main.main([])

    def app_os(**kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", "/x")

    monkeypatch.setattr(cli_main, "app", app_os)
    monkeypatch.setenv(cli_main.DEBUG_ENV, "1")
    with pytest.raises(PermissionError):
        cli_main.main([])


def test_help_documents_the_debug_variable():
    r = subprocess.run(
        [sys.executable, "-m", "gs_core.cli.main", "--help"], capture_output=True, text=True
    )
    assert r.returncode == 0 and "GS3D_DEBUG=1" in r.stdout


# ------------------------------------------------------------ temporaries of atomic writes
@pytest.mark.parametrize("interrupt", [ValueError("writer failed"), KeyboardInterrupt()])
def test_an_interrupted_write_removes_its_temporary(tmp_path, interrupt):
    target = tmp_path / "out.ply"
    target.write_bytes(b"old")
    for kind in ("file", "dir"):
        with pytest.raises(type(interrupt)), atomic_path(target) as tmp:
            assert tmp.name.startswith(".out.ply.gs3d-tmp-")
            if kind == "file":
                tmp.write_bytes(b"half")
            else:
                (tmp / "sub").mkdir(parents=True)
            raise interrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ply"]
    assert target.read_bytes() == b"old"


def test_a_run_output_folder_is_never_mixed_with_an_earlier_run(tmp_path):
    out = fresh_output_dir(tmp_path / "a" / "run", overwrite=False)  # made, parents too
    assert out.is_dir()
    assert fresh_output_dir(out, overwrite=False) == out  # empty: used as it is
    (out / "results.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        fresh_output_dir(out, overwrite=False)
    assert (out / "results.json").exists()  # refused before touching anything
    fresh_output_dir(out, overwrite=True)
    assert out.is_dir() and not any(out.iterdir())
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputWriteError, match="is a file"):
        fresh_output_dir(tmp_path / "f", overwrite=True)


def test_a_failed_write_leaves_no_folders_it_made(tmp_path):
    with pytest.raises(ValueError), atomic_path(tmp_path / "new" / "deeper" / "out.ply"):
        raise ValueError("writer failed")
    assert list(tmp_path.iterdir()) == []


def test_the_next_write_removes_temporaries_of_dead_processes_only(tmp_path):
    target = tmp_path / "scene.ply"
    dead = temp_path_for(target).name.replace(f"-{os.getpid()}-", f"-{_dead_pid()}-")
    (tmp_path / dead).write_bytes(b"x" * 1000)  # a write killed outright (SIGKILL, power loss)
    (tmp_path / dead.replace("-tmp-", "-old-")).mkdir()  # a killed directory swap
    alive = temp_path_for(target).name.replace(f"-{os.getpid()}-", f"-{os.getppid()}-")
    (tmp_path / alive).write_bytes(b"concurrent")  # another process writing right now
    other = temp_path_for(tmp_path / "scene.ply.bak").name.replace(
        f"-{os.getpid()}-", f"-{_dead_pid()}-"
    )
    (tmp_path / other).write_bytes(b"another target's")
    (tmp_path / ".scene.ply.notes").write_text("not ours")
    atomic_write_bytes(target, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".scene.ply.notes", alive, other, "scene.ply"]
    )
    assert clean_stale_temps(tmp_path / "scene.ply.bak") == [tmp_path / other]


def test_a_write_told_not_to_clean_leaves_the_folder_unlisted(tmp_path):
    """clean_stale=False: a writer filling a folder of its own skips the listing of the folder
    (quadratic in its entries when done once per entry, as gs3d data procedural did)."""
    target = tmp_path / "obj_00001"
    dead = temp_path_for(target).name.replace(f"-{os.getpid()}-", f"-{_dead_pid()}-")
    (tmp_path / dead).mkdir()
    with atomic_path(target, clean_stale=False) as tmp:
        tmp.mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([dead, "obj_00001"])
    with atomic_path(target) as tmp:  # the default: the dead process's temporary goes
        tmp.mkdir()
    assert [p.name for p in tmp_path.iterdir()] == ["obj_00001"]


# ------------------------------------------------------------------- PLY headers, empty PLYs
_VALID = b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\nend_header\n"


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (_VALID.replace(b"property float y", b"property float x"), "repeats property 'x' of element 'vertex'"),
        (_VALID.replace(b"end_header", b"element vertex 1\nproperty float w\nend_header"), "declares element 'vertex' twice"),
        (_VALID.replace(b"format", b"format ascii 1.0\nformat"), "more than one 'format' line"),
        (b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nend_header\n", "declares no properties"),
        (_VALID.replace(b"property float x", b"propery float x"), "unknown PLY header line 'propery float x'"),
        (_VALID.replace(b"element vertex 1", b"element vertex"), "bad element line 'element vertex'"),
        (_VALID.replace(b"property float x", b"property list uchar x"), "unsupported property line"),
        (_VALID.replace(b"\nend_header\n", b"\ncomment end_header\n"), "no 'end_header' line"),
    ],
)  # fmt: skip
def test_ply_header_abuse_is_one_line(tmp_path, header, problem):
    path = tmp_path / "bad.ply"
    path.write_bytes(header + np.zeros(3, "<f4").tobytes())
    with pytest.raises(FileFormatError) as e:
        load_ply(path)
    assert str(e.value).startswith(f"{path}: ") and problem in str(e.value)
    assert "\n" not in str(e.value)


def test_a_comment_mentioning_end_header_does_not_end_the_header(tmp_path):
    path = _scene(tmp_path / "ok.ply", n=2)
    blob = path.read_bytes().replace(b"ply\n", b"ply\ncomment made before end_header\n", 1)
    path.write_bytes(blob)
    assert load_ply(path).num_gaussians == 2


def test_rendering_zero_gaussians_is_refused(tmp_path, capsys):
    zero = tmp_path / "zero.ply"
    save_ply(zero, Gaussians.from_colors(torch.zeros(0, 3), torch.zeros(0, 3), 0.1, 0.5))
    code, err = _run(["render", str(zero), "--grid", str(tmp_path / "z.png")], capsys)
    assert code == 2
    assert _one_error_line(err).endswith("zero.ply: no Gaussians to render")
    assert not (tmp_path / "z.png").exists()


# ----------------------------------------------------------- checkpoint index (safetensors)
@pytest.mark.parametrize(
    ("weight_map", "problem"),
    [
        (["model-1.safetensors"], "field 'weight_map': expected an object"),
        ({"w": 3}, "field 'weight_map.w': expected a shard file name, got 3"),
        ({"w": None}, "field 'weight_map.w': expected a shard file name"),
        ({"w": "../outside.safetensors"}, "expected a file name inside the checkpoint folder"),
        ({"w": "/etc/model.safetensors"}, "expected a file name inside the checkpoint folder"),
        ({"w": "sub/model.safetensors"}, "expected a file name inside the checkpoint folder"),
        ({}, "field 'weight_map': expected an object"),
    ],
)
def test_a_malformed_checkpoint_index_is_one_line(tmp_path, weight_map, problem):
    from gs_core.pretrained import INDEX_NAME, load_state_dict

    index = tmp_path / INDEX_NAME
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    with pytest.raises(FileFormatError) as e:
        load_state_dict(tmp_path)
    assert str(e.value).startswith(f"{index}: ") and problem in str(e.value)


def test_a_sharded_checkpoint_still_loads(tmp_path):
    from gs_core.pretrained import load_state_dict, save_state_dict

    state = {"a": torch.arange(4.0), "b": torch.ones(3)}
    save_state_dict(state, tmp_path, max_shard_bytes=16)
    loaded = load_state_dict(tmp_path)
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


# ------------------------------------------------------------ dataset paths stay inside
def _object(folder, file_path="images/000.png", **frame):
    from gs_core.data.transforms import transforms_dict

    folder.mkdir(parents=True)
    d = transforms_dict(np.eye(4)[None], [file_path], 8, 8, fl_x=10.0)
    d["frames"][0].update(frame)
    (folder / "transforms.json").write_text(json.dumps(d))
    return folder


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("file_path", "../secret.png"),
        ("file_path", "images/../../secret.png"),
        ("file_path", "/etc/passwd"),
        ("file_path", "..\\secret.png"),
        ("mask_file_path", "../mask.png"),
        ("depth_file_path", "/tmp/depth.png"),
    ],
)
def test_dataset_file_paths_may_not_leave_the_object_folder(tmp_path, field, value):
    from gs_core.data.transforms import read_transforms

    folder = _object(tmp_path / "obj", **{field: value})
    with pytest.raises(FileFormatError) as e:
        read_transforms(folder)
    assert str(e.value) == (
        f"{folder / 'transforms.json'}: field 'frames[0].{field}': expected a path inside "
        f"{folder}, got {value!r}"
    )


def test_paths_that_stay_inside_are_accepted(tmp_path):
    from gs_core.data.transforms import read_transforms

    folder = _object(tmp_path / "obj", file_path="./images/../images/000.png")
    assert read_transforms(folder).frames[0].image_path == folder.absolute() / "images/000.png"


@pytest.mark.parametrize("entry", ["../obj", "/abs/obj", "obj/sub", ".."])
def test_split_and_category_lists_name_folders_not_paths(tmp_path, entry):
    from gs_core.data.layout import categories, read_split

    _object(tmp_path / "obj")
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "test.txt").write_text(f"obj\n{entry}\n")
    with pytest.raises(FileFormatError, match=r"test\.txt: line 2: expected an object id"):
        read_split(tmp_path, "test")
    (tmp_path / "categories").mkdir()
    (tmp_path / "categories" / "mugs.txt").write_text(f"{entry}\n")
    with pytest.raises(FileFormatError, match=r"mugs\.txt: line 1: expected an object id"):
        categories(tmp_path)


# ---------------------------------------------------------------- plugins that raise
class _BadConfig(Config):
    width: int = 2
    presets = {"tiny": {}, "paper": {}}


def _exploding_factory(config):
    raise RuntimeError("CUDA kernels not built\n  (second line of the plugin's message)")


@pytest.fixture
def bad_plugin():
    from gs_core.plugins.registry import reset_registry
    from gs_core.plugins.specs import MethodSpec

    reg = reset_registry(discover=False)
    spec = MethodSpec(
        name="boom",
        summary="a plugin whose factory raises",
        config_class=_BadConfig,
        factory=_exploding_factory,
        core_api=CORE_API_VERSION,
        has_weights=False,
    )
    object.__setattr__(spec, "distribution", "gs-method-boom")
    reg.register_method(spec)
    yield reg
    reset_registry()


def test_a_raising_factory_is_a_plugin_error_naming_method_and_distribution(bad_plugin):
    from gs_core.loading import load_method

    with pytest.raises(PluginError) as e:
        load_method("boom")
    assert str(e.value) == (
        "method 'boom' (gs-method-boom): building the model failed "
        "(RuntimeError: CUDA kernels not built)"
    )
    assert isinstance(e.value.__cause__, RuntimeError)  # kept for GS3D_DEBUG=1


def test_generate_and_train_with_a_raising_plugin_are_one_line(bad_plugin, tmp_path, capsys):
    from PIL import Image

    img = tmp_path / "in.png"
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[4:12, 4:12] = (200, 30, 30, 255)
    Image.fromarray(rgba, "RGBA").save(img)
    code, err = _run(
        [
            "generate",
            str(img),
            "--method",
            "boom",
            "-o",
            str(tmp_path / "o.ply"),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 2
    assert "method 'boom' (gs-method-boom): building the model failed" in _one_error_line(err)
    code, err = _run(
        ["train", "--method", "boom", "--preset", "tiny", "--out", str(tmp_path / "r")], capsys
    )
    assert code == 2
    assert "building the model failed (RuntimeError" in _one_error_line(err)
    assert not (tmp_path / "o.ply").exists()


# ------------------------------------------------------ hand-edited run snapshot on --resume
@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        ({"seed": "zero"}, "field 'seed': expected an integer seed, got 'zero'"),
        ({"seed": True}, "field 'seed': expected an integer seed, got True"),
        ({"seed": -1}, "field 'seed': expected an integer in [0, 2**63)"),
        ({"method": 3}, "field 'method': expected a method name (string), got 3"),
        ({"preset": ["tiny"]}, "field 'preset': expected a preset name (string) or null"),
        ({"overrides": "width=8"}, "field 'overrides': expected a list of 'key=value' strings"),
        ({"overrides": [8]}, "field 'overrides[0]': expected a 'key=value' string, got 8"),
        ({"data": 5}, "field 'data': expected a data path (string) or null, got 5"),
    ],
)
def test_a_hand_edited_run_config_is_one_line_on_resume(tmp_path, capsys, edit, problem):
    run = tmp_path / "run"
    run.mkdir()
    snapshot = {"method": "toy", "preset": "tiny", "stage": None, "seed": 0, "overrides": []}
    (run / "config.json").write_text(json.dumps({**snapshot, **edit}))
    code, err = _run(["train", "--out", str(run), "--resume"], capsys)
    assert code == 2
    assert _one_error_line(err).startswith(f"error: {run / 'config.json'}: {problem}")


# -------------------------------------------------------------------- absurd sizes
class _Sizes(Config):
    resolution: Resolution = 64
    num_gaussians: GaussianCount = 1024


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("num_gaussians=1e9", "field 'num_gaussians': expected 1 to 10,000,000 Gaussians, got 1,000,000,000"),
        ("resolution=1000000", "field 'resolution': expected 1 to 8,192 pixels, got 1,000,000"),
        ("resolution=0", "field 'resolution': expected 1 to 8,192 pixels, got 0"),
    ],
)  # fmt: skip
def test_size_fields_refuse_absurd_values_before_allocating(override, problem):
    with pytest.raises(GS3DError) as e:
        _Sizes().with_overrides([override])
    assert str(e.value) == f"invalid override for _Sizes: {problem}"


def test_core_configs_bound_their_sizes():
    from gs_core.data.dataset import MultiViewConfig
    from gs_core.evaluation.harness import EvalConfig

    for cfg, field in (
        (MultiViewConfig(), "resolution"),
        (MultiViewConfig(), "num_points"),
        (EvalConfig(), "resolution"),
    ):
        with pytest.raises(GS3DError, match=f"field '{field}': expected 1 to"):
            cfg.with_overrides({field: 10**9})  # fmt: skip


def test_agg_config_refuses_a_billion_gaussians():
    agg = pytest.importorskip("gs_method_agg.config")
    cfg = agg.AGGConfig.preset("tiny")
    for override, problem in (
        ("num_gaussians=1e9", "field 'num_gaussians': expected 1 to 10,000,000 Gaussians"),
        ("render_resolution=100000", "field 'render_resolution': expected 1 to 8,192 pixels"),
        ("upsampler.ratio=100000", "12,800,000 output Gaussians; expected at most 10,000,000"),
        ("geometry.dim=1000000", "field 'geometry.dim': expected 1 to 16,384 channels"),
    ):
        with pytest.raises(GS3DError, match=problem.replace(".", r"\.")):
            cfg.with_overrides([override])


@pytest.mark.parametrize("command", ["render", "eval", "demo", "data"])
def test_resolution_options_have_an_upper_bound(tmp_path, capsys, command):
    argv = {
        "render": ["render", str(tmp_path / "x.ply"), "--grid", str(tmp_path / "g.png")],
        "eval": ["eval", str(tmp_path)],
        "demo": ["demo", "--out", str(tmp_path / "demo")],
        "data": ["data", "procedural", "--out", str(tmp_path / "d")],
    }[command]
    code, err = _run([*argv, "--resolution", "100000"], capsys)
    assert code == 2
    assert "--resolution" in err and "8192" in err
    assert list(tmp_path.iterdir()) == []
