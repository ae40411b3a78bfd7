"""Gaussian (diagonal Normal) policies for PyTorch: ``GaussianMixin``.

The formulas are those of :mod:`gaussrl.core.reference`, as tensor functions in
:mod:`gaussrl.models.torch.functional`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from gaussrl.core.errors import (
    Mixin,
    NotReadyError,
    check_model_ready,
    log_std_shape_error,
    mean_shape_error,
    missing_log_std_error,
    non_finite_error,
)
from gaussrl.core.reference import LOG_SQRT_2PI, log_std_floor
from gaussrl.core.spec import GaussianPlan, GaussianSpec, Reduction, make_plan
from gaussrl.models.torch.functional import (
    gaussian_entropy,
    gaussian_kl,
    reduce_log_prob,
    tanh_log_det,
    weighted_sum,
)


@dataclass
class _Constants:
    """The plan's arrays as tensors of one device and dtype."""

    log_std_bounds: tuple[torch.Tensor, ...]
    """The log-std bounds as 0-d tensors: the same values and (inclusive) gradient mask as float
    bounds, but a cheaper clamp, and a cheaper backward node (float bounds are re-wrapped as tensors
    on every backward)."""
    clip_low: torch.Tensor
    clip_high: torch.Tensor
    squash_center: torch.Tensor
    squash_scale: torch.Tensor
    log_scale: torch.Tensor
    entropy_offset: torch.Tensor
    """``1/2 + log(sqrt(2 pi))`` of shape (1, 1): entropy = log_std + offset."""
    reduce: _Reduce | None
    """For "sum" and "mean"; None for "prod" and "none"."""


@dataclass
class _Reduce:
    """Terms that reduce the log-density over the action axis in one matrix product.

    ``log_prob = bias + (log_std + z^2/2) @ weights``, and with the log-std's part precomputed,
    ``log_prob = (bias + log_std @ weights) + z^2 @ half_weights``.
    """

    bias: torch.Tensor
    """(1,): ``-log(sqrt(2 pi))`` summed (or averaged) over the action axis."""
    weights: torch.Tensor
    """(A, 1): -1 ("sum") or -1/A ("mean")."""
    half_weights: torch.Tensor
    """(A, 1): ``weights / 2``."""

    @classmethod
    def of(cls, plan: GaussianPlan, like: torch.Tensor) -> _Reduce | None:
        reduction, a = plan.spec.reduction, plan.num_actions
        if reduction not in ("sum", "mean"):
            return None
        per_dim = 1.0 if reduction == "sum" else 1.0 / a
        bias = torch.full((1,), -LOG_SQRT_2PI * a * per_dim, device=like.device, dtype=like.dtype)
        weights = torch.full((a, 1), -per_dim, device=like.device, dtype=like.dtype)
        return cls(bias, weights, weights * 0.5)


@dataclass
class _Scale:
    """A clamped log-std and the terms derived from it, each computed on first use."""

    log_std: torch.Tensor
    source: torch.Tensor | None = None
    version: int = -1
    data_ptr: int = 0
    _std: torch.Tensor | None = None
    _normaliser: torch.Tensor | None = None
    _entropy: torch.Tensor | None = None
    _entropy_view: torch.Tensor | None = None
    _reduced: torch.Tensor | None = None

    @property
    def std(self) -> torch.Tensor:
        if self._std is None:
            self._std = self.log_std.exp()
        return self._std

    @property
    def normaliser(self) -> torch.Tensor:
        """``-log_std - log(sqrt(2 pi))``, so that ``log N(x) = normaliser - z^2 / 2``."""
        if self._normaliser is None:
            self._normaliser = torch.rsub(self.log_std, -LOG_SQRT_2PI)
        return self._normaliser

    @property
    def entropy(self) -> torch.Tensor:
        if self._entropy is None:
            self._entropy = gaussian_entropy(self.log_std)
        return self._entropy

    def reduced_normaliser(self, reduce: _Reduce) -> torch.Tensor:
        """``bias + log_std @ weights``: the log-std's part of the reduced log-prob, (1,) or (N, 1)."""
        if self._reduced is None:
            self._reduced = weighted_sum(reduce.bias, self.log_std, reduce.weights)
        return self._reduced

    def entropy_like(self, mean: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """The per-dimension entropy broadcast to the shape of ``mean``.

        On a graph it is one broadcasting add (one autograd node, not an add and an expand);
        without one, the expanded view of the cached entropy is kept for the next call.
        """
        if self.log_std.requires_grad:
            return torch.add(offset.expand_as(mean), self.log_std)
        view = self._entropy_view
        if view is None or view.shape != mean.shape:
            view = self._entropy_view = self.entropy.expand_as(mean)
        return view

    def unchanged(self, raw: torch.Tensor) -> bool:
        """True when ``raw`` is this scale's source, untouched since (torch's version counter)."""
        return self.source is raw and self.version == raw._version and self.data_ptr == raw.data_ptr()


@dataclass
class _GaussianState:
    """Everything ``GaussianMixin`` keeps: the plan, tensor constants, and the last call."""

    plan: GaussianPlan
    constants: dict[tuple[torch.device, torch.dtype], _Constants] = field(default_factory=dict)
    last: tuple[torch.Tensor, _Scale, torch.Tensor | None, _Constants] | None = None
    """The last act() call's mean, scale, pre-tanh sample (None unless squashing) and constants."""
    scale: _Scale | None = None
    """Reused while its source tensor is unchanged and no autograd graph is being built."""

    def __post_init__(self) -> None:
        # Flat copies of what act() reads on every call (attribute chains cost a batch-1 call ~1 us).
        spec = self.plan.spec
        self.num_actions, self.reduction = self.plan.num_actions, spec.reduction
        self.clip_actions, self.clip_mean, self.check_finite = (
            spec.clip_actions,
            spec.clip_mean_actions,
            spec.check_finite,
        )
        self.squash = self.plan.squash != "none"

    def scale_of(self, raw: torch.Tensor, k: _Constants) -> _Scale:
        """The clamped log-std and its derived terms, computed once per distinct log-std.

        A state-independent log-std (a parameter) is the same tensor on every rollout call; its
        terms are reused while torch's version counter and data pointer say it is unchanged.
        In-place writes through ``.data`` bypass the version counter: write under
        ``torch.no_grad()`` instead (as optimizers, ``load_state_dict`` and ``update_parameters`` do).
        """
        if raw.requires_grad and torch.is_grad_enabled():
            self.scale = None
            return _Scale(torch.clamp(raw, *k.log_std_bounds))
        if self.scale is not None and self.scale.unchanged(raw):
            return self.scale
        scale = _Scale(torch.clamp(raw, *k.log_std_bounds), raw, raw._version, raw.data_ptr())
        self.scale = None if raw.dim() != 1 else scale
        return scale

    def tensors(self, like: torch.Tensor) -> _Constants:
        key = (like.device, like.dtype)
        found = self.constants.get(key)
        if found is None:
            plan = self.plan
            low, high, center, scale = (
                torch.as_tensor(values, device=like.device, dtype=like.dtype)
                for values in (plan.clip.low, plan.clip.high, plan.squash_center, plan.squash_scale)
            )
            floor = log_std_floor(str(like.dtype).removeprefix("torch."))
            offset = torch.full((1, 1), 0.5 + LOG_SQRT_2PI, device=like.device, dtype=like.dtype)
            bounds = (max(plan.min_log_std, floor), plan.max_log_std)
            log_std_bounds = torch.tensor(bounds, device=like.device, dtype=like.dtype).unbind()
            found = _Constants(
                log_std_bounds, low, high, center, scale, scale.log(), offset, _Reduce.of(plan, like),
            )  # fmt: skip
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
        num_actions = self._gaussian.num_actions
        if log_std.shape[-1] != num_actions:
            raise log_std_shape_error(log_std.shape, num_actions)
        if mean_actions.shape[-1] != num_actions:
            raise mean_shape_error(mean_actions.shape, num_actions)
        if self._gaussian.check_finite:
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
        mean, raw_log_std, outputs = self._network_outputs(inputs, role)
        state = self._gaussian
        k = state.tensors(mean)
        if state.clip_mean:
            mean = torch.clamp(mean, k.clip_low, k.clip_high)
        noise = torch.randn_like(mean)
        scale = state.scale_of(raw_log_std, k)
        # Positional calls: keyword arguments cost a batch-1 call measurably.
        if state.squash:
            actions, log_prob, pre_tanh = self._squashed(mean, scale, noise, inputs.get("taken_actions"), k)
            outputs["mean_actions"] = self._squash(mean, k)
            state.last = (mean, scale, pre_tanh, k)
        else:
            actions, log_prob = self._gaussian_head(mean, scale, noise, inputs.get("taken_actions"), k)
            outputs["mean_actions"] = mean
            state.last = (mean, scale, None, k)
        outputs["log_prob"] = log_prob
        outputs["log_std"] = scale.log_std
        return actions, outputs

    def _gaussian_head(
        self,
        mean: torch.Tensor,
        scale: _Scale,
        noise: torch.Tensor,
        taken: torch.Tensor | None,
        k: _Constants,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        state = self._gaussian
        sample = torch.addcmul(mean, scale.std, noise)
        actions = torch.clamp(sample, k.clip_low, k.clip_high) if state.clip_actions else sample
        scored = actions if taken is None else taken
        # The unclipped fresh sample's z is the standard-normal draw itself: no subtraction, no division.
        z = noise if scored is sample else (scored - mean) / scale.std
        if k.reduce is None:
            return actions, reduce_log_prob(torch.addcmul(scale.normaliser, z, z, value=-0.5), state.reduction)
        if scale.log_std.requires_grad:
            # log N = -(log_std + z^2/2) - log(sqrt(2 pi)): two autograd nodes.
            return actions, weighted_sum(k.reduce.bias, torch.addcmul(scale.log_std, z, z, value=0.5), k.reduce.weights)
        # No graph: the log-std's part is kept with the (reused) scale; z^2 and one matrix product remain.
        return actions, weighted_sum(scale.reduced_normaliser(k.reduce), z * z, k.reduce.half_weights)

    @staticmethod
    def _squash(values: torch.Tensor, k: _Constants) -> torch.Tensor:
        return torch.addcmul(k.squash_center, k.squash_scale, torch.tanh(values))

    def _squashed(
        self,
        mean: torch.Tensor,
        scale: _Scale,
        noise: torch.Tensor,
        taken: torch.Tensor | None,
        k: _Constants,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Squashed actions, their log-prob, and the pre-tanh sample."""
        sample = torch.addcmul(mean, scale.std, noise)
        actions = self._squash(sample, k)
        if taken is None:
            pre_tanh, z = sample, noise
        else:
            eps = torch.finfo(taken.dtype).eps
            pre_tanh = torch.atanh(((taken - k.squash_center) / k.squash_scale).clamp(-1.0 + eps, 1.0 - eps))
            z = (pre_tanh - mean) / scale.std
        log_prob = torch.addcmul(scale.normaliser, z, z, value=-0.5) - tanh_log_det(pre_tanh) - k.log_scale
        return actions, reduce_log_prob(log_prob, self._gaussian.reduction), sample

    def _last_call(self, method: str) -> tuple[torch.Tensor, _Scale, torch.Tensor | None, _Constants]:
        last = self._gaussian.last
        if last is None:
            raise NotReadyError(
                f"{method}() was called before any act(); it describes the distribution of the last act() "
                f"call. Call policy.act(inputs, role=...) first."
            )
        return last

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
        mean, scale, pre_tanh, k = self._last_call("get_entropy")
        if pre_tanh is not None:
            return scale.entropy + tanh_log_det(pre_tanh) + k.log_scale
        return scale.entropy_like(mean, k.entropy_offset)

    def distribution(self, *, role: str = "") -> torch.distributions.Normal:
        """The ``torch.distributions.Normal`` of the last ``act()`` call (before any squash).

        Args:
            role: Role played by the model.

        Returns:
            A Normal built with ``validate_args=False`` (the process-wide default is left alone).

        Raises:
            NotReadyError: If ``act()`` has not been called.
        """
        mean, scale, _, _ = self._last_call("distribution")
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
        mean, scale, _, _ = self._last_call("get_kl_divergence")
        return gaussian_kl(mean_actions, log_std, mean, scale.log_std, self._gaussian.plan.spec.reduction)
