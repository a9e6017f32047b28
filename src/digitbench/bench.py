"""What ``digitbench bench`` measures, and how: throughput, latency, and the FLOP floor.

Every contender (each digitbench backend, and with ``--peers`` PyTorch eager and
compiled, JAX step and scan, scikit-learn: :mod:`digitbench.peers`) is measured in the
same process, with the same batch size and the same, explicitly set number of threads,
on the same data:

- start-up: imports, building the model, compiling (numba, XLA, inductor) the shapes of
  a tiny warm-up; then the first call of the timed pass, whose excess over the steady
  time is what compiling the pass's own shapes cost ("first call"). Never in the
  throughput figures;
- training throughput: samples per second of SGD with momentum 0.9 over a seeded
  permutation of the training set (a whole epoch, or fewer samples, extrapolated, when
  ``--quick`` or for the naive backend); the median of ``repeats`` (at least 5 by
  default), interleaved across contenders (A B C A B C ...), with their spread;
- inference throughput: predicted labels for the 10,000 test images (fewer for the
  naive backend, extrapolated); the median of ``repeats``, interleaved likewise;
- latency: the median time to classify one image.

A contender is a :class:`digitbench.kernels.base.Contender` (digitbench's backends
through :class:`BackendContender`, the peers in :mod:`digitbench.peers`).

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

The CNN's (``--network cnn``) count the same way, a convolution's multiply-adds being
``out * H * W * in * 5 * 5`` per sample (:func:`layer_multiply_adds`)::

    conv1 313,600   conv2 2,508,800   dense3 200,704   dense4 1,280   m = 3,024,384
    total 6m - 2 * 313,600 = 17,519,104 FLOP per sample, 1,051 GFLOP an epoch

(pooling and ReLU add well under 1%).

Work done. A backend that skips zero pixels (numba's sparse first layer: MNIST is about
81% zeros) does less than that: per sample with ``nnz`` non-zero pixels, layer 1's
forward and its weight gradient cost ``nnz * 128`` multiply-adds each, the dense
layers ``3 * (128*64 + 64*10)``::

    executed FLOP per sample = 2 * (2 * 128 * nnz + 3 * 8,832)

counted from the pixels of the samples actually timed. Its share of the GEMM peak is
that work over the time, beside the dense-equivalent figure (which can pass 100% for
a sparse backend, being work not done).
"""

import math
import os
import platform
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info

from .kernels.base import center_start
from .networks import MLP, init_params
from .params import LAYER_SIZES, zeros_like_params
from .pixels import scale_pixels
from .recipe import THROUGHPUT
from .sgd import chunk_bounds, run_chunk
from .stats import bootstrap_ratio
from .threads import RunThreads, inference_threads

TRAIN_SAMPLES = 60_000
QUICK_TRAIN_SAMPLES = 4_096
#: The naive backend runs pure Python loops: it is timed on this many batches only.
NAIVE_BATCHES = 3
NAIVE_INFER_SAMPLES = 100
#: Backends that skip the zero pixels in layer 1 (their work is counted from the data).
SPARSE_INPUT_BACKENDS = ("numba",)


# --------------------------------------------------------------------------- FLOP counts


def layer_multiply_adds(network=MLP):
    """Multiply-adds of one sample's forward pass in each layer with parameters, in order.

    A dense layer's ``in * out``; a convolution's ``out * H * W * in * kh * kw`` (every
    output value of shape (out, H, W) sums ``in * kh * kw`` products; the zero padding is
    counted, as a dense GEMM lowering computes it). The MLP: (100,352, 8,192, 640); the
    CNN: (313,600, 2,508,800, 200,704, 1,280).
    """
    counts = []
    for layer in network.layers:
        if layer.params:
            weight_shape = network.param_shapes[layer.params[0]]
            per_output = int(np.prod(weight_shape[1:])) if layer.kind == "conv2d" else weight_shape[0]
            counts.append(per_output * int(np.prod(layer.out_shape)))
    return tuple(counts)


def multiply_adds(network=MLP):
    """Multiply-adds of one sample's forward pass: 109,184 for the MLP, 3,024,384 for the CNN."""
    return sum(layer_multiply_adds(network))


def train_flops_per_sample(network=MLP):
    """FLOP of one training sample: forward, weight gradients, and input gradients of
    every layer but the first (see the module docstring): 6m - 2 m_1, 454,400 for the
    MLP, 17,519,104 for the CNN."""
    return 6 * multiply_adds(network) - 2 * layer_multiply_adds(network)[0]


def executed_train_flops(nnz, n_samples, layer_sizes=LAYER_SIZES):
    """FLOP a sparse-input backend executes for ``n_samples`` with ``nnz`` non-zero pixels
    in all: layer 1 forward and weight gradient ``nnz * 128`` multiply-adds each, the
    other layers as dense (see the module docstring)."""
    dense = sum(a * b for a, b in zip(layer_sizes[1:-1], layer_sizes[2:]))
    return 2 * (2 * layer_sizes[1] * nnz + 3 * dense * n_samples)


def inference_flops_per_sample(network=MLP):
    """FLOP of one forward pass: 2m, 218,368 for the MLP."""
    return 2 * multiply_adds(network)


# --------------------------------------------------------------------------- peak


def gemm_peak(n=2048, repeats=5, seed=0):
    """The machine's single-precision matmul rate in GFLOP/s: best of ``repeats``.

    ``C = A @ B`` with A, B of shape (n, n) float32 costs 2 n^3 FLOP; run it under
    :func:`digitbench.threads.thread_limits` to state the thread count.
    """
    rng = np.random.default_rng(seed)
    A = rng.random((n, n), dtype=np.float32)
    B = rng.random((n, n), dtype=np.float32)
    C = np.empty((n, n), dtype=np.float32)
    np.matmul(A, B, out=C)  # warm-up: threads started, pages touched
    best = min(timed(np.matmul, A, B, out=C) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def step_rates(order, batch_size, lrs=None):
    """One learning rate per step of ``order`` in batches: ``lrs``, or ``THROUGHPUT.lr`` throughout.

    Returns
    -------
    ndarray of shape (ceil(len(order) / batch_size),), float64
    """
    steps = math.ceil(len(order) / batch_size)
    rates = np.full(steps, THROUGHPUT.lr) if lrs is None else np.asarray(lrs, dtype=np.float64)
    if len(rates) != steps:
        raise ValueError(f"{len(rates)} learning rates for {steps} steps")
    return rates


def one_line(error):
    """An exception as one line: its type and the first line of its message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:200]


# --------------------------------------------------------------------------- contenders


class BackendContender:
    """A digitbench backend, trained through ``train_batches`` as the trainer does.

    It trains the backend's network (``backend.network``: the CNN's backends from
    ``get_backend(name, network="cnn")``; the MLP's otherwise), in ``dtype`` (float32 in
    ``bench``; the tests use float64).
    """

    kind = "digitbench"
    version = None  # the peers state their library's version

    def __init__(self, backend, threads=None, adaptive=True, dtype=np.float32):
        self.backend = backend
        self.network = getattr(backend, "network", MLP)
        self.dtype = np.dtype(dtype)
        self.name = backend.name
        self.slow = backend.name == "naive"
        self.sparse_input = backend.name in SPARSE_INPUT_BACKENDS and self.network is MLP
        self.threads_used = 1 if backend.name == "naive" else threads  # plain Python loops: one thread
        self.threads_note = ("" if not threads else "plain Python loops: one thread" if backend.name == "naive"
                             else f"BLAS held at {threads} by threadpoolctl" if backend.name == "numpy"
                             else f"numba on {threads} threads, BLAS held at {threads}; may choose fewer")
        # a sweep measures the thread count it states: no switching to fewer threads
        self.run = RunThreads(backend, adaptive=adaptive)
        if backend.parallel and not adaptive:
            self.threads_note += " (fixed: adaptive thread choice off)"

    @property
    def thread_choice(self):
        """The thread count in use and why (numba's is chosen by timing), or None."""
        return self.run.choice

    def prepare(self, data, batch_size, seed=0):
        """Keep the data; compile (``warmup()``, then one tiny call of each operation)."""
        self.images, self.labels = data.train_images, np.ascontiguousarray(data.train_labels, dtype=np.int64)
        self.test = scale_pixels(data.test_images, self.dtype)
        self.batch_size = batch_size
        self.reset(seed)
        self.backend.warmup()
        self.train(np.arange(2, dtype=np.int64))
        self.predict(self.test[:1])
        self.reset(seed)

    def reset(self, seed, mean=None):
        """Weights ``init_params(network, seed)``, momentum zero; with ``mean`` (784,), trained
        from now on as on centred inputs ``x - mean`` (the first bias is the centred
        network's: :func:`~digitbench.kernels.base.center_start`; the MLP only)."""
        if mean is not None and self.network is not MLP:
            raise ValueError(f"centred inputs are for the MLP; the {self.network.name} trains on the pixels")
        self.params = init_params(self.network, seed, self.dtype)
        self.mean = mean
        if mean is not None:
            self.params = center_start(self.params, mean)
        self.velocity = zeros_like_params(self.params)

    def train(self, order, lrs=None):
        """SGD over the rows ``order`` in batches, in the trainer's chunks (a quarter epoch)."""
        rates = step_rates(order, self.batch_size, lrs)
        steps = len(rates)
        quarter = math.ceil(math.ceil(TRAIN_SAMPLES / self.batch_size) / 4)
        for first, last in chunk_bounds(steps, range(quarter, steps, quarter), self.backend.steps_per_call):
            run_chunk(self.run, self.params, self.velocity, self.images, self.labels, order, first, last,
                      self.batch_size, rates[first:last], THROUGHPUT.momentum, self.mean)

    def weights(self):
        return self.params

    def predict(self, X):
        with inference_threads(self.backend) as threads:
            return self.backend.predict(self.params, X, threads=threads)


def add_derived(record, peak_gflops, reference=None, network=MLP):
    """Add achieved GFLOP/s, shares of the GEMM peak and ratios to ``reference`` (a record)
    of a contender training ``network``.

    ``share_of_peak`` is the dense-equivalent figure (every contender's same FLOP count);
    ``share_of_peak_done`` the work actually executed: for a sparse-input backend counted
    from the timed pixels (:func:`executed_train_flops`), else the dense count.
    """
    dense = train_flops_per_sample(network)
    gflops = dense * record["train_samples_per_s"] / 1e9
    record["train_gflops"] = gflops
    record["share_of_peak"] = gflops / peak_gflops if peak_gflops else None
    record["floor_epoch_seconds"] = dense * TRAIN_SAMPLES / 1e9 / peak_gflops
    if record.get("sparse_input"):
        timed = record["train_samples_timed"] * len(record["train_seconds"])
        per_sample = executed_train_flops(record["train_nonzero_pixels"], timed) / timed
    else:
        per_sample = dense
    record["executed_flops_per_sample"] = per_sample
    record["executed_gflops"] = per_sample * record["train_samples_per_s"] / 1e9
    record["share_of_peak_done"] = record["executed_gflops"] / peak_gflops if peak_gflops else None
    if reference is not None:
        for kind in ("train", "infer"):  # paired repetitions: a ratio and its 95% interval
            key = f"{kind}_samples_per_s_reps"
            if key in record and key in reference:
                ratio, interval = bootstrap_ratio(record[key], reference[key])
            else:
                ratio, interval = record[f"{kind}_samples_per_s"] / reference[f"{kind}_samples_per_s"], None
            record[f"{kind}_vs_pytorch"], record[f"{kind}_vs_pytorch_ci"] = ratio, interval
        record["latency_vs_pytorch"] = record["latency_s"] / reference["latency_s"]
    return record


# --------------------------------------------------------------------------- the machine


def machine_info(contenders=()):
    """The machine and the versions a table is measured with (JSON-able).

    ``cpu`` is lscpu's model name (``/proc/cpuinfo``), else ``platform.processor()``.
    """
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    if "numba" in sys.modules:
        versions["numba"] = sys.modules["numba"].__version__
    versions.update({c.library: c.version for c in contenders if getattr(c, "version", None)})
    return {"cpu": _cpu_model() or platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "platform": platform.platform(), "versions": versions, "blas": blas_kernels()}


def blas_kernels():
    """The BLAS libraries loaded, with the kernels each runs, e.g. "openblas 0.3.31: SkylakeX".

    OpenBLAS picks its kernels from the CPU when it loads, unless ``OPENBLAS_CORETYPE``
    names them (some machines set it, for OpenBLAS builds that fail on their CPU): then
    it may run older kernels than the CPU has, e.g. Haswell's AVX2 ones on an AVX-512
    CPU, at about half the speed. The variable is listed when set.
    """
    libraries = sorted({f"{p.get('internal_api')} {p.get('version')}: {p.get('architecture')}"
                        for p in threadpool_info() if p.get("user_api") == "blas"})
    forced = os.environ.get("OPENBLAS_CORETYPE")
    return libraries + ([f"OPENBLAS_CORETYPE={forced}"] if forced is not None else [])


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
