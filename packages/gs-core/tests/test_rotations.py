import torch

from gs_core.rendering.projection import quat_to_rotmat
from gs_core.rotations import quaternion_multiply, quaternion_of_rotation


def _random_quats(n: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(n, 4, generator=gen, dtype=torch.float64))
    return torch.cat([q, torch.eye(4, dtype=torch.float64)])  # identity and 180-degree turns


def test_a_rotation_matrix_gives_back_its_quaternion():
    for q in _random_quats(32):
        back = quaternion_of_rotation(quat_to_rotmat(q))
        assert abs(float(back.norm()) - 1.0) < 1e-12
        # q and -q are one rotation.
        assert torch.allclose(back, q, atol=1e-12) or torch.allclose(back, -q, atol=1e-12)


def test_the_product_of_quaternions_is_the_product_of_their_rotations():
    q = _random_quats(16)
    a, b = q, q.flip(0)
    ab = quaternion_multiply(a, b)
    assert torch.allclose(quat_to_rotmat(ab), quat_to_rotmat(a) @ quat_to_rotmat(b), atol=1e-12)
    # Broadcast: one quaternion against a batch.
    one = quaternion_multiply(a[0], b)
    assert torch.allclose(one, quaternion_multiply(a[0].expand_as(b), b))
