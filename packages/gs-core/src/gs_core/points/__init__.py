"""Point-cloud operations shared by every gs3d package: one implementation of each.

- :func:`farthest_point_sample` — FPS (torch loop, CUDA graphs, a Triton kernel on CUDA);
- :func:`knn`, :func:`nearest_neighbors` — memory-bounded neighbour searches;
- :func:`ball_query` — PointNet++'s radius grouping;
- :func:`gather_points`, :func:`group_points` — batched gathers of per-point rows;
- :func:`square_distance` — the pairwise squared distances all searches rank by.

Layouts: points ``[B, N, 3]`` (``[B, N, D]`` where a function says so), indices int64.
"""

from gs_core.points.ball_query import ball_query
from gs_core.points.distance import DEFAULT_MAX_BYTES, square_distance
from gs_core.points.fps import farthest_point_sample
from gs_core.points.gather import gather_points, group_points
from gs_core.points.knn import knn, nearest_neighbors

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ball_query",
    "farthest_point_sample",
    "gather_points",
    "group_points",
    "knn",
    "nearest_neighbors",
    "square_distance",
]
