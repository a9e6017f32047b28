"""Forward pass and backward pass of one batch, per backend and batch size."""

from .common import ALL_BACKENDS, FAST, backend_or_skip, batch, params

BATCH_SIZES = (1, 64) if FAST else (1, 16, 64, 256, 1024)


class Forward:
    """``backend.forward(params, X)`` on the first ``batch_size`` training images."""

    params = (ALL_BACKENDS, BATCH_SIZES)
    param_names = ("backend", "batch_size")

    def setup(self, backend, batch_size):
        self.backend = backend_or_skip(backend, batch_size)  # compiles here, never timed
        self.params = params()
        self.X, self.y = batch(batch_size)

    def time_forward(self, backend, batch_size):
        self.backend.forward(self.params, self.X)


class LossAndGrads:
    """``backend.loss_and_grads(params, X, y)``: forward, loss and backward of one batch."""

    params = (ALL_BACKENDS, BATCH_SIZES)
    param_names = ("backend", "batch_size")

    def setup(self, backend, batch_size):
        self.backend = backend_or_skip(backend, batch_size)
        self.params = params()
        self.X, self.y = batch(batch_size)

    def time_loss_and_grads(self, backend, batch_size):
        self.backend.loss_and_grads(self.params, self.X, self.y)
