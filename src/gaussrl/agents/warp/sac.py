"""Soft Actor-Critic on Warp (Haarnoja et al., 2018, "SAC: Algorithms and Applications"); ``wp.Tape`` gradients.

The behaviour of :class:`gaussrl.agents.torch.sac.SAC` with the same ``SACConfig``: a
tanh-squashed Gaussian policy, twin Q critics with Polyak-averaged targets and automatic
tuning of the temperature alpha. A gradient step stays on the device; only the sampled replay
indices go up and the step's four metrics come back. The replay batch, the critic target, the
losses and the metrics are preallocated and rewritten by every gradient step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import warp as wp

from gaussrl.agents.config import SACConfig
from gaussrl.agents.policy_arrays import PolicyArrays
from gaussrl.agents.warp.dense import Tape
from gaussrl.agents.warp.kernels import scale_kernel
from gaussrl.agents.warp.losses import (
    SAC_METRICS,
    actor_loss_kernel,
    alpha_kernel,
    critic_loss_kernel,
    soft_target_kernel,
    temperature_grad_kernel,
)
from gaussrl.agents.warp.memory import ArrayStore, Scaler, WarpStep, load_arrays, model_arrays, policy_arrays, reseed
from gaussrl.agents.warp.optim import Adam
from gaussrl.models.warp import Model

f32 = wp.float32
BATCH_NAMES = ("observations", "actions", "rewards", "next_observations", "terminated")


class SAC:
    """SAC with a replay buffer; ``gradient_steps`` gradient steps per vector step.

    Args:
        policy: A squashed ``GaussianMixin`` Warp model acting in the normalised action Box.
        critics: The two Q models.
        target_critics: Two Q models of the same architecture; overwritten with the critics' weights.
        config: Hyperparameters.
        num_envs: Number of parallel environments.
        seed: Seed of the replay sampling and the policy's sampling.
    """

    def __init__(
        self,
        *,
        policy: Model,
        critics: tuple[Model, Model],
        target_critics: tuple[Model, Model],
        config: SACConfig,
        num_envs: int,
        seed: int = 0,
    ) -> None:
        self.policy, self.critics, self.target_critics = policy, critics, target_critics
        self.config, self.num_envs, self.device = config, num_envs, policy.device
        self.rng = np.random.default_rng(seed)
        for target, critic in zip(target_critics, critics, strict=True):
            target.update_parameters(critic, polyak=1.0)
            target.freeze_parameters(True)
        clip = config.grad_norm_clip
        self.policy_optimizer = Adam(policy.parameters(), config.actor_learning_rate, clip)
        self.critic_parameters = [p for c in critics for p in c.parameters()]
        self.critic_optimizer = Adam(self.critic_parameters, config.critic_learning_rate, clip)
        self.log_alpha: wp.array = wp.array([math.log(config.initial_entropy_value)], dtype=f32, device=self.device)
        self.log_alpha.requires_grad = True
        self.entropy_optimizer = Adam([self.log_alpha], config.entropy_learning_rate, clip)
        self.alpha = wp.zeros(1, dtype=f32, device=self.device)
        num_obs, num_actions = policy.num_observations, policy.num_actions
        self.target_entropy = -float(num_actions) if config.target_entropy is None else config.target_entropy
        self.obs_scaler = Scaler(num_obs, self.device) if config.observation_normalization else None
        widths = dict(zip(BATCH_NAMES, (num_obs, num_actions, 1, num_obs, 1), strict=True))
        self.memory = ArrayStore(config.memory_size, num_envs, widths, self.device)
        rows, device = config.batch_size, self.device
        self.index = wp.zeros(rows, dtype=wp.int32, device=device)
        self.batch = {name: wp.zeros((rows, width), dtype=f32, device=device) for name, width in widths.items()}
        self.target = wp.zeros((rows, 1), dtype=f32, device=device)
        self.critic_loss = wp.zeros(1, dtype=f32, device=device, requires_grad=True)
        self.policy_loss = wp.zeros(1, dtype=f32, device=device, requires_grad=True)
        self.metrics = wp.zeros(len(SAC_METRICS), dtype=f32, device=device)
        self.timesteps = 0

    def _normalize(self, observations: wp.array) -> wp.array:
        return observations if self.obs_scaler is None else self.obs_scaler.normalize(observations)

    def act(self, observations: wp.array) -> wp.array:
        """Uniform random actions for the first ``random_timesteps`` steps, then policy samples.

        Args:
            observations: Shape (N, num_observations), on the agent's device.

        Returns:
            Actions (N, A) in [-1, 1].
        """
        reseed(self.policy, self.rng)
        self.memory.write("observations", observations)
        if self.timesteps < self.config.random_timesteps:
            actions, _ = self.policy.random_act({"observations": observations}, role="policy")
        else:
            inputs = {"observations": self._normalize(observations)}
            actions, _ = self.policy.act(inputs, role="policy", requires_grad=False)
        self.memory.write("actions", actions)
        return self.memory.row("actions")

    def observe(self, step: WarpStep) -> dict[str, float]:
        """Store the transition of the last :meth:`act` and take the gradient steps that are due.

        Args:
            step: What the environment returned for those actions.

        Returns:
            Metrics of the last gradient step, or an empty dict.
        """
        memory = self.memory
        if self.obs_scaler is not None:
            self.obs_scaler.update(memory.row("observations"))
        rewards = memory.row("rewards")
        inputs = [step.rewards, self.config.reward_scale]
        wp.launch(scale_kernel, rewards.shape, inputs=inputs, outputs=[rewards], device=self.device)
        memory.write("next_observations", step.final_observations)
        memory.write("terminated", step.terminated.astype(np.float32))
        memory.advance()
        self.timesteps += self.num_envs
        if self.timesteps < self.config.learning_starts:
            return {}
        metrics = np.zeros(len(SAC_METRICS), np.float32)
        for _ in range(self.config.gradient_steps):
            metrics = self.update()
        return {name: float(metrics[i]) for i, name in enumerate(SAC_METRICS)}

    def _q(self, critics: tuple[Model, Model], x: wp.array, actions: wp.array) -> list[wp.array]:
        return [c.act({"observations": x, "taken_actions": actions}, role="critic")[0] for c in critics]

    def _critic_step(self, batch: dict[str, wp.array], x: wp.array, metrics: wp.array) -> None:
        cfg, n, device = self.config, batch["rewards"].shape[0], self.device
        next_x = self._normalize(batch["next_observations"])
        next_actions, outputs = self.policy.act({"observations": next_x}, role="policy", requires_grad=False)
        next_q1, next_q2 = self._q(self.target_critics, next_x, next_actions)
        target, loss = self.target, self.critic_loss
        inputs = [batch["rewards"], batch["terminated"], next_q1, next_q2, outputs["log_prob"], self.alpha]
        wp.launch(soft_target_kernel, n, inputs=[*inputs, cfg.discount_factor], outputs=[target], device=device)
        loss.zero_()
        tape = Tape()
        with tape:
            q1, q2 = self._q(self.critics, x, batch["actions"])
            wp.launch(critic_loss_kernel, n, inputs=[q1, q2, target, 1.0 / n], outputs=[loss, metrics], device=device)
        tape.backward(loss=loss)
        self.critic_optimizer.step()
        tape.zero()

    def _policy_step(self, x: wp.array, metrics: wp.array) -> wp.array:
        n, device, loss = x.shape[0], self.device, self.policy_loss
        loss.zero_()
        tape = Tape(frozen=self.critic_parameters)  # the loss's gradient for the policy only
        with tape:
            actions, outputs = self.policy.act({"observations": x}, role="policy")
            q1, q2 = self._q(self.critics, x, actions)
            inputs = [outputs["log_prob"], q1, q2, self.alpha, 1.0 / n]
            wp.launch(actor_loss_kernel, n, inputs=inputs, outputs=[loss, metrics], device=device)
        tape.backward(loss=loss)
        self.policy_optimizer.step()
        tape.zero()
        log_prob: wp.array = outputs["log_prob"]
        return log_prob

    def update(self) -> np.ndarray:
        """One gradient step of the critics, the policy and the temperature; then the soft target update.

        Returns:
            Critic loss, policy loss, alpha and mean Q-value (float32, shape (4,)).
        """
        cfg, device = self.config, self.device
        reseed(self.policy, self.rng)
        rows = len(self.memory) * self.num_envs
        self.index.assign(self.rng.integers(0, rows, cfg.batch_size).astype(np.int32))
        batch = self.memory.gather(BATCH_NAMES, self.index, self.batch)
        x = self._normalize(batch["observations"])
        metrics = self.metrics
        metrics.zero_()
        wp.launch(alpha_kernel, 1, inputs=[self.log_alpha, self.alpha, metrics], device=device)
        self._critic_step(batch, x, metrics)
        log_prob = self._policy_step(x, metrics)
        if cfg.learn_entropy:
            self.log_alpha.grad.zero_()
            inputs = [log_prob, self.target_entropy, 1.0 / log_prob.shape[0], self.log_alpha.grad]
            wp.launch(temperature_grad_kernel, log_prob.shape[0], inputs=inputs, device=device)
            self.entropy_optimizer.step()
        for target, critic in zip(self.target_critics, self.critics, strict=True):
            target.update_parameters(critic, polyak=cfg.polyak)
        values: np.ndarray = metrics.numpy().copy()  # a copy: the next step rewrites the array
        return values

    def act_eval(
        self, observations: wp.array, states: list[Any], *, deterministic: bool = True
    ) -> tuple[wp.array, list[Any]]:
        """Act for evaluation: the squashed mean, or a sample.

        Args:
            observations: Shape (N, num_observations).
            states: Unused (feed-forward policy); returned as is.
            deterministic: Take ``tanh(mean)`` instead of a sample.

        Returns:
            Actions (N, A) and ``states``.
        """
        inputs = {"observations": self._normalize(observations)}
        actions, outputs = self.policy.act(inputs, role="policy", requires_grad=False)
        return (outputs["mean_actions"] if deterministic else actions), states

    def eval_states(self, batch: int) -> list[Any]:
        """No hidden states: SAC's policies are feed-forward.

        Args:
            batch: Number of environments.

        Returns:
            An empty list.
        """
        return []

    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs, as nested dicts of NumPy arrays and JSON values.

        Returns:
            Models, optimizers, temperature, normaliser, replay buffer and counters.
        """
        return {
            "policy": model_arrays(self.policy),
            "critics": [model_arrays(c) for c in self.critics],
            "target_critics": [model_arrays(c) for c in self.target_critics],
            "policy_optimizer": self.policy_optimizer.state(),
            "critic_optimizer": self.critic_optimizer.state(),
            "entropy_optimizer": self.entropy_optimizer.state(),
            "log_alpha": self.log_alpha.numpy().copy(),
            "obs_scaler": self.obs_scaler.state() if self.obs_scaler else None,
            "memory": self.memory.state(),
            "rng": self.rng.bit_generator.state,
            "timesteps": self.timesteps,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned.

        Args:
            state: As returned by :meth:`state`.
        """
        load_arrays(self.policy, state["policy"])
        for models, key in ((self.critics, "critics"), (self.target_critics, "target_critics")):
            for model, saved in zip(models, state[key], strict=True):
                load_arrays(model, saved)
        for name in ("policy_optimizer", "critic_optimizer", "entropy_optimizer"):
            getattr(self, name).load_state(state[name])
        self.log_alpha.assign(np.asarray(state["log_alpha"], np.float32).reshape(1))
        if self.obs_scaler is not None:
            self.obs_scaler.load_state(state["obs_scaler"])
        self.memory.load_state(state["memory"])
        self.rng.bit_generator.state = state["rng"]
        self.timesteps = int(state["timesteps"])

    def policy_arrays(self) -> PolicyArrays:
        """The policy's parameters and observation statistics under the torch twin's names (``gaussrl export``).

        Returns:
            The arrays.
        """
        return policy_arrays(self.policy, self.obs_scaler)
