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
class _Scale:
    """Terms derived from one log-std tensor: clamped log-std, std, log-normaliser, entropy."""

    source: torch.Tensor
    version: int
    data_ptr: int
    log_std: torch.Tensor
    std: torch.Tensor
    normaliser: torch.Tensor
    """``-log_std - log(sqrt(2 pi))``, so that ``log N(x) = normaliser - z^2 / 2``."""
    _entropy: torch.Tensor | None = None

    @property
    def entropy(self) -> torch.Tensor:
        if self._entropy is None:
            self._entropy = gaussian_entropy(self.log_std)
        return self._entropy


@dataclass
class _GaussianState:
    """Everything ``GaussianMixin`` keeps: the plan, tensor constants, and the last call."""

    plan: GaussianPlan
    constants: dict[tuple[torch.device, torch.dtype], _Constants] = field(default_factory=dict)
    last: tuple[torch.Tensor, _Scale, torch.Tensor | None] | None = None
    scale: _Scale | None = None
    """Reused while its source tensor is unchanged and no autograd graph is being built."""

    def scale_of(self, raw: torch.Tensor, k: _Constants) -> _Scale:
        """The clamped log-std and its derived terms, computed once per distinct log-std.

        A state-independent log-std (a parameter) is the same tensor on every rollout call; its
        terms are reused while torch's version counter and data pointer say it is unchanged.
        In-place writes through ``.data`` bypass the version counter: write under
        ``torch.no_grad()`` instead (as optimizers, ``load_state_dict`` and ``update_parameters`` do).
        """
        cached = self.scale
        tracked = raw.requires_grad and torch.is_grad_enabled()
        if (
            cached is not None
            and cached.source is raw
            and not tracked
            and cached.version == raw._version
            and cached.data_ptr == raw.data_ptr()
        ):
            return cached
        log_std = raw.clamp(k.log_std_low, k.log_std_high)
        scale = _Scale(raw, raw._version, raw.data_ptr(), log_std, log_std.exp(), torch.rsub(log_std, -LOG_SQRT_2PI))
        self.scale = None if tracked or raw.dim() != 1 else scale
        return scale

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
        spec, k = state.plan.spec, state.tensors(mean)
        scale = state.scale_of(log_std, k)
        if spec.clip_mean_actions:
            mean = torch.clamp(mean, k.clip_low, k.clip_high)
        noise = torch.randn_like(mean)
        sample = torch.addcmul(mean, scale.std, noise)
        taken = inputs.get("taken_actions")
        if state.plan.squash != "none":
            actions, log_prob = self._squashed(mean, scale, noise, sample, taken=taken, k=k)
            outputs["mean_actions"] = torch.addcmul(k.squash_center, k.squash_scale, torch.tanh(mean))
        else:
            actions = torch.clamp(sample, k.clip_low, k.clip_high) if spec.clip_actions else sample
            scored = actions if taken is None else taken
            # For the unclipped fresh sample, z is the standard-normal draw itself: no subtraction, no division.
            z = noise if scored is sample else (scored - mean) / scale.std
            log_prob = torch.addcmul(scale.normaliser, z, z, value=-0.5)
            outputs["mean_actions"] = mean
        state.last = (mean, scale, sample if state.plan.squash != "none" else None)
        outputs["log_prob"] = reduce_log_prob(log_prob, spec.reduction)
        outputs["log_std"] = scale.log_std
        return actions, outputs

    def _squashed(
        self,
        mean: torch.Tensor,
        scale: _Scale,
        noise: torch.Tensor,
        sample: torch.Tensor,
        *,
        taken: torch.Tensor | None,
        k: _Constants,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        actions = torch.addcmul(k.squash_center, k.squash_scale, torch.tanh(sample))
        if taken is None:
            pre_tanh, z = sample, noise
        else:
            eps = torch.finfo(taken.dtype).eps
            pre_tanh = torch.atanh(((taken - k.squash_center) / k.squash_scale).clamp(-1.0 + eps, 1.0 - eps))
            z = (pre_tanh - mean) / scale.std
        log_prob = torch.addcmul(scale.normaliser, z, z, value=-0.5)
        return actions, log_prob - tanh_log_det(pre_tanh) - k.log_scale

    def _last_call(self, method: str) -> tuple[torch.Tensor, _Scale, torch.Tensor | None]:
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
        mean, scale, pre_tanh = self._last_call("get_entropy")
        if pre_tanh is not None:
            return scale.entropy + tanh_log_det(pre_tanh) + self._gaussian.tensors(mean).log_scale
        return scale.entropy.expand_as(mean)

    def distribution(self, *, role: str = "") -> torch.distributions.Normal:
        """The ``torch.distributions.Normal`` of the last ``act()`` call (before any squash).

        Args:
            role: Role played by the model.

        Returns:
            A Normal built with ``validate_args=False`` (the process-wide default is left alone).

        Raises:
            NotReadyError: If ``act()`` has not been called.
        """
        mean, scale, _ = self._last_call("distribution")
        return torch.distributions.Normal(mean, scale.std.expand_as(mean), validate_args=False)

    def get_kl_divergence(self, mean_actions: torch.Tensor, log_std: torch.Tensor, *, role: str = "") -> torch.Tensor:
        """Exact KL(given || last ``act()`` distribution), reduced with the model's reduction.

        Args:
            mean_actions: Mean of the other distribution before any squash, shape (N, A).
            log_std: Its log-std, shape (A,) or (N, A).
            role: Role played by the model.

        Returns:
            Shape (N, 1), or (N, A) for ``"none"``.
        """
        mean, scale, _ = self._last_call("get_kl_divergence")
        return gaussian_kl(mean_actions, log_std, mean, scale.log_std, self._gaussian.plan.spec.reduction)
