"""Gaussian (diagonal Normal) policies for PyTorch: ``GaussianMixin``.

The formulas are those of :mod:`gaussrl.core.reference`, as tensor functions in
:mod:`gaussrl.models.torch.functional`. ``act()`` computes every value it returns afresh from
this call's network outputs: nothing is cached between calls but the plan's constants.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gaussrl.core.mixin import (
    GaussianOptions,
    check_finite_flags,
    check_output_shapes,
    log_std_output,
    not_ready_error,
)
from gaussrl.core.reference import LOG_SQRT_2PI, log_std_floor
from gaussrl.core.spec import GaussianPlan
from gaussrl.models.torch.functional import (
    gaussian_entropy,
    gaussian_kl,
    gaussian_log_prob,
    reduce_log_prob,
    standard_log_prob,
    standard_normal,
    tanh_log_det,
)


@dataclass(frozen=True)
class _Constants:
    """The plan's arrays as tensors of one device and dtype (they never change: the plan is frozen)."""

    log_std_low: float
    log_std_high: float
    clip_low: torch.Tensor
    clip_high: torch.Tensor
    squash_center: torch.Tensor
    squash_scale: torch.Tensor
    log_scale: torch.Tensor
    log_density_offset: torch.Tensor
    """``-log(sqrt(2 pi))`` as a 0-d tensor (cheaper to subtract than a Python number)."""
    entropy_constant: torch.Tensor
    """``1/2 + log(sqrt(2 pi))`` as a 0-d tensor."""

    @classmethod
    def of(cls, plan: GaussianPlan, like: torch.Tensor) -> _Constants:
        return _constants(plan, like.device, like.dtype)


@functools.lru_cache(maxsize=64)
def _constants(plan: GaussianPlan, device: torch.device, dtype: torch.dtype) -> _Constants:
    """Built once per plan, device and dtype; never returned to a caller, only read by ``act()``'s ops.

    Built outside any ``torch.inference_mode()``: inference tensors could not be saved for the
    backward pass of a later call that records a graph.
    """

    def tensor(values: Any) -> torch.Tensor:
        return torch.as_tensor(values, device=device, dtype=dtype)

    with torch.inference_mode(False):
        return _Constants(
            log_std_low=max(plan.min_log_std, log_std_floor(str(dtype).removeprefix("torch."))),
            log_std_high=plan.max_log_std,
            clip_low=tensor(plan.clip.low),
            clip_high=tensor(plan.clip.high),
            squash_center=tensor(plan.squash_center),
            squash_scale=tensor(plan.squash_scale),
            log_scale=tensor(np.log(plan.squash_scale)),
            log_density_offset=tensor(-LOG_SQRT_2PI),
            entropy_constant=tensor(0.5 + LOG_SQRT_2PI),
        )


def _network_outputs(
    model: Any, inputs: Mapping[str, Any], role: str
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Run ``compute`` and check its outputs' keys, shapes and (optionally) values."""
    model.check_inputs(inputs)
    mean_actions, outputs = model.compute(inputs, role)
    outputs = dict(outputs)
    log_std = log_std_output(outputs, role)
    check_output_shapes(mean_actions.shape, log_std.shape, model.num_actions)
    if model._gaussian.plan.spec.check_finite:
        check_finite_flags((bool(torch.isfinite(value).all()) for value in (mean_actions, log_std)), role)
    return mean_actions, log_std, outputs


def _squashed(
    mean: torch.Tensor,
    log_std: torch.Tensor,
    noise: torch.Tensor,
    pre_tanh: torch.Tensor,
    *,
    taken: torch.Tensor | None,
    k: _Constants,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squashed actions and the exact log-density of the scored (sampled or taken) action."""
    actions = torch.addcmul(k.squash_center, k.squash_scale, torch.tanh(pre_tanh))
    if taken is None:
        gaussian = standard_log_prob(noise, log_std, k.log_density_offset)
        scored = pre_tanh
    else:
        eps = torch.finfo(taken.dtype).eps
        scored = torch.atanh(torch.clamp((taken - k.squash_center) / k.squash_scale, -1.0 + eps, 1.0 - eps))
        gaussian = gaussian_log_prob(scored, mean, log_std)
    return actions, gaussian - tanh_log_det(scored) - k.log_scale


def gaussian_head(
    mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor, taken: torch.Tensor | None, plan: GaussianPlan
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
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
    k = _Constants.of(plan, mean)
    log_std = torch.clamp(log_std, k.log_std_low, k.log_std_high)
    if plan.spec.clip_mean_actions:
        mean = torch.clamp(mean, k.clip_low, k.clip_high)
    stddev = torch.exp(log_std)
    pre_tanh = torch.addcmul(mean, stddev, noise)
    extra: dict[str, torch.Tensor] = {}
    if plan.squash != "none":
        actions, log_prob = _squashed(mean, log_std, noise, pre_tanh, taken=taken, k=k)
        extra = {"mean_actions": torch.addcmul(k.squash_center, k.squash_scale, torch.tanh(mean)), "pre_tanh": pre_tanh}
    else:
        actions = torch.clamp(pre_tanh, k.clip_low, k.clip_high) if plan.spec.clip_actions else pre_tanh
        if taken is None and not plan.spec.clip_actions:
            log_prob = standard_log_prob(noise, log_std, k.log_density_offset)  # the sample's z is the noise
        else:
            log_prob = gaussian_log_prob(actions if taken is None else taken, mean, log_std)
        extra = {"mean_actions": mean}
    log_prob = reduce_log_prob(log_prob, plan.spec.reduction)
    return actions, {"log_prob": log_prob, "log_std": log_std, "stddev": stddev, **extra}


@dataclass
class _LastCall:
    """What ``get_entropy``, ``distribution`` and ``get_kl_divergence`` describe: the last ``act()``'s Gaussian."""

    mean: torch.Tensor
    """The Gaussian's mean (after ``clip_mean_actions``, before any squash), (N, A)."""
    log_std: torch.Tensor
    stddev: torch.Tensor
    pre_tanh: torch.Tensor | None
    k: _Constants


@dataclass
class _GaussianState:
    """Everything ``GaussianMixin`` keeps: the plan and the last call's distribution."""

    plan: GaussianPlan
    last: _LastCall | None = field(default=None)


class GaussianMixin(GaussianOptions):
    """Turns a ``Model`` whose ``compute`` returns ``mean_actions, {"log_std": ...}`` into a Gaussian policy.

    The options are those of :class:`gaussrl.core.mixin.GaussianOptions`, the same on every backend.
    """

    _gaussian: _GaussianState
    _generator: torch.Generator | None

    def _init_gaussian(self, plan: GaussianPlan) -> None:
        """Store the state for ``plan``.

        Args:
            plan: The resolved options.
        """
        self._gaussian = _GaussianState(plan)

    def act(self, inputs: Mapping[str, Any], *, role: str = "") -> tuple[torch.Tensor, dict[str, Any]]:
        """Sample actions by reparameterization and score them (or ``inputs["taken_actions"]``).

        Args:
            inputs: Model inputs: ``"observations"``, ``"states"``, and optionally ``"taken_actions"``.
            role: Role played by the model, passed to ``compute``.

        Returns:
            Actions (N, A) and ``outputs`` with ``"log_prob"`` ((N, 1); (N, A) for ``"none"``),
            ``"log_std"`` (after clamping) and ``"mean_actions"`` (after ``clip_mean_actions``;
            squashed when squashing), plus whatever ``compute`` returned.
        """
        state = self._gaussian
        mean, log_std, outputs = _network_outputs(self, inputs, role)
        noise = torch.randn_like(mean) if self._generator is None else standard_normal(mean, self._generator)
        actions, head = gaussian_head(mean, log_std, noise, inputs.get("taken_actions"), state.plan)
        squash = state.plan.squash != "none"
        state.last = _LastCall(
            mean=mean if squash else head["mean_actions"],
            log_std=head["log_std"],
            stddev=head["stddev"],
            pre_tanh=head.get("pre_tanh"),
            k=_Constants.of(state.plan, mean),
        )
        outputs.update(log_prob=head["log_prob"], log_std=head["log_std"], mean_actions=head["mean_actions"])
        return actions, outputs

    def _last_call(self, method: str) -> _LastCall:
        last = self._gaussian.last
        if last is None:
            raise not_ready_error(method)
        return last

    def get_entropy(self, *, role: str = "") -> torch.Tensor:
        """Per-dimension entropy of the distribution of the last ``act()`` call.

        With ``squash_actions`` it is a single-sample estimate of the squashed policy's entropy:
        the base Gaussian's closed form plus ``log|da/du|`` at the last sample (unbiased, since
        ``H(a) = H(u) + E[log|da/du|]``).

        Args:
            role: Role played by the model.

        Returns:
            Shape (N, A), a new tensor.

        Raises:
            NotReadyError: If ``act()`` has not been called.
        """
        last = self._last_call("get_entropy")
        entropy = gaussian_entropy(last.log_std, last.k.entropy_constant)
        if last.pre_tanh is not None:
            return entropy + tanh_log_det(last.pre_tanh) + last.k.log_scale
        return entropy.expand_as(last.mean)

    def distribution(self, *, role: str = "") -> torch.distributions.Normal:
        """The ``torch.distributions.Normal`` of the last ``act()`` call (before any squash).

        Args:
            role: Role played by the model.

        Returns:
            A Normal built with ``validate_args=False`` (the process-wide default is left alone).

        Raises:
            NotReadyError: If ``act()`` has not been called.
        """
        last = self._last_call("distribution")
        return torch.distributions.Normal(last.mean, last.stddev.expand_as(last.mean), validate_args=False)

    def get_kl_divergence(self, mean_actions: torch.Tensor, log_std: torch.Tensor, *, role: str = "") -> torch.Tensor:
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
        last = self._last_call("get_kl_divergence")
        return gaussian_kl(mean_actions, log_std, last.mean, last.log_std, self._gaussian.plan.spec.reduction)
