"""Time to solve Pendulum-v1 with ``gaussrl train``'s defaults, per seed, on one CPU thread.

Each run is exactly what ``gaussrl train [--algo sac] --seed S --timesteps T`` does (the
configuration comes from the command-line parser, Pendulum preset included; progress bar off),
with T = 100k for PPO (its default) and 20k for SAC (the length of the SAC target). The solve time is the
wall time from the start of the run (building the environments and the agent included) to the
first deterministic evaluation whose mean return reaches the threshold, with the time spent
evaluating excluded; that evaluation time is reported separately, as are the final evaluation
return and the total time (evaluations excluded; checkpoints and logs included).

    python benchmarks/time_to_solve.py ppo [--seeds 0 1 2] [--threshold -170] [--limit 30] [--backends torch jax]
    python benchmarks/time_to_solve.py sac [--timesteps 20000] [--threshold -160] [--limit 150] [--markdown FILE]

``--backends`` runs each seed on each backend (``gaussrl train --backend B``) in the same run,
torch then jax per seed; the JAX runs' times include their compilation.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

from gaussrl.trainer.cli import parse
from gaussrl.trainer.loop import TrainConfig, Trainer

TARGETS = {"ppo": (-170.0, 30.0), "sac": (-160.0, 150.0)}
"""Algorithm -> (return threshold, solve-time limit in seconds)."""
TIMESTEPS = {"ppo": 100_000, "sac": 20_000}
"""Algorithm -> run length: PPO's default; SAC 20k steps (its default, 100k, only adds time after solving)."""


class TimedTrainer(Trainer):
    """A :class:`Trainer` that records, at each evaluation, the training time so far (evaluations excluded)."""

    def __init__(self, config: TrainConfig) -> None:
        self.started = time.perf_counter()
        self.eval_seconds = 0.0
        self.train_seconds = 0.0
        self.evaluations: list[dict[str, float]] = []
        super().__init__(config)

    def run(self) -> dict[str, Any]:
        """Train as :meth:`Trainer.run` does; record the total time less the evaluations'.

        Returns:
            The summary.
        """
        summary = super().run()
        self.train_seconds = time.perf_counter() - self.started - self.eval_seconds
        return summary

    def evaluate(self) -> np.ndarray:
        """Evaluate and record the step, the training time and the return.

        Returns:
            The episode returns.
        """
        start = time.perf_counter()
        returns = super().evaluate()
        train_seconds = start - self.started - self.eval_seconds
        self.eval_seconds += time.perf_counter() - start
        self.evaluations.append({"steps": self.steps, "train_s": train_seconds, "return": float(returns.mean())})
        return returns


def solve(
    algo: str, seed: int, threshold: float, out: Path, timesteps: int, *, backend: str = "torch"
) -> dict[str, Any]:
    """One run of ``gaussrl train``'s defaults (``--timesteps`` and ``--backend`` aside).

    Args:
        algo: "ppo" or "sac".
        seed: The seed.
        threshold: Return to reach.
        out: Parent of the run directory.
        timesteps: Run length in environment steps.
        backend: "torch" or "jax".

    Returns:
        Seed, solve time (None when never reached), evaluations, final return and times.
    """
    run_dir = str(out / f"{algo}-{backend}-seed{seed}")
    argv = ["train", "--algo", algo, "--seed", str(seed), "--timesteps", str(timesteps), "--out", run_dir]
    config = parse([*argv, "--backend", backend])
    if not isinstance(config, TrainConfig):
        raise TypeError(f"expected a train command, got {config!r}")
    config = dataclasses.replace(config, progress=False)
    trainer = TimedTrainer(config)
    try:
        summary = trainer.run()
    finally:
        trainer.close()
    solved = next((e for e in trainer.evaluations if e["return"] >= threshold), None)
    return {
        "backend": backend,
        "seed": seed,
        "solve_s": None if solved is None else solved["train_s"],
        "solve_steps": None if solved is None else solved["steps"],
        "final_return": summary["eval_return_mean"],
        "train_s": trainer.train_seconds,
        "eval_s": trainer.eval_seconds,
        "evaluations": trainer.evaluations,
    }


def table(algo: str, rows: list[dict[str, Any]], threshold: float, limit: float, command: str) -> str:
    """Markdown table of the runs, with a pass/fail column against the target."""
    lines = [
        f"# Time to solve Pendulum-v1: {algo.upper()}, return >= {threshold:g} within {limit:g} s (one CPU thread)",
        "",
        f"`{command}`",
        "",
        "Solve time: wall time from the start of the run to the first evaluation reaching the threshold, "
        "evaluations excluded.",
        "",
        "| backend | seed | solve time s | at step | final return | total s (no eval) | evaluation s | target met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        solved = row["solve_s"] is not None
        met = solved and row["solve_s"] <= limit
        solve = f"{row['solve_s']:.1f}" if solved else "not reached"
        lines.append(
            f"| {row['backend']} | {row['seed']} | {solve} | {row['solve_steps'] or '-'} | {row['final_return']:.1f} | "
            f"{row['train_s']:.1f} | {row['eval_s']:.1f} | {'yes' if met else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run the seeds one after another and print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algo", choices=sorted(TARGETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--timesteps", type=int, default=None, help="default: 100000 (PPO), 20000 (SAC)")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--limit", type=float, default=None, help="target solve time in seconds")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    parser.add_argument("--json", default=None, help="also write the raw results to this file")
    parser.add_argument("--backends", nargs="+", default=["torch", "jax"], choices=["torch", "jax"])
    args = parser.parse_args()
    threshold = TARGETS[args.algo][0] if args.threshold is None else args.threshold
    limit = TARGETS[args.algo][1] if args.limit is None else args.limit
    timesteps = TIMESTEPS[args.algo] if args.timesteps is None else args.timesteps
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for seed in args.seeds:
            for backend in args.backends:
                rows.append(solve(args.algo, seed, threshold, Path(out), timesteps, backend=backend))
                print(json.dumps({k: v for k, v in rows[-1].items() if k != "evaluations"}), flush=True)
    seeds, backends = " ".join(map(str, args.seeds)), " ".join(args.backends)
    command = (
        f"python benchmarks/time_to_solve.py {args.algo} --seeds {seeds} --timesteps {timesteps} --backends {backends}"
    )
    report = table(args.algo, rows, threshold, limit, command)
    print(report)
    if args.markdown:
        Path(args.markdown).write_text(report, encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
