import os
import stat

import pytest
import torch

from gs_core.io.tensor_file import default_file_mode, save_tensors


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_saved_tensors_get_the_mode_open_would_give(tmp_path, mask):
    old = os.umask(mask)
    try:
        assert default_file_mode() == 0o666 & ~mask
        path = save_tensors({"w": torch.arange(3.0)}, tmp_path / "w.safetensors", {"k": "v"})
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_checkpoints_are_readable_by_the_group_under_the_usual_umask(tmp_path):
    from gs_core.pretrained import save_state_dict

    old = os.umask(0o022)
    try:
        save_state_dict({"w": torch.ones(2)}, tmp_path)
    finally:
        os.umask(old)
    files = list(tmp_path.glob("*.safetensors"))
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o644 for f in files)
