"""gs3d plugin hooks of gs-encoders: the CLIP similarity metric for ``gs3d eval``."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from gs_core.plugins.hookspecs import hookimpl
from gs_core.plugins.specs import MetricSpec
from gs_encoders.clip import CLIP_EXTRA
from gs_encoders.clip_similarity import (
    DEFAULT_MODEL,
    DEFAULT_PRETRAINED,
    ENV_MODEL,
    ENV_PRETRAINED,
    clip_similarity_metric,
)


@hookimpl
def gs3d_register_metrics(register: Callable) -> None:
    # Registered either way, so that `gs3d eval` names the missing extra instead of the metric
    # silently not existing; finding the module does not import it.
    available = importlib.util.find_spec("open_clip") is not None
    missing = "" if available else f"; unavailable: pip install '{CLIP_EXTRA}'"
    register(
        MetricSpec(
            name="clip_similarity",
            summary=(
                f"cosine similarity of CLIP image embeddings ({DEFAULT_MODEL}/{DEFAULT_PRETRAINED}; "
                f"{ENV_MODEL} / {ENV_PRETRAINED} choose others){missing}"
            ),
            factory=clip_similarity_metric,
            higher_is_better=True,
            pairs=("render-gt", "render-input"),
            extra={
                "model": DEFAULT_MODEL,
                "pretrained": DEFAULT_PRETRAINED,
                "range": "[-1, 1]",
                "requires": CLIP_EXTRA,
                "available": available,
            },
        )
    )
