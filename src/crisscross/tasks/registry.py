"""The one task registry: every task crisscross trains and evaluates, by name (``ExperimentConfig.task``)."""

from __future__ import annotations

from crisscross.tasks.base import Task
from crisscross.tasks.forecasting import ForecastingTask
from crisscross.tasks.lifting import LiftingTask

__all__ = ["DEFAULT_TASK", "TASKS", "get_task", "list_tasks"]

DEFAULT_TASK = "forecasting"

TASKS: dict[str, Task] = {task.name: task for task in (ForecastingTask(), LiftingTask())}


def get_task(name: str) -> Task:
    """The task called ``name``; an unknown name raises ``ValueError`` naming the ``task`` key and the known ones."""
    if name not in TASKS:
        raise ValueError(f"task: unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]


def list_tasks() -> list[str]:
    """Names of every registered task."""
    return list(TASKS)
