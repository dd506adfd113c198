"""W&B offline runs read back: what a run's ``run-<id>.wandb`` transaction logs hold.

A resumed offline run must know the last step W&B wrote before a ``kill -9`` (its service buffers records, so a
killed segment may hold fewer steps than ``metrics.jsonl``, or none), and the tests read runs back through it.

The file: a 7-byte header (``:W&B``, a magic number, a version), then LevelDB-style log records in 32 KiB blocks
(4-byte CRC, 2-byte length, 1-byte type: full, first, middle, last), each a ``wandb_internal_pb2.Record``
protocol buffer. wandb ships no reader of its own.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["last_logged_step", "offline_run_files", "read_offline_run"]

_BLOCK, _HEADER = 32 * 1024, 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _payloads(data: bytes) -> Iterator[bytes]:
    if len(data) < _HEADER:  # killed before the header was written: an empty log
        return
    if data[:4] != b":W&B":
        raise ValueError("not a W&B transaction log (no ':W&B' header)")
    pos, pending = _HEADER, b""
    while pos + _HEADER <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _HEADER:  # the block's tail is padding
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + _HEADER])
        if pos + _HEADER + length > len(data):  # the torn tail of a killed writer
            return
        chunk = data[pos + _HEADER:pos + _HEADER + length]
        pos += _HEADER + length
        if kind == 0 and length == 0:
            continue
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""


def read_offline_run(path: str | Path) -> dict[str, Any]:
    """One transaction log: ``{"run_id", "history": [{key: value, "_step": n}], "config", "summary",
    "artifacts": [(name, type, [file, ...])]}``; a torn tail (a killed writer) ends the read."""
    from wandb.proto import wandb_internal_pb2 as pb

    out: dict[str, Any] = {"history": [], "config": {}, "summary": {}, "artifacts": [], "run_id": None}
    for payload in _payloads(Path(path).read_bytes()):
        record = pb.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            out["history"].append(row)
        elif kind == "config":
            for item in record.config.update:
                out["config"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "summary":
            for item in record.summary.update:
                out["summary"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "run":
            out["run_id"] = record.run.run_id
            for item in record.run.config.update:
                out["config"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "artifact":
            out["artifacts"].append((record.artifact.name, record.artifact.type,
                                     [f.path for f in record.artifact.manifest.contents]))
    return out


def offline_run_files(wandb_dir: str | Path, run_id: str) -> list[Path]:
    """The transaction logs of ``run_id`` under a ``wandb`` folder, oldest segment first."""
    return sorted(Path(wandb_dir).glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))


def last_logged_step(wandb_dir: str | Path, run_id: str) -> int:
    """The highest history step the offline segments of ``run_id`` hold (-1 when none)."""
    steps = [row.get("_step", -1) for path in offline_run_files(wandb_dir, run_id)
             for row in read_offline_run(path)["history"]]
    return max(steps, default=-1)
