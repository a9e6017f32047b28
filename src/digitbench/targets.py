"""The speed targets ``digitbench bench`` judges, as data, each with its reason.

One place: the bench command reads :data:`TARGETS`, the docs (docs/bench.md) describe
them, and a change of target is a change of this file. A target is judged only on a run
that matches its conditions (batch size, threads: ``when``), never on a ``--quick`` run
or a ``--samples`` run of fewer than :data:`JUDGED_SAMPLES` samples a repetition (too
few steps for a steady throughput), and only when its
contenders were measured; otherwise the verdict says why not. Each network has its own
targets (:data:`TARGETS_BY_NETWORK`: the MLP's :data:`TARGETS`, :data:`CNN_TARGETS`).

A target's value is a contender's record field (``metric``), or, with ``of``, that field
divided by the same field of another contender in the same run: ratios of one run hold
on a busy machine far better than absolute times. The value comes with its 95% interval,
from the repetitions the record keeps (``<metric>_reps``; paired by round for a ratio:
:mod:`digitbench.stats`), and the verdict is three-valued: "met" when the whole interval
clears the threshold, "not met" when the whole interval misses it, "inconclusive" else.
"""

from dataclasses import dataclass, field

from .peers import PEERS
from .stats import bootstrap_median, bootstrap_ratio
from .stats import verdict as judge


#: A ``--samples`` run with at least this many training samples a repetition (200 steps
#: of batch 64) is judged: a throughput ratio does not depend on the epoch's length,
#: only its s/epoch column is extrapolated (the CNN's numpy epoch takes minutes).
JUDGED_SAMPLES = 12_800


@dataclass(frozen=True)
class Target:
    contender: str
    metric: str  # a field of the contender's record
    op: str  # ">=" or "<="
    threshold: float
    why: str
    of: str = None  # divide by this contender's same field (a ratio)
    when: dict = field(default_factory=dict)  # run settings the target is stated for
    network: str = "mlp"  # the network the contenders train (``--network``)

    def describe(self):
        what = {"train_samples_per_s": "training", "infer_samples_per_s": "inference",
                "epoch_seconds": "epoch", "seconds_to_target": "time to 97% (closed, fixed recipe)"}[self.metric]
        what = f"{self.network} {what}" if self.network != "mlp" else what
        if self.of:
            text = f"{self.contender} {what} {self.op} {self.threshold:g}x {self.of}"
        else:
            text = f"{self.contender} {what} {self.op} {self.threshold:g} s"
        conditions = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.when.items())
        return f"{text}" + (f" ({conditions})" if conditions else "")


#: The targets: on an idle machine, batch 64, float32. The absolute ones (seconds) are
#: stated for a 2-core AMD EPYC with AVX-512 (docs/results.md lists it); the ratios hold anywhere. Inference
#: is timed over the 10,000 test images whatever --batch-size is: no batch condition.
TARGETS = (
    Target("numba", "epoch_seconds", "<=", 0.10, when=dict(batch_size=64, threads=2),
           why="the project's goal on a 2-core AMD EPYC with AVX-512; the sparse step does about a "
               "fifth of the dense work, so the dense floor does not bound it. Absolute: judge it "
               "on such a machine only, the ratios anywhere"),
    Target("numba", "train_samples_per_s", ">=", 5.5, of="pytorch", when=dict(batch_size=64, threads=2),
           why="the same network in PyTorch eager pays a few hundred microseconds of framework "
               "overhead a step; skipping 81% of layer 1 and fusing the step should show 5.5x"),
    Target("numba", "train_samples_per_s", ">=", 2.5, of="jax-scan", when=dict(batch_size=64, threads=2),
           why="JAX's whole-epoch lax.scan has no Python per step: the strongest peer; 2.5x is "
               "what the sparse first layer alone should give over its dense one"),
    Target("numba", "train_samples_per_s", ">=", 3.5, of="pytorch", when=dict(batch_size=64, threads=1),
           why="at one thread there is no barrier cost to hide behind: numba's advantage must come "
               "from doing less work, not from parallelism"),
    Target("numpy", "train_samples_per_s", ">=", 1.5, of="pytorch", when=dict(batch_size=64),
           why="the vectorized NumPy backend is the baseline a user compares PyTorch with; an "
               "in-place step without autograd should beat eager PyTorch at any thread count"),
    Target("numba", "infer_samples_per_s", ">=", 1.2, of="pytorch",
           why="inference over the 10,000 test images: the fast backend must be fastest at "
               "prediction too, not only at training"),
    Target("numba", "infer_samples_per_s", ">=", 1.0, of="numpy",
           why="numba's forward must never lose to the NumPy backend it is meant to beat"),
    Target("numba", "seconds_to_target", "<=", 0.15, when=dict(threads=2),
           why="time to 97% test accuracy: the median training time of the closed fixed-length "
               "recipe over its seeds, evaluation off the clock; about one epoch at the 0.10 s target"),
)

#: The CNN's targets (``--network cnn``): ratios at the run's thread count, batch 64. The
#: CNN's work is dense convolutions (no zero pixels to skip in the products that count),
#: so numba's edge over PyTorch is what fusing the layers and the step can give.
CNN_TARGETS = (
    Target("numba", "train_samples_per_s", ">=", 1.5, of="pytorch", when=dict(batch_size=64), network="cnn",
           why="PyTorch eager calls oneDNN's convolutions and pays its framework overhead at every layer and "
               "step; numba's convolutions fused with ReLU and pooling, and one compiled step, should show 1.5x"),
) + tuple(
    Target("numba", "train_samples_per_s", ">=", 1.0, of=peer, when=dict(batch_size=64), network="cnn",
           why=f"{peer} compiles the whole step: numba must not lose to any framework on the same CNN")
    for peer in ("torch.compile", "jax-step", "jax-scan"))
#: The targets of each network, by name.
TARGETS_BY_NETWORK = {"mlp": TARGETS, "cnn": CNN_TARGETS}


def check_targets(records, run, targets=TARGETS):
    """One verdict per target: ``value`` and ``interval`` (or None), ``met`` and ``status``.

    ``met`` is True ("met"), False ("not met") or None (inconclusive, or not judged).

    Parameters
    ----------
    records : list of dict, one per contender (``name`` and the measured fields)
    run : dict with the run's ``batch_size``, ``threads``, ``quick`` and ``samples`` (None: an epoch)
    """
    by_name = {r["name"]: r for r in records}
    out = []
    for t in targets:
        verdict = {"target": t.describe(), "contender": t.contender, "metric": t.metric, "of": t.of,
                   "op": t.op, "threshold": t.threshold, "why": t.why, "value": None, "interval": None,
                   "met": None}
        mismatch = [f"--{k.replace('_', '-')} {v}" for k, v in t.when.items() if run.get(k) != v]
        record, base = by_name.get(t.contender, {}), by_name.get(t.of, {}) if t.of else {}
        if run.get("quick"):
            verdict["status"] = "not judged: --quick figures are extrapolated"
        elif run.get("samples") and run["samples"] < JUDGED_SAMPLES:
            verdict["status"] = f"not judged: --samples under {JUDGED_SAMPLES:,} a repetition"
        elif mismatch:
            verdict["status"] = f"not applicable to this run (stated for {', '.join(mismatch)})"
        elif record.get(t.metric) is None or (t.of and base.get(t.metric) is None):
            missing = t.contender if record.get(t.metric) is None else t.of
            hint = " (add --peers)" if missing not in ("numba", "numpy") and missing in PEERS else ""
            verdict["status"] = f"not measured: {missing}{hint}"
        else:
            verdict["value"], verdict["interval"] = _value_and_interval(t, record, base)
            status = judge(verdict["interval"] or (verdict["value"],) * 2, t.op, t.threshold)
            verdict["met"] = {"met": True, "not met": False}.get(status)
            verdict["status"] = status + ("" if verdict["interval"] else " (one value, no interval)")
        out.append(verdict)
    return out


def _value_and_interval(target, record, base):
    """The target's value and its 95% interval (None when the record keeps no repetitions)."""
    reps = record.get(f"{target.metric}_reps")
    if target.of:
        base_reps = base.get(f"{target.metric}_reps")
        if reps and base_reps and len(reps) == len(base_reps):
            return bootstrap_ratio(reps, base_reps)
        return record[target.metric] / base[target.metric], None
    if reps:
        return bootstrap_median(reps)
    return record[target.metric], None


def format_targets(verdicts):
    """The verdicts as lines for the table's foot."""
    lines = ["speed targets (src/digitbench/targets.py):"]
    if verdicts and all(v["status"].startswith("not judged") for v in verdicts):
        return f"{lines[0]} {verdicts[0]['status']}"
    for v in verdicts:
        if v["value"] is None:
            lines.append(f"  {v['target']}: {v['status']}")
        else:
            unit = "x" if v["of"] else " s"
            interval = "" if not v["interval"] else f" [95% CI {v['interval'][0]:.4g}-{v['interval'][1]:.4g}]"
            lines.append(f"  {v['target']}: {v['value']:.4g}{unit}{interval}, {v['status']}")  # 4 digits: 3.497x is not 3.5x
    return "\n".join(lines)


def check_sweep(points, quick, targets=TARGETS):
    """Inference targets judged at every batch size of a batch sweep; one list of verdicts
    per batch size, each verdict with its ``batch_size``."""
    inference = [t for t in targets if t.metric == "infer_samples_per_s"]
    out = []
    for b in sorted({p["batch_size"] for p in points}):
        at_b = [p for p in points if p["batch_size"] == b and "error" not in p]
        threads = at_b[0]["threads"] if at_b else None
        for v in check_targets(at_b, {"batch_size": b, "threads": threads, "quick": quick}, inference):
            out.append(v | {"batch_size": b, "target": f"{v['target']} at batch {b}"})
    return out
