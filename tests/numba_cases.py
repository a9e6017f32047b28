"""A small numba training and inference case, run in this process or in a fresh one.

The fresh process is how the tests change what numba reads only at start-up
(``NUMBA_NUM_THREADS=3``, ``NUMBA_DISABLE_JIT=1``)::

    python tests/numba_cases.py OUT.npz --dtype float64 --threads 3

writes the arrays of :func:`run_case` to OUT.npz.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def mnist_like(n, seed):
    """n uint8 images with ~80% black pixels (like MNIST) and labels 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(1, 256, size=(n, 784)).astype(np.uint8)
    images[rng.random((n, 784)) < 0.8] = 0
    return images, rng.integers(0, 10, size=n).astype(np.int64)


def digests_on_threads(module, function, *args):
    """{threads: ``module.function(threads, *args)``} for 1, 2 and 3 threads: in this process
    for the counts numba started with, in a fresh one (``NUMBA_NUM_THREADS=3``) for the
    others, since numba cannot raise its thread count later. ``module`` is a test module
    of this folder; the function returns a string without spaces (a digest)."""
    import importlib

    import numba

    here = Path(__file__).resolve().parent
    counts = range(1, min(numba.config.NUMBA_NUM_THREADS, 3) + 1)
    found = {t: getattr(importlib.import_module(module), function)(t, *args) for t in counts}
    missing = [t for t in (2, 3) if t not in found]
    if missing:
        code = (f"import sys, numpy; sys.path.insert(0, {str(here)!r}); from {module} import {function}; "
                f"print(*({function}(t, *{args!r}) for t in {missing}))")
        env = dict(os.environ, NUMBA_NUM_THREADS="3")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr
        found.update(zip(missing, proc.stdout.split()))
    return found


def run_case(dtype="float64", threads=None, images=24, batch=8, steps=3, infer_rows=40, center=False):
    """Train ``steps`` SGD steps with momentum on numba, on ``threads`` threads (pinned:
    no thread choice), as on centred inputs if ``center``, then predict; return the
    arrays as a dict.

    ``infer_rows`` >= 32 takes the parallel sparse forward path
    (numba_infer.PARALLEL_MIN_ROWS); ``p_dense`` comes from the BLAS one (256 rows).
    """
    import numba

    from digitbench import init_params
    from digitbench.kernels.numba_backend import NumbaBackend
    from digitbench.params import Params, zeros_like_params
    from digitbench.pixels import mean_image
    from digitbench.threads import RunThreads, blas_single_thread, numba_threads

    threads = threads or numba.get_num_threads()
    with numba_threads(threads), blas_single_thread():
        backend = NumbaBackend()
        run = RunThreads(backend, adaptive=False)  # every step on `threads` threads
        x, y = mnist_like(images, seed=7)
        params = init_params(1, np.dtype(dtype).type)
        velocity = zeros_like_params(params)
        order = np.random.default_rng(3).permutation(images).astype(np.int64)
        order = np.tile(order, -(-steps * batch // images))[:steps * batch]
        lrs = np.linspace(0.1, 0.02, steps)
        mean = mean_image(x, params.W1.dtype) if center else None
        losses = run.train_batches(params, velocity, x, y, order, batch, lrs, 0.9, mean=mean)
        X = mnist_like(infer_rows, seed=8)[0].astype(dtype) / 255
        p = backend.forward(params, X, threads=threads)
        labels = backend.predict(params, X, threads=threads)
        X_dense = mnist_like(256, seed=9)[0].astype(dtype) / 255  # numba_infer.DENSE_MIN_ROWS rows: BLAS
        p_dense = backend.forward(params, X_dense, threads=threads)
        running = numba.get_num_threads()
    out = {"losses": losses, "p": p, "labels": labels, "p_dense": p_dense, "threads": np.array(running)}
    out.update({f"param_{k}": a for k, a in zip(Params._fields, params)})
    out.update({f"velocity_{k}": a for k, a in zip(Params._fields, velocity)})
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--infer-rows", type=int, default=40)
    parser.add_argument("--center", action="store_true")
    args = parser.parse_args()
    np.savez(args.out, **run_case(args.dtype, args.threads, images=args.images, batch=args.batch, steps=args.steps,
                                  infer_rows=args.infer_rows, center=args.center))


if __name__ == "__main__":
    main()
