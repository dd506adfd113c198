"""One sweep trial in its own process, started by a worker of the sweep driver (:mod:`.driver`).

``python -m crisscross.experiments.sweep.trial --sweep FILE --out DIR --job JSON --channel R,W``

The driver has asked the study for the trial and fixed its parameters (``--job``: number, parameters, seeds,
the run folders of the trial it retries). This process trains one run folder per seed with
:func:`crisscross.training.fit` and sends the driver, over the channel (:mod:`.channel`), what the study
should record; it never touches the study itself. The outcome is:

* COMPLETE with the mean objective over seeds (user attributes: per-seed values, their standard deviation,
  the run folders);
* PRUNED when the median pruner stops the first seed: :class:`ObjectiveReporter`, an epoch callback of ``fit``,
  reports each epoch's objective value and returns ``"pruned"`` on the pruner's word, which stops the run after
  that epoch's checkpoint; the run's ``status.json`` then says ``pruned``;
* FAILED with outcome ``diverged`` (``TrainingDiverged``: NaN/inf loss) or ``error`` (any other exception),
  which use up the budget, or ``interrupted`` (SIGINT/SIGTERM, or the sweep process died), which a resumed
  sweep retries, continuing the run folders from their last checkpoint.

A watchdog stops the trial when its sweep process disappears (e.g. killed with SIGKILL), so no orphan keeps
training. It sends SIGTERM to this process because ``fit`` runs callbacks only at epoch ends: the signal makes
the engine stop after the current step and checkpoint, so the run folder is settled before a resumed sweep
retries it. The epoch callback also returns ``"interrupted"`` when the driver's end of the channel is closed.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import signal
import statistics
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from crisscross.experiments.summaries import best_value, load_run_summary
from crisscross.experiments.sweep.channel import Channel, ChannelClosed, TrialJob
from crisscross.experiments.sweep.load import load_sweep, trial_config
from crisscross.experiments.sweep.spec import SweepSpec
from crisscross.runs.folders import EVAL_FILE, checkpoint_path, create_run_dir, read_epoch_rows, update_status
from crisscross.training import TrainingDiverged, fit

__all__ = ["ObjectiveReporter", "Reporter", "channel_reporter", "main", "run_trial"]

#: ``report(epoch, value, prune) -> stop``: records an epoch's objective value; True when the trial is pruned.
Reporter = Callable[[int, float, bool], bool]


class _Interrupted(Exception):
    """The trial was asked to stop (signal, or its sweep process is gone)."""


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class ObjectiveReporter:
    """An epoch callback for :func:`crisscross.training.fit`: reports the objective, stops a pruned run.

    Args:
        report: records one epoch's value and says whether to prune (see :data:`Reporter`).
        metric: the per-epoch key of the objective, e.g. ``val/mpjpe22_avg_mm``.
        prune: whether the pruner may stop this run (the first seed of a sweep with a pruner).
    """

    def __init__(self, report: Reporter, metric: str, prune: bool) -> None:
        self.report, self.metric, self.prune = report, metric, prune
        self.pruned_at: int | None = None
        self._reported: set[int] = set()

    def __call__(self, epoch: int, row: dict[str, Any]) -> str | None:
        """Report ``row[metric]`` (epochs without a finite value are skipped); ``"pruned"`` stops the run."""
        value = row.get(self.metric)
        if epoch in self._reported or not _finite(value):
            return None
        try:
            prune = self.report(epoch, float(value), self.prune)
        except ChannelClosed:
            return "interrupted"  # the sweep driver is gone: stop after this epoch's checkpoint
        self._reported.add(epoch)
        if prune:
            self.pruned_at = epoch
            return "pruned"
        return None

    def replay(self, rows: Sequence[dict[str, Any]]) -> None:
        """Report the epochs a continued or reused run logged before this trial (never pruning on them)."""
        for row in rows:
            epoch, value = row.get("epoch"), row.get(self.metric)
            if isinstance(epoch, int) and epoch not in self._reported and _finite(value):
                self.report(epoch, float(value), False)
                self._reported.add(epoch)


def channel_reporter(channel: Channel) -> Reporter:
    """A :data:`Reporter` that asks the sweep driver, which owns the Optuna trial.

    Raises (when called):
        ChannelClosed: the driver is gone.
    """

    def report(epoch: int, value: float, prune: bool) -> bool:
        channel.send({"report": {"epoch": epoch, "value": value, "prune": prune}})
        return bool(channel.receive().get("prune"))

    return report


def _pick_run_dir(prev_dir: str | None, out: Path, name: str) -> tuple[Path, Path | None, bool]:
    """Pick the run folder for one seed: reuse a completed one, resume a checkpointed one, or start fresh.

    Returns:
        ``(run_dir, resume_from_or_None, already_completed)``.
    """
    if prev_dir is not None:
        prev = Path(prev_dir)
        status = load_run_summary(prev).status if prev.is_dir() else None  # "crashed" when marked running but dead
        if status == "completed" and (prev / EVAL_FILE).is_file():
            return prev, None, True
        if status in ("interrupted", "crashed", "pruned") and checkpoint_path(prev, "last").is_file():
            return prev, prev, False
    return create_run_dir(out / "runs", name), None, False


def _start_guards(stop: threading.Event) -> threading.Event:
    """Signal handlers that set ``stop`` between runs, and a watchdog that stops the trial if its sweep dies.

    Returns:
        An event that stops the watchdog.
    """
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # fit installs its own while it trains
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    parent = os.getppid()
    halt = threading.Event()

    def watchdog() -> None:
        while not halt.wait(0.5):
            if os.getppid() != parent:  # the sweep process is gone: stop gracefully, then for sure
                print("sweep process is gone; stopping this trial", file=sys.stderr, flush=True)
                os.kill(os.getpid(), signal.SIGTERM)  # fit stops after the current step and checkpoints
                if not halt.wait(120):
                    os._exit(1)
                return

    threading.Thread(target=watchdog, name="parent-watchdog", daemon=True).start()
    return halt


def _result(state: str, value: float | None = None, **attrs: Any) -> dict[str, Any]:
    return {"state": state, "value": value, "attrs": attrs}


def _train_seed(spec: SweepSpec, job: TrialJob, seed: int, first: bool, out: Path, device: str | None,
                channel: Channel, run_dirs: dict[str, str]) -> tuple[float | None, int | None]:
    """Train (or resume, or reuse) one seed's run; the first seed reports its epochs and may be pruned.

    Returns:
        ``(objective value, pruned_at_epoch)``; the value is None when the run was pruned.

    Raises:
        _Interrupted: the run stopped before completing (signal, or the sweep died).
        TrainingDiverged: the loss became NaN/inf.
        RuntimeError: the objective metric was never logged.
    """
    cfg = trial_config(spec, job.params, seed, {"train.device": device} if device else None)
    run_dir, resume, done = _pick_run_dir(job.previous.get(str(seed)), out, f"trial{job.number:04d}-seed{seed}")
    run_dirs[str(seed)] = str(run_dir)
    channel.send({"attrs": {"run_dirs": run_dirs, **({"run_dir": str(run_dir)} if first else {})}})
    print(f"trial {job.number} seed {seed}: {'reusing' if done else 'resuming' if resume else 'training'} "
          f"{run_dir}", flush=True)
    reporter = ObjectiveReporter(channel_reporter(channel), spec.metric, prune=spec.pruner.type != "none")
    callbacks = [reporter] if first else []
    if first and (resume is not None or done):
        reporter.replay(read_epoch_rows(run_dir))
    result = None
    if not done:
        result = fit(cfg, resume=resume, callbacks=callbacks) if resume else fit(cfg, run_dir=run_dir,
                                                                                  callbacks=callbacks)
    if result is not None and result.status == "pruned":
        update_status(run_dir, "pruned", pruned_at_epoch=reporter.pruned_at)
        return None, reporter.pruned_at
    if result is not None and result.status != "completed":
        raise _Interrupted(f"run {run_dir} stopped ({result.status}) at step {result.steps}")
    rows = read_epoch_rows(run_dir)
    value, epoch = best_value(rows, spec.metric, spec.mode())
    if value is None:
        logged = sorted({k for r in rows for k in r})
        raise RuntimeError(f"objective metric {spec.metric!r} was never logged in {run_dir}/metrics.jsonl "
                           f"(logged: {', '.join(logged) or 'nothing'})")
    if first:
        channel.send({"attrs": {"epochs": len(rows), "best_epoch": epoch}})
    return value, None


def _run_seeds(spec: SweepSpec, job: TrialJob, out: Path, device: str | None, channel: Channel,
               stop: threading.Event) -> dict[str, Any]:
    """Train every seed of the trial; map the outcome to a channel ``result``."""
    run_dirs: dict[str, str] = {}
    seed_values: dict[str, float] = {}
    try:
        for i, seed in enumerate(job.seeds):
            if stop.is_set():
                raise _Interrupted("stop requested")
            value, pruned_at = _train_seed(spec, job, seed, i == 0, out, device, channel, run_dirs)
            if pruned_at is not None:
                return _result("PRUNED", outcome="pruned", pruned_at_epoch=pruned_at)
            seed_values[str(seed)] = value
            channel.send({"attrs": {"seed_values": seed_values}})
    except TrainingDiverged as err:
        return _result("FAIL", outcome="diverged", error=f"TrainingDiverged: {err}")
    except (_Interrupted, ChannelClosed) as err:
        return _result("FAIL", outcome="interrupted", error=str(err))
    except Exception as err:  # any failure is recorded on the trial; the sweep goes on
        traceback.print_exc()
        return _result("FAIL", outcome="error", error=f"{type(err).__name__}: {err}")
    vals = list(seed_values.values())
    return _result("COMPLETE", statistics.fmean(vals), outcome="completed",
                   value_std=statistics.stdev(vals) if len(vals) > 1 else None)


def run_trial(spec: SweepSpec, job: TrialJob, out_dir: str | Path, channel: Channel,
              device: str | None = None) -> int:
    """Train the trial's seeds and send the driver the outcome.

    Args:
        spec: the sweep (its seeds are ignored in favour of ``job.seeds``).
        job: the trial's number, parameters, seeds and the run folders of the trial it retries.
        out_dir: the sweep's output folder; run folders go under ``out_dir/runs``.
        channel: the pipe to the driver.
        device: ``train.device`` for this worker, e.g. ``cuda:1``.

    Returns:
        0 when the driver got the outcome (whatever it was), 1 otherwise.
    """
    stop = threading.Event()
    halt = _start_guards(stop)
    try:
        result = _run_seeds(spec, job, Path(out_dir), device, channel, stop)
    finally:
        halt.set()
    attrs = result["attrs"]
    try:
        channel.send({"result": result})
    except ChannelClosed as err:
        print(f"trial {job.number}: could not report {result['state']}: {err}", file=sys.stderr, flush=True)
        return 1
    value = result["value"]
    print(f"trial {job.number}: {result['state']} {attrs.get('outcome', '')} {value if value is not None else ''} "
          f"{attrs.get('error', '')}".rstrip(), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry of the trial process."""
    p = argparse.ArgumentParser(prog="python -m crisscross.experiments.sweep.trial",
                                description=(__doc__ or "").split("\n")[0])
    p.add_argument("--sweep", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--job", required=True, help="the trial as JSON: number, params, seeds, previous")
    p.add_argument("--channel", required=True, metavar="R,W", help="pipe file descriptors to the driver")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--device")
    args = p.parse_args(argv)
    channel = Channel.from_arg(args.channel)
    job = TrialJob.from_json(args.job)
    spec = dataclasses.replace(load_sweep(args.sweep, args.set), seeds=job.seeds)
    return run_trial(spec, job, args.out, channel, args.device)


if __name__ == "__main__":
    raise SystemExit(main())
