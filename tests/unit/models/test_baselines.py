"""Hand-computed checks of the simple baselines, siMLPe, the seq2seq GRU and shared layers."""

from __future__ import annotations

import torch

from crisscross.models import count_parameters, create_model
from crisscross.models.layers import chain_parents, dct_matrix, skeleton_adjacency


def test_zero_velocity_repeats_last_frame() -> None:
    model = create_model("zero-velocity", num_joints=2, input_frames=3, output_frames=4)
    past = torch.arange(2 * 3 * 2 * 3, dtype=torch.float32).reshape(2, 3, 2, 3)
    out = model(past)
    torch.testing.assert_close(out, past[:, -1:].expand(-1, 4, -1, -1))


def test_constant_velocity_extrapolates() -> None:
    model = create_model("constant-velocity", num_joints=1, input_frames=2, output_frames=3)
    past = torch.tensor([[[[0.0, 0.0, 0.0]], [[1.0, 2.0, -1.0]]]])
    expected = torch.tensor([[[[2.0, 4.0, -2.0]], [[3.0, 6.0, -3.0]], [[4.0, 8.0, -4.0]]]])
    torch.testing.assert_close(model(past), expected)
    one = create_model("constant-velocity", num_joints=1, input_frames=1, output_frames=2)
    torch.testing.assert_close(one(past[:, 1:]), past[:, 1:].expand(-1, 2, -1, -1))


def test_simlpe_published_parameter_count() -> None:
    # protocols.md 1.4: 48 blocks, 50 frames, 66 channels -> 137,580 parameters.
    model = create_model("simlpe-48", num_joints=22, input_frames=50, output_frames=10)
    assert count_parameters(model) == 137_580


def test_simlpe_starts_as_last_frame_repeater_and_pads() -> None:
    torch.manual_seed(0)
    past = torch.randn(2, 10, 22, 3)
    for t_out in (25, 5):
        model = create_model("simlpe", num_joints=22, input_frames=10, output_frames=t_out)
        out = model(past)
        assert out.shape == (2, t_out, 22, 3)
        torch.testing.assert_close(out, past[:, -1:].expand(-1, t_out, -1, -1), rtol=0, atol=1e-5)


def test_dct_is_orthonormal() -> None:
    d = dct_matrix(25)
    torch.testing.assert_close(d @ d.T, torch.eye(25), rtol=0, atol=1e-5)
    const = torch.ones(25)
    assert torch.allclose((d @ const)[1:], torch.zeros(24), atol=1e-5)


def test_seq2seq_paper_size() -> None:
    model = create_model("seq2seq-gru-1024", num_joints=18, input_frames=50, output_frames=25)
    # GRU(54 -> 1024) + Linear(1024 -> 54)
    assert count_parameters(model) == 3 * (54 * 1024 + 1024 * 1024 + 2 * 1024) + 1024 * 54 + 54


def test_skeleton_adjacency() -> None:
    adj = skeleton_adjacency((-1, 0, 0, 2))
    assert adj.diagonal().all() and adj[1, 0] and adj[0, 1] and adj[3, 2] and not adj[1, 2]
    assert chain_parents(3) == (-1, 0, 1)
