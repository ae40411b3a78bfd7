"""A worker of the 2-rank tests, started by ``python -m torch.distributed.run``: ``worker.py OUT``.

Each rank runs one PPO and one SAC update on fixed per-rank data and saves the stepped gradients
(``OUT/grads_rank<r>.npz``); then PPO and SAC runs on Pendulum with a parameter digest after every
update, each resumed from its middle checkpoint (``OUT/train_rank<r>.json``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import gymnasium
import numpy as np
import torch
import torch.distributed as dist

from gaussrl.io.checkpoint import list_checkpoints
from gaussrl.trainer.build import build_ppo, build_sac
from gaussrl.trainer.distributed import broadcast_agent, start_world, stop_world
from gaussrl.trainer.loop import TrainConfig, Trainer
from tests.distributed import cases


def grads(world, out: Path) -> dict:
    """The gradients one PPO and one SAC update stepped with, on this rank's part of fixed data."""
    obs = gymnasium.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    act = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
    torch.manual_seed(0)
    ppo = build_ppo(cases.GRAD_PPO, obs, act, num_envs=cases.ENVS, policy="mlp", device="cpu", world=world)
    broadcast_agent(world, ppo)
    envs = slice(world.rank * cases.ENVS, (world.rank + 1) * cases.ENVS)
    ppo_grads = cases.ppo_gradients(ppo, envs)
    torch.manual_seed(0)
    sac = build_sac(cases.GRAD_SAC, obs, act, num_envs=1, device="cpu", world=world)
    rows = slice(world.rank * cases.GRAD_SAC.batch_size, (world.rank + 1) * cases.GRAD_SAC.batch_size)
    sac_grads = cases.sac_gradients(sac, rows)
    np.savez(out / f"grads_rank{world.rank}.npz", *ppo_grads, *sac_grads)
    return {"ppo": len(ppo_grads), "sac": len(sac_grads)}


CALLS: dict[str, int] = {}
"""Calls of each torch.distributed collective so far in this rank (counted by :func:`count_collectives`)."""


def count_collectives() -> None:
    """Count this rank's calls of the torch.distributed collectives the agents use, into CALLS."""
    for name in ("all_reduce", "all_gather", "broadcast", "isend", "irecv"):
        function = getattr(dist, name)

        def counted(*args, _name=name, _function=function, **kwargs):
            CALLS[_name] = CALLS.get(_name, 0) + 1
            return _function(*args, **kwargs)

        setattr(dist, name, counted)


def run(config: TrainConfig, world) -> tuple[list[str], str, list[dict[str, int]]]:
    """Train; the parameter digests at the start and after every update, the final one, each update's collectives."""
    trainer = Trainer(config, world)
    agent = trainer.agent
    digests = [cases.digest(cases.agent_parameters(agent))]
    calls = []
    update = agent.update

    def recorded(*args, **kwargs):
        before = dict(CALLS)
        result = update(*args, **kwargs)
        calls.append({k: v - before.get(k, 0) for k, v in CALLS.items() if v - before.get(k, 0)})
        digests.append(cases.digest(cases.agent_parameters(agent)))
        return result

    agent.update = recorded
    try:
        trainer.run()
    finally:
        trainer.close()
    return digests, cases.digest(cases.agent_parameters(agent)), calls


def train(world, out: Path) -> dict:
    """PPO and SAC: an uninterrupted run, then one resumed from its middle checkpoint."""
    result = {}
    for algo, total, every in (("ppo", 3200, 1600), ("sac", 1200, 800)):
        base = TrainConfig(
            algo=algo,
            timesteps=total,
            num_envs=2,
            out=str(out / f"{algo}_full"),
            checkpoint_interval=every,
            eval_interval=0,
            eval_episodes=2,
            progress=False,
            tensorboard=False,
            ppo=cases.TINY_PPO,
            sac=cases.TINY_SAC,
        )
        digests, final, calls = run(base, world)
        resumed_dir = out / f"{algo}_resumed"
        if world.is_main:
            shutil.copytree(base.out, resumed_dir)
            for path in list_checkpoints(resumed_dir / "checkpoints")[1:]:
                path.with_suffix(".safetensors").unlink()
                path.unlink()
        dist.barrier()
        resumed = dataclasses.replace(base, out=None, resume=str(resumed_dir))
        resumed_digests, resumed_final, _ = run(resumed, world)
        summary = json.loads((Path(base.out) / "summary.json").read_text()) if world.is_main else None
        result[algo] = {
            "digests": digests,
            "final": final,
            "collectives": calls,
            "resumed_digests": resumed_digests,
            "resumed_final": resumed_final,
            "summary": summary,
        }
    return result


def main() -> None:
    """Run the gradient and the training cases on this rank."""
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    count_collectives()
    world, _ = start_world("cpu", 60.0)
    try:
        (out / f"grads_rank{world.rank}.json").write_text(json.dumps(grads(world, out)))
        (out / f"train_rank{world.rank}.json").write_text(json.dumps(train(world, out)))
    finally:
        stop_world(world)


if __name__ == "__main__":
    main()
