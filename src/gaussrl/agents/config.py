"""Agent configurations: one frozen, keyword-only, validated dataclass per agent, shared by every backend.

Field names follow skrl's agent configuration dicts where skrl has one (``rollouts``,
``learning_epochs``, ``mini_batches``, ``discount_factor``, ...). skrl's ``lambda`` is a Python
keyword, so it is ``gae_lambda`` here; skrl's ``state_preprocessor``/``value_preprocessor``
classes are the booleans ``observation_normalization``/``value_normalization``.
The command line (``gaussrl train --ppo.rollouts 512 ...``) is generated from these fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal

from gaussrl.core.errors import ConfigError, ConfigTypeError

Scheduler = Literal["constant", "kl_adaptive", "linear"]
Activation = Literal["tanh", "relu"]
Initialization = Literal["orthogonal", "uniform"]


def _default(config: object, name: str) -> str:
    """The fix an error message suggests: the field's default."""
    return f"(the default is {type(config).__dataclass_fields__[name].default!r})"  # type: ignore[attr-defined]


def check_positive_int(config: object, name: str) -> None:
    """Raise unless the field ``name`` of ``config`` is an int >= 1, not a bool (also ``TrainConfig``'s)."""
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer (1, 2, ...) {_default(config, name)}.")


def check_int_range(config: object, name: str, low: int, high: int, fix: str) -> None:
    """Raise unless the field ``name`` is an int in ``[low, high]`` (not a bool); ``fix`` ends the message.

    Args:
        config: The configuration dataclass.
        name: The field.
        low: Smallest accepted value.
        high: Largest accepted value.
        fix: How to choose a valid value, for the message.

    Raises:
        ConfigError: If the value is outside the range or not an integer.
    """
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        option = "--" + name.replace("_", "-")
        raise ConfigError(f"{name}={value!r} ({option}) must be an integer in [{low}, {high}]; {fix}.")


def _check_range(config: object, name: str, low: float, high: float, *, closed: str = "[]") -> None:
    """Raise unless the field lies in the interval; ``closed`` gives the brackets, e.g. ``"(]"``."""
    value = getattr(config, name)
    finite = isinstance(value, int | float) and math.isfinite(value)
    above = finite and (value >= low if closed[0] == "[" else value > low)
    below = finite and (value <= high if closed[1] == "]" else value < high)
    if not (above and below):
        raise ConfigError(
            f"{name}={value!r} is outside {closed[0]}{low}, {high}{closed[1]}; choose a value in that range "
            f"{_default(config, name)}."
        )


def _check_sizes(name: str, sizes: tuple[int, ...]) -> None:
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ConfigError(f"{name}={sizes!r} must be a non-empty sequence of positive layer widths, e.g. (64, 64).")


def _check_flags(config: object) -> None:
    for item in fields(config):  # type: ignore[arg-type]
        value = getattr(config, item.name)
        if item.type == "bool" and not isinstance(value, bool):
            raise ConfigTypeError(f"{item.name}={value!r} must be True or False.")


@dataclass(frozen=True, kw_only=True)
class PPOConfig:
    """Proximal Policy Optimization (Schulman et al., 2017) with GAE (Schulman et al., 2016)."""

    rollouts: int = 512
    """Environment steps per environment collected before each update."""
    learning_epochs: int = 10
    """Passes over the collected rollout per update."""
    mini_batches: int = 16
    """Minibatches each pass is split into."""
    discount_factor: float = 0.99
    """Discount gamma in [0, 1]. ``gaussrl train`` presets 0.95 for Pendulum-v1 (see trainer/presets.py)."""
    gae_lambda: float = 0.95
    """GAE lambda in [0, 1] (skrl: ``lambda``)."""
    learning_rate: float = 1e-3
    """Initial Adam learning rate."""
    learning_rate_scheduler: Scheduler = "kl_adaptive"
    """"kl_adaptive" keeps the exact Gaussian KL near kl_adaptive_threshold; "linear" decays it towards 0."""
    kl_adaptive_threshold: float = 0.008
    """Target KL of the adaptive learning rate (skrl's KLAdaptiveLR ``kl_threshold``, same default)."""
    grad_norm_clip: float = 0.5
    """Global gradient-norm clip; 0 disables it."""
    ratio_clip: float = 0.2
    """Surrogate clip range epsilon, in (0, 1)."""
    value_clip: float = 0.2
    """Clip range of predicted values when clip_predicted_values."""
    clip_predicted_values: bool = False
    """Clip the value loss around the rollout's values (PPO2-style)."""
    entropy_loss_scale: float = 0.0
    """Weight of the entropy bonus."""
    value_loss_scale: float = 0.5
    """Weight of the value loss."""
    kl_threshold: float = 0.0
    """Stop the update's epochs early once the mean KL exceeds this; 0 disables it."""
    observation_normalization: bool = True
    """Normalise observations with running mean/std (skrl: RunningStandardScaler state_preprocessor)."""
    value_normalization: bool = True
    """Learn values of normalised returns (skrl: RunningStandardScaler value_preprocessor)."""
    time_limit_bootstrap: bool = True
    """On truncation, add gamma * V(final observation) to the reward (bootstrap); never on termination."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before learning (skrl: rewards_shaper)."""
    reward_normalization: bool = False
    """Divide rewards (after reward_scale) by the running std of each environment's discounted return,
    clipped to +-10 (as SB3's VecNormalize): brings rewards of any scale (MuJoCo's are tens per step)
    to values the value network fits well."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy and value networks."""
    activation: Activation = "tanh"
    """Hidden activation of the policy and value networks: "tanh" or "relu"."""
    initialization: Initialization = "orthogonal"
    """Weights of the policy and value networks: "orthogonal" (gain sqrt(2) hidden, 0.01 policy output,
    1 value output; zero biases) or "uniform" (weights and biases uniform in +-1/sqrt(fan_in), the
    distribution of torch.nn.Linear's default; SB3's ``ortho_init=False``)."""
    initial_log_std: float = 0.0
    """Initial log-std of the policy, in units of the action range normalised to [-1, 1]."""
    rnn_hidden_size: int = 64
    """Hidden size of recurrent policies (--policy rnn|gru|lstm)."""
    rnn_num_layers: int = 1
    """Stacked recurrent layers."""
    sequence_length: int = 16
    """Length of the training sequences of recurrent policies; must divide rollouts."""

    def __post_init__(self) -> None:
        _check_flags(self)
        for name in ("rollouts", "learning_epochs", "mini_batches", "rnn_hidden_size", "rnn_num_layers"):
            check_positive_int(self, name)
        check_positive_int(self, "sequence_length")
        _check_range(self, "discount_factor", 0.0, 1.0)
        _check_range(self, "gae_lambda", 0.0, 1.0)
        _check_range(self, "learning_rate", 0.0, 1.0, closed="(]")
        _check_range(self, "ratio_clip", 0.0, 1.0, closed="()")
        for name in ("grad_norm_clip", "value_clip", "entropy_loss_scale", "value_loss_scale", "kl_threshold"):
            _check_range(self, name, 0.0, math.inf, closed="[)")
        _check_range(self, "kl_adaptive_threshold", 0.0, math.inf, closed="()")
        _check_range(self, "reward_scale", 0.0, math.inf, closed="()")
        _check_range(self, "initial_log_std", -20.0, 2.0)
        _check_sizes("hidden_sizes", self.hidden_sizes)
        if self.activation not in ("tanh", "relu"):
            raise ConfigError(f"activation={self.activation!r} must be 'tanh' or 'relu' (the default is 'tanh').")
        if self.initialization not in ("orthogonal", "uniform"):
            raise ConfigError(
                f"initialization={self.initialization!r} must be 'orthogonal' or 'uniform' (the default is "
                f"'orthogonal')."
            )
        if self.learning_rate_scheduler not in ("constant", "kl_adaptive", "linear"):
            raise ConfigError(
                f"learning_rate_scheduler={self.learning_rate_scheduler!r} must be 'constant', 'kl_adaptive' or "
                f"'linear'."
            )

    def check_batch(self, num_envs: int, recurrent: bool) -> None:
        """Check that a rollout of ``num_envs`` environments splits into ``mini_batches`` minibatches.

        Args:
            num_envs: Number of parallel environments.
            recurrent: Whether minibatches are made of whole sequences.

        Raises:
            ConfigError: If there are fewer samples (or sequences) than minibatches, or (recurrent)
                sequence_length does not divide rollouts.
        """
        if recurrent and self.rollouts % self.sequence_length:
            raise ConfigError(
                f"sequence_length={self.sequence_length} must divide rollouts={self.rollouts} so that each "
                f"rollout splits into whole sequences; e.g. use rollouts={self.sequence_length * 64}."
            )
        unit = self.sequence_length if recurrent else 1
        samples = self.rollouts * num_envs // unit
        if samples < self.mini_batches:
            what = "sequences" if recurrent else "samples"
            raise ConfigError(
                f"mini_batches={self.mini_batches} exceeds the {samples} {what} of one rollout "
                f"(rollouts={self.rollouts} x num_envs={num_envs}); lower mini_batches or raise rollouts."
            )


@dataclass(frozen=True, kw_only=True)
class SACConfig:
    """Soft Actor-Critic (Haarnoja et al., 2018) with automatic entropy tuning."""

    gradient_steps: int = 1
    """Gradient steps per environment step (per vector step)."""
    batch_size: int = 256
    """Replay samples per gradient step."""
    discount_factor: float = 0.99
    """Discount gamma in [0, 1]."""
    polyak: float = 0.005
    """Soft target update coefficient tau in (0, 1]."""
    actor_learning_rate: float = 1e-3
    """Adam learning rate of the policy."""
    critic_learning_rate: float = 1e-3
    """Adam learning rate of the twin Q critics."""
    learn_entropy: bool = True
    """Tune the entropy temperature alpha towards target_entropy."""
    entropy_learning_rate: float = 1e-3
    """Adam learning rate of log(alpha)."""
    initial_entropy_value: float = 1.0
    """Initial alpha (> 0)."""
    target_entropy: float | None = None
    """Target policy entropy; None gives -num_actions."""
    memory_size: int = 1_000_000
    """Replay buffer capacity in transitions (per environment)."""
    random_timesteps: int = 1000
    """Environment steps (in total) taken with uniform random actions before the policy acts."""
    learning_starts: int = 1000
    """Environment steps (in total) collected before the first gradient step."""
    grad_norm_clip: float = 0.0
    """Global gradient-norm clip; 0 disables it."""
    observation_normalization: bool = False
    """Normalise observations with running mean/std when sampling from replay."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before learning (skrl: rewards_shaper)."""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """Hidden layer widths of the policy and critics (SB3 uses 256x256, 3-4x slower on one CPU thread)."""

    def __post_init__(self) -> None:
        _check_flags(self)
        for name in ("gradient_steps", "batch_size", "memory_size"):
            check_positive_int(self, name)
        for name in ("random_timesteps", "learning_starts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name}={value!r} must be a non-negative integer.")
        _check_range(self, "discount_factor", 0.0, 1.0)
        _check_range(self, "polyak", 0.0, 1.0, closed="(]")
        for name in ("actor_learning_rate", "critic_learning_rate", "entropy_learning_rate"):
            _check_range(self, name, 0.0, 1.0, closed="(]")
        _check_range(self, "initial_entropy_value", 0.0, math.inf, closed="()")
        _check_range(self, "grad_norm_clip", 0.0, math.inf, closed="[)")
        _check_range(self, "reward_scale", 0.0, math.inf, closed="()")
        if self.target_entropy is not None and not math.isfinite(self.target_entropy):
            raise ConfigError(f"target_entropy={self.target_entropy!r} must be finite, or None for -num_actions.")
        _check_sizes("hidden_sizes", self.hidden_sizes)
        if self.batch_size > self.memory_size:
            raise ConfigError(
                f"batch_size={self.batch_size} exceeds memory_size={self.memory_size}; the replay buffer could "
                f"never fill one batch."
            )
