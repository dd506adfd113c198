"""Dataset table and the one entry point that loads a split as a :class:`~crisscross.data.motion.MotionSet`.

``synthetic`` is embedded (procedural, no download); ``h36m`` and ``cmu`` read the exp-map text files of the
literature; ``npz`` reads user recordings (see ``user.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from crisscross.data.errors import DataError
from crisscross.data.motion import MotionSet
from crisscross.data.synthetic import SYNTHETIC_FPS, SYNTHETIC_SPLITS, load_synthetic

__all__ = ["DatasetInfo", "DATASETS", "get_dataset_info", "load_motion"]


@dataclass(frozen=True)
class DatasetInfo:
    """One row of the dataset table."""

    name: str
    description: str
    needs_data_dir: bool
    splits: tuple[str, ...]
    fps: float
    skeleton: str


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("synthetic", "embedded procedural motion on the H3.6M skeleton (6 actions, no download)",
                    False, tuple(SYNTHETIC_SPLITS), SYNTHETIC_FPS, "h36m"),
    )
}


def get_dataset_info(name: str) -> DatasetInfo:
    """The table row of dataset ``name``.

    Raises:
        DataError: unknown name; the message lists the known ones.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return DATASETS[name]


def load_motion(
    name: str,
    split: str = "train",
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    actions: Sequence[str] | None = None,
) -> MotionSet:
    """Load one split of a dataset at its evaluation frame rate.

    Args:
        name: a key of :data:`DATASETS`.
        split: a split listed in the dataset's row.
        data_dir: folder (or archive folder) of the real data; unused by ``synthetic``.
        cache_dir: preprocessing cache folder (default ``$CRISSCROSS_CACHE`` or ``~/.cache/crisscross``).
        actions: load only these actions.

    Raises:
        DataError: unknown dataset or split, missing or malformed files.
    """
    info = get_dataset_info(name)
    if split not in info.splits:
        raise DataError(f"dataset {name!r} has no split {split!r}; splits: {', '.join(info.splits)}")
    if name == "synthetic":
        try:
            return load_synthetic(split, actions=list(actions) if actions is not None else None)
        except ValueError as err:
            raise DataError(str(err)) from None
    raise DataError(f"dataset {name!r} has no loader")  # pragma: no cover - every table row has a loader
