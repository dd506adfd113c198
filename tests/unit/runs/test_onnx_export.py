"""ONNX export: every learned model of both tasks runs in ONNX Runtime as in PyTorch, on a batch size other than the
exported one; the file records its input and output contract. Skips where the deploy extra is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from crisscross.cli.main import main
from crisscross.data.skeleton import get_skeleton
from crisscross.models.registry import build_model, count_parameters, get_model_entry, list_models
from crisscross.runs.checkpoint import save_checkpoint
from crisscross.runs.onnx_export import ONNX_PARITY_TOLERANCE_M, export_onnx

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # raised inside torch.export's tree utilities

# Short windows keep the export quick (the autoregressive decoder is unrolled over its output frames).
FRAMES = {"forecasting": (10, 3), "lifting": (9, 1)}


def _learned(task: str) -> list[str]:
    """The registry's learned models (the weight-free ones are not trainable)."""
    return [name for name in list_models(task) if get_model_entry(name).trainable]


def _checkpoint(tmp_path: Path, name: str, task: str, output_frames: int | None = None) -> Path:
    skeleton = get_skeleton("h36m17" if task == "lifting" else "h36m")
    frames_in, frames_out = FRAMES[task][0], output_frames or FRAMES[task][1]
    torch.manual_seed(0)
    model = build_model(name, {}, skeleton, frames_in, frames_out)
    meta = {"skeleton": skeleton.name, "predicted_joints": list(skeleton.predicted), "input_frames": frames_in,
            "output_frames": frames_out, "fps": 50.0 if task == "lifting" else 25.0, "units": "metres"}
    if task == "lifting":
        from crisscross.data.skeleton import skeleton_to_dict
        meta.update(receptive_field=frames_in, skeleton_spec=skeleton_to_dict(skeleton),
                    normalisation="2D: normalised screen coordinates")
    return save_checkpoint(tmp_path / f"{name}.pt", {"model_name": name, "model_args": {}, "config": {},
                                                      "meta": meta, "model_state": model.state_dict()})


@pytest.mark.slow
@pytest.mark.parametrize(("task", "name"), [(t, n) for t in ("forecasting", "lifting") for n in _learned(t)])
def test_every_learned_model_exports_and_matches_pytorch(tmp_path, task, name):
    skeleton = get_skeleton("h36m17" if task == "lifting" else "h36m")
    assert count_parameters(build_model(name, {}, skeleton, *FRAMES[task])) > 0
    report = export_onnx(_checkpoint(tmp_path, name, task), tmp_path / f"{name}.onnx")
    assert report["parity_max_abs_m"] is not None and report["parity_max_abs_m"] <= ONNX_PARITY_TOLERANCE_M
    assert report["task"] == task and report["input_shape"][0] == "B"


def test_the_cli_writes_a_graph_with_its_contract_and_never_overwrites(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path, "stcformer-lift-small", "lifting", output_frames=9)
    out = tmp_path / "lifter.onnx"
    assert main(["export", str(ckpt), "--format", "onnx", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ONNX Runtime matches PyTorch" in printed and "lifting" in printed
    graph = onnx.load(str(out))
    props = {p.key: p.value for p in graph.metadata_props}
    assert props["crisscross.task"] == "lifting" and props["crisscross.model"] == "stcformer-lift-small"
    assert props["crisscross.input"].startswith("keypoints [B, 9, 17, 2]") and "metres" in props["crisscross.output"]
    assert props["crisscross.skeleton"] == "h36m17" and props["crisscross.input_frames"] == "9"
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert not dims[0].dim_value and [d.dim_value for d in dims[1:]] == [9, 17, 2]  # dynamic batch
    with pytest.raises(FileExistsError):
        export_onnx(ckpt, out)
    assert main(["export", str(ckpt), str(ckpt), "--format", "onnx", "-o", str(tmp_path / "two.onnx")]) == 2


@pytest.mark.parametrize("name", ["humor-cvae", "stcformer-cvae"])
def test_a_sampling_model_exports_its_sampler_with_the_noise_as_an_input(tmp_path, capsys, name):
    import onnxruntime as ort

    ckpt = _checkpoint(tmp_path, name, "forecasting")
    out = tmp_path / f"{name}.onnx"
    assert main(["export", str(ckpt), "--format", "onnx", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert ", noise ['B'" in printed and "ONNX Runtime matches PyTorch" in printed
    graph = onnx.load(str(out))
    props = {p.key: p.value for p in graph.metadata_props}
    noise_doc = props["crisscross.noise"]
    assert noise_doc.startswith("noise [B, ") and "zeros give the prior-mean" in noise_doc
    assert [i.name for i in graph.graph.input] == ["input", "noise"]
    assert all(not i.type.tensor_type.shape.dim[0].dim_value for i in graph.graph.input)  # both batches dynamic
    model = build_model(name, {}, get_skeleton("h36m"), *FRAMES["forecasting"])
    model.load_state_dict(torch.load(ckpt, weights_only=False)["model_state"])
    model.eval()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    past = torch.randn(2, 10, 22, 3, generator=torch.Generator().manual_seed(3)) * 0.2
    k = 5
    noise = torch.randn(model.noise_shape(k * 2), generator=torch.Generator().manual_seed(4))
    futures = session.run(None, {"input": past.repeat(k, 1, 1, 1).numpy(), "noise": noise.numpy()})[0]
    with torch.no_grad():
        expected = model.forecast_from_noise(past.repeat(k, 1, 1, 1), noise)
        deterministic = model(past)
    assert abs(futures - expected.numpy()).max() <= ONNX_PARITY_TOLERANCE_M
    assert futures.reshape(k, 2, -1).std(axis=0).mean() > 0  # K draws, K different futures
    zeros = session.run(None, {"input": past.numpy(), "noise": torch.zeros(model.noise_shape(2)).numpy()})[0]
    assert abs(zeros - deterministic.numpy()).max() <= ONNX_PARITY_TOLERANCE_M
