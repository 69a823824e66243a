"""Evaluation: the protocol, its presets, the trainer and the baselines."""

from gendistill.evaluate.artifact import RESULTS_FILE, evaluate_artifact, record_result
from gendistill.evaluate.baselines import SELECTORS, select
from gendistill.evaluate.protocol import EvalReport, ModelResult, evaluate
from gendistill.evaluate.recipe import PRESETS, Preset, TrainRecipe
from gendistill.evaluate.trainer import TrainingData, accuracy, train_classifier

__all__ = [
    "PRESETS",
    "RESULTS_FILE",
    "SELECTORS",
    "EvalReport",
    "ModelResult",
    "Preset",
    "TrainRecipe",
    "TrainingData",
    "accuracy",
    "evaluate",
    "evaluate_artifact",
    "record_result",
    "select",
    "train_classifier",
]
