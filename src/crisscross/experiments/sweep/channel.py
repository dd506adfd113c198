"""The driver-trial protocol: the job a trial process gets, and a pipe carrying one JSON object per line each way.

The job (:class:`TrialJob`) goes on the trial process's command line (``--job``).

The driver owns the Optuna trial (only the process that asked a trial can write to it through Optuna's public
API), so the trial process sends it what the trial should record and asks it for pruning decisions:

* ``{"attrs": {...}}``: user attributes to set on the trial now (run folders, per-seed values);
* ``{"report": {"epoch": E, "value": V, "prune": P}}``: an epoch's objective value; the driver reports it and
  answers ``{"prune": true|false}`` (true only when ``P`` and the pruner says stop);
* ``{"result": {"state": "COMPLETE"|"PRUNED"|"FAIL", "value": V, "attrs": {...}}}``: the trial's outcome.

The pipes are two ``os.pipe()`` pairs handed to the child through ``pass_fds``. When either process dies its
ends close: the other side reads end-of-file or gets ``BrokenPipeError``, raised here as :class:`ChannelClosed`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Channel", "ChannelClosed", "TrialJob", "open_channel"]


@dataclass(frozen=True)
class TrialJob:
    """What the driver hands a trial process.

    Attributes:
        number: the trial number.
        params: the trial's parameter values (by search-dimension name).
        seeds: the seeds to train, one run folder each.
        previous: seed -> run folder of the trial this one retries (continued or reused).
    """

    number: int
    params: dict[str, Any]
    seeds: tuple[int, ...]
    previous: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """The ``--job`` text."""
        return json.dumps({"number": self.number, "params": self.params, "seeds": list(self.seeds),
                           "previous": self.previous})

    @classmethod
    def from_json(cls, text: str) -> TrialJob:
        """Read the ``--job`` text."""
        raw = json.loads(text)
        return cls(number=int(raw["number"]), params=dict(raw["params"]), seeds=tuple(raw["seeds"]),
                   previous=dict(raw.get("previous") or {}))


class ChannelClosed(ConnectionError):
    """The process at the other end of the channel is gone."""


class Channel:
    """One end of the driver-trial pipe pair.

    Args:
        read_fd: file descriptor this end reads from.
        write_fd: file descriptor this end writes to.
    """

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._reader = os.fdopen(read_fd, "r", encoding="utf-8")
        self._writer = os.fdopen(write_fd, "w", encoding="utf-8")

    @classmethod
    def from_arg(cls, text: str) -> Channel:
        """The channel named ``"READ_FD,WRITE_FD"`` on the trial process's command line."""
        read_fd, write_fd = (int(x) for x in text.split(","))
        return cls(read_fd, write_fd)

    def send(self, message: dict[str, Any]) -> None:
        """Write one message.

        Raises:
            ChannelClosed: the other process is gone.
        """
        try:
            self._writer.write(json.dumps(message, default=str) + "\n")
            self._writer.flush()
        except (BrokenPipeError, ValueError) as err:  # ValueError: this end was closed already
            raise ChannelClosed(f"channel closed ({err})") from None

    def receive(self) -> dict[str, Any]:
        """Read one message.

        Raises:
            ChannelClosed: the other process is gone (end of file).
        """
        line = self._reader.readline()
        if not line:
            raise ChannelClosed("channel closed (end of file)")
        return json.loads(line)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Messages until the other process closes its end."""
        while True:
            try:
                yield self.receive()
            except ChannelClosed:
                return

    def close(self) -> None:
        """Close both ends held by this process."""
        for f in (self._reader, self._writer):
            try:
                f.close()
            except OSError:
                pass


def open_channel() -> tuple[Channel, tuple[int, int]]:
    """A driver-side channel and the ``(read_fd, write_fd)`` pair the trial process gets.

    The caller passes the pair to the child (``pass_fds``) and closes it in the driver once the child runs, so
    the driver reads end-of-file when the child exits.
    """
    child_read, driver_write = os.pipe()
    driver_read, child_write = os.pipe()
    return Channel(driver_read, driver_write), (child_read, child_write)
