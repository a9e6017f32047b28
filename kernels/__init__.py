"""The three implementations of the network, installed as ``digitbench.kernels``.

=========  ======================  ==============================================
name       module                  what it is
=========  ======================  ==============================================
naive      ``naive.py``            plain Python loops: the readable reference
numpy      ``numpy_backend.py``    vectorized NumPy: the idiomatic baseline
numba      ``numba_backend.py``    Numba-jitted kernels: the fast one
=========  ======================  ==============================================

The convolutional network's layer ops (``conv2d``, ``maxpool`` and the dense layers'
forward and backward) live beside them in ``conv_naive.py``, ``conv_numpy.py`` and
``conv_numba.py``, under the same names in each; ``layer_ops.get_ops(name)`` returns
one backend's set, and :mod:`digitbench.networks` runs a declared network through it.

Each backend module defines a subclass of :class:`digitbench.kernels.base.Backend`. They are
imported lazily by :func:`digitbench.get_backend`, so that ``import digitbench`` does
not pay for Numba's start-up.
"""
