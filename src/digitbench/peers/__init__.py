"""The same networks trained by other libraries, for ``digitbench bench --peers``.

All are the optional ``compare`` extra (``pip install -e '.[compare]'``), pinned so that
comparisons are reproducible: torch 2.13.0 (CPU build), jax 0.10.2 (with jaxlib
0.10.2), scikit-learn 1.9.1. Each peer trains the 784-128-64-10 ReLU network (or, with
``--network cnn``, the two-layer CNN of :mod:`digitbench.networks`) from digitbench's
He initialisation, with softmax cross-entropy, SGD with heavy-ball
momentum 0.9, one learning rate per step, float32, the batch size and the number of
threads digitbench runs with:

=================  ============================================  =====================
name               what                                          module
=================  ============================================  =====================
``pytorch``        PyTorch eager                                 :mod:`.torch_peer`
``torch.compile``  PyTorch, model compiled by inductor           :mod:`.torch_peer`
``jax-step``       JAX, jitted train step in a Python loop       :mod:`.jax_peer`
``jax-scan``       JAX, each pass in one jitted ``lax.scan``     :mod:`.jax_peer`
``scikit-learn``   ``MLPClassifier``, ``partial_fit``            :mod:`.sklearn_peer`
=================  ============================================  =====================

scikit-learn has no convolutions: it is a peer of the MLP only. A peer is a :class:`digitbench.kernels.base.Contender`, as digitbench's own backends
are in ``digitbench bench``.
"""

import importlib.util

from ..errors import UsageError
from ..networks import MLP
from .jax_peer import JaxContender
from .sklearn_peer import SklearnContender
from .torch_peer import TorchContender

PEERS = ("pytorch", "torch.compile", "jax-step", "jax-scan", "scikit-learn")
#: The ``compare`` extra: (module, pip requirement), as pyproject.toml pins them.
REQUIREMENTS = (("torch", "torch==2.13.0"), ("jax", "jax==0.10.2"), ("jaxlib", "jaxlib==0.10.2"),
                ("sklearn", "scikit-learn==1.9.1"))


def missing_peers():
    """Pip requirements of the ``compare`` extra whose module cannot be imported."""
    return [pip for module, pip in REQUIREMENTS if importlib.util.find_spec(module) is None]


def make_peers(threads, network=MLP):
    """Every peer of ``network`` (a declared Network; scikit-learn for the MLP only), its
    library imported now (before the thread pools are limited).

    Raises
    ------
    UsageError, in one line, when the ``compare`` extra is not installed.
    """
    missing = missing_peers()
    if missing:
        raise UsageError(f"--peers needs the 'compare' extra, which is not installed (missing {', '.join(missing)}); "
                         f"run: python -m pip install -e '.[compare]'")
    peers = [TorchContender(threads, network=network), TorchContender(threads, compiled=True, network=network),
             JaxContender(threads, network=network), JaxContender(threads, scan=True, network=network)]
    return peers + [SklearnContender(threads)] if network is MLP else peers
