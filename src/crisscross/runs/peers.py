"""Peers' released weights as crisscross checkpoints, so they are evaluated with crisscross's own protocols.

A peer format (:class:`PeerFormat`, registered in :data:`PEER_FORMATS`) names the registry model that has the
peer's architecture, the windows its authors evaluate with, and the renaming of the released state dict's keys
(regular expressions, first match wins) with any reshaping. :func:`import_peer` reads the released file with
``torch.load(weights_only=True)``, refuses unknown or missing keys and wrong shapes in one line, loads the result
into the registry model (strictly) and writes a self-describing checkpoint: ``crisscross eval`` then scores it on
any protocol and split like a model trained here. A second peer is one more :class:`PeerFormat`.

siMLPe (Guo et al., WACV 2023; ``dulucas/siMLPe``, MIT licence): its released ``h36m_model_40000.pth`` is a plain
state dict of the 48-block, 50 -> 10 frame model over the 22 predicted Human3.6M joints in metres, which is
``simlpe-48`` here (:mod:`crisscross.models.simlpe`): ``motion_fc_in``/``motion_fc_out`` are ``fc_in``/``fc_out``,
block ``i`` of ``motion_transformer.transformer`` is ``blocks.i`` with its LayerNorm's ``alpha``/``beta``
(``[1, 66, 1]``) as ``norm.weight``/``norm.bias`` (``[66, 1]``). siMLPe's ``test.py`` predicts 25 frames in three
steps of 10, each appending its output to the 50-frame window and dropping the oldest frames: crisscross's
evaluation rolls a 10-frame forecaster out the same way (:func:`crisscross.evaluation.forecasting.make_predict_fn`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from crisscross.config.load import config_to_dict
from crisscross.config.schema import DataConfig, EvalConfig, ExperimentConfig, ModelConfig
from crisscross.data.skeleton import get_skeleton, skeleton_to_dict
from crisscross.models.registry import build_model
from crisscross.runs.checkpoint import CheckpointError, load_error, save_checkpoint

__all__ = ["PEER_FORMATS", "PeerFormat", "import_peer"]


def _squeeze_norm(value: torch.Tensor) -> torch.Tensor:
    """siMLPe's LayerNorm scale and shift ``[1, C, 1]`` as crisscross's ``[C, 1]``."""
    return value.reshape(value.shape[1], 1) if value.dim() == 3 and value.shape[0] == 1 else value


@dataclass(frozen=True)
class PeerFormat:
    """How a peer's released weights become a registry model's (see the module docstring)."""

    name: str
    description: str
    model_name: str
    skeleton: str
    dataset: str
    input_frames: int
    output_frames: int
    protocol: str
    renames: tuple[tuple[str, str], ...]  # (regex on the released key, replacement), first full match wins
    reshape: dict[str, Callable[[torch.Tensor], torch.Tensor]] = field(default_factory=dict)  # by new-key suffix
    model_args: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    released_file: str = ""  # the file's name in the peer's release

    def rename(self, key: str) -> str | None:
        """The crisscross key of released key ``key``, or None when no rule matches."""
        for pattern, replacement in self.renames:
            if re.fullmatch(pattern, key):
                return re.sub(pattern, replacement, key)
        return None


PEER_FORMATS: dict[str, PeerFormat] = {
    "simlpe": PeerFormat(
        name="simlpe",
        description="siMLPe's released Human3.6M weights (h36m_model_40000.pth): 48 blocks, 50 -> 10 frames",
        model_name="simlpe-48",
        skeleton="h36m",
        dataset="h36m",
        input_frames=50,
        output_frames=10,
        protocol="h36m-50-25-256",
        renames=((r"motion_fc_(in|out)\.(weight|bias)", r"fc_\1.\2"),
                 (r"motion_transformer\.transformer\.(\d+)\.fc0\.fc\.(weight|bias)", r"blocks.\1.fc.\2"),
                 (r"motion_transformer\.transformer\.(\d+)\.norm0\.alpha", r"blocks.\1.norm.weight"),
                 (r"motion_transformer\.transformer\.(\d+)\.norm0\.beta", r"blocks.\1.norm.bias")),
        reshape={"norm.weight": _squeeze_norm, "norm.bias": _squeeze_norm},
        source="Guo et al., WACV 2023, github.com/dulucas/siMLPe, checkpoints/h36m_model_40000.pth (MIT licence)",
        released_file="h36m_model_40000.pth",
    ),
}


def _released_state(path: Path) -> dict[str, torch.Tensor]:
    """The released file's state dict (a plain one, or under ``state_dict`` / ``model``)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for foreign or truncated files
        raise CheckpointError(f"{path}: cannot be read as a PyTorch state dict ({load_error(err)})") from None
    for key in ("state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointError(f"{path}: expected a state dict (names -> tensors)")
    return dict(loaded)


def convert_state(peer: PeerFormat, released: dict[str, torch.Tensor], path: Path,
                  model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``released`` renamed and reshaped to ``model``'s state dict; one-line errors name what does not fit."""
    expected = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in released.items():
        new = peer.rename(key)
        if new is None or new not in expected:
            unknown.append(key)
            continue
        for suffix, reshape in peer.reshape.items():
            if new.endswith(suffix):
                value = reshape(value)
        if tuple(value.shape) != tuple(expected[new].shape):
            raise CheckpointError(f"{path}: {key} has shape {list(value.shape)}; {peer.model_name} needs "
                                  f"{list(expected[new].shape)} for {new}")
        state[new] = value.float()
    if unknown:
        raise CheckpointError(f"{path}: {len(unknown)} key(s) a {peer.name} checkpoint does not have: "
                              f"{', '.join(unknown[:3])}{' ...' if len(unknown) > 3 else ''}")
    missing = [k for k in expected if k not in state]
    if missing:
        raise CheckpointError(f"{path}: missing {len(missing)} weight(s) of {peer.model_name}: "
                              f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    return state


def import_peer(peer_name: str, src: str | Path, dst: str | Path) -> Path:
    """Convert peer ``peer_name``'s released file ``src`` into the new crisscross checkpoint ``dst``.

    Raises:
        KeyError: unknown peer (the message lists the known ones).
        CheckpointError: unreadable file, unknown or missing keys, wrong shapes (one line naming them).
        FileExistsError: ``dst`` exists (never overwritten).
    """
    if peer_name not in PEER_FORMATS:
        raise KeyError(f"unknown peer {peer_name!r}; known peers: {', '.join(PEER_FORMATS)}")
    peer, src, dst = PEER_FORMATS[peer_name], Path(src), Path(dst)
    if dst.exists():
        raise FileExistsError(f"{dst} exists; choose a new file name (checkpoints are never overwritten)")
    skeleton = get_skeleton(peer.skeleton)
    model = build_model(peer.model_name, dict(peer.model_args), skeleton, peer.input_frames, peer.output_frames)
    state = convert_state(peer, _released_state(src), src, model)
    model.load_state_dict(state)
    cfg = ExperimentConfig(data=DataConfig(dataset=peer.dataset, input_frames=peer.input_frames,
                                           output_frames=peer.output_frames),
                           model=ModelConfig(name=peer.model_name, args=dict(peer.model_args)),
                           eval=EvalConfig(protocol=peer.protocol))
    meta = {"skeleton": skeleton.name, "skeleton_spec": skeleton_to_dict(skeleton),
            "predicted_joints": list(skeleton.predicted), "fps": 25.0, "input_frames": peer.input_frames,
            "output_frames": peer.output_frames, "protocol": peer.protocol,
            "units": "metres in, metres out (root-relative)", "weights": f"released by {peer.name}",
            "imported_from": {"peer": peer.name, "file": src.name, "source": peer.source}}
    payload = {"model_state": model.state_dict(), "model_name": peer.model_name, "model_args": dict(peer.model_args),
               "config": config_to_dict(cfg), "meta": meta}
    return save_checkpoint(dst, payload)
