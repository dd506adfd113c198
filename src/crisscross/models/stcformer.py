"""STCFormer for motion forecasting: a criss-cross attention encoder-decoder, one-shot and autoregressive.

Criss-cross attention is from STCFormer (Tang et al., CVPR 2023; ``zhenhuat/STCFormer``), a 2D-to-3D
lifting model. The AML 2023/24 course project turned it into a forecaster (``docs/models.md``):

* ``STCFormer`` (one-shot): per-joint ``Linear(3 -> D)`` embedding; an encoder of criss-cross blocks over
  the ``T_in`` observed frames; the decoder's query sequence is the embedded input mapped from ``T_in``
  to ``T_out`` frames by a 2D convolution with frames as channels (the "temporal expansion"); a second
  expansion of the encoder output gives the frame-aligned memory for the spatial half of
  cross-attention, while the temporal half reads the ``T_in`` encoder frames of each joint. Decoder
  self-attention is causal. All ``T_out`` frames come out of one pass. Because the decoder input does not
  depend on its outputs, decoding it frame by frame (:meth:`STCFormer.decode_stepwise`) gives the same
  numbers: that is the "autoregressive evaluation" of the one-shot model, useful as a causality check
  and to time the course's frame-by-frame validation, not a different predictor.
* ``STCFormerAR``: the same network fed its own predictions. Each decoder input frame is the pose plus a
  2-value flag ([0, 1] on the start token, the last observed frame; [0, 0] elsewhere; [1, 0] reserved for
  an end token); the head predicts pose and flag, and :meth:`STCFormerAR.training_outputs` adds an L2 loss
  on the flag. Training uses teacher forcing (the ground-truth future shifted right, causal mask) with an
  optional scheduled-sampling ratio; inference decodes one frame per step with a key/value cache.

``residual_last_pose``: the one-shot model predicts offsets from the last observed pose; the
autoregressive one predicts each frame as an offset from its decoder input frame (the previous pose).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from crisscross.models.criss_cross import CrissCrossDecoder, CrissCrossEncoder, MemoryKV
from crisscross.models.layers import NORM_MODES, TemporalExpansion, resolve_body_parts, stochastic_depth_rates
from crisscross.models.registry import register_model

__all__ = ["POSE_FEATURES", "POS_EMBEDS", "PoseEmbedding", "STCFormer", "STCFormerAR", "TokenPositions"]

POS_EMBEDS = ("spe", "learned", "none")
POSE_FEATURES = ("raw", "offsets")
# Models see metres (crisscross.training.batches); "offsets" features give the offsets from the last observed pose
# in decimetres, so one frame of motion (about 1 cm) is a feature of order 0.1 rather than 0.01.
_OFFSET_SCALE = 10.0


class TokenPositions(nn.Module):
    """Learned additive frame and joint embeddings for ``[B, T, J, D]`` tokens (``pos_embed="learned"``)."""

    def __init__(self, frames: int, joints: int, dim: int) -> None:
        super().__init__()
        self.frame_embed = nn.Parameter(torch.zeros(frames, 1, dim))
        self.joint_embed = nn.Parameter(torch.zeros(joints, dim))
        nn.init.trunc_normal_(self.frame_embed, std=0.02)
        nn.init.trunc_normal_(self.joint_embed, std=0.02)

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """``x[B, T, J, D]`` plus the embeddings of frames ``start .. start+T-1``."""
        return x + self.frame_embed[start : start + x.shape[1]] + self.joint_embed


class PoseEmbedding(nn.Linear):
    """Per-joint token ``[B, T, J, D]`` from poses ``[B, T, J, 3]`` in metres (plus ``extra`` channels).

    ``features="raw"`` embeds the positions as they are (the course's model). ``"offsets"`` embeds them next to
    their offsets from a reference pose (the last observed one) in decimetres. Why: under bf16 autocast a
    coordinate near 1 m is rounded to a 4 mm step (0.7 mm mean 3D error on Human3.6M, against 11 mm of motion
    per frame), which blurs exactly the frame-to-frame motion a forecaster extrapolates; offsets from a nearby
    pose are small numbers and keep their precision. A ``Linear`` subclass, so ``"raw"`` checkpoints keep their
    keys.
    """

    def __init__(self, dim: int, features: str = "raw", extra: int = 0) -> None:
        super().__init__((6 if features == "offsets" else 3) + extra, dim)
        self.features = features

    def forward(self, poses: Tensor, reference: Tensor, extra: Tensor | None = None) -> Tensor:
        """``poses[B, T, J, 3]``, ``reference[B, 1, J, 3]``, ``extra[B, T, J, E]`` -> ``[B, T, J, D]``."""
        if self.features == "offsets":
            parts = [poses, (poses - reference) * _OFFSET_SCALE]
        else:
            parts = [poses]
        if extra is not None:
            parts.append(extra)
        return super().forward(torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0])


def _check_options(norm: str, pos_embed: str, pose_features: str) -> None:
    if norm not in NORM_MODES:
        raise ValueError(f"norm must be one of {NORM_MODES}, got {norm!r}")
    if pos_embed not in POS_EMBEDS:
        raise ValueError(f"pos_embed must be one of {POS_EMBEDS}, got {pos_embed!r}")
    if pose_features not in POSE_FEATURES:
        raise ValueError(f"pose_features must be one of {POSE_FEATURES}, got {pose_features!r}")


def _maybe_positions(pos_embed: str, frames: int, joints: int, dim: int) -> nn.Module | None:
    return TokenPositions(frames, joints, dim) if pos_embed == "learned" else None


def _init_small_head(head: nn.Linear) -> None:
    # Near-zero output layer: the model starts close to its residual baseline (last-pose repeater).
    nn.init.normal_(head.weight, std=1e-3)
    nn.init.zeros_(head.bias)


def _no_weight_decay(model: nn.Module) -> set[str]:
    """Positional and part embeddings (the ``ndim <= 1`` rule misses these 2-D/3-D tables)."""
    keys = ("frame_embed", "joint_embed", "part_embed")
    return {name for name, _ in model.named_parameters() if any(k in name for k in keys)}


class STCFormer(nn.Module):
    """One-shot criss-cross encoder-decoder: ``past[B, T_in, J, 3] -> [B, T_out, J, 3]``.

    Args:
        num_joints, input_frames, output_frames: ``J``, ``T_in``, ``T_out``.
        dim: model width ``D``.
        enc_blocks, dec_blocks: encoder and decoder depth.
        heads: heads per pathway (each pathway has ``D/2`` channels).
        mlp_ratio: feed-forward hidden width as a multiple of ``D``.
        dropout: dropout on attention weights, projections and feed-forwards.
        drop_path: stochastic depth: the largest per-sample drop rate of a residual branch, reached by the last
            decoder block (rates rise linearly from 0 over the encoder then decoder blocks); see
            :class:`~crisscross.models.layers.ResidualBranch`.
        norm: ``"pre"``, ``"post"`` or ``"sandwich"`` LayerNorm placement.
        pos_embed: ``"spe"`` (structure-enhanced), ``"learned"`` (frame + joint tables) or ``"none"``.
        residual_last_pose: predict offsets from the last observed pose.
        body_parts: part index per joint for the SPE part embedding (all zeros when ``None``).
        pose_features: ``"raw"`` (positions as given, the course's input) or ``"offsets"`` (see :class:`PoseEmbedding`).
    """

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
    ) -> None:
        super().__init__()
        _check_options(norm, pos_embed, pose_features)
        body_parts, _ = resolve_body_parts(body_parts, num_joints)
        self.output_frames = output_frames
        self.residual_last_pose = residual_last_pose
        spe = pos_embed == "spe"
        stack = dict(mlp_ratio=mlp_ratio, dropout=dropout, norm=norm, spe=spe, body_parts=body_parts)
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

    def no_weight_decay(self) -> set[str]:
        """Names of positional and part-embedding parameters."""
        return _no_weight_decay(self)

    def _prepare(self, past: Tensor) -> tuple[Tensor, list[MemoryKV]]:
        """Decoder queries ``[B, T_out, J, D]`` and per-block projected memory."""
        tokens = self.embed(past, past[:, -1:])
        enc_in = self.enc_pos(tokens) if self.enc_pos is not None else tokens
        memory = self.encoder(enc_in)
        queries = self.query_expand(tokens)
        if self.dec_pos is not None:
            queries = self.dec_pos(queries)
        return queries, self.decoder.project_memory(memory, self.memory_expand(memory))

    def _readout(self, y: Tensor, past: Tensor) -> Tensor:
        out = self.head(y)
        return out + past[:, -1:] if self.residual_last_pose else out

    def forward(self, past: Tensor) -> Tensor:
        """``past[B, T_in, J, 3] -> [B, T_out, J, 3]`` in one decoder pass."""
        queries, memory = self._prepare(past)
        return self._readout(self.decoder(queries, memory), past)

    def decode_stepwise(self, past: Tensor, use_cache: bool = True) -> Tensor:
        """Decode the output frames one at a time (same result as :meth:`forward`; see module docstring).

        Args:
            past: ``[B, T_in, J, 3]``.
            use_cache: reuse cached keys/values (one frame of work per step) instead of re-running the
                decoder over all frames so far at every step.
        """
        queries, memory = self._prepare(past)
        frames = []
        cache = self.decoder.new_cache()
        for t in range(self.output_frames):
            if use_cache:
                frames.append(self.decoder.step(queries[:, t : t + 1], t, cache, memory))
            else:
                frames.append(self.decoder(queries[:, : t + 1], memory)[:, -1:])
        return self._readout(torch.cat(frames, dim=1), past)


class STCFormerAR(nn.Module):
    """Autoregressive criss-cross encoder-decoder with start flag and key/value-cached decoding.

    Args (besides those of :class:`STCFormer`):
        flag_loss_weight: weight of the L2 loss on the predicted flag in :meth:`training_outputs`.
        sampling_ratio: scheduled-sampling probability of replacing a teacher-forced decoder input by the
            model's own (detached) prediction during training; a plain attribute the engine may anneal.
        free_running: train on the model's own rollout instead (every decoder input after the start token is
            its previous prediction, with the gradient through all ``T_out`` steps; the "sampling-based
            loss" of Martinez et al. 2017). It removes the exposure bias of teacher forcing, at the cost of
            ``T_out`` sequential cached steps per update.
    """

    START_FLAG = (0.0, 1.0)
    END_FLAG = (1.0, 0.0)  # reserved: the horizon is fixed, so no end token is emitted

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
        flag_loss_weight: float = 1.0,
        sampling_ratio: float = 0.0,
        free_running: bool = False,
        pose_features: str = "raw",
    ) -> None:
        super().__init__()
        _check_options(norm, pos_embed, pose_features)
        body_parts, _ = resolve_body_parts(body_parts, num_joints)
        self.output_frames = output_frames
        self.residual_last_pose = residual_last_pose
        self.flag_loss_weight = flag_loss_weight
        self.sampling_ratio = sampling_ratio
        self.free_running = free_running
        spe = pos_embed == "spe"
        stack = dict(mlp_ratio=mlp_ratio, dropout=dropout, norm=norm, spe=spe, body_parts=body_parts)
        self.embed = PoseEmbedding(dim, pose_features)
        self.embed_dec = PoseEmbedding(dim, pose_features, extra=2)  # pose + flag (2)
        self.enc_pos = _maybe_positions(pos_embed, input_frames, num_joints, dim)
        self.dec_pos = _maybe_positions(pos_embed, output_frames, num_joints, dim)
        rates = stochastic_depth_rates(drop_path, enc_blocks + dec_blocks)
        self.encoder = CrissCrossEncoder(dim, enc_blocks, heads, drop_path=rates[:enc_blocks], **stack)
        self.memory_expand = TemporalExpansion(input_frames, output_frames)
        self.decoder = CrissCrossDecoder(dim, dec_blocks, heads, drop_path=rates[enc_blocks:], **stack)
        self.head = nn.Linear(dim, 5)
        _init_small_head(self.head)

    def no_weight_decay(self) -> set[str]:
        """Names of positional and part-embedding parameters."""
        return _no_weight_decay(self)

    # -- pieces --------------------------------------------------------------------------------------
    def _memory(self, past: Tensor) -> list[MemoryKV]:
        tokens = self.embed(past, past[:, -1:])
        memory = self.encoder(self.enc_pos(tokens) if self.enc_pos is not None else tokens)
        return self.decoder.project_memory(memory, self.memory_expand(memory))

    def _tokens(self, poses: Tensor, start: int, reference: Tensor) -> Tensor:
        """Decoder tokens ``[B, T, J, D]`` for input poses at positions ``start..``; position 0 is flagged."""
        b, t, j, _ = poses.shape
        flags = poses.new_zeros(b, t, j, 2)
        if start == 0:
            flags[:, 0, :, 1] = 1.0
        x = self.embed_dec(poses, reference, flags)
        return self.dec_pos(x, start) if self.dec_pos is not None else x

    def _readout(self, y: Tensor, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """Poses ``[B, T, J, 3]`` and flags ``[B, T, J, 2]`` from decoder outputs."""
        out = self.head(y)
        pose, flag = out[..., :3], out[..., 3:]
        return (inputs + pose if self.residual_last_pose else pose), flag

    def _teacher_forced(self, past: Tensor, inputs: Tensor, memory: list[MemoryKV]) -> tuple[Tensor, Tensor]:
        return self._readout(self.decoder(self._tokens(inputs, 0, past[:, -1:]), memory), inputs)

    # -- public --------------------------------------------------------------------------------------
    def training_outputs(self, past: Tensor, future: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Teacher-forced prediction and the weighted flag loss.

        Args:
            past: ``[B, T_in, J, 3]``.
            future: ground truth ``[B, T_out, J, 3]``.

        Returns:
            ``(pred[B, T_out, J, 3], {"flag": Tensor[]})``; the decoder input is the last observed frame
            followed by ``future[:, :-1]`` (some replaced by the model's own predictions with probability
            ``sampling_ratio`` in training mode: parallel scheduled sampling, Duckworth et al. 2019). With
            ``free_running`` in training mode the prediction is the model's own cached rollout instead.
        """
        memory = self._memory(past)
        if self.training and self.free_running:
            pred, flag = self._rollout(past, memory, use_cache=True)
        else:
            inputs = torch.cat([past[:, -1:], future[:, :-1]], dim=1)
            if self.training and self.sampling_ratio > 0.0:
                with torch.no_grad():
                    first, _ = self._teacher_forced(past, inputs, memory)
                use_own = torch.rand(inputs.shape[0], inputs.shape[1], 1, 1, device=inputs.device) < self.sampling_ratio
                use_own[:, 0] = False  # the start token is always the observed frame
                inputs = torch.where(use_own, torch.roll(first, 1, dims=1), inputs)
            pred, flag = self._teacher_forced(past, inputs, memory)
        flag_loss = flag.float().square().sum(dim=-1).mean()  # target flag of predicted frames: [0, 0]
        return pred, {"flag": self.flag_loss_weight * flag_loss}

    def decode(self, past: Tensor, use_cache: bool = True) -> Tensor:
        """Autoregressive decoding of ``T_out`` frames, each fed back as the next decoder input.

        Args:
            past: ``[B, T_in, J, 3]``.
            use_cache: keep per-block temporal keys/values so each step processes one frame; otherwise
                re-run the whole decoder over all inputs so far at every step (same numbers, slower).

        Returns:
            ``[B, T_out, J, 3]``.
        """
        return self._rollout(past, self._memory(past), use_cache)[0]

    def _rollout(self, past: Tensor, memory: list[MemoryKV], use_cache: bool) -> tuple[Tensor, Tensor]:
        """Poses ``[B, T_out, J, 3]`` and flags ``[B, T_out, J, 2]``, each pose fed back as the next input."""
        cache = self.decoder.new_cache()
        last = past[:, -1:]
        inputs = [last]
        preds, flags = [], []
        for t in range(self.output_frames):
            if use_cache:
                y = self.decoder.step(self._tokens(inputs[-1], t, last), t, cache, memory)
                pose, flag = self._readout(y, inputs[-1])
            else:
                seq = torch.cat(inputs, dim=1)
                y = self.decoder(self._tokens(seq, 0, last), memory)[:, -1:]
                pose, flag = self._readout(y, seq[:, -1:])
            preds.append(pose)
            flags.append(flag)
            inputs.append(pose)
        return torch.cat(preds, dim=1), torch.cat(flags, dim=1)

    def forward(self, past: Tensor) -> Tensor:
        """``past[B, T_in, J, 3] -> [B, T_out, J, 3]`` by cached autoregressive decoding."""
        return self.decode(past, use_cache=True)


# -- registered variants ------------------------------------------------------------------------------
def _stcformer(cls: type[nn.Module], defaults: dict, *, num_joints: int, input_frames: int, output_frames: int,
               graph_parents: tuple[int, ...] | None, body_parts: tuple[int, ...] | None, **overrides) -> nn.Module:
    del graph_parents  # criss-cross attention is dense over joints; the skeleton enters through body parts
    parts, _ = resolve_body_parts(body_parts, num_joints)
    kwargs = {**defaults, **overrides}
    return cls(num_joints=num_joints, input_frames=input_frames, output_frames=output_frames, body_parts=parts,
               **kwargs)


@register_model("stcformer", description="Criss-cross attention encoder-decoder, one-shot (D=64, 2+2 blocks)")
def stcformer(*, num_joints: int, input_frames: int, output_frames: int, graph_parents: tuple[int, ...] | None = None,
              body_parts: tuple[int, ...] | None = None, **overrides) -> STCFormer:
    """Default STCFormer: width 64, 2 encoder + 2 decoder blocks, 2 heads per pathway, MLP x2, SPE, pre-norm."""
    defaults = dict(dim=64, enc_blocks=2, dec_blocks=2, heads=2, mlp_ratio=2.0, norm="pre", pos_embed="spe")
    return _stcformer(STCFormer, defaults, num_joints=num_joints, input_frames=input_frames,
                      output_frames=output_frames, graph_parents=graph_parents, body_parts=body_parts, **overrides)


# The course variants: width 32 / 64, 2 + 2 blocks, 1 head, no positional encoding (listed as future work in
# the report), absolute positions out (no last-pose residual) and post-norm. See docs/models.md for counts.
_COURSE = dict(enc_blocks=2, dec_blocks=2, heads=1, mlp_ratio=1.0, norm="post", pos_embed="none",
               residual_last_pose=False)


@register_model("stcformer-course-23k", description="STCFormer as in the course report: D=32, 2+2 blocks, 1 head")
def stcformer_course_23k(*, num_joints: int, input_frames: int, output_frames: int,
                         graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                         **overrides) -> STCFormer:
    """The course's base STCFormer size (hidden 32)."""
    return _stcformer(STCFormer, dict(_COURSE, dim=32), num_joints=num_joints, input_frames=input_frames,
                      output_frames=output_frames, graph_parents=graph_parents, body_parts=body_parts, **overrides)


@register_model("stcformer-course-86k", description="STCFormer as in the course report: D=64, 2+2 blocks, 1 head")
def stcformer_course_86k(*, num_joints: int, input_frames: int, output_frames: int,
                         graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                         **overrides) -> STCFormer:
    """The course's best STCFormer size (hidden 64)."""
    return _stcformer(STCFormer, dict(_COURSE, dim=64), num_joints=num_joints, input_frames=input_frames,
                      output_frames=output_frames, graph_parents=graph_parents, body_parts=body_parts, **overrides)


@register_model("stcformer-l", description="Large STCFormer: D=128, 4+4 blocks, 4 heads, MLP x4, dropout 0.1")
def stcformer_l(*, num_joints: int, input_frames: int, output_frames: int, graph_parents: tuple[int, ...] | None = None,
                body_parts: tuple[int, ...] | None = None, **overrides) -> STCFormer:
    """Large STCFormer."""
    defaults = dict(dim=128, enc_blocks=4, dec_blocks=4, heads=4, mlp_ratio=4.0, dropout=0.1, norm="pre",
                    pos_embed="spe")
    return _stcformer(STCFormer, defaults, num_joints=num_joints, input_frames=input_frames,
                      output_frames=output_frames, graph_parents=graph_parents, body_parts=body_parts, **overrides)


@register_model("stcformer-ar", description="Autoregressive STCFormer with start flag and KV-cached decoding (D=64)")
def stcformer_ar(*, num_joints: int, input_frames: int, output_frames: int,
                 graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                 **overrides) -> STCFormerAR:
    """Autoregressive STCFormer, same sizes as ``stcformer``."""
    defaults = dict(dim=64, enc_blocks=2, dec_blocks=2, heads=2, mlp_ratio=2.0, norm="pre", pos_embed="spe",
                    flag_loss_weight=1.0, sampling_ratio=0.0, free_running=False)
    return _stcformer(STCFormerAR, defaults, num_joints=num_joints, input_frames=input_frames,
                      output_frames=output_frames, graph_parents=graph_parents, body_parts=body_parts, **overrides)
