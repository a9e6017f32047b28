"""The tables ``digitbench bench`` prints: what each column means is in docs/bench.md.

Every table starts with the machine (CPU model, cores), the versions and the thread
counts it was measured with, so that a pasted table carries its conditions.
"""

import statistics

from .bench import TRAIN_SAMPLES, train_flops_per_sample
from .networks import MLP


def format_header(machine, threads, batch_size, how, thread_notes=()):
    """Lines naming the machine, the versions and the thread limit of every contender.

    ``threads`` is the limit each contender is held to; ``thread_notes`` say how each is
    held. The threads each one actually used are in the table's ``threads`` column
    (numba's chooser may train on fewer; the naive backend is one Python thread).
    ``how``: what is timed, e.g. "median of 5, interleaved across contenders; full epochs".
    """
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    lines = [f"machine: {machine['cpu']}, {machine['cores']} cores ({machine['platform']})",
             f"versions: {versions}",
             f"BLAS: {format_blas(machine.get('blas', []))}",
             f"threads: at most {threads} per contender (each one's count: the table's threads column); "
             f"batch size {batch_size}; float32; {how}"]
    lines += [f"  {name}: {note}" for name, note in thread_notes if note]
    return "\n".join(lines)


def format_blas(blas):
    """The BLAS line's text from :func:`digitbench.bench.blas_kernels`' list."""
    forced = any(entry.startswith("OPENBLAS_CORETYPE=") for entry in blas)
    return "; ".join(blas) + (" (set in the environment: it forces these kernels, whatever the CPU has)"
                              if forced else "") if blas else "none loaded"


def format_table(records, peak, with_ratios, network=MLP):
    """The throughput table of contenders training ``network``; '*' marks figures
    extrapolated from fewer samples."""
    head = ["contender", "threads", "train samples/s", "s/epoch (spread)", "x PyTorch [95% CI]", "% peak dense", "% peak done",
            "infer samples/s", "latency", "start-up", "first call"]
    rows, failed = [], []
    for r in records:
        if "error" in r:
            failed.append(f"{r['name']}: not measured ({r['error']})")
            continue
        star = "*" if r["epoch_extrapolated"] else ""
        istar = "*" if r["infer_samples_timed"] < 10_000 else ""
        rows.append([
            r["name"],
            str(threads_used(r)),
            f"{r['train_samples_per_s']:,.0f}",
            f"{number(r['epoch_seconds'])}{star}" + _spread_of(r),
            format_ratio(r["train_vs_pytorch"]) + format_interval(r.get("train_vs_pytorch_ci"))
            if with_ratios and "train_vs_pytorch" in r else "-",
            "-" if r.get("sparse_input") else percent(r["share_of_peak"]),
            percent(r["share_of_peak_done"]),
            f"{r['infer_samples_per_s']:,.0f}{istar}",
            duration(r["latency_s"]),
            duration(r["prepare_seconds"]) if "prepare_seconds" in r else "-",
            duration(r["first_call_seconds"]),
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    lines = ["  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(row, widths)))
             for row in [head] + rows]
    lines.insert(1, "-" * len(lines[0]))
    lines += failed
    lines += [f"{r['name']} trained on {r['thread_choice']['threads']} of {r['thread_choice']['max_threads']} "
              f"threads: {r['thread_choice']['reason']}" for r in records if r.get("thread_choice")]
    per_sample = train_flops_per_sample(network)
    gflop = per_sample * TRAIN_SAMPLES / 1e9
    lines.append(f"an epoch is {gflop:.2f} GFLOP dense ({per_sample:,} per sample): {gflop / peak:.3f} s "
                 f"at the GEMM peak of {peak:.1f} GFLOP/s; '% peak dense' is that floor over the epoch time")
    sparse = [r["name"] for r in records if r.get("sparse_input") and "error" not in r]
    if sparse:
        lines.append(f"'% peak done' counts the work executed; {', '.join(sparse)} skips zero pixels in layer 1, so "
                     "its multiply-adds are counted from the timed samples' non-zero pixels, and its '% peak dense' "
                     "(work it does not do) is '-'")
    if any(max(r.get("share_of_peak") or 0, r.get("share_of_peak_done") or 0) > 1 for r in records if "error" not in r):
        lines.append("'>100': faster than the GEMM peak measured at the start, which a busy machine measures low")
    if not with_ratios:
        lines.append("'x PyTorch': filled when PyTorch is timed too (--peers)")
    lines.append("s/epoch: the median of the timed epochs, (min-max) of them; x PyTorch: the ratio of median "
                 "throughputs, [its 95% bootstrap interval over the paired repetitions]")
    lines.append("start-up: imports, building, compiling a tiny warm-up; first call: the first timed-size pass "
                 "(compiling its shapes); neither is in the throughput")
    if any(r.get("epoch_extrapolated") or r.get("infer_samples_timed", 10_000) < 10_000 for r in records):
        lines.append("* extrapolated from fewer samples than an epoch (or than the test set): "
                     "the naive backend always, every contender with --quick or --samples")
    return "\n".join(lines)


def format_time_to_target(results, target, checks):
    """Time to ``target`` test accuracy, closed and open (one row a contender), and the
    secondary first-check figure, labelled as such."""
    head = ["contender", "closed: median s", "spread", "mean accuracy [95% CI]", f"seeds >= {100 * target:g}%",
            "open: median s", "open recipe", "first check (secondary)"]
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append([name, f"not measured ({r['error']})"] + [""] * (len(head) - 2))
            continue
        c, o, f = r["closed"], r["open"], r.get("first_check")
        low, high = c["accuracy_ci"]
        rows.append([name, _fixed_seconds(c), f"{c['spread'][0]:.3f}-{c['spread'][1]:.3f} s",
                     f"{100 * c['accuracy']:.2f}% [{100 * low:.2f}, {100 * high:.2f}]",
                     f"{round(c['at_target'] * c['seeds'])}/{c['seeds']}", _fixed_seconds(o), o["recipe"],
                     "-" if f is None else _seconds_or_none(f)])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    lines = [f"time to {100 * target:g}% test accuracy: a fixed-length recipe trained to its end, the test set "
             "evaluated once, at the end (off the clock)"]
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in [head] + rows]
    lines.insert(2, "-" * len(lines[1]))
    first = next((r for r in results.values() if "closed" in r), None)
    if first is not None:
        lines.append(f"closed: every contender runs recipe {first['closed']['recipe']!r} of digitbench.recipe (chosen "
                     f"on held-out training images), same weights and batches; {first['closed']['rule']}")
        if "first_check" in first:
            lines.append(f"first check (secondary, biased towards lucky seeds): the clock stopped at the first of "
                         f"{checks} checks an epoch at or above the target; {first['first_check']['rule']}")
    lines.append("open: each contender's best recipe on the same network and data, labelled")
    return "\n".join(lines)


def _fixed_seconds(summary):
    """A fixed-length figure's median time, or why it is not a time to the target."""
    return f"{summary['seconds']:.3f} s" + ("" if summary["reached"] else " (mean under target)")


def _seconds_or_none(summary):
    return "not reached" if summary["seconds"] is None else f"{summary['seconds']:.3f} s"


def format_disturbed(reasons):
    """One line: the machine seemed idle, or why its figures are not an idle machine's."""
    if not reasons:
        return "machine: no sign of other work during the run (load average, thread choices, repetition spread)"
    return "machine DISTURBED during the run, figures less certain: " + "; ".join(reasons)


def _spread_of(record):
    spread = record.get("train_seconds_spread")
    if not spread or len(record.get("train_seconds", ())) < 2:
        return ""
    scale = record["epoch_seconds"] / statistics.median(record["train_seconds"])
    return f" ({number(spread[0] * scale)}-{number(spread[1] * scale)})"


def format_interval(interval):
    """" [low, high]" for a ratio's interval; "" without one."""
    return "" if not interval else f" [{format_ratio(interval[0])}, {format_ratio(interval[1])}]"


def format_sweep(points, axis):
    """The sweep's points as a table: one row a contender, one column a batch size or thread count."""
    keys = sorted({p[axis] for p in points})
    names = list(dict.fromkeys(p["name"] for p in points))
    lines = [f"training samples/s (inference samples/s) by {axis.replace('_', ' ')}"]
    for name in names:
        cells = []
        for k in keys:
            p = next((p for p in points if p["name"] == name and p[axis] == k), None)
            cells.append("-" if p is None else "error" if "error" in p else
                         f"{p['train_samples_per_s']:,.0f} ({p['infer_samples_per_s']:,.0f})")
        lines.append(f"  {name:14s} " + "  ".join(f"{k}: {c}" for k, c in zip(keys, cells)))
    lines += [f"  {p['name']} at {p[axis]}: {p['error']}" for p in points if "error" in p]
    return "\n".join(lines)


def threads_used(record):
    """The threads a contender trained on: its own choice when it reports one (numba), else its limit."""
    choice = record.get("thread_choice")
    return choice["threads"] if choice else record.get("threads_used", "-")


def percent(share):
    """A share of the peak as a percentage for a table cell; '>100' above the peak."""
    return ">100" if share > 1 else number(100 * share)


def number(x):
    """Three significant figures, without exponents: 1,290 / 0.409 / 0.00211."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}" if abs(x) >= 1e-4 else f"{x:.1e}"


def format_ratio(x):
    return f"{x:.2f}" if x >= 0.1 else number(x)


def duration(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{1e3 * seconds:.2f} ms"
    return f"{1e6 * seconds:.0f} us"
