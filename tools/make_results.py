"""Measure (``run``) and publish (``render``) every figure the documentation quotes.

    DIGITBENCH_DATA=/path/to/mnist python tools/make_results.py run      # minutes; idle machine!
    # where the environment forces OpenBLAS's kernels (docs/bench.md, the header):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE DIGITBENCH_DATA=... python tools/make_results.py run
    python tools/make_results.py render     # docs/results.md and README.md's headline table
    python tools/make_results.py check      # exit 1 if render would change either file

``run`` executes each command of :data:`RUNS` in a fresh process and stores its JSON
summary (the last line of ``digitbench ... --json``), its output, the date, the
versions and the exact command in ``docs/results/<machine>/NAME.json``: one folder a
machine (CPU model and family, AVX2 or AVX-512, cores, BLAS kernels and whether
``OPENBLAS_CORETYPE`` forced them; ``tools/machines.py``), so a run never overwrites
another machine's records. ``render`` reads only those files, every machine on record
side by side (``tools/results_page.py``): no figure is typed by hand. ``run --only NAME``
reruns one entry; ``run --tests`` also times the test command, cold (an empty numba
cache) and warm. ``run --quick`` makes placeholders, marked as such on the page: the
benchmark with ``--quick``, the default recipe cut to 2 epochs, the experiments on 2,000
images (their figures in build/, not docs/images).
"""

import argparse
import datetime
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machines  # noqa: E402  (tools/, beside this script)
import results_page  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
PAGE = ROOT / "docs" / "results.md"
README = ROOT / "README.md"
TRAIN = ["train", "--json", "--quiet", "--out", ""]
#: The CNN against its peers: 200 steps a repetition (whole epochs of the NumPy CNN take minutes).
CNN_BENCH = ["bench", "--network", "cnn", "--peers", "--samples", "12800", "--no-time-to-target", "--json", "--no-plot"]
#: The CNN's time to 99%: every contender trains recipe cnn-fast to its end, seed by seed.
CNN_TIME_TO_99 = ["bench", "--network", "cnn", "--peers", "--samples", "12800", "--repeats", "1",
                  "--first-check-seeds", "0", "--json", "--no-plot"]
EXPERIMENTS = ["sigmoid", "softmax-overflow", "learning-rate", "initialization"]

#: name -> digitbench arguments (run as ``python -m digitbench ARGS``).
RUNS = {
    "train-seed": TRAIN,
    "train-seed-numpy": TRAIN + ["--backend", "numpy"],
    "train-plain-sgd-constant": TRAIN + ["--momentum", "0", "--schedule", "constant"],
    "train-plain-sgd-decayed": TRAIN + ["--momentum", "0"],
    "train-fast": TRAIN + ["--recipe", "fast"],
    **{f"train-cnn/seed-{seed}": TRAIN + ["--network", "cnn", "--seed", str(seed)] for seed in range(5)},
    **{f"train-cnn-numpy/seed-{seed}": TRAIN + ["--network", "cnn", "--backend", "numpy", "--seed", str(seed)]
       for seed in range(5)},
    "bench-peers": ["bench", "--peers", "--json", "--no-plot"],
    "bench-peers-1-thread": ["bench", "--peers", "--threads", "1", "--json", "--no-plot"],
    "bench-cnn-peers": CNN_BENCH,
    "bench-cnn-peers-1-thread": CNN_BENCH + ["--threads", "1"],
    "bench-cnn-time-to-99": CNN_TIME_TO_99 + ["--seeds", "5", "--time-to-target-for",
                                              "numba,pytorch,torch.compile,jax-step"],
    #: the two slowest contenders (minutes an epoch each): one seed
    "bench-cnn-time-to-99-slowest": CNN_TIME_TO_99 + ["--seeds", "1", "--time-to-target-for", "jax-scan,numpy"],
    **{f"sweeps/{axis}": ["bench", "--peers", "--sweep", axis, "--json", "--no-plot"] for axis in ("batch", "threads")},
    **{f"experiment-{e}": ["experiment", e, "--json", "--out-dir", "docs/images"] for e in EXPERIMENTS},
}
COMPILE = ("import json; from digitbench.kernels.numba_backend import compile_report as r; "
           "print(json.dumps({'float32': r(), 'float32+float64': r(('float32', 'float64'))}))")


@functools.cache  # once a run: the same for every record
def machine():
    """This machine (``tools/machines.py``), with the BLAS kernels a fresh process runs."""
    v = versions()
    return machines.probe(v["BLAS kernels"], os.environ.get("OPENBLAS_CORETYPE"))


@functools.cache  # once a run (a fresh process importing torch and jax)
def versions():
    code = ("import json, platform, numpy, numba, digitbench; v = {'python': platform.python_version(), "
            "'numpy': numpy.__version__, 'numba': numba.__version__, 'digitbench': digitbench.__version__}\n"
            "for m in ('torch', 'jax', 'sklearn'):\n    try: v[m] = __import__(m).__version__\n    except ImportError: pass\n"
            "import os, scipy.linalg\nfrom digitbench.bench import blas_kernels\n"  # NumPy's BLAS and SciPy's (numba's)
            "v['BLAS kernels'] = ', '.join(b for b in blas_kernels() if not b.startswith('OPENBLAS_CORETYPE='))\n"
            "v['OPENBLAS_CORETYPE'] = os.environ.get('OPENBLAS_CORETYPE', 'unset')\n"
            "print(json.dumps(v))")
    found = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    found["commit"] = commit.stdout.strip() or None
    return found


def record(name, command, stdout, seconds, summary, placeholder):
    entry = {"name": name, "command": command, "date": datetime.date.today().isoformat(),
             "machine": machines.describe(machine()), "versions": versions(), "wall_seconds": round(seconds, 1),
             "placeholder": placeholder, "json": summary, "stdout": stdout}
    path = machines.save(RESULTS, machine(), name, entry)
    print(f"{path.relative_to(ROOT)}: {seconds:.1f} s", file=sys.stderr)


def quick_args(args):
    """A shorter version of a run, for placeholders: the record keeps the command actually run."""
    if args[0] == "bench":
        return args + ["--quick"]
    if args[0] == "experiment":  # small, and never over the committed figures
        return args[:-1] + ["build/placeholder-figures", "--subset", "2000", "--test-subset", "1000", "--epochs", "1"]
    return args if "fast" in args else args + ["--epochs", "2"]


def run_one(name, args, quick):
    if quick:
        args = quick_args(args)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "digitbench", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"make_results: `digitbench {' '.join(args)}` failed: {proc.stderr.strip()[-300:]}")
    lines = proc.stdout.strip().splitlines()
    shown = "digitbench " + " ".join(a if a else "''" for a in args)
    record(name, shown, "\n".join(lines[:-1]), time.perf_counter() - t0, json.loads(lines[-1]), quick)


def run_tests():
    """The README's test command, cold (empty numba cache) then warm: wall seconds of each."""
    times = {}
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold", "warm"):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                                  env={**os.environ, "NUMBA_CACHE_DIR": cache}, capture_output=True, text=True)
            times[label] = round(time.perf_counter() - t0, 1)
            times[f"{label}_summary"] = proc.stdout.strip().splitlines()[-1]
    record("test-command", "python -m pytest", "", times["cold"] + times["warm"], times, False)


def run(args):
    names = args.only or list(RUNS)
    for name in [n for n in names if n in RUNS]:
        run_one(name, RUNS[name], args.quick)
    if not args.only or "compile" in args.only:
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", COMPILE], capture_output=True, text=True, check=True).stdout
        record("compile", f"python -c \"{COMPILE}\"", "", time.perf_counter() - t0, json.loads(out), False)
    if args.tests or "test-command" in names:
        run_tests()
    render(check=False)


# --------------------------------------------------------------------------- render


def render(check):
    results_page.ORDER[:] = [*RUNS, "compile", "test-command"]
    on_record = machines.load(RESULTS)
    wanted = {PAGE: results_page.page(on_record, EXPERIMENTS),
              README: results_page.with_headline(README.read_text(), on_record)}
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    if check:
        if stale:
            sys.exit(f"make_results: {', '.join(p.name for p in stale)} out of date: run tools/make_results.py render")
        return
    for p in stale:
        p.write_text(wanted[p])
        print(f"wrote {p.relative_to(ROOT)}", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run", help="measure, then render")
    r.add_argument("--quick", action="store_true", help="bench --quick: placeholders, marked as such")
    r.add_argument("--only", action="append", choices=[*RUNS, "compile", "test-command"],
                   help="rerun only this record (repeatable)")
    r.add_argument("--tests", action="store_true", help="also time the test command, cold and warm")
    sub.add_parser("render", help="write docs/results.md and README's headline from docs/results/*/*.json")
    sub.add_parser("check", help="exit 1 if render would change a file")
    args = parser.parse_args(argv)
    if args.what == "run":
        run(args)
    else:
        render(check=args.what == "check")


if __name__ == "__main__":
    main()
