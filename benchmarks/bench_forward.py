"""Forward pass and backward pass of one batch, per backend and batch size."""

from .common import ALL_BACKENDS, FAST, PROFILES, backend_or_skip, batch, params

BATCH_SIZES = (1, 64) if FAST else (1, 16, 64, 256, 1024)


class Forward:
    """``backend.forward(weights, X)`` on the first ``batch_size`` training images."""

    params = (PROFILES, ALL_BACKENDS, BATCH_SIZES)
    param_names = ("profile", "backend", "batch_size")

    def setup(self, profile, backend, batch_size):
        self.backend = backend_or_skip(backend, batch_size)  # compiles here, never timed
        self.weights = params()
        self.X, self.y = batch(batch_size)

    def time_forward(self, profile, backend, batch_size):
        self.backend.forward(self.weights, self.X)


class LossAndGrads:
    """``backend.loss_and_grads(weights, X, y)``: forward, loss and backward of one batch."""

    params = (PROFILES, ALL_BACKENDS, BATCH_SIZES)
    param_names = ("profile", "backend", "batch_size")

    def setup(self, profile, backend, batch_size):
        self.backend = backend_or_skip(backend, batch_size)
        self.weights = params()
        self.X, self.y = batch(batch_size)

    def time_loss_and_grads(self, profile, backend, batch_size):
        self.backend.loss_and_grads(self.weights, self.X, self.y)
