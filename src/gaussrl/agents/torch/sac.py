"""Soft Actor-Critic for PyTorch (Haarnoja et al., 2018, "SAC: Algorithms and Applications").

A tanh-squashed Gaussian policy (``GaussianMixin(squash_actions=True)``, exact log-density of
the squashed action), twin Q critics with Polyak-averaged targets, and automatic tuning of the
entropy temperature alpha towards a target entropy.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from gaussrl.agents.config import SACConfig
from gaussrl.agents.policy_arrays import PolicyArrays
from gaussrl.agents.torch.distributed import PendingAverage, World
from gaussrl.agents.torch.memory import TensorStore, policy_arrays
from gaussrl.agents.torch.optim import adam, clip_grad_norm, soft_update
from gaussrl.envs.gymnasium import Step
from gaussrl.models.torch import Model


class SAC:
    """SAC with a replay buffer; one gradient step per vector step by default.

    Args:
        policy: A squashed ``GaussianMixin`` model acting in the normalised action Box.
        critics: The two Q models.
        target_critics: Two Q models of the same architecture; overwritten with the critics' weights.
        config: Hyperparameters.
        num_envs: Number of parallel environments.
        world: The ranks of a data-parallel run (see ``agents.torch.distributed``); each keeps its own replay
            buffer. None: one process.
    """

    def __init__(
        self,
        *,
        policy: Model,
        critics: tuple[Model, Model],
        target_critics: tuple[Model, Model],
        config: SACConfig,
        num_envs: int,
        world: World | None = None,
    ) -> None:
        self.policy, self.critics, self.target_critics = policy, critics, target_critics
        self.config, self.num_envs, self.device = config, num_envs, policy.device
        self.world = World() if world is None else world
        for target, critic in zip(target_critics, critics, strict=True):
            target.update_parameters(critic, polyak=1.0)
            target.freeze_parameters(True)
        # Fused Adam: one kernel per step instead of several multi-tensor ones (see agents.torch.optim).
        self.policy_optimizer = adam(policy.parameters(), config.actor_learning_rate)
        self.critic_parameters = [p for critic in critics for p in critic.parameters()]
        self.target_parameters = [p for critic in target_critics for p in critic.parameters()]
        self.critic_optimizer = adam(self.critic_parameters, config.critic_learning_rate)
        self.log_entropy_coefficient = torch.tensor(
            math.log(config.initial_entropy_value), device=self.device, requires_grad=True
        )
        self.entropy_optimizer = adam([self.log_entropy_coefficient], config.entropy_learning_rate)
        num_obs, num_actions = policy.num_observations, policy.num_actions
        self.target_entropy = -float(num_actions) if config.target_entropy is None else config.target_entropy
        self.obs_scaler = self.world.scaler(num_obs, self.device) if config.observation_normalization else None
        f32 = torch.float32
        specs: dict[str, tuple[tuple[int, ...], torch.dtype]] = {
            "observations": ((num_obs,), f32),
            "actions": ((num_actions,), f32),
            "rewards": ((1,), f32),
            "next_observations": ((num_obs,), f32),
            "terminated": ((1,), f32),
        }
        self.memory = TensorStore(config.memory_size, num_envs, specs, self.device)
        self.timesteps = 0
        self._pending: dict[str, torch.Tensor] = {}

    def _normalize(self, observations: torch.Tensor) -> torch.Tensor:
        return observations if self.obs_scaler is None else self.obs_scaler.normalize(observations)

    @torch.no_grad()
    def act(self, observations: torch.Tensor) -> torch.Tensor:
        """Uniform random actions for the first ``random_timesteps`` steps, then policy samples.

        Args:
            observations: Shape (N, num_observations).

        Returns:
            Actions (N, A) in [-1, 1].
        """
        if self.timesteps < self.config.random_timesteps:
            actions = torch.rand((observations.shape[0], self.policy.num_actions), device=self.device) * 2.0 - 1.0
        else:
            actions, _ = self.policy.act({"observations": self._normalize(observations)}, role="policy")
        self._pending = {"observations": observations, "actions": actions}
        return actions

    @torch.no_grad()
    def observe(self, step: Step) -> dict[str, float]:
        """Store the transition of the last :meth:`act` and take the gradient steps that are due.

        Args:
            step: What the environment returned for those actions.

        Returns:
            Metrics of the last gradient step, or an empty dict.
        """
        observations = self._pending.pop("observations")
        self.memory.add(
            observations=observations,
            actions=self._pending.pop("actions"),
            rewards=step.rewards * self.config.reward_scale,
            next_observations=step.final_observations,
            terminated=step.terminated.to(torch.float32),
        )
        if self.obs_scaler is not None:
            self.obs_scaler.update(observations)
        self.timesteps += self.num_envs
        if self.timesteps < self.config.learning_starts:
            return {}
        self.world.sync(self.obs_scaler)
        metrics: dict[str, torch.Tensor] = {}
        with torch.enable_grad():
            for _ in range(self.config.gradient_steps):
                metrics = self.update()
        return {k: float(v) for k, v in metrics.items()}

    def _q(self, critics: tuple[Model, Model], x: torch.Tensor, actions: torch.Tensor) -> list[torch.Tensor]:
        return [critic.act({"observations": x, "taken_actions": actions}, role="critic")[0] for critic in critics]

    def _backward(
        self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, also: list[torch.Tensor]
    ) -> PendingAverage:
        """Backward, then start averaging over the ranks; ``also``: gradients set beforehand, averaged alongside."""
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        return self.world.start_gradient_average([*parameters, *also])  # one collective for both

    def _step(self, optimizer: torch.optim.Optimizer, pending: PendingAverage) -> None:
        """Finish the average of :meth:`_backward`, clip, step."""
        pending.wait()
        if self.config.grad_norm_clip > 0:
            clip_grad_norm([p for group in optimizer.param_groups for p in group["params"]], self.config.grad_norm_clip)
        optimizer.step()

    def _temperature_gradient(self, log_prob: torch.Tensor) -> list[torch.Tensor]:
        """Set the gradient of the temperature loss ``-mean(log_alpha * (log_prob + target_entropy))``.

        Its gradient, ``sum(-(log_prob + target_entropy) / N)``, is written directly rather than
        built by autograd on a one-parameter graph: the same float32 operations as autograd's
        backward (mean, then the product's reduction), for a fraction of the cost. It is set
        before the policy step so that the ranks average it with the policy's gradients.

        Returns:
            The temperature parameter in a list, or an empty list when it is not learned.
        """
        if not self.config.learn_entropy:
            return []
        terms = log_prob + self.target_entropy
        self.log_entropy_coefficient.grad = (terms * (-1.0 / terms.numel())).sum()
        return [self.log_entropy_coefficient]

    def _temperature_step(self, log_prob: torch.Tensor | None = None) -> None:
        """One step of the temperature.

        Args:
            log_prob: Set the gradient from these log-probabilities (:meth:`_temperature_gradient`) and
                average it over the ranks; None: it was already set and averaged with the policy's.
        """
        if log_prob is not None:
            self.world.average_gradients(self._temperature_gradient(log_prob))
        if self.config.grad_norm_clip > 0:
            clip_grad_norm([self.log_entropy_coefficient], self.config.grad_norm_clip)
        self.entropy_optimizer.step()

    def update(self) -> dict[str, torch.Tensor]:
        """One gradient step of the critics, the policy and the temperature; then the soft target update.

        Returns:
            Losses, the temperature alpha and the mean Q-value, as 0-d tensors.
        """
        batch = self.memory.sample(self.config.batch_size)
        x, next_x = self._normalize(batch["observations"]), self._normalize(batch["next_observations"])
        alpha = self.log_entropy_coefficient.detach().exp()
        with torch.no_grad():
            next_actions, outputs = self.policy.act({"observations": next_x}, role="policy")
            next_q = torch.min(*self._q(self.target_critics, next_x, next_actions)) - alpha * outputs["log_prob"]
            target = batch["rewards"] + self.config.discount_factor * (1.0 - batch["terminated"]) * next_q
        q1, q2 = self._q(self.critics, x, batch["actions"])
        critic_loss = (F.mse_loss(q1, target) + F.mse_loss(q2, target)) / 2.0
        pending = self._backward(self.critic_optimizer, critic_loss, [])
        # The policy's forward reads no critic: it runs while the critics' gradients travel between the ranks.
        actions, outputs = self.policy.act({"observations": x}, role="policy")
        self._step(self.critic_optimizer, pending)
        log_prob = outputs["log_prob"]
        # The policy loss differentiates through the critics' inputs only: their weight gradients are skipped.
        for parameter in self.critic_parameters:
            parameter.requires_grad_(False)
        q_new = torch.min(*self._q(self.critics, x, actions))
        policy_loss = (alpha * log_prob - q_new).mean()
        pending = self._backward(self.policy_optimizer, policy_loss, self._temperature_gradient(log_prob.detach()))
        for parameter in self.critic_parameters:
            parameter.requires_grad_(True)
        # The critics are stepped: the targets follow them while the policy's gradients travel.
        soft_update(self.target_parameters, self.critic_parameters, self.config.polyak)
        self._step(self.policy_optimizer, pending)
        if self.config.learn_entropy:
            self._temperature_step()
        return {
            "critic_loss": critic_loss.detach(),
            "policy_loss": policy_loss.detach(),
            "alpha": alpha,
            "q_value": q1.detach().mean(),
        }

    @torch.no_grad()
    def act_eval(
        self, observations: torch.Tensor, states: list[torch.Tensor], *, deterministic: bool = True
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Act for evaluation: the squashed mean, or a sample.

        Args:
            observations: Shape (N, num_observations).
            states: Unused (SAC's policies are feed-forward); returned as is.
            deterministic: Take ``tanh(mean)`` instead of a sample.

        Returns:
            Actions (N, A) and ``states``.
        """
        actions, outputs = self.policy.act({"observations": self._normalize(observations)}, role="policy")
        return (outputs["mean_actions"] if deterministic else actions), states

    def eval_states(self, batch: int) -> list[torch.Tensor]:
        """No hidden states: SAC's policies are feed-forward.

        Args:
            batch: Number of environments.

        Returns:
            An empty list.
        """
        return []

    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs, as nested dicts of tensors and JSON values.

        Returns:
            Models, optimizers, temperature, normaliser, replay buffer and counters.
        """
        return {
            "policy": self.policy.state_dict(),
            "critics": [c.state_dict() for c in self.critics],
            "target_critics": [c.state_dict() for c in self.target_critics],
            "policy_optimizer": self.policy_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "entropy_optimizer": self.entropy_optimizer.state_dict(),
            "log_entropy_coefficient": self.log_entropy_coefficient.detach(),
            "obs_scaler": self.obs_scaler.state() if self.obs_scaler else None,
            "memory": self.memory.state(),
            "timesteps": self.timesteps,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned.

        Args:
            state: As returned by :meth:`state`.
        """
        self.policy.load_state_dict(state["policy"])
        for models, key in ((self.critics, "critics"), (self.target_critics, "target_critics")):
            for model, saved in zip(models, state[key], strict=True):
                model.load_state_dict(saved)
        for name in ("policy_optimizer", "critic_optimizer", "entropy_optimizer"):
            getattr(self, name).load_state_dict(state[name])
        with torch.no_grad():
            self.log_entropy_coefficient.copy_(state["log_entropy_coefficient"])
        if self.obs_scaler is not None:
            self.obs_scaler.load_state(state["obs_scaler"])
        self.memory.load_state(state["memory"])
        self.timesteps = int(state["timesteps"])

    def policy_arrays(self) -> PolicyArrays:
        """The policy's parameters and observation statistics under the torch twin's names (``gaussrl export``).

        Returns:
            The arrays.
        """
        return policy_arrays(self.policy, self.obs_scaler)
