"""A run folder deleted while ``crisscross runs`` or a report reads it: the others are listed, nothing raises.

Users delete failed runs with ``rm -rf`` while another terminal lists or reports them, and a sweep's retry can
replace a folder. Between finding a folder and reading its files, any of them can vanish.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from crisscross.cli import runs as runs_cli
from crisscross.cli.main import main
from crisscross.experiments.report import build_report, expand_run_paths


def _names(out: str) -> set[str]:
    return {line.split("|")[1].strip().split("/")[0] for line in out.splitlines()[2:] if line.startswith("|")}


def test_a_run_deleted_after_it_was_found_is_left_out(run_factory, monkeypatch, capsys) -> None:
    keep, gone = run_factory("keep"), run_factory("gone")
    original = runs_cli.find_runs

    def find_then_delete(root):
        listed = original(root)
        shutil.rmtree(gone)
        return listed

    monkeypatch.setattr(runs_cli, "find_runs", find_then_delete)
    assert main(["runs", str(keep.parents[1])]) == 0
    out = capsys.readouterr().out
    assert _names(out) == {"keep"}, out


@pytest.mark.parametrize("vanishes_at", ["config.yaml", "status.json", "metrics.jsonl", "eval.json"])
def test_a_run_deleted_while_its_files_are_read_is_left_out(run_factory, monkeypatch, capsys,
                                                            vanishes_at: str) -> None:
    keep, gone = run_factory("keep"), run_factory("gone")
    real_read_text = Path.read_text

    def read_text_then_vanish(self: Path, *args, **kwargs):
        if self.name == vanishes_at and gone in self.parents and gone.exists():
            shutil.rmtree(gone)  # the folder goes just before this file is read
        return real_read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text_then_vanish)
    assert main(["runs", str(keep.parents[1])]) == 0
    out = capsys.readouterr().out
    assert _names(out) == {"keep"}, out


def test_listing_while_another_thread_deletes_and_recreates_runs(run_factory, capsys) -> None:
    root = run_factory("steady").parents[1]
    stop, errors = threading.Event(), []

    def churn() -> None:
        i = 0
        while not stop.is_set():
            try:
                run = run_factory(f"churn{i % 3}")
                shutil.rmtree(run.parent)
            except Exception as err:  # a failure of the churn itself must show, not hang the test
                errors.append(err)
                return
            i += 1

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(60):
            assert main(["runs", str(root)]) == 0
            assert "steady" in _names(capsys.readouterr().out)
    finally:
        stop.set()
        worker.join()
    assert not errors, errors


def test_a_report_leaves_out_a_run_deleted_before_it_is_read(run_factory) -> None:
    keep, gone = run_factory("keep"), run_factory("gone")
    dirs = expand_run_paths([keep.parents[1]])
    shutil.rmtree(gone)
    rep = build_report(dirs)
    assert [r.path for r in rep.runs] == [keep] and len(rep.table) == 1
