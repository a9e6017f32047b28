"""digitbench: an MNIST classifier built from first principles, and a benchmark.

Public contract (docs/design.md in the source repository; docs/python-api.md has
more examples)::

    from digitbench import load_mnist, init_params, get_backend, load_model
    Xtr, ytr, Xte, yte = load_mnist()           # uint8 (n, 784) and labels (n,)
    params = init_params(seed=0)                # Params(W1, b1, W2, b2, W3, b3)
    backend = get_backend("numpy")              # or "naive", "numba"
    P = backend.forward(params, Xte[:5] / 255)  # (5, 10) probabilities
    loss, grads = backend.loss_and_grads(params, Xte[:64] / 255, yte[:64])
    model = load_model("model.npz")             # written by `digitbench train`
    model.predict(["digit.png", Xte[0]])        # labels of image files, PIL images, arrays

One call from a notebook::

    import digitbench
    result = digitbench.train("numpy", epochs=1)  # a backend name or object; data loaded
    result.test_accuracy, result.params            # the trained model
    digitbench.get_backend("numpy").predict(result.params, Xte)  # uint8 is scaled

``digitbench.train`` is the function; its module stays importable as
``from digitbench.train import TrainState``.
"""

from .backends import BACKENDS, get_backend
from .datasets import load_mnist, split_validation
from .errors import DigitbenchError
from .model import CLASS_NAMES, Model, load_model
from .model_io import save_model
from .params import N_PARAMS, Params, init_params
from .recipe import Recipe
from .train import train

__version__ = "0.1.0"
__all__ = ["BACKENDS", "CLASS_NAMES", "DigitbenchError", "Model", "N_PARAMS", "Params", "Recipe", "get_backend",
           "init_params", "load_mnist", "load_model", "save_model", "split_validation", "train", "__version__"]
