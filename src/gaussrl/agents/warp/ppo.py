"""Proximal Policy Optimization on Warp (Schulman et al., 2017), with GAE; gradients through ``wp.Tape``.

The behaviour of :class:`gaussrl.agents.torch.ppo.PPO` (MLP policies) with the same
``PPOConfig``: the rollout, GAE, the advantage and value normalisation, the minibatch
shuffling, the clipped surrogate, the optional value clipping, the entropy bonus, the
KL-adaptive or linear learning rate and the KL early stop. Everything an update computes stays
on the device (the normalisers' statistics included); it reads back only its metrics, at the
end (and each minibatch's KL when ``kl_threshold`` is set: the early stop is a host decision).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import warp as wp

from gaussrl.agents.config import PPOConfig
from gaussrl.agents.policy_arrays import PolicyArrays
from gaussrl.agents.schedules import linear_fraction
from gaussrl.agents.warp.dense import Tape
from gaussrl.agents.warp.kernels import bootstrap_kernel, scale_kernel
from gaussrl.agents.warp.losses import (
    PPO_METRICS,
    adapt_lr_kernel,
    gae_kernel,
    mean_kernel,
    moments_kernel,
    ppo_loss_kernel,
    standardize_kernel,
)
from gaussrl.agents.warp.memory import (
    ArrayStore,
    Scaler,
    WarpStep,
    column,
    gather,
    load_arrays,
    model_arrays,
    policy_arrays,
    reseed,
)
from gaussrl.agents.warp.optim import Adam
from gaussrl.models.warp import Model

f32 = wp.float32


class PPO:
    """PPO with GAE, clipped surrogate, optional value clipping, entropy bonus and KL-adaptive rate.

    Args:
        policy: A ``GaussianMixin`` Warp model with a state-independent log-std, in the normalised action Box.
        value: A ``DeterministicMixin`` value model.
        config: Hyperparameters.
        num_envs: Number of parallel environments.
        total_updates: Number of updates of the run; needed by the "linear" learning-rate schedule.
        seed: Seed of the minibatch shuffles and the policy's sampling.

    Raises:
        ValueError: If the rollout cannot be split as configured, or "linear" lacks total_updates.
    """

    def __init__(
        self,
        *,
        policy: Model,
        value: Model,
        config: PPOConfig,
        num_envs: int,
        total_updates: int | None = None,
        seed: int = 0,
    ) -> None:
        if config.learning_rate_scheduler == "linear" and not total_updates:
            raise ValueError("learning_rate_scheduler='linear' needs total_updates (the number of PPO updates).")
        config.check_batch(num_envs, recurrent=False)
        self.policy, self.value, self.config, self.num_envs = policy, value, config, num_envs
        self.total_updates, self.device = total_updates, policy.device
        self.rng = np.random.default_rng(seed)
        parameters = [*policy.parameters(), *value.parameters()]
        self.optimizer = Adam(parameters, config.learning_rate, config.grad_norm_clip)
        num_obs, num_actions = policy.num_observations, policy.num_actions
        self.obs_scaler = Scaler(num_obs, self.device) if config.observation_normalization else None
        self.value_scaler = Scaler(1, self.device) if config.value_normalization else None
        widths = {"observations": num_obs, "actions": num_actions, "log_prob": 1, "mean_actions": num_actions}
        self.rollout = ArrayStore(config.rollouts, num_envs, {**widths, "rewards": 1, "dones": 1}, self.device)
        self.rollout_log_std = wp.zeros(num_actions, dtype=f32, device=self.device)
        self.updates = 0

    def _normalize(self, observations: wp.array) -> wp.array:
        return observations if self.obs_scaler is None else self.obs_scaler.normalize(observations)

    def _values(self, x: wp.array) -> wp.array:
        values, _ = self.value.act({"observations": x}, role="value")
        return values if self.value_scaler is None else self.value_scaler.denormalize(values)

    def act(self, observations: wp.array) -> wp.array:
        """Sample actions for a rollout step (and update the observation statistics).

        Args:
            observations: Shape (N, num_observations), on the agent's device.

        Returns:
            Actions (N, A), unclipped: exactly the samples whose log-prob is stored.
        """
        reseed(self.policy, self.rng)
        x = self.rollout.row("observations")  # normalised straight into the rollout, which the policy then reads
        if self.obs_scaler is None:
            wp.copy(x, observations)
        else:
            self.obs_scaler.update(observations)
            self.obs_scaler.normalize(observations, out=x)
        actions, outputs = self.policy.act({"observations": x}, role="policy", requires_grad=False)  # no tape
        self.rollout.write("actions", actions)
        self.rollout.write("log_prob", outputs["log_prob"])
        self.rollout.write("mean_actions", outputs["mean_actions"])
        wp.copy(self.rollout_log_std, outputs["log_std"].flatten())
        return self.rollout.row("actions")

    def observe(self, step: WarpStep) -> dict[str, float]:
        """Store the transition of the last :meth:`act`; update when the rollout is full.

        Args:
            step: What the environment returned for those actions.

        Returns:
            Update metrics when an update ran, else an empty dict.
        """
        cfg, rewards = self.config, self.rollout.row("rewards")
        bootstrap = step.truncated & ~step.terminated
        if cfg.time_limit_bootstrap and bootstrap.any():
            final_values = self._values(self._normalize(step.final_observations))
            inputs = [step.rewards, cfg.reward_scale, cfg.discount_factor, final_values, column(bootstrap, self.device)]
            wp.launch(bootstrap_kernel, self.num_envs, inputs=inputs, outputs=[rewards], device=self.device)
        else:
            inputs = [step.rewards, cfg.reward_scale]
            wp.launch(scale_kernel, rewards.shape, inputs=inputs, outputs=[rewards], device=self.device)
        self.rollout.write("dones", (step.terminated | step.truncated).astype(np.float32))
        self.rollout.advance()
        if not self.rollout.filled:
            return {}
        self.rollout.filled = False
        return self.update(step.observations)

    def _targets(self, next_observations: wp.array) -> dict[str, wp.array]:
        """Rollout values, GAE advantages (standardised) and returns, normalised when asked."""
        cfg, arrays, device = self.config, self.rollout.arrays, self.device
        data = {k: arrays[k] for k in ("observations", "actions", "log_prob", "mean_actions")}
        values = self._values(arrays["observations"])
        last_values = self._values(self._normalize(next_observations))
        advantages, returns = (wp.empty_like(values) for _ in range(2))
        inputs = [arrays["rewards"], values, arrays["dones"], last_values, cfg.discount_factor, cfg.gae_lambda]
        wp.launch(gae_kernel, self.num_envs, inputs=inputs, outputs=[advantages, returns], device=device)
        if self.value_scaler is not None:
            self.value_scaler.update(returns)
            returns, values = self.value_scaler.normalize(returns), self.value_scaler.normalize(values)
        sums = wp.zeros(2, dtype=wp.float64, device=device)
        for power in (1, 2):
            wp.launch(moments_kernel, advantages.shape[0], inputs=[advantages, sums, power], device=device)
        standardized = wp.empty_like(advantages)
        n = advantages.shape[0]
        wp.launch(standardize_kernel, n, inputs=[advantages, sums], outputs=[standardized], device=device)
        return {**data, "values": values, "returns": returns, "advantages": standardized}

    def _minibatches(self, data: dict[str, wp.array]) -> list[dict[str, wp.array]]:
        """One shuffle per epoch (a gather per array), then contiguous slices as torch.chunk makes them."""
        count = data["advantages"].shape[0]
        order: wp.array = wp.array(self.rng.permutation(count).astype(np.int32), dtype=wp.int32, device=self.device)
        gathered = gather(data, order)
        size = -(-count // self.config.mini_batches)
        return [{k: v[start : start + size] for k, v in gathered.items()} for start in range(0, count, size)]

    def _step(self, batch: dict[str, wp.array], metrics: wp.array, kl: wp.array, epoch: int) -> None:
        """One gradient step on a minibatch; adds its metrics and its mean KL to ``kl[epoch]``."""
        cfg, n = self.config, batch["advantages"].shape[0]
        loss = wp.zeros(1, dtype=f32, device=self.device, requires_grad=True)
        tape = Tape()
        with tape:
            inputs = {"observations": batch["observations"], "taken_actions": batch["actions"]}
            _, outputs = self.policy.act(inputs, role="policy")
            entropy = self.policy.get_entropy(role="policy")
            predicted, _ = self.value.act({"observations": batch["observations"]}, role="value")
            clips = wp.vec3(cfg.ratio_clip, cfg.value_clip, float(cfg.clip_predicted_values))
            scales = wp.vec3(cfg.entropy_loss_scale, cfg.value_loss_scale, 1.0 / n)
            columns = [batch[k] for k in ("log_prob", "advantages")]
            inputs_ = [outputs["log_prob"], *columns, predicted, batch["values"], batch["returns"], entropy]
            wp.launch(ppo_loss_kernel, n, inputs=[*inputs_, clips, scales], outputs=[loss, metrics], device=self.device)
        tape.backward(loss=loss)
        self.optimizer.step()
        tape.zero()
        divergence = self.policy.get_kl_divergence(batch["mean_actions"], self.rollout_log_std, role="policy")
        wp.launch(mean_kernel, n, inputs=[divergence, 1.0 / n, kl, epoch], device=self.device)

    def update(self, next_observations: wp.array) -> dict[str, float]:
        """Run the learning epochs on the stored rollout.

        Args:
            next_observations: Observations after the rollout's last step, shape (N, num_observations).

        Returns:
            Mean losses, KL, entropy, learning rate and policy std of the update.
        """
        cfg = self.config
        if cfg.learning_rate_scheduler == "linear" and self.total_updates:
            self.optimizer.set_lr(cfg.learning_rate * linear_fraction(self.updates, self.total_updates))
        data = self._targets(next_observations)
        metrics = wp.zeros(len(PPO_METRICS), dtype=f32, device=self.device)
        kl = wp.zeros(cfg.learning_epochs, dtype=f32, device=self.device)
        steps, stop = 0, False
        for epoch in range(cfg.learning_epochs):
            done, before = 0, 0.0
            for batch in self._minibatches(data):
                self._step(batch, metrics, kl, epoch)
                steps, done = steps + 1, done + 1
                if cfg.kl_threshold:  # the early stop needs the minibatch's KL on the host
                    total = float(kl.numpy()[epoch])
                    stop, before = total - before > cfg.kl_threshold, total
                    if stop:
                        break
            if cfg.learning_rate_scheduler == "kl_adaptive":
                inputs = [kl, epoch, float(done), cfg.kl_adaptive_threshold, self.optimizer.lr]
                wp.launch(adapt_lr_kernel, 1, inputs=inputs, device=self.device)
            if cfg.kl_threshold and stop:
                break
        self.updates += 1
        values = metrics.numpy() / steps
        result = {name: float(values[i]) for i, name in enumerate(PPO_METRICS[:3])}
        result["kl"] = float(kl.numpy().sum() / steps)
        result["learning_rate"] = float(self.optimizer.lr.numpy()[0])
        result["policy_std"] = float(np.exp(self.rollout_log_std.numpy()).mean())
        return result

    def act_eval(
        self, observations: wp.array, states: list[Any], *, deterministic: bool = True
    ) -> tuple[wp.array, list[Any]]:
        """Act for evaluation without touching the training state.

        Args:
            observations: Shape (N, num_observations).
            states: Unused (MLP policies); returned as is.
            deterministic: Take the mean action instead of a sample.

        Returns:
            Actions (N, A) and ``states``.
        """
        inputs = {"observations": self._normalize(observations)}
        actions, outputs = self.policy.act(inputs, role="policy", requires_grad=False)
        return (outputs["mean_actions"] if deterministic else actions), states

    def eval_states(self, batch: int) -> list[Any]:
        """No hidden states: the Warp agents' policies are feed-forward.

        Args:
            batch: Number of environments.

        Returns:
            An empty list.
        """
        return []

    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs, as nested dicts of NumPy arrays and JSON values.

        Returns:
            Models, optimizer, normalisers, rollout and counters.
        """
        return {
            "policy": model_arrays(self.policy),
            "value": model_arrays(self.value),
            "optimizer": self.optimizer.state(),
            "obs_scaler": self.obs_scaler.state() if self.obs_scaler else None,
            "value_scaler": self.value_scaler.state() if self.value_scaler else None,
            "rollout": self.rollout.state(),
            "rollout_log_std": self.rollout_log_std.numpy().copy(),
            "rng": self.rng.bit_generator.state,
            "updates": self.updates,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned .

        Args:
            state: As returned by :meth:`state`.
        """
        load_arrays(self.policy, state["policy"])
        load_arrays(self.value, state["value"])
        self.optimizer.load_state(state["optimizer"])
        for scaler, key in ((self.obs_scaler, "obs_scaler"), (self.value_scaler, "value_scaler")):
            if scaler is not None:
                scaler.load_state(state[key])
        self.rollout.load_state(state["rollout"])
        self.rollout_log_std.assign(np.asarray(state["rollout_log_std"], np.float32))
        self.rng.bit_generator.state = state["rng"]
        self.updates = int(state["updates"])

    def policy_arrays(self) -> PolicyArrays:
        """The policy's parameters and observation statistics under the torch twin's names (``gaussrl export``).

        Returns:
            The arrays.
        """
        return policy_arrays(self.policy, self.obs_scaler)
