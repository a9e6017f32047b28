"""docs/results.md and README.md's headline from the records of every machine on record.

One table per figure, one column per machine (``tools/machines.py`` loads them), so that a
reader finds the machine closest to theirs. Records written before the figures carried
their uncertainty (a best-of-3 time, a ratio without an interval, time to 97% at the first
check) are shown as what they are, and labelled so.
"""

import machines
from digitbench.stats import bootstrap_mean

INTRO = [
    "# Results", "",
    "Every measured figure of digitbench's documentation is on this page. It is written by",
    "`python tools/make_results.py render` from the JSON records in [results/](results/), one folder a",
    "machine, which `python tools/make_results.py run` produces by running each command below in a fresh",
    "process (set `DIGITBENCH_DATA` to the MNIST files; run it on an otherwise idle machine). A run files its",
    "records under its own machine (CPU model and family, AVX2 or AVX-512, cores, the BLAS kernels and",
    "whether `OPENBLAS_CORETYPE` forced them) and never overwrites another machine's. Where the environment",
    "sets `OPENBLAS_CORETYPE`, run it as `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python",
    "tools/make_results.py run`, so that OpenBLAS picks its kernels as it does for a user",
    "([bench.md](bench.md), the header).", "",
    "How to read the figures: a time is the median of its repetitions with their range (min-max); a ratio",
    "to PyTorch is the ratio of median throughputs, with its 95% bootstrap interval over repetitions taken",
    "in pairs, interleaved across contenders; a target is \"met\" only when its whole interval clears it,",
    "\"not met\" when its whole interval misses it, \"inconclusive\" otherwise. Time to 97% is the",
    "fixed-length `fast` recipe (chosen on the last 10,000 training images, never the test set) trained",
    "to its end for 20 seeds: its median training time, and its mean test accuracy with a 95% interval.",
    "Records from before these rules say so in their cells.", "",
]


def _epochs(n):
    """'1 epoch', '30 epochs'."""
    return f"{n} epoch{'' if n == 1 else 's'}"


def short(m):
    """A machine's column heading."""
    family = f" family {m['family']}" if m.get("family") else ""
    forced = f", OpenBLAS {m['coretype']} forced" if m.get("coretype") else ""
    return f"{m['cpu']}{family}, {m['isa']}, {m['cores']} cores{forced}"


def table(on_record, rows, first="what"):
    """Markdown: ``rows`` of (label, {machine id: cell}); machines as columns."""
    ids = list(on_record)
    out = [f"| {first} | " + " | ".join(short(on_record[i]["machine"]) for i in ids) + " |",
           "|---|" + "---|" * len(ids)]
    out += [f"| {label} | " + " | ".join(cells.get(i, "-") for i in ids) + " |" for label, cells in rows]
    return out


def each(on_record, name, cell):
    """{machine id: cell(record)} for the machines that have record ``name``."""
    return {i: cell(m["records"][name]) for i, m in on_record.items() if name in m["records"]}


#: The CNN's default recipe from the command line: record prefix -> backend.
CNN_TRAININGS = {"train-cnn/": "numba", "train-cnn-numpy/": "numpy"}


#: Record names in the order the page shows them (make_results.py sets its RUNS' order).
ORDER = []


def names(on_record, prefix=""):
    """Record names of every machine starting with ``prefix``, in :data:`ORDER`, then by name."""
    found = {n for m in on_record.values() for n in m["records"] if n.startswith(prefix)}
    return sorted(found, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def pct(x):
    return f"{100 * x:.2f}%"


def interval(ci, fmt="{:.2f}"):
    return "" if not ci else f" [{fmt.format(ci[0])}, {fmt.format(ci[1])}]"


# --------------------------------------------------------------------------- cells


def train_cell(e):
    s = e["json"]
    first = f"; first check at 97% after {s['seconds_to_target']:.2f} s" if s.get("seconds_to_target") else ""
    return (f"{pct(s['test_accuracy'])}, {_epochs(s['epochs_run'])}, {s['train_seconds']:.2f} s training "
            f"(+{s['eval_seconds']:.2f} s evaluating, {s['warmup_seconds']:.2f} s compile or load){first}")


def epoch_cell(r):
    if "error" in r:
        return f"failed: {r['error']}"
    star = "*" if r.get("epoch_extrapolated") else ""
    if "train_seconds_spread" in r:
        scale = r["epoch_seconds"] / sorted(r["train_seconds"])[len(r["train_seconds"]) // 2]
        low, high = (scale * t for t in r["train_seconds_spread"])
        return f"{r['epoch_seconds']:.3f}{star} s ({low:.3f}-{high:.3f})"
    return f"{r['epoch_seconds']:.3f}{star} s (best of {len(r['train_seconds'])}, no spread recorded)"


def ratio_cell(r):
    if "error" in r or "train_vs_pytorch" not in r:
        return "-"
    ci = r.get("train_vs_pytorch_ci")
    return f"{r['train_vs_pytorch']:.2f}x" + (interval(ci) if ci else " (one run, no interval)")


def ttt_cell(result, target=0.97):
    if "error" in result:
        return f"failed: {result['error']}"
    c = result["closed"]
    if "accuracy" not in c:  # recorded with the first-check protocol only
        return (f"first check at 97%, an older recipe and protocol (biased to lucky seeds): {c['seconds']:.3f} s, "
                f"{c['rule']}"
                if c["seconds"] is not None else "first check: not reached")
    text = (f"{c['seconds']:.3f} s ({c['spread'][0]:.3f}-{c['spread'][1]:.3f}); mean test accuracy "
            f"{pct(c['accuracy'])}{interval([100 * x for x in c['accuracy_ci']], '{:.2f}')}; "
            f"{round(c['at_target'] * c['seeds'])}/{c['seeds']} seeds at {100 * target:g}%")
    f = result.get("first_check")
    if f and f["seconds"] is not None:
        text += f"; first check (secondary): {f['seconds']:.3f} s"
    return text


def target_cell(v):
    if v["value"] is None:
        return v["status"]
    unit = "x" if v["of"] else " s"
    ci = v.get("interval")
    status = v["status"] if "interval" in v else f"{v['status']} (one run, no interval: older record)"
    return f"{v['value']:.3g}{unit}{interval(ci, '{:.3g}')}, {status}"


# --------------------------------------------------------------------------- headline


def headline_rows(on_record):
    def speed(e):
        by = {r["name"]: r for r in e["json"]["contenders"] if "error" not in r}
        parts = [f"{label} {ratio_cell(by[n])}" for n, label in (("numba", "numba"), ("numpy", "numpy"),
                                                                 ("jax-scan", "JAX lax.scan")) if n in by]
        return ", ".join(parts) or "-"

    def ttt(e):
        result = e["json"].get("time_to_target", {}).get("numba")
        return ttt_cell(result) if result else "-"

    def seed(e):
        s = e["json"]
        return f"{pct(s['test_accuracy'])} after {_epochs(s['epochs_run'])}, {s['train_seconds']:.1f} s of training"

    return [
        ("test accuracy, default training (numba): `digitbench train`", each(on_record, "train-seed", seed)),
        ("time to 97% test accuracy (numba, recipe `fast`): `digitbench bench --peers`",
         each(on_record, "bench-peers", ttt)),
        ("training speed vs PyTorch eager, same threads [95% interval]: `digitbench bench --peers`",
         each(on_record, "bench-peers", speed)),
        ("CNN: mean test accuracy of the default recipe, seeds 0-4: `digitbench train --network cnn`",
         cnn_accuracy_cells(on_record)),
        ("CNN: training speed vs PyTorch eager, 2 threads / 1 thread [95% interval]: "
         "`digitbench bench --network cnn --peers`", cnn_speed_cells(on_record)),
        ("CNN: time to 99% test accuracy (recipe `cnn-fast`, median of 5 seeds): `digitbench bench --network cnn`",
         each(on_record, "bench-cnn-time-to-99", cnn_ttt)),
        ("compiling the numba kernels, first run", each(on_record, "compile",
                                                        lambda e: f"{e['json']['float32']['compile_seconds']:.1f} s")),
        ("the test command, cold / warm: `python -m pytest`",
         each(on_record, "test-command", lambda e: f"{e['json']['cold']:.0f} s / {e['json']['warm']:.0f} s")),
    ]


def cnn_accuracy_cells(on_record):
    """{machine id: each backend's mean test accuracy over its CNN training records}."""
    out = {}
    for i, m in on_record.items():
        parts = []
        for prefix, backend in CNN_TRAININGS.items():
            accs = [e["json"]["test_accuracy"] for n, e in sorted(m["records"].items()) if n.startswith(prefix)]
            if accs:
                mean, (low, high) = bootstrap_mean(accs)
                parts.append(f"{backend} {pct(mean)} [{100 * low:.2f}, {100 * high:.2f}] ({len(accs)} seeds)")
        if parts:
            out[i] = ", ".join(parts)
    return out


def cnn_speed_cells(on_record):
    """{machine id: numba's training speed over PyTorch eager's, at 2 threads / 1 thread}."""
    def numba_ratio(e):
        by = {r["name"]: r for r in e["json"]["contenders"]}
        return ratio_cell(by["numba"]) if "numba" in by else "-"

    both = (each(on_record, "bench-cnn-peers", numba_ratio), each(on_record, "bench-cnn-peers-1-thread", numba_ratio))
    return {i: f"numba {both[0].get(i, '-')} / {both[1].get(i, '-')}" for i in on_record
            if i in both[0] or i in both[1]}


def cnn_ttt(e):
    """numba's and PyTorch eager's time to 99% in one record."""
    found = e["json"].get("time_to_target", {})
    parts = [f"{label} {found[n]['closed']['seconds']:.1f} s" for n, label in (("numba", "numba"),
                                                                              ("pytorch", "PyTorch eager"))
             if n in found and "error" not in found[n] and found[n]["closed"].get("seconds") is not None]
    return ", ".join(parts) or "-"


def headline(on_record):
    """README's table: the figures a newcomer asks about first, one column a machine."""
    rows = [(label, cells) for label, cells in headline_rows(on_record) if cells]
    dates = sorted({e["date"] for m in on_record.values() for e in m["records"].values()})
    placeholder = any(e["placeholder"] for m in on_record.values() for e in m["records"].values())
    note = (f"Measured {dates[0]}" + (f" to {dates[-1]}" if dates[-1] != dates[0] else "")
            + (" (placeholders from a busy machine, to be measured again on an idle one)" if placeholder else "")
            + "; the machines in full, how, and every other figure: [docs/results.md](docs/results.md).")
    return table(on_record, rows) + ["", note]


def with_headline(readme, on_record):
    start, end = "<!-- results:headline -->", "<!-- /results:headline -->"
    if start not in readme:
        raise SystemExit(f"make_results: README.md has no {start} marker")
    head, rest = readme.split(start, 1)
    return head + start + "\n" + "\n".join(headline(on_record)) + "\n" + end + rest.split(end, 1)[1]


# --------------------------------------------------------------------------- page


def machines_section(on_record):
    keys = list(dict.fromkeys(k for m in on_record.values() for e in m["records"].values() for k in e["versions"]))

    def versions(m):
        found = {k: sorted({str(e["versions"].get(k)) for e in m["records"].values()}) for k in keys}
        return {k: ", ".join(v) for k, v in found.items()}

    rows = [("machine", {i: machines.describe(m["machine"]) for i, m in on_record.items()}),
            ("folder", {i: f"[results/{i}/](results/{i}/)" for i in on_record}),
            ("dates", {i: ", ".join(sorted({e["date"] for e in m["records"].values()})) for i, m in on_record.items()}),
            ("records", {i: ", ".join(m["records"]) for i, m in on_record.items()})]
    rows += [(k, {i: versions(m)[k] for i, m in on_record.items()}) for k in keys if k not in ("BLAS kernels",)]
    return ["## Machines on record", "", *table(on_record, rows, "")]


def bench_sections(on_record):
    out = []
    for name in names(on_record, "bench-"):
        have = {i: m["records"][name] for i, m in on_record.items() if name in m["records"]}
        contenders = list(dict.fromkeys(r["name"] for e in have.values() for r in e["json"]["contenders"]))

        def by(e, c):
            return next((r for r in e["json"]["contenders"] if r["name"] == c), None)

        command = next(iter(have.values()))["command"]
        out += ["", f"## Speed: `{command}`", "",
                "Seconds an epoch, median (min-max); `*`: extrapolated from part of an epoch.", "",
                *table(on_record, [(c, {i: epoch_cell(by(e, c)) for i, e in have.items() if by(e, c)})
                                   for c in contenders], "contender"),
                "", "Training throughput over PyTorch eager's [95% interval]:", "",
                *table(on_record, [(c, {i: ratio_cell(by(e, c)) for i, e in have.items() if by(e, c)})
                                   for c in contenders], "contender"),
                "", "Settings and the machine's state during the run:", "",
                *table(on_record, [
                    ("threads, batch, repetitions", {i: f"{e['json']['threads']}, {e['json']['batch_size']}, "
                                                        f"{e['json']['repeats']}" for i, e in have.items()}),
                    ("float32 GEMM peak", {i: f"{e['json']['gemm_peak_gflops']:.1f} GFLOP/s" for i, e in have.items()}),
                    ("disturbed", {i: "; ".join(e["json"]["disturbed"]) or "no" if "disturbed" in e["json"]
                                   else "not recorded (older record)" for i, e in have.items()})], "")]
        ttt = [c for c in contenders if any(c in e["json"].get("time_to_target", {}) for e in have.values())]
        if ttt:
            first = next(iter(have.values()))["json"]
            target, recipe = (0.99, "cnn-fast") if first.get("network") == "cnn" else (0.97, "fast")
            out += ["", f"Time to {100 * target:g}% test accuracy, recipe `{recipe}`: median training time "
                    f"(min-max), mean test accuracy [95% interval], seeds at or above {100 * target:g}%:", "",
                    *table(on_record, [(c, {i: ttt_cell(e["json"]["time_to_target"][c], target)
                                            for i, e in have.items()
                                            if c in e["json"].get("time_to_target", {})}) for c in ttt], "contender")]
        targets = list(dict.fromkeys(v["target"] for e in have.values() for v in e["json"].get("targets", [])))
        if targets:
            out += ["", "Targets (`src/digitbench/targets.py`):", "",
                    *table(on_record, [(t, {i: target_cell(v) for i, e in have.items()
                                            for v in e["json"].get("targets", []) if v["target"] == t})
                                       for t in targets], "target")]
        for i, e in have.items():
            out += ["", f"<details><summary>What the command printed on {short(on_record[i]['machine'])}</summary>",
                    "", "```", e["stdout"], "```", "", "</details>"]
    return out


def cnn_training_section(on_record):
    """The CNN's default recipe from the command line, one record a seed and backend: each
    seed's test accuracy and the mean with its 95% interval (:mod:`digitbench.stats`)."""
    found = {backend: names(on_record, prefix) for prefix, backend in CNN_TRAININGS.items()}
    found = {backend: runs for backend, runs in found.items() if runs}
    if not found:
        return []

    def summary(m, runs):
        accs = [m["records"][n]["json"]["test_accuracy"] for n in runs if n in m["records"]]
        mean, (low, high) = bootstrap_mean(accs)
        seeds = ", ".join(pct(a) for a in accs)
        return f"mean {pct(mean)} [{100 * low:.2f}, {100 * high:.2f}] over {len(accs)} seeds ({seeds})"

    def command(runs):
        first = next(m["records"][runs[0]] for m in on_record.values() if runs[0] in m["records"])
        return first["command"].replace(" --seed 0", " --seed S")

    return ["", "## The CNN's accuracy", "",
            "The default recipe of `--network cnn` (momentum SGD, batch 64, learning rate 0.05 on a cosine "
            "schedule, 4 epochs) for S = 0-4, on each backend; test accuracy on the 10,000 test images:", "",
            *table(on_record, [(f"{backend}: `{command(runs)}`",
                                {i: summary(m, runs) for i, m in on_record.items()
                                 if any(n in m["records"] for n in runs)})
                               for backend, runs in found.items()], "command")]


def sweep_sections(on_record):
    out = []
    for name in names(on_record, "sweeps/"):
        have = {i: m["records"][name] for i, m in on_record.items() if name in m["records"]}
        rows = {}
        for i, e in have.items():
            record = e.get("json", e)  # a sweep saved by bench --out-json is the record itself
            axis = record["axis"]
            for p in record["points"]:
                cell = p.get("error") or f"{p['train_samples_per_s']:,.0f} ({p['infer_samples_per_s']:,.0f})"
                rows.setdefault(f"{p['name']}, {axis.replace('_', ' ')} {p[axis]}", {})[i] = cell
        out += ["", f"## Sweep: {name.split('/')[-1]}", "",
                "Training samples/s (inference samples/s) at each point:", "",
                *table(on_record, list(rows.items()), "contender, point")]
    return out


def page(on_record, experiments):
    out = list(INTRO)
    if any(e["placeholder"] for m in on_record.values() for e in m["records"].values()):
        out += ["**Placeholders.** Some records below come from quick runs on a busy shared machine",
                "(`run --quick`); they show the page's shape, not the project's speed, until the next full run.", ""]
    out += machines_section(on_record)
    out += ["", "## Headline", "", *table(on_record, headline_rows(on_record))]
    trains = [n for n in names(on_record, "train-") if not n.startswith(tuple(CNN_TRAININGS))]
    out += ["", "## Accuracy and training time", "",
            "The default recipe (\"seed\": mini-batch SGD with batch 64, He initialisation, 30 epochs, learning rate",
            "0.01 / (1 + 0.05 e) in epoch e, momentum 0.9), the same on the NumPy backend, two variants without",
            "momentum, and the `fast` recipe (`digitbench.recipe`):", "",
            *table(on_record, [(f"`{next(m['records'][n]['command'] for m in on_record.values() if n in m['records'])}`",
                                each(on_record, n, train_cell)) for n in trains], "command")]
    out += cnn_training_section(on_record)
    out += bench_sections(on_record)
    if names(on_record, "compile"):
        out += ["", "## Numba: compiling, and starting from the cache", "",
                "Fresh processes with an empty cache folder (`compile_report` in `digitbench.kernels.numba_backend`):",
                "", *table(on_record, [(f"{k}: first call (compile) / cached start", each(
                    on_record, "compile", lambda e, k=k: f"{e['json'][k]['compile_seconds']:.1f} s / "
                                                         f"{e['json'][k]['cached_seconds']:.2f} s"))
                                       for k in ("float32", "float32+float64")], "dtypes")]
    out += sweep_sections(on_record)
    for name in experiments:
        have = {i: m["records"][f"experiment-{name}"] for i, m in on_record.items()
                if f"experiment-{name}" in m["records"]}
        for i, e in have.items():
            out += ["", f"## Experiment `{name}` ({short(on_record[i]['machine'])})", "", f"`{e['command']}`:", "",
                    "```", e["stdout"], "```", "", f"![{name}](images/experiment-{name}.png)"]
    if names(on_record, "test-command"):
        out += ["", "## The test command", "", *table(on_record, [
            ("cold (empty numba cache)", each(on_record, "test-command",
                                              lambda e: f"{e['json']['cold']} s: `{e['json']['cold_summary']}`")),
            ("warm", each(on_record, "test-command",
                          lambda e: f"{e['json']['warm']} s: `{e['json']['warm_summary']}`"))], "`python -m pytest`")]
    return "\n".join(out) + "\n"

