"""``crisscross attention``: spatial and temporal attention maps per block and head, and their distance.

Also home of :func:`load_source`, the "run folder, checkpoint or ``--model NAME``" loader shared by the
``attention``, ``animate`` and ``profile`` commands.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from crisscross.analysis.attention_maps import write_attention_report
from crisscross.analysis.errors import Windows, load_windows
from crisscross.config import ExperimentConfig, config_from_dict
from crisscross.config.schema import TrackConfig
from crisscross.data.datasets import get_dataset_info
from crisscross.data.skeleton import get_skeleton, skeleton_from_meta
from crisscross.models.registry import build_model, parse_model_spec
from crisscross.runs.checkpoint import checkpoint_config, load_model_from_checkpoint, resolve_checkpoint

__all__ = ["Source", "add_parser", "load_source", "parse_indices", "run", "source_windows"]


@dataclass
class Source:
    """A model ready to run, with what is needed to feed it data and to name its outputs."""

    model: torch.nn.Module
    model_name: str
    cfg: ExperimentConfig
    skeleton: Any
    input_frames: int
    output_frames: int
    run_dir: Path | None
    checkpoint: Path | None

    @property
    def label(self) -> str:
        """``model`` or ``model (checkpoint path)``."""
        return self.model_name if self.checkpoint is None else f"{self.model_name} ({self.checkpoint})"


def load_source(source: str | None, model_spec: str | None, device: Any = "cpu") -> Source:
    """Load a run folder / checkpoint, or build ``model_spec`` (``NAME[:key=value...]``) at random init (seed 0).

    Raises:
        ValueError: neither or both of ``source`` and ``model_spec``.
        CheckpointError: an unreadable checkpoint.
    """
    if (source is None) == (model_spec is None):
        raise ValueError("give either a run folder / checkpoint or --model NAME")
    if source is not None:
        ckpt_path = resolve_checkpoint(source)
        model, ckpt = load_model_from_checkpoint(ckpt_path, device=device)
        cfg = checkpoint_config(ckpt, ckpt_path)
        meta = ckpt["meta"]
        # outputs go beside a run's checkpoints; a loose checkpoint file (pretrained/, a download) is not a run folder
        run_dir = ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else None
        return Source(model.eval(), ckpt["model_name"], cfg, skeleton_from_meta(meta), meta["input_frames"],
                      meta["output_frames"], run_dir, ckpt_path)
    spec = parse_model_spec(model_spec)
    cfg = config_from_dict({"model": {"name": spec.name, "args": dict(spec.args)}})
    skeleton = get_skeleton(get_dataset_info(cfg.data.dataset).skeleton)
    torch.manual_seed(cfg.seed)
    model = build_model(spec.name, dict(spec.args), skeleton, cfg.data.input_frames, cfg.data.output_frames)
    return Source(model.to(device).eval(), spec.label, cfg, skeleton, cfg.data.input_frames, cfg.data.output_frames,
                  None, None)


def source_windows(src: Source, samples: list[int], split: str | None = None, dataset: str | None = None,
                   data_dir: str | None = None) -> Windows:
    """Evaluation windows ``samples`` for ``src``: its run's dataset, validation split and protocol unless given (a
    model by name: the embedded synthetic data, ``val``); the data folder is ``data_dir``, else ``$CRISSCROSS_DATA``,
    else the user config file (never a path stored in a checkpoint)."""
    d = src.cfg.data
    same = dataset is None or dataset == d.dataset
    return load_windows(dataset or d.dataset, split or d.val_split, src.input_frames, src.output_frames, samples,
                        protocol=src.cfg.eval.protocol if same else None,
                        data_dir=data_dir, cache_dir=None)


def parse_indices(text: str, what: str = "--samples") -> list[int]:
    """``"0,3,7"`` -> ``[0, 3, 7]``; a one-line ``ValueError`` otherwise."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated non-negative integers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise ValueError(f"{what} must be comma-separated non-negative integers, got {text!r}")
    return values


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser(
        "attention", help="plot spatial/temporal attention maps per block and head",
        description="Run a trained model (or --model NAME at random init) on evaluation windows of a split and write "
        "one heatmap PNG per sample and attention call (a panel per head), attention_stats.csv (focus and entropy "
        "of every map) and spatial_temporal_distance.csv/.png (how differently focused the spatial and temporal "
        "maps of each block and head are: |focus_spatial - focus_temporal|, where the focus of a map is the mean "
        "over its rows of the L1 distance from uniform attention divided by its maximum; see the module docstring "
        "of crisscross.analysis.attention_maps).")
    p.add_argument("source", nargs="?", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--model", help="registry model at random init, NAME[:key=value...], e.g. stcformer")
    p.add_argument("--samples", default="0,1", help="evaluation-window indices (default 0,1)")
    p.add_argument("--split", default=None, help="data split (default: the run's validation split, else val)")
    p.add_argument("--dataset", default=None, help="dataset (default: the run's, else the embedded synthetic data)")
    p.add_argument("--data-dir", default=None, help="data folder for real datasets")
    p.add_argument("--out", metavar="DIR", help="new or empty output folder (default: <run>/attention or "
                   "runs/attention/<model>, with -2, -3, ... when taken)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Capture the maps, write the PNGs and CSVs, print a summary."""
    samples = parse_indices(args.samples)
    src = load_source(args.source, args.model, args.device)
    windows = source_windows(src, samples, args.split, args.dataset, args.data_dir)
    if args.out:
        out = Path(args.out)
        if out.exists() and any(out.iterdir()):
            raise ValueError(f"{out} is not empty; choose a new folder (outputs are never overwritten)")
    else:
        base = (src.run_dir / "attention" if src.run_dir is not None
                else Path(TrackConfig().root) / "attention" / src.model_name.replace(":", "_"))
        out, n = base, 2
        while out.exists():
            out, n = base.with_name(f"{base.name}-{n}"), n + 1
    report = write_attention_report(src.model, windows.past_m.to(args.device), out, samples=samples,
                                    joint_names=windows.joint_names,
                                    title=f"{src.model_name} on {windows.description}")
    print(report.summary())
    print(f"\nwrote {len(report.images)} heatmaps, {report.stats_csv.name} and {report.distance_csv.name} to {out}")
    return 0
