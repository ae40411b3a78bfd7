"""skrl's Warp models for the throughput benchmark: the widths and activations of gaussrl's networks.

PPO: a Gaussian MLP policy (tanh) with a state-independent log-std and an MLP value; SAC: a
Gaussian policy (ReLU) whose mean is squashed as ``2 tanh(.)`` (skrl 2.x has no squashed
Gaussian) and four Q-networks on the concatenation of observation and action.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import warp as wp


def skrl_warp_models(algo: str, env: Any, hidden_sizes: Sequence[int]) -> dict[str, Any]:
    """skrl Warp models: ``{"policy", "value"}`` for PPO, policy and four critics for SAC.

    Args:
        algo: ``"ppo"`` or ``"sac"``.
        env: skrl's wrapped environment.
        hidden_sizes: Hidden layer widths.

    Returns:
        Role to model.
    """
    from skrl.models.warp import DeterministicMixin, GaussianMixin, Model
    from skrl.utils.framework.warp.math import scalar_mul
    from warp_nn import nn

    from gaussrl.agents.warp.kernels import concat_kernel

    activation = nn.Tanh if algo == "ppo" else nn.ReLU
    num_obs, num_act = env.observation_space.shape[0], env.action_space.shape[0]

    def mlp(inputs: int, outputs: int, squash: bool = False) -> nn.Sequential:
        layers: list[Any] = []
        for width in hidden_sizes:
            layers += [nn.Linear(inputs, width), activation()]
            inputs = width
        layers.append(nn.Linear(inputs, outputs))
        return nn.Sequential(*layers, nn.Tanh()) if squash else nn.Sequential(*layers)

    class Policy(GaussianMixin, Model):  # type: ignore[misc]
        def __init__(self) -> None:
            Model.__init__(self, observation_space=env.observation_space, action_space=env.action_space, device="cpu")
            GaussianMixin.__init__(self, clip_actions=False, clip_log_std=True, min_log_std=-20, max_log_std=2)
            self.net = mlp(num_obs, num_act, squash=algo == "sac")
            self.log_std_parameter = nn.Parameter(wp.zeros(num_act, dtype=wp.float32, device="cpu"))
            self.__post_init__()

        def compute(self, inputs: dict[str, Any], role: str = "") -> tuple[wp.array, dict[str, Any]]:
            mean = self.net(inputs["observations"])
            return (mean if algo == "ppo" else scalar_mul(mean, 2.0)), {"log_std": self.log_std_parameter.data}

    class Critic(DeterministicMixin, Model):  # type: ignore[misc]
        def __init__(self) -> None:
            Model.__init__(self, observation_space=env.observation_space, action_space=env.action_space, device="cpu")
            DeterministicMixin.__init__(self)
            self.net = mlp(num_obs + (0 if algo == "ppo" else num_act), 1)
            self.__post_init__()

        def compute(self, inputs: dict[str, Any], role: str = "") -> tuple[wp.array, dict[str, Any]]:
            x = inputs["observations"]
            if algo == "ppo":
                return self.net(x), {}
            actions = inputs["taken_actions"]
            joined = wp.empty((x.shape[0], num_obs + num_act), dtype=wp.float32, device="cpu", requires_grad=True)
            wp.launch(concat_kernel, joined.shape, inputs=[x, actions], outputs=[joined], device="cpu")
            return self.net(joined), {}

    if algo == "ppo":
        return {"policy": Policy(), "value": Critic()}
    return {
        "policy": Policy(),
        **{name: Critic() for name in ("critic_1", "critic_2", "target_critic_1", "target_critic_2")},
    }
