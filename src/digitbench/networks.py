"""The networks, declared as data: a sequence of layers, each a kind of op and its shapes.

A network is a tuple of :class:`Layer` (kind, shapes, the names of its parameters)
ending in logits, with softmax and cross-entropy on top. This module only declares
them (and draws their initial parameters); :mod:`digitbench.kernels.layer_pass` runs a
declared network on any backend by calling that backend's ops by name,
``<kind>_forward`` on the way up and ``<kind>_backward`` on the way down.

The two networks (shapes per sample; ``n`` images in a batch)::

    cnn   input (1, 28, 28)
          conv1    conv2d 5x5, padding 2   W1 (16, 1, 5, 5)   b1 (16,)   -> (16, 28, 28)
          relu1, pool1 (2x2 max)                                         -> (16, 14, 14)
          conv2    conv2d 5x5, padding 2   W2 (32, 16, 5, 5)  b2 (32,)   -> (32, 14, 14)
          relu2, pool2 (2x2 max)                                         -> (32, 7, 7)
          flatten  (channel, row, column) order, as PyTorch's Flatten     -> (1568,)
          dense3   linear                  W3 (1568, 128)     b3 (128,)  -> (128,)
          relu3
          dense4   linear                  W4 (128, 10)       b4 (10,)   -> (10,) logits
          416 + 12,832 + 200,832 + 1,290 = 215,370 parameters

    mlp   input (784,)
          dense1 W1 (784, 128) b1 (128,), relu1; dense2 W2 (128, 64) b2 (64,), relu2;
          dense3 W3 (64, 10) b3 (10,): 109,386 parameters (digitbench.params)

Layouts: convolution weights are PyTorch's, (out channels, in channels, kernel rows,
kernel columns), so ``torch.nn.Conv2d(1, 16, 5, padding=2).weight`` has W1's shape;
dense weights are row-major (in, out), as the MLP's W1 (784, 128): ``z = a @ W + b``,
the transpose of ``torch.nn.Linear.weight``. The k-th layer with parameters owns
``Wk`` and ``bk``.
"""

from typing import NamedTuple

import numpy as np

from .params import Params


class Layer(NamedTuple):
    """One layer: ``kind`` names its ops, shapes are per sample (no batch axis)."""

    name: str  # "conv1", "relu1", "pool1", "flatten", "dense3", ...
    kind: str  # "conv2d", "relu", "maxpool", "flatten" or "linear"
    in_shape: tuple
    out_shape: tuple
    params: tuple = ()  # names of its parameters, weight first: ("W1", "b1")
    options: tuple = ()  # keyword arguments of its ops, as (name, value) pairs


class Network(NamedTuple):
    """A declared network: layers in order, and the type that holds its parameters."""

    name: str
    input_shape: tuple  # one sample's, e.g. (1, 28, 28)
    layers: tuple  # of Layer, the last one giving the logits
    params_type: type  # a NamedTuple whose fields are the parameter names, in order
    param_shapes: dict  # parameter name -> shape


class CnnParams(NamedTuple):
    """The CNN's eight parameter arrays; gradients use the same type and shapes."""

    W1: np.ndarray  # (16, 1, 5, 5)   conv1, PyTorch's layout (out, in, kh, kw)
    b1: np.ndarray  # (16,)
    W2: np.ndarray  # (32, 16, 5, 5)  conv2
    b2: np.ndarray  # (32,)
    W3: np.ndarray  # (1568, 128)     dense3, row-major (in, out)
    b3: np.ndarray  # (128,)
    W4: np.ndarray  # (128, 10)       dense4
    b4: np.ndarray  # (10,)


def declare(name, input_shape, spec, params_type):
    """Build a :class:`Network` from a compact spec, working out every shape.

    ``spec`` items: ``("conv2d", out_channels, kernel, padding)``, ``("linear", out)``,
    ``("relu",)``, ``("maxpool",)``, ``("flatten",)``. Layers with parameters are
    numbered 1, 2, ... and own ``Wk, bk``; a relu or pool takes the number of the layer
    before it.
    """
    shape, layers, shapes, k = tuple(input_shape), [], {}, 0
    for kind, *args in spec:
        params, options = (), ()
        if kind == "conv2d":
            k += 1
            out, size, padding = args
            params, options = (f"W{k}", f"b{k}"), (("padding", padding),)
            shapes.update({params[0]: (out, shape[0], size, size), params[1]: (out,)})
            out_shape = (out, shape[1] + 2 * padding - size + 1, shape[2] + 2 * padding - size + 1)
            label = f"conv{k}"
        elif kind == "linear":
            k += 1
            params = (f"W{k}", f"b{k}")
            shapes.update({params[0]: (shape[0], args[0]), params[1]: (args[0],)})
            out_shape, label = (args[0],), f"dense{k}"
        elif kind == "maxpool":
            out_shape, label = (shape[0], shape[1] // 2, shape[2] // 2), f"pool{k}"
        elif kind == "flatten":
            out_shape, label = (int(np.prod(shape)),), "flatten"
        else:  # relu
            out_shape, label = shape, f"relu{k}"
        layers.append(Layer(label, kind, shape, out_shape, params, options))
        shape = out_shape
    if tuple(shapes) != params_type._fields:
        raise ValueError(f"{name}: parameters {tuple(shapes)} do not match {params_type.__name__}")
    return Network(name, tuple(input_shape), tuple(layers), params_type, shapes)


CNN = declare("cnn", (1, 28, 28), [
    ("conv2d", 16, 5, 2), ("relu",), ("maxpool",),
    ("conv2d", 32, 5, 2), ("relu",), ("maxpool",),
    ("flatten",), ("linear", 128), ("relu",), ("linear", 10),
], CnnParams)
MLP = declare("mlp", (784,), [("linear", 128), ("relu",), ("linear", 64), ("relu",), ("linear", 10)], Params)
#: The networks by name.
NETWORKS = {"mlp": MLP, "cnn": CNN}


def get_network(name):
    """The declared network called ``name``; ValueError naming the valid ones otherwise."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose one of: {', '.join(NETWORKS)}")
    return NETWORKS[name]


def network_of(params):
    """The declared network whose parameters ``params`` are (by their type): MLP for a
    :class:`~digitbench.params.Params`, CNN for a :class:`CnnParams`."""
    for network in NETWORKS.values():
        if isinstance(params, network.params_type):
            return network
    raise ValueError(f"parameters of type {type(params).__name__} belong to no declared network")


def n_params(network):
    """The number of parameters: 215,370 for the CNN, 109,386 for the MLP."""
    return sum(int(np.prod(s)) for s in network.param_shapes.values())


def init_params(network, seed=0, dtype=np.float32):
    """He-initialised parameters of ``network``, a ``network.params_type``.

    Each weight is drawn from N(0, 2 / fan_in), fan_in the inputs of one output unit:
    in_channels * kh * kw for a convolution (as PyTorch's ``kaiming_normal_``), the
    rows of W for a dense layer; biases start at zero. The draws come from
    ``numpy.random.default_rng(seed)`` in the order of the parameters, so the MLP's are
    exactly :func:`digitbench.params.init_params`'s.
    """
    rng = np.random.default_rng(seed)
    arrays = []
    for shape in network.param_shapes.values():
        if len(shape) == 1:
            arrays.append(np.zeros(shape, dtype=dtype))
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
            arrays.append((rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype))
    return network.params_type(*arrays)


def check_params(network, params):
    """ValueError naming the parameter and its layer if a shape is not the declared one."""
    if len(params) != len(network.param_shapes):
        raise ValueError(f"{network.name}: {len(params)} parameter arrays, expected {len(network.param_shapes)}")
    owner = {p: layer.name for layer in network.layers for p in layer.params}
    for (name, shape), array in zip(network.param_shapes.items(), params):
        if np.shape(array) != shape:
            raise ValueError(f"{network.name} layer {owner[name]}: {name} of shape {np.shape(array)}, expected {shape}")


def batch_input(network, params, X):
    """X as the first layer expects it, in the parameters' dtype: (n, *input_shape).

    Rows of flat pixels (n, 784) are accepted for the CNN too, and reshaped to
    (n, 1, 28, 28).
    """
    X = np.asarray(X, dtype=params[0].dtype)
    size = int(np.prod(network.input_shape))
    if X.ndim == 2 and X.shape[1] == size and len(network.input_shape) > 1:
        X = X.reshape(len(X), *network.input_shape)
    return X


def check_input(network, layer, x):
    """ValueError naming the layer if the batch ``x`` does not have its input's shape."""
    if x.shape[1:] != layer.in_shape:
        expected = ", ".join(str(d) for d in ("n", *layer.in_shape))
        raise ValueError(f"{network.name} layer {layer.name} ({layer.kind}): input of shape {x.shape}, "
                         f"expected ({expected})")
