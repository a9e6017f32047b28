"""The CNN (``digitbench.networks.CNN``): each layer's forward and backward, a training
step, and the time to 99% of its fixed-length recipe.

Layers are timed through the backend's layer ops (``digitbench.kernels.layer_ops``),
each on its own input as the network's forward pass makes it from the first training
images (built in ``setup`` with the NumPy ops), and the backward on a seeded gradient
of the layer's output shape: ``<kind>_forward(x, W, b)`` / ``<kind>_backward(dy, x, W)``
for conv and dense layers, ``<kind>_forward(x)`` / ``<kind>_backward(dy, x)`` for ReLU
and pooling (flatten is a reshape, not timed). The training step goes through
``train_batches`` as the MLP's does. The naive backend's convolutions are pure Python
loops: never timed here. Commits without the CNN are skipped.
"""

import numpy as np

from .common import (FAST, PROFILES, THREADS, TRAINABLE, epoch_order, hold_threads, mnist, run_steps, train_arrays,
                     zeros_like)
from .common_cnn import cnn_backend_or_skip, cnn_batch, cnn_network, cnn_params, each_backend, skip_if_cached
from .recipes import RECIPES, train

#: The CNN's layers that compute (flatten, a reshape, is left out), by their declared names.
LAYERS = ("conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "dense3", "relu3", "dense4")
LAYER_BATCH_SIZES = (64,) if FAST else (1, 64)
#: Epochs of the time-to-99% recipe in the fast profile (2 in the full one).
CNN_EPOCHS_FAST = 1


class _CnnLayer:
    """Setup shared by the per-layer benchmarks: the layer, its input, its ops, compiled."""

    params = (PROFILES, TRAINABLE, LAYERS, LAYER_BATCH_SIZES)
    param_names = ("profile", "backend", "layer", "batch_size")
    timeout = 600

    def setup(self, profile, backend, layer, batch_size):
        from digitbench.kernels.layer_ops import THREADED, get_ops
        from digitbench.kernels.layer_pass import forward_cache

        network = cnn_network()
        cnn_backend_or_skip(backend)  # compiled, threads held
        self.ops = get_ops(backend, THREADS) if backend in THREADED else get_ops(backend)
        index = [spec.name for spec in network.layers].index(layer)
        self.layer = network.layers[index]
        weights = dict(zip(network.param_shapes, cnn_params()))
        self.weights = [weights[p] for p in self.layer.params]
        self.options = dict(self.layer.options)
        X, _ = cnn_batch(batch_size)
        self.x = forward_cache(network, cnn_params(), X, "numpy")[index]
        shape = (batch_size, *self.layer.out_shape)
        self.dy = np.random.default_rng(0).standard_normal(shape).astype(self.x.dtype)
        self.forward_op = getattr(self.ops, f"{self.layer.kind}_forward")
        self.backward_op = getattr(self.ops, f"{self.layer.kind}_backward")
        self.forward()  # compiled for these shapes here, never timed
        self.backward()
        hold_threads(THREADS)

    def forward(self):
        return self.forward_op(self.x, *self.weights, **self.options)

    def backward(self):
        if self.weights:
            return self.backward_op(self.dy, self.x, self.weights[0], **self.options)
        return self.backward_op(self.dy, self.x)


class CnnLayerForward(_CnnLayer):
    """One CNN layer's forward pass on ``batch_size`` images."""

    def time_cnn_layer_forward(self, profile, backend, layer, batch_size):
        self.forward()


class CnnLayerBackward(_CnnLayer):
    """One CNN layer's backward pass (input gradient, and weight and bias gradients where it has them)."""

    def time_cnn_layer_backward(self, profile, backend, layer, batch_size):
        self.backward()


class CnnTrainStep:
    """One SGD step of the CNN on 64 samples, through ``train_batches`` (momentum 0.9)."""

    params = (PROFILES, TRAINABLE)
    param_names = ("profile", "backend")
    timeout = 600

    def setup(self, profile, backend):
        self.backend = cnn_backend_or_skip(backend)
        self.weights = cnn_params()
        self.velocity = zeros_like(self.weights)
        self.images, self.labels = train_arrays()
        self.order = epoch_order()[:64]

    def time_cnn_train_step(self, profile, backend):
        run_steps(self.backend, self.weights, self.velocity, self.images, self.labels, self.order, 64, 1)


class CnnFixedRecipe:
    """Time to 99%: ``RECIPES["cnn-fast"]`` (fixed length) trained to its end from
    ``init_params(CNN, 0)``, once per backend in ``setup_cache`` (1 epoch in the fast
    profile): its training seconds (the time to 99% when its accuracy reaches 99%) and
    its test error, evaluated once at the end. Needs the real MNIST files."""

    params = (PROFILES, TRAINABLE)
    param_names = ("profile", "backend")

    def setup_cache(self):
        def train_one(name):
            data = mnist()
            if data is None:
                raise NotImplementedError("the real MNIST files were not found (set DIGITBENCH_DATA)")
            return train(cnn_backend_or_skip(name), data, RECIPES["cnn-fast"],
                         epochs=CNN_EPOCHS_FAST if FAST else None, initial=cnn_params())

        return each_backend(train_one)

    setup_cache.timeout = 7200

    def setup(self, cache, profile, backend):
        skip_if_cached(cache, backend)

    def track_cnn_fixed_recipe_train_seconds(self, cache, profile, backend):
        return cache[backend]["train_seconds"]

    track_cnn_fixed_recipe_train_seconds.unit = "seconds"

    def track_cnn_fixed_recipe_test_error(self, cache, profile, backend):
        """Misclassified test images in percent after the whole recipe (99% accuracy: 1.00)."""
        return round(100 * (1 - cache[backend]["test_accuracy"]), 2)

    track_cnn_fixed_recipe_test_error.unit = "%"
