"""Measure (``run``) and publish (``render``) every figure the documentation quotes.

    DIGITBENCH_DATA=/path/to/mnist python tools/make_results.py run      # minutes; idle machine!
    # where the environment forces OpenBLAS's kernels (docs/bench.md, the header):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE DIGITBENCH_DATA=... python tools/make_results.py run
    python tools/make_results.py render     # docs/results.md and README.md's headline table
    python tools/make_results.py check      # exit 1 if render would change either file

``run`` executes each command of :data:`RUNS` in a fresh process and stores its JSON
summary (the last line of ``digitbench ... --json``), its output, the date, the
machine (lscpu's model name), the versions and the exact command in
``docs/results/NAME.json``. ``render`` reads only those files: no figure is typed by
hand. ``run --only NAME`` reruns one entry; ``run --tests`` also times the test
command, cold (an empty numba cache) and warm. ``run --quick`` makes placeholders,
marked as such on the page: the benchmark with ``--quick``, the default recipe cut to
2 epochs, the experiments on 2,000 images (their figures in build/, not docs/images).
"""

import argparse
import datetime
import functools
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
PAGE = ROOT / "docs" / "results.md"
README = ROOT / "README.md"
TRAIN = ["train", "--json", "--quiet", "--out", ""]
EXPERIMENTS = ["sigmoid", "softmax-overflow", "learning-rate", "initialization"]

#: name -> digitbench arguments (run as ``python -m digitbench ARGS``).
RUNS = {
    "train-seed": TRAIN,
    "train-seed-numpy": TRAIN + ["--backend", "numpy"],
    "train-plain-sgd-constant": TRAIN + ["--momentum", "0", "--schedule", "constant"],
    "train-plain-sgd-decayed": TRAIN + ["--momentum", "0"],
    **{f"train-fast-seed{s}": TRAIN + ["--recipe", "fast", "--target-accuracy", "0.97", "--seed", str(s)]
       for s in range(3)},
    "bench-peers": ["bench", "--peers", "--json", "--no-plot"],
    "bench-peers-1-thread": ["bench", "--peers", "--threads", "1", "--json", "--no-plot"],
    **{f"experiment-{e}": ["experiment", e, "--json", "--out-dir", "docs/images"] for e in EXPERIMENTS},
}
COMPILE = ("import json; from digitbench.kernels.numba_backend import compile_report as r; "
           "print(json.dumps({'float32': r(), 'float32+float64': r(('float32', 'float64'))}))")


@functools.cache  # once a run: the same for every record
def machine():
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = re.search(r"Model name:\s*(.+)", lscpu)[1].strip()
    except (OSError, TypeError, subprocess.SubprocessError):
        model = platform.processor() or platform.machine()
    return f"{model}, {len(os.sched_getaffinity(0))} cores available, {platform.system()}"


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
    entry = {"name": name, "command": command, "date": datetime.date.today().isoformat(), "machine": machine(),
             "versions": versions(), "wall_seconds": round(seconds, 1), "placeholder": placeholder,
             "json": summary, "stdout": stdout}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(entry, indent=1) + "\n")
    print(f"{name}: {seconds:.1f} s", file=sys.stderr)


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


def load():
    """The records, in the order of :data:`RUNS` (then any others, by name)."""
    found = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    order = [*RUNS, "compile", "test-command"]
    return dict(sorted(found.items(), key=lambda item: (order.index(item[0]) if item[0] in order else len(order),
                                                        item[0])))


def pct(x):
    return f"{100 * x:.2f}%"


def bench_rows(entry):
    records = entry["json"]["contenders"]
    torch = next((r for r in records if r["name"] == "pytorch" and "error" not in r), None)
    rows = ["| contender | train samples/s | s/epoch | x PyTorch | % of GEMM peak (dense / done) | infer samples/s "
            "| latency, 1 image | time to 97% |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        if "error" in r:  # a peer that could not run here: its one-line reason
            rows.append(f"| {r['name']} | failed: {r['error']} | | | | | | |")
            continue
        ratio = f"{r['train_samples_per_s'] / torch['train_samples_per_s']:.2f}" if torch else "-"
        star = "*" if r.get("epoch_extrapolated") else ""
        done = r.get("share_of_peak_done", r["share_of_peak"])
        target = r.get("seconds_to_target")
        rows.append(f"| {r['name']} | {r['train_samples_per_s']:,.0f} | {r['epoch_seconds']:.3f}{star} | {ratio} | "
                    f"{100 * r['share_of_peak']:.1f} / {100 * done:.1f} | {r['infer_samples_per_s']:,.0f} | "
                    f"{1e6 * r['latency_s']:.0f} us | {'-' if target is None else f'{target:.3f} s'} |")
    return rows


def headline(results):
    """README's table: the figures a newcomer asks about first, each linking here."""
    rows = ["| what | measured | command |", "|---|---|---|"]
    seed = results.get("train-seed")
    if seed:
        s = seed["json"]
        rows.append(f"| test accuracy, default training (numba) | {pct(s['test_accuracy'])} after {s['epochs_run']} "
                    f"epochs, {s['train_seconds']:.1f} s of training | `digitbench train` |")
    fast = [results[k]["json"]["seconds_to_target"] for k in results if k.startswith("train-fast")]
    if fast and None not in fast:
        rows.append(f"| time to 97% test accuracy (numba) | {min(fast):.2f}-{max(fast):.2f} s ({len(fast)} seeds) | "
                    "`digitbench train --recipe fast --target-accuracy 0.97` |")
    bench = results.get("bench-peers")
    if bench:
        by = {r["name"]: r for r in bench["json"]["contenders"]}
        if "pytorch" in by:
            t = by["pytorch"]["train_samples_per_s"]
            ratio = {name: by[name]["train_samples_per_s"] / t for name in ("numba", "numpy")}
            jax = by.get("jax-scan", {}).get("train_samples_per_s")
            rows.append(f"| training speed vs PyTorch eager (same threads) | numba {ratio['numba']:.2f}x, "
                        f"numpy {ratio['numpy']:.2f}x" + (f", JAX lax.scan {jax / t:.2f}x" if jax else "")
                        + " | `digitbench bench --peers` |")
    tests = results.get("test-command")
    if tests:
        rows.append(f"| the test command | {tests['json']['cold']:.0f} s cold (numba compiling), "
                    f"{tests['json']['warm']:.0f} s warm | `python -m pytest` |")
    dates = sorted({e["date"] for e in results.values()})
    placeholder = any(e["placeholder"] for e in results.values())
    note = (f"Measured {dates[-1]} on {next(iter(results.values()))['machine']}{blas_note(bench)}"
            + (" (placeholders from a busy machine, to be measured again on an idle one)" if placeholder else "")
            + "; how, and every other figure: [docs/results.md](docs/results.md).")
    return rows + ["", note]


def blas_note(entry):
    """", BLAS ..." from a record's versions: the kernels OpenBLAS ran, and whether
    OPENBLAS_CORETYPE chose them (docs/bench.md, the header); "" for an older record."""
    versions = (entry or {}).get("versions", {})
    if "BLAS kernels" not in versions:
        return ""
    forced = versions.get("OPENBLAS_CORETYPE", "unset")
    return (f", BLAS {versions['BLAS kernels']} "
            + ("(OpenBLAS's own choice: OPENBLAS_CORETYPE unset)" if forced == "unset"
               else f"(forced: OPENBLAS_CORETYPE={forced})"))


def page(results):
    out = ["# Results", "",
           "Every measured figure of digitbench's documentation is on this page. It is written by",
           "`python tools/make_results.py render` from the JSON records in [results/](results/), which",
           "`python tools/make_results.py run` produces by running each command below in a fresh process",
           "(set `DIGITBENCH_DATA` to the MNIST files; run it on an otherwise idle machine). Where the",
           "environment sets `OPENBLAS_CORETYPE`, as the reference machine's does, run it as `env -u",
           "OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/make_results.py run`, so that OpenBLAS",
           "picks its kernels as it does for a user ([bench.md](bench.md), the header); each record's",
           "versions name the kernels that ran.", ""]
    if any(e["placeholder"] for e in results.values()):
        out += ["**Placeholders.** Some records below come from quick runs on a busy shared machine",
                "(`run --quick`); they show the page's shape, not the project's speed, until the next full run.", ""]
    out += ["## Where and when", ""]
    machines = {e["machine"] for e in results.values()}
    keys = list(dict.fromkeys(k for e in results.values() for k in e["versions"]))
    differ = [k for k in keys if len({json.dumps(e["versions"].get(k)) for e in results.values()}) > 1]
    if len(machines) == 1:
        out.append(f"Machine of every record: {next(iter(machines))}.")
    first = next(iter(results.values()))["versions"]
    out.append("Versions of every record: " + ", ".join(f"{k} {first[k]}" for k in keys if k not in differ and first[k])
               + "." + (" The others differ by record, in the table." if differ else ""))
    out += ["", "| record | date | wall time of the command |" + (" machine |" if len(machines) > 1 else "")
            + (" versions that differ |" if differ else ""),
            "|---|---|---:|" + ("---|" if len(machines) > 1 else "") + ("---|" if differ else "")]
    for name, e in results.items():
        extra = (f" {e['machine']} |" if len(machines) > 1 else "") + (
            " " + ", ".join(f"{k} {e['versions'].get(k, '-')}" for k in differ) + " |" if differ else "")
        out.append(f"| {name} | {e['date']} | {e['wall_seconds']} s |{extra}")
    out += ["", "## Accuracy and training time", "",
            "The default recipe (\"seed\": the recipe of the project's starting point, mini-batch SGD with batch 64,",
            "He initialisation, 30 epochs, learning rate 0.01 / (1 + 0.05 e) in epoch e, momentum 0.9), the same on",
            "the NumPy backend, two variants without momentum, and the `fast` recipe (two epochs, centred inputs,",
            "learning rate 0.1 falling linearly to 0.01 at 0.9 epochs, then constant; the test accuracy is checked",
            "10 times an epoch, off the clock) with three seeds:", "",
            "| command | test accuracy | epochs | training s | evaluating s | compile or load s |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, e in results.items():
        if name.startswith("train-"):
            s = e["json"]
            target = f" (97% after {s['seconds_to_target']:.2f} s)" if s.get("seconds_to_target") else ""
            out.append(f"| `{e['command']}` | {pct(s['test_accuracy'])}{target} | {s['epochs_run']} | "
                       f"{s['train_seconds']:.2f} | {s['eval_seconds']:.2f} | {s['warmup_seconds']:.2f} |")
    for name in ("bench-peers", "bench-peers-1-thread"):
        if name in results:
            e, j = results[name], results[name]["json"]
            out += ["", f"## Speed: `{e['command']}`", "",
                    f"{j['threads']} thread{'s' if j['threads'] > 1 else ''} for every contender, batch {j['batch_size']}, best of {j['repeats']}; "
                    f"float32 GEMM peak {j['gemm_peak_gflops']:.1f} GFLOP/s, so an epoch "
                    f"({j['epoch_gflop']:.2f} GFLOP) takes at least {j['epoch_gflop'] / j['gemm_peak_gflops']:.3f} s. "
                    "`*`: extrapolated from part of an epoch.", "", *bench_rows(e),
                    "", "What the command printed, the targets' verdicts (`src/digitbench/targets.py`) included:",
                    "", "```", e["stdout"], "```"]
    if "compile" in results:
        c = results["compile"]["json"]
        out += ["", "## Numba: compiling, and starting from the cache", "",
                "Fresh processes with an empty cache folder "
                "(`compile_report` in `digitbench.kernels.numba_backend`):", "",
                "| dtypes | first call (compile) s | cached start s |", "|---|---:|---:|"]
        out += [f"| {k} | {v['compile_seconds']:.1f} | {v['cached_seconds']:.2f} |" for k, v in c.items()]
    for name in EXPERIMENTS:
        e = results.get(f"experiment-{name}")
        if e:
            out += ["", f"## Experiment `{name}`", "", f"`{e['command']}`:", "", "```", e["stdout"], "```", "",
                    f"![{name}](images/experiment-{name}.png)"]
    if "test-command" in results:
        t = results["test-command"]["json"]
        out += ["", "## The test command", "", f"`python -m pytest`: {t['cold']} s cold (empty numba cache: "
                f"`{t['cold_summary']}`), {t['warm']} s warm (`{t['warm_summary']}`)."]
    return "\n".join(out) + "\n"


def with_headline(readme, results):
    start, end = "<!-- results:headline -->", "<!-- /results:headline -->"
    if start not in readme:
        sys.exit(f"make_results: README.md has no {start} marker")
    head, rest = readme.split(start, 1)
    return head + start + "\n" + "\n".join(headline(results)) + "\n" + end + rest.split(end, 1)[1]


def render(check):
    results = load()
    wanted = {PAGE: page(results), README: with_headline(README.read_text(), results)}
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
    sub.add_parser("render", help="write docs/results.md and README's headline from docs/results/*.json")
    sub.add_parser("check", help="exit 1 if render would change a file")
    args = parser.parse_args(argv)
    if args.what == "run":
        run(args)
    else:
        render(check=args.what == "check")


if __name__ == "__main__":
    main()
