"""Augmentation for matching and evaluation."""

from gendistill.augment.dsa import DEFAULT_STRATEGY, DSA, DSAParams, parse_strategy, strategy_for

__all__ = ["DEFAULT_STRATEGY", "DSA", "DSAParams", "parse_strategy", "strategy_for"]
