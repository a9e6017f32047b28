"""The same network trained by PyTorch and by scikit-learn, for ``digitbench bench --peers``.

Both are the optional ``compare`` extra (``pip install -e '.[compare]'``: torch 2.13.0,
CPU build, and scikit-learn 1.9.1, pinned so that comparisons are reproducible). Each
peer trains the 784-128-64-10 ReLU network with SGD, momentum 0.9 (heavy ball, as
digitbench), learning rate 0.01, cross-entropy, the same batch size and the same
number of threads as the digitbench backends:

- ``pytorch``: eager mode on the CPU, ``nn.Sequential(Linear, ReLU, Linear, ReLU,
  Linear)``, ``torch.optim.SGD``, ``nn.CrossEntropyLoss``; each batch is gathered from
  the uint8 images and scaled to float32 inside the timed loop, as digitbench does.
  Threads: ``torch.set_num_threads``.
- ``scikit-learn``: ``MLPClassifier(hidden_layer_sizes=(128, 64), solver="sgd",
  nesterovs_momentum=False, alpha=0)``; one ``partial_fit`` is one epoch over the
  samples given (it shuffles them itself), on float32 pixels scaled beforehand (it
  takes no uint8 batches). Threads: its BLAS, through threadpoolctl.
"""

import importlib.util

import numpy as np

from .bench import LR, MOMENTUM
from .errors import UsageError
from .pixels import scale_pixels

PEERS = ("pytorch", "scikit-learn")


def missing_peers():
    """Names of the pip packages of the ``compare`` extra that cannot be imported."""
    return [pip for module, pip in (("torch", "torch==2.13.0"), ("sklearn", "scikit-learn==1.9.1"))
            if importlib.util.find_spec(module) is None]


def make_peers(threads, seed=0):
    """The peer contenders, imported now (before the thread pools are limited).

    Raises
    ------
    UsageError, in one line, when the ``compare`` extra is not installed.
    """
    missing = missing_peers()
    if missing:
        raise UsageError(f"--peers needs the 'compare' extra, which is not installed (missing {', '.join(missing)}); "
                         f"run: python -m pip install -e '.[compare]'")
    return [TorchContender(threads, seed), SklearnContender(seed)]


class TorchContender:
    kind = "peer"
    name = "pytorch"
    slow = False

    def __init__(self, threads, seed=0):
        import torch

        torch.set_num_threads(threads)
        self.torch = torch
        self.seed = seed
        self.version = torch.__version__

    def prepare(self, data, batch_size, seed=0):
        torch, nn = self.torch, self.torch.nn
        torch.manual_seed(self.seed)
        self.model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.loss_fn = nn.CrossEntropyLoss()
        self.images = torch.from_numpy(np.array(data.train_images, dtype=np.uint8))  # a writable copy
        self.labels = torch.from_numpy(np.asarray(data.train_labels, dtype=np.int64))
        self.test = scale_pixels(data.test_images, np.float32)
        self.batch_size = batch_size
        self.train(np.arange(2 * batch_size, dtype=np.int64))  # warm-up: allocator, kernels chosen
        self.predict(self.test[:2])

    def train(self, order):
        order = self.torch.from_numpy(order)
        for first in range(0, len(order), self.batch_size):
            rows = order[first:first + self.batch_size]
            X = self.images[rows].float().div_(255)
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(X), self.labels[rows])
            loss.backward()
            self.optimizer.step()

    def predict(self, X, chunk=2000):
        out = np.empty(len(X), dtype=np.int64)
        with self.torch.inference_mode():
            for start in range(0, len(X), chunk):
                logits = self.model(self.torch.from_numpy(X[start:start + chunk]))
                out[start:start + chunk] = logits.argmax(dim=1).numpy()
        return out


class SklearnContender:
    kind = "peer"
    name = "scikit-learn"
    slow = False

    def __init__(self, seed=0):
        import sklearn
        from sklearn.neural_network import MLPClassifier

        self.MLPClassifier = MLPClassifier
        self.seed = seed
        self.version = sklearn.__version__

    def prepare(self, data, batch_size, seed=0):
        self.X = scale_pixels(data.train_images, np.float32)
        self.y = np.asarray(data.train_labels, dtype=np.int64)
        self.test = scale_pixels(data.test_images, np.float32)
        self.batch_size = batch_size
        self.model = self.MLPClassifier(hidden_layer_sizes=(128, 64), activation="relu", solver="sgd",
                                        batch_size=batch_size, learning_rate_init=LR, momentum=MOMENTUM,
                                        nesterovs_momentum=False, alpha=0.0, shuffle=True,
                                        random_state=self.seed, max_iter=1)
        rows = np.arange(2 * batch_size)
        self.model.partial_fit(self.X[rows], self.y[rows], classes=np.arange(10))  # allocates the weights
        self.predict(self.test[:2])

    def train(self, order):
        # partial_fit shuffles the samples itself (shuffle=True): give it the first len(order) rows.
        n = len(order)
        self.model.partial_fit(self.X[:n], self.y[:n])

    def predict(self, X):
        return self.model.predict(X)

