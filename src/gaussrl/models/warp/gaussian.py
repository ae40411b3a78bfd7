"""Gaussian (diagonal Normal) policies for NVIDIA Warp: ``GaussianMixin``.

The formulas are those of :mod:`gaussrl.core.reference`, written as Warp kernels
(:mod:`gaussrl.models.warp.kernels`). ``GaussianMixin.act`` runs the whole head (clamps,
sampling, squashing, log-density, reduction and entropy) in one kernel launch, writes every
output element exactly once, and is differentiable with ``wp.Tape``.

Outside a tape the launch is recorded once per input layout (``wp.launch(record_cmd=True)``)
and replayed with a new seed, into output arrays kept in a small pool: the per-call Python
work of packing fourteen arguments and allocating five arrays is what dominates a small batch.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import warp as wp

from gaussrl.core.errors import (
    InputError,
    Mixin,
    NotReadyError,
    check_model_ready,
    log_std_shape_error,
    mean_shape_error,
    missing_log_std_error,
    non_finite_error,
)
from gaussrl.core.reference import log_std_floor
from gaussrl.core.spec import GaussianPlan, GaussianSpec, Reduction, make_plan
from gaussrl.models.warp.functional import _recording, _rows, _unary, gaussian_kl
from gaussrl.models.warp.kernels import (
    REDUCTION_CODES,
    check_array,
    head_kernel,
)

POOL_SLOTS = 4
"""Output-array sets kept per input layout; beyond that a call allocates fresh arrays."""
POOL_LAYOUTS = 8
"""Input layouts (shapes, dtype, taken actions or not) kept; one more empties the pool."""
_INTS = 7
"""Index of the head kernel's ``ints`` argument (per_row, clip_mean, reduction, seed)."""

Outputs = tuple[wp.array, wp.array, wp.array, wp.array, wp.array]
"""actions, log_prob, log_std (shaped as ``compute`` returned it), mean_out, entropy."""


@dataclass
class _Constants:
    """The plan as Warp arrays of one device and dtype."""

    table: wp.array
    dummy_taken: wp.array
    scalars: tuple[float, float, float]
    """The head kernel's scalar arguments: the log-std clamp bounds and the dtype's eps."""


def _refcounts(arrays: Outputs) -> list[int]:
    # One function takes both the baseline and the later counts, so its own references cancel out.
    return [sys.getrefcount(array) for array in arrays]


@dataclass(eq=False)
class _Slot:
    """A recorded head launch for one input layout, and the output arrays it writes.

    ``refs`` are the reference counts of ``outputs`` when only the pool held them: equal counts
    mean no caller holds an output array or any view of one (views and ``.numpy()`` reference it).
    """

    launch: Any
    outputs: Outputs
    bound: list[wp.array]
    refs: list[int] = field(default_factory=list)

    def free(self) -> bool:
        """Whether nothing outside the pool references an output array."""
        return _refcounts(self.outputs) == self.refs

    def run(self, mean: wp.array, log_std: wp.array, taken: wp.array | None, seed: int) -> Outputs:
        """Launch with these inputs (None keeps the dummy taken actions) and a new seed."""
        launch, bound = self.launch, self.bound
        for index, value in enumerate((mean, log_std, taken)):
            if value is not None and bound[index] is not value:
                launch.set_param_at_index(index, value)
                bound[index] = value
        launch.params[_INTS + 1][3] = seed
        launch.launch()
        return self.outputs


def _allocate(mean: wp.array, log_std: wp.array, reduce: bool, grad: bool) -> list[wp.array]:
    """The head's five output arrays: actions, log_prob, flat log-std, mean_out, entropy."""
    n, a = mean.shape
    shapes = ((n, a), (n, 1) if reduce else (n, a), (log_std.size,), (n, a), (n, a))
    return [wp.empty(shape, dtype=mean.dtype, device=mean.device, requires_grad=grad) for shape in shapes]


def _shown(arrays: list[wp.array], log_std: wp.array) -> Outputs:
    actions, log_prob, flat, mean_out, entropy = arrays
    return actions, log_prob, flat if log_std.ndim == 1 else flat.reshape(log_std.shape), mean_out, entropy


@dataclass
class _GaussianState:
    """Everything ``GaussianMixin`` keeps: the plan, array constants, the pool and the last call's outputs."""

    plan: GaussianPlan
    constants: dict[tuple[str, Any], _Constants] = field(default_factory=dict)
    last: tuple[wp.array, wp.array, wp.array] | None = None
    log_std_view: tuple[wp.array, wp.array, int] | None = None
    pool: dict[tuple[Any, ...], list[_Slot]] = field(default_factory=dict)

    def rows(self, log_std: wp.array) -> tuple[wp.array, int]:
        """``_rows(log_std)``, remembered for a log-std parameter passed again and again."""
        if self.log_std_view is None or self.log_std_view[0] is not log_std:
            self.log_std_view = (log_std, *_rows(log_std))
        return self.log_std_view[1], self.log_std_view[2]

    def arrays(self, like: wp.array) -> _Constants:
        key = (str(like.device), like.dtype)
        found = self.constants.get(key)
        if found is None:
            plan, dtype = self.plan, wp.dtype_to_numpy(like.dtype)
            table = np.stack([plan.clip.low, plan.clip.high, plan.squash_center, plan.squash_scale])
            table = np.concatenate([table, np.log(plan.squash_scale)[None]]).astype(dtype)
            found = _Constants(
                table=wp.array(table, dtype=like.dtype, device=like.device),
                dummy_taken=wp.zeros((1, plan.num_actions), dtype=like.dtype, device=like.device),
                scalars=(max(plan.min_log_std, log_std_floor(dtype)), plan.max_log_std, float(np.finfo(dtype).eps)),
            )
            self.constants[key] = found
        return found

    def arguments(self, mean: wp.array, log_std: wp.array, taken: wp.array | None, seed: int) -> list[Any]:
        """The head kernel's inputs (see :mod:`gaussrl.models.warp.kernels`)."""
        plan, k = self.plan, self.arrays(mean)
        view, per_row = self.rows(log_std)
        ints = wp.vec4i(per_row, int(plan.spec.clip_mean_actions), REDUCTION_CODES[plan.spec.reduction], seed)
        flags = wp.vec4i(int(taken is not None), int(plan.spec.clip_actions), int(plan.squash != "none"), 0)
        return [mean, view, k.dummy_taken if taken is None else taken, k.table, *k.scalars, ints, flags]

    def launch(self, mean: wp.array, log_std: wp.array, taken: wp.array | None, seed: int) -> Outputs:
        """Run the head into fresh arrays (with gradients when a tape records them)."""
        grad = _recording() and (mean.requires_grad or log_std.requires_grad)
        arrays = _allocate(mean, log_std, self.plan.spec.reduction != "none", grad)
        kernel = head_kernel(mean.shape[1], mean.dtype)
        arguments = self.arguments(mean, log_std, taken, seed)
        wp.launch(kernel, dim=mean.shape[0], inputs=arguments, outputs=arrays, device=mean.device)
        return _shown(arrays, log_std)

    def _record(self, mean: wp.array, log_std: wp.array, taken: wp.array | None, seed: int) -> _Slot:
        arguments = self.arguments(mean, log_std, taken, seed)
        arrays = _allocate(mean, log_std, self.plan.spec.reduction != "none", False)
        kernel = head_kernel(mean.shape[1], mean.dtype)
        launch = wp.launch(
            kernel, dim=mean.shape[0], inputs=arguments, outputs=arrays, device=mean.device, record_cmd=True
        )
        return _Slot(launch, _shown(arrays, log_std), arguments[:3])

    def pooled(self, mean: wp.array, log_std: wp.array, taken: wp.array | None, seed: int) -> Outputs:
        """Run the head into pooled arrays that nobody else holds (fresh ones when all are held)."""
        key = (mean.shape, log_std.shape, taken is None, mean.dtype)
        slots = self.pool.get(key)
        if slots is None:
            if len(self.pool) >= POOL_LAYOUTS:
                self.pool.clear()
            slots = self.pool[key] = []
        for slot in slots:
            if slot.free():
                return slot.run(mean, self.rows(log_std)[0], taken, seed)
        if len(slots) == POOL_SLOTS:
            return self.launch(mean, log_std, taken, seed)
        slots.append(self._record(mean, log_std, taken, seed))
        slots[-1].refs = _refcounts(slots[-1].outputs)
        return slots[-1].run(mean, self.rows(log_std)[0], taken, seed)


def _check_log_std(log_std: wp.array, mean: wp.array, num_actions: int) -> None:
    if log_std.ndim > 2 or log_std.shape[-1] != num_actions:
        raise log_std_shape_error(log_std.shape, num_actions)
    if log_std.ndim == 2 and log_std.shape[0] not in (1, mean.shape[0]):
        raise ValueError(
            f"compute() returned log_std of shape {tuple(log_std.shape)} for mean actions of shape "
            f"{tuple(mean.shape)}; expected ({num_actions},), (1, {num_actions}) or ({mean.shape[0]}, {num_actions}). "
            f"Return one log-std row per sample, or one shared row."
        )
    if log_std.dtype != mean.dtype:
        raise TypeError(
            f"compute() returned mean actions of dtype {mean.dtype.__name__} and log_std of dtype "
            f"{log_std.dtype.__name__}; expected one dtype. Build both as float32."
        )


class GaussianMixin(Mixin):
    """Turns a ``Model`` whose ``compute`` returns ``mean_actions, {"log_std": ...}`` into a Gaussian policy.

    ``compute`` returns Warp arrays: the mean (N, A) and the log-std, (A,) for a
    state-independent parameter or (N, A) for a state-dependent head. Record ``act`` in a
    ``wp.Tape`` for gradients; ``warp_nn`` layers reuse their output arrays per input shape, so
    do not run the same network twice with the same batch shape inside one tape.

    Output arrays: inside a tape or a graph capture every ``act()`` allocates fresh arrays
    (with gradients in a tape). Otherwise it writes into arrays from a small pool
    (``POOL_SLOTS`` sets per input shapes and dtype) and reuses a set only when nothing outside
    the model references any of its arrays: not the array, a view of it (``reshape``, slices,
    ``.numpy()``), a dict holding it, nor a tape that recorded it. That is exactly when fresh
    arrays would have been freed, so a result you keep is never overwritten; only a raw
    pointer (``.ptr``) kept without its array is unprotected, as for any freed array. The
    model holds the last call's arrays for ``get_entropy()`` until the next ``act()``.

    Compatibility: as in the specification, ``clip_actions`` scores the clipped action with the
    unclipped density, and ``reduction="prod"`` multiplies the per-dimension log-densities.

    Args:
        clip_actions: Clip sampled actions to the Box bounds; the log-prob scores the clipped action.
        clip_mean_actions: Clip the mean to the Box bounds before sampling.
        clip_log_std: Clamp the log-std to ``[min_log_std, max_log_std]``.
        min_log_std: Lower log-std bound.
        max_log_std: Upper log-std bound.
        reduction: ``"sum"``, ``"mean"``, ``"prod"`` or ``"none"`` over the action axis.
        role: Role played by the model.
        squash_actions: ``True``: tanh onto the Box bounds; ``"tanh"``: onto (-1, 1). The log-prob is
            the exact density of the squashed action.
        check_finite: Raise if ``compute()`` returns NaN or infinity (copies both outputs to the host).

    Raises:
        ValueError: For an invalid option.
        TypeError: If ``Model.__init__`` has not run, or clipping needs a Box the model does not have.
    """

    def __init__(
        self,
        *,
        clip_actions: bool = False,
        clip_mean_actions: bool = False,
        clip_log_std: bool = True,
        min_log_std: float = -20,
        max_log_std: float = 2,
        reduction: Reduction = "sum",
        role: str = "",
        squash_actions: bool | str = False,
        check_finite: bool = False,
    ) -> None:
        check_model_ready(self, "GaussianMixin")
        spec = GaussianSpec(
            clip_actions=clip_actions,
            clip_mean_actions=clip_mean_actions,
            clip_log_std=clip_log_std,
            min_log_std=float(min_log_std),
            max_log_std=float(max_log_std),
            reduction=reduction,
            role=role,
            squash_actions=squash_actions,  # type: ignore[arg-type]
            check_finite=check_finite,
        )
        self._gaussian = _GaussianState(make_plan(spec, self.action_space, self.num_actions))

    def _network_outputs(self, inputs: Mapping[str, Any], role: str) -> tuple[wp.array, wp.array, dict[str, Any]]:
        self.check_inputs(inputs)
        mean_actions, outputs = self.compute(inputs, role)
        log_std = outputs.get("log_std")
        if log_std is None:
            raise missing_log_std_error(role, list(outputs))
        num_actions = self._gaussian.plan.num_actions
        check_array("compute()'s log_std", log_std, self.device)
        check_array("compute()'s mean actions", mean_actions, self.device)
        if mean_actions.ndim != 2 or mean_actions.shape[-1] != num_actions:
            raise mean_shape_error(mean_actions.shape, num_actions)
        _check_log_std(log_std, mean_actions, num_actions)
        if self._gaussian.plan.spec.check_finite:
            for name, value in (("mean_actions", mean_actions), ("log_std", log_std)):
                if not np.isfinite(value.numpy()).all():
                    raise non_finite_error(name, role)
        return mean_actions, log_std, outputs

    def _taken_actions(self, inputs: Mapping[str, Any], mean: wp.array) -> wp.array | None:
        taken = inputs.get("taken_actions")
        if taken is None:
            return None
        check_array('inputs["taken_actions"]', taken, self.device)
        if tuple(taken.shape) != tuple(mean.shape) or taken.dtype != mean.dtype:
            raise InputError(
                f'inputs["taken_actions"] is {taken.dtype.__name__} of shape {tuple(taken.shape)}; expected '
                f"{mean.dtype.__name__} of shape {tuple(mean.shape)}, like the mean actions. Pass the actions "
                f"stored for these observations, one row per observation."
            )
        return taken

    def act(self, inputs: Mapping[str, Any], *, role: str = "") -> tuple[wp.array, dict[str, Any]]:
        """Sample actions by reparameterization and score them (or ``inputs["taken_actions"]``), in one launch.

        Args:
            inputs: Model inputs (Warp arrays on the model's device): ``"observations"``, ``"states"``,
                and optionally ``"taken_actions"`` (N, A).
            role: Role played by the model, passed to ``compute``.

        Returns:
            Actions (N, A) and ``outputs`` with ``"log_prob"`` ((N, 1); (N, A) for ``"none"``),
            ``"log_std"`` (after clamping, shaped as ``compute`` returned it) and ``"mean_actions"``
            (after ``clip_mean_actions``; squashed when squashing), plus whatever ``compute`` returned.
            No array of an earlier call that is still referenced is ever overwritten (see the class).
        """
        mean, log_std, outputs = self._network_outputs(inputs, role)
        taken = self._taken_actions(inputs, mean)
        state = self._gaussian
        state.last = None  # its arrays may go back to the pool
        seed = self.next_seed()
        # A tape or a graph capture keeps the arrays it records: those get fresh ones.
        run = state.launch if _recording() or mean.device.is_capturing else state.pooled
        actions, log_prob, log_std_out, mean_out, entropy = run(mean, log_std, taken, seed)
        state.last = (mean_out, log_std_out, entropy)
        outputs["log_prob"] = log_prob
        outputs["log_std"] = log_std_out
        outputs["mean_actions"] = mean_out
        return actions, outputs

    def _last_call(self, method: str) -> tuple[wp.array, wp.array, wp.array]:
        if self._gaussian.last is None:
            raise NotReadyError(
                f"{method}() was called before any act(); it describes the distribution of the last act() "
                f"call. Call policy.act(inputs, role=...) first."
            )
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

        Args:
            mean_actions: Mean of the other distribution before any squash, shape (N, A).
            log_std: Its log-std, shape (A,) or (N, A).
            role: Role played by the model.

        Returns:
            Shape (N, 1), or (N, A) for ``"none"``.

        Raises:
            NotReadyError: If ``act()`` has not been called.
            NotImplementedError: With ``squash_actions``: ``act()`` keeps only the squashed mean.
        """
        mean, current_log_std, _ = self._last_call("get_kl_divergence")
        if self._gaussian.plan.squash != "none":
            raise NotImplementedError(
                "get_kl_divergence() needs the pre-squash mean, but a squashing act() keeps only the squashed "
                "mean; call gaussian_kl(mean_p, log_std_p, mean_q, log_std_q) on compute()'s outputs instead."
            )
        return gaussian_kl(mean_actions, log_std, mean, current_log_std, self._gaussian.plan.spec.reduction)
