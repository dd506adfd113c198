"""Attention-map statistics (focus, entropy, spatial-temporal distance) and the written report."""

from __future__ import annotations

import csv

import matplotlib.image as mpimg
import pytest
import torch

from crisscross.analysis.attention_maps import (
    attention_statistics,
    key_support,
    map_entropy,
    map_focus,
    spatial_temporal_distance,
    write_attention_report,
)
from crisscross.models import create_model
from crisscross.models.attention import AttentionRecord


def test_focus_is_zero_for_uniform_and_one_for_one_hot() -> None:
    uniform = torch.full((1, 2, 5, 5), 0.2)
    one_hot = torch.eye(5).expand(1, 2, 5, 5)
    visible = torch.ones(5, 5, dtype=torch.bool)  # exact zeros everywhere would otherwise read as a mask
    assert torch.allclose(map_focus(uniform), torch.zeros(1, 2, dtype=torch.float64))
    assert torch.allclose(map_focus(one_hot, visible), torch.ones(1, 2, dtype=torch.float64))
    assert torch.allclose(map_entropy(uniform), torch.ones(1, 2, dtype=torch.float64))
    assert torch.allclose(map_entropy(one_hot, visible), torch.zeros(1, 2, dtype=torch.float64))
    peaked = torch.softmax(50.0 * torch.eye(5), dim=-1).expand(1, 2, 5, 5)  # what a softmax really produces
    assert torch.allclose(map_focus(peaked), torch.ones(1, 2, dtype=torch.float64))


def test_focus_of_a_half_mass_row_by_hand() -> None:
    row = torch.tensor([[[[0.5, 0.5, 0.0, 0.0]]]]) + 0.0
    support = torch.ones(1, 4, dtype=torch.bool)  # all four keys visible
    # |0.5 - 0.25| * 2 + |0 - 0.25| * 2 = 1.0, divided by 2 (1 - 1/4) = 1.5
    assert map_focus(row, support).item() == pytest.approx(1.0 / 1.5)


def test_causal_mask_is_not_mistaken_for_focus() -> None:
    # Uniform attention over the visible (past) frames of a causal map: focus 0, rows with one key skipped.
    n = 6
    causal = torch.tril(torch.ones(n, n))
    weights = (causal / causal.sum(-1, keepdim=True)).expand(2, 1, n, n)
    assert torch.equal(key_support(weights), causal.bool())
    assert map_focus(weights).abs().max() < 1e-6
    assert map_entropy(weights).sub(1).abs().max() < 1e-6


def test_spatial_temporal_pairs_and_means() -> None:
    spatial = torch.full((2, 1, 4, 4), 0.25)  # uniform: focus 0
    temporal = torch.softmax(50.0 * torch.eye(3), dim=-1).expand(2, 1, 3, 3)  # one-hot: focus 1
    records = [AttentionRecord("enc.0", "spatial", "self", spatial, spatial[:, None]),
               AttentionRecord("enc.0", "temporal", "self", temporal, temporal[:, None]),
               AttentionRecord("enc.1", "tuple", "self", spatial, spatial[:, None])]
    stats = attention_statistics(records, samples=[4, 9])
    assert len(stats) == 3 * 2 * 1
    rows = spatial_temporal_distance(stats)
    assert [r["sample"] for r in rows] == [4, 9, "mean"]
    assert all(r["distance"] == pytest.approx(1.0) and r["block"] == "enc.0" for r in rows)


def _tiny_stcformer() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("stcformer", num_joints=22, input_frames=10, output_frames=25, dim=16, enc_blocks=1,
                        dec_blocks=1, heads=2)


def test_report_writes_non_blank_heatmaps_and_csvs(tmp_path) -> None:
    model = _tiny_stcformer()
    past = torch.randn(2, 10, 22, 3) * 0.2
    report = write_attention_report(model, past, tmp_path, samples=[3, 7], joint_names=[f"j{i}" for i in range(22)],
                                    title="tiny")
    # 1 encoder call (spatial + temporal) + decoder self and cross (2 each) = 6 records, 2 samples
    assert len(report.images) == 6 * 2
    for path in report.images[:3] + [report.distance_png]:
        image = mpimg.imread(path)
        assert image.ndim == 3 and image.shape[0] >= 300 and image.shape[1] >= 500
        assert image[..., :3].std() > 0.05  # not blank
    assert mpimg.imread(report.images[0]).shape[:2] == (400, 780)  # 2 heads: (3.6 * 2 + 0.6) x 4 in at 100 dpi
    with open(report.stats_csv, newline="") as fh:
        stats = list(csv.DictReader(fh))
    assert len(stats) == 6 * 2 * 2  # records x samples x heads
    with open(report.distance_csv, newline="") as fh:
        dist = list(csv.DictReader(fh))
    assert len(dist) == 3 * 2 * 3  # (enc self, dec self, dec cross) x heads x (2 samples + mean)
    assert all(0.0 <= float(r["distance"]) <= 1.0 for r in dist)
    assert "focus spatial" in report.summary()


def test_model_without_attention_is_a_clear_error(tmp_path) -> None:
    model = create_model("simlpe", num_joints=22, input_frames=10, output_frames=25)
    with pytest.raises(ValueError, match="no attention layers"):
        write_attention_report(model, torch.zeros(1, 10, 22, 3), tmp_path, samples=[0])
