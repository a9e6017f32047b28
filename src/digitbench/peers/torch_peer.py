"""PyTorch, eager and ``torch.compile`` (inductor), training digitbench's networks.

The module is built from the network's declaration (:mod:`digitbench.networks`), one
torch layer per declared layer: for the MLP
``nn.Sequential(Linear(784, 128), ReLU, Linear(128, 64), ReLU, Linear(64, 10))``, for
the CNN ``Conv2d(1, 16, 5, padding=2), ReLU, MaxPool2d(2), Conv2d(16, 32, 5, padding=2),
ReLU, MaxPool2d(2), Flatten, Linear(1568, 128), ReLU, Linear(128, 10)``. The weights are
digitbench's ``init_params``: convolution weights as they are (PyTorch's own layout,
(out, in, kh, kw)), dense weights transposed (``Linear.weight`` is (out, in)). With
``nn.CrossEntropyLoss`` (softmax and mean cross-entropy in one) and ``torch.optim.SGD``
with heavy-ball momentum (``v <- mu v + g; w <- w - lr v``, dampening 0: digitbench's
update). Each batch is gathered from the uint8 images and scaled to float32 inside the
timed loop, as digitbench does. Threads: ``torch.set_num_threads``.

``torch.compile`` compiles the model (the usual idiom: the optimizer step stays eager)
with the default inductor backend, on the first call of each new shape; that time is
reported apart (start-up and the first call). If compiling fails on this machine (no
C++ compiler, for example), :meth:`prepare` raises and the table shows the reason.
"""

import numpy as np

from ..bench import step_rates
from ..networks import MLP, init_params
from ..pixels import scale_pixels
from ..recipe import THROUGHPUT


def torch_layers(nn, network):
    """One torch module per declared layer of ``network``, in order (a list)."""
    made = []
    for layer in network.layers:
        if layer.kind == "conv2d":
            out, channels, size, _ = network.param_shapes[layer.params[0]]  # (out, in, kh, kw)
            made.append(nn.Conv2d(channels, out, size, padding=dict(layer.options)["padding"]))
        elif layer.kind == "linear":
            made.append(nn.Linear(layer.in_shape[0], layer.out_shape[0]))
        else:
            made.append({"relu": nn.ReLU, "maxpool": lambda: nn.MaxPool2d(2), "flatten": nn.Flatten}[layer.kind]())
    return made


def torch_weight(W):
    """A digitbench weight in torch's layout: a convolution's (out, in, kh, kw) as it is,
    a dense (in, out) transposed to ``Linear.weight``'s (out, in); a C-contiguous copy."""
    return np.ascontiguousarray(W if W.ndim == 4 else W.T)


class TorchContender:
    """PyTorch on the CPU; ``compiled=True`` wraps the model in ``torch.compile``.

    ``network`` is a declared :class:`~digitbench.networks.Network` (default the MLP);
    ``dtype`` the weights' and inputs' (float32 in ``bench``; the tests use float64).
    """

    kind = "peer"
    library = "torch"
    slow = False

    def __init__(self, threads, compiled=False, network=MLP, dtype=np.float32):
        import torch

        torch.set_num_threads(threads)
        self.network, self.dtype, self.float_type = network, np.dtype(dtype), getattr(torch, np.dtype(dtype).name)
        self.torch = torch
        self.compiled = compiled
        self.name = "torch.compile" if compiled else "pytorch"
        self.version = torch.__version__
        self.threads_note = f"torch.set_num_threads({threads})"

    def prepare(self, data, batch_size, seed=0):
        """Build the model from ``init_params(seed)``, keep the data, run each shape once."""
        torch, nn = self.torch, self.torch.nn
        self.module = nn.Sequential(*torch_layers(nn, self.network)).to(self.float_type)
        self.with_params = [m for m in self.module if isinstance(m, (nn.Conv2d, nn.Linear))]
        self.model = torch.compile(self.module) if self.compiled else self.module
        self.loss_fn = nn.CrossEntropyLoss()
        self.images = torch.from_numpy(np.array(data.train_images, dtype=np.uint8))  # a writable copy
        self.labels = torch.from_numpy(np.asarray(data.train_labels, dtype=np.int64))
        self.test = scale_pixels(data.test_images, self.dtype)
        self.batch_size = batch_size
        self.reset(seed)
        self.train(np.arange(2 * batch_size, dtype=np.int64) % len(data.train_images))  # compile, allocator
        self.predict(self.test[:1])
        self.reset(seed)

    def reset(self, seed, mean=None):
        """Weights ``init_params(network, seed)`` (:func:`torch_weight`); momentum zero;
        with ``mean`` (784,), the inputs are centred (``x - mean``) from now on."""
        params = init_params(self.network, seed, self.dtype)
        torch = self.torch
        self.mean = mean
        self.shift = None if mean is None else torch.from_numpy(np.asarray(mean, dtype=self.dtype))
        with torch.no_grad():
            for layer, W, b in zip(self.with_params, params[0::2], params[1::2]):
                layer.weight.copy_(torch.from_numpy(torch_weight(W)))
                layer.bias.copy_(torch.from_numpy(b))
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=THROUGHPUT.lr, momentum=THROUGHPUT.momentum)

    def train(self, order, lrs=None):
        """One SGD step per batch of the rows ``order``, at the rates ``lrs`` (default the recipe's lr)."""
        rates = step_rates(order, self.batch_size, lrs)
        order = self.torch.from_numpy(np.asarray(order, dtype=np.int64))
        group = self.optimizer.param_groups[0]
        for step, first in enumerate(range(0, len(order), self.batch_size)):
            rows = order[first:first + self.batch_size]
            X = self.images[rows].to(self.float_type).div_(255)
            if self.shift is not None:
                X.sub_(self.shift)
            X = X.reshape(len(rows), *self.network.input_shape)
            group["lr"] = float(rates[step])
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(X), self.labels[rows])
            loss.backward()
            self.optimizer.step()

    def weights(self):
        """The current weights as NumPy arrays in digitbench's layout, a ``network.params_type``
        (the MLP's :class:`~digitbench.params.Params`: W1 of shape (784, 128), ...)."""
        arrays = []
        for layer in self.with_params:
            arrays += [torch_weight(layer.weight.detach().numpy()), layer.bias.detach().numpy().copy()]
        return self.network.params_type(*arrays)

    def predict(self, X, chunk=2000):
        """Labels of the scaled images ``X`` (n, 784), in chunks of ``chunk``."""
        out = np.empty(len(X), dtype=np.int64)
        if self.mean is not None:
            X = X - self.mean
        with self.torch.inference_mode():
            for start in range(0, len(X), chunk):
                rows = self.torch.from_numpy(X[start:start + chunk])
                logits = self.model(rows.reshape(len(rows), *self.network.input_shape))
                out[start:start + chunk] = logits.argmax(dim=1).numpy()
        return out
