"""tools/device/jobs/bench-priors.sh and its collect script on this machine: a max-autotune run
that spans leases resumes from the autotune timings the last lease brought back. Inductor is
stood in for by a benchmark that adds one tuned operation to the cache file it finds."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from isolated import ROOT, run

JOBS = ROOT / "tools" / "device" / "jobs"
sys.path.insert(0, str(JOBS))
import autotune_cache  # noqa: E402

# What Inductor does with the file (torch/_inductor/codecache.py, PersistentCache.lookup): read
# cache[op][inputs][precision], benchmark what is missing, write the whole file back.
FAKE_BENCHMARK = """
import json, os, sys
path = os.path.join(os.environ["TORCHINDUCTOR_CACHE_DIR"], "cache", "abc123")
data = json.load(open(path)) if os.path.exists(path) else {"system": {"device": {"name": "NVIDIA H100"}}, "cache": {}}
shapes = data["cache"].setdefault("mm", {})
shapes[f"shape{len(shapes)}"] = {"highest": {"aten": 1e-5, "triton_0": 8e-6}}
json.dump(data, open(path, "w"))
print("benchmark ran with", sys.argv[1:])
"""


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "tools" / "device" / "jobs").mkdir(parents=True)
    for name in ("bench-priors.sh", "bench-priors-collect.sh", "autotune_cache.py"):
        shutil.copy(JOBS / name, tree / "tools" / "device" / "jobs" / name)
    (tree / "benchmarks").mkdir()
    (tree / "benchmarks" / "priors.py").write_text(FAKE_BENCHMARK)
    return tree


def _run(script: str, tree: Path, cache: Path, out: Path) -> str:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache), "OUT": str(out)}
    env["BENCH_ARGS"] = "--priors zero123plus --compile"
    env["JOB_ROOT"] = str(tree.parent / "g")
    return run(["bash", f"tools/device/jobs/{script}"], cwd=tree, env=env, timeout=120).stdout


def test_a_second_lease_resumes_from_the_timings_the_first_brought_back(tmp_path):
    tree = _tree(tmp_path)
    out = _run("bench-priors.sh", tree, tmp_path / "lease1", tmp_path / "out1")
    assert "holds no autotune timings yet" in out
    assert "benchmark ran with ['--priors', 'zero123plus', '--compile']" in out
    out = _run("bench-priors-collect.sh", tree, tmp_path / "lease1", tmp_path / "out1")
    back = tmp_path / "out1" / "r" / "autotune" / "abc123"
    assert back.is_file() and "abc123: 1 operations (mm: 1) tuned on NVIDIA H100" in out

    # the next lease: a fresh machine (an empty cache folder) with the file carried as .autotune/
    (tree / ".autotune").mkdir()
    shutil.copy(back, tree / ".autotune" / "abc123")
    out = _run("bench-priors.sh", tree, tmp_path / "lease2", tmp_path / "out2")
    assert "autotune: carried abc123" in out and "abc123: 1 operations" in out
    resumed = json.loads((tmp_path / "lease2" / "cache" / "abc123").read_text())
    assert sorted(resumed["cache"]["mm"]) == ["shape0", "shape1"]  # kept the first, added one


def test_summary_names_a_file_that_is_not_a_cache(tmp_path):
    bad = tmp_path / "notes"
    bad.write_text("[1, 2]")
    assert autotune_cache.summary(bad).startswith("notes: not an Inductor autotune cache")
    good = tmp_path / "h"
    good.write_text(
        json.dumps({"system": {}, "cache": {"addmm": {"a": {}, "b": {}}, "mm": {"c": {}}}})
    )
    assert (
        autotune_cache.summary(good)
        == "h: 3 operations (addmm: 2, mm: 1) tuned on an unnamed device"
    )


def test_summary_counts_padding_entries_apart_from_tuned_operations(tmp_path):
    # torch 2.15 keeps pad_mm's flat entries in the same file (found on the H100, session 65)
    mixed = tmp_path / "m"
    cache = {
        "mm": {"s0": {"highest": {"mm-x": 0.02}}, "s1": {"highest": {"mm-y": 0.03}}},
        "base mm time: ((torch.Size([154, 1024]), ...))": 0.011,
        "((torch.Size([154, 1024]), ...), 'exclude_pad:False')": False,
    }
    mixed.write_text(json.dumps({"system": {"device": {"name": "NVIDIA H100"}}, "cache": cache}))
    assert (
        autotune_cache.summary(mixed)
        == "m: 2 operations (mm: 2), 2 matmul padding entries tuned on NVIDIA H100"
    )
