"""Deterministic models for JAX/Flax (value functions, Q-functions, deterministic actors)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from gaussrl.core.mixin import DeterministicOptions
from gaussrl.core.spaces import ActionBounds
from gaussrl.core.spec import DeterministicSpec


def _traced_act(
    model: Any,
    bounds: ActionBounds | None,
    params: Any,
    inputs: Mapping[str, Any],
    *,
    role: str,
    frozen: bool,
    training: bool,
) -> tuple[jax.Array, dict[str, Any]]:
    """The body that ``act()`` compiles: the network and the optional clip (``training`` keys the cache)."""
    del training
    if frozen:
        params = jax.lax.stop_gradient(params)
    model.check_inputs(inputs)
    actions, outputs = model.apply(params, inputs, role)
    if bounds is not None:
        dtype = jnp.result_type(actions)
        actions = jnp.clip(actions, jnp.asarray(bounds.low, dtype), jnp.asarray(bounds.high, dtype))
    return actions, dict(outputs)


class DeterministicMixin(DeterministicOptions):
    """Turns a ``Model`` into a deterministic one: ``act`` returns what ``__call__`` returns.

    The options are those of :class:`gaussrl.core.mixin.DeterministicOptions`, the same on every backend.
    """

    _deterministic: tuple[Any, ...]
    _frozen: bool
    training: bool
    ready_state_dict: Callable[[str], Any]

    def _init_deterministic(self, spec: DeterministicSpec, bounds: ActionBounds | None) -> None:
        object.__setattr__(self, "_deterministic", (spec, bounds, {}))

    def act(self, inputs: Mapping[str, Any], *, role: str = "", params: Any = None) -> tuple[jax.Array, dict[str, Any]]:
        """Run ``__call__`` (compiled, the role static) and optionally clip its output.

        Args:
            inputs: Model inputs; never modified.
            role: Role played by the model.
            params: Parameters to use instead of ``state_dict.params`` (e.g. under ``jax.grad``).

        Returns:
            The output (N, num_actions or 1) and the extra outputs of ``__call__``.

        Raises:
            NotReadyError: If ``init_state_dict()`` has not been called.
        """
        state_dict = self.ready_state_dict("act")
        _, bounds, compiled = self._deterministic
        if "act" not in compiled:
            compiled["act"] = jax.jit(
                functools.partial(_traced_act, self, bounds), static_argnames=("role", "frozen", "training")
            )
        params = state_dict.params if params is None else params
        result: tuple[jax.Array, dict[str, Any]] = compiled["act"](
            params, inputs, role=role, frozen=self._frozen, training=self.training
        )
        return result
