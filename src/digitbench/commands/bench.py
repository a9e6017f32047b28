"""``digitbench bench``: the backends (and, with --peers, PyTorch, torch.compile, JAX and
scikit-learn) side by side; ``--sweep batch|threads`` for throughput as the work grows;
``--network cnn`` for the CNN (its peers: PyTorch, torch.compile and JAX; its time to 99%).

Prints the machine and versions, a throughput table (medians of repetitions interleaved
across contenders, ratios with 95% intervals), the time to 97% (a fixed-length recipe,
closed and open, and the secondary first-check figure), whether the machine was
disturbed, the three-valued verdicts of the targets in :mod:`digitbench.targets`; draws a chart
(``--plot``) and writes the JSON record (``--out-json``; ``--json`` prints it as the
last stdout line). How each figure is measured: :mod:`digitbench.bench`,
:mod:`digitbench.time_to_target`, :mod:`digitbench.sweeps`; docs/bench.md.
"""

import json
import os
import time
from pathlib import Path

from .. import bench, bench_report, bench_rounds, stats, sweeps, time_to_target
from ..backends import BACKENDS
from ..datasets import load_mnist, synthetic_data
from ..errors import UsageError
from ..files import check_destination, check_distinct, write_file
from ..networks import get_network
from ..peers import make_peers
from ..plots import plot_bench, plot_sweep
from ..targets import JUDGED_SAMPLES, TARGETS_BY_NETWORK, check_sweep, check_targets, format_targets
from ..threads import prepare_threads, thread_limits, thread_report
from .options import (add_data_options, add_network_option, batch_size, fraction, non_negative_int, peer_hint,
                      plain_json, positive_int, print_json, show_progress, thread_count)
from .runtime import default_threads, load_backend

SWEEPS = ("batch", "threads")
#: Seconds of rest before each contender's time-to-target runs: the previous contender's
#: BLAS and OpenMP worker threads keep spinning for a while after its last call, on the
#: cores the next one measures (docs/bench.md, time to 97%).
SETTLE_SECONDS = 0.5


def add_parser(sub):
    p = sub.add_parser("bench", help="time training and inference of every backend (and peers) side by side")
    p.add_argument("--backends", help="comma-separated backends to time (default: every registered one; for the "
                                      "CNN numpy and numba, the naive loops being far too slow for its convolutions)")
    add_network_option(p)
    p.add_argument("--batch-size", type=batch_size, default=64, help="samples per SGD step (default: 64)")
    p.add_argument("--threads", type=thread_count, default=default_threads(),
                   help=f"threads for every contender: BLAS, OpenMP, numba, torch, XLA (default: every core, "
                        f"here {default_threads()})")
    p.add_argument("--repeats", type=positive_int,
                   help="timed epochs (and inference passes) per contender, interleaved across contenders; the median "
                        "counts, with its spread (default: 5, quick: 1)")
    p.add_argument("--peers", action="store_true",
                   help="also time PyTorch (eager, torch.compile), JAX (step, lax.scan) and scikit-learn "
                        "(needs the 'compare' extra)")
    p.add_argument("--quick", action="store_true",
                   help="time 4,096 training samples and extrapolate, one repeat, smaller GEMM, no time to "
                        "target, no target verdicts: a smoke test")
    p.add_argument("--samples", type=positive_int,
                   help="time this many training samples (and at most this many test images) a repetition, "
                        f"extrapolated to an epoch; under {JUDGED_SAMPLES:,}: no time to target, no target verdicts "
                        "(a smoke test in seconds)")
    p.add_argument("--sweep", choices=SWEEPS,
                   help="instead of the table: samples/s at batch sizes 1-4096, or at 1 up to the machine's "
                        "cores threads (short measurements; --quick: tiny ones)")
    p.add_argument("--seeds", type=positive_int, default=time_to_target.FIXED_SEEDS,
                   help="seeds of the time-to-target runs of the fixed-length recipe (default: 20); the first "
                        "5 also run the secondary first-check figure")
    p.add_argument("--target-accuracy", type=fraction,
                   help="test accuracy of the time-to-target figures (default: 0.97, for the CNN 0.99)")
    p.add_argument("--first-check-seeds", type=non_negative_int, default=len(time_to_target.SEEDS),
                   help="seeds of the secondary first-check figure (default: 5; 0: not measured)")
    p.add_argument("--time-to-target-for",
                   help="comma-separated contenders to run time to target for (default: every one measured)")
    p.add_argument("--no-time-to-target", action="store_true", help="skip the time-to-target runs")
    add_data_options(p)
    p.add_argument("--synthetic", action="store_true",
                   help="time on seeded random pixels of MNIST's shape instead of the real files")
    p.add_argument("--plot", help="chart to write (default: bench.png, or sweep-batch.png / sweep-threads.png)")
    p.add_argument("--no-plot", action="store_true", help="do not draw the chart")
    p.add_argument("--out-json", help="write the full record to this JSON file")
    p.add_argument("--json", action="store_true", help="print the record as JSON on the last line")
    p.set_defaults(func=run)


def parse_backends(text, network="mlp"):
    if text is None:
        return [n for n in BACKENDS if network == "mlp" or n != "naive"]
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in BACKENDS:
            raise UsageError(f"unknown backend {name!r} in --backends; choose from: {', '.join(BACKENDS)}"
                             f"{peer_hint(name)}")
    if not names:
        raise UsageError("--backends is empty; name at least one backend, e.g. --backends numpy")
    return names


def run(args):
    names = parse_backends(args.backends, args.network)
    plot = args.plot or (f"sweep-{args.sweep}.png" if args.sweep else "bench.png")
    if not args.no_plot:
        check_destination(plot, "--plot")
    if args.out_json:
        check_destination(args.out_json, "--out-json")
        if not args.no_plot:
            check_distinct(plot, args.out_json, "--plot", "--out-json")
    repeats = args.repeats or (1 if args.quick else 5)
    prepare_threads(args.threads)  # before numba is imported (get_backend imports it)
    contenders = [bench.BackendContender(load_backend(n, args.network), args.threads, adaptive=not args.sweep)
                  for n in names]
    if args.peers:  # imported now: jax reads its thread flags here
        contenders += make_peers(args.threads, get_network(args.network))
    if args.synthetic:
        data = synthetic_data()
    else:
        data = load_mnist(args.data_dir, args.dataset, progress=show_progress(args))
    result = {"command": "bench", "network": args.network, "backends": names, "peers": args.peers,
              "batch_size": args.batch_size, "samples": args.samples,
              "threads": args.threads, "repeats": repeats, "quick": args.quick,
              "data": "synthetic" if args.synthetic else args.dataset}
    if args.sweep:
        result |= run_sweep(args, names, contenders, data)
    else:
        result |= run_table(args, contenders, data, repeats)
    if not args.no_plot:
        if args.sweep:
            axis = "batch_size" if args.sweep == "batch" else "threads"
            plot_sweep(result["points"], plot, axis, _sweep_title(result))
        else:
            plot_bench([r for r in result["contenders"] if "error" not in r], plot, args.threads, args.batch_size,
                       args.network)
        print(f"wrote {plot}")
    if args.out_json:
        text = json.dumps(plain_json(result), indent=1, allow_nan=False, default=str)
        write_file(args.out_json, lambda f: f.write(text.encode()))
        print(f"wrote {args.out_json}")
    if args.json:
        print_json(result)
    return 0


def run_table(args, contenders, data, repeats):
    """The throughput table, time to target and target verdicts; the record's fields."""
    network = get_network(args.network)
    # figures from too few samples: no verdicts, no time to target
    small = args.quick or (args.samples is not None and args.samples < JUDGED_SAMPLES)
    with thread_limits(args.threads) as reapply_limits:
        machine = bench.machine_info(contenders)
        how = (("the CNN; " if network.name == "cnn" else "") + f"median of {repeats}, interleaved across contenders; "
               + (f"{args.samples:,} samples, extrapolated" if args.samples
                  else "quick: 4,096 samples, extrapolated" if args.quick else "full epochs"))
        print(bench_report.format_header(machine, args.threads, args.batch_size, how,
                                         [(c.name, c.threads_note) for c in contenders]), flush=True)
        peak = bench.gemm_peak(n=1024 if small else 2048, repeats=3 if small else 5)
        print(f"float32 GEMM peak (numpy matmul, {args.threads} thread{'s' if args.threads > 1 else ''}): "
              f"{peak:.1f} GFLOP/s", flush=True)
        others_before = _others_running()
        prepared = {}
        for c in contenders:
            prepared[c.name] = _prepare_one(c, data, args)
            reapply_limits()  # a warm-up may have loaded another thread pool
        measured = iter(bench_rounds.measure_all([c for c in contenders if "error" not in prepared[c.name]], data,
                                                 batch_size=args.batch_size, repeats=repeats, quick=args.quick,
                                                 samples=args.samples))
        records = [prepared[c.name] if "error" in prepared[c.name] else _with_prepare(next(measured), c, prepared, args.threads)
                   for c in contenders]
        load_after = _load_average()
        threads = thread_report()
        ttt = {} if small or args.no_time_to_target else _time_to_target(contenders, data, records, args)
    reference = next((r for r in records if r["name"] == "pytorch" and "error" not in r), None)
    for r in records:
        if "error" not in r:
            bench.add_derived(r, peak, reference, network)
    disturbed = stats.disturbances(
        others_before, load_after, args.threads,
        [(r["name"], r["thread_choice"]["reason"]) for r in records if r.get("thread_choice")],
        [(r["name"], r["train_seconds_spread"]) for r in records if "train_seconds_spread" in r])
    verdicts = check_targets(records, {"batch_size": args.batch_size, "threads": args.threads, "quick": args.quick,
                                       "samples": args.samples},
                             TARGETS_BY_NETWORK[network.name])
    print()
    print(bench_report.format_table(records, peak, reference is not None, network))
    if ttt:
        print()
        print(bench_report.format_time_to_target(ttt, _target(args), time_to_target.CHECKS_PER_EPOCH))
    print()
    print(bench_report.format_disturbed(disturbed))
    print(format_targets(verdicts))
    return {"thread_pools": threads, "machine": machine, "gemm_peak_gflops": peak,
            "train_flops_per_sample": bench.train_flops_per_sample(network),
            "epoch_gflop": bench.train_flops_per_sample(network) * bench.TRAIN_SAMPLES / 1e9,
            "others_running_at_start": others_before, "load_average_at_end": load_after, "disturbed": disturbed,
            "contenders": records, "time_to_target": ttt, "targets": verdicts}


def _prepare_one(c, data, args):
    """Prepare one contender: ``{"prepare_seconds": ...}``, or a peer's failure as a record with ``error``."""
    try:
        t0 = time.perf_counter()
        c.prepare(data, args.batch_size)
        return {"prepare_seconds": time.perf_counter() - t0}
    except Exception as e:  # a peer failing on this machine is a finding; digitbench failing is a bug
        if c.kind != "peer":
            raise
        print(f"  {c.name}: not measured ({bench.one_line(e)})", flush=True)
        return {"name": c.name, "kind": c.kind, "version": c.version, "error": bench.one_line(e)}


def _with_prepare(record, c, prepared, threads):
    """A measured record with its start-up time, version and thread notes; printed as one line."""
    if "error" in record:
        print(f"  {c.name}: not measured ({record['error']})", flush=True)
        return record
    prepare_seconds = prepared[c.name]["prepare_seconds"]
    record |= {"prepare_seconds": prepare_seconds, "version": c.version, "threads_note": c.threads_note,
               "threads_used": getattr(c, "threads_used", None) or threads,
               "thread_choice": getattr(c, "thread_choice", None)}
    print(f"  {c.name}: {record['train_samples_per_s']:,.0f} samples/s training (median); start-up "
          f"{prepare_seconds:.2f} s, first call {record['first_call_seconds']:.2f} s (never in the throughput)",
          flush=True)
    return record


def _measure_one(c, data, args, repeats):
    """Prepare and measure one contender alone; a peer's failure becomes a record with ``error``."""
    prepared = {c.name: _prepare_one(c, data, args)}
    if "error" in prepared[c.name]:
        return prepared[c.name]
    record = bench_rounds.measure(c, data, batch_size=args.batch_size, repeats=repeats, quick=args.quick)
    return _with_prepare(record, c, prepared, args.threads)


def _load_average():
    """The 1-minute load average, or None where the system has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _others_running():
    """Threads of other processes running right now, or None: Linux's /proc/loadavg counts
    every runnable thread, this process's own (a BLAS or OpenMP pool spinning) included,
    so those (/proc/self/task, state R) are taken off."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    own = 0
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            own += stat.read_text().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):  # a thread that ended meanwhile
            pass
    return max(running - max(own, 1), 0)


def _time_to_target(contenders, data, records, args):
    """Closed and open time to the target for every measured, not slow contender; {name: result}."""
    try:
        recipe = time_to_target.closed_recipe(time_to_target.HEADLINES[args.network][0])
    except ValueError as e:
        print(f"time to target: not measured ({e})")
        return {}
    seeds = tuple(range(args.seeds))
    first_check = tuple(range(args.first_check_seeds))
    chosen = None if not args.time_to_target_for else {n.strip() for n in args.time_to_target_for.split(",")}
    target = _target(args)
    print(f"time to {100 * target:g}%: recipe {recipe['name']!r} trained to its end, seeds {seeds[0]}-{seeds[-1]}",
          flush=True)
    results = {}
    for c, record in zip(contenders, records):
        if c.slow or "error" in record or (chosen is not None and c.name not in chosen):
            continue
        try:
            time.sleep(SETTLE_SECONDS)
            results[c.name] = time_to_target.compare(c, data, recipe, seeds, target, first_check_seeds=first_check)
        except Exception as e:
            if c.kind != "peer":
                raise
            results[c.name] = {"error": bench.one_line(e)}
            continue
        closed = results[c.name]["closed"]
        record["seconds_to_target"] = closed["seconds"] if closed["reached"] else None
        record["seconds_to_target_reps"] = [run["seconds"] for run in closed["runs"]] if closed["reached"] else None
        print(f"  {c.name}: {closed['seconds']:.3f} s (median), mean test accuracy {100 * closed['accuracy']:.2f}%"
              + ("" if closed["reached"] else f", under {100 * target:g}%"), flush=True)
    return results


def _target(args):
    """The time-to-target accuracy: ``--target-accuracy``, else the network's headline (97%, the CNN's 99%)."""
    return args.target_accuracy or time_to_target.HEADLINES[args.network][1]


def run_sweep(args, names, contenders, data):
    """``--sweep batch|threads``: the points, printed as a table; the record's fields."""
    timing = sweeps.QUICK_TIMING if args.quick else {}
    samples = timing.get("samples", sweeps.SWEEP_SAMPLES)
    machine = bench.machine_info(contenders)
    counts = sweeps.thread_counts()
    how = f"{samples} samples a point, best of >= {timing.get('min_repeats', sweeps.MIN_REPEATS)} repeats"
    if args.sweep == "batch":
        sizes = f"{min(sweeps.BATCH_SIZES)}-{max(sweeps.BATCH_SIZES)}"
        print(bench_report.format_header(machine, args.threads, sizes, how,
                                         [(c.name, c.threads_note) for c in contenders]), flush=True)
        with thread_limits(args.threads) as reapply:
            points = sweeps.sweep_batch(contenders, data, args.threads, reapply=reapply, **timing)
        axis = "batch_size"
    else:
        print(bench_report.format_header(machine, f"1-{counts[-1]}", args.batch_size, how), flush=True)
        points = sweeps.sweep_threads(names, args.peers, data, args.batch_size, counts, args.network, **timing)
        axis = "threads"
    print(bench_report.format_sweep(points, axis))
    verdicts = check_sweep(points, args.quick) if args.sweep == "batch" else []
    if verdicts:
        print(format_targets(verdicts))
    return {"sweep": args.sweep, "axis": axis, "machine": machine, "points": points, "samples_per_point": samples,
            "targets": verdicts}


def _sweep_title(result):
    m = result["machine"]
    fixed = (f"{result['threads']} thread{'s' if result['threads'] > 1 else ''}" if result["sweep"] == "batch"
             else f"batch {result['batch_size']}")
    quick = " (--quick: tiny points, a smoke test, not a measurement)" if result["quick"] else ""
    return f"{m['cpu']}, {m['cores']} cores; {fixed}; float32{quick}"
