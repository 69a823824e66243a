"""The distillation engine."""

from gendistill.distill.engine import History, Schedule, run

__all__ = ["History", "Schedule", "run"]
