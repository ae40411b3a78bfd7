"""Independent oracles and tolerances shared by the contract tests."""

from __future__ import annotations

import numpy as np
import scipy.stats
from gymnasium import spaces

RTOL = ATOL = 1e-5
REDUCTIONS = ("sum", "mean", "prod", "none")


def box(num_actions: int = 4, low: float = -1.0, high: float = 1.0) -> spaces.Box:
    return spaces.Box(low=low, high=high, shape=(num_actions,), dtype=np.float32)


def draw(seed: int, n: int = 256, a: int = 4, scale: float = 1.0) -> np.ndarray:
    return (scale * np.random.default_rng(seed).normal(size=(n, a))).astype(np.float32)


def scipy_log_prob(x: np.ndarray, mean: np.ndarray, log_std: np.ndarray) -> np.ndarray:
    """Per-dimension log-density from scipy, in float64."""
    f = np.float64
    return scipy.stats.norm.logpdf(x.astype(f), mean.astype(f), np.exp(log_std.astype(f)))


def reduce(values: np.ndarray, reduction: str) -> np.ndarray:
    """Plain NumPy reductions, written out for the oracle side."""
    ops = {"sum": np.sum, "mean": np.mean, "prod": np.prod}
    if reduction == "none":
        return values
    return ops[reduction](values, axis=-1, keepdims=True)


def atol_for(reduction: str, num_actions: int) -> float:
    """float32 against float64: atol 1e-5, scaled by A for summed reductions."""
    return ATOL * (num_actions if reduction in ("sum", "prod") else 1)
