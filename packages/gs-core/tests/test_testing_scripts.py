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


def test_a_script_defining_a_dataclass_loads(tmp_path):
    f = tmp_path / "bench.py"
    f.write_text(
        "from __future__ import annotations\nfrom dataclasses import dataclass\n\n"
        "@dataclass(frozen=True)\nclass Row:\n    ms: float\n"
    )
    assert load_script(f, "bench_with_dataclass").Row(1.5).ms == 1.5
