"""Optimisation pieces of the JAX agents: Adam, global-norm clipping and the Polyak update, all pure."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

ADAM_EPS = 1e-8
"""torch.optim.Adam's default eps, so that the JAX and torch agents take the same steps."""
CLIP_EPS = 1e-6
"""torch.nn.utils.clip_grad_norm_ divides by ``norm + 1e-6``."""


def adam(learning_rate: float) -> optax.GradientTransformation:
    """Adam with torch's defaults (betas 0.9/0.999, eps 1e-8 added to the root of the second moment).

    Args:
        learning_rate: Step size.

    Returns:
        The optax transformation.
    """
    return optax.adam(learning_rate, b1=0.9, b2=0.999, eps=ADAM_EPS)


def clip_grad_norm(grads: Any, max_norm: float) -> Any:
    """Scale a gradient tree so that its global 2-norm is at most ``max_norm`` (torch's formula).

    ``g * min(1, max_norm / (norm + 1e-6))``, as ``torch.nn.utils.clip_grad_norm_``; 0 returns ``grads``.

    Args:
        grads: A pytree of arrays.
        max_norm: Largest allowed norm; 0 disables clipping.

    Returns:
        The scaled tree.
    """
    if max_norm <= 0:
        return grads
    norm = optax.global_norm(grads)
    coefficient = jnp.minimum(max_norm / (norm + CLIP_EPS), 1.0)
    return jax.tree_util.tree_map(lambda g: g * coefficient.astype(g.dtype), grads)


def soft_update(targets: Any, sources: Any, polyak: float) -> Any:
    """``target + polyak * (source - target)`` leaf by leaf (torch's ``lerp``).

    Args:
        targets: Target parameters.
        sources: Source parameters of the same structure.
        polyak: Interpolation factor in (0, 1].

    Returns:
        The new targets.
    """
    return jax.tree_util.tree_map(lambda t, s: t + polyak * (s - t), targets, sources)


def adam_step(
    optimizer: optax.GradientTransformation, grads: Any, opt_state: Any, params: Any, max_norm: float
) -> tuple[Any, Any]:
    """Clip ``grads`` (when ``max_norm`` > 0) and apply one optimizer step.

    Args:
        optimizer: The optax transformation.
        grads: Gradients, shaped like ``params``.
        opt_state: The optimizer's state.
        params: The parameters.
        max_norm: Global-norm clip; 0 disables it.

    Returns:
        The new parameters and optimizer state.
    """
    updates, opt_state = optimizer.update(clip_grad_norm(grads, max_norm), opt_state, params)
    return optax.apply_updates(params, updates), opt_state
