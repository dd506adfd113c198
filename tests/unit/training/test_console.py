"""The training console: an epoch line whatever the output, plain progress lines into a file, a tidy bar on a
terminal, nothing when quiet, a line per logged step when verbose, and a run-level ETA computed by hand."""

from __future__ import annotations

import io

import pytest

from crisscross.training import console as console_module
from crisscross.training.console import Console, format_duration

ROW = {"epoch": 2, "train/epoch_loss": 0.0412, "train/epoch_mpjpe_mm": 41.2, "val/mpjpe22_avg_mm": 97.53,
       "time/epoch_s": 12.34, "time/samples_per_s": 1043.2}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(console_module.time, "perf_counter", c)
    return c


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (41.6, "42s"), (185, "3m05s"), (7620, "2h07m"),
                                               (-3, "0s")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_file_output_gets_plain_lines_and_an_epoch_line(clock):
    out = io.StringIO()
    c = Console(total_steps=100, epochs=4, stream=out, is_tty=False, interval_s=30.0)
    for step in range(1, 26):
        clock.now += 2.0  # 2 s a step: a progress line each 30 s
        c.update(step, epoch=1, named={"mpjpe_mm": 41.2} if step % 10 == 0 else None)
    c.epoch_line(ROW, metric_key="val/mpjpe22_avg_mm", best=95.1, best_epoch=1)
    c.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0] == "epoch 2/4 step 15/100 (15%) ETA 2m50s"  # 85 steps left at 2 s each
    assert len(lines) == 2  # 50 s of steps: one progress line (at 30 s), then the epoch line
    assert lines[-1] == ("epoch 2/4 | train mpjpe_mm 41.20 | val/mpjpe22_avg_mm 97.53 (best 95.10 @ epoch 1) | "
                         "12s | 1043 samples/s | ETA 2m30s")


def test_eta_after_an_epoch_uses_that_epoch_pace_validation_included(clock):
    c = Console(total_steps=30, epochs=3, stream=io.StringIO(), is_tty=False, progress=False)
    clock.now += 50.0  # a slow first step (warm-up)
    c.update(1, epoch=0)
    for step in range(2, 11):
        clock.now += 1.0
        c.update(step, epoch=0)
    assert c.eta_s() == pytest.approx(59.0 / 10 * 20)  # before an epoch ends: the pace so far
    clock.now += 5.0  # validation
    c.epoch_line({**ROW, "epoch": 1}, metric_key="val/mpjpe22_avg_mm", best=97.53, best_epoch=1)
    assert c.eta_s() == pytest.approx(64.0 / 10 * 20)
    for step in range(11, 21):
        clock.now += 1.0
        c.update(step, epoch=1)
    clock.now += 5.0
    c.epoch_line({**ROW, "epoch": 2}, metric_key="val/mpjpe22_avg_mm", best=97.53, best_epoch=1)
    assert c.eta_s() == pytest.approx(15.0 / 10 * 10)  # the second epoch's pace, not the warm-up's


def test_quiet_prints_nothing_and_verbose_prints_every_logged_step(clock):
    quiet, loud = io.StringIO(), io.StringIO()
    for stream, verbosity in ((quiet, "quiet"), (loud, "verbose")):
        c = Console(verbosity=verbosity, total_steps=20, epochs=1, stream=stream, is_tty=False)
        for step in range(1, 21):
            clock.now += 0.1
            c.update(step, epoch=0, named={"mpjpe_mm": 50.0 - step} if step % 5 == 0 else None)
        c.epoch_line({**ROW, "epoch": 1}, metric_key="val/mpjpe22_avg_mm", best=97.53, best_epoch=1)
        c.print("resumed")
        c.close()
    assert quiet.getvalue() == ""
    lines = loud.getvalue().splitlines()
    assert lines[:4] == [f"step {s}/20 epoch 1/1 mpjpe_mm {50.0 - s:.2f}" for s in (5, 10, 15, 20)]
    assert lines[4].startswith("epoch 1/1 | train mpjpe_mm 41.20") and lines[5] == "resumed"


def test_terminal_gets_one_bar_under_whole_epoch_lines(clock):
    out = io.StringIO()
    c = Console(total_steps=10, epochs=2, stream=out, is_tty=True)
    for step in range(1, 6):
        clock.now += 1.0
        c.update(step, epoch=0, named={"mpjpe_mm": 40.0})
    c.epoch_line({**ROW, "epoch": 1}, metric_key="val/mpjpe22_avg_mm", best=97.53, best_epoch=1)
    c.close()
    text = out.getvalue()
    assert "\r" in text  # the bar redraws in place
    epoch_lines = [part for line in text.split("\n") for part in line.split("\r") if part.startswith("epoch 1/2 |")]
    assert len(epoch_lines) == 1 and epoch_lines[0].endswith("ETA 5s")


def test_bad_verbosity_is_refused():
    with pytest.raises(ValueError, match="verbosity: got 'loud', expected one of quiet, normal, verbose"):
        Console(verbosity="loud", total_steps=1, epochs=1, stream=io.StringIO())
