"""``gs_core.devices.resolve_device``: one reading of auto | cpu | cuda | cuda:N everywhere."""

from __future__ import annotations

import pytest
import torch

from gs_core.devices import resolve_device
from gs_core.errors import GS3DError


def test_cpu_and_auto_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("CPU") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_auto_picks_cuda_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_one_clear_line(monkeypatch, name):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(GS3DError, match=f"--device {name}: CUDA is not available") as e:
        resolve_device(name, field="--device")
    assert "\n" not in str(e.value)


def test_cuda_index_past_the_last_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(GS3DError, match=r"device cuda:2: this machine has 2 CUDA device\(s\)"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cuda:", "tpu:0", "", "cpu:0"])
def test_bogus_names(name):
    with pytest.raises(GS3DError, match="expected auto, cpu, cuda or cuda:N") as e:
        resolve_device(name, field="--device")
    assert str(e.value).startswith(f"--device '{name}'")


def test_child_environment_shares_the_cores_and_names_the_gpu(monkeypatch):
    import gs_core.devices as devices

    monkeypatch.setattr(devices, "available_cores", lambda: 16)
    env = devices.child_environment(12, gpu=1, base={"PATH": "/bin"})
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"  # 16 // 12
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["PATH"] == "/bin"
    assert devices.child_environment(4, base={})["OMP_NUM_THREADS"] == "4"
    assert "CUDA_VISIBLE_DEVICES" not in devices.child_environment(4, base={})
    # the user's own thread count is kept
    assert devices.child_environment(4, base={"OMP_NUM_THREADS": "7"})["OMP_NUM_THREADS"] == "7"
    with pytest.raises(GS3DError, match="jobs"):
        devices.child_environment(0)


def test_build_before_children_is_a_no_op_on_the_cpu():
    from gs_core.rendering import build_before_children

    assert build_before_children("cpu") is None


def test_build_in_background_hands_the_build_result_over_from_another_thread(monkeypatch):
    import threading

    from gs_core.rendering import build_in_background, gsplat_backend

    threads = []

    def build(device):
        threads.append(threading.current_thread())
        if device == "broken":
            raise RuntimeError("nvcc died")
        return f"no gsplat on {device}"

    monkeypatch.setattr(gsplat_backend, "build_before_children", build)
    assert build_in_background("cuda:1").result(timeout=10) == "no gsplat on cuda:1"
    assert threads[0] is not threading.main_thread() and threads[0].daemon
    with pytest.raises(RuntimeError, match="nvcc died"):
        build_in_background("broken").result(timeout=10)
    monkeypatch.undo()
    assert build_in_background("cpu").result(timeout=10) is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_build_before_children_builds_gsplat_on_cuda():
    from gs_core.rendering import build_before_children, gsplat_available

    assert build_before_children("cuda") is None and gsplat_available()


def test_to_device_async_refuses_inside_a_graph_capture(monkeypatch):
    from gs_core.devices import to_device_async

    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    with pytest.raises(GS3DError, match="CUDA-graph capture"):
        to_device_async(torch.arange(3.0), "cuda")


def test_to_device_async_on_the_cpu_is_plain_to():
    from gs_core.devices import to_device_async

    t = torch.arange(3.0)
    assert to_device_async(t, None) is t and to_device_async(t, "cpu") is t


@pytest.mark.gpu
def test_to_device_async_copies_to_cuda_without_synchronising():
    from gs_core.devices import to_device_async

    t = torch.arange(1000.0)
    torch.cuda.set_sync_debug_mode("error")
    try:
        moved = to_device_async(t, "cuda")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert moved.is_cuda and torch.equal(moved.cpu(), t)
