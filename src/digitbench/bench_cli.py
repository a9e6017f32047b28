"""``digitbench bench``: the backends (and, with --peers, PyTorch and scikit-learn) side by side.

Prints a table, checks issue 3's speed targets, draws a bar chart (``--plot``) and
writes the JSON record (``--out-json``; ``--json`` prints it as the last stdout line).
How each figure is measured is in :mod:`digitbench.bench`.
"""

import json
import platform
import time

import numpy as np

from .cli import add_data_options, positive_int, print_json, show_progress
from .errors import UsageError


def add_parser(sub):
    p = sub.add_parser("bench", help="time training and inference of every backend (and peers) side by side")
    p.add_argument("--backends", help="comma-separated backends to time (default: every registered one)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="samples per SGD step (default: 64)")
    p.add_argument("--threads", type=positive_int, default=2,
                   help="threads for every contender: BLAS, OpenMP, numba, torch (default: 2)")
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
    p.set_defaults(func=cmd_bench)


def parse_backends(text):
    from .backends import BACKENDS

    if text is None:
        return list(BACKENDS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in BACKENDS:
            raise UsageError(f"unknown backend {name!r} in --backends; choose from: {', '.join(BACKENDS)}")
    if not names:
        raise UsageError("--backends is empty; name at least one backend, e.g. --backends numpy")
    return names


def synthetic_data(seed=1234):
    """Seeded random uint8 pixels (~81% zeros, like MNIST) and labels, MNIST's shapes."""
    from .data import MnistData

    rng = np.random.default_rng(seed)

    def images(n):
        pixels = rng.integers(1, 256, size=(n, 784), dtype=np.uint8)
        pixels[rng.random((n, 784)) < 0.81] = 0
        return pixels

    return MnistData(images(60_000), rng.integers(0, 10, 60_000).astype(np.uint8),
                     images(10_000), rng.integers(0, 10, 10_000).astype(np.uint8))


def cmd_bench(args):
    from . import bench

    names = parse_backends(args.backends)
    repeats = args.repeats or (1 if args.quick else 3)
    bench.prepare_threads(args.threads)  # before numba is imported
    from .backends import get_backend

    contenders = [bench.BackendContender(get_backend(n)) for n in names]
    if args.peers:
        from .peers import make_peers

        contenders += make_peers(args.threads)
    if args.synthetic:
        data = synthetic_data()
    else:
        from .data import load_mnist

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
            record["version"] = getattr(c, "version", None)
            records.append(record)
            threads = bench.thread_report()
            print(f"  {c.name}: {record['train_samples_per_s']:,.0f} samples/s training; start-up "
                  f"{prepare_seconds:.2f} s (imports, numba compile or cache load: never timed)", flush=True)
    reference = next((r for r in records if r["name"] == "pytorch"), None)
    for r in records:
        bench.add_derived(r, peak, reference)
    targets = bench.check_targets(records)

    print()
    print(format_table(records, peak, reference is not None))
    print(format_targets(targets, reference is not None))
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
        plot(records, args.plot, args.threads, args.batch_size)
        print(f"wrote {args.plot}")
    if args.out_json:
        from .model_io import atomic_write

        atomic_write(args.out_json, lambda f: f.write(json.dumps(result, indent=1, default=_plain).encode()))
        print(f"wrote {args.out_json}")
    if args.json:
        print_json(result)
    return 0


def _plain(value):
    return value.item() if isinstance(value, np.generic) else str(value)


def format_table(records, peak, with_ratios):
    """The human-readable table; '*' marks figures extrapolated from fewer samples."""
    head = ["contender", "train samples/s", "s/epoch", "x PyTorch", "% of peak", "infer samples/s", "latency"]
    rows = []
    for r in records:
        star = "*" if r["epoch_extrapolated"] else ""
        istar = "*" if r["infer_samples_timed"] < 10_000 else ""
        rows.append([
            r["name"],
            f"{r['train_samples_per_s']:,.0f}",
            f"{_number(r['epoch_seconds'])}{star}",
            _ratio(r["train_vs_pytorch"]) if with_ratios else "-",
            _number(100 * r["share_of_peak"]),
            f"{r['infer_samples_per_s']:,.0f}{istar}",
            _duration(r["latency_s"]),
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    lines = ["  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(row, widths)))
             for row in [head] + rows]
    lines.insert(1, "-" * len(lines[0]))
    from .bench import TRAIN_SAMPLES, train_flops_per_sample

    gflop = train_flops_per_sample() * TRAIN_SAMPLES / 1e9
    lines.append(f"an epoch is {gflop:.2f} GFLOP ({train_flops_per_sample():,} per sample): {gflop / peak:.3f} s "
                 f"at the GEMM peak of {peak:.1f} GFLOP/s; '% of peak' is that floor over the epoch time")
    if any(r["epoch_extrapolated"] or r["infer_samples_timed"] < 10_000 for r in records):
        lines.append("* extrapolated from fewer samples than an epoch (or than the test set): "
                     "the naive backend always, every contender with --quick")
    return "\n".join(lines)


def format_targets(targets, with_peers):
    lines = ["speed targets (issue 3):"]
    for t in targets:
        if t["metric"] == "epoch_seconds":
            what = f"{t['contender']} epoch <= {t['threshold']} s"
            value = None if t["value"] is None else f"{t['value']:.3f} s"
        else:
            what = f"{t['contender']} training >= {t['threshold']}x PyTorch"
            value = None if t["value"] is None else f"{t['value']:.2f}x"
        if value is None:
            why = "not measured" + ("" if with_peers or t["metric"] == "epoch_seconds" else " (add --peers)")
            lines.append(f"  {what}: {why}")
        else:
            lines.append(f"  {what}: {value}, {'met' if t['met'] else 'NOT met'}")
    return "\n".join(lines)


def _number(x):
    """Three significant figures, without exponents: 1,290 / 0.409 / 0.00211."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}" if abs(x) >= 1e-4 else f"{x:.1e}"


def _ratio(x):
    return f"{x:.2f}" if x >= 0.1 else _number(x)


def _duration(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{1e3 * seconds:.2f} ms"
    return f"{1e6 * seconds:.0f} us"


def plot(records, path, threads, batch_size):
    """Two horizontal bar charts (training and inference samples/s, log scale), PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .model_io import atomic_write

    names = [r["name"] for r in records]
    colors = ["#4c72b0" if r["kind"] == "digitbench" else "#999999" for r in records]
    fig, axes = plt.subplots(1, 2, figsize=(11, 1.2 + 0.55 * len(records)), constrained_layout=True)
    for ax, key, title in ((axes[0], "train_samples_per_s", "training"), (axes[1], "infer_samples_per_s", "inference")):
        values = [r[key] for r in records]
        ax.barh(names, values, color=colors)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_xlabel("samples per second (log scale)")
        ax.set_title(f"{title}, batch {batch_size}, {threads} thread{'s' if threads > 1 else ''}"
                     if key.startswith("train") else f"{title} (10,000 test images)")
        for y, (r, v) in enumerate(zip(records, values)):
            label = f"{v:,.0f}"
            if key.startswith("train") and "train_vs_pytorch" in r:
                label += f"  ({_ratio(r['train_vs_pytorch'])}x PyTorch)"
            ax.text(v, y, " " + label, va="center", fontsize=8)
        # Bars start a whole decade below the smallest value, so that lengths compare in decades.
        ax.set_xlim(10 ** np.floor(np.log10(min(values))), max(values) * 10)
    fig.suptitle("digitbench (blue) and peers (grey); * in the table: extrapolated from fewer samples", fontsize=9)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
