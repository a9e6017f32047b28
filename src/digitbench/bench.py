"""What ``digitbench bench`` measures, and how: throughput, latency, and the FLOP floor.

Every contender (each digitbench backend, and with ``--peers`` PyTorch and scikit-learn,
see :mod:`digitbench.peers`) is measured in the same process, with the same batch size
and the same, explicitly set number of threads, on the same data:

- training throughput: samples per second of SGD with momentum 0.9 over a seeded
  permutation of the training set (a whole epoch, or fewer samples, extrapolated, when
  ``--quick`` or for the naive backend); best of ``repeats``;
- inference throughput: predicted labels for the 10,000 test images (fewer for the
  naive backend, extrapolated); best of ``repeats``;
- latency: the median time to classify one image.

The FLOP floor. Per sample, with layer sizes (784, 128, 64, 10), the matrix products do
``m = 784*128 + 128*64 + 64*10 = 109,184`` multiply-adds each way::

    forward       z = a @ W                 2m FLOP
    weight grads  dW = a.T @ dz             2m FLOP
    input grads   da = dz @ W.T             2(m - 784*128) FLOP  (no gradient for the pixels)
    total                                   6m - 2*784*128 = 454,400 FLOP per sample

so an epoch of 60,000 samples is 27.26 GFLOP (bias, ReLU and softmax add under 1%).
Divided by the machine's measured single-precision GEMM rate (NumPy matmul of large
float32 matrices with the same threads), that is the shortest time an epoch could take;
"share of peak" is that floor over the measured epoch time.
"""

import contextlib
import math
import os
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from .params import LAYER_SIZES, init_params, zeros_like_params
from .pixels import scale_pixels
from .sgd import chunk_bounds, run_chunk

TRAIN_SAMPLES = 60_000
QUICK_TRAIN_SAMPLES = 4_096
#: The naive backend runs pure Python loops: it is timed on this many batches only.
NAIVE_BATCHES = 3
NAIVE_INFER_SAMPLES = 100
LR, MOMENTUM = 0.01, 0.9


# --------------------------------------------------------------------------- FLOP counts


def multiply_adds(layer_sizes=LAYER_SIZES):
    """Multiply-adds of one sample's forward matrix products: 109,184 for the default sizes."""
    return sum(a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))


def train_flops_per_sample(layer_sizes=LAYER_SIZES):
    """FLOP of one training sample: forward, weight gradients, and input gradients of
    every layer but the first (see the module docstring): 6m - 2*784*128 = 454,400."""
    return 6 * multiply_adds(layer_sizes) - 2 * layer_sizes[0] * layer_sizes[1]


def inference_flops_per_sample(layer_sizes=LAYER_SIZES):
    """FLOP of one forward pass: 2m = 218,368."""
    return 2 * multiply_adds(layer_sizes)


# --------------------------------------------------------------------------- threads


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def prepare_threads(threads):
    """Before numba is imported: let it start ``threads`` workers (it refuses more later)."""
    if "numba" not in sys.modules:
        os.environ["NUMBA_NUM_THREADS"] = str(max(threads, os.cpu_count() or 1))


@contextlib.contextmanager
def thread_limits(threads):
    """Hold every BLAS and OpenMP pool, and numba's, at ``threads``; yields ``reapply()``.

    threadpoolctl changes the pools loaded so far; one loaded later (numba's OpenMP
    runtime is loaded when a kernel first runs) reads ``OMP_NUM_THREADS`` when it loads,
    which is set here too, and ``reapply()`` after each contender's warm-up covers the
    rest. PyTorch's pool is set by its contender (``torch.set_num_threads``). On exit,
    the environment and the limits are restored (the tests run this in-process).
    """
    saved = {v: os.environ.get(v) for v in THREAD_VARIABLES}
    os.environ.update({v: str(threads) for v in THREAD_VARIABLES})
    limits, numba_threads = [], []

    def reapply():
        limits.append(threadpool_limits(limits=threads))
        if "numba" in sys.modules:
            import numba

            if not numba_threads:
                numba_threads.append(numba.get_num_threads())
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))

    reapply()
    try:
        yield reapply
    finally:
        for limit in reversed(limits):
            limit.restore_original_limits()
        if numba_threads:
            sys.modules["numba"].set_num_threads(numba_threads[0])
        for v, value in saved.items():
            if value is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = value


def thread_report():
    """Each thread pool as (library, API, threads): the stated numbers, as the libraries see them."""
    pools = [{"library": p.get("internal_api"), "api": p.get("user_api"), "threads": p.get("num_threads"),
              "path": os.path.basename(p.get("filepath", ""))} for p in threadpool_info()]
    if "numba" in sys.modules:
        import numba

        pools.append({"library": "numba", "api": numba.config.THREADING_LAYER, "threads": numba.get_num_threads(),
                      "path": ""})
    return pools


# --------------------------------------------------------------------------- peak


def gemm_peak(n=2048, repeats=5, seed=0):
    """The machine's single-precision matmul rate in GFLOP/s: best of ``repeats``.

    ``C = A @ B`` with A, B of shape (n, n) float32 costs 2 n^3 FLOP; run it under
    :func:`thread_limits` to state the thread count.
    """
    rng = np.random.default_rng(seed)
    A = rng.random((n, n), dtype=np.float32)
    B = rng.random((n, n), dtype=np.float32)
    C = np.empty((n, n), dtype=np.float32)
    np.matmul(A, B, out=C)  # warm-up: threads started, pages touched
    best = min(_timed(np.matmul, A, B, out=C) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- contenders


class BackendContender:
    """A digitbench backend, trained through ``train_batches`` as the trainer does."""

    kind = "digitbench"
    version = None  # the peers state their library's version

    def __init__(self, backend):
        self.backend = backend
        self.name = backend.name
        self.slow = backend.name == "naive"

    def prepare(self, data, batch_size, seed=0):
        """Keep the data; compile (``warmup()``, then one tiny call of each operation)."""
        self.images, self.labels = data.train_images, np.ascontiguousarray(data.train_labels, dtype=np.int64)
        self.test = scale_pixels(data.test_images, np.float32)
        self.params = init_params(seed, np.float32)
        self.velocity = zeros_like_params(self.params)
        self.batch_size = batch_size
        self.backend.warmup()
        self.train(np.arange(2, dtype=np.int64))
        self.predict(self.test[:2])

    def train(self, order):
        """SGD over the rows ``order`` in batches, in the trainer's chunks (a quarter epoch)."""
        steps = math.ceil(len(order) / self.batch_size)
        quarter = math.ceil(math.ceil(TRAIN_SAMPLES / self.batch_size) / 4)
        for first, last in chunk_bounds(steps, range(quarter, steps, quarter), self.backend.steps_per_call):
            run_chunk(self.backend, self.params, self.velocity, self.images, self.labels, order, first, last,
                      self.batch_size, np.full(last - first, LR), MOMENTUM)

    def predict(self, X):
        return self.backend.predict(self.params, X)


def measure(contender, data, *, batch_size, repeats, quick, seed=0):
    """Time one prepared contender; returns a JSON-able dict (times in seconds).

    Training runs over a fresh seeded permutation each repeat; with fewer samples than
    an epoch, ``epoch_seconds`` is extrapolated (and says so).
    """
    rng = np.random.default_rng(seed)
    n_train = TRAIN_SAMPLES if not quick else QUICK_TRAIN_SAMPLES
    n_infer = len(data.test_images)
    if contender.slow:
        n_train = min(n_train, NAIVE_BATCHES * batch_size if not quick else batch_size)
        n_infer = min(n_infer, NAIVE_INFER_SAMPLES if not quick else 20)
    n_train = min(n_train, len(data.train_images))
    train_times = []
    for _ in range(repeats):
        order = rng.permutation(len(data.train_images))[:n_train].astype(np.int64)
        train_times.append(_timed(contender.train, order))
    X = contender.test[:n_infer]
    infer_times = [_timed(contender.predict, X) for _ in range(repeats)]
    latencies = _latencies(contender, contender.test[:1])
    train_rate = n_train / min(train_times)
    return {
        "name": contender.name,
        "kind": contender.kind,
        "train_samples_timed": n_train,
        "train_seconds": train_times,
        "train_samples_per_s": train_rate,
        "epoch_seconds": TRAIN_SAMPLES / train_rate,
        "epoch_extrapolated": n_train < TRAIN_SAMPLES,
        "infer_samples_timed": n_infer,
        "infer_seconds": infer_times,
        "infer_samples_per_s": n_infer / min(infer_times),
        "latency_s": statistics.median(latencies),
        "latency_calls": len(latencies),
    }


def _latencies(contender, x, budget=0.3, max_calls=200):
    """Times of single-image predictions: up to ``max_calls`` or ``budget`` seconds."""
    times = []
    start = time.perf_counter()
    while len(times) < max_calls and (len(times) < 3 or time.perf_counter() - start < budget):
        times.append(_timed(contender.predict, x))
    return times


def add_derived(record, peak_gflops, reference=None):
    """Add achieved GFLOP/s, share of the GEMM peak and ratios to ``reference`` (a record)."""
    gflops = train_flops_per_sample() * record["train_samples_per_s"] / 1e9
    record["train_gflops"] = gflops
    record["share_of_peak"] = gflops / peak_gflops if peak_gflops else None
    record["floor_epoch_seconds"] = train_flops_per_sample() * TRAIN_SAMPLES / 1e9 / peak_gflops
    if reference is not None:
        record["train_vs_pytorch"] = record["train_samples_per_s"] / reference["train_samples_per_s"]
        record["infer_vs_pytorch"] = record["infer_samples_per_s"] / reference["infer_samples_per_s"]
        record["latency_vs_pytorch"] = record["latency_s"] / reference["latency_s"]
    return record


#: Issue 3's speed targets: (contender, what, threshold). Ratios are to PyTorch's
#: training throughput at the same batch size and threads.
TARGETS = (
    ("numba", "train_vs_pytorch", 3.5),
    ("numpy", "train_vs_pytorch", 1.5),
    ("numba", "epoch_seconds", 0.25),
)


def check_targets(records):
    """One dict per target: measured value (or None) and whether it is met."""
    by_name = {r["name"]: r for r in records}
    out = []
    for name, key, threshold in TARGETS:
        value = by_name.get(name, {}).get(key)
        met = None if value is None else (value <= threshold if key == "epoch_seconds" else value >= threshold)
        out.append({"contender": name, "metric": key, "threshold": threshold, "value": value, "met": met})
    return out


# --------------------------------------------------------------------------- the report


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
            format_ratio(r["train_vs_pytorch"]) if with_ratios else "-",
            _number(100 * r["share_of_peak"]),
            f"{r['infer_samples_per_s']:,.0f}{istar}",
            _duration(r["latency_s"]),
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    lines = ["  ".join(str(x).rjust(w) if i else str(x).ljust(w) for i, (x, w) in enumerate(zip(row, widths)))
             for row in [head] + rows]
    lines.insert(1, "-" * len(lines[0]))
    gflop = train_flops_per_sample() * TRAIN_SAMPLES / 1e9
    lines.append(f"an epoch is {gflop:.2f} GFLOP ({train_flops_per_sample():,} per sample): {gflop / peak:.3f} s "
                 f"at the GEMM peak of {peak:.1f} GFLOP/s; '% of peak' is that floor over the epoch time")
    if any(r["epoch_extrapolated"] or r["infer_samples_timed"] < 10_000 for r in records):
        lines.append("* extrapolated from fewer samples than an epoch (or than the test set): "
                     "the naive backend always, every contender with --quick")
    return "\n".join(lines)


def format_targets(targets, with_peers):
    lines = ["speed targets (the project's goals):"]
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


def format_ratio(x):
    return f"{x:.2f}" if x >= 0.1 else _number(x)


def _duration(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{1e3 * seconds:.2f} ms"
    return f"{1e6 * seconds:.0f} us"
