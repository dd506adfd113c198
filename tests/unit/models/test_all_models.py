"""Every registered forecasting model: shapes, gradients, determinism and ``training_outputs`` on tiny inputs;
``sample`` for the stochastic ones (registered with ``stochastic=True``).

Lifting models (2D keypoints in) have their own tests beside their modules' tests."""

from __future__ import annotations

import pytest
import torch

from crisscross.models import count_parameters, create_model, describe_models, get_model_entry, list_models

# A 22-joint tree shaped like the H3.6M predicted subset: two legs and a spine from the root (joint 0),
# two arms from the thorax (joint 8); and a body-part index per joint.
PARENTS_22 = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 10, 8, 12, 13, 14, 15, 8, 17, 18, 19, 20)
PARTS_22 = (0, 1, 1, 1, 2, 2, 2, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4)

SIZES = [(10, 25), (8, 5)]
FORECASTERS = list_models("forecasting")


def _build(name: str, t_in: int, t_out: int, *, skeleton: bool = True, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    extra = dict(graph_parents=PARENTS_22, body_parts=PARTS_22) if skeleton else {}
    return create_model(name, num_joints=22, input_frames=t_in, output_frames=t_out, **extra)


def test_registry_lists_expected_models() -> None:
    expected = {"stcformer", "stcformer-ar", "stcformer-course-23k", "stcformer-course-86k", "stcformer-l",
                "zero-velocity", "constant-velocity", "simlpe", "simlpe-48", "seq2seq-gru", "seq2seq-gru-1024",
                "sttformer", "conv-stgat", "stacformer", "humor-cvae", "humor-cvae-1024", "stcformer-cvae"}
    assert expected <= set(list_models())


def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(KeyError, match="stcformer"):
        get_model_entry("no-such-model")


@pytest.mark.parametrize("name", FORECASTERS)
@pytest.mark.parametrize(("t_in", "t_out"), SIZES)
def test_forward_backward(name: str, t_in: int, t_out: int) -> None:
    model = _build(name, t_in, t_out).train()
    past = torch.randn(2, t_in, 22, 3) * 0.2
    out = model(past)
    assert out.shape == (2, t_out, 22, 3)
    assert torch.isfinite(out).all()
    if not get_model_entry(name).trainable:
        assert count_parameters(model) == 0
        return
    loss = out.square().mean()
    if get_model_entry(name).stochastic:  # the posterior network is reached only through the ELBO
        loss = loss + sum(model.elbo_terms(past, torch.randn(2, t_out, 22, 3) * 0.2).values())
    loss.backward()
    total = 0.0
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
        total += float(p.grad.abs().sum())
    assert total > 0.0


@pytest.mark.parametrize("name", FORECASTERS)
def test_deterministic_under_seed(name: str) -> None:
    past = torch.randn(2, 10, 22, 3) * 0.2
    a = _build(name, 10, 25, seed=3).eval()
    b = _build(name, 10, 25, seed=3).eval()
    with torch.no_grad():
        torch.testing.assert_close(a(past), b(past), rtol=0, atol=0)
        torch.testing.assert_close(a(past), a(past), rtol=0, atol=0)


@pytest.mark.parametrize("name", FORECASTERS)
def test_builds_without_skeleton(name: str) -> None:
    model = _build(name, 10, 25, skeleton=False).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 10, 22, 3)).shape == (1, 25, 22, 3)


@pytest.mark.parametrize("name", [n for n in FORECASTERS if hasattr(_build(n, 10, 25), "training_outputs")])
@pytest.mark.parametrize(("t_in", "t_out"), SIZES)
def test_training_outputs(name: str, t_in: int, t_out: int) -> None:
    model = _build(name, t_in, t_out).train()
    past, future = torch.randn(2, t_in, 22, 3) * 0.2, torch.randn(2, t_out, 22, 3) * 0.2
    pred, aux = model.training_outputs(past, future)
    assert pred.shape == (2, t_out, 22, 3)
    assert isinstance(aux, dict) and all(v.ndim == 0 for v in aux.values())
    (pred.square().mean() + sum(aux.values())).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", FORECASTERS)
def test_stochastic_models_sample(name: str) -> None:
    model = _build(name, 10, 25).eval()
    assert get_model_entry(name).stochastic == hasattr(model, "sample")
    if get_model_entry(name).stochastic:
        with torch.no_grad():
            samples = model.sample(torch.randn(2, 10, 22, 3) * 0.2, 3, generator=torch.Generator().manual_seed(0))
        assert samples.shape == (3, 2, 25, 22, 3) and torch.isfinite(samples).all()


@pytest.mark.parametrize("name", FORECASTERS)
def test_no_weight_decay_names_exist(name: str) -> None:
    model = _build(name, 10, 25)
    if hasattr(model, "no_weight_decay"):
        names = dict(model.named_parameters())
        assert set(model.no_weight_decay()) <= set(names)


def test_describe_models() -> None:
    rows = {r["name"]: r for r in describe_models()}
    assert set(rows) == set(list_models())
    assert rows["zero-velocity"]["parameters"] == 0 and rows["zero-velocity"]["trainable"] is False
    assert rows["stcformer"]["parameters"] > 0 and rows["stcformer"]["description"]
