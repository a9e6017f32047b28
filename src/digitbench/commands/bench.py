"""``digitbench bench``: the backends (and, with --peers, PyTorch and scikit-learn) side by side.

Prints a table, checks the project's speed targets, draws a bar chart (``--plot``) and
writes the JSON record (``--out-json``; ``--json`` prints it as the last stdout line).
How each figure is measured is in :mod:`digitbench.bench`.
"""

import json
import platform
import time

import numpy as np

from .. import bench
from ..backends import BACKENDS
from ..datasets import load_mnist, synthetic_data
from ..errors import UsageError
from ..files import check_destination, check_distinct, write_file
from ..peers import make_peers
from ..plots import plot_bench
from .options import add_data_options, batch_size, plain_json, positive_int, print_json, show_progress
from .runtime import default_threads, load_backend


def add_parser(sub):
    p = sub.add_parser("bench", help="time training and inference of every backend (and peers) side by side")
    p.add_argument("--backends", help="comma-separated backends to time (default: every registered one)")
    p.add_argument("--batch-size", type=batch_size, default=64, help="samples per SGD step (default: 64)")
    p.add_argument("--threads", type=positive_int, default=default_threads(),
                   help=f"threads for every contender: BLAS, OpenMP, numba, torch (default: every core, "
                        f"here {default_threads()})")
    p.add_argument("--repeats", type=positive_int,
                   help="timed epochs (and inference passes) per contender; the best counts (default: 3, quick: 1)")
    p.add_argument("--peers", action="store_true",
                   help="also time PyTorch and scikit-learn (needs the 'compare' extra)")
    p.add_argument("--quick", action="store_true",
                   help="time 4,096 training samples and extrapolate, one repeat, smaller GEMM: a smoke test")
    add_data_options(p)
    p.add_argument("--synthetic", action="store_true",
                   help="time on seeded random pixels of MNIST's shape instead of the real files")
    p.add_argument("--plot", default="bench.png", help="bar chart to write (default: bench.png)")
    p.add_argument("--no-plot", action="store_true", help="do not draw the bar chart")
    p.add_argument("--out-json", help="write the full record to this JSON file")
    p.add_argument("--json", action="store_true", help="print the record as JSON on the last line")
    p.set_defaults(func=run)


def parse_backends(text):
    if text is None:
        return list(BACKENDS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in BACKENDS:
            raise UsageError(f"unknown backend {name!r} in --backends; choose from: {', '.join(BACKENDS)}")
    if not names:
        raise UsageError("--backends is empty; name at least one backend, e.g. --backends numpy")
    return names


def run(args):
    names = parse_backends(args.backends)
    if not args.no_plot:
        check_destination(args.plot, "--plot")
    if args.out_json:
        check_destination(args.out_json, "--out-json")
        if not args.no_plot:
            check_distinct(args.plot, args.out_json, "--plot", "--out-json")
    repeats = args.repeats or (1 if args.quick else 3)
    bench.prepare_threads(args.threads)  # before numba is imported (get_backend imports it)
    contenders = [bench.BackendContender(load_backend(n)) for n in names]
    if args.peers:
        contenders += make_peers(args.threads)
    if args.synthetic:
        data = synthetic_data()
    else:
        data = load_mnist(args.data_dir, args.dataset, progress=show_progress(args))

    records = []
    with bench.thread_limits(args.threads) as reapply_limits:
        threads = bench.thread_report()
        print(f"threads: {args.threads} for every contender; batch size {args.batch_size}; "
              f"best of {repeats}; {'quick' if args.quick else 'full epochs'}", flush=True)
        peak = bench.gemm_peak(n=1024 if args.quick else 2048, repeats=3 if args.quick else 5)
        print(f"float32 GEMM peak (numpy matmul, {args.threads} thread{'s' if args.threads > 1 else ''}): "
              f"{peak:.1f} GFLOP/s", flush=True)
        for c in contenders:
            t0 = time.perf_counter()
            c.prepare(data, args.batch_size)
            prepare_seconds = time.perf_counter() - t0
            reapply_limits()  # the warm-up may have loaded another thread pool
            record = bench.measure(c, data, batch_size=args.batch_size, repeats=repeats, quick=args.quick)
            record["prepare_seconds"] = prepare_seconds
            record["version"] = c.version
            records.append(record)
            threads = bench.thread_report()
            print(f"  {c.name}: {record['train_samples_per_s']:,.0f} samples/s training; start-up "
                  f"{prepare_seconds:.2f} s (imports, numba compile or cache load: never timed)", flush=True)
    reference = next((r for r in records if r["name"] == "pytorch"), None)
    for r in records:
        bench.add_derived(r, peak, reference)
    targets = bench.check_targets(records)

    print()
    print(bench.format_table(records, peak, reference is not None))
    print(bench.format_targets(targets, reference is not None))
    result = {
        "command": "bench",
        "backends": names,
        "peers": args.peers,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "thread_pools": threads,
        "repeats": repeats,
        "quick": args.quick,
        "data": "synthetic" if args.synthetic else args.dataset,
        "gemm_peak_gflops": peak,
        "train_flops_per_sample": bench.train_flops_per_sample(),
        "epoch_gflop": bench.train_flops_per_sample() * bench.TRAIN_SAMPLES / 1e9,
        "contenders": records,
        "targets": targets,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "python": platform.python_version(), "numpy": np.__version__},
    }
    if not args.no_plot:
        plot_bench(records, args.plot, args.threads, args.batch_size)
        print(f"wrote {args.plot}")
    if args.out_json:
        text = json.dumps(plain_json(result), indent=1, allow_nan=False, default=str)
        write_file(args.out_json, lambda f: f.write(text.encode()))
        print(f"wrote {args.out_json}")
    if args.json:
        print_json(result)
    return 0

