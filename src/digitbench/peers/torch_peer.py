"""PyTorch, eager and ``torch.compile`` (inductor), training digitbench's network.

``nn.Sequential(Linear(784, 128), ReLU, Linear(128, 64), ReLU, Linear(64, 10))``, with
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
from ..params import Params, init_params
from ..pixels import scale_pixels
from ..recipe import THROUGHPUT


class TorchContender:
    """PyTorch on the CPU; ``compiled=True`` wraps the model in ``torch.compile``."""

    kind = "peer"
    library = "torch"
    slow = False

    def __init__(self, threads, compiled=False):
        import torch

        torch.set_num_threads(threads)
        self.torch = torch
        self.compiled = compiled
        self.name = "torch.compile" if compiled else "pytorch"
        self.version = torch.__version__
        self.threads_note = f"torch.set_num_threads({threads})"

    def prepare(self, data, batch_size, seed=0):
        """Build the model from ``init_params(seed)``, keep the data, run each shape once."""
        torch, nn = self.torch, self.torch.nn
        self.module = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                                    nn.Linear(64, 10))
        self.model = torch.compile(self.module) if self.compiled else self.module
        self.loss_fn = nn.CrossEntropyLoss()
        self.images = torch.from_numpy(np.array(data.train_images, dtype=np.uint8))  # a writable copy
        self.labels = torch.from_numpy(np.asarray(data.train_labels, dtype=np.int64))
        self.test = scale_pixels(data.test_images, np.float32)
        self.batch_size = batch_size
        self.reset(seed)
        self.train(np.arange(2 * batch_size, dtype=np.int64) % len(data.train_images))  # compile, allocator
        self.predict(self.test[:1])
        self.reset(seed)

    def reset(self, seed, mean=None):
        """Weights ``init_params(seed)`` (Linear keeps W.T, shape (out, in)); momentum zero;
        with ``mean`` (784,), the inputs are centred (``x - mean``) from now on."""
        params = init_params(seed, np.float32)
        torch = self.torch
        self.mean = mean
        self.shift = None if mean is None else torch.from_numpy(np.asarray(mean, dtype=np.float32))
        with torch.no_grad():
            for layer, W, b in zip(self.module[::2], params[0::2], params[1::2]):
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                layer.bias.copy_(torch.from_numpy(b))
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=THROUGHPUT.lr, momentum=THROUGHPUT.momentum)

    def train(self, order, lrs=None):
        """One SGD step per batch of the rows ``order``, at the rates ``lrs`` (default the recipe's lr)."""
        rates = step_rates(order, self.batch_size, lrs)
        order = self.torch.from_numpy(np.asarray(order, dtype=np.int64))
        group = self.optimizer.param_groups[0]
        for step, first in enumerate(range(0, len(order), self.batch_size)):
            rows = order[first:first + self.batch_size]
            X = self.images[rows].float().div_(255)
            if self.shift is not None:
                X.sub_(self.shift)
            group["lr"] = float(rates[step])
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(X), self.labels[rows])
            loss.backward()
            self.optimizer.step()

    def weights(self):
        """The current weights as NumPy arrays, :class:`Params` (W1 of shape (784, 128), ...)."""
        arrays = []
        for layer in self.module[::2]:
            arrays += [layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy().copy()]
        return Params(*arrays)

    def predict(self, X, chunk=2000):
        """Labels of the scaled images ``X`` (n, 784), float32, in chunks of ``chunk``."""
        out = np.empty(len(X), dtype=np.int64)
        if self.mean is not None:
            X = X - self.mean
        with self.torch.inference_mode():
            for start in range(0, len(X), chunk):
                logits = self.model(self.torch.from_numpy(X[start:start + chunk]))
                out[start:start + chunk] = logits.argmax(dim=1).numpy()
        return out
