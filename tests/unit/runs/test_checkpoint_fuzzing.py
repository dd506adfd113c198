"""Property-based fuzzing of the checkpoint readers: each one loads its input or raises a one-line CheckpointError.

The promise to users: :func:`~crisscross.runs.checkpoint.load_checkpoint`, and what ``crisscross eval``,
``predict``, ``export`` and ``train.init_from`` build on it (:func:`~crisscross.runs.checkpoint.resolve_checkpoint`,
:func:`~crisscross.runs.checkpoint.load_model_from_checkpoint`, :func:`~crisscross.runs.checkpoint.export_checkpoint`,
:func:`~crisscross.runs.checkpoint.load_weights_for_finetuning`) return normally, or raise
:class:`~crisscross.runs.checkpoint.CheckpointError` whose message is one line naming the file, and never another
exception. Hypothesis writes random bytes, zeros, text, pickles of other objects, zip archives with garbage
members, a real checkpoint truncated or with bytes changed, and a real checkpoint whose dict has one thing removed
or replaced at any level (a weight of the wrong shape or dtype, no or an unknown model name, model arguments the
model does not take, a broken skeleton, a step as a string), into a temporary folder.

The real checkpoint is one tiny siMLPe written once per module through :func:`~crisscross.runs.checkpoint.
save_checkpoint`. Each test builds its folder with :func:`tempfile.TemporaryDirectory` in the test body, since
pytest's ``tmp_path`` is created once per test, not once per example. Inputs that once escaped are pinned by the
plain regression tests at the end of the file, so they are checked on every run whatever Hypothesis draws.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fuzzing
import pytest
import torch
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from crisscross.config.load import config_to_dict
from crisscross.config.schema import DataConfig, ExperimentConfig, ModelConfig
from crisscross.data.skeleton import get_skeleton, skeleton_to_dict
from crisscross.models.registry import build_model
from crisscross.runs.checkpoint import (
    CheckpointError,
    export_checkpoint,
    load_checkpoint,
    load_model_from_checkpoint,
    load_weights_for_finetuning,
    resolve_checkpoint,
    save_checkpoint,
)

# The suite runs on 2 slow cores: a few dozen examples per reader, no per-example deadline (file I/O varies).
# CRISSCROSS_FUZZ_EXAMPLES=2000 fuzzes harder by hand, e.g. after changing a reader.
FUZZ = settings(max_examples=int(os.environ.get("CRISSCROSS_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

MODEL_ARGS = {"depth": 1}
INPUT_FRAMES, OUTPUT_FRAMES = 10, 25


@functools.cache
def tiny_model() -> torch.nn.Module:
    """The siMLPe the real checkpoint holds (built once: the model registry imports every model)."""
    return build_model("simlpe", MODEL_ARGS, get_skeleton("h36m"), INPUT_FRAMES, OUTPUT_FRAMES)


def valid_payload() -> dict[str, Any]:
    """What a training run of the tiny model writes (a new dict each call, its tensors shared)."""
    skeleton = get_skeleton("h36m")
    cfg = ExperimentConfig(data=DataConfig(input_frames=INPUT_FRAMES, output_frames=OUTPUT_FRAMES),
                           model=ModelConfig(name="simlpe", args=dict(MODEL_ARGS)))
    meta = {"skeleton": skeleton.name, "skeleton_spec": skeleton_to_dict(skeleton),
            "predicted_joints": list(skeleton.predicted), "fps": 25.0, "input_frames": INPUT_FRAMES,
            "output_frames": OUTPUT_FRAMES, "protocol": None}
    return {"model_state": dict(tiny_model().state_dict()), "model_name": "simlpe", "model_args": dict(MODEL_ARGS),
            "config": config_to_dict(cfg), "meta": meta, "train_state": {"step": 3, "epoch": 1},
            "ema_state": None, "rng_cpu": torch.get_rng_state()}


@functools.cache
def valid_bytes() -> bytes:
    """The real checkpoint's bytes, written by the project's own save function."""
    with tempfile.TemporaryDirectory() as tmp:
        return save_checkpoint(Path(tmp) / "best.pt", valid_payload()).read_bytes()


# ---------------------------------------------------------------------------------------------------------------------
# The property


def assert_loads_or_fails_cleanly(read: Callable[[], Any], path: Path) -> Any:
    """Call ``read``: it returns (what it returns is returned), or raises CheckpointError whose message is one line
    naming ``path`` (None is returned). Any other exception propagates and fails the test, which is the point.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the promise is about exceptions; torch's load warnings are fine
            result = read()
        if currently_in_test_context():  # the regression tests call this outside Hypothesis
            event("checkpoint: loaded")
        return result
    except CheckpointError as err:
        if currently_in_test_context():
            event("checkpoint: refused")
        message = str(err)
        assert message.splitlines() == [message], f"message is not one line: {message!r}"
        assert path.name in message, f"message does not name {path.name}: {message!r}"
    return None


def read_every_way(path: Path, folder: Path) -> None:
    """Every public reader on the checkpoint ``path``: load, rebuild the model, export, fine-tune from it."""
    assert_loads_or_fails_cleanly(lambda: load_checkpoint(path), path)
    loaded = assert_loads_or_fails_cleanly(lambda: load_model_from_checkpoint(path), path)
    assert loaded is None or isinstance(loaded[0], torch.nn.Module)
    assert_loads_or_fails_cleanly(lambda: export_checkpoint(path, folder / "exported.pt"), path)
    skeleton = get_skeleton("h36m")
    model = build_model("simlpe", MODEL_ARGS, skeleton, INPUT_FRAMES, OUTPUT_FRAMES)
    assert_loads_or_fails_cleanly(lambda: load_weights_for_finetuning(
        model, path, model_name="simlpe", model_args=dict(MODEL_ARGS), predicted_joints=list(skeleton.predicted),
        input_frames=INPUT_FRAMES, output_frames=OUTPUT_FRAMES), path)


# ---------------------------------------------------------------------------------------------------------------------
# Strategies

HUGE_INTS = st.sampled_from([2**63, -(2**63) - 1, 2**64 + 1, 10**400])
TENSORS = st.sampled_from(["float32", "float64", "float16", "int64", "bool", "complex64", "uint8"]).flatmap(
    lambda dtype: st.lists(st.integers(0, 3), max_size=3).map(
        lambda shape: torch.zeros(shape, dtype=getattr(torch, dtype))))
SCALARS = (st.none() | st.booleans() | st.integers() | HUGE_INTS | st.floats() | st.text(max_size=8)
           | st.sampled_from(["simlpe", "stcformer", "nope", "h36m", "cmu", "3", "", "x" * 300, "a\nb"])
           | st.binary(max_size=4) | TENSORS)
KEYS = st.text(max_size=6) | st.sampled_from(["model_state", "model_name", "model_args", "config", "meta",
                                              "skeleton", "skeleton_spec", "input_frames", "output_frames",
                                              "predicted_joints", "fc_in.weight", "depth", "dim", "step"]) \
    | st.integers() | st.none()
JUNK = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3)
                    | st.tuples(inner), max_leaves=8)


def _break_tensor(draw: st.DrawFn, value: Any) -> Any:
    """A tensor reshaped or retyped; anything else unchanged."""
    if not isinstance(value, torch.Tensor):
        return value
    return draw(st.sampled_from([value[:1], value.flatten(), value.unsqueeze(0), value.double(), value.long(),
                                 value.bool(), value.to(torch.complex64), torch.zeros(0), value.t().contiguous()
                                 if value.dim() == 2 else value]))


def mutate(draw: st.DrawFn, value: Any) -> Any:
    """``value`` (nested dicts, lists and tensors) with at most one thing broken at one level
    (:func:`fuzzing.mutate`, plus a tensor reshaped or retyped)."""
    return fuzzing.mutate(draw, value, JUNK, KEYS, leaf=_break_tensor)


def torch_bytes(value: Any) -> bytes:
    """``value`` as ``torch.save`` writes it."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive of ``members``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


class _Other:
    """An object of a class torch's weights-only unpickler does not allow."""


OTHER_PICKLES = st.sampled_from([
    pickle.dumps([1, 2]), pickle.dumps({"model_state": 1}), pickle.dumps(_Other()), pickle.dumps(os.system),
    pickle.dumps({1, 2}), pickle.dumps(Path("x")), pickle.dumps(1 + 2j), pickle.dumps(None), b"(" * 5000,
    pickle.dumps({"a": 1})[:-3], b"\x80\x04K\x01.",
])


@st.composite
def garbage_zips(draw: st.DrawFn) -> bytes:
    """A PyTorch-style zip archive whose members are garbage, missing, or another file's."""
    data_pkl = draw(OTHER_PICKLES | st.binary(max_size=64) | st.just(b""))
    members = {"archive/data.pkl": data_pkl, "archive/version": draw(st.sampled_from([b"3\n", b"x", b"", b"99\n"]))}
    if draw(st.booleans()):
        members[f"archive/data/{draw(st.integers(0, 3))}"] = draw(st.binary(max_size=32))
    if draw(st.booleans()):
        names = st.sampled_from(["data.pkl", "x/data.pkl", "archive/data.pkl", "archive/version", "a/b/c",
                                 "archive/data/0", "archive/byteorder", "archive/.data/version", "é/data.pkl"])
        members = {draw(names): data for data in members.values()}
    return zip_bytes(members)


@st.composite
def checkpoint_files(draw: st.DrawFn) -> bytes:
    """Random bytes, zeros or text; another pickle; a garbage zip; the real checkpoint cut short, with bytes
    changed or inserted; the real checkpoint's dict broken at one level; or another object torch.save wrote."""
    kind = draw(st.sampled_from(("bytes", "zeros", "text", "pickle", "zip", "truncate", "flip", "insert",
                                 "dict", "dict", "dict", "dict", "other", "valid")))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "zeros":
        return bytes(draw(st.sampled_from([0, 1, 64, 512, len(valid_bytes())])))
    if kind == "text":
        return draw(st.text(max_size=200)).encode()
    if kind == "pickle":
        return draw(OTHER_PICKLES)
    if kind == "zip":
        return draw(garbage_zips())
    data = valid_bytes()
    if kind == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))]
    if kind == "flip":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    if kind == "insert":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    if kind == "dict":
        return torch_bytes(mutate(draw, valid_payload()))
    if kind == "other":
        return torch_bytes(draw(JUNK))
    return data


# ---------------------------------------------------------------------------------------------------------------------
# Properties


@FUZZ
@given(data=checkpoint_files())
def test_checkpoint_readers_load_or_raise_one_line(data: bytes) -> None:
    """A checkpoint file, read by every public reader."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "best.pt"
        path.write_bytes(data)
        read_every_way(path, Path(tmp))


@FUZZ
@given(data=checkpoint_files())
def test_run_folder_checkpoints_load_or_raise_one_line(data: bytes) -> None:
    """A run folder's checkpoint, found by :func:`resolve_checkpoint` as ``crisscross eval RUN_DIR`` does."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run" / "checkpoints" / "last.pt"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        found = resolve_checkpoint(Path(tmp) / "run")
        assert found == path
        assert_loads_or_fails_cleanly(lambda: load_model_from_checkpoint(found), path)


# ---------------------------------------------------------------------------------------------------------------------
# Regression tests: inputs that once escaped


def test_the_real_checkpoint_loads_every_way(tmp_path: Path) -> None:
    """The near-valid inputs start from a checkpoint every reader accepts."""
    path = tmp_path / "best.pt"
    path.write_bytes(valid_bytes())
    model, ckpt = load_model_from_checkpoint(path)
    assert ckpt["model_name"] == "simlpe" and isinstance(model, torch.nn.Module)
    read_every_way(path, tmp_path)
    assert load_checkpoint(tmp_path / "exported.pt")["meta"]["exported_from"] == "best.pt"


def _broken(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    payload = valid_payload()
    change(payload)
    return payload


@pytest.mark.parametrize("payload", [
    pytest.param(None, id="not-a-dict"),  # TypeError: argument of type 'NoneType' is not iterable
    pytest.param([1, 2], id="a-list"),
    pytest.param(_broken(lambda p: p.update(model_name=3)), id="model-name-int"),  # KeyError/TypeError downstream
    pytest.param(_broken(lambda p: p.update(model_name="nope")), id="unknown-model"),  # KeyError from the registry
    pytest.param(_broken(lambda p: p.update(model_state=[1])), id="model-state-list"),  # AttributeError
    pytest.param(_broken(lambda p: p["model_state"].update({"fc_in.weight": torch.zeros(3)})),
                 id="weight-of-wrong-shape"),  # RuntimeError from load_state_dict
    pytest.param(_broken(lambda p: p["model_args"].update(nope=1)), id="unknown-model-arg"),  # ValueError
    pytest.param(_broken(lambda p: p.update(model_args={1: 2})), id="model-args-int-key"),  # TypeError
    pytest.param(_broken(lambda p: p["meta"].update(skeleton_spec=5)), id="skeleton-spec-int"),  # TypeError
    pytest.param(_broken(lambda p: p["meta"]["skeleton_spec"].update(parents=[5])), id="skeleton-bad"),  # ValueError
    pytest.param(_broken(lambda p: p["meta"].pop("input_frames")), id="no-input-frames"),  # KeyError
    pytest.param(_broken(lambda p: p["meta"].update(input_frames="10")), id="input-frames-str"),  # TypeError
    pytest.param(_broken(lambda p: p["meta"].update(predicted_joints=3)), id="predicted-joints-int"),  # TypeError
    pytest.param(_broken(lambda p: p.update(config=[1])), id="config-list"),  # AttributeError in export
    pytest.param(_broken(lambda p: p.update(meta="x")), id="meta-str"),  # AttributeError
    pytest.param(_broken(lambda p: p.update(train_state=[1])), id="train-state-list"),  # TypeError in export
    pytest.param(_broken(lambda p: p.update(ema_updates="7")), id="ema-updates-str"),  # TypeError on resume
    pytest.param(_broken(lambda p: p.update(ema_updates=-1)), id="ema-updates-negative"),
])
def test_escaped_checkpoints_raise_one_line(payload: Any, tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    path.write_bytes(torch_bytes(payload))
    with pytest.raises(CheckpointError) as info:
        load_model_from_checkpoint(path)
    assert "\n" not in str(info.value) and path.name in str(info.value)
    read_every_way(path, tmp_path)
