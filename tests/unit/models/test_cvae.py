"""Stochastic forecasters (``crisscross.models.cvae``): shapes, gradients, reproducible and diverse samples, the
Gaussian KL and free bits against hand cases, and causality of the autoregressive rollout."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from crisscross.models import count_parameters, create_model, get_model_entry, list_models
from crisscross.models.cvae import HumorCVAE, free_bits_kl, gaussian_kl

J, T_IN, T_OUT, LATENT = 5, 6, 7, 8
# Scaled-down configurations of each model (same structure, tiny widths).
SMALL = {
    "humor-cvae": dict(latent_size=LATENT, prior_hidden=(32, 32), posterior_hidden=(32, 32), decoder_hidden=(32, 16)),
    "stcformer-cvae": dict(dim=16, heads=2, enc_blocks=1, dec_blocks=1, latent_size=LATENT, latent_hidden=32),
}
NAMES = list(SMALL)


def _model(name: str, seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = create_model(name, num_joints=J, input_frames=T_IN, output_frames=T_OUT, **{**SMALL[name], **kw})
    head = model.decoder.linears[-1] if isinstance(model, HumorCVAE) else model.head
    torch.nn.init.normal_(head.weight, std=0.3)  # undo the near-zero head init so outputs visibly depend on z
    return model


def _data(b: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, T_IN, J, 3, generator=g) * 0.2, torch.randn(b, T_OUT, J, 3, generator=g) * 0.2


def test_registry_marks_the_sampling_models() -> None:
    stochastic = {name for name in list_models("forecasting") if get_model_entry(name).stochastic}
    assert stochastic == {"humor-cvae", "humor-cvae-1024", "stcformer-cvae"}
    assert not get_model_entry("stcformer").stochastic


def test_default_parameter_counts() -> None:
    # H3.6M 10 -> 25 frames, 22 joints (the counts quoted in the module's report; pinned so changes are seen).
    counts = {name: count_parameters(create_model(name, num_joints=22, input_frames=10, output_frames=25))
              for name in ("humor-cvae", "humor-cvae-1024", "stcformer-cvae")}
    assert counts == {"humor-cvae": 738_180, "humor-cvae-1024": 8_830_980, "stcformer-cvae": 987_545}


@pytest.mark.parametrize("name", NAMES)
def test_shapes(name: str) -> None:
    model = _model(name).eval()
    past, future = _data()
    assert model(past).shape == (3, T_OUT, J, 3)
    assert model.sample(past, 4).shape == (4, 3, T_OUT, J, 3)
    terms = model.elbo_terms(past, future)
    assert {"reconstruction", "kl", "kl_raw"} <= set(terms)
    assert all(v.ndim == 0 and v.dtype == torch.float32 and torch.isfinite(v) for v in terms.values())
    pred, aux = model.training_outputs(past, future)
    assert pred.shape == (3, T_OUT, J, 3) and all(v.ndim == 0 for v in aux.values())


def test_humor_accepts_a_single_observed_frame() -> None:
    model = create_model("humor-cvae", num_joints=J, input_frames=1, output_frames=T_OUT, **SMALL["humor-cvae"])
    assert model.sample(torch.zeros(2, 1, J, 3), 2).shape == (2, 2, T_OUT, J, 3)


@pytest.mark.parametrize(("name", "kw"), [("humor-cvae", {}), ("humor-cvae", {"sampling_ratio": 1.0}),
                                          ("stcformer-cvae", {})])
def test_elbo_gradient_reaches_every_parameter(name: str, kw: dict) -> None:
    model = _model(name, **kw).train()
    past, future = _data()
    sum(model.elbo_terms(past, future).values()).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {pname}"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f"zero or non-finite gradient for {pname}"


@pytest.mark.parametrize("name", NAMES)
def test_sampling_is_reproducible_and_forward_deterministic(name: str) -> None:
    model = _model(name).eval()
    past, future = _data()
    with torch.no_grad():
        a = model.sample(past, 4, generator=torch.Generator().manual_seed(7))
        b = model.sample(past, 4, generator=torch.Generator().manual_seed(7))
        c = model.sample(past, 4, generator=torch.Generator().manual_seed(8))
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert not torch.allclose(a, c)
        torch.testing.assert_close(model(past), model(past), rtol=0, atol=0)
        e1 = model.elbo_terms(past, future, generator=torch.Generator().manual_seed(3))
        e2 = model.elbo_terms(past, future, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(e1[k], e2[k]) for k in e1)


@pytest.mark.parametrize("name", NAMES)
def test_samples_differ(name: str) -> None:
    model = _model(name).eval()
    past, _ = _data()
    with torch.no_grad():
        samples = model.sample(past, 4, generator=torch.Generator().manual_seed(0))  # [K, B, T, J, 3]
    # APD-like spread: mean L2 distance between every pair of samples, per batch element.
    pairwise = torch.linalg.vector_norm(samples[:, None] - samples[None], dim=-1).mean(dim=(-1, -2))  # [K, K, B]
    off_diagonal = pairwise[~torch.eye(4, dtype=torch.bool)]
    assert (off_diagonal > 1e-4).all()


@pytest.mark.parametrize("name", NAMES)
def test_forecast_from_noise_reproduces_sample_and_zeros_give_forward(name: str) -> None:
    model = _model(name).eval()
    past, _ = _data()
    k, b = 4, past.shape[0]
    with torch.no_grad():
        drawn = model.sample(past, k, generator=torch.Generator().manual_seed(5))  # [K, B, T, J, 3]
        # sample() draws its noise sample-major in its own layout; the same numbers in the batch-first layout of
        # noise_shape give the same futures
        g = torch.Generator().manual_seed(5)
        if name == "humor-cvae":
            noise = torch.randn(T_OUT, k * b, LATENT, generator=g).transpose(0, 1)
        else:
            noise = torch.randn(k * b, LATENT, generator=g)
        assert tuple(noise.shape) == model.noise_shape(k * b)
        from_noise = model.forecast_from_noise(past.repeat(k, 1, 1, 1), noise).unflatten(0, (k, b))
        torch.testing.assert_close(from_noise, drawn, rtol=1e-6, atol=1e-6)
        zeros = torch.zeros(model.noise_shape(b))
        torch.testing.assert_close(model.forecast_from_noise(past, zeros), model(past), rtol=0, atol=0)
        # rows are independent: one row's noise moves only that row's future
        shifted = zeros.clone()
        shifted[1] += 1.0
        moved = model.forecast_from_noise(past, shifted)
        assert torch.equal(moved[[0, 2]], model(past)[[0, 2]]) and not torch.allclose(moved[1], model(past)[1])


def test_humor_forward_is_the_rollout_at_the_prior_mean() -> None:
    model = _model("humor-cvae").eval()
    past, _ = _data()
    with torch.no_grad():
        torch.testing.assert_close(model(past), model.rollout(past, torch.zeros(T_OUT, 3, LATENT)), rtol=0, atol=0)


def test_stcformer_cvae_forward_decodes_the_prior_mean() -> None:
    model = _model("stcformer-cvae").eval()
    past, _ = _data()
    with torch.no_grad():
        queries, memory, (mean, _) = model._encode(past)
        torch.testing.assert_close(model(past), model._decode(queries, memory, mean, past), rtol=0, atol=0)
        # A latent away from the prior mean changes the forecast: z reaches the output.
        assert not torch.allclose(model(past), model._decode(queries, memory, mean + 1.0, past))


def test_gaussian_kl_matches_torch_distributions() -> None:
    g = torch.Generator().manual_seed(0)
    qm, qlv, pm, plv = (torch.randn(4, LATENT, generator=g) for _ in range(4))
    expected = kl_divergence(Normal(qm, (0.5 * qlv).exp()), Normal(pm, (0.5 * plv).exp()))
    torch.testing.assert_close(gaussian_kl(qm, qlv, pm, plv), expected)
    # Hand case: KL(N(1, 1) || N(0, 1)) = 1/2; KL(N(0, e) || N(0, 1)) = (e - 1 - 1) / 2.
    zero, one = torch.zeros(1), torch.ones(1)
    torch.testing.assert_close(gaussian_kl(one, zero, zero, zero), torch.tensor([0.5]))
    torch.testing.assert_close(gaussian_kl(zero, one, zero, zero), (torch.e - 2.0) / 2 * one)
    # Identical prior and posterior: exactly zero.
    assert torch.equal(gaussian_kl(qm, qlv, qm, qlv), torch.zeros_like(qm))


def test_free_bits_floor_hand_case() -> None:
    kl = torch.tensor([[0.1, 2.0], [0.3, 4.0]], requires_grad=True)  # per-dimension means: 0.2 and 3.0
    torch.testing.assert_close(free_bits_kl(kl, 0.0), torch.tensor(3.2))
    floored = free_bits_kl(kl, 0.5)  # the first dimension is below the floor and counts as 0.5
    torch.testing.assert_close(floored, torch.tensor(3.5))
    floored.backward()
    torch.testing.assert_close(kl.grad, torch.tensor([[0.0, 0.5], [0.0, 0.5]]))  # no gradient through the floor


@pytest.mark.parametrize("name", NAMES)
def test_free_bits_in_the_model(name: str) -> None:
    model = _model(name, free_bits=1e3).eval()  # a floor above any KL here: every dimension sits on it
    past, future = _data()
    terms = model.elbo_terms(past, future)
    torch.testing.assert_close(terms["kl"], torch.tensor(1e3 * LATENT))
    assert 0.0 < terms["kl_raw"] < 1e3


@pytest.mark.parametrize("name", NAMES)
def test_training_outputs_weigh_the_kl(name: str) -> None:
    model = _model(name, kl_weight=0.25).train()
    past, future = _data()
    torch.manual_seed(5)
    pred, aux = model.training_outputs(past, future)
    torch.manual_seed(5)
    terms = model.elbo_terms(past, future)
    torch.testing.assert_close(aux["kl"], 0.25 * terms["kl"])
    torch.testing.assert_close(torch.linalg.vector_norm(pred - future, dim=-1).mean(), terms["reconstruction"])


@pytest.mark.parametrize("name", NAMES)
def test_kl_warm_up_is_linear_counted_in_training_only_and_saved(name: str) -> None:
    model = _model(name, kl_weight=0.5, kl_warmup_steps=4).train()
    past, future = _data()
    weights = []
    for _ in range(6):
        weights.append(model.current_kl_weight())
        torch.manual_seed(5)
        _, aux = model.training_outputs(past, future)
        torch.manual_seed(5)
        torch.testing.assert_close(aux["kl"], weights[-1] * model.elbo_terms(past, future)["kl"])
    assert weights == [0.0, 0.125, 0.25, 0.375, 0.5, 0.5]
    model.eval()
    model.training_outputs(past, future)  # evaluation calls do not advance the ramp
    assert int(model.kl_steps) == 6
    restored = _model(name, seed=9, kl_weight=0.5, kl_warmup_steps=4)
    restored.load_state_dict(model.state_dict())  # the count travels with the weights: a resume continues it
    assert int(restored.kl_steps) == 6 and restored.current_kl_weight() == 0.5
    with pytest.raises(ValueError, match="kl_weight and kl_warmup_steps must be >= 0"):
        _model(name, kl_warmup_steps=-1)


@pytest.mark.parametrize("step", [0, 3, T_OUT - 1])
def test_humor_rollout_is_causal(step: int) -> None:
    # Frame t of a rollout reads the noise (hence the sampled latents and states) of steps <= t only.
    model = _model("humor-cvae").eval()
    past, _ = _data()
    noise = torch.randn(T_OUT, 3, LATENT, generator=torch.Generator().manual_seed(0))
    perturbed = noise.clone()
    perturbed[step] += 1.0
    with torch.no_grad():
        a, b = model.rollout(past, noise), model.rollout(past, perturbed)
    torch.testing.assert_close(a[:, :step], b[:, :step], rtol=0, atol=0)
    assert not torch.allclose(a[:, step:], b[:, step:])
    # The same by gradients: d frame[t] / d noise[s] vanishes for every s > t.
    noise.requires_grad_(True)
    model.rollout(past, noise)[:, step].sum().backward()
    assert torch.count_nonzero(noise.grad[step + 1 :]) == 0 and torch.count_nonzero(noise.grad[: step + 1]) > 0


@pytest.mark.parametrize("step", [1, 4])
def test_humor_teacher_forcing_reads_no_later_ground_truth(step: int) -> None:
    # Transition t sees the ground-truth states t - 1 (input) and t (posterior), never a later frame.
    model = _model("humor-cvae").train()
    past, future = _data()
    later = future.clone()
    later[:, step:] += 1.0
    decoded, _, _ = model._transitions(past, future, torch.Generator().manual_seed(0))  # same posterior noise
    decoded_later, _, _ = model._transitions(past, later, torch.Generator().manual_seed(0))
    torch.testing.assert_close(decoded[:, :step], decoded_later[:, :step], rtol=0, atol=0)
    assert not torch.allclose(decoded[:, step:], decoded_later[:, step:])


@pytest.mark.parametrize("name", NAMES)
def test_the_posterior_reads_the_future(name: str) -> None:
    # forward and sample take the past alone; the posterior (training only) must see the future.
    model = _model(name).eval()
    past, future = _data()
    with torch.no_grad():
        kl = model.elbo_terms(past, future, generator=torch.Generator().manual_seed(0))["kl_raw"]
        kl_moved = model.elbo_terms(past, future + 0.5, generator=torch.Generator().manual_seed(0))["kl_raw"]
    assert not torch.equal(kl, kl_moved)


def test_stcformer_cvae_decoder_stays_causal_with_the_latent() -> None:
    model = _model("stcformer-cvae").eval()
    past, _ = _data()
    with torch.no_grad():
        queries, memory, (mean, _) = model._encode(past)
        changed = queries.clone()
        changed[:, 4:] += 1.0
        a, b = model._decode(queries, memory, mean, past), model._decode(changed, memory, mean, past)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])
