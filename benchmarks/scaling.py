"""Data-parallel scaling: environment steps per second with 1 and N ranks, and PPO learning curves.

Runs ``gaussrl train --nproc R`` (torch's elastic launcher, gloo, one CPU thread per rank) as a
subprocess and reads each run's ``summary.json`` (``env_steps_per_s`` covers the training loop:
no evaluation inside it, the checkpoint written after the clock stops) and ``metrics.jsonl``.

* Throughput: PPO and SAC on Pendulum-v1 with 1 and ``--ranks`` ranks, the same total steps
  (SAC learning from step 64 on every rank). Beside the wall-clock rate, the CPU seconds the
  ranks spent (all processes, ``getrusage``) minus those of a one-update run of the same command
  (start-up, imports, final evaluation): ``cpu_1 / (cpu_N / N)`` is the speed-up the ranks would
  reach with a core each and no waiting, a figure a loaded machine does not distort much.
* Learning: PPO on Pendulum-v1, 100k total steps, seeds 0, 1, 2, with 1 rank and with
  ``--ranks`` ranks (the defaults, and ``--ppo.rollouts`` divided by the rank count, which keeps
  the global batch and the number of updates of the 1-rank run).

    python benchmarks/scaling.py [--ranks 2] [--markdown benchmarks/results/scaling.md]
    python benchmarks/scaling.py --skip-learning --env HalfCheetah-v5 --ppo-steps 20480 --sac-steps 2000

The machine's load average is recorded beside the figures: on a shared machine, ranks compete
with other processes for the cores and the speed-up falls.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

THROUGHPUT_STEPS = {"ppo": 40_960, "sac": 4_000}
BASELINE_STEPS = {"ppo": 4_096, "sac": 256}
SAC_OPTIONS = ("--sac.learning-starts", "64", "--sac.random-timesteps", "64")
LEARNING_STEPS = 100_000
SEEDS = (0, 1, 2)


def children_cpu_s() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def train(out: Path, ranks: int, *options: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One ``gaussrl train`` run; its summary (plus ``cpu_s``, of every process) and metric records."""
    command = [sys.executable, "-m", "gaussrl", "train", "--nproc", str(ranks), "--out", str(out)]
    command += ["--no-progress", "--no-tensorboard", "--checkpoint-interval", "0", *options]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    before = children_cpu_s()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    summary = json.loads((out / "summary.json").read_text())
    summary["cpu_s"] = children_cpu_s() - before
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return summary, records


def load() -> str:
    """The 1, 5 and 15-minute load averages."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def throughput(root: Path, ranks: int, env: str, total_steps: dict[str, int]) -> list[str]:
    """Rows of the throughput table."""
    rows = []
    for algo, steps in total_steps.items():
        rates, cpu = {}, {}
        for count in (1, ranks):
            before = load()
            options = ("--env", env, "--algo", algo, "--eval-interval", "0", *(SAC_OPTIONS if algo == "sac" else ()))
            base, _ = train(root / f"{algo}-{count}-base", count, *options, "--timesteps", str(BASELINE_STEPS[algo]))
            summary, _ = train(root / f"{algo}-{count}", count, *options, "--timesteps", str(steps))
            rates[count] = summary["env_steps_per_s"]
            cpu[count] = summary["cpu_s"] - base["cpu_s"]
            print(f"{algo} {count} rank(s): {rates[count]} steps/s, loop CPU {cpu[count]:.1f} s (load: {before})")
        speedup, bound = rates[ranks] / rates[1], cpu[1] / (cpu[ranks] / ranks)
        rows.append(
            f"| {algo} | {steps} | {rates[1]:.0f} | {rates[ranks]:.0f} | {speedup:.2f}x | {cpu[1]:.1f} | "
            f"{cpu[ranks]:.1f} | {bound:.2f}x | {load()} |"
        )
    return rows


def learning(root: Path, ranks: int) -> list[str]:
    """Rows of the learning table: the evaluation return every 10k steps and at the end."""
    setups = {
        "1 rank": (1, ()),
        f"{ranks} ranks": (ranks, ()),
        f"{ranks} ranks, rollouts 512/{ranks}": (ranks, ("--ppo.rollouts", str(512 // ranks))),
    }
    rows = []
    for name, (count, options) in setups.items():
        finals = []
        for seed in SEEDS:
            out = root / f"learn-{count}-{len(options)}-{seed}"
            summary, records = train(out, count, "--timesteps", str(LEARNING_STEPS), "--seed", str(seed), *options)
            curve = [f"{r['return_mean']:.0f}" for r in records if r["kind"] == "eval"]
            finals.append(summary["eval_return_mean"])
            rows.append(f"| {name} | {seed} | {' '.join(curve)} | {summary['eval_return_mean']:.1f} |")
            print(rows[-1], flush=True)
        print(f"{name}: min final {min(finals):.1f}", flush=True)
    return rows


def main() -> None:
    """Measure and write the Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--skip-learning", action="store_true")
    parser.add_argument("--env", default="Pendulum-v1", help="environment of the throughput runs (its preset applies)")
    parser.add_argument("--ppo-steps", type=int, default=THROUGHPUT_STEPS["ppo"], help="total PPO steps per run")
    parser.add_argument("--sac-steps", type=int, default=THROUGHPUT_STEPS["sac"], help="total SAC steps per run")
    args = parser.parse_args()
    total_steps = {"ppo": args.ppo_steps, "sac": args.sac_steps}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lines = [f"Machine: {os.cpu_count()} cores; load average (1/5/15 min) at the start: {load()}.", ""]
        lines += [f"Throughput on {args.env}.", ""]
        lines += [
            "| algo | total steps | 1 rank steps/s | N ranks steps/s | speed-up | 1 rank loop CPU s "
            "| N ranks loop CPU s | speed-up, a core per rank | load after |"
        ]
        lines += ["|---|---|---|---|---|---|---|---|---|", *throughput(root, args.ranks, args.env, total_steps), ""]
        if not args.skip_learning:
            lines += ["| setup | seed | eval return every 10k steps | final eval |", "|---|---|---|---|"]
            lines += learning(root, args.ranks)
    text = "\n".join(lines).replace("N ranks", f"{args.ranks} ranks") + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
