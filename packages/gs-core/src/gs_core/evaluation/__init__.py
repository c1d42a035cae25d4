"""The evaluation harness (``gs3d eval``): protocols, predictors, metric plumbing, geometry
against exact procedural shapes, reports."""

from gs_core.evaluation.harness import (
    EvalConfig,
    evaluate,
    markdown_table,
    render_mesh_targets,
    render_targets,
)
from gs_core.evaluation.metrics import LoadedMetrics, available_metrics, load_metrics
from gs_core.evaluation.plan import EvalPlan, plan_evaluation
from gs_core.evaluation.predictors import MethodPredictor, PlyFolderPredictor, Prediction
from gs_core.evaluation.protocols import PROTOCOLS, RING15, ZERO123PP, ViewSelection, select_views

__all__ = [
    "PROTOCOLS",
    "RING15",
    "ZERO123PP",
    "EvalConfig",
    "EvalPlan",
    "LoadedMetrics",
    "MethodPredictor",
    "PlyFolderPredictor",
    "Prediction",
    "ViewSelection",
    "available_metrics",
    "evaluate",
    "load_metrics",
    "markdown_table",
    "plan_evaluation",
    "render_mesh_targets",
    "render_targets",
    "select_views",
]
