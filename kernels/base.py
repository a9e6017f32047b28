"""The interface every backend implements, and the parts they share.

Shapes (row-major, one sample per row; ``n`` is the batch size)::

    X   (n, 784)  pixels in [0, 1]          y   (n,)  integer labels 0..9
    W1  (784, 128)   b1 (128,)   z1, a1 (n, 128)   a1 = relu(z1),  z1 = X  @ W1 + b1
    W2  (128, 64)    b2 (64,)    z2, a2 (n, 64)    a2 = relu(z2),  z2 = a1 @ W2 + b2
    W3  (64, 10)     b3 (10,)    z3, p  (n, 10)    p = softmax(z3), z3 = a2 @ W3 + b3
    loss = mean over the batch of -log p[i, y[i]]

Gradients come back as a ``Params`` of the same shapes (``dW1, db1, ...``). The
backends use these very names, so that they can be read side by side.

Training runs through :meth:`Backend.train_batches`: plain mini-batch SGD with
optional heavy-ball momentum (PyTorch's convention)::

    v <- momentum * v + g          (v is the velocity, one array per parameter)
    w <- w - lr * v                (with momentum = 0 this is w <- w - lr * g)

A backend may override it to keep the whole loop in compiled code.
"""

import numpy as np
from threadpoolctl import ThreadpoolController

from digitbench.params import Params
from digitbench.pixels import scale_pixels

_controller = None


def blas_single_thread():
    """A context in which the BLAS libraries (NumPy's, and SciPy's, which ``np.dot``
    calls inside numba kernels) run on one thread; restored on exit.

    The products of a batch of 64 are small (64 x 784 @ 784 x 128 at most): a second
    BLAS thread gains little on them and loses more in waking and waiting (measured
    on the NumPy backend: an epoch in 0.35 s on one thread, 0.45 s on two).
    """
    global _controller
    if _controller is None:
        import scipy.linalg.cython_blas  # noqa: F401  (load SciPy's BLAS so that it is seen)

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


class Backend:
    """Base class: ``forward`` and ``loss_and_grads`` are what a backend must write."""

    #: Name in the registry ("naive", "numpy", "numba").
    name = "base"
    #: Whether the same inputs always give bit-identical results.
    deterministic = True

    def forward(self, params, X):
        """Probabilities of shape (n, 10) for ``X`` of shape (n, 784)."""
        raise NotImplementedError

    def loss_and_grads(self, params, X, y):
        """(mean cross-entropy as a float, gradients as Params) for one batch."""
        raise NotImplementedError

    def predict(self, params, X, chunk=2000):
        """Predicted labels (n,) as int64, computed ``chunk`` rows at a time."""
        out = np.empty(len(X), dtype=np.int64)
        for start in range(0, len(X), chunk):
            out[start:start + chunk] = np.argmax(self.forward(params, X[start:start + chunk]), axis=1)
        return out

    def train_batches(self, params, velocity, images, labels, order, batch_size, lrs, momentum=0.0):
        """Run ``len(lrs)`` SGD steps in place; return the loss of each, as float64.

        Parameters
        ----------
        params : Params, updated in place
        velocity : Params of the same shapes, updated in place (unused when momentum = 0)
        images : ndarray of shape (N, 784), uint8 pixels, scaled here to params' dtype
        labels : ndarray of shape (N,), integer labels
        order : ndarray of shape (m,), int64 row indices; step k uses
            ``order[k * batch_size:(k + 1) * batch_size]`` (the last batch may be short)
        batch_size : int
        lrs : ndarray of shape (steps,), float64, the learning rate of each step
        momentum : float in [0, 1)
        """
        dtype = params.W1.dtype
        losses = np.empty(len(lrs))
        for k, lr in enumerate(lrs):
            rows = order[k * batch_size:(k + 1) * batch_size]
            X = scale_pixels(images[rows], dtype)
            loss, grads = self.loss_and_grads(params, X, labels[rows])
            losses[k] = loss
            for w, v, g in zip(params, velocity, grads):
                if momentum:
                    v *= momentum
                    v += g
                    g = v
                w -= dtype.type(lr) * g
        return losses

    def __repr__(self):
        return f"<digitbench backend {self.name!r}>"
