"""Contract adapter for ``gaussrl.models.jax``.

float64 policies are built and called inside ``jax.enable_x64(True)``, a context, so the
process-wide x64 flag is never flipped.
"""

from __future__ import annotations

import contextlib
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gaussrl.models.jax import DeterministicMixin, GaussianMixin, Model, gaussian_kl
from tests.contract.adapters.base import Backend


class _Policy(GaussianMixin, Model):
    def __init__(
        self,
        action_space: Any,
        *,
        state_dependent: bool = False,
        dtype: str = "float32",
        log_std_size: int | None = None,
        omit_log_std: bool = False,
        roles: list[str] | None = None,
        extras: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        size = action_space.shape[0] if hasattr(action_space, "shape") else int(action_space)
        obs = 2 * size if state_dependent else size
        Model.__init__(self, observation_space=obs, action_space=action_space, device="cpu")
        GaussianMixin.__init__(self, **options)
        self.state_dependent = state_dependent
        self.dtype_name = dtype
        self.log_std_size = log_std_size or self.num_actions
        self.omit_log_std = omit_log_std
        self.roles = [] if roles is None else roles
        self.extras = {} if extras is None else extras

    @nn.compact
    def __call__(self, inputs, role):
        # Runs while tracing: once per new role, input structure or shape.
        self.roles.append(role)
        obs = inputs["observations"]
        a = self.num_actions
        if self.omit_log_std:
            return obs[:, :a], {}
        if self.state_dependent:
            return obs[:, :a], {"log_std": obs[:, a:]}
        log_std = self.param("log_std", nn.initializers.zeros, (self.log_std_size,), jnp.dtype(self.dtype_name))
        return obs[:, :a], {"log_std": log_std, **self.extras}


def _np(tree: Any) -> Any:
    return jax.tree_util.tree_map(np.asarray, tree)


def _precision(policy: Any) -> contextlib.AbstractContextManager[Any]:
    return jax.enable_x64(True) if policy.dtype_name == "float64" else contextlib.nullcontext()


def _entropy(policy: Any, outputs: dict[str, Any], shape: tuple[int, ...]) -> jax.Array:
    entropy = policy.get_entropy(jnp.exp(outputs["log_std"]), pre_tanh=outputs.get("pre_tanh"))
    return jnp.broadcast_to(entropy, shape)


class JaxBackend(Backend):
    name = "jax"
    has_distribution_state = False

    def policy(
        self,
        action_space,
        *,
        state_dependent=False,
        dtype="float32",
        omit_log_std=False,
        log_std_size=None,
        extras=None,
        **options,
    ):
        with jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext():
            policy = _Policy(
                action_space,
                state_dependent=state_dependent,
                dtype=dtype,
                log_std_size=log_std_size,
                omit_log_std=omit_log_std,
                roles=[],
                extras=extras,
                **options,
            )
            policy.init_state_dict()
        return policy

    def _inputs(self, policy, mean, log_std, taken_actions):
        dtype = jnp.dtype(policy.dtype_name)
        obs = jnp.asarray(mean, dtype)
        params = policy.state_dict.params
        if policy.state_dependent:
            obs = jnp.concatenate([obs, jnp.asarray(log_std, dtype)], axis=-1)
        elif not policy.omit_log_std:
            params = {"params": {**params["params"], "log_std": jnp.asarray(log_std, dtype)}}
        inputs = {"observations": obs}
        if taken_actions is not None:
            inputs["taken_actions"] = jnp.asarray(taken_actions, dtype)
        return params, inputs

    def act_raw(self, policy, mean, log_std):
        params, inputs = self._inputs(policy, mean, log_std, None)
        policy.state_dict = policy.state_dict.replace(params=params)
        return policy.act(inputs)

    def act(self, policy, mean, log_std, taken_actions=None, role=""):
        with _precision(policy):
            params, inputs = self._inputs(policy, mean, log_std, taken_actions)
            policy.state_dict = policy.state_dict.replace(params=params)
            actions, outputs = policy.act(inputs, role=role)
            policy.last_outputs = (outputs, actions.shape)
            return _np(actions), _np(outputs)

    def act_inputs(self, policy, inputs, role=""):
        with _precision(policy):
            actions, outputs = policy.act({k: jnp.asarray(v) for k, v in inputs.items()}, role=role)
            return _np(actions), _np(outputs)

    def entropy(self, policy, role=""):
        outputs, shape = policy.last_outputs
        with _precision(policy):
            return np.asarray(_entropy(policy, outputs, shape))

    def seed(self, policy, seed):
        policy.seed(seed)

    def grads(self, policy, mean, log_std, of, taken_actions=None):
        with _precision(policy):
            params, inputs = self._inputs(policy, mean, log_std, taken_actions)

            def total(obs, params):
                actions, outputs = policy.act({**inputs, "observations": obs}, params=params)
                values = {
                    "log_prob": lambda: outputs["log_prob"],
                    "actions": lambda: actions,
                    "entropy": lambda: _entropy(policy, outputs, actions.shape),
                }
                return sum(jnp.sum(values[name]()) for name in of.split("+")), (actions, outputs)

            (grad_obs, grad_params), (actions, outputs) = jax.grad(total, argnums=(0, 1), has_aux=True)(
                inputs["observations"], params
            )
        a = policy.num_actions
        grad_log_std = grad_obs[:, a:] if policy.state_dependent else grad_params["params"]["log_std"]
        return _np(actions), _np(outputs), {"mean": np.asarray(grad_obs[:, :a]), "log_std": np.asarray(grad_log_std)}

    def kl(self, mean_p, log_std_p, mean_q, log_std_q, reduction):
        arrays = [jnp.asarray(x) for x in (mean_p, log_std_p, mean_q, log_std_q)]
        return np.asarray(gaussian_kl(*arrays, reduction=reduction))

    def define_mixin_after_model(self):
        class Bad(Model, GaussianMixin):
            def __call__(self, inputs, role):
                return inputs["observations"], {}

    def init_mixin_before_model(self, action_space):
        class Early(GaussianMixin, Model):
            def __init__(self):
                GaussianMixin.__init__(self)
                Model.__init__(self, observation_space=1, action_space=action_space)

        Early()

    def deterministic(self, action_space, x, *, clip_actions):
        class Value(DeterministicMixin, Model):
            def __init__(self):
                Model.__init__(self, observation_space=x.shape[-1], action_space=action_space, device="cpu")
                DeterministicMixin.__init__(self, clip_actions=clip_actions)

            def __call__(self, inputs, role):
                return inputs["observations"], {}

        value = Value()
        value.init_state_dict()
        actions, _ = value.act({"observations": jnp.asarray(x)})
        return np.asarray(actions)


ADAPTER = JaxBackend()
