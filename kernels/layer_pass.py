"""Any declared network on any backend, layer by layer, and the backend that trains it.

:func:`forward` and :func:`loss_and_grads` run a network declared in
:mod:`digitbench.networks` through a backend's ops, looked up by name
(:func:`~.layer_ops.get_ops`): ``<kind>_forward`` on the way up, ``<kind>_backward`` on
the way down; ``flatten`` is a reshape, the same on every backend. Shapes are checked
at every layer. :class:`LayeredBackend` puts them behind the :class:`~.base.Backend`
interface, so that the trainer, ``evaluate``, ``predict`` and ``bench`` run the CNN as
they run the MLP.
"""

import time

import numpy as np

from digitbench.networks import batch_input, check_input, check_params, init_params
from digitbench.pixels import scale_pixels

from .base import Backend, sgd_update
from .layer_ops import THREADED, get_ops


def as_ops(ops):
    """The ops of a backend named by ``ops``, or ``ops`` itself if it is already those."""
    return get_ops(ops) if isinstance(ops, str) else ops
def forward_cache(network, params, X, ops="numpy"):
    """Every layer's input, and the logits last: a list of len(layers) + 1 arrays.

    Layer ``l`` runs ``ops.<kind>_forward(x, *its params, **its options)``.
    """
    ops = as_ops(ops)
    check_params(network, params)
    values = dict(zip(network.param_shapes, params))
    xs = [batch_input(network, params, X)]
    for layer in network.layers:
        x = xs[-1]
        check_input(network, layer, x)
        if layer.kind == "flatten":  # (n, C, H, W) -> (n, C*H*W), (channel, row, column) order
            xs.append(x.reshape(len(x), -1))
            continue
        forward_op = getattr(ops, f"{layer.kind}_forward")
        xs.append(forward_op(x, *(values[p] for p in layer.params), **dict(layer.options)))
    return xs


def forward(network, params, X, ops="numpy"):
    """Class probabilities (n, 10) of ``network`` for the batch X on the backend ``ops``.

    Parameters
    ----------
    network : Network
    params : network.params_type
    X : ndarray of shape (n, *network.input_shape), or (n, 784) flat rows; in [0, 1]
    ops : str, a backend name, or the namespace of :func:`~.kernels.layer_ops.get_ops`
    """
    ops = as_ops(ops)
    return ops.softmax_forward(forward_cache(network, params, X, ops)[-1])


def loss(network, params, X, y, ops="numpy"):
    """The mean cross-entropy over the batch, forward only (for finite differences)."""
    ops = as_ops(ops)
    return ops.softmax_cross_entropy(forward_cache(network, params, X, ops)[-1], y)[0]


def loss_and_grads(network, params, X, y, ops="numpy"):
    """Mean cross-entropy over the batch and its gradient for every parameter.

    Backward from the loss: dL/dlogits = (P - Y) / n; then, layer by layer from the
    last, ``ops.<kind>_backward(dy, x, W, **options) -> (dx, dW, db)`` for a layer with
    parameters (its input x, its weight W), ``ops.<kind>_backward(dy, x) -> dx``
    otherwise; flatten's backward is the reshape back.

    Returns
    -------
    (loss as a float, gradients as ``network.params_type``, each the shape of its parameter)
    """
    ops = as_ops(ops)
    xs = forward_cache(network, params, X, ops)
    mean_loss, dy = ops.softmax_cross_entropy(xs[-1], y)
    values, grads = dict(zip(network.param_shapes, params)), {}
    for layer, x in zip(reversed(network.layers), reversed(xs[:-1])):
        if layer.kind == "flatten":
            dy = dy.reshape(x.shape)
        elif layer.params:
            backward_op = getattr(ops, f"{layer.kind}_backward")
            dy, *dparams = backward_op(dy, x, values[layer.params[0]], **dict(layer.options))
            grads.update(zip(layer.params, dparams))
        else:
            dy = getattr(ops, f"{layer.kind}_backward")(dy, x)
    return mean_loss, network.params_type(**grads)


class LayeredBackend(Backend):
    """The backend ``name`` ("naive", "numpy" or "numba") running ``network`` layer by layer.

    Training is plain mini-batch SGD with momentum over the network's parameters, the
    gradients from :func:`loss_and_grads`; inputs are the uint8 rows (N, 784) of the data
    set, reshaped to the network's input. Centred inputs are the MLP's alone.
    """

    def __init__(self, name, network):
        self.name, self.network = name, network
        self.parallel = name in THREADED
        self.steps_per_call = 1 if name == "naive" else None

    def ops(self, threads=1):
        return get_ops(self.name, threads) if self.parallel else get_ops(self.name)

    def warmup(self, dtypes=(np.float32,)):
        """Run one step on two images in each dtype (numba compiles, or loads, its kernels)."""
        start = time.perf_counter()
        for dtype in dtypes:
            params = init_params(self.network, 0, dtype)
            loss_and_grads(self.network, params, np.zeros((2, *self.network.input_shape), dtype),
                           np.zeros(2, np.int64), self.ops())
        return time.perf_counter() - start

    def forward(self, params, X, threads=1):
        return forward(self.network, params, X, self.ops(threads))

    def logits(self, params, X):
        return forward_cache(self.network, params, X, self.ops())[-1]

    def loss_and_grads(self, params, X, y):
        return loss_and_grads(self.network, params, X, y, self.ops())

    def train_batches(self, params, velocity, images, labels, order, batch_size, lrs, momentum=0.0, mean=None, *,
                      threads=1, workspace=None):
        """SGD steps as :meth:`Backend.train_batches` (its arguments), layer by layer."""
        if mean is not None:
            raise ValueError(f"centred inputs are for the MLP; the {self.network.name} trains on the pixels")
        ops, dtype = self.ops(threads), params[0].dtype
        losses = np.empty(len(lrs))
        for k, lr in enumerate(lrs):
            rows = order[k * batch_size:(k + 1) * batch_size]
            losses[k], grads = loss_and_grads(self.network, params, scale_pixels(images[rows], dtype), labels[rows],
                                              ops)
            for w, v, g in zip(params, velocity, grads):
                sgd_update(w, v, g, lr, momentum)
        return losses

    def __repr__(self):
        return f"<digitbench backend {self.name!r} running the {self.network.name}>"
