"""Evaluate a saved artifact and record the result beside it: what ``gendistill evaluate`` does, as a call.

The report is appended to ``<artifact>/eval.json`` (a list: every evaluation of the artifact, oldest
first), written atomically, so a user, a suite and the command line all leave the same record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from gendistill.artifacts import check_dataset, check_fits, load
from gendistill.data import ImageDataset
from gendistill.errors import UserError
from gendistill.evaluate.mixtures import fixed_steps, mix
from gendistill.evaluate.protocol import EvalReport, evaluate
from gendistill.evaluate.readings import describe, training_data
from gendistill.evaluate.recipe import TrainRecipe
from gendistill.io import check_writable, write_json

RESULTS_FILE = "eval.json"


def evaluate_artifact(
    path: str | os.PathLike,
    dataset: ImageDataset | Callable[[dict], ImageDataset],
    *,
    reading: str = "fixed",
    ipc: int | None = None,
    train_on: str | None = None,
    steps: int | None = None,
    epochs: int | None = None,
    augment: str = "auto",
    seed: int = 0,
    record: bool = True,
    other_dataset: bool = False,
    **options,
) -> EvalReport:
    """Train fresh networks on the artifact at ``path`` (under ``reading``; ``train_on`` mixes in real data;
    ``steps`` trains a fixed number of steps instead of epochs) and test them on ``dataset``.

    ``dataset`` must be the one the artifact was made from, unless ``other_dataset`` says the difference is
    meant (then it is only a warning); a function of the artifact's metadata that loads it is called once
    the artifact is known to hold something to train on. ``augment="auto"`` takes the artifact's own
    evaluation augmentation.
    ``options`` go to :func:`~gendistill.evaluate.evaluate` (models, runs, preset, device, precision...).
    ``record``: append the report to ``<path>/eval.json``, checked writable before any training."""
    artifact = load(path)
    results = Path(path) / RESULTS_FILE
    if record:
        check_writable(results)
    data, label = training_data(artifact, reading, ipc, seed)
    if callable(dataset):
        dataset = dataset(artifact.meta)
    check_fits(artifact.training_set(), dataset)  # a shape that cannot fit is an error even when meant
    check_dataset(artifact.meta, dataset, explicit=other_dataset)
    if augment == "auto":
        augment = artifact.meta.get("eval_augment", "dsa")
    if train_on or steps:
        if reading != "fixed":
            raise UserError("--train-on and --steps train on a fixed set; drop --reading")
        data = mix(data, dataset, train_on) if train_on else data
        label.update({"train_on": train_on, "images": len(data)})
        if steps:
            if epochs:
                raise UserError("--steps replaces the preset's epochs; pass one of --steps and --epochs")
            data, epochs = fixed_steps(data, TrainRecipe.batch_size, seed), steps
            label["steps"] = steps
    report = evaluate(data, dataset, augment=augment, seed=seed, epochs=epochs, **options)
    report.stored_bytes = artifact.storage_bytes()
    report.reading = describe(label, report.stored_bytes, dataset)
    if record:
        record_result(path, report)
    return report


def record_result(path: str | os.PathLike, report: EvalReport) -> Path:
    """Append ``report`` to ``<path>/eval.json``."""
    results = Path(path) / RESULTS_FILE
    history = json.loads(results.read_text()) if results.is_file() else []
    write_json(results, [*history, report.to_dict()])
    return results
