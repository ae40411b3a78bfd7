"""Gaussian (diagonal Normal) policies for PyTorch: pure functions and ``GaussianMixin``.

The formulas are those of :mod:`gaussrl.core.reference`, written for tensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from gaussrl.core.errors import (
    Mixin,
    NotReadyError,
    check_model_ready,
    log_std_shape_error,
    mean_shape_error,
    missing_log_std_error,
    non_finite_error,
)
from gaussrl.core.reference import LOG_2, LOG_SQRT_2PI, log_std_floor
from gaussrl.core.spec import GaussianPlan, GaussianSpec, Reduction, make_plan


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Per-dimension log-density of a diagonal Normal.

    Args:
        x: Points, shape (N, A).
        mean: Shape (N, A).
        log_std: Shape (A,) or (N, A).

    Returns:
        Shape (N, A).
    """
    z = (x - mean) * torch.exp(-log_std)
    return -0.5 * z * z - log_std - LOG_SQRT_2PI


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """Per-dimension entropy ``1/2 + log(sqrt(2 pi)) + log_std``.

    Args:
        log_std: Any shape.

    Returns:
        Same shape.
    """
    return log_std + (0.5 + LOG_SQRT_2PI)


def tanh_log_det(pre_tanh: torch.Tensor) -> torch.Tensor:
    """``log(1 - tanh(u)^2)`` as ``2 (log 2 - u - softplus(-2u))``, finite for any finite ``u``.

    Args:
        pre_tanh: Any shape.

    Returns:
        Same shape.
    """
    return 2.0 * (LOG_2 - pre_tanh - F.softplus(-2.0 * pre_tanh))


def reduce_log_prob(log_prob: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    """Reduce per-dimension log-densities over the last axis, keeping it.

    Compatibility: ``"prod"`` multiplies the per-dimension log-densities, as the
    specification's backends do.

    Args:
        log_prob: Shape (N, A).
        reduction: One of ``"mean"``, ``"sum"``, ``"prod"``, ``"none"``.

    Returns:
        Shape (N, 1), or (N, A) for ``"none"``.
    """
    if reduction == "sum":
        return log_prob.sum(-1, keepdim=True)
    if reduction == "none":
        return log_prob
    if reduction == "mean":
        return log_prob.mean(-1, keepdim=True)
    return log_prob.prod(-1, keepdim=True)


def gaussian_kl(
    mean_p: torch.Tensor,
    log_std_p: torch.Tensor,
    mean_q: torch.Tensor,
    log_std_q: torch.Tensor,
    reduction: Reduction = "sum",
) -> torch.Tensor:
    """Exact KL(p || q) between diagonal Normals, reduced like the log-prob.

    Squashing both with the same tanh map leaves the KL unchanged (it is a bijection).

    Args:
        mean_p: Shape (N, A).
        log_std_p: Shape (A,) or (N, A).
        mean_q: Shape (N, A).
        log_std_q: Shape (A,) or (N, A).
        reduction: As for the log-prob.

    Returns:
        Shape (N, 1), or (N, A) for ``"none"``.
    """
    ratio = torch.exp(2.0 * (log_std_p - log_std_q))
    delta = (mean_p - mean_q) * torch.exp(-log_std_q)
    return reduce_log_prob(log_std_q - log_std_p + 0.5 * (ratio + delta * delta) - 0.5, reduction)


@dataclass
class _Constants:
    """The plan's arrays as tensors of one device and dtype."""

    log_std_low: float
    log_std_high: float
    clip_low: torch.Tensor
    clip_high: torch.Tensor
    squash_center: torch.Tensor
    squash_scale: torch.Tensor
    log_scale: torch.Tensor


@dataclass
class _GaussianState:
    """Everything ``GaussianMixin`` keeps: the plan, tensor constants, and the last call."""

    plan: GaussianPlan
    constants: dict[tuple[torch.device, torch.dtype], _Constants] = field(default_factory=dict)
    last: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None

    def tensors(self, like: torch.Tensor) -> _Constants:
        key = (like.device, like.dtype)
        found = self.constants.get(key)
        if found is None:
            plan = self.plan

            def tensor(values: Any) -> torch.Tensor:
                return torch.as_tensor(values, device=like.device, dtype=like.dtype)

            floor = log_std_floor(str(like.dtype).removeprefix("torch."))
            found = _Constants(
                log_std_low=max(plan.min_log_std, floor),
                log_std_high=plan.max_log_std,
                clip_low=tensor(plan.clip.low),
                clip_high=tensor(plan.clip.high),
                squash_center=tensor(plan.squash_center),
                squash_scale=tensor(plan.squash_scale),
                log_scale=tensor(plan.squash_scale).log(),
            )
            self.constants[key] = found
        return found


class GaussianMixin(Mixin):
    """Turns a ``Model`` whose ``compute`` returns ``mean_actions, {"log_std": ...}`` into a Gaussian policy.

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
        check_finite: Raise if ``compute()`` returns NaN or infinity.

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

    def _network_outputs(
        self, inputs: Mapping[str, Any], role: str
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        self.check_inputs(inputs)
        mean_actions, outputs = self.compute(inputs, role)
        log_std = outputs.get("log_std")
        if log_std is None:
            raise missing_log_std_error(role, list(outputs))
        num_actions = self._gaussian.plan.num_actions
        if log_std.shape[-1] != num_actions:
            raise log_std_shape_error(log_std.shape, num_actions)
        if mean_actions.shape[-1] != num_actions:
            raise mean_shape_error(mean_actions.shape, num_actions)
        if self._gaussian.plan.spec.check_finite:
            for name, value in (("mean_actions", mean_actions), ("log_std", log_std)):
                if not torch.isfinite(value).all():
                    raise non_finite_error(name, role)
        return mean_actions, log_std, outputs

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
        mean, log_std, outputs = self._network_outputs(inputs, role)
        state = self._gaussian
        plan, k = state.plan, state.tensors(mean)
        log_std = log_std.clamp(k.log_std_low, k.log_std_high)
        if plan.spec.clip_mean_actions:
            mean = torch.clamp(mean, k.clip_low, k.clip_high)
        noise = torch.randn_like(mean)
        pre_tanh = torch.addcmul(mean, log_std.exp(), noise)
        taken = inputs.get("taken_actions")
        if plan.squash != "none":
            actions, log_prob = self._squashed(mean, log_std, noise, pre_tanh, taken=taken, k=k)
            outputs["mean_actions"] = k.squash_center + k.squash_scale * torch.tanh(mean)
        else:
            actions = torch.clamp(pre_tanh, k.clip_low, k.clip_high) if plan.spec.clip_actions else pre_tanh
            if taken is None and not plan.spec.clip_actions:
                log_prob = -0.5 * noise * noise - log_std - LOG_SQRT_2PI
            else:
                log_prob = gaussian_log_prob(actions if taken is None else taken, mean, log_std)
            outputs["mean_actions"] = mean
        state.last = (mean, log_std, pre_tanh if plan.squash != "none" else None)
        outputs["log_prob"] = reduce_log_prob(log_prob, plan.spec.reduction)
        outputs["log_std"] = log_std
        return actions, outputs

    def _squashed(
        self,
        mean: torch.Tensor,
        log_std: torch.Tensor,
        noise: torch.Tensor,
        pre_tanh: torch.Tensor,
        *,
        taken: torch.Tensor | None,
        k: _Constants,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        actions = k.squash_center + k.squash_scale * torch.tanh(pre_tanh)
        if taken is None:
            gaussian = -0.5 * noise * noise - log_std - LOG_SQRT_2PI
            scored = pre_tanh
        else:
            eps = torch.finfo(taken.dtype).eps
            scored = torch.atanh(((taken - k.squash_center) / k.squash_scale).clamp(-1.0 + eps, 1.0 - eps))
            gaussian = gaussian_log_prob(scored, mean, log_std)
        return actions, gaussian - tanh_log_det(scored) - k.log_scale

    def _last_call(self, method: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if self._gaussian.last is None:
            raise NotReadyError(
                f"{method}() was called before any act(); it describes the distribution of the last act() "
                f"call. Call policy.act(inputs, role=...) first."
            )
        return self._gaussian.last

    def get_entropy(self, *, role: str = "") -> torch.Tensor:
        """Per-dimension entropy of the distribution of the last ``act()`` call.

        With ``squash_actions`` it is a single-sample estimate of the squashed policy's entropy:
        the base Gaussian's closed form plus ``log|da/du|`` at the last sample (unbiased, since
        ``H(a) = H(u) + E[log|da/du|]``).

        Args:
            role: Role played by the model.

        Returns:
            Shape (N, A).

        Raises:
            NotReadyError: If ``act()`` has not been called.
        """
        mean, log_std, pre_tanh = self._last_call("get_entropy")
        entropy = gaussian_entropy(log_std)
        if pre_tanh is not None:
            return entropy + tanh_log_det(pre_tanh) + self._gaussian.tensors(mean).log_scale
        return entropy.expand_as(mean)

    def distribution(self, *, role: str = "") -> torch.distributions.Normal:
        """The ``torch.distributions.Normal`` of the last ``act()`` call (before any squash).

        Args:
            role: Role played by the model.

        Returns:
            A Normal built with ``validate_args=False`` (the process-wide default is left alone).

        Raises:
            NotReadyError: If ``act()`` has not been called.
        """
        mean, log_std, _ = self._last_call("distribution")
        return torch.distributions.Normal(mean, log_std.exp().expand_as(mean), validate_args=False)

    def get_kl_divergence(self, mean_actions: torch.Tensor, log_std: torch.Tensor, *, role: str = "") -> torch.Tensor:
        """Exact KL(given || last ``act()`` distribution), reduced with the model's reduction.

        Args:
            mean_actions: Mean of the other distribution before any squash, shape (N, A).
            log_std: Its log-std, shape (A,) or (N, A).
            role: Role played by the model.

        Returns:
            Shape (N, 1), or (N, A) for ``"none"``.
        """
        mean, current_log_std, _ = self._last_call("get_kl_divergence")
        return gaussian_kl(mean_actions, log_std, mean, current_log_std, self._gaussian.plan.spec.reduction)
