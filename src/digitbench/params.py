"""The network's parameters: shapes, He initialisation, and the count 109,386.

The network is fixed (row-major, one sample per row)::

    X  (n, 784)   pixels scaled to [0, 1]
    z1 = X  @ W1 + b1    W1 (784, 128)  b1 (128,)   a1 = relu(z1)   (n, 128)
    z2 = a1 @ W2 + b2    W2 (128, 64)   b2 (64,)    a2 = relu(z2)   (n, 64)
    z3 = a2 @ W3 + b3    W3 (64, 10)    b3 (10,)    p  = softmax(z3) (n, 10)

784*128 + 128 + 128*64 + 64 + 64*10 + 10 = 109,386 parameters.
"""

from typing import NamedTuple

import numpy as np

#: Units per layer, input first.
LAYER_SIZES = (784, 128, 64, 10)


class Params(NamedTuple):
    """The six parameter arrays; gradients use the same type and shapes."""

    W1: np.ndarray  # (784, 128)
    b1: np.ndarray  # (128,)
    W2: np.ndarray  # (128, 64)
    b2: np.ndarray  # (64,)
    W3: np.ndarray  # (64, 10)
    b3: np.ndarray  # (10,)


def param_shapes(layer_sizes=LAYER_SIZES):
    """Return the shape of each field of :class:`Params`, in order."""
    shapes = []
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        shapes += [(fan_in, fan_out), (fan_out,)]
    return tuple(shapes)


PARAM_SHAPES = param_shapes()
N_PARAMS = sum(int(np.prod(s)) for s in PARAM_SHAPES)  # 109,386, checked by the tests


def init_params(seed=0, dtype=np.float32):
    """He-initialised parameters.

    Each weight is drawn from N(0, 2 / fan_in), which keeps the variance of the
    activations roughly constant through ReLU layers (He et al., 2015); biases start
    at zero. The generator is ``numpy.random.default_rng(seed)``, so the same seed
    gives the same parameters on every machine.

    Parameters
    ----------
    seed : int
    dtype : numpy float dtype, float32 (training default) or float64

    Returns
    -------
    Params with W1 (784, 128), b1 (128,), W2 (128, 64), b2 (64,), W3 (64, 10), b3 (10,)
    """
    rng = np.random.default_rng(seed)
    arrays = []
    for shape in PARAM_SHAPES:
        if len(shape) == 2:
            std = np.sqrt(2.0 / shape[0])
            arrays.append((rng.standard_normal(shape) * std).astype(dtype))
        else:
            arrays.append(np.zeros(shape, dtype=dtype))
    return Params(*arrays)


def zeros_like_params(params):
    """Zero arrays with the shapes and dtype of ``params``, of its type (a Params, or any
    network's parameters, such as :class:`~digitbench.networks.CnnParams`)."""
    return type(params)(*(np.zeros_like(a) for a in params))


def copy_params(params, dtype=None):
    """A deep copy of ``params``, C-contiguous, optionally cast to ``dtype``."""
    return Params(*(np.array(a, dtype=dtype or a.dtype, order="C", copy=True) for a in params))
