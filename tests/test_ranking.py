"""DD-Ranking's scores against values worked out by hand from its published formulas."""

import math

import pytest

from gendistill.errors import UserError
from gendistill.evaluate.ranking import from_percent, label_robust_score, ranking_scores


def test_scores_match_hand_computation() -> None:
    # set 0.80, random subset 0.70, full data 0.90: IOR 0.10, HLR 0.10, alpha 0.5*0.1 - 0.5*0.1 = 0
    s = ranking_scores(0.80, 0.70, 0.90)
    assert s.ior == pytest.approx(0.10) and s.hlr == pytest.approx(0.10) and s.alpha == pytest.approx(0.0)
    # score(0) = (1 - 1/e) / (e - 1/e) = 0.632121 / 2.350402 = 0.268941 (= 1 / (1 + e))
    assert s.score == pytest.approx(0.268941, abs=1e-6)
    assert s.score == pytest.approx(1 / (1 + math.e))


def test_soft_label_set_and_weight() -> None:
    # soft-label accuracy 0.85, hard-label 0.60, random 0.65, full 0.93, w = 0.7:
    # IOR 0.20, HLR 0.33, alpha 0.14 - 0.099 = 0.041; score (e^0.041 - e^-1) / (e - e^-1)
    s = ranking_scores(0.85, 0.65, 0.93, set_hard_acc=0.60, weight=0.7)
    assert s.alpha == pytest.approx(0.041)
    assert s.score == pytest.approx((1.041853 - 0.367879) / 2.350402, abs=1e-6)


def test_score_ends_and_monotone() -> None:
    assert label_robust_score(-1.0) == pytest.approx(0.0)
    assert label_robust_score(1.0) == pytest.approx(1.0)
    assert label_robust_score(0.2) > label_robust_score(0.1)


def test_percent_inputs_refused_with_the_fix() -> None:
    with pytest.raises(UserError, match="divide percentages by 100"):
        ranking_scores(80.0, 70.0, 90.0)
    assert ranking_scores(*from_percent(80.0, 70.0, 90.0)).alpha == pytest.approx(0.0)
