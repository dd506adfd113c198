"""``crisscross train`` with its output in a file: a log a person reads line by line (no carriage returns, one
line per epoch with its figures), and ``--quiet`` keeps only the result."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RUN = ["model.args.dim=16", "train.epochs=3", "train.batch_size=16",
       "train.epoch_fraction=0.01", "train.log_every_steps=2", "track.tensorboard=false"]
EPOCH_LINE = re.compile(r"^epoch (\d)/3 \| train mpjpe_mm \d+\.\d\d \| val/mpjpe22_avg_mm \d+\.\d\d "
                        r"\(best \d+\.\d\d @ epoch \d\) \| \d+s \| \d+ samples/s \| ETA (\d+s|\d+m\d\ds)$")


def _train_to_file(tmp_path: Path, *flags: str) -> str:
    log = tmp_path / "train.log"
    with log.open("w") as fh:
        subprocess.run([sys.executable, "-m", "crisscross.cli.main", "train", "--no-baseline", *flags, *RUN,
                        f"track.root={tmp_path / 'runs'}"], stdout=fh, stderr=subprocess.STDOUT, check=True,
                       env={**os.environ, "PYTHONPATH": str(REPO / "src")}, timeout=600)
    return log.read_text()


def test_a_log_file_reads_line_by_line(tmp_path):
    text = _train_to_file(tmp_path)
    assert "\r" not in text and "\x1b" not in text  # no bar redraws, no terminal escapes
    epochs = [m.group(1) for line in text.splitlines() if (m := EPOCH_LINE.match(line))]
    assert epochs == ["1", "2", "3"], text
    assert "MPJPE (mm) on synthetic / val" in text and "run folder:" in text


def test_quiet_prints_only_the_result(tmp_path):
    text = _train_to_file(tmp_path, "--quiet")
    assert not any(line.startswith("epoch ") for line in text.splitlines()), text
    assert "MPJPE (mm) on synthetic / val" in text
