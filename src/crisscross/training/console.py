"""What a training run prints while it trains.

One line per epoch (train loss, validation figure, best so far, epoch time, samples per second, the run's ETA),
whatever the output is. On a terminal a single run-level progress bar (tqdm) sits under those lines; when the
output is a file or a pipe there is no bar, and a plain progress line is printed every ``interval_s`` seconds
instead, so a log reads line by line. ``quiet`` prints nothing while training; ``verbose`` adds a line at every
logged step.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm.auto import tqdm

__all__ = ["VERBOSITIES", "Console", "format_duration"]

VERBOSITIES = ("quiet", "normal", "verbose")


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``: short and fixed in form, for ETAs and epoch times."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _figures(named: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.2f}" for k, v in named.items())


class Console:
    """The lines and the bar of one training process (rank 0; other ranks get a silent one).

    Args:
        verbosity: ``quiet``, ``normal`` or ``verbose``.
        progress: show progress between epoch lines (the bar, or the periodic lines when not on a terminal).
        total_steps: updates the whole run will do; ``start_step`` the updates already done (a resumed run).
        epochs: epochs the run asks for.
        stream: where to print (standard error by default); ``is_tty`` overrides its own answer.
        interval_s: seconds between progress lines when the output is not a terminal.
    """

    def __init__(self, *, verbosity: str = "normal", progress: bool = True, total_steps: int, start_step: int = 0,
                 epochs: int, stream: TextIO | None = None, is_tty: bool | None = None,
                 interval_s: float = 30.0) -> None:
        if verbosity not in VERBOSITIES:
            raise ValueError(f"verbosity: got {verbosity!r}, expected one of {', '.join(VERBOSITIES)}")
        self.stream = stream if stream is not None else sys.stderr
        tty = self.stream.isatty() if is_tty is None else is_tty
        self.verbosity, self.total_steps, self.epochs, self.interval_s = verbosity, total_steps, epochs, interval_s
        self.start_step, self.step = start_step, start_step
        self.t0 = self.last_line = time.perf_counter()
        self.pace_s: float | None = None  # seconds per update over the last epoch, validation included
        self._epoch_mark = (self.t0, start_step)
        self.bar = None
        self.periodic = progress and verbosity != "quiet" and not tty
        if progress and verbosity != "quiet" and tty:
            self.bar = tqdm(total=total_steps, initial=start_step, unit="step", file=self.stream, dynamic_ncols=True,
                            leave=False, smoothing=0.1)

    def eta_s(self) -> float | None:
        """Seconds left for the whole run: at the last epoch's pace (validation included) once an epoch has ended,
        at the pace so far before that (the first steps carry warm-up, so the first estimate runs high)."""
        pace = self.pace_s
        if pace is None:
            done = self.step - self.start_step
            if done <= 0:
                return None
            pace = (time.perf_counter() - self.t0) / done
        return pace * (self.total_steps - self.step)

    def _eta(self) -> str:
        eta = self.eta_s()
        return f"ETA {format_duration(eta)}" if eta is not None else "ETA -"

    def print(self, text: str) -> None:
        """A line above the bar (or just a line), unless quiet."""
        if self.verbosity == "quiet":
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def update(self, step: int, epoch: int, named: dict[str, float] | None = None) -> None:
        """One more update done (``named``: the loss figures when the step was logged)."""
        self.step = step
        if self.bar is not None:
            self.bar.update(1)
            if named:
                self.bar.set_postfix_str(f"epoch {epoch + 1}/{self.epochs} {_figures(named)}", refresh=False)
        if named and self.verbosity == "verbose":
            self.print(f"step {step}/{self.total_steps} epoch {epoch + 1}/{self.epochs} {_figures(named)}")
        elif self.periodic and time.perf_counter() - self.last_line >= self.interval_s:
            self.print(f"epoch {epoch + 1}/{self.epochs} step {step}/{self.total_steps} "
                       f"({100 * step / max(1, self.total_steps):.0f}%) {self._eta()}")
        else:
            return
        self.last_line = time.perf_counter()

    def epoch_line(self, row: dict[str, Any], *, metric_key: str, best: float, best_epoch: int) -> None:
        """The line that closes an epoch: ``row`` is the epoch's tracker row."""
        train = {k.removeprefix("train/epoch_"): v for k, v in row.items()
                 if k.startswith("train/epoch_") and k != "train/epoch_loss"}
        parts = [f"epoch {row['epoch']}/{self.epochs}",
                 "train " + (_figures(train) if train else f"loss {row['train/epoch_loss']:.4g}")]
        if metric_key in row:
            parts.append(f"{metric_key} {row[metric_key]:.2f} (best {best:.2f} @ epoch {best_epoch})")
        now, (mark_t, mark_step) = time.perf_counter(), self._epoch_mark
        if self.step > mark_step:
            self.pace_s, self._epoch_mark = (now - mark_t) / (self.step - mark_step), (now, self.step)
        parts += [format_duration(row["time/epoch_s"]), f"{row['time/samples_per_s']:.0f} samples/s", self._eta()]
        self.print(" | ".join(parts))
        self.last_line = time.perf_counter()

    def close(self) -> None:
        """Remove the bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
