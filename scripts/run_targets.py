"""Full-length training runs of the targets, one after another on one CPU thread, with a summary table.

    python scripts/run_targets.py ppo            # PPO Pendulum-v1, 100k steps, seeds 0 1 2
    python scripts/run_targets.py sac            # SAC Pendulum-v1, 20k steps, seeds 0 1 2
    python scripts/run_targets.py lstm           # PPO + LSTM on gaussrl/PendulumNoVel-v1 (+ plot)
    python scripts/run_targets.py ppo --seeds 0 --out runs/targets --no-progress   # other options go to gaussrl

Each run is ``gaussrl train ...`` (printed before it starts); its directory holds summary.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

TARGETS = {
    "ppo": ["--algo", "ppo", "--env", "Pendulum-v1", "--timesteps", "100000"],
    "sac": ["--algo", "sac", "--env", "Pendulum-v1", "--timesteps", "20000"],
    "lstm": ["--algo", "ppo", "--env", "gaussrl/PendulumNoVel-v1", "--policy", "lstm", "--timesteps", "300000"],
}


def main() -> None:
    """Run the chosen target for each seed and print the summary table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="runs/targets")
    args, extra = parser.parse_known_args()  # anything else is passed on to gaussrl train
    rows = []
    for seed in args.seeds:
        run_dir = Path(args.out) / f"{args.target}-seed{seed}"
        argv = ["gaussrl", "train", *TARGETS[args.target], "--seed", str(seed), "--out", str(run_dir), *extra]
        print("$", shlex.join(argv), flush=True)
        subprocess.run([sys.executable, "-m", "gaussrl", *argv[1:]], check=True)
        if args.target == "lstm":
            subprocess.run([sys.executable, "-m", "gaussrl", "plot", str(run_dir)], check=True)
        rows.append(json.loads((run_dir / "summary.json").read_text(encoding="utf-8")))
    print(f"\n{'seed':>4} {'eval return':>16} {'wall s':>8} {'steps/s':>8}")
    for row in rows:
        ret = f"{row['eval_return_mean']:.1f} +- {row['eval_return_std']:.1f}"
        print(f"{row['seed']:>4} {ret:>16} {row['wall_time_s']:>8.1f} {row['env_steps_per_s']:>8.0f}")


if __name__ == "__main__":
    main()
