"""Prior scores that predict usefulness: precision and recall in a real-data network's features, and the
Classification Accuracy Score, reported by ``gendistill prior eval`` and recorded in the prior's config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gendistill.cli.main import main
from gendistill.evaluate.prior_quality import precision_recall


def test_precision_and_recall_follow_their_definitions() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 8))
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    far = real + 100.0  # nothing of one set lies near the other
    assert precision_recall(real, far) == (0.0, 0.0)
    # a fake set collapsed onto one side of the real one: faithful (all inside), covers little of it
    plane = rng.normal(size=(400, 2))
    side = plane[plane[:, 0] > 1.0]
    precision, recall = precision_recall(plane, side)
    assert precision == 1.0 and recall < 0.4


def test_prior_eval_reports_cas_and_records_it(capsys, fmnist_dir: Path, saved_prior: Path) -> None:
    argv = ["prior", "eval", str(saved_prior), "--data-dir", str(fmnist_dir), "--per-class", "3"]
    small = ["--classifier-epochs", "1", "--cas", "2", "--cas-runs", "1", "--cas-epochs", "1", "--quiet"]
    assert main([*argv, *small, "--record"]) == 0
    out = capsys.readouterr().out
    assert "precision" in out and "cas_2" in out and "generated %" in out
    quality = json.loads((saved_prior / "config.json").read_text())["quality"]
    assert quality["cas_2"]["per_class"] == 2 and len(quality["cas_2"]["generated"]["accuracies"]) == 1
    assert 0 <= quality["precision"] <= 1 and 0 <= quality["recall"] <= 1 and quality["dataset"] == "fashion-mnist"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--record"], "--record writes into a prior folder"),
        (["--cas", "5000"], "needs --per-class 5000 or more"),
        (["--cas", "0"], "each N must be at least 1"),
    ],
)
def test_prior_eval_mistakes_are_one_line(capsys, fmnist_dir: Path, extra: list, message: str) -> None:
    argv = ["prior", "eval", "fashion-mnist", "--data-dir", str(fmnist_dir), "--per-class", "2", "--quiet"]
    try:
        code = main([*argv, "--classifier-epochs", "1", *extra])
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_frechet_distance_equals_the_matrix_square_root_formula() -> None:
    """The eigenvalue form gives the textbook value, computed with scipy's matrix square root."""
    from scipy import linalg

    from gendistill.evaluate.prior_quality import frechet

    rng = np.random.default_rng(1)
    for n, d in ((200, 16), (20, 64)):  # a full-rank and a singular (n < d) covariance
        a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d)) * 1.3 + 0.2
        ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        textbook = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * linalg.sqrtm(ca @ cb).real)
        assert frechet(a, b) == pytest.approx(textbook, rel=1e-6)
