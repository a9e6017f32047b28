"""The registry of backends by name; each is imported only when first asked for."""

import importlib

from .errors import UsageError
from .kernels.layer_pass import LayeredBackend
from .networks import NETWORKS

#: name -> module that defines ``BACKEND``, a subclass of kernels.base.Backend
BACKENDS = {
    "naive": "digitbench.kernels.naive",
    "numpy": "digitbench.kernels.numpy_backend",
    "numba": "digitbench.kernels.numba_backend",
}
#: What ``train`` uses when no backend is named: the fastest one the project has.
DEFAULT_BACKEND = "numba"  # the fastest; its accuracy and speed: docs/results.md

_instances = {}


class UnknownBackend(UsageError, ValueError):
    """An unknown backend name; a ValueError as the public contract says."""


class UnknownNetwork(UsageError, ValueError):
    """An unknown network name."""


def get_backend(name, network="mlp"):
    """Return the backend called ``name`` ("naive", "numpy" or "numba") for ``network``.

    The MLP has each backend's own implementation (its module's ``BACKEND``); any other
    declared network runs layer by layer on the backend's ops, by the module's
    ``NETWORK_BACKENDS[network]`` if it has one for it (a faster training step), else by
    :class:`~digitbench.kernels.layer_pass.LayeredBackend`.

    Raises
    ------
    ValueError (UnknownBackend or UnknownNetwork) naming the valid ones, for any other name.
    """
    if name not in BACKENDS:
        raise UnknownBackend(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    if network not in NETWORKS:
        raise UnknownNetwork(f"unknown network {network!r}; choose one of: {', '.join(NETWORKS)}")
    if (name, network) not in _instances:
        module = importlib.import_module(BACKENDS[name])
        if network == "mlp":
            _instances[name, network] = module.BACKEND()
        else:
            backend_type = getattr(module, "NETWORK_BACKENDS", {}).get(network, LayeredBackend)
            _instances[name, network] = backend_type(name, NETWORKS[network])
    return _instances[name, network]


def network_name(backend):
    """The name of the network ``backend`` runs: its ``network``'s, else "mlp" (a backend
    module's own ``BACKEND``, and any backend written for the MLP alone)."""
    return getattr(getattr(backend, "network", None), "name", "mlp")


def backend_for(backend, network):
    """``backend`` (a name, or a backend object) as the backend that runs ``network``.

    Parameters
    ----------
    backend : str or Backend; an object that already runs ``network`` is returned as it is
    network : str, a network's name ("mlp" or "cnn")

    Returns
    -------
    Backend, :func:`get_backend` ``(name, network)`` for a name or another network's backend
    """
    if isinstance(backend, str):
        return get_backend(backend, network)
    return backend if network_name(backend) == network else get_backend(backend.name, network)
