"""JAX, two ways: a jitted train step called from a Python loop, and the whole pass in one
jitted ``lax.scan`` over the batches (the idiom JAX users write for speed).

The network is run from its declaration (:mod:`digitbench.networks`), one ``jax.lax``
or ``jax.numpy`` call per declared layer (:func:`layer_forward`): for the MLP

.. math::

    a_1 = \\mathrm{relu}(X W_1 + b_1),\\; a_2 = \\mathrm{relu}(a_1 W_2 + b_2),\\;
    z_3 = a_2 W_3 + b_3,\\; L = \\tfrac1n \\sum_i \\big(\\log\\textstyle\\sum_k e^{z_{ik}} - z_{i y_i}\\big)

and for the CNN ``lax.conv_general_dilated`` (NCHW images, OIHW weights: digitbench's
layout as it is), ``lax.reduce_window`` (2x2 max pool), a reshape in (channel, row,
column) order, and the same dense layers and loss. ``jax.grad`` gives the gradients;
heavy-ball momentum: ``v <- mu v + g; w <- w - lr v``. The batch is gathered from the uint8 images and scaled
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
from ..networks import MLP, init_params
from ..pixels import scale_pixels
from ..recipe import THROUGHPUT


def xla_thread_flags(threads):
    """The XLA flags that hold its CPU client to ``threads`` threads."""
    return f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}"


class JaxContender:
    """JAX on the CPU; ``scan=True`` runs each pass in one jitted ``lax.scan``.

    ``network`` is a declared :class:`~digitbench.networks.Network` (default the MLP).
    Always float32 (float64 would need ``jax_enable_x64``, a process-wide switch).
    """

    kind = "peer"
    library = "jax"
    slow = False

    def __init__(self, threads, scan=False, network=MLP):
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
        self.network = network
        self._step, self._epoch, self._predict = _compiled_functions(jax, network)

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
        """Weights ``init_params(network, seed)``, momentum zero; with ``mean`` (784,), the inputs
        are centred (``x - mean``) from now on (otherwise the shift is 0)."""
        jnp = self.jax.numpy
        self.mean = mean
        self.shift = jnp.asarray(np.zeros(784, np.float32) if mean is None else np.asarray(mean, np.float32))
        self.params = tuple(jnp.asarray(a) for a in init_params(self.network, seed, np.float32))
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
        """The current weights as NumPy arrays, a ``network.params_type`` (the MLP's
        :class:`~digitbench.params.Params`: W1 of shape (784, 128), ...)."""
        return self.network.params_type(*(np.asarray(a) for a in self.params))

    def predict(self, X, chunk=2000):
        """Labels of the scaled images ``X`` (n, 784), float32, in chunks of ``chunk``."""
        out = np.empty(len(X), dtype=np.int64)
        if self.mean is not None:
            X = X - self.mean
        for start in range(0, len(X), chunk):
            out[start:start + chunk] = np.asarray(self._predict(self.params, X[start:start + chunk]))
        return out


def layer_forward(jax, layer, x, *params):
    """One declared layer's output for the batch ``x`` (n, *layer.in_shape), in JAX."""
    if layer.kind == "conv2d":  # z[n, o] = sum_c x[n, c] (*) W[o, c] + b[o], zero padding p
        W, b = params
        p = dict(layer.options)["padding"]
        z = jax.lax.conv_general_dilated(x, W, (1, 1), [(p, p), (p, p)], dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return z + b[None, :, None, None]
    if layer.kind == "linear":  # z = x W + b, W (in, out)
        W, b = params
        return x @ W + b
    if layer.kind == "maxpool":  # the largest of each 2x2 window, stride 2
        return jax.lax.reduce_window(x, -jax.numpy.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    if layer.kind == "flatten":  # (n, C, H, W) -> (n, C*H*W), (channel, row, column) order
        return x.reshape(len(x), -1)
    return jax.nn.relu(x)


def _compiled_functions(jax, network):
    """The jitted step, scanned pass and prediction of ``network``; built once per process."""
    if network.name in _CACHE:
        return _CACHE[network.name]
    jnp = jax.numpy
    where = {name: k for k, name in enumerate(network.param_shapes)}

    def logits(params, X):
        x = X.reshape(len(X), *network.input_shape)
        for layer in network.layers:
            x = layer_forward(jax, layer, x, *(params[where[p]] for p in layer.params))
        return x

    def loss(params, X, y):
        z = logits(params, X)
        # mean cross-entropy of softmax(z): logsumexp(z) - z[y]
        return jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.take_along_axis(z, y[:, None], axis=1)[:, 0])

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

    _CACHE[network.name] = (jax.jit(step), jax.jit(epoch), jax.jit(predict))
    return _CACHE[network.name]


_CACHE = {}
