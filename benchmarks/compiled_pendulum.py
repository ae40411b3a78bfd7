"""Time ``gaussrl train --backend jax --env gymnax/Pendulum-v1`` (defaults) per seed, each in a fresh process.

Each seed runs twice against a fresh compilation cache: cold (an empty cache: everything
compiles) and warm (the same command again: the compiled programs load from the cache,
``GAUSSRL_JAX_CACHE_DIR``). Prints one Markdown row per run: the deterministic evaluation on
gymnax and on Gymnasium's Pendulum-v1 (20 episodes each); the run's wall time from the trainer's
construction (model building and compilation included); the whole process's wall time (Python
and library imports included) and CPU time (what one idle CPU thread would take: on a shared
machine the wall times grow with the load); and the env steps per second of the training chunks
once compiled (after the first), per wall and per CPU second.

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/compiled_pendulum.py --seeds 0 1 2
    python benchmarks/compiled_pendulum.py --seeds 0 --devices 2   # XLA_FLAGS host devices
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(seed: int, devices: int, cache: str, extra: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "JAX_PLATFORMS": "cpu", "GAUSSRL_JAX_CACHE_DIR": cache}
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    with tempfile.TemporaryDirectory() as out:
        argv = [sys.executable, "-m", "gaussrl", "train", "--backend", "jax", "--env", "gymnax/Pendulum-v1"]
        argv += ["--seed", str(seed), "--out", out, "--no-progress", "--no-tensorboard", *extra]
        start, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, env=env, check=True, capture_output=True)
        process = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        summary = json.loads((Path(out) / "summary.json").read_text())
    summary["process_wall_s"] = round(process, 2)
    summary["process_cpu_s"] = round(after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime, 2)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("extra", nargs="*", help="more gaussrl train options, after --")
    args = parser.parse_args()
    columns = ["seed", "devices", "cache", "gymnax eval", "Gymnasium eval", "run wall s", "process wall s"]
    columns += ["process CPU s", "steps/s compiled (wall)", "steps/s compiled (CPU)"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as cache:
            for kind in ("cold", "warm"):
                s = run(seed, args.devices, cache, args.extra)
                print(
                    f"| {seed} | {s['devices']} | {kind} | {s['eval_return_mean']:.1f} | "
                    f"{s['gymnasium_eval_return_mean']:.1f} | {s['wall_time_s']:.2f} | {s['process_wall_s']:.2f} | "
                    f"{s['process_cpu_s']:.2f} | {s['env_steps_per_s_compiled'] or 0:.0f} | "
                    f"{s['env_steps_per_cpu_s_compiled'] or 0:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
