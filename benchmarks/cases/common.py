"""The benchmark's shared setting: an MLP 17 -> 64 -> 64 -> 6 with tanh hidden layers, weights from one seed."""

from __future__ import annotations

import itertools

import numpy as np

OBSERVATIONS, HIDDEN, ACTIONS = 17, 64, 6
BATCHES = (1, 64, 4096, 65536)


def weights(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W, b) per layer as float32, W of shape (in, out); every library gets these same numbers."""
    rng = np.random.default_rng(seed)
    sizes = (OBSERVATIONS, HIDDEN, HIDDEN, ACTIONS)
    layers = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        bound = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(np.float32)
        b = rng.uniform(-bound, bound, size=fan_out).astype(np.float32)
        layers.append((w, b))
    return layers


def observations(batch: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, OBSERVATIONS)).astype(np.float32)


LOG_STD = np.full(ACTIONS, -0.5, np.float32)
