"""gs_core.testing.load_script: a script imported in-process, once per call."""

from __future__ import annotations

from gs_core.testing import load_script


def test_load_script_runs_the_file_as_a_module(tmp_path):
    f = tmp_path / "train_small.py"
    f.write_text("CALLS = []\n\ndef main(argv=None):\n    CALLS.append(argv)\n    return 7\n")
    mod = load_script(f)
    assert mod.__name__ == "train_small" and mod.main(["--x"]) == 7 and mod.CALLS == [["--x"]]
    other = load_script(f, "again")
    assert other.__name__ == "again" and other.CALLS == []  # a fresh module each time
