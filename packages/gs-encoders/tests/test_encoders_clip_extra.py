"""Without the ``clip`` extra (open_clip absent): the package imports, CLIP names the extra."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gs_core.errors import GS3DError


@pytest.fixture
def no_open_clip(monkeypatch):
    # A None entry makes `import open_clip` raise ModuleNotFoundError, as when not installed.
    monkeypatch.setitem(sys.modules, "open_clip", None)


def test_clip_names_the_extra(no_open_clip):
    from gs_encoders import ClipEncoder, clip_embed_dim
    from gs_encoders.clip_similarity import clip_similarity_metric

    for build in (
        lambda: ClipEncoder("ViT-B-32", pretrained=None),
        lambda: clip_embed_dim("ViT-L-14"),
        lambda: clip_similarity_metric("cpu"),
    ):
        with pytest.raises(GS3DError, match=r"pip install 'gs-encoders\[clip\]'"):
            build()


def test_metric_is_registered_and_reports_itself_unavailable(no_open_clip):
    from gs_encoders import plugin

    specs = []
    plugin.gs3d_register_metrics(register=specs.append)
    (spec,) = specs
    assert spec.name == "clip_similarity" and spec.extra["available"] is False
    assert "gs-encoders[clip]" in spec.summary
    with pytest.raises(GS3DError, match="open_clip"):
        spec.factory("cpu")


def test_metric_is_available_with_the_extra():
    pytest.importorskip("open_clip")
    from gs_encoders import plugin

    specs = []
    plugin.gs3d_register_metrics(register=specs.append)
    assert specs[0].extra["available"] is True and "unavailable" not in specs[0].summary


def test_import_without_open_clip():
    code = (
        "import sys\n"
        "sys.modules['open_clip'] = None\n"
        "import gs_encoders, gs_encoders.plugin\n"
        "from gs_encoders import DinoV2Encoder, OpenShapeEncoder\n"
        "assert 'open_clip' not in [m for m, v in sys.modules.items() if v is not None]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
