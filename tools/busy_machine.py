"""Issue 11's busy-machine check: the default ``train`` epoch beside one CPU-bound process,
against the idle one-thread epoch.

Usage (from the repository root, on an otherwise idle machine; the data as
``digitbench`` finds it)::

    python tools/busy_machine.py            # 5 runs each
    python tools/busy_machine.py --runs 8

Each run is a fresh ``python -m digitbench train --recipe fast --epochs 1 --json --quiet
--out ''`` (its ``train_seconds``: the epoch, evaluation off the clock). First ``--runs``
runs at ``--threads 1`` on the idle machine; then a CPU-bound process is started
(``python -c "while True: pass"``), and ``--runs`` runs with the default threads (every
core), each printing the thread count the numba backend chose and why. The ratio is the
busy runs' mean over the idle ones' mean (the goal: at most 1.3), and the worst busy
run over the best idle one.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

TRAIN = [sys.executable, "-m", "digitbench", "train", "--recipe", "fast", "--epochs", "1", "--json", "--quiet",
         "--out", ""]
GOAL = 1.3


def one_run(extra):
    out = subprocess.run(TRAIN + extra, capture_output=True, text=True, check=True).stdout
    record = json.loads(out.strip().splitlines()[-1])
    return record["train_seconds"], record.get("threads") or {}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--data-dir")
    args = p.parse_args(argv)
    extra = ["--data-dir", args.data_dir] if args.data_dir else []
    idle = []
    for _ in range(args.runs):
        seconds, _choice = one_run(extra + ["--threads", "1"])
        idle.append(seconds)
        print(f"idle, 1 thread: {seconds:.3f} s", flush=True)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    busy = []
    try:
        time.sleep(0.5)
        for _ in range(args.runs):
            seconds, choice = one_run(extra)
            busy.append(seconds)
            print(f"busy, default threads: {seconds:.3f} s  ({choice.get('threads')} of {choice.get('max_threads')}: "
                  f"{choice.get('reason')})", flush=True)
    finally:
        hog.kill()
        hog.wait()
    ratio = statistics.fmean(busy) / statistics.fmean(idle)
    print(f"busy default / idle 1 thread: {ratio:.2f}x (means), {max(busy) / min(idle):.2f}x (worst busy over "
          f"best idle); goal at most {GOAL}x: {'met' if ratio <= GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
