"""JAX, two ways: a jitted train step called from a Python loop, and the whole pass in one
jitted ``lax.scan`` over the batches (the idiom JAX users write for speed).

The network and the update are written out here, as digitbench's NumPy backend does:

.. math::

    a_1 = \\mathrm{relu}(X W_1 + b_1),\\; a_2 = \\mathrm{relu}(a_1 W_2 + b_2),\\;
    z_3 = a_2 W_3 + b_3,\\; L = \\tfrac1n \\sum_i \\big(\\log\\textstyle\\sum_k e^{z_{ik}} - z_{i y_i}\\big)

and ``jax.value_and_grad`` gives the gradients; heavy-ball momentum:
``v <- mu v + g; w <- w - lr v``. The batch is gathered from the uint8 images and scaled
inside the jitted function (``images[rows] / 255``, minus the mean image for a centred
recipe).

Threads: XLA reads ``XLA_FLAGS`` once, when jax is imported, so the flags
``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=N`` are set before
the (lazy) import. If jax was imported earlier in the process, its thread count cannot
change any more, and ``threads_note`` says so.

Shapes: jit compiles once per shape; the scan's length is part of its shape, so a pass
of a new number of batches compiles again (reported apart: start-up and first call).
A pass whose last batch is short runs that batch through the step function.
"""

import os
import sys

import numpy as np

from ..bench import step_rates
from ..params import Params, init_params
from ..pixels import scale_pixels
from ..recipe import THROUGHPUT


def xla_thread_flags(threads):
    """The XLA flags that hold its CPU client to ``threads`` threads."""
    return f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}"


class JaxContender:
    """JAX on the CPU; ``scan=True`` runs each pass in one jitted ``lax.scan``."""

    kind = "peer"
    library = "jax"
    slow = False

    def __init__(self, threads, scan=False):
        flags = xla_thread_flags(threads)
        if "jax" not in sys.modules:
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
        if flags in os.environ.get("XLA_FLAGS", ""):
            self.threads_note = f"XLA_FLAGS={flags}"
        else:  # XLA read its flags at the import, before this contender
            self.threads_note = f"jax imported earlier, with XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
        import jax

        self.jax = jax
        self.scan = scan
        self.name = "jax-scan" if scan else "jax-step"
        self.version = jax.__version__
        self._step, self._epoch, self._predict = _compiled_functions(jax)

    def prepare(self, data, batch_size, seed=0):
        """Keep the data on the device, compile the step (and a short scan) and the forward."""
        jnp = self.jax.numpy
        self.images = jnp.asarray(data.train_images, dtype=jnp.uint8)
        self.labels = jnp.asarray(np.asarray(data.train_labels, dtype=np.int32))
        self.test = scale_pixels(data.test_images, np.float32)
        self.batch_size = batch_size
        self.reset(seed)
        self.train(np.arange(2 * batch_size, dtype=np.int64) % len(data.train_images))
        self.predict(self.test[:1])
        self.reset(seed)

    def reset(self, seed, mean=None):
        """Weights ``init_params(seed)``, momentum zero; with ``mean`` (784,), the inputs
        are centred (``x - mean``) from now on (otherwise the shift is 0)."""
        jnp = self.jax.numpy
        self.mean = mean
        self.shift = jnp.asarray(np.zeros(784, np.float32) if mean is None else np.asarray(mean, np.float32))
        self.params = tuple(jnp.asarray(a) for a in init_params(seed, np.float32))
        self.velocity = tuple(jnp.zeros_like(a) for a in self.params)

    def train(self, order, lrs=None):
        """SGD over the rows ``order`` in batches at the rates ``lrs``; waits for the result."""
        b = self.batch_size
        rates = step_rates(order, b, lrs).astype(np.float32)
        order = np.asarray(order, dtype=np.int32)
        full = len(order) // b
        first = 0
        if self.scan and full:
            self.params, self.velocity = self._epoch(self.params, self.velocity, self.images, self.labels,
                                                     order[:full * b].reshape(full, b), rates[:full], self.shift)
            first = full
        for step in range(first, len(rates)):
            self.params, self.velocity = self._step(self.params, self.velocity, self.images, self.labels,
                                                    order[step * b:(step + 1) * b], rates[step], self.shift)
        self.jax.block_until_ready(self.params)

    def weights(self):
        """The current weights as NumPy arrays, :class:`Params` (W1 of shape (784, 128), ...)."""
        return Params(*(np.asarray(a) for a in self.params))

    def predict(self, X, chunk=2000):
        """Labels of the scaled images ``X`` (n, 784), float32, in chunks of ``chunk``."""
        out = np.empty(len(X), dtype=np.int64)
        if self.mean is not None:
            X = X - self.mean
        for start in range(0, len(X), chunk):
            out[start:start + chunk] = np.asarray(self._predict(self.params, X[start:start + chunk]))
        return out


def _compiled_functions(jax):
    """The jitted step, scanned pass and prediction; built once per process."""
    if _CACHE:
        return _CACHE
    jnp = jax.numpy

    def logits(params, X):
        W1, b1, W2, b2, W3, b3 = params
        a1 = jax.nn.relu(X @ W1 + b1)
        a2 = jax.nn.relu(a1 @ W2 + b2)
        return a2 @ W3 + b3

    def loss(params, X, y):
        z3 = logits(params, X)
        # mean cross-entropy of softmax(z3): logsumexp(z) - z[y]
        return jnp.mean(jax.nn.logsumexp(z3, axis=1) - jnp.take_along_axis(z3, y[:, None], axis=1)[:, 0])

    grad = jax.grad(loss)

    def step(params, velocity, images, labels, rows, lr, shift):
        X = images[rows].astype(jnp.float32) / 255.0 - shift  # shift: 0, or the mean image (centred)
        g = grad(params, X, labels[rows])
        velocity = tuple(THROUGHPUT.momentum * v + gi for v, gi in zip(velocity, g))  # v <- mu v + g
        params = tuple(w - lr * v for w, v in zip(params, velocity))  # w <- w - lr v
        return params, velocity

    def epoch(params, velocity, images, labels, rows2d, lrs, shift):
        def body(carry, batch):
            rows, lr = batch
            return step(*carry, images, labels, rows, lr, shift), None

        (params, velocity), _ = jax.lax.scan(body, (params, velocity), (rows2d, lrs))
        return params, velocity

    def predict(params, X):
        return jnp.argmax(logits(params, X), axis=1)

    _CACHE.extend([jax.jit(step), jax.jit(epoch), jax.jit(predict)])
    return _CACHE


_CACHE = []
