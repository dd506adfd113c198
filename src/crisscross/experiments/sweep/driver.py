"""The sweep process: worker threads that each run one trial at a time, every trial in its own process.

How it runs (:func:`run_sweep`): the study lives in an Optuna storage (a SQLite file in the sweep's output
folder unless ``storage`` names a database URL, which lets sweeps on several machines share one study).
``workers`` threads each take the driver's lock, check the budget and run ``Study.optimize(n_trials=1)``: Optuna
fails other workers' trials whose heartbeat stopped, asks the study for a trial and records its heartbeat while
it runs. The objective fixes the trial's parameters, releases the lock (so asking and budget checks are atomic
within this sweep) and starts ``python -m crisscross.experiments.sweep.trial``, which trains one run folder per
seed through :func:`crisscross.training.fit`.

The worker keeps the Optuna trial: through the channel (:mod:`.channel`) the trial process hands over the user
attributes to record, reports each epoch's objective value and gets the pruning decision back, and finally sends
its outcome, which the objective turns into Optuna's (a value: COMPLETE; ``TrialPruned``: PRUNED;
:class:`TrialFailed`: FAILED). A diverging run (``TrainingDiverged``) or any error is a FAILED trial and the sweep
goes on. Trials left running by a killed sweep are failed as stale and retried (:func:`.study.reclaim_trials`); a
retry continues the killed run folders from their last checkpoint. The budget counts completed, pruned and
genuinely failed trials, never stale ones, so a resumed sweep ends with the full budget.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crisscross.experiments.sweep.channel import Channel, ChannelClosed, TrialJob, open_channel
from crisscross.experiments.sweep.spec import SweepError, SweepSpec
from crisscross.experiments.sweep.study import (
    budget_counts,
    default_storage_url,
    get_trial,
    import_optuna,
    open_storage,
    open_study,
    quiet_optuna,
    reclaim_trials,
    report_epoch,
    suggest_params,
)
from crisscross.experiments.sweep.summary import (
    SweepOutcome,
    configuration_rows,
    format_params,
    trial_line,
    trial_rows,
    write_sweep_summary,
)

if TYPE_CHECKING:
    import optuna

__all__ = ["TRIAL_MODULE", "TrialFailed", "run_sweep"]

TRIAL_MODULE = "crisscross.experiments.sweep.trial"


class TrialFailed(Exception):
    """Raised by the objective for a FAILED trial; ``Study.optimize`` records it and the sweep goes on."""


class _Driver:
    """The sweep process: worker threads that each run trials through ``Study.optimize``, one at a time."""

    def __init__(self, spec: SweepSpec, study: optuna.Study, storage: optuna.storages.BaseStorage, out: Path,
                 budget: int, devices: Sequence[str], cli_overrides: Sequence[str], say: Callable[[str], None]) -> None:
        self.spec, self.study, self.storage, self.out, self.budget = spec, study, storage, out, budget
        self.devices, self.cli_overrides, self.say = list(devices), list(cli_overrides), say
        self.driver_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lock = threading.Lock()  # budget check + ask + suggest happen atomically within this sweep
        self.stop = threading.Event()
        self.procs: dict[int, subprocess.Popen] = {}
        self.threads_per_worker = 1

    def run(self, workers: int) -> bool:
        """Reclaim stale trials, run ``workers`` threads until the budget is used up; True when interrupted."""
        self.threads_per_worker = max(1, (os.cpu_count() or 1) // workers)
        with self.lock:
            retried = reclaim_trials(self.study, self.storage, self.budget, self.driver_id)
        if retried:
            self.say(f"retrying stale/interrupted trials {', '.join(map(str, retried))}")
        pool = [threading.Thread(target=self.worker, args=(i,), name=f"sweep-worker-{i}", daemon=True)
                for i in range(workers)]
        for t in pool:
            t.start()
        try:
            while any(t.is_alive() for t in pool):
                for t in pool:
                    t.join(timeout=0.5)
        except KeyboardInterrupt:
            self.stop.set()
            for proc in list(self.procs.values()):  # trial processes checkpoint and report "interrupted"
                try:
                    proc.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass
            for t in pool:
                t.join()
            return True
        return False

    def verdict(self) -> str:
        """With the lock held: ``done`` once the budget is used up, ``wait`` while others run the rest, ``run``."""
        if self.stop.is_set():
            return "done"
        reclaim_trials(self.study, self.storage, self.budget, self.driver_id)
        done, running, _ = budget_counts(self.study)
        if done >= self.budget:
            return "done"
        if done + running >= self.budget:
            return "wait"  # others run the rest of the budget; one may go stale and need a retry
        return "run"

    def worker(self, index: int) -> None:
        """Run trials one after another until the budget is used up or the sweep is stopped."""
        device = self.devices[index % len(self.devices)] if self.devices else None
        while not self.stop.is_set():
            objective = _Objective(self, device)
            objective.lock()
            try:
                verdict = self.verdict()
                if verdict == "run":
                    self.study.optimize(objective, n_trials=1, catch=(TrialFailed,))
            finally:
                objective.unlock()  # when the objective never ran
            if verdict == "done":
                return
            if verdict == "wait":
                self.stop.wait(1.0)
            elif objective.number is not None:
                self.say(trial_line(get_trial(self.study, objective.number), self.spec))

    def launch(self, trial: optuna.trial.Trial, job: TrialJob, device: str | None) -> dict[str, Any]:
        """Run ``job`` in its own process (output to ``logs/``), serving its channel; the trial's outcome."""
        channel, child_fds = open_channel()
        cmd = [sys.executable, "-m", TRIAL_MODULE, "--sweep", str(self.spec.path), "--out", str(self.out),
               "--job", job.to_json(), "--channel", ",".join(map(str, child_fds))]
        for text in self.cli_overrides:
            cmd += ["--set", text]
        if device:
            cmd += ["--device", device]
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(self.threads_per_worker))  # N workers share the cores
        env.setdefault("MKL_NUM_THREADS", str(self.threads_per_worker))
        log = self.out / "logs" / f"trial-{job.number:04d}.log"
        try:
            with log.open("ab") as fh:
                proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, pass_fds=child_fds)
        finally:
            for fd in child_fds:  # the child holds them now; closed here, its exit ends the channel
                os.close(fd)
        self.procs[job.number] = proc
        try:
            trial.set_user_attr("pid", proc.pid)
            result = _serve(trial, channel)
            code = proc.wait()
        finally:
            self.procs.pop(job.number, None)
            channel.close()
        if result is not None:
            return result
        outcome = "interrupted" if self.stop.is_set() else "error"
        return {"state": "FAIL", "value": None,
                "attrs": {"outcome": outcome, "error": f"trial process exited with code {code}; see {log}"}}


def _serve(trial: optuna.trial.Trial, channel: Channel) -> dict[str, Any] | None:
    """Answer the trial process until it closes the channel; its ``result`` message, if it sent one."""
    result = None
    for message in channel:
        if "attrs" in message:
            for key, value in message["attrs"].items():
                trial.set_user_attr(key, value)
        elif "report" in message:
            r = message["report"]
            try:
                prune = report_epoch(trial, int(r["epoch"]), float(r["value"]), bool(r["prune"]))
            except Exception as err:  # a storage hiccup must not stop training
                print(f"trial {trial.number}: cannot report epoch {r['epoch']}: {err}", file=sys.stderr, flush=True)
                prune = False
            try:
                channel.send({"prune": prune})
            except ChannelClosed:
                break
        elif "result" in message:
            result = message["result"]
    return result


class _Objective:
    """The objective of one ``Study.optimize(n_trials=1)`` call: one trial, run in its own process.

    The worker takes the driver's lock before ``optimize`` asks for the trial; the objective releases it once the
    trial has its parameters and attributes, so two workers never ask at the same time or overrun the budget.
    """

    def __init__(self, driver: _Driver, device: str | None) -> None:
        self.driver, self.device = driver, device
        self.number: int | None = None
        self._locked = False

    def lock(self) -> None:
        """Take the driver's lock."""
        self.driver.lock.acquire()
        self._locked = True

    def unlock(self) -> None:
        """Release the driver's lock if this objective holds it."""
        if self._locked:
            self._locked = False
            self.driver.lock.release()

    def __call__(self, trial: optuna.trial.Trial) -> float:
        d = self.driver
        try:
            self.number = trial.number
            params = suggest_params(trial, d.spec)
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("driver_pid", os.getpid())
            trial.set_user_attr("driver_id", d.driver_id)
        finally:
            self.unlock()
        retry = trial.user_attrs.get("retry_of")
        d.say(f"trial {trial.number} started: {format_params(params)}"
              + (f" (retry of trial {retry})" if retry is not None else ""))
        previous = {} if retry is None else get_trial(d.study, int(retry)).user_attrs.get("run_dirs") or {}
        job = TrialJob(number=trial.number, params=params, seeds=tuple(d.spec.seeds), previous=dict(previous))
        try:
            result = d.launch(trial, job, self.device)
        except Exception as err:  # the trial process could not start: recorded on the trial like any error
            result = {"state": "FAIL", "value": None, "attrs": {"outcome": "error",
                                                                 "error": f"{type(err).__name__}: {err}"}}
        return _conclude(trial, result)


def _conclude(trial: optuna.trial.Trial, result: dict[str, Any]) -> float:
    """Record the trial process's outcome: return the value (COMPLETE) or raise for PRUNED and FAILED."""
    attrs = result.get("attrs") or {}
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    if result["state"] == "COMPLETE":
        return float(result["value"])
    if result["state"] == "PRUNED":
        raise import_optuna().TrialPruned(f"pruned at epoch {attrs.get('pruned_at_epoch')}")
    raise TrialFailed(f"{attrs.get('outcome', 'failed')}: {attrs.get('error', '')}")


def run_sweep(spec: SweepSpec, *, out_dir: str | Path | None = None, storage: str | None = None, workers: int = 1,
              trials: int | None = None, resume: bool = False, name: str | None = None,
              devices: Sequence[str] = (), cli_overrides: Sequence[str] = (),
              log: Callable[[str], None] | None = None, command: str | None = None) -> SweepOutcome:
    """Run (or resume, or join) a sweep until the study holds ``budget`` finished trials.

    Args:
        spec: the validated sweep (see :func:`crisscross.experiments.sweep.load_sweep`).
        out_dir: output folder (default ``runs/sweeps/<study name>``): ``study.db``, ``runs/``, ``logs/``,
            ``summary.md``, ``trials.csv``, ``configurations.csv``.
        storage: database URL of the study (default: SQLite in ``out_dir``).
        workers: trial processes run at the same time on this machine.
        trials: budget override.
        resume: continue an existing study (or join one another machine started).
        name: study name override.
        devices: devices handed round-robin to the workers (``train.device``), e.g. ``["cuda:0", "cuda:1"]``.
        cli_overrides: the ``key=value`` texts given on the command line; passed on to every trial process.
        log: receives one line per event (trial started/finished); nothing is printed otherwise.
        command: the command line, recorded in ``summary.md``.

    Returns:
        The outcome, with per-trial and per-configuration rows.

    Raises:
        SweepError: the study cannot be created or resumed.
    """
    if workers < 1:
        raise SweepError(f"--workers must be >= 1, got {workers}")
    quiet_optuna()
    study_name = name or spec.name
    out = Path(out_dir) if out_dir is not None else Path("runs") / "sweeps" / study_name
    (out / "logs").mkdir(parents=True, exist_ok=True)
    url = storage or default_storage_url(out)
    opened = open_storage(url)
    study = open_study(spec, opened, resume=resume, name=study_name)
    budget = spec.budget(trials)
    driver = _Driver(spec, study, opened, out, budget, devices, cli_overrides, log or (lambda _msg: None))
    interrupted = driver.run(workers)
    outcome = SweepOutcome(study_name=study_name, storage=url, out_dir=out, budget=budget, interrupted=interrupted,
                           command=command)
    outcome.trials = trial_rows(study, spec)
    outcome.configurations = configuration_rows(outcome.trials, spec)
    write_sweep_summary(outcome, spec)
    return outcome
