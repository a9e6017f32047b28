"""scikit-learn's ``MLPClassifier`` training digitbench's network.

``MLPClassifier(hidden_layer_sizes=(128, 64), activation="relu", solver="sgd",
nesterovs_momentum=False, alpha=0)``: softmax, mean cross-entropy, no weight decay.
Its weights are replaced by ``init_params(seed)`` (it would start from Glorot's), its
momentum buffers zeroed. Threads: its BLAS, through threadpoolctl.

Each :meth:`train` call is one ``partial_fit`` over the rows in the given order
(``shuffle=False``), on float32 pixels scaled beforehand (it takes no uint8 batches).
Two differences from the other contenders, both stated in :data:`RECIPE_NOTE`:
``partial_fit`` takes one learning rate per call, so a schedule is followed per call
(the mean of that call's rates; the time-to-target runs call it 20 times an epoch),
and its momentum form ``v <- mu v - lr g; w <- w + v`` equals heavy ball only while
the rate is constant.
"""

import numpy as np

from ..bench import step_rates
from ..params import Params, init_params
from ..pixels import scale_pixels
from ..recipe import THROUGHPUT

RECIPE_NOTE = "learning rate constant within each partial_fit call (the mean of its steps' rates)"


class SklearnContender:
    kind = "peer"
    library = "scikit-learn"
    name = "scikit-learn"
    slow = False
    recipe_note = RECIPE_NOTE
    mean = None  # the centring of the inputs (reset), none until then

    def __init__(self, threads):
        import sklearn
        from sklearn.neural_network import MLPClassifier

        self.MLPClassifier = MLPClassifier
        self.version = sklearn.__version__
        self.threads_note = f"BLAS held at {threads} by threadpoolctl"

    def prepare(self, data, batch_size, seed=0):
        """Scale the pixels once, build the model (one tiny ``partial_fit``), reset it."""
        self.X = scale_pixels(data.train_images, np.float32)
        self.y = np.asarray(data.train_labels, dtype=np.int64)
        self.test = scale_pixels(data.test_images, np.float32)
        self.batch_size = batch_size
        self.model = self.MLPClassifier(hidden_layer_sizes=(128, 64), activation="relu", solver="sgd",
                                        batch_size=batch_size, learning_rate_init=THROUGHPUT.lr,
                                        momentum=THROUGHPUT.momentum,
                                        nesterovs_momentum=False, alpha=0.0, shuffle=False,
                                        random_state=seed, max_iter=1)
        rows = np.arange(2 * batch_size) % len(self.X)
        self.model.partial_fit(self.X[rows], self.y[rows], classes=np.arange(10))  # allocates the weights
        self.predict(self.test[:1])
        self.reset(seed)

    def reset(self, seed, mean=None):
        """Weights ``init_params(seed)`` (float32, as the data), momentum buffers zero;
        with ``mean`` (784,), the inputs are centred (``x - mean``) from now on."""
        params = init_params(seed, np.float32)
        self.mean = mean
        self.X_fit = self.X if mean is None else self.X - mean
        self.model.coefs_ = [W.copy() for W in params[0::2]]
        self.model.intercepts_ = [b.copy() for b in params[1::2]]
        optimizer = self.model._optimizer  # private, but the version is pinned (1.9.1)
        optimizer.velocities = [np.zeros_like(p) for p in self.model.coefs_ + self.model.intercepts_]

    def train(self, order, lrs=None):
        """One ``partial_fit`` over the rows ``order`` in batches, at the mean of ``lrs``."""
        rates = step_rates(order, self.batch_size, lrs)
        self.model._optimizer.learning_rate = float(np.mean(rates))
        self.model.partial_fit(self.X_fit[order], self.y[order])

    def weights(self):
        """The current weights, :class:`Params` (W1 of shape (784, 128), ...)."""
        m = self.model
        return Params(m.coefs_[0], m.intercepts_[0], m.coefs_[1], m.intercepts_[1], m.coefs_[2], m.intercepts_[2])

    def predict(self, X):
        return self.model.predict(X if self.mean is None else X - self.mean)
