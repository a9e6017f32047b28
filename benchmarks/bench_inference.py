"""Inference: predicted labels for the 10,000 test images, and for the first 100."""

from .common import ALL_BACKENDS, backend_or_skip, params, test_set


class PredictTestSet:
    """``backend.predict(params, X)`` over the whole test set (not for the naive backend)."""

    params = ALL_BACKENDS
    param_names = ("backend",)

    def setup(self, backend):
        self.backend = backend_or_skip(backend)
        self.params = params()
        self.X, _ = test_set()

    def time_predict_test_set(self, backend):
        self.backend.predict(self.params, self.X)


class PredictHundred:
    """``backend.predict`` over the first 100 test images: every backend, naive included."""

    params = ALL_BACKENDS
    param_names = ("backend",)

    def setup(self, backend):
        self.backend = backend_or_skip(backend, batch_size=1)
        self.params = params()
        self.X = test_set()[0][:100].copy()

    def time_predict_100(self, backend):
        self.backend.predict(self.params, self.X)
