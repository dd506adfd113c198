"""One sweep trial in its own process, started by the sweep driver (:func:`crisscross.experiments.sweep.run_sweep`).

``python -m crisscross.experiments.trial --sweep FILE --storage URL --study NAME --trial N --out DIR``

The driver has already asked the study for trial ``N`` and fixed its parameters; this process trains one run
folder per seed with :func:`crisscross.training.loop.fit` and tells the study the outcome:

* COMPLETE with the mean objective over seeds (user attributes: per-seed values, their standard deviation,
  the run folders);
* PRUNED when the median pruner stops the first seed: a thread follows that run's ``metrics.jsonl``, reports
  each epoch's objective value and, on a prune decision, sends SIGTERM to this process, which the engine
  handles by finishing the step, checkpointing and returning; the run's ``status.json`` then says ``pruned``;
* FAILED with outcome ``diverged`` (``TrainingDiverged``: NaN/inf loss) or ``error`` (any other exception),
  which use up the budget, or ``interrupted`` (SIGINT/SIGTERM, or the sweep process died), which a resumed
  sweep retries, continuing the run folders from their last checkpoint.

A heartbeat thread keeps the trial alive in the storage, and a watchdog stops the trial gracefully when its
sweep process disappears (e.g. killed with SIGKILL), so no orphan keeps training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import statistics
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from crisscross.experiments.runs import best_value, load_run_summary, read_epoch_rows
from crisscross.experiments.sweep import (HEARTBEAT_INTERVAL_S, SweepSpec, load_sweep, make_pruner, make_sampler,
                                          open_storage, quiet_optuna, trial_config)

__all__ = ["run_trial", "main"]


class _Interrupted(Exception):
    """The trial was asked to stop (signal, or its sweep process is gone)."""


class _EpochMonitor(threading.Thread):
    """Follows a run's ``metrics.jsonl``: reports per-epoch objective values; asks the engine to stop on prune."""

    def __init__(self, trial: Any, run_dir: Path, metric: str, prune: bool, interval_s: float = 0.5) -> None:
        super().__init__(name="epoch-monitor", daemon=True)
        self.trial, self.path, self.metric, self.prune = trial, Path(run_dir) / "metrics.jsonl", metric, prune
        self.interval_s = interval_s
        self.pruned_at: int | None = None
        self._offset = 0
        self._partial = ""
        self._reported: set[int] = set()
        self._halt = threading.Event()

    def run(self) -> None:
        """Poll until :meth:`finish`."""
        while not self._halt.wait(self.interval_s):
            try:
                self.poll(allow_prune=self.prune)
            except Exception as err:  # noqa: BLE001 - a storage hiccup must not kill training
                print(f"epoch monitor: {type(err).__name__}: {err}", file=sys.stderr, flush=True)

    def poll(self, allow_prune: bool) -> None:
        """Report new epoch rows; on a prune decision, record the epoch and signal the engine to stop."""
        if not self.path.exists():
            return
        with self.path.open() as fh:
            fh.seek(self._offset)
            chunk = fh.read()
            self._offset = fh.tell()
        lines = (self._partial + chunk).split("\n")
        self._partial = lines.pop()  # an unfinished last line waits for the next poll
        for line in lines:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(row, dict) or "epoch" not in row or self.pruned_at is not None:
                continue
            epoch, value = int(row["epoch"]), row.get(self.metric)
            if epoch in self._reported or not isinstance(value, (int, float)) or value != value:
                continue
            self.trial.report(float(value), epoch)
            self._reported.add(epoch)
            if allow_prune and self.trial.should_prune():
                self.pruned_at = epoch
                os.kill(os.getpid(), signal.SIGTERM)  # the engine finishes the step, checkpoints and returns

    def finish(self) -> None:
        """Stop polling and report what the run logged last (without pruning)."""
        self._halt.set()
        if self.is_alive():
            self.join()
        self.poll(allow_prune=False)


def _start_daemon(target: Any, name: str) -> threading.Event:
    halt = threading.Event()
    threading.Thread(target=target, args=(halt,), name=name, daemon=True).start()
    return halt


def _previous_run_dirs(storage: Any, study_id: int, attrs: dict[str, Any]) -> dict[str, str]:
    if attrs.get("retry_of") is None:
        return {}
    prev_id = storage.get_trial_id_from_study_id_trial_number(study_id, int(attrs["retry_of"]))
    return dict(storage.get_trial(prev_id).user_attrs.get("run_dirs") or {})


def _pick_run_dir(prev_dir: str | None, out: Path, name: str) -> tuple[Path, Path | None, bool]:
    """Pick the run folder for one seed: reuse a completed one, resume a checkpointed one, or start fresh.

    Returns:
        ``(run_dir, resume_from_or_None, already_completed)``.
    """
    from crisscross.training.runs import create_run_dir

    if prev_dir is not None:
        prev = Path(prev_dir)
        status = load_run_summary(prev).status if prev.is_dir() else None  # "crashed" when marked running but dead
        if status == "completed" and (prev / "eval.json").is_file():
            return prev, None, True
        if status in ("interrupted", "crashed", "pruned") and (prev / "checkpoints" / "last.pt").is_file():
            return prev, prev, False
    return create_run_dir(out / "runs", name), None, False


def run_trial(sweep_path: str | Path, storage_url: str, study_name: str, number: int, out_dir: str | Path,
              overrides: list[str] | None = None, device: str | None = None,
              seeds: tuple[int, ...] | None = None) -> int:
    """Train trial ``number`` of the study and tell the study its outcome.

    Args:
        sweep_path: the sweep file.
        storage_url: the study's database URL.
        study_name: the study.
        number: the trial number (already created and parametrised by the driver).
        out_dir: the sweep's output folder; run folders go under ``out_dir/runs``.
        overrides: ``key=value`` texts given to the sweep on the command line.
        device: ``train.device`` for this worker, e.g. ``cuda:1``.
        seeds: the seeds to train (default: the sweep file's; the driver passes its own, which may come from
            ``crisscross sweep --seeds``).

    Returns:
        0 when the study was told the outcome (whatever it was), 1 otherwise.
    """
    import optuna
    from optuna.trial import TrialState

    spec = load_sweep(sweep_path, overrides or ())
    if seeds:
        spec = dataclasses.replace(spec, seeds=tuple(seeds))
    storage = open_storage(storage_url)
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=make_sampler(spec),
                              pruner=make_pruner(spec))
    study_id = storage.get_study_id_from_name(study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    frozen = storage.get_trial(trial_id)
    if frozen.state != TrialState.RUNNING:
        print(f"trial {number} is {frozen.state.name}; nothing to do", flush=True)
        return 0
    trial = optuna.trial.Trial(study, trial_id)
    trial.set_user_attr("pid", os.getpid())
    stop = threading.Event()
    halts = _start_guards(storage, trial_id, stop)
    try:
        previous = _previous_run_dirs(storage, study_id, frozen.user_attrs)
        state, value, attrs = _run_seeds(spec, trial, frozen.params, previous, Path(out_dir), device, stop)
    finally:
        for h in halts:
            h.set()
    try:
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        study.tell(number, value, state=state)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError, RuntimeError) as err:
        print(f"trial {number}: could not record {state.name}: {err}", file=sys.stderr, flush=True)
        return 1
    print(f"trial {number}: {state.name} {attrs.get('outcome', '')} {value if value is not None else ''} "
          f"{attrs.get('error', '')}".rstrip(), flush=True)
    return 0


def _start_guards(storage: Any, trial_id: int, stop: threading.Event) -> list[threading.Event]:
    """Signal handlers (set ``stop``), a heartbeat thread, and a watchdog that stops the trial if its sweep dies.

    Returns:
        Events that stop the two threads.
    """
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # the engine installs its own while it trains
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def heartbeat(halt: threading.Event) -> None:
        while not halt.wait(HEARTBEAT_INTERVAL_S):
            try:
                storage.record_heartbeat(trial_id)
            except Exception:  # noqa: BLE001 - retried at the next beat
                pass

    parent = os.getppid()

    def watchdog(halt: threading.Event) -> None:
        while not halt.wait(0.5):
            if os.getppid() != parent:  # the sweep process is gone: stop gracefully, then for sure
                print("sweep process is gone; stopping this trial", file=sys.stderr, flush=True)
                os.kill(os.getpid(), signal.SIGTERM)
                if not halt.wait(120):
                    os._exit(1)
                return

    storage.record_heartbeat(trial_id)
    return [_start_daemon(heartbeat, "heartbeat"), _start_daemon(watchdog, "parent-watchdog")]


def _run_seeds(spec: SweepSpec, trial: Any, params: dict[str, Any], previous: dict[str, str], out: Path,
               device: str | None, stop: threading.Event) -> tuple[Any, float | None, dict[str, Any]]:
    """Train every seed of the trial; map the outcome to ``(trial state, value, user attributes)``."""
    from optuna.trial import TrialState

    from crisscross.training.loop import TrainingDiverged

    run_dirs: dict[str, str] = {}
    seed_values: dict[str, float] = {}
    try:
        for i, seed in enumerate(spec.seeds):
            if stop.is_set():
                raise _Interrupted("stop requested")
            run_dir, value, pruned_at = _train_seed(spec, trial, params, seed, i == 0, previous.get(str(seed)), out,
                                                    device, run_dirs)
            if pruned_at is not None:
                return TrialState.PRUNED, None, {"outcome": "pruned", "pruned_at_epoch": pruned_at}
            seed_values[str(seed)] = value
            trial.set_user_attr("seed_values", seed_values)
    except TrainingDiverged as err:
        return TrialState.FAIL, None, {"outcome": "diverged", "error": f"TrainingDiverged: {err}"}
    except _Interrupted as err:
        return TrialState.FAIL, None, {"outcome": "interrupted", "error": str(err)}
    except Exception as err:  # noqa: BLE001 - any failure is recorded on the trial; the sweep goes on
        traceback.print_exc()
        return TrialState.FAIL, None, {"outcome": "error", "error": f"{type(err).__name__}: {err}"}
    vals = list(seed_values.values())
    return TrialState.COMPLETE, statistics.fmean(vals), {
        "outcome": "completed", "value_std": statistics.stdev(vals) if len(vals) > 1 else None}


def _train_seed(spec: SweepSpec, trial: Any, params: dict[str, Any], seed: int, first: bool, prev_dir: str | None,
                out: Path, device: str | None, run_dirs: dict[str, str]) -> tuple[Path, float | None, int | None]:
    """Train (or resume, or reuse) one seed's run; the first seed is followed for pruning.

    Returns:
        ``(run_dir, objective value, pruned_at_epoch)``; the value is None when the run was pruned.

    Raises:
        _Interrupted: the run stopped before completing (signal, or the sweep died).
        TrainingDiverged: the loss became NaN/inf.
        RuntimeError: the objective metric was never logged.
    """
    from crisscross.training.loop import fit
    from crisscross.training.runs import update_status

    cfg = trial_config(spec, params, seed, {"train.device": device} if device else None)
    run_dir, resume, done = _pick_run_dir(prev_dir, out, f"trial{trial.number:04d}-seed{seed}")
    run_dirs[str(seed)] = str(run_dir)
    trial.set_user_attr("run_dirs", run_dirs)
    if first:
        trial.set_user_attr("run_dir", str(run_dir))
    print(f"trial {trial.number} seed {seed}: {'reusing' if done else 'resuming' if resume else 'training'} "
          f"{run_dir}", flush=True)
    monitor = _EpochMonitor(trial, run_dir, spec.metric, prune=first and spec.pruner != "none")
    if first:
        monitor.start()
    try:
        result = None if done else (fit(cfg, resume=resume) if resume else fit(cfg, run_dir=run_dir))
    finally:
        if first:
            monitor.finish()
    if monitor.pruned_at is not None:
        update_status(run_dir, "pruned", pruned_at_epoch=monitor.pruned_at)
        return run_dir, None, monitor.pruned_at
    if result is not None and result.status != "completed":
        raise _Interrupted(f"run {run_dir} stopped ({result.status}) at step {result.steps}")
    rows = read_epoch_rows(run_dir)
    value, epoch = best_value(rows, spec.metric, spec.mode())
    if value is None:
        logged = sorted({k for r in rows for k in r})
        raise RuntimeError(f"objective metric {spec.metric!r} was never logged in {run_dir}/metrics.jsonl "
                           f"(logged: {', '.join(logged) or 'nothing'})")
    if first:
        trial.set_user_attr("epochs", len(rows))
        trial.set_user_attr("best_epoch", epoch)
    return run_dir, value, None


def main(argv: list[str] | None = None) -> int:
    """Command-line entry of the trial process."""
    p = argparse.ArgumentParser(prog="python -m crisscross.experiments.trial", description=__doc__.split("\n")[0])
    p.add_argument("--sweep", required=True)
    p.add_argument("--storage", required=True)
    p.add_argument("--study", required=True)
    p.add_argument("--trial", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--device")
    p.add_argument("--seeds", help="comma-separated seeds (default: the sweep file's)")
    args = p.parse_args(argv)
    quiet_optuna()
    seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip()) if args.seeds else None
    return run_trial(args.sweep, args.storage, args.study, args.trial, args.out, args.set, args.device, seeds)


if __name__ == "__main__":
    raise SystemExit(main())
