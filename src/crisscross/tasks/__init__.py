"""Tasks: what differs between forecasting and other tasks, behind one seam (:class:`~crisscross.tasks.base.Task`).

Also the evaluation of a run folder, checkpoint or weight-free model through its task (:func:`evaluate_source`).
"""

from crisscross.tasks.base import SampleBank, Task
from crisscross.tasks.registry import DEFAULT_TASK, TASKS, get_task, list_tasks
from crisscross.tasks.sources import evaluate_model, evaluate_source

__all__ = ["DEFAULT_TASK", "TASKS", "SampleBank", "Task", "evaluate_model", "evaluate_source", "get_task",
           "list_tasks"]
