"""PPO's learning-rate schedules, shared by every backend's agents (no backend import).

The KL-adaptive rule is skrl's KLAdaptiveLR: after each epoch, divide the rate by
``LR_FACTOR`` when the mean KL exceeds ``KL_FACTOR`` times the target, multiply it when the KL
is below the target over ``KL_FACTOR``, and keep it within ``LR_BOUNDS``.
"""

from __future__ import annotations

KL_FACTOR = 2.0
LR_FACTOR = 1.5
LR_BOUNDS = (1e-6, 1e-2)
"""skrl's KLAdaptiveLR constants: shrink the rate by 1.5 above 2x the target KL, grow it below 1/2x."""


def adapt_learning_rate(learning_rate: float, kl: float, target: float) -> float:
    """The KL-adaptive rate after an epoch whose mean KL was ``kl``.

    Args:
        learning_rate: Current rate.
        kl: Mean KL(old || new) of the epoch.
        target: ``kl_adaptive_threshold``.

    Returns:
        The new rate.
    """
    if kl > target * KL_FACTOR:
        return max(learning_rate / LR_FACTOR, LR_BOUNDS[0])
    if kl < target / KL_FACTOR:
        return min(learning_rate * LR_FACTOR, LR_BOUNDS[1])
    return learning_rate


def linear_fraction(updates: int, total_updates: int) -> float:
    """The "linear" schedule's factor on the initial rate before update ``updates`` (0-based).

    Args:
        updates: Updates done so far.
        total_updates: Updates of the whole run.

    Returns:
        ``max(1 - updates / total_updates, 1 / total_updates)``.
    """
    return max(1.0 - updates / total_updates, 1.0 / total_updates)
