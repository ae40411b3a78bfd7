"""Where the CPU time of gaussrl's Warp agents goes (Pendulum-v1, one thread, Warp's CPU device).

    python benchmarks/profile_warp.py phases     # a PPO rollout act and minibatch step, a SAC gradient step, by phase
    python benchmarks/profile_warp.py tiles ROWS WIDTH {relu,tanh} ROUNDS TILE...   # e.g. 128 64 tanh 7 64x64 128x32
    python benchmarks/profile_warp.py dense ROWS IN OUT ROUNDS   # gaussrl's Dense against warp-nn's Linear

Every figure is CPU time of this process (``time.process_time``), so that other jobs on a shared
machine do not inflate it; ``tiles`` gives the minimum over interleaved rounds of a forward and a
forward + backward pass of a 4-WIDTH-WIDTH-1 warp-nn MLP on ROWS rows for each tile.
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import warp as wp

CLOCK = time.process_time


def _per_call(fn: Callable[[], Any], calls: int) -> float:
    """Microseconds of CPU per call, after a few untimed calls."""
    for _ in range(3):
        fn()
    start = CLOCK()
    for _ in range(calls):
        fn()
    return (CLOCK() - start) / calls * 1e6


def tiles(rows: int, width: int, activation: str, rounds: int, shapes: list[str]) -> None:
    """Forward and forward + backward of one MLP per tile, interleaved, minimum over the rounds."""
    from warp_nn import nn
    from warp_nn.utils import kernel_config

    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    nets = {}
    for shape in shapes:
        tile_2d = (int(shape.split("x")[0]), int(shape.split("x")[1]))
        with wp.ScopedDevice("cpu"), kernel_config(tile_2d=tile_2d):
            nets[tile_2d] = nn.Sequential(
                nn.Linear(4, width), act(), nn.Linear(width, width), act(), nn.Linear(width, 1)
            )
    x = wp.array(
        np.random.default_rng(0).standard_normal((rows, 4)).astype(np.float32), device="cpu", requires_grad=True
    )

    def forward_backward(net: Any) -> None:
        tape = wp.Tape()
        with tape:
            y = net(x)
        tape.backward(grads={y: wp.ones_like(y)})
        tape.zero()

    best: dict[Any, list[float]] = defaultdict(lambda: [float("inf")] * 2)
    calls = max(1, 2000 // rows)
    for _ in range(rounds):
        for tile_2d, net in nets.items():
            best[tile_2d][0] = min(best[tile_2d][0], _per_call(lambda net=net: net(x), calls))
            best[tile_2d][1] = min(best[tile_2d][1], _per_call(lambda net=net: forward_backward(net), calls))
    for tile_2d, (forward, both) in best.items():
        name = f"rows {rows} width {width} {activation} tile {tile_2d}"
        print(f"{name}: forward {forward:.0f} us, forward+backward {both:.0f} us")


def dense(rows: int, n_in: int, n_out: int, rounds: int) -> None:
    """One layer's forward and forward + backward: warp-nn's ``Linear`` ((64, 64) tile) against ``Dense``.

    Both from the same parameters, interleaved, minimum over the rounds; ``Dense`` under its own
    tape (its backward kernels), under a plain ``wp.Tape`` (Warp's adjoint of its forward kernel)
    and with its parameters frozen (the input gradient alone, as for SAC's critics in the policy step).
    """
    from warp_nn import nn
    from warp_nn.utils import kernel_config

    from gaussrl.agents.warp.dense import Dense, Tape

    rng = np.random.default_rng(0)
    with wp.ScopedDevice("cpu"), kernel_config(tile_2d=(64, 64)):
        linear = nn.Linear(n_in, n_out)
        ours = Dense(n_in, n_out)
    ours.weight.data.assign(linear.weight.data)
    ours.bias.data.assign(linear.bias.data)
    x = wp.array(rng.standard_normal((rows, n_in)).astype(np.float32), device="cpu", requires_grad=True)
    g = wp.array(rng.standard_normal((rows, n_out)).astype(np.float32), device="cpu")

    def forward_backward(layer: Any, tape: Any) -> None:
        with tape:
            y = layer(x)
        tape.backward(grads={y: g})
        tape.zero()

    frozen = [ours.weight.data, ours.bias.data]
    cases: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "warp-nn Linear, wp.Tape": (lambda: linear(x), lambda: forward_backward(linear, wp.Tape())),
        "Dense, gaussrl Tape": (lambda: ours(x), lambda: forward_backward(ours, Tape())),
        "Dense, wp.Tape": (lambda: ours(x), lambda: forward_backward(ours, wp.Tape())),
        "Dense, gaussrl Tape, frozen": (lambda: ours(x), lambda: forward_backward(ours, Tape(frozen=frozen))),
    }
    best: dict[str, list[float]] = defaultdict(lambda: [float("inf")] * 2)
    calls = max(5, 20000 // rows)
    for _ in range(rounds):
        for name, (forward, both) in cases.items():
            best[name][0] = min(best[name][0], _per_call(forward, calls))
            best[name][1] = min(best[name][1], _per_call(both, calls))
    for name, (forward, both) in best.items():
        print(f"{rows} x {n_in} -> {n_out}, {name}: forward {forward:.0f} us, forward+backward {both:.0f} us")


def _agents() -> tuple[Any, Any, Any]:
    import torch

    from gaussrl.agents.config import SACConfig
    from gaussrl.envs import TorchVecEnv, make_vector_env
    from gaussrl.trainer.presets import train_defaults
    from gaussrl.trainer.warp_backend import WarpAgent, build_warp_ppo, build_warp_sac

    torch.set_num_threads(1)
    preset = train_defaults("Pendulum-v1")
    envs = {"ppo": TorchVecEnv(make_vector_env("Pendulum-v1", preset.envs), seed=0)}
    envs["sac"] = TorchVecEnv(make_vector_env("Pendulum-v1", 1), seed=0)
    spaces = {k: (e.observation_space, e.action_space) for k, e in envs.items()}
    ppo = WarpAgent(build_warp_ppo(preset.ppo, *spaces["ppo"], num_envs=preset.envs, device="cpu"))
    sac_config = SACConfig(learning_starts=256, random_timesteps=256)
    sac = WarpAgent(build_warp_sac(sac_config, *spaces["sac"], num_envs=1, device="cpu"))
    for name, agent, steps in (("ppo", ppo, 2 * preset.ppo.rollouts), ("sac", sac, 300)):  # PPO: two updates
        observations = envs[name].reset()
        for _ in range(steps):
            step = envs[name].step(agent.act(observations))
            agent.observe(step)
            observations = step.observations
    return ppo.agent.agent, sac.agent.agent, envs


def phases() -> None:
    """A PPO rollout act and a minibatch step, a SAC gradient step, each by phase."""
    import torch

    ppo, sac, envs = _agents()
    observations = wp.array(np.zeros((ppo.num_envs, 3), np.float32), device="cpu")
    inputs = {"observations": observations}
    print(
        f"PPO act, {ppo.num_envs} rows: agent {_per_call(lambda: ppo.act(observations), 500):.0f} us, "
        f"policy.act {_per_call(lambda: ppo.policy.act(inputs, role='policy'), 500):.0f} us, "
        f"policy.compute {_per_call(lambda: ppo.policy.compute(inputs), 500):.0f} us; "
        f"environment step {_per_call(lambda: envs['ppo'].step(torch.zeros(ppo.num_envs, 1)), 500):.0f} us"
    )
    update = _per_call(lambda: ppo.update(observations), 2)
    print(f"PPO update ({ppo.config.rollouts * ppo.num_envs} samples): {update / 1e3:.0f} ms")
    batch = sac.batch
    x = sac._normalize(batch["observations"])
    print(
        f"SAC gradient step: {_per_call(sac.update, 10) / 1e3:.1f} ms; critic step "
        f"{_per_call(lambda: sac._critic_step(batch, x, sac.metrics), 10) / 1e3:.1f} ms, policy step "
        f"{_per_call(lambda: sac._policy_step(x, sac.metrics), 10) / 1e3:.1f} ms, critic Adam "
        f"{_per_call(sac.critic_optimizer.step, 50):.0f} us; act (1 row) "
        f"{_per_call(lambda: sac.act(wp.array(np.zeros((1, 3), np.float32), device='cpu')), 200):.0f} us"
    )


if __name__ == "__main__":
    wp.config.log_level = wp.LOG_WARNING
    if sys.argv[1] == "tiles":
        tiles(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6:])
    elif sys.argv[1] == "dense":
        dense(*(int(v) for v in sys.argv[2:6]))
    else:
        phases()
