"""Stochastic forecasters: conditional VAEs that draw many futures for one past.

Shapes: ``B`` batch, ``T_in``/``T_out`` observed/predicted frames, ``J`` joints, ``C = 3J`` pose channels, ``D``
token width, ``L`` latent size, ``K`` samples. Poses are in metres, root-relative.

* ``humor-cvae`` (:class:`HumorCVAE`): the transition CVAE of HuMoR (Rempe et al., ICCV 2021, "HuMoR: 3D Human
  Motion Model for Robust Pose Estimation"; code ``davrempe/humor`` ``humor/models/humor_model.py``) on our
  skeletons. The state ``x_t = [p_t, v_t]`` is the root-relative pose and its velocity ``p_t - p_{t-1}``,
  flattened to ``2C`` values (the velocity half scaled by ``_VELOCITY_SCALE`` inside the networks). A learned
  conditional prior ``p(z | x_{t-1})``, a posterior ``q(z | x_{t-1}, x_t)`` and a decoder ``p(x_t | z, x_{t-1})``
  whose output is the change of state, added to ``x_{t-1}``. HuMoR's networks are MLPs (``Linear``, then
  ``GroupNorm(16) -> ReLU -> Linear`` per further layer), a 48-d latent, prior and posterior with four hidden
  layers of 1024, a decoder with hidden layers 1024, 1024, 512 that sees ``z`` again at every layer (the
  published structure, ``humor-cvae-1024``; ``humor-cvae`` keeps the structure at width 256 to train on a CPU).
  HuMoR is Markov in its state (``steps_in = 1``): the rollout starts from the last observed state (last pose
  and last velocity), and each of the ``T_out`` steps draws ``z_t`` from the prior of the current state and
  decodes the next state, which becomes the next input. HuMoR's contact, SMPL and world-frame parts do not map
  to joint positions and are left out.
* ``stcformer-cvae`` (:class:`STCFormerCVAE`): the one-shot criss-cross encoder-decoder of
  :mod:`crisscross.models.stcformer` (spatial attention over joints on half of the channels, temporal attention
  over frames on the other half) with one latent per forecast. The prior ``p(z | past)`` and the posterior
  ``q(z | past, future)`` are small MLPs on frame-averaged tokens (``[B, J*D]``): the prior reads the encoder's
  memory of the past, the posterior its own criss-cross encoder over the whole window ``[T_in + T_out]``
  (training only). ``z`` enters the decoder as a learned projection ``Linear(L -> D)`` added to every decoder
  query token; all ``T_out`` frames come out of one pass.

Parameters at 22 joints, 10 -> 25 frames: ``humor-cvae`` 738,180; ``humor-cvae-1024`` 8,830,980;
``stcformer-cvae`` 987,545 (``stcformer`` alone: 175,305).

Model-side API (training is not wired into the task beyond the registry's ``training_outputs`` hook: the KL
warm-up and the evaluation with ``K`` samples belong to the training and evaluation side):

* ``forward(past[B, T_in, J, 3]) -> [B, T_out, J, 3]``: the deterministic forecast with ``z`` set to the prior
  mean (each step's prior mean for ``humor-cvae``), so evaluation, prediction and export work as for any model.
  It decodes the prior mean, which is not the mean of the predictive distribution.
* ``sample(past, k, generator=None) -> [K, B, T_out, J, 3]``: ``K`` futures with latents drawn from the prior.
  ``generator`` (a ``torch.Generator`` on ``past``'s device) makes the draw reproducible; call it in eval mode
  so that dropout (``stcformer-cvae``) is off.
* ``noise_shape(batch) -> tuple`` and ``forecast_from_noise(past, noise) -> [B, T_out, J, 3]``: one future per
  row from standard-normal ``noise`` given by the caller (``[B, T_out, L]`` for ``humor-cvae``, one latent per
  step; ``[B, L]`` for ``stcformer-cvae``), ``z = mean + std * noise``. Zeros give ``forward``'s forecast; ``K``
  futures are ``K`` rows of one past with ``K`` draws. This is the form an exported graph takes (no random
  operator inside, so an ONNX Runtime caller owns the draws and their seed).
* ``elbo_terms(past, future, generator=None) -> dict[str, Tensor[]]``: the terms of the negative ELBO, with
  ``z`` drawn from the posterior by reparameterisation (``humor-cvae``: each transition from the ground-truth
  previous state, i.e. teacher forcing, unless ``sampling_ratio > 0`` in training mode):

  - ``reconstruction``: MPJPE in metres (mean per-joint L2 distance over ``B, T_out, J``; not squared) between
    the posterior decoding and ``future``;
  - ``kl``: ``KL(q || p)`` summed over the ``L`` latent dimensions, averaged over the batch (and, for
    ``humor-cvae``, over the ``T_out`` transitions, one latent each), with free bits: each dimension's
    batch-averaged KL is floored at ``free_bits`` nats (Kingma et al. 2016, "Improved variational inference
    with inverse autoregressive flow"), against posterior collapse; the floor passes no gradient;
  - ``kl_raw``: the same KL without the floor (for logging);
  - ``velocity`` (``humor-cvae`` only): the mean per-joint L2 error of the decoded state's velocity half in
    metres per frame (HuMoR supervises the joint velocities of its state with weight 1).

  The loss to minimise is ``reconstruction + velocity_weight * velocity + kl_weight * kl``.
* ``training_outputs(past, future) -> (pred, {"kl": kl_weight * kl[, "state_velocity": ...]})``: the registry
  hook, so the forecasting task's position loss on ``pred`` (the posterior decoding) plays the reconstruction.
  The KL weight rises linearly from 0 over ``kl_warmup_steps`` training calls (HuMoR: weight 4e-4 reached
  linearly over the first 50 epochs, ``configs/train_humor.cfg``); the count is a buffer, saved with the weights.
  ``humor-cvae``'s ``sampling_ratio`` is a plain attribute the engine may anneal.

Registry entries of these models carry ``stochastic=True``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from crisscross.models.criss_cross import CrissCrossDecoder, CrissCrossEncoder, MemoryKV
from crisscross.models.layers import TemporalExpansion, resolve_body_parts, stochastic_depth_rates
from crisscross.models.registry import register_model
from crisscross.models.stcformer import (
    PoseEmbedding,
    TokenPositions,
    _check_options,
    _init_small_head,
    _maybe_positions,
    _no_weight_decay,
)

__all__ = ["HumorCVAE", "STCFormerCVAE", "TransitionMLP", "free_bits_kl", "gaussian_kl"]

# Velocities (about 1 cm per frame at 25 fps) enter the networks in decimetres per frame, next to positions of
# order 0.1-1 m; the decoder's velocity output is in the same units.
_VELOCITY_SCALE = 10.0


# -- Gaussian latent helpers ---------------------------------------------------------------------------------
def gaussian_kl(q_mean: Tensor, q_logvar: Tensor, p_mean: Tensor, p_logvar: Tensor) -> Tensor:
    """``KL(N(q_mean, exp(q_logvar)) || N(p_mean, exp(p_logvar)))`` per dimension, in nats, in float32.

    All inputs ``[..., L]`` (diagonal Gaussians); returns ``[..., L]``.
    """
    q_mean, q_logvar, p_mean, p_logvar = (x.float() for x in (q_mean, q_logvar, p_mean, p_logvar))
    # The variance ratio as one exponential: exactly 1 (and the KL exactly 0) for identical distributions.
    return 0.5 * (p_logvar - q_logvar + (q_logvar - p_logvar).exp() + (q_mean - p_mean).square() * (-p_logvar).exp()
                  - 1.0)


def free_bits_kl(kl_per_dim: Tensor, free_bits: float) -> Tensor:
    """``sum_l max(free_bits, mean_n kl[n, l])``: the KL of ``kl_per_dim[N, L]``, each dimension floored.

    With ``free_bits = 0`` this is the KL summed over dimensions and averaged over the ``N`` rows.
    """
    per_dim = kl_per_dim.float().mean(dim=0)
    if free_bits > 0.0:
        per_dim = per_dim.clamp(min=free_bits)
    return per_dim.sum()


def _normal(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise of ``shape`` on ``like``'s device, in float32 (drawn from ``generator`` if given)."""
    return torch.randn(shape, generator=generator, device=like.device, dtype=torch.float32)


def _reparameterise(mean: Tensor, logvar: Tensor, noise: Tensor) -> Tensor:
    """``mean + exp(logvar / 2) * noise``."""
    return mean + (0.5 * logvar).exp() * noise.to(mean.dtype)


def _mpjpe(pred: Tensor, target: Tensor) -> Tensor:
    """Mean per-joint L2 distance of ``[..., 3]`` points, float32 scalar."""
    return torch.linalg.vector_norm(pred.float() - target.float(), dim=-1).mean()


def _elbo_dict(pred: Tensor, future: Tensor, kl_per_dim: Tensor, free_bits: float) -> dict[str, Tensor]:
    return {"reconstruction": _mpjpe(pred, future), "kl": free_bits_kl(kl_per_dim, free_bits),
            "kl_raw": free_bits_kl(kl_per_dim, 0.0)}


# -- humor-cvae ----------------------------------------------------------------------------------------------
class TransitionMLP(nn.Module):
    """HuMoR's MLP: ``Linear``, then ``GroupNorm -> ReLU -> Linear`` for each further layer.

    Args:
        in_features: input width.
        hidden: hidden widths, one per hidden layer.
        out_features: output width.
        skip: the last ``skip`` input features are concatenated to the input of every ``Linear`` after the first
            (HuMoR's decoder sees its latent at every layer).
        norm_groups: ``GroupNorm`` groups (HuMoR: 16); the largest common divisor with a layer's width is used.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, *, skip: int = 0,
                 norm_groups: int = 16) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("TransitionMLP needs at least one hidden layer")
        widths = [int(w) for w in hidden] + [out_features]
        self.skip = skip
        self.first = nn.Linear(in_features, widths[0])
        self.norms = nn.ModuleList(nn.GroupNorm(math.gcd(w, norm_groups), w) for w in widths[:-1])
        self.linears = nn.ModuleList(nn.Linear(widths[i] + skip, widths[i + 1]) for i in range(len(widths) - 1))

    def forward(self, x: Tensor) -> Tensor:
        """``x[N, in_features] -> [N, out_features]``."""
        skip_in = x[:, x.shape[1] - self.skip :] if self.skip else None
        h = self.first(x)
        for norm, linear in zip(self.norms, self.linears):
            h = F.relu(norm(h))
            h = linear(torch.cat([h, skip_in], dim=-1) if skip_in is not None else h)
        return h


class _KLWarmUp(nn.Module):
    """The KL weight of :meth:`training_outputs`, raised linearly from 0 over the first ``kl_warmup_steps``
    training calls (HuMoR ramps its weight over 50 epochs). The count is a buffer, so a checkpoint carries it
    and a resumed run continues the ramp exactly."""

    kl_weight: float
    kl_warmup_steps: int

    def _init_warmup(self, kl_weight: float, kl_warmup_steps: int) -> None:
        if kl_weight < 0 or kl_warmup_steps < 0:
            raise ValueError(f"kl_weight and kl_warmup_steps must be >= 0, got {kl_weight}, {kl_warmup_steps}")
        self.kl_weight, self.kl_warmup_steps = kl_weight, kl_warmup_steps
        self.register_buffer("kl_steps", torch.zeros((), dtype=torch.long))

    def current_kl_weight(self) -> float:
        """``kl_weight * min(1, steps / kl_warmup_steps)`` (the full weight without warm-up)."""
        if self.kl_warmup_steps == 0:
            return self.kl_weight
        return self.kl_weight * min(1.0, int(self.kl_steps) / self.kl_warmup_steps)

    def _weighted_kl(self, kl: Tensor) -> Tensor:
        weight = self.current_kl_weight()
        if self.training:
            self.kl_steps += 1
        return weight * kl


class HumorCVAE(_KLWarmUp):
    """HuMoR transition CVAE rolled out frame by frame: ``past[B, T_in, J, 3] -> [B, T_out, J, 3]``.

    Args:
        num_joints, output_frames: ``J``, ``T_out`` (the model is Markov in its state: ``T_in`` is not needed).
        latent_size: ``L`` (HuMoR: 48).
        prior_hidden: hidden widths of the prior MLP ``x_{t-1} -> (mean, log-variance)`` (HuMoR: 4 x 1024).
        posterior_hidden: hidden widths of the posterior MLP ``(x_{t-1}, x_t) -> (mean, log-variance)``
            (HuMoR: 4 x 1024).
        decoder_hidden: hidden widths of the decoder MLP ``(x_{t-1}, z) -> x_t - x_{t-1}`` (HuMoR: 1024, 1024, 512).
        norm_groups: GroupNorm groups in the MLPs (HuMoR: 16).
        free_bits: nats per latent dimension below which the KL is floored (0: plain KL; HuMoR uses none).
        kl_weight: weight of the KL in :meth:`training_outputs` (HuMoR's final weight, 4e-4, with MSE terms).
        kl_warmup_steps: updates over which the KL weight rises linearly from 0 to ``kl_weight`` (0: none).
        velocity_weight: weight of the state-velocity error in :meth:`training_outputs` (HuMoR: 1).
        sampling_ratio: in training mode, the probability that a transition's input state is the model's own
            (detached) previous output rather than the ground truth (HuMoR's scheduled sampling with
            ``detach_sched_samp``); 0 is teacher forcing, with all ``T_out`` transitions in one batch.
    """

    def __init__(
        self,
        *,
        num_joints: int,
        output_frames: int,
        latent_size: int = 48,
        prior_hidden: Sequence[int] = (1024, 1024, 1024, 1024),
        posterior_hidden: Sequence[int] = (1024, 1024, 1024, 1024),
        decoder_hidden: Sequence[int] = (1024, 1024, 512),
        norm_groups: int = 16,
        free_bits: float = 0.0,
        kl_weight: float = 4e-4,
        kl_warmup_steps: int = 0,
        velocity_weight: float = 1.0,
        sampling_ratio: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.output_frames = output_frames
        self.latent_size = latent_size
        self.free_bits = free_bits
        self._init_warmup(kl_weight, kl_warmup_steps)
        self.velocity_weight = velocity_weight
        self.sampling_ratio = sampling_ratio
        state = 6 * num_joints
        mlp = dict(norm_groups=norm_groups)
        self.prior_net = TransitionMLP(state, prior_hidden, 2 * latent_size, **mlp)
        self.posterior_net = TransitionMLP(2 * state, posterior_hidden, 2 * latent_size, **mlp)
        self.decoder = TransitionMLP(state + latent_size, decoder_hidden, state, skip=latent_size, **mlp)
        _init_small_head(self.decoder.linears[-1])  # starts as "keep the state": a zero-velocity forecaster

    # -- states ------------------------------------------------------------------------------------------
    def _states(self, frames: Tensor, before: Tensor) -> Tensor:
        """States ``[B, T, 2C]`` of ``frames[B, T, J, 3]``; the first velocity is from ``before[B, 1, J, 3]``."""
        velocity = frames - torch.cat([before, frames[:, :-1]], dim=1)
        return torch.cat([frames.flatten(2), _VELOCITY_SCALE * velocity.flatten(2)], dim=-1)

    def _initial_state(self, past: Tensor) -> Tensor:
        """State ``[B, 2C]`` of the last observed frame (zero velocity when ``T_in == 1``)."""
        before = past[:, -2:-1] if past.shape[1] > 1 else past[:, -1:]
        return self._states(past[:, -1:], before)[:, 0]

    def _positions(self, states: Tensor) -> Tensor:
        """Poses ``[..., J, 3]`` of states ``[..., 2C]``."""
        return states[..., : 3 * self.num_joints].unflatten(-1, (self.num_joints, 3))

    def _velocities(self, states: Tensor) -> Tensor:
        """Velocities ``[..., J, 3]`` in metres per frame of states ``[..., 2C]``."""
        return states[..., 3 * self.num_joints :].unflatten(-1, (self.num_joints, 3)) / _VELOCITY_SCALE

    # -- the three networks ------------------------------------------------------------------------------
    def prior(self, state: Tensor) -> tuple[Tensor, Tensor]:
        """``p(z | x_{t-1})``: mean and log-variance ``[N, L]`` from ``state[N, 2C]``."""
        return self.prior_net(state).chunk(2, dim=-1)

    def posterior(self, state: Tensor, next_state: Tensor) -> tuple[Tensor, Tensor]:
        """``q(z | x_{t-1}, x_t)``: mean and log-variance ``[N, L]``."""
        return self.posterior_net(torch.cat([state, next_state], dim=-1)).chunk(2, dim=-1)

    def decode(self, z: Tensor, state: Tensor) -> Tensor:
        """``x_t = x_{t-1} + decoder(x_{t-1}, z)``: ``z[N, L]``, ``state[N, 2C] -> [N, 2C]``."""
        return state + self.decoder(torch.cat([state, z.to(state.dtype)], dim=-1))

    # -- rollout from the prior --------------------------------------------------------------------------
    def rollout(self, past: Tensor, noise: Tensor | None = None) -> Tensor:
        """Autoregressive forecast ``[B, T_out, J, 3]``: each step decodes ``z_t`` from the current state's prior.

        Args:
            past: ``[B, T_in, J, 3]``.
            noise: standard normal ``[T_out, B, L]``: ``z_t = mean_t + std_t * noise[t]``; ``None`` uses the prior
                means (the deterministic forecast). Step ``t`` reads only ``noise[:t + 1]`` and the observed past.
        """
        state = self._initial_state(past)
        frames = []
        for t in range(self.output_frames):
            mean, logvar = self.prior(state)
            z = mean if noise is None else _reparameterise(mean, logvar, noise[t])
            state = self.decode(z, state)
            frames.append(self._positions(state))
        return torch.stack(frames, dim=1)

    def forward(self, past: Tensor) -> Tensor:
        """``past[B, T_in, J, 3] -> [B, T_out, J, 3]``, every latent at its prior mean (deterministic)."""
        return self.rollout(past)

    def noise_shape(self, batch: int) -> tuple[int, int, int]:
        """Shape of :meth:`forecast_from_noise`'s ``noise``: ``(B, T_out, L)``, one latent per step."""
        return batch, self.output_frames, self.latent_size

    def forecast_from_noise(self, past: Tensor, noise: Tensor) -> Tensor:
        """``past[B, T_in, J, 3]``, standard-normal ``noise[B, T_out, L]`` -> ``[B, T_out, J, 3]``:
        ``z_t = mean_t + std_t * noise[:, t]`` at every step (zeros: :meth:`forward`'s forecast)."""
        return self.rollout(past, noise.transpose(0, 1))

    def sample(self, past: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
        """``K`` futures ``[K, B, T_out, J, 3]``, each step's latent drawn from its prior."""
        b = past.shape[0]
        noise = _normal((self.output_frames, k * b, self.latent_size), past, generator)
        out = self.rollout(past.repeat(k, 1, 1, 1), noise)  # sample-major: rows k*B .. (k+1)*B - 1
        return out.unflatten(0, (k, b))

    # -- training ----------------------------------------------------------------------------------------
    def _transition(self, state: Tensor, target: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior decoding ``[N, 2C]`` of one transition and its KL per latent dimension ``[N, L]``."""
        q_mean, q_logvar = self.posterior(state, target)
        p_mean, p_logvar = self.prior(state)
        decoded = self.decode(_reparameterise(q_mean, q_logvar, noise), state)
        return decoded, gaussian_kl(q_mean, q_logvar, p_mean, p_logvar)

    def _transitions(self, past: Tensor, future: Tensor,
                     generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
        """Decoded states ``[B, T_out, 2C]``, their targets ``[B, T_out, 2C]`` and the KL ``[B * T_out, L]``."""
        b, t_out = future.shape[:2]
        start = self._initial_state(past)
        targets = self._states(future, past[:, -1:])
        noise = _normal((t_out, b, self.latent_size), past, generator)
        if not (self.training and self.sampling_ratio > 0.0):  # teacher forcing: all transitions at once
            inputs = torch.cat([start[:, None], targets[:, :-1]], dim=1)
            step_noise = noise.transpose(0, 1).flatten(0, 1)  # [B * T_out, L], batch-major like the states
            decoded, kl = self._transition(inputs.flatten(0, 1), targets.flatten(0, 1), step_noise)
            return decoded.unflatten(0, (b, t_out)), targets, kl
        state, decoded, kls = start, [], []
        for t in range(t_out):
            out, kl = self._transition(state, targets[:, t], noise[t])
            decoded.append(out)
            kls.append(kl)
            own = torch.rand(b, 1, device=past.device) < self.sampling_ratio
            state = torch.where(own, out.detach(), targets[:, t])
        return torch.stack(decoded, dim=1), targets, torch.stack(kls, dim=1).flatten(0, 1)

    def elbo_terms(self, past: Tensor, future: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``reconstruction``, ``velocity``, ``kl`` and ``kl_raw`` (see the module docstring), float32 scalars."""
        decoded, targets, kl = self._transitions(past, future, generator)
        terms = _elbo_dict(self._positions(decoded), future, kl, self.free_bits)
        terms["velocity"] = _mpjpe(self._velocities(decoded), self._velocities(targets))
        return terms

    def training_outputs(self, past: Tensor, future: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Posterior decoding ``[B, T_out, J, 3]`` and the weighted KL and state-velocity terms."""
        decoded, targets, kl = self._transitions(past, future, None)
        velocity = _mpjpe(self._velocities(decoded), self._velocities(targets))
        return self._positions(decoded), {"kl": self._weighted_kl(free_bits_kl(kl, self.free_bits)),
                                          "state_velocity": self.velocity_weight * velocity}


# -- stcformer-cvae ------------------------------------------------------------------------------------------
class LatentHead(nn.Module):
    """Diagonal Gaussian ``(mean, log-variance) [B, L]`` from tokens ``[B, T, J, D]`` averaged over frames."""

    def __init__(self, num_joints: int, dim: int, hidden: int, latent_size: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(num_joints * dim, hidden)
        self.fc2 = nn.Linear(hidden, 2 * latent_size)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """``tokens[B, T, J, D] -> (mean, logvar)``, each ``[B, L]``."""
        return self.fc2(F.gelu(self.fc1(tokens.mean(dim=1).flatten(1)))).chunk(2, dim=-1)


class STCFormerCVAE(_KLWarmUp):
    """Criss-cross CVAE: ``past[B, T_in, J, 3] -> [B, T_out, J, 3]`` with one latent per forecast.

    Args (besides those of :class:`~crisscross.models.stcformer.STCFormer`):
        latent_size: ``L``.
        latent_hidden: hidden width of the prior and posterior MLPs (on ``J * D`` frame-averaged features).
        posterior_blocks: depth of the posterior's criss-cross encoder over the ``T_in + T_out`` frames.
        free_bits: nats per latent dimension below which the KL is floored (0: plain KL).
        kl_weight: weight of the KL in :meth:`training_outputs`; the default is HuMoR's 4e-4 per frame explained
            by a latent divided by 25 output frames (one latent here explains the whole 10 -> 25 forecast).
        kl_warmup_steps: updates over which the KL weight rises linearly from 0 to ``kl_weight`` (0: none).
    """

    #: ``train.init_from`` may name a checkpoint of the deterministic STCFormer with the same arguments: its
    #: weights fill the encoder, decoder and head, and the latent parts below start as built.
    warm_start_from = ("stcformer",)
    warm_start_new = ("prior_net.", "post_embed.", "post_pos.", "post_encoder.", "posterior_net.", "latent_embed.",
                      "kl_steps")

    def __init__(
        self,
        *,
        num_joints: int,
        input_frames: int,
        output_frames: int,
        dim: int = 64,
        enc_blocks: int = 2,
        dec_blocks: int = 2,
        heads: int = 2,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        drop_path: float = 0.0,
        norm: str = "pre",
        pos_embed: str = "spe",
        residual_last_pose: bool = True,
        body_parts: tuple[int, ...] | None = None,
        pose_features: str = "raw",
        latent_size: int = 48,
        latent_hidden: int = 256,
        posterior_blocks: int = 1,
        free_bits: float = 0.0,
        kl_weight: float = 1.6e-5,
        kl_warmup_steps: int = 0,
    ) -> None:
        super().__init__()
        _check_options(norm, pos_embed, pose_features)
        body_parts, _ = resolve_body_parts(body_parts, num_joints)
        self.output_frames = output_frames
        self.residual_last_pose = residual_last_pose
        self.latent_size = latent_size
        self.free_bits = free_bits
        self._init_warmup(kl_weight, kl_warmup_steps)
        stack = dict(mlp_ratio=mlp_ratio, dropout=dropout, norm=norm, spe=pos_embed == "spe", body_parts=body_parts)
        # The STCFormer forecaster: encoder of the past, expanded queries and memory, causal decoder, pose head.
        self.embed = PoseEmbedding(dim, pose_features)
        self.enc_pos = _maybe_positions(pos_embed, input_frames, num_joints, dim)
        self.dec_pos = _maybe_positions(pos_embed, output_frames, num_joints, dim)
        rates = stochastic_depth_rates(drop_path, enc_blocks + dec_blocks)
        self.encoder = CrissCrossEncoder(dim, enc_blocks, heads, drop_path=rates[:enc_blocks], **stack)
        self.query_expand = TemporalExpansion(input_frames, output_frames)
        self.memory_expand = TemporalExpansion(input_frames, output_frames)
        self.decoder = CrissCrossDecoder(dim, dec_blocks, heads, drop_path=rates[enc_blocks:], **stack)
        self.head = nn.Linear(dim, 3)
        _init_small_head(self.head)
        # The latent: prior from the past's memory, posterior from the whole window, injected into the queries.
        self.prior_net = LatentHead(num_joints, dim, latent_hidden, latent_size)
        self.post_embed = PoseEmbedding(dim, "offsets")  # offsets from the last observed pose carry the future
        self.post_pos = TokenPositions(input_frames + output_frames, num_joints, dim)
        self.post_encoder = CrissCrossEncoder(dim, posterior_blocks, heads, **stack)
        self.posterior_net = LatentHead(num_joints, dim, latent_hidden, latent_size)
        self.latent_embed = nn.Linear(latent_size, dim)

    def after_warm_start(self) -> None:
        """Zero the latent's projection so the warm-started model first forecasts exactly as its backbone."""
        nn.init.zeros_(self.latent_embed.weight)
        nn.init.zeros_(self.latent_embed.bias)

    def no_weight_decay(self) -> set[str]:
        """Names of positional and part-embedding parameters."""
        return _no_weight_decay(self)

    def _encode(self, past: Tensor) -> tuple[Tensor, list[MemoryKV], tuple[Tensor, Tensor]]:
        """Decoder queries ``[B, T_out, J, D]``, projected memory and the prior ``(mean, logvar) [B, L]``."""
        tokens = self.embed(past, past[:, -1:])
        memory = self.encoder(self.enc_pos(tokens) if self.enc_pos is not None else tokens)
        queries = self.query_expand(tokens)
        if self.dec_pos is not None:
            queries = self.dec_pos(queries)
        projected = self.decoder.project_memory(memory, self.memory_expand(memory))
        return queries, projected, self.prior_net(memory)

    def posterior(self, past: Tensor, future: Tensor) -> tuple[Tensor, Tensor]:
        """``q(z | past, future)``: mean and log-variance ``[B, L]``."""
        window = torch.cat([past, future], dim=1)
        return self.posterior_net(self.post_encoder(self.post_pos(self.post_embed(window, past[:, -1:]))))

    def _decode(self, queries: Tensor, memory: list[MemoryKV], z: Tensor, past: Tensor) -> Tensor:
        """``[B, T_out, J, 3]`` from queries, memory and ``z[B, L]`` (added to every query token)."""
        y = self.decoder(queries + self.latent_embed(z.to(queries.dtype))[:, None, None], memory)
        out = self.head(y)
        return out + past[:, -1:] if self.residual_last_pose else out

    def forward(self, past: Tensor) -> Tensor:
        """``past[B, T_in, J, 3] -> [B, T_out, J, 3]`` with ``z`` at the prior mean (deterministic)."""
        queries, memory, (mean, _) = self._encode(past)
        return self._decode(queries, memory, mean, past)

    def noise_shape(self, batch: int) -> tuple[int, int]:
        """Shape of :meth:`forecast_from_noise`'s ``noise``: ``(B, L)``, one latent per forecast."""
        return batch, self.latent_size

    def forecast_from_noise(self, past: Tensor, noise: Tensor) -> Tensor:
        """``past[B, T_in, J, 3]``, standard-normal ``noise[B, L]`` -> ``[B, T_out, J, 3]`` with
        ``z = mean + std * noise`` (zeros: :meth:`forward`'s forecast)."""
        queries, memory, (mean, logvar) = self._encode(past)
        return self._decode(queries, memory, _reparameterise(mean, logvar, noise), past)

    def sample(self, past: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
        """``K`` futures ``[K, B, T_out, J, 3]`` from latents drawn from the prior; the past is encoded once."""
        b = past.shape[0]
        queries, memory, (mean, logvar) = self._encode(past)

        def tile(x: Tensor) -> Tensor:  # [B, ...] -> [K*B, ...], sample-major
            return x.repeat(k, *([1] * (x.ndim - 1)))

        z = _reparameterise(tile(mean), tile(logvar), _normal((k * b, self.latent_size), past, generator))
        memory = [tuple(tile(x) for x in mem) for mem in memory]
        return self._decode(tile(queries), memory, z, tile(past)).unflatten(0, (k, b))

    def _posterior_decoding(self, past: Tensor, future: Tensor,
                            generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Prediction ``[B, T_out, J, 3]`` from a posterior latent and the KL per dimension ``[B, L]``."""
        queries, memory, (p_mean, p_logvar) = self._encode(past)
        q_mean, q_logvar = self.posterior(past, future)
        z = _reparameterise(q_mean, q_logvar, _normal(tuple(q_mean.shape), past, generator))
        return self._decode(queries, memory, z, past), gaussian_kl(q_mean, q_logvar, p_mean, p_logvar)

    def elbo_terms(self, past: Tensor, future: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``reconstruction``, ``kl`` and ``kl_raw`` (see the module docstring), float32 scalars."""
        pred, kl = self._posterior_decoding(past, future, generator)
        return _elbo_dict(pred, future, kl, self.free_bits)

    def training_outputs(self, past: Tensor, future: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Posterior decoding ``[B, T_out, J, 3]`` and the weighted KL."""
        pred, kl = self._posterior_decoding(past, future, None)
        return pred, {"kl": self._weighted_kl(free_bits_kl(kl, self.free_bits))}


# -- registered variants -------------------------------------------------------------------------------------
def _humor(defaults: dict, *, num_joints: int, output_frames: int, **overrides) -> HumorCVAE:
    kwargs = {**defaults, **overrides}
    for key in ("prior_hidden", "posterior_hidden", "decoder_hidden"):
        kwargs[key] = tuple(int(w) for w in kwargs[key])
    return HumorCVAE(num_joints=num_joints, output_frames=output_frames, **kwargs)


@register_model("humor-cvae", description="HuMoR transition CVAE (MLPs of width 256, 48-d latent), autoregressive",
                stochastic=True)
def humor_cvae(*, num_joints: int, input_frames: int, output_frames: int,
               graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
               **overrides) -> HumorCVAE:
    """HuMoR's transition CVAE with its MLP structure at width 256 (decoder 256, 256, 128)."""
    del input_frames, graph_parents, body_parts  # Markov in the state of the last observed frame; dense MLPs
    defaults = dict(latent_size=48, prior_hidden=(256,) * 4, posterior_hidden=(256,) * 4,
                    decoder_hidden=(256, 256, 128))
    return _humor(defaults, num_joints=num_joints, output_frames=output_frames, **overrides)


@register_model("humor-cvae-1024", description="HuMoR transition CVAE at the published size (MLPs of width 1024)",
                stochastic=True)
def humor_cvae_1024(*, num_joints: int, input_frames: int, output_frames: int,
                    graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                    **overrides) -> HumorCVAE:
    """HuMoR's transition CVAE at the published widths: prior/posterior 4 x 1024, decoder 1024, 1024, 512."""
    del input_frames, graph_parents, body_parts
    defaults = dict(latent_size=48, prior_hidden=(1024,) * 4, posterior_hidden=(1024,) * 4,
                    decoder_hidden=(1024, 1024, 512))
    return _humor(defaults, num_joints=num_joints, output_frames=output_frames, **overrides)


@register_model("stcformer-cvae", description="Criss-cross CVAE: STCFormer (D=64, 2+2 blocks) with a 48-d latent",
                stochastic=True)
def stcformer_cvae(*, num_joints: int, input_frames: int, output_frames: int,
                   graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                   **overrides) -> STCFormerCVAE:
    """STCFormer's default sizes plus a 48-d latent, prior/posterior MLPs of width 256 and a 1-block posterior."""
    del graph_parents  # criss-cross attention is dense over joints; the skeleton enters through body parts
    parts, _ = resolve_body_parts(body_parts, num_joints)
    defaults = dict(dim=64, enc_blocks=2, dec_blocks=2, heads=2, mlp_ratio=2.0, norm="pre", pos_embed="spe",
                    latent_size=48, latent_hidden=256, posterior_blocks=1)
    return STCFormerCVAE(num_joints=num_joints, input_frames=input_frames, output_frames=output_frames,
                         body_parts=parts, **{**defaults, **overrides})
