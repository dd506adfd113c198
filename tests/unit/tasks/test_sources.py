"""evaluate_source for weight-free registry models: the window follows the named protocol."""

import pytest

from crisscross.data.datasets import load_motion
from crisscross.models.registry import build_model
from crisscross.tasks.sources import evaluate_model, evaluate_source


def test_model_by_name_takes_its_frames_from_the_protocol():
    """A 50-frame protocol evaluates a baseline built for 50 input frames, not the 10-frame default."""
    result = evaluate_source(model_name="constant-velocity", dataset="synthetic", split="val",
                             protocol="synthetic-50-25", device="cpu")
    assert result["protocol"] == "synthetic-50-25"
    motion = load_motion("synthetic", split="val")
    model = build_model("constant-velocity", {}, motion.skeleton, 50, 25)
    expected = evaluate_model(model, dataset="synthetic", split="val", protocol="synthetic-50-25",
                              input_frames=50, output_frames=25, device="cpu", motion=motion)
    assert result["mpjpe22_mm"]["mean"] == pytest.approx(expected["mpjpe22_mm"]["mean"])
    assert result["mpjpe22_mm"]["mean"]["avg"] > 0


def test_model_by_name_without_a_protocol_is_10_to_25():
    result = evaluate_source(model_name="zero-velocity", dataset="synthetic", split="val", device="cpu")
    assert result["protocol"] == "synthetic-10-25"


def test_explicit_frames_that_do_not_fit_the_protocol_are_refused():
    with pytest.raises(ValueError, match="synthetic-50-25 is 50 -> 25 frames but the model is 10 -> 25"):
        evaluate_source(model_name="zero-velocity", dataset="synthetic", split="val", protocol="synthetic-50-25",
                        input_frames=10, device="cpu")
