"""Where a data-parallel rank's time goes: collectives per update, their cost, and the machine's share.

Three runs of the same per-process work (``--steps`` environment steps per process, PPO or SAC on
Pendulum-v1, one torch thread, gloo), each process reporting its training loop's CPU time:

* ``1 process``: one process alone;
* ``N independent``: N one-process runs side by side, no torch.distributed: what running N
  processes at once costs on this machine by itself;
* ``N ranks``: ``python -m torch.distributed.run`` with N ranks, each counting and timing its
  collectives (``torch.distributed`` calls wrapped here) and the CPU time of its threads
  (``/proc/self/task``: the main thread, gloo's ``gloo_tcp_loop`` and ``pt_gloo_runloop``).

Then the latency of a lone ``all_reduce`` between N ranks (no training), whose minimum bounds the
time a rank waits per collective. Compare CPU seconds and counts, not wall time, on a shared machine.

    python benchmarks/collectives.py --algo ppo --ranks 2 --steps 20480
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

COLLECTIVES = ("all_reduce", "all_gather", "broadcast", "send", "recv", "isend", "irecv")
SAC_OPTIONS = {"learning_starts": 64, "random_timesteps": 64}


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds of each thread of this process, keyed ``name:tid``."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        except OSError:  # the thread ended
            continue
        out[f"{name}:{tid}"] = (int(fields[11]) + int(fields[12])) / ticks
    return out


class Awaited:
    """A collective's handle whose ``wait()`` adds its wall and CPU seconds to the collective's entry."""

    def __init__(self, work: Any, entry: list[float]) -> None:
        self.work, self.entry = work, entry

    def wait(self, *args: Any) -> Any:
        """The handle's ``wait()``, timed."""
        wall, cpu = time.perf_counter(), time.thread_time()
        result = self.work.wait(*args)
        self.entry[2] += time.perf_counter() - wall
        self.entry[3] += time.thread_time() - cpu
        return result

    def is_completed(self) -> Any:
        """The handle's ``is_completed()``."""
        return self.work.is_completed()


def count_collectives(stats: dict[str, list[float]]) -> None:
    """Wrap the torch.distributed collectives: calls, bytes, wall and calling-thread CPU seconds into ``stats``."""
    import torch.distributed as dist

    def wrap(name: str, function: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            result = function(*args, **kwargs)
            tensor = args[1] if name == "all_gather" else args[0]
            entry = stats[name]
            entry[0] += 1
            entry[1] += tensor.numel() * tensor.element_size()
            entry[2] += time.perf_counter() - wall
            entry[3] += time.thread_time() - cpu
            return result if result is None else Awaited(result, entry)

        return counted

    for name in COLLECTIVES:
        setattr(dist, name, wrap(name, getattr(dist, name)))


def worker(algo: str, steps: int, out: Path, ring: bool) -> None:
    """Train in this process (a rank when launched by torch.distributed.run); print one JSON line."""
    import torch

    from gaussrl.agents.config import SACConfig
    from gaussrl.agents.torch import distributed
    from gaussrl.trainer.distributed import start_world, stop_world
    from gaussrl.trainer.loop import TrainConfig, Trainer

    if ring:  # gloo's ring all-reduce for the gradients, not the exchange of a few ranks
        distributed.EXCHANGE_MAX_RANKS = 0
    stats: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0.0])
    count_collectives(stats)
    world, _ = start_world("cpu", 120.0)
    extra = {"sac": SACConfig(**SAC_OPTIONS)} if algo == "sac" else {}
    config = TrainConfig(
        algo=algo,
        timesteps=steps * world.size,
        eval_interval=0,
        eval_episodes=1,
        checkpoint_interval=0,
        progress=False,
        tensorboard=False,
        out=str(out / f"rank{world.rank}-{os.getpid()}"),
        threads=1,
        **extra,  # type: ignore[arg-type]
    )
    trainer = Trainer(config, world)
    loop, result = trainer._loop, {}

    def measured(*args: Any) -> None:
        threads, cpu, wall = thread_cpu_s(), time.process_time(), time.perf_counter()
        stats.clear()
        loop(*args)
        result["loop_cpu_s"] = time.process_time() - cpu
        result["loop_wall_s"] = time.perf_counter() - wall
        result["collectives"] = {k: [round(x, 4) for x in v] for k, v in stats.items() if v[0]}
        after = thread_cpu_s()
        result["threads"] = {k: round(v - threads.get(k, 0.0), 3) for k, v in after.items()}

    trainer._loop = measured  # type: ignore[method-assign]
    trainer.run()
    trainer.close()
    agent = trainer.agent
    updates = getattr(agent, "updates", 0) or max(0, steps - SAC_OPTIONS["learning_starts"] + 1)
    result.update(
        rank=world.rank,
        size=world.size,
        steps=steps,
        updates=updates,
        torch_threads=torch.get_num_threads(),
        omp=os.environ.get("OMP_NUM_THREADS"),
        affinity=sorted(os.sched_getaffinity(0)),
    )
    print("RESULT " + json.dumps(result), flush=True)
    stop_world(world)


def latency(ranks: int) -> None:
    """Per-call wall time of a lone all_reduce of 2, 8.6k and 34k floats between the ranks (rank 0 prints)."""
    import torch
    import torch.distributed as dist

    from gaussrl.agents.torch.distributed import World

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    world = World(rank=dist.get_rank(), size=dist.get_world_size())
    for kind in ("all_reduce", "exchange"):
        for numel in (2, 8_600, 34_000):
            tensor = torch.ones(numel)
            parameter = torch.nn.Parameter(torch.zeros(numel))

            def once(
                tensor: torch.Tensor = tensor, parameter: torch.nn.Parameter = parameter, kind: str = kind
            ) -> None:
                if kind == "all_reduce":
                    dist.all_reduce(tensor)
                else:  # World.average_gradients: the exchange for up to EXCHANGE_MAX_RANKS ranks
                    parameter.grad = tensor
                    world.average_gradients([parameter])

            for _ in range(30):
                once()
            times, cpu = [], time.process_time()
            for _ in range(2000):
                start = time.perf_counter()
                once()
                times.append(time.perf_counter() - start)
            cpu_us = round((time.process_time() - cpu) / len(times) * 1e6)
            times.sort()
            quantiles = {q: round(times[int(q * (len(times) - 1))] * 1e6) for q in (0.0, 0.1, 0.5, 0.9)}
            if world.is_main:
                print(
                    "RESULT " + json.dumps({"kind": kind, "numel": numel, "us": quantiles, "cpu": cpu_us}), flush=True
                )
    dist.destroy_process_group()


def results(command: list[str], processes: int = 1) -> list[dict[str, Any]]:
    """Run ``command`` ``processes`` times side by side; the RESULT lines of all of them."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    running = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    lines = [line for p in running for line in p.communicate()[0].splitlines() if line.startswith("RESULT ")]
    if any(p.returncode for p in running):
        raise SystemExit(f"failed: {' '.join(command)}")
    return [json.loads(line[len("RESULT ") :]) for line in lines]


def describe(name: str, runs: list[dict[str, Any]]) -> list[str]:
    """Table rows: one per process."""
    rows = []
    for run in sorted(runs, key=lambda r: r["rank"]):
        threads: dict[str, float] = defaultdict(float)
        for key, value in run["threads"].items():
            threads[key.split(":")[0]] += value
        main = threads.pop("python", 0.0)
        calls = {k: v[0] / run["updates"] for k, v in run["collectives"].items()}
        waited = sum(v[2] for v in run["collectives"].values())
        inside = sum(v[3] for v in run["collectives"].values())
        rows.append(
            f"| {name} | {run['rank']} | {run['loop_wall_s']:.2f} | {run['loop_cpu_s']:.2f} | "
            f"{run['loop_cpu_s'] / run['steps'] * 1e6:.0f} | {main:.2f} | {inside:.2f} | {sum(threads.values()):.2f} | "
            f"{waited:.2f} | "
            f"{', '.join(f'{k} {v:.1f}' for k, v in calls.items()) or '-'} |"
        )
    return rows


def main() -> None:
    """Run the three setups and the latency test; print Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algo", choices=("ppo", "sac"), default="ppo")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="env steps per process (ppo 20480, sac 2000)")
    parser.add_argument("--ring", action="store_true", help="average gradients by gloo's ring all-reduce")
    parser.add_argument("--ranks-only", action="store_true", help="only the N-rank run")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--latency", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    steps = args.steps or (20_480 if args.algo == "ppo" else 2_000)
    if args.latency:
        return latency(args.ranks)
    if args.worker is not None:
        return worker(args.algo, steps, args.worker, args.ring)
    script = [sys.executable, __file__, "--algo", args.algo, "--steps", str(steps), *(["--ring"] if args.ring else [])]
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(args.ranks)]
    print(f"load average at the start: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    print(
        "| setup | rank | loop wall s | loop CPU s | CPU us / env step | main thread CPU s | of it in collectives "
        "| gloo threads CPU s | wall in collectives s | collectives per update |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    setups = [
        ("1 process", [*script, "--worker"], 1),
        (f"{args.ranks} independent", [*script, "--worker"], args.ranks),
        (f"{args.ranks} ranks" + (", ring" if args.ring else ""), [*launch, *script[1:], "--worker"], 1),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, command, count) in enumerate(setups[2:] if args.ranks_only else setups):
            Path(tmp, str(index)).mkdir()
            for row in describe(name, results([*command, str(Path(tmp, str(index)))], count)):
                print(row, flush=True)
    if args.ranks_only:
        return None
    for row in results([*launch, __file__, "--latency", "--ranks", str(args.ranks)]):
        print(
            f"{row['kind']} of {row['numel']} floats: min / p10 / p50 / p90 = "
            f"{' / '.join(str(v) for v in row['us'].values())} us; CPU {row['cpu']} us per call (all threads)"
        )
    print(f"load average at the end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return None


if __name__ == "__main__":
    main()
