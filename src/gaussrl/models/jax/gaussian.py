"""Gaussian (diagonal Normal) policies for JAX/Flax: ``GaussianMixin``.

The formulas are those of :mod:`gaussrl.core.reference`, written for ``jax.numpy``. ``act()``
compiles the network, the key step, the sampling, the log-density and the entropy into one
``jax.jit`` call (the role is static), so ``act()`` and then ``get_entropy(outputs["stddev"])``
cost one dispatch. At batch 1 each array the call returns costs XLA:CPU about a tenth of the
bare forward (a kernel and a buffer), more than the sampling itself; the call returns raw key
words, not a typed key, which costs more again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gaussrl.core.mixin import (
    GaussianOptions,
    check_finite_flags,
    check_output_shapes,
    log_std_output,
    not_ready_error,
)
from gaussrl.core.reference import LOG_SQRT_2PI, log_std_floor
from gaussrl.core.spec import GaussianPlan
from gaussrl.models.jax.functional import (
    clamp,
    gaussian_entropy,
    gaussian_kl,
    gaussian_log_prob,
    next_key_data,
    reduce_log_prob,
    tanh_log_det,
)

_TRACER = jax.core.Tracer


@dataclass(frozen=True)
class _Constants:
    """The plan's arrays in one dtype; built while tracing, so they become compile-time constants."""

    log_std_low: float
    log_std_high: float
    clip_low: jax.Array
    clip_high: jax.Array
    squash_center: jax.Array
    squash_scale: jax.Array
    log_scale: jax.Array

    @classmethod
    def of(cls, plan: GaussianPlan, dtype: Any) -> _Constants:
        def array(values: Any) -> jax.Array:
            return jnp.asarray(values, dtype=dtype)

        return cls(
            log_std_low=max(plan.min_log_std, log_std_floor(np.dtype(dtype))),
            log_std_high=plan.max_log_std,
            clip_low=array(plan.clip.low),
            clip_high=array(plan.clip.high),
            squash_center=array(plan.squash_center),
            squash_scale=array(plan.squash_scale),
            log_scale=array(np.log(plan.squash_scale)),
        )


def _network_outputs(
    model: Any, params: Any, inputs: Mapping[str, Any], role: str
) -> tuple[jax.Array, jax.Array, dict[str, Any]]:
    """Run ``__call__`` and check its outputs' keys and shapes (at trace time: shapes are static)."""
    model.check_inputs(inputs)
    mean_actions, outputs = model.apply(params, inputs, role)
    outputs = dict(outputs)
    log_std = log_std_output(outputs, role)
    check_output_shapes(jnp.shape(mean_actions), jnp.shape(log_std), model.num_actions)
    return mean_actions, log_std, outputs


def _squashed(
    mean: jax.Array,
    log_std: jax.Array,
    noise: jax.Array,
    pre_tanh: jax.Array,
    *,
    taken: jax.Array | None,
    k: _Constants,
) -> tuple[jax.Array, jax.Array]:
    """Squashed actions and the exact log-density of the scored (sampled or taken) action."""
    actions = k.squash_center + k.squash_scale * jnp.tanh(pre_tanh)
    if taken is None:
        gaussian = -0.5 * noise * noise - log_std - LOG_SQRT_2PI
        scored = pre_tanh
    else:
        eps = np.finfo(taken.dtype).eps
        scored = jnp.arctanh(jnp.clip((taken - k.squash_center) / k.squash_scale, -1.0 + eps, 1.0 - eps))
        gaussian = gaussian_log_prob(scored, mean, log_std)
    return actions, gaussian - tanh_log_det(scored) - k.log_scale


def gaussian_head(
    mean: jax.Array, log_std: jax.Array, noise: jax.Array, taken: jax.Array | None, plan: GaussianPlan
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Everything ``act()`` does after the network, as a pure function (what :func:`reference.act` does).

    Compatibility: with ``clip_actions`` the log-density scores the clipped action, as the
    specification does.

    Args:
        mean: Network mean, shape (N, A).
        log_std: Network log-std, shape (A,) or (N, A).
        noise: Standard-normal draw, shape (N, A).
        taken: Actions to score instead of the sample, shape (N, A), or None.
        plan: The resolved options.

    Returns:
        Actions (N, A) and ``{"log_prob", "log_std", "stddev", "mean_actions"}`` (+ ``"pre_tanh"`` when squashing).
    """
    k = _Constants.of(plan, mean.dtype)
    log_std = clamp(log_std, k.log_std_low, k.log_std_high)
    if plan.spec.clip_mean_actions:
        mean = jnp.clip(mean, k.clip_low, k.clip_high)
    stddev = jnp.exp(log_std)
    pre_tanh = mean + stddev * noise
    extra: dict[str, jax.Array] = {}
    if plan.squash != "none":
        actions, log_prob = _squashed(mean, log_std, noise, pre_tanh, taken=taken, k=k)
        extra = {"mean_actions": k.squash_center + k.squash_scale * jnp.tanh(mean), "pre_tanh": pre_tanh}
    else:
        actions = jnp.clip(pre_tanh, k.clip_low, k.clip_high) if plan.spec.clip_actions else pre_tanh
        if taken is None and not plan.spec.clip_actions:
            log_prob = -0.5 * noise * noise - log_std - LOG_SQRT_2PI
        else:
            log_prob = gaussian_log_prob(actions if taken is None else taken, mean, log_std)
        extra = {"mean_actions": mean}
    log_prob = reduce_log_prob(log_prob, plan.spec.reduction)
    return actions, {"log_prob": log_prob, "log_std": log_std, "stddev": stddev, **extra}


def _sample_key(key: jax.Array, impl: Any) -> tuple[jax.Array, jax.Array | None]:
    """This call's sampling key, and the words to keep for the next call (None for a key passed to ``act``).

    The model's stream samples with the step of the kept words and keeps that step. Drawing from
    the step (not from the kept words) also orders the noise after the step in XLA:CPU's
    schedule, after the first layer, so that on two threads both still run side by side.
    """
    if impl is None:
        return jax.random.split(key)[1], None
    words = next_key_data(key)
    return jax.random.wrap_key_data(words, impl=impl), words


@jax.tree_util.register_pytree_node_class
class _Static:
    """A value that is not an array, carried out of the compiled call in the output's tree structure.

    It has no leaves: ``jax.jit`` returns it from the structure it recorded for this trace, so the
    value is the one this very trace computed (never one of another trace), and ``act()`` returns
    it unchanged.
    """

    def __init__(self, value: Any) -> None:
        self.value = value

    def tree_flatten(self) -> tuple[tuple[()], Any]:
        return (), self.value

    @classmethod
    def tree_unflatten(cls, value: Any, children: tuple[()]) -> _Static:
        return cls(value)


def _is_array(value: Any) -> bool:
    return isinstance(value, jax.Array | np.ndarray | np.generic)


def _wrap_static(outputs: dict[str, Any]) -> tuple[dict[str, Any], _Static]:
    """``outputs`` with every non-array leaf wrapped in :class:`_Static`, and whether there was one."""
    wrapped = jax.tree_util.tree_map(lambda v: v if _is_array(v) else _Static(v), outputs)
    found = any(isinstance(leaf, _Static) for leaf in jax.tree_util.tree_leaves(wrapped, is_leaf=_is_static))
    return wrapped, _Static(found)


def _is_static(value: Any) -> bool:
    return isinstance(value, _Static)


def _unwrap_static(outputs: dict[str, Any]) -> dict[str, Any]:
    unwrapped: dict[str, Any] = jax.tree_util.tree_map(
        lambda v: v.value if isinstance(v, _Static) else v, outputs, is_leaf=_is_static
    )
    return unwrapped


def _traced_act(
    model: Any, params: Any, key: jax.Array, inputs: Mapping[str, Any], static: tuple[str, bool, bool, Any]
) -> tuple[jax.Array, dict[str, Any], jax.Array, jax.Array | None, tuple[Any, _Static, jax.Array | None]]:
    """The body that ``act()`` compiles: network, sampling, log-density and the base entropy.

    Values of ``__call__``'s outputs that are not arrays (strings, None, Python numbers) come out
    as :class:`_Static`, with a flag saying whether there are any.

    ``static`` is ``(role, frozen, training, impl)``, one hashable argument (each static argument
    costs dispatch time). ``key`` is the model's raw key words when ``impl`` names their PRNG, else
    a key passed to ``act``. ``training`` only keys the cache, so that ``enable_training_mode()``
    retraces (``apply`` reads it). The entropy is returned so that ``get_entropy(outputs["stddev"])``
    needs no second call.
    """
    role, frozen, _, impl = static
    plan = model._gaussian.plan
    if frozen:
        params = jax.lax.stop_gradient(params)
    sample_key, next_key = _sample_key(key, impl)
    mean, log_std, outputs = _network_outputs(model, params, inputs, role)
    flags = None
    if plan.spec.check_finite:
        flags = jnp.stack([jnp.all(jnp.isfinite(mean)), jnp.all(jnp.isfinite(log_std))])
    noise = jax.random.normal(sample_key, jnp.shape(mean), mean.dtype)
    actions, head = gaussian_head(mean, log_std, noise, inputs.get("taken_actions"), plan)
    outputs, has_static = _wrap_static(outputs)
    outputs.update(head)
    # The Gaussian's own mean, for get_kl_divergence(); without a squash it is outputs["mean_actions"].
    base_mean = mean if plan.squash != "none" else None
    return actions, outputs, gaussian_entropy(head["log_std"]), next_key, (flags, has_static, base_mean)


def _traced_entropy(plan: GaussianPlan, stddev: jax.Array, pre_tanh: jax.Array | None) -> jax.Array:
    entropy = gaussian_entropy(jnp.log(stddev))
    if pre_tanh is None:
        return entropy
    return entropy + tanh_log_det(pre_tanh) + _Constants.of(plan, pre_tanh.dtype).log_scale


@dataclass
class _GaussianState:
    """Everything ``GaussianMixin`` keeps: the plan and its compiled functions (built on first use).

    ``last_entropy`` is the last ``act()``'s ``(stddev, entropy)`` until ``get_entropy`` takes it;
    ``last_gaussian`` its Gaussian's mean and log-std (immutable arrays), for ``get_kl_divergence``.
    """

    plan: GaussianPlan
    act: Callable[..., Any] | None = None
    entropy: Callable[..., Any] | None = None
    last_entropy: tuple[jax.Array, jax.Array] | None = None
    last_gaussian: tuple[jax.Array, jax.Array] | None = None


class GaussianMixin(GaussianOptions):
    """Turns a ``Model`` whose ``__call__`` returns ``mean_actions, {"log_std": ...}`` into a Gaussian policy.

    The options are those of :class:`gaussrl.core.mixin.GaussianOptions`, the same on every backend.
    ``check_finite=True`` reads the flags after the compiled call (one device-to-host sync);
    inside an outer ``jax.jit`` it is skipped.
    """

    _gaussian: _GaussianState
    _key: Any
    _frozen: bool
    training: bool
    ready_state_dict: Callable[[str], Any]

    def _init_gaussian(self, plan: GaussianPlan) -> None:
        """Store the state for ``plan``.

        Args:
            plan: The resolved options.
        """
        object.__setattr__(self, "_gaussian", _GaussianState(plan))

    def act(
        self, inputs: Mapping[str, Any], *, role: str = "", params: Any = None, key: jax.Array | None = None
    ) -> tuple[jax.Array, dict[str, Any]]:
        """Sample actions by reparameterization and score them (or ``inputs["taken_actions"]``).

        Each call samples with the next key of the model's stream (see ``seed()`` and
        :func:`next_key_data`), so consecutive calls are independent and a seed reproduces them.
        Inside an outer ``jax.jit`` the model's key is a compile-time constant: pass ``key`` there
        to get fresh noise on every execution.

        Args:
            inputs: Model inputs: ``"observations"``, ``"states"``, and optionally ``"taken_actions"``;
                never modified.
            role: Role played by the model, passed to ``__call__`` (static under ``jit``).
            params: Parameters to use instead of ``state_dict.params`` (e.g. under ``jax.grad``).
            key: PRNG key for this call's sample; the model's own key is then left unchanged.

        Returns:
            Actions (N, A) and ``outputs`` with ``"log_prob"`` ((N, 1); (N, A) for ``"none"``),
            ``"log_std"`` (after clamping), ``"stddev"`` (its exp, for :meth:`get_entropy`, as the
            specification's JAX backend returns it), ``"mean_actions"`` (after ``clip_mean_actions``;
            squashed when squashing), ``"pre_tanh"`` when squashing, plus whatever ``__call__`` returned.

        Raises:
            NotReadyError: If ``init_state_dict()`` has not been called.
            NonFiniteOutputError: With ``check_finite=True``, for NaN or infinity from ``__call__``.
        """
        state_dict, stream, state = self.ready_state_dict("act"), self._key, self._gaussian
        if state.act is None:
            state.act = jax.jit(functools.partial(_traced_act, self), static_argnums=3)
        own_key = key is None
        actions, outputs, entropy, next_key, (flags, has_static, base_mean) = state.act(
            state_dict.params if params is None else params,
            stream.data if own_key else key,
            inputs,
            (role, self._frozen, self.training, stream.impl if own_key else None),
        )
        if own_key:
            stream.advance(next_key)
        if flags is not None and not isinstance(flags, _TRACER):
            check_finite_flags(np.asarray(flags), role)
        if not isinstance(entropy, _TRACER):
            state.last_entropy = (outputs["stddev"], entropy)
            mean = outputs["mean_actions"] if base_mean is None else base_mean
            state.last_gaussian = (mean, outputs["log_std"])
        return actions, _unwrap_static(outputs) if has_static.value else outputs

    def get_entropy(self, stddev: jax.Array, *, role: str = "", pre_tanh: jax.Array | None = None) -> jax.Array:
        """Per-dimension entropy of a Gaussian with standard deviation ``stddev``.

        Without ``pre_tanh`` this is the base Gaussian's closed form, also when squashing. Pass
        ``outputs["pre_tanh"]`` of a squashing policy's ``act()`` to get the single-sample estimate
        of the squashed policy's entropy, ``H(u) + log|da/du|`` (unbiased, since
        ``H(a) = H(u) + E[log|da/du|]``).

        Args:
            stddev: Standard deviation, ``outputs["stddev"]`` of ``act()``; shape (A,) or (N, A).
            role: Role played by the model.
            pre_tanh: The pre-squash sample, shape (N, A), or None.

        Returns:
            ``stddev``'s shape, or (N, A) with ``pre_tanh``.
        """
        state = self._gaussian
        last, state.last_entropy = state.last_entropy, None
        if last is not None and last[0] is stddev and pre_tanh is None:
            return last[1]
        if state.entropy is None:
            state.entropy = jax.jit(functools.partial(_traced_entropy, state.plan))
        entropy: jax.Array = state.entropy(stddev, pre_tanh)
        return entropy

    def get_kl_divergence(self, mean_actions: jax.Array, log_std: jax.Array, *, role: str = "") -> jax.Array:
        """Exact KL(given || last ``act()`` distribution), reduced with the model's reduction.

        Squashing both with the same tanh map leaves the KL unchanged, so for a squashing policy
        ``mean_actions`` is the other distribution's mean before the squash. Inside an outer
        ``jax.jit``, call :func:`gaussian_kl` on ``act()``'s outputs instead.

        Args:
            mean_actions: Mean of the other distribution before any squash, shape (N, A).
            log_std: Its log-std, shape (A,) or (N, A).
            role: Role played by the model.

        Returns:
            Shape (N, 1), or (N, A) for ``"none"``.

        Raises:
            NotReadyError: If ``act()`` has not been called (outside a trace).
        """
        last = self._gaussian.last_gaussian
        if last is None:
            raise not_ready_error("get_kl_divergence")
        return gaussian_kl(mean_actions, log_std, last[0], last[1], self._gaussian.plan.spec.reduction)
