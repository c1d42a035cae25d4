"""Resident views draw the samples MultiViewDataset builds, on the device, from indices."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gs_core.data import MultiViewDataset
from gs_core.data.resident import IndexDataset, ResidentViews, cache_path
from gs_core.errors import FileFormatError, GS3DError, ValidationError


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from gs_core.procedural import ProceduralConfig, generate

    root = tmp_path_factory.mktemp("resident") / "d"
    cfg = ProceduralConfig.preset("tiny", objects=3, views=5, split="train", points=64)
    generate(cfg, root, workers=0, progress=False)
    return root


@pytest.mark.parametrize("space", ["world", "azimuth", "camera"])
def test_samples_match_the_dataset(data, space):
    views = ResidentViews.from_dataset(
        data, "train", resolution=32, points=64, cache=False, depth=True
    )
    assert views.rgba.shape == (3, 5, 32, 32, 4) and views.rgba.dtype == torch.uint8
    assert views.depth.shape == (3, 5, 32, 32) and views.depth.dtype == torch.float16
    torch.manual_seed(0)
    batch = views.sample([2, 0, 2], 4, space=space, background="gray", num_points=64)
    for row, obj in enumerate([2, 0, 2]):
        i_in = int(batch["input_index"][row])
        # every other view is a target when K = V - 1: the dataset's num_target_views=-1
        assert batch["target_index"][row].tolist() == [v for v in range(5) if v != i_in]
        ds = MultiViewDataset(
            data,
            "train",
            resolution=32,
            num_target_views=-1,
            input_view=i_in,
            space=space,
            background="gray",
            load_points=True,
            num_points=64,
            load_depth=True,
        )
        item = ds[obj]
        for key in (
            "input_rgba",
            "input_rgb",
            "input_viewmat",
            "input_K",
            "target_rgb",
            "target_alpha",
            "target_viewmats",
            "target_Ks",
            "background",
            "space_transform",
            "input_azimuth",
            "input_elevation",
        ):
            torch.testing.assert_close(
                batch[key][row].cpu(), item[key].float(), atol=2e-5, rtol=1e-5, msg=key
            )
        # depth kept as float16: within its rounding (2^-11 relative), background exactly 0
        depth, want_depth = batch["target_depth"][row], item["target_depth"]
        assert depth.shape == want_depth.shape and depth.dtype == torch.float32
        assert want_depth.min() == 0 and want_depth.max() > 0
        torch.testing.assert_close(depth, want_depth, rtol=2**-11, atol=0, msg="target_depth")
        # all 64 points, drawn without replacement: the same set in the same space
        got = batch["points"][row].numpy()
        want = item["points"].numpy()
        order_g, order_w = np.lexsort(got.T), np.lexsort(want.T)
        np.testing.assert_allclose(got[order_g], want[order_w], atol=1e-5)


def test_random_targets_are_distinct_and_exclude_the_input(data):
    views = ResidentViews.from_dataset(data, "train", resolution=32, cache=False)
    g = torch.Generator().manual_seed(1)
    b = views.sample(torch.zeros(64, dtype=torch.long), 2, generator=g, background="random")
    t, i = b["target_index"], b["input_index"]
    assert (t[:, 0] < t[:, 1]).all() and not (t == i[:, None]).any()
    assert len(set(i.tolist())) == 5  # every view serves as the input
    assert b["background"].std(0).min() > 0.05  # a colour per sample
    assert b["input_rgba"].shape == (64, 4, 32, 32) and b["target_rgb"].shape == (64, 2, 32, 32, 3)


def test_bad_requests_fail_clearly(data):
    views = ResidentViews.from_dataset(data, "train", resolution=32, cache=False)
    with pytest.raises(ValidationError, match="num_target_views"):
        views.sample([0], 5)
    with pytest.raises(GS3DError, match="no points were loaded"):
        views.sample([0], 2, num_points=8)
    with pytest.raises(ValidationError, match="IndexDataset"):
        IndexDataset(0)
    assert IndexDataset(3)[2] == 2 and len(IndexDataset(3)) == 3


def test_cache_roundtrip(data, tmp_path):
    import shutil

    root = tmp_path / "d"
    shutil.copytree(data, root)
    built = ResidentViews.from_dataset(root, "train", resolution=32, points=64)
    path = cache_path(root, "train", 32)
    assert path.is_file()
    again = ResidentViews.from_dataset(root, "train", resolution=32, points=0)
    assert again.points is None and again.object_ids == built.object_ids
    assert torch.equal(again.rgba, built.rgba) and torch.equal(again.Ks, built.Ks)
    # more points than cached: rebuilt (and re-cached) rather than served short
    more = ResidentViews.from_dataset(root, "train", resolution=32, points=128)
    assert more.points.shape == (3, 128, 3)
    path.write_bytes(b"not safetensors")
    with pytest.raises(FileFormatError, match="safetensors"):
        ResidentViews.from_dataset(root, "train", resolution=32)


def test_depth_is_cached_and_loaded_only_when_asked(data, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    root = tmp_path / "d"
    shutil.copytree(data, root)
    path = cache_path(root, "train", 32)
    plain = ResidentViews.from_dataset(root, "train", resolution=32, points=64)
    assert plain.depth is None and "target_depth" not in plain.sample([0], 2)
    # a cache without depth is rebuilt when depth is asked, keeping what was asked with it
    deep = ResidentViews.from_dataset(root, "train", resolution=32, points=64, depth=True)
    assert deep.depth.shape == (3, 5, 32, 32) and deep.points.shape == (3, 64, 3)
    assert torch.equal(deep.rgba, plain.rgba)
    assert deep.sample([0, 1], 2)["target_depth"].shape == (2, 2, 32, 32, 1)
    # loaded from that cache without depth: none kept on the device
    again = ResidentViews.from_dataset(root, "train", resolution=32, points=64)
    assert again.depth is None and again.nbytes() < deep.nbytes()
    reloaded = ResidentViews.from_dataset(root, "train", resolution=32, depth=True)
    assert torch.equal(reloaded.depth, deep.depth)
    # a cache written before depth existed (no 'depth' metadata) still loads without depth
    tensors = {k: v for k, v in load_file(str(path)).items() if k != "depth"}
    meta = {"object_ids": json.dumps(plain.object_ids), "categories": "[]", "points": "64"}
    save_file(tensors, str(path), metadata=meta)
    old = ResidentViews.load(path, points=64)
    assert old is not None and old.depth is None
    assert ResidentViews.load(path, depth=True) is None
