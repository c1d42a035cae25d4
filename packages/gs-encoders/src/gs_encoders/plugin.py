"""gs3d plugin hooks of gs-encoders: the CLIP similarity metric for ``gs3d eval``."""

from __future__ import annotations

from collections.abc import Callable

from gs_core.plugins.hookspecs import hookimpl
from gs_core.plugins.specs import MetricSpec
from gs_encoders.clip_similarity import (
    DEFAULT_MODEL,
    DEFAULT_PRETRAINED,
    ENV_MODEL,
    ENV_PRETRAINED,
    clip_similarity_metric,
)


@hookimpl
def gs3d_register_metrics(register: Callable) -> None:
    register(
        MetricSpec(
            name="clip_similarity",
            summary=(
                f"cosine similarity of CLIP image embeddings ({DEFAULT_MODEL}/{DEFAULT_PRETRAINED}; "
                f"{ENV_MODEL} / {ENV_PRETRAINED} choose others)"
            ),
            factory=clip_similarity_metric,
            higher_is_better=True,
            pairs=("render-gt", "render-input"),
            extra={"model": DEFAULT_MODEL, "pretrained": DEFAULT_PRETRAINED, "range": "[-1, 1]"},
        )
    )
