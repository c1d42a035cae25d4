"""Unit quaternions (``wxyz``, the order of :class:`gs_core.Gaussians`) and rotation matrices.

``quat_to_rotmat`` lives with the projection it serves (``gs_core.rendering.projection``).
"""

from __future__ import annotations

import torch


def quaternion_of_rotation(R: torch.Tensor) -> torch.Tensor:
    """Unit quaternion ``[4]`` (``wxyz``, float64) of a rotation matrix ``R [3, 3]``.

    Shepperd's method: the square root is taken of the largest of the trace and the diagonal
    terms, so it never divides by a small number.
    """
    m = torch.as_tensor(R, dtype=torch.float64).cpu()
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    q = torch.zeros(4, dtype=torch.float64)
    if trace > 0:
        s = 2.0 * torch.sqrt(trace + 1.0)
        q[0] = 0.25 * s
        q[1] = (m[2, 1] - m[1, 2]) / s
        q[2] = (m[0, 2] - m[2, 0]) / s
        q[3] = (m[1, 0] - m[0, 1]) / s
    else:
        i = int(torch.argmax(torch.diagonal(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * torch.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (m[j, i] + m[i, j]) / s
        q[1 + k] = (m[k, i] + m[i, k]) / s
    return q / q.norm()


def quaternion_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a b`` of ``wxyz`` quaternions ``a [..., 4]`` and ``b [..., 4]``
    (broadcast): the rotation ``b`` followed by ``a``."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        -1,
    )


__all__ = ["quaternion_multiply", "quaternion_of_rotation"]
