"""Per-epoch callbacks: they see each epoch's logged row, and a returned status stops the run after its checkpoint."""

from __future__ import annotations

import json

from crisscross.config import load_config
from crisscross.runs.folders import EVAL_FILE, STATUS_FILE, checkpoint_path, read_epoch_rows
from crisscross.tasks.forecasting import VALIDATION_METRIC
from crisscross.training import fit


def _cfg(tmp_path, *extra):
    return load_config(None, ["model.args.dim=8", "train.epochs=3", "train.epoch_fraction=0.05",
                              "train.batch_size=32", "data.actions=[walking]", "train.progress=false",
                              "track.tensorboard=false", f"track.root={tmp_path}", *extra])


def test_a_callback_sees_every_epoch_row_in_order(tmp_path):
    seen = []
    result = fit(_cfg(tmp_path), callbacks=[lambda epoch, row: seen.append((epoch, dict(row)))])
    assert result.status == "completed" and result.stopped_by == "epochs"
    assert [epoch for epoch, _ in seen] == [1, 2, 3]
    logged = read_epoch_rows(result.run_dir)
    assert [row[VALIDATION_METRIC] for _, row in seen] == [row[VALIDATION_METRIC] for row in logged]


def test_a_status_returned_by_a_callback_ends_the_run_checkpointed_and_resumable(tmp_path):
    def prune_after_first(epoch, row):
        return "pruned" if epoch == 1 else None

    result = fit(_cfg(tmp_path), callbacks=[prune_after_first])
    assert result.status == "pruned" and result.epochs == 1 and result.stopped_by is None
    status = json.loads((result.run_dir / STATUS_FILE).read_text())
    assert status["status"] == "pruned" and status["epoch"] == 1
    assert checkpoint_path(result.run_dir, "last").is_file()
    assert not (result.run_dir / EVAL_FILE).exists()  # no final evaluation for a run that did not complete
    resumed = fit(None, resume=result.run_dir)
    assert resumed.status == "completed" and resumed.epochs == 3
