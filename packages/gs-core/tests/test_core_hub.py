"""The one resolver for pretrained files: local paths, hub ids, the local cache, failing fast."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from gs_core import hub
from gs_core.config import Config
from gs_core.errors import FileFormatError, ValidationError, WeightsNotFoundError
from gs_core.hub import HubRef, parse_hub_ref, resolve_pretrained
from gs_core.pretrained import PretrainedMixin, checkpoint_directory

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hf_cache(monkeypatch, tmp_path):
    """An empty Hugging Face cache of this test's own, online as far as the variables go.

    huggingface_hub reads HF_HUB_OFFLINE and HF_HOME once, at import, so its constants are
    patched as well as the environment; the per-process reachability answers are forgotten.
    """
    import huggingface_hub.constants as hf_constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "_reachable", {})
    return cache


def cache_repo(cache: Path, repo_id: str, files: dict[str, bytes], ref: str = "main") -> Path:
    """Lay out ``repo_id`` in the cache as huggingface_hub does: refs/REF -> snapshots/COMMIT."""
    root = cache / ("models--" + repo_id.replace("/", "--"))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / ref).write_text(COMMIT)
    snapshot = root / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    return snapshot


# ---------------------------------------------------------------------- parse_hub_ref
@pytest.mark.parametrize(
    ("spec", "ref"),
    [
        ("org/name", HubRef("org/name")),
        ("org/name@v1.0", HubRef("org/name", "v1.0")),
        ("hf://org/name", HubRef("org/name")),
        ("hf://org/name@0123abc", HubRef("org/name", "0123abc")),
        ("facebook/dinov2-small", HubRef("facebook/dinov2-small")),
        ("./org/name", None),
        ("/abs/org/name", None),
        ("~/weights", None),
        ("weights", None),
        ("a/b/c", None),
        ("missing/model.safetensors", None),  # a weight file that is not there is not a repo
        ("runs/model.pt", None),
    ],
)
def test_parse_hub_ref(spec, ref):
    assert parse_hub_ref(spec) == ref


@pytest.mark.parametrize("spec", ["hf://x", "hf://", "hf://org/name@", "hf://a/b/c"])
def test_malformed_hf_urls_are_one_clear_error(spec):
    with pytest.raises(ValidationError, match="hf://org/name"):
        parse_hub_ref(spec)


def test_an_existing_local_path_wins_over_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert parse_hub_ref("org/name") is None
    assert parse_hub_ref(Path("org/name")) is None
    assert str(HubRef("org/name", "v2")) == "org/name@v2"


# ---------------------------------------------------------------------- local paths
def test_local_paths_are_returned_as_they_are(tmp_path):
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"x")
    assert resolve_pretrained(f) == f
    assert resolve_pretrained(str(tmp_path)) == tmp_path


def test_a_missing_local_path_names_itself(tmp_path):
    with pytest.raises(WeightsNotFoundError, match=r"encoder: .*nowhere.* does not exist"):
        resolve_pretrained(tmp_path / "nowhere", what="encoder")
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        resolve_pretrained("gone/model.safetensors")


# ---------------------------------------------------------------------- the cache
def test_a_cached_repo_resolves_without_the_network(hf_cache, monkeypatch):
    snapshot = cache_repo(hf_cache, "org/model", {"config.json": b"{}", "model.bin": b"w"})
    cache_repo(hf_cache, "org/model", {}, ref="v1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # any network use would fail
    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: pytest.fail("probed the network"))
    assert resolve_pretrained("org/model") == snapshot
    assert resolve_pretrained("hf://org/model@v1") == snapshot
    found = resolve_pretrained("org/model", filenames=["model.safetensors", "model.bin"])
    assert found == snapshot / "model.bin"


def test_from_pretrained_reads_a_hub_checkpoint_from_the_cache(hf_cache, monkeypatch, tmp_path):
    class NetConfig(Config):
        width: int = 3

    class Net(PretrainedMixin, torch.nn.Module):
        config_class = NetConfig

        def __init__(self, config):
            super().__init__()
            self.config = config
            self.lin = torch.nn.Linear(config.width, 2)

    net = Net(NetConfig(width=5))
    local = net.save_pretrained(tmp_path / "ckpt")
    files = {p.name: p.read_bytes() for p in local.iterdir()}
    cache_repo(hf_cache, "org/net", files)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = Net.from_pretrained("hf://org/net")
    assert loaded.config.width == 5 and torch.equal(loaded.lin.weight, net.lin.weight)
    f = local / "model.safetensors"
    with pytest.raises(FileFormatError, match="expected a checkpoint directory"):
        checkpoint_directory(f)


# ---------------------------------------------------------------------- failing fast
def test_offline_a_hub_id_fails_at_once(hf_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(WeightsNotFoundError) as e:
        resolve_pretrained("nobody/not-cached", what="weights of X")
    assert time.perf_counter() - t0 < 2.0
    msg = str(e.value)
    assert msg.startswith("weights of X: could not fetch 'nobody/not-cached'")
    assert "HF_HUB_OFFLINE" in msg and "download nobody/not-cached" in msg


def test_offline_set_in_huggingface_hub_constants_counts_too(hf_cache, monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    assert hub.hub_offline()
    with pytest.raises(WeightsNotFoundError, match="HF_HUB_OFFLINE"):
        resolve_pretrained("nobody/not-cached", filenames=["model.safetensors"])


def test_an_unreachable_hub_fails_at_once(hf_cache, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    t0 = time.perf_counter()
    with pytest.raises(WeightsNotFoundError, match=r"http://127.0.0.1:9 cannot be reached"):
        resolve_pretrained("nobody/not-cached@v2")
    assert time.perf_counter() - t0 < 2.0
    assert hub.hub_reachable() is False  # answered from the per-process cache


def test_reachable_hub_downloads_and_reports_failures(hf_cache, monkeypatch, tmp_path):
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: True)
    calls = []

    def snapshot_download(repo_id, revision=None, local_files_only=False, **kwargs):
        calls.append((repo_id, revision, local_files_only, kwargs.get("allow_patterns")))
        if local_files_only:
            raise LocalEntryNotFoundError("not cached")
        if repo_id == "org/gated":
            raise RuntimeError("401 Client Error: gated repo\nmore lines")
        return str(tmp_path)

    def hf_hub_download(repo_id, filename, revision=None, local_files_only=False):
        if local_files_only:
            raise LocalEntryNotFoundError("not cached")
        if filename != "b.bin":
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        return str(tmp_path / filename)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    assert resolve_pretrained("hf://org/model@rev") == tmp_path
    assert calls == [
        ("org/model", "rev", True, ["*.json", "*.safetensors"]),
        ("org/model", "rev", False, ["*.json", "*.safetensors"]),
    ]
    assert resolve_pretrained("org/model", filenames=["a.bin", "b.bin"]) == tmp_path / "b.bin"
    with pytest.raises(WeightsNotFoundError, match="holds none of"):
        resolve_pretrained("org/model", filenames=["a.bin"])
    with pytest.raises(WeightsNotFoundError, match=r"could not fetch 'org/gated'.*gated repo"):
        resolve_pretrained("org/gated")
