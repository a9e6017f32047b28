"""Inference: predicted labels for the 10,000 test images, and for the first 100."""

from .common import ALL_BACKENDS, PROFILES, backend_or_skip, params, predictor, test_set


class PredictTestSet:
    """``backend.predict(weights, X)`` over the whole test set (not for the naive backend)."""

    params = (PROFILES, ALL_BACKENDS)
    param_names = ("profile", "backend")

    def setup(self, profile, backend):
        self.backend = backend_or_skip(backend)
        self.predict = predictor(self.backend)
        self.weights = params()
        self.X, _ = test_set()

    def time_predict_test_set(self, profile, backend):
        self.predict(self.weights, self.X)


class PredictHundred:
    """``backend.predict`` over the first 100 test images: every backend, naive included."""

    params = (PROFILES, ALL_BACKENDS)
    param_names = ("profile", "backend")

    def setup(self, profile, backend):
        self.backend = backend_or_skip(backend, batch_size=1)
        self.predict = predictor(self.backend)
        self.weights = params()
        self.X = test_set()[0][:100].copy()

    def time_predict_100(self, profile, backend):
        self.predict(self.weights, self.X)
