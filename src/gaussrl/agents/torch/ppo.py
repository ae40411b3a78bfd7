"""Proximal Policy Optimization for PyTorch (Schulman et al., 2017), MLP or recurrent policies.

The agent stores the exact action it sampled and scores that same action at update time; it
never clips actions (the environment wrapper clips and rescales them at its boundary).
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F

from gaussrl.agents.config import PPOConfig
from gaussrl.agents.policy_arrays import PolicyArrays
from gaussrl.agents.schedules import adapt_learning_rate, linear_fraction
from gaussrl.agents.torch.distributed import World
from gaussrl.agents.torch.memory import TensorStore, compute_gae, policy_arrays
from gaussrl.agents.torch.networks import GaussianMLPPolicy
from gaussrl.agents.torch.optim import adam, clip_grad_norm
from gaussrl.agents.torch.recurrent import reset_states, rnn_sizes, zero_states
from gaussrl.core.errors import ConfigError
from gaussrl.envs.gymnasium import Step
from gaussrl.models.torch import GaussianMixin, Model
from gaussrl.models.torch.functional import gaussian_kl


class PPO:
    """PPO with GAE, clipped surrogate, optional value clipping, entropy bonus and KL-adaptive rate.

    Args:
        policy: A ``GaussianMixin`` model acting in the normalised action Box.
        value: A ``DeterministicMixin`` value model.
        config: Hyperparameters.
        num_envs: Number of parallel environments.
        total_updates: Number of updates of the run; needed by the "linear" learning-rate schedule.
        world: The ranks of a data-parallel run (see ``agents.torch.distributed``); None: one process.

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
        world: World | None = None,
    ) -> None:
        if config.learning_rate_scheduler == "linear" and not total_updates:
            raise ConfigError("learning_rate_scheduler='linear' needs total_updates (the number of PPO updates).")
        self.policy, self.value, self.config, self.num_envs = policy, value, config, num_envs
        self.total_updates = total_updates
        self.world = World() if world is None else world
        self.device = policy.device
        self.recurrent = bool(rnn_sizes(policy))
        config.check_batch(num_envs, self.recurrent)
        parameters = [*policy.parameters(), *value.parameters()]
        self.optimizer = adam(parameters, config.learning_rate)
        num_obs, num_actions = policy.num_observations, policy.num_actions
        self.obs_scaler = self.world.scaler(num_obs, self.device) if config.observation_normalization else None
        self.value_scaler = self.world.scaler(1, self.device) if config.value_normalization else None
        self.reward_scaler = (
            self.world.return_normalizer(num_envs, config.discount_factor) if config.reward_normalization else None
        )
        f32 = torch.float32
        specs: dict[str, tuple[tuple[int, ...], torch.dtype]] = {
            "observations": ((num_obs,), f32),
            "actions": ((num_actions,), f32),
            "log_prob": ((1,), f32),
            "mean_actions": ((num_actions,), f32),
            "log_std": ((num_actions,), f32),
            "values": ((1,), f32),
            "rewards": ((1,), f32),
            "dones": ((1,), torch.bool),
        }
        # A feed-forward value's rollout values are computed at update time, in one batched pass over the
        # stored observations (its parameters do not change during the rollout): one forward per update
        # instead of one per step.
        self.batched_values = not rnn_sizes(value)
        if self.batched_values:
            del specs["values"]
        # The KL of gaussrl's MLP policy (unsquashed, summed over actions) is evaluated once per epoch for all
        # its minibatches: get_kl_divergence's element-wise formula on the concatenation (bit-identical).
        self.batched_kl = type(policy) is GaussianMLPPolicy and not policy.squash_actions and not config.kl_threshold
        self._epoch_policies: list[tuple[torch.Tensor, torch.Tensor]] = []
        for prefix, model in (("policy_rnn", policy), ("value_rnn", value)):
            for i, (layers, _, size) in enumerate(rnn_sizes(model)):
                specs[f"{prefix}{i}"] = ((layers, size), f32)
        self.rollout = TensorStore(config.rollouts, num_envs, specs, self.device)
        self.policy_states = zero_states(policy, num_envs)
        self.value_states = zero_states(value, num_envs)
        self._pending: dict[str, Any] = {}
        self.updates = 0

    def _normalize(self, observations: torch.Tensor, *, update: bool = False) -> torch.Tensor:
        if self.obs_scaler is None:
            return observations
        if update:
            self.obs_scaler.update(observations)
        return self.obs_scaler.normalize(observations)

    def _values(self, x: torch.Tensor, states: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        values, outputs = self.value.act({"observations": x, "rnn": states}, role="value")
        if self.value_scaler is not None:
            values = self.value_scaler.denormalize(values)
        return values, outputs.get("rnn", [])

    @torch.no_grad()
    def act(self, observations: torch.Tensor) -> torch.Tensor:
        """Sample actions for a rollout step (and update the observation statistics).

        Args:
            observations: Shape (N, num_observations).

        Returns:
            Actions (N, A), unclipped: exactly the samples whose log-prob is stored.
        """
        x = self._normalize(observations, update=True)
        actions, outputs = self.policy.act({"observations": x, "rnn": self.policy_states}, role="policy")
        self._pending = {
            "observations": x,
            "actions": actions,
            "log_prob": outputs["log_prob"],
            "mean_actions": outputs["mean_actions"],
            "log_std": outputs["log_std"].expand_as(actions),
        }
        value_states = self.value_states
        if not self.batched_values:
            self._pending["values"], value_states = self._values(x, self.value_states)
        self._pending["next_states"] = (outputs.get("rnn", []), value_states)
        return cast(torch.Tensor, actions)

    @torch.no_grad()
    def observe(self, step: Step) -> dict[str, float]:
        """Store the transition of the last :meth:`act`; update when the rollout is full.

        Args:
            step: What the environment returned for those actions.

        Returns:
            Update metrics when an update ran, else an empty dict.
        """
        pending = self._pending
        next_policy_states, next_value_states = pending.pop("next_states")
        rewards = step.rewards if self.config.reward_scale == 1.0 else step.rewards * self.config.reward_scale
        dones = step.terminated | step.truncated
        if self.reward_scaler is not None:
            scaled = self.reward_scaler(rewards.cpu().numpy(), dones.cpu().numpy())
            rewards = torch.from_numpy(scaled).to(self.device)
        if self.config.time_limit_bootstrap and bool(step.truncated.any()):
            bootstrap = step.truncated & ~step.terminated
            final_values, _ = self._values(self._normalize(step.final_observations), next_value_states)
            rewards = rewards + self.config.discount_factor * final_values * bootstrap
        hidden = {f"policy_rnn{i}": s.movedim(1, 0) for i, s in enumerate(self.policy_states)}
        hidden.update({f"value_rnn{i}": s.movedim(1, 0) for i, s in enumerate(self.value_states)})
        self.rollout.add(**pending, rewards=rewards, dones=dones, **hidden)
        self.policy_states = reset_states(next_policy_states, dones)
        self.value_states = reset_states(next_value_states, dones)
        self._pending = {}
        if not self.rollout.filled:
            return {}
        self.rollout.filled = False
        with torch.enable_grad():
            return self.update(step.observations)

    def _targets(self, next_observations: torch.Tensor) -> dict[str, torch.Tensor]:
        data = dict(self.rollout.tensors)
        if self.batched_values:
            observations = data["observations"]
            values, _ = self._values(observations.flatten(0, 1), [])
            data["values"] = values.view(*observations.shape[:2], 1)
        last_values, _ = self._values(self._normalize(next_observations), self.value_states)
        advantages = compute_gae(
            data["rewards"],
            data["values"],
            data["dones"],
            last_values,
            discount_factor=self.config.discount_factor,
            gae_lambda=self.config.gae_lambda,
        )
        data["returns"] = advantages + data["values"]
        if self.value_scaler is not None:
            self.value_scaler.update(data["returns"])
        mean, std = self.world.mean_std(advantages, self.value_scaler)  # merges the value statistics too
        if self.value_scaler is not None:
            data["returns"] = self.value_scaler.normalize(data["returns"])
            data["values"] = self.value_scaler.normalize(data["values"])
        data["advantages"] = (advantages - mean) / (std + 1e-8)
        return data

    def _units(self, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Arrange (T, N, ...) tensors as samples (T * N, ...) or sequences (N * T / L, L, ...)."""
        if not self.recurrent:  # only what the loss reads: each tensor kept is gathered once per epoch
            unused = {"rewards", "dones"} if self.config.clip_predicted_values else {"rewards", "dones", "values"}
            return {k: v.reshape(-1, *v.shape[2:]) for k, v in data.items() if k not in unused}
        length = self.config.sequence_length
        chunks = self.config.rollouts // length
        units = {}
        for name, v in data.items():
            if "rnn" in name:
                units[name] = v[::length].movedim(1, 0).reshape(-1, *v.shape[2:])
            else:
                units[name] = v.reshape(chunks, length, *v.shape[1:]).movedim(2, 0).reshape(-1, length, *v.shape[2:])
        return units

    def _minibatches(self, units: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
        """One shuffle per epoch: a gather per tensor, then contiguous slices (views) as minibatches."""
        count = units["advantages"].shape[0]
        order = torch.randperm(count, device=self.device)
        shuffled = {k: v[order] for k, v in units.items()}
        size = -(-count // self.config.mini_batches)  # torch.chunk's sizes: ceil(count / M), the last one shorter
        sizes = [size] * (count // size) + ([count % size] if count % size else [])
        parts = {k: torch.split(v, sizes) for k, v in shuffled.items()}
        return [self._minibatch({k: parts[k][i] for k in parts}) for i in range(len(sizes))]

    def _minibatch(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        if not self.recurrent:
            return batch
        flat: dict[str, Any] = {k: v.reshape(-1, *v.shape[2:]) for k, v in batch.items() if "rnn" not in k}
        for prefix, model in (("policy_rnn", self.policy), ("value_rnn", self.value)):
            flat[prefix] = [batch[f"{prefix}{i}"].movedim(0, 1) for i in range(len(rnn_sizes(model)))]
        return flat

    def _loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        inputs = {"observations": batch["observations"], "taken_actions": batch["actions"]}
        if self.recurrent:
            inputs.update(rnn=batch["policy_rnn"], terminated=batch["dones"])
        _, outputs = self.policy.act(inputs, role="policy")
        kl = self._kl(batch, outputs)
        with torch.set_grad_enabled(cfg.entropy_loss_scale > 0):
            entropy = cast(GaussianMixin, self.policy).get_entropy(role="policy").sum(-1).mean()
        ratio = torch.exp(outputs["log_prob"] - batch["log_prob"])
        advantages = batch["advantages"]
        surrogate = torch.min(advantages * ratio, advantages * ratio.clamp(1.0 - cfg.ratio_clip, 1.0 + cfg.ratio_clip))
        value_inputs = {"observations": batch["observations"]}
        if self.recurrent:
            value_inputs.update(rnn=batch["value_rnn"], terminated=batch["dones"])
        predicted, _ = self.value.act(value_inputs, role="value")
        if cfg.clip_predicted_values:
            predicted = batch["values"] + (predicted - batch["values"]).clamp(-cfg.value_clip, cfg.value_clip)
        policy_loss = -surrogate.mean()
        value_loss = F.mse_loss(predicted, batch["returns"])
        loss = policy_loss - cfg.entropy_loss_scale * entropy if cfg.entropy_loss_scale > 0 else policy_loss
        loss = loss + cfg.value_loss_scale * value_loss
        metrics = {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}
        return loss, metrics if kl is None else {**metrics, "kl": kl}

    def _kl(self, batch: dict[str, Any], outputs: dict[str, Any]) -> torch.Tensor | None:
        """The minibatch's mean KL(rollout policy || current policy), or None when :meth:`_epoch` batches it."""
        if self.batched_kl:
            # A copy of the log-std: it may be the parameter itself, which the optimizer step then changes.
            self._epoch_policies.append((outputs["mean_actions"].detach(), outputs["log_std"].detach().clone()))
            return None
        with torch.no_grad():  # a metric and the KL-adaptive rate's input: no graph needed
            policy = cast(GaussianMixin, self.policy)
            return policy.get_kl_divergence(batch["mean_actions"], batch["log_std"], role="policy").mean()

    @torch.no_grad()
    def _batched_kl(self, batches: list[dict[str, Any]]) -> list[torch.Tensor]:
        """Each minibatch's mean KL, for the epoch at once (see ``batched_kl``)."""
        means, log_stds = zip(*self._epoch_policies, strict=True)
        old = [torch.cat([batch[key] for batch in batches]) for key in ("mean_actions", "log_std")]
        new_log_std = torch.cat([s.expand_as(m) for s, m in zip(log_stds, means, strict=True)])
        kl = gaussian_kl(old[0], old[1], torch.cat(means), new_log_std, "sum")
        return [part.mean() for part in torch.split(kl, [m.shape[0] for m in means])]

    def _epoch(
        self, units: dict[str, torch.Tensor], history: list[dict[str, torch.Tensor]], carried: torch.Tensor | None
    ) -> torch.Tensor:
        """One pass over the shuffled rollout; appends each minibatch's metrics and returns this rank's KLs, (M,).

        ``carried``: the previous epoch's KLs of this rank, to adapt the learning rate to before the first
        step. They are averaged over the ranks in that step's gradient all-reduce (one collective fewer
        per epoch), so that every rank adapts its rate alike.
        """
        cfg, batches, first = self.config, self._minibatches(units), len(history)
        parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
        self._epoch_policies = []
        for batch in batches:
            loss, metrics = self._loss(batch)
            self.optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            carried_kl = self.world.average_gradients(parameters, also=carried)
            if carried_kl is not None:
                self._adapt_learning_rate(float(carried_kl.mean()))
                carried = None
            if cfg.grad_norm_clip > 0:
                clip_grad_norm(parameters, cfg.grad_norm_clip)
            self.optimizer.step()
            history.append({k: v.detach() for k, v in metrics.items()})
            if cfg.kl_threshold and float(self.world.mean(metrics["kl"])) > cfg.kl_threshold:
                break
        if self.batched_kl:
            for metrics, kl in zip(history[first:], self._batched_kl(batches), strict=True):
                metrics["kl"] = kl
        return torch.stack([metrics["kl"] for metrics in history[first:]])

    def _adapt_learning_rate(self, kl: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = adapt_learning_rate(group["lr"], kl, self.config.kl_adaptive_threshold)

    def update(self, next_observations: torch.Tensor) -> dict[str, float]:
        """Run the learning epochs on the stored rollout.

        Args:
            next_observations: Observations after the rollout's last step, shape (N, num_observations).

        Returns:
            Mean losses, KL, entropy, learning rate and policy std of the update.
        """
        cfg = self.config
        if cfg.learning_rate_scheduler == "linear" and self.total_updates:
            fraction = linear_fraction(self.updates, self.total_updates)
            for group in self.optimizer.param_groups:
                group["lr"] = cfg.learning_rate * fraction
        self.world.sync(self.obs_scaler, self.reward_scaler)
        with torch.no_grad():
            units = self._units(self._targets(next_observations))
        history: list[dict[str, torch.Tensor]] = []
        adaptive, carried = cfg.learning_rate_scheduler == "kl_adaptive", None
        for epoch in range(cfg.learning_epochs):
            kls = self._epoch(units, history, carried)
            carried = None
            if adaptive and not cfg.kl_threshold and epoch + 1 < cfg.learning_epochs:
                carried = kls  # the next epoch adapts the rate before its first step
            elif adaptive or cfg.kl_threshold:
                epoch_kl = self.world.mean(kls)
                if adaptive:
                    self._adapt_learning_rate(float(epoch_kl.mean()))
                if cfg.kl_threshold and float(epoch_kl[-1]) > cfg.kl_threshold:
                    break
        self.updates += 1
        result = {k: float(torch.stack([h[k] for h in history]).mean()) for k in history[0]}
        result["learning_rate"] = float(self.optimizer.param_groups[0]["lr"])
        result["policy_std"] = float(self.rollout.tensors["log_std"][-1].exp().mean())
        return result

    @torch.no_grad()
    def act_eval(
        self, observations: torch.Tensor, states: list[torch.Tensor], *, deterministic: bool = True
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Act for evaluation without touching the training state.

        Args:
            observations: Shape (N, num_observations).
            states: Hidden states from :meth:`eval_states` (empty for MLP policies).
            deterministic: Take the mean action instead of a sample.

        Returns:
            Actions (N, A) and the next hidden states.
        """
        x = self._normalize(observations)
        actions, outputs = self.policy.act({"observations": x, "rnn": states}, role="policy")
        return (outputs["mean_actions"] if deterministic else actions), outputs.get("rnn", [])

    def eval_states(self, batch: int) -> list[torch.Tensor]:
        """Initial hidden states for ``batch`` evaluation environments.

        Args:
            batch: Number of environments.

        Returns:
            Zero states (empty for MLP policies).
        """
        return zero_states(self.policy, batch)

    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs, as nested dicts of tensors and JSON values.

        Returns:
            Models, optimizer, normalisers, rollout, hidden states and counters.
        """
        return {
            "policy": self.policy.state_dict(),
            "value": self.value.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "obs_scaler": self.obs_scaler.state() if self.obs_scaler else None,
            "value_scaler": self.value_scaler.state() if self.value_scaler else None,
            "reward_scaler": (
                {k: torch.from_numpy(v) for k, v in self.reward_scaler.state().items()} if self.reward_scaler else None
            ),
            "rollout": self.rollout.state(),
            "policy_states": list(self.policy_states),
            "value_states": list(self.value_states),
            "updates": self.updates,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned.

        Args:
            state: As returned by :meth:`state`.
        """
        self.policy.load_state_dict(state["policy"])
        self.value.load_state_dict(state["value"])
        self.optimizer.load_state_dict(state["optimizer"])
        for scaler, key in ((self.obs_scaler, "obs_scaler"), (self.value_scaler, "value_scaler")):
            if scaler is not None:
                scaler.load_state(state[key])
        if self.reward_scaler is not None:
            self.reward_scaler.load_state({k: v.numpy() for k, v in state["reward_scaler"].items()})
        self.rollout.load_state(state["rollout"])
        self.policy_states = [s.to(self.device) for s in state["policy_states"]]
        self.value_states = [s.to(self.device) for s in state["value_states"]]
        self.updates = int(state["updates"])

    def policy_arrays(self) -> PolicyArrays:
        """The policy's parameters and observation statistics under the torch twin's names (``gaussrl export``).

        Returns:
            The arrays.
        """
        return policy_arrays(self.policy, self.obs_scaler)
