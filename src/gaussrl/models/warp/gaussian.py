"""Gaussian (diagonal Normal) policies for NVIDIA Warp: ``GaussianMixin``.

The formulas are those of :mod:`gaussrl.core.reference`, written as Warp kernels
(:mod:`gaussrl.models.warp.kernels`). ``GaussianMixin.act`` runs the whole head (clamps,
sampling, squashing, log-density, reduction and entropy) in one kernel launch into new
arrays, writes every output element exactly once, and is differentiable with ``wp.Tape``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import warp as wp

from gaussrl.core.errors import InputError, log_std_shape_error, mean_shape_error
from gaussrl.core.mixin import (
    GaussianOptions,
    check_finite_flags,
    check_output_shapes,
    log_std_output,
    not_ready_error,
)
from gaussrl.core.reference import log_std_floor
from gaussrl.core.spec import GaussianPlan
from gaussrl.models.warp.functional import _rows, _unary, gaussian_kl
from gaussrl.models.warp.kernels import (
    REDUCTION_CODES,
    check_array,
    head_kernel,
)

Outputs = tuple[wp.array, wp.array, wp.array, wp.array, wp.array]
"""actions, log_prob, log_std (shaped as ``compute`` returned it), mean_out, entropy."""


@dataclass(frozen=True)
class _Constants:
    """The plan as Warp arrays of one device and dtype (never written: the plan is frozen)."""

    table: wp.array
    dummy_taken: wp.array
    scalars: tuple[float, float, float]
    """The head kernel's scalar arguments: the log-std clamp bounds and the dtype's eps."""

    @classmethod
    def of(cls, plan: GaussianPlan, like: wp.array) -> _Constants:
        dtype = wp.dtype_to_numpy(like.dtype)
        table = np.stack([plan.clip.low, plan.clip.high, plan.squash_center, plan.squash_scale])
        table = np.concatenate([table, np.log(plan.squash_scale)[None]]).astype(dtype)
        return cls(
            table=wp.array(table, dtype=like.dtype, device=like.device),
            dummy_taken=wp.zeros((1, plan.num_actions), dtype=like.dtype, device=like.device),
            scalars=(max(plan.min_log_std, log_std_floor(dtype)), plan.max_log_std, float(np.finfo(dtype).eps)),
        )


def _check_log_std(log_std: wp.array, mean: wp.array, num_actions: int) -> None:
    if log_std.ndim > 2:
        raise log_std_shape_error(log_std.shape, num_actions)
    if log_std.ndim == 2 and log_std.shape[0] not in (1, mean.shape[0]):
        raise InputError(
            f"compute() returned log_std of shape {tuple(log_std.shape)} for mean actions of shape "
            f"{tuple(mean.shape)}; expected ({num_actions},), (1, {num_actions}) or ({mean.shape[0]}, {num_actions}). "
            f"Return one log-std row per sample, or one shared row."
        )
    if log_std.dtype != mean.dtype:
        raise TypeError(
            f"compute() returned mean actions of dtype {mean.dtype.__name__} and log_std of dtype "
            f"{log_std.dtype.__name__}; expected one dtype. Build both as float32."
        )


def _network_outputs(model: Any, inputs: Mapping[str, Any], role: str) -> tuple[wp.array, wp.array, dict[str, Any]]:
    """Run ``compute`` and check its outputs' keys, types, shapes and (optionally) values."""
    model.check_inputs(inputs)
    mean_actions, outputs = model.compute(inputs, role)
    outputs = dict(outputs)
    log_std = log_std_output(outputs, role)
    check_array("compute()'s log_std", log_std, model.device)
    check_array("compute()'s mean actions", mean_actions, model.device)
    check_output_shapes(mean_actions.shape, log_std.shape, model.num_actions)
    if mean_actions.ndim != 2:
        raise mean_shape_error(mean_actions.shape, model.num_actions)
    _check_log_std(log_std, mean_actions, model.num_actions)
    if model._gaussian.plan.spec.check_finite:
        check_finite_flags((np.isfinite(value.numpy()).all() for value in (mean_actions, log_std)), role)
    return mean_actions, log_std, outputs


def _taken_actions(inputs: Mapping[str, Any], mean: wp.array, device: Any) -> wp.array | None:
    taken: wp.array | None = inputs.get("taken_actions")
    if taken is None:
        return None
    check_array('inputs["taken_actions"]', taken, device)
    if tuple(taken.shape) != tuple(mean.shape) or taken.dtype != mean.dtype:
        raise InputError(
            f'inputs["taken_actions"] is {taken.dtype.__name__} of shape {tuple(taken.shape)}; expected '
            f"{mean.dtype.__name__} of shape {tuple(mean.shape)}, like the mean actions. Pass the actions "
            f"stored for these observations, one row per observation."
        )
    return taken


def _allocate(mean: wp.array, log_std: wp.array, reduce: bool, requires_grad: bool) -> list[wp.array]:
    """The head's five new output arrays: actions, log_prob, flat log-std, mean_out, entropy.

    They carry gradients when an input does, unless the caller said that none is wanted: a
    ``wp.Tape`` that records the launch needs them, and Warp has no public way to ask whether
    one is recording.
    """
    n, a = mean.shape
    grad = requires_grad and (mean.requires_grad or log_std.requires_grad)
    shapes = ((n, a), (n, 1) if reduce else (n, a), (log_std.size,), (n, a), (n, a))
    return [wp.empty(shape, dtype=mean.dtype, device=mean.device, requires_grad=grad) for shape in shapes]


def gaussian_head(
    mean: wp.array,
    log_std: wp.array,
    seed: int,
    taken: wp.array | None,
    plan: GaussianPlan,
    *,
    k: _Constants,
    requires_grad: bool = True,
) -> Outputs:
    """Everything ``act()`` does after the network, in one launch into new arrays.

    The kernel (:func:`gaussrl.models.warp.kernels.head_kernel`) follows JAX's ``gaussian_head``
    line by line: clamp the log-std, clip the mean, sample, clip or squash, score, reduce.

    Args:
        mean: Network mean, shape (N, A).
        log_std: Network log-std, shape (A,), (1, A) or (N, A).
        seed: This launch's seed; the noise of element ``i`` is drawn from ``(seed, i)``.
        taken: Actions to score instead of the sample, shape (N, A), or None.
        plan: The resolved options.
        k: The plan's arrays for ``mean``'s device and dtype.
        requires_grad: False: the outputs get no gradient arrays, whatever the inputs have.

    Returns:
        actions, log_prob, the clamped log-std (shaped as ``log_std``), mean_actions and the
        per-dimension entropy (N, A).
    """
    view, per_row = _rows(log_std)
    ints = wp.vec4i(per_row, int(plan.spec.clip_mean_actions), REDUCTION_CODES[plan.spec.reduction], seed)
    flags = wp.vec4i(int(taken is not None), int(plan.spec.clip_actions), int(plan.squash != "none"), 0)
    inputs = [mean, view, k.dummy_taken if taken is None else taken, k.table, *k.scalars, ints, flags]
    arrays = _allocate(mean, log_std, plan.spec.reduction != "none", requires_grad)
    kernel = head_kernel(mean.shape[1], mean.dtype)
    wp.launch(kernel, dim=mean.shape[0], inputs=inputs, outputs=arrays, device=mean.device)
    actions, log_prob, flat, mean_out, entropy = arrays
    return actions, log_prob, flat if log_std.ndim == 1 else flat.reshape(log_std.shape), mean_out, entropy


@dataclass
class _GaussianState:
    """Everything ``GaussianMixin`` keeps: the plan, its arrays per device and dtype, and the last call's outputs."""

    plan: GaussianPlan
    constants: dict[tuple[str, Any], _Constants] = field(default_factory=dict)
    last: tuple[wp.array, wp.array, wp.array] | None = None

    def arrays(self, like: wp.array) -> _Constants:
        key = (str(like.device), like.dtype)
        found = self.constants.get(key)
        if found is None:
            found = self.constants[key] = _Constants.of(self.plan, like)
        return found


class GaussianMixin(GaussianOptions):
    """Turns a ``Model`` whose ``compute`` returns ``mean_actions, {"log_std": ...}`` into a Gaussian policy.

    The options are those of :class:`gaussrl.core.mixin.GaussianOptions`, the same on every backend.
    ``compute`` returns Warp arrays: the mean (N, A) and the log-std, (A,) for a
    state-independent parameter or (N, A) for a state-dependent head. Record ``act`` in a
    ``wp.Tape`` for gradients; ``warp_nn`` layers reuse their output arrays per input shape, so
    do not run the same network twice with the same batch shape inside one tape.

    Every ``act()`` writes new output arrays (with gradients when an input has them), so a
    result a caller keeps or modifies is never touched by a later call. ``check_finite=True``
    copies both outputs to the host.

    Compatibility: as in the specification, ``clip_actions`` scores the clipped action with the
    unclipped density, and ``reduction="prod"`` multiplies the per-dimension log-densities.
    """

    _gaussian: _GaussianState
    device: Any
    next_seed: Callable[[], int]

    def _init_gaussian(self, plan: GaussianPlan) -> None:
        """Store the state for ``plan``.

        Args:
            plan: The resolved options.
        """
        self._gaussian = _GaussianState(plan)

    def act(
        self, inputs: Mapping[str, Any], *, role: str = "", requires_grad: bool = True
    ) -> tuple[wp.array, dict[str, Any]]:
        """Sample actions by reparameterization and score them (or ``inputs["taken_actions"]``), in one launch.

        Args:
            inputs: Model inputs (Warp arrays on the model's device): ``"observations"``, ``"states"``,
                and optionally ``"taken_actions"`` (N, A).
            role: Role played by the model, passed to ``compute``.
            requires_grad: False for a call that no ``wp.Tape`` records (a rollout step, a target):
                the head's outputs then get no gradient arrays (about 10 us less per output on the
                CPU device), and a tape recording the call would pass no gradient through them.

        Returns:
            Actions (N, A) and ``outputs`` with ``"log_prob"`` ((N, 1); (N, A) for ``"none"``),
            ``"log_std"`` (after clamping, shaped as ``compute`` returned it) and ``"mean_actions"``
            (after ``clip_mean_actions``; squashed when squashing), plus whatever ``compute`` returned.
        """
        state = self._gaussian
        mean, log_std, outputs = _network_outputs(self, inputs, role)
        taken = _taken_actions(inputs, mean, self.device)
        k = state.arrays(mean)
        head = gaussian_head(mean, log_std, self.next_seed(), taken, state.plan, k=k, requires_grad=requires_grad)
        actions, log_prob, log_std_out, mean_out, entropy = head
        # The Gaussian's own mean, for get_kl_divergence(): a squashing head returns the squashed one,
        # and compute()'s array may be a warp_nn layer's output that its next call overwrites.
        state.last = (wp.clone(mean) if state.plan.squash != "none" else mean_out, log_std_out, entropy)
        outputs.update(log_prob=log_prob, log_std=log_std_out, mean_actions=mean_out)
        return actions, outputs

    def _last_call(self, method: str) -> tuple[wp.array, wp.array, wp.array]:
        if self._gaussian.last is None:
            raise not_ready_error(method)
        return self._gaussian.last

    def get_entropy(self, stddev: wp.array | None = None, *, role: str = "") -> wp.array:
        """Per-dimension entropy, of the last ``act()`` call's distribution or of a given stddev.

        The specification's JAX signature takes ``stddev``; here it is optional. Without it,
        the entropy comes from the last ``act()`` (computed in the same launch, and on its tape).
        With ``squash_actions`` that is a single-sample estimate of the squashed policy's
        entropy: the base Gaussian's closed form plus ``log|da/du|`` at the last sample
        (unbiased, since ``H(a) = H(u) + E[log|da/du|]``). A given ``stddev`` gets the base
        Gaussian's closed form, ``1/2 + log(sqrt(2 pi)) + log(stddev)``.

        Args:
            stddev: Standard deviation, shape (A,) or (N, A); None for the last ``act()``.
            role: Role played by the model.

        Returns:
            Shape (N, A) for the last ``act()``; the shape of ``stddev`` otherwise.

        Raises:
            NotReadyError: If ``stddev`` is None and ``act()`` has not been called.
        """
        if stddev is not None:
            check_array("get_entropy()'s stddev", stddev, self.device)
            return _unary(stddev, 1)
        return self._last_call("get_entropy")[2]

    def get_kl_divergence(self, mean_actions: wp.array, log_std: wp.array, *, role: str = "") -> wp.array:
        """Exact KL(given || last ``act()`` distribution), reduced with the model's reduction.

        Squashing both with the same tanh map leaves the KL unchanged, so for a squashing policy
        ``mean_actions`` is the other distribution's mean before the squash.

        Args:
            mean_actions: Mean of the other distribution before any squash, shape (N, A).
            log_std: Its log-std, shape (A,) or (N, A).
            role: Role played by the model.

        Returns:
            Shape (N, 1), or (N, A) for ``"none"``.

        Raises:
            NotReadyError: If ``act()`` has not been called.
        """
        mean, current_log_std, _ = self._last_call("get_kl_divergence")
        return gaussian_kl(mean_actions, log_std, mean, current_log_std, self._gaussian.plan.spec.reduction)
