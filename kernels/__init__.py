"""The three implementations of the network, installed as ``digitbench.kernels``.

=========  ======================  ==============================================
name       module                  what it is
=========  ======================  ==============================================
naive      ``naive.py``            plain Python loops: the readable reference
numpy      ``numpy_backend.py``    vectorized NumPy: the idiomatic baseline
numba      ``numba_backend.py``    Numba-jitted kernels: the fast one
=========  ======================  ==============================================

Each module defines a subclass of :class:`digitbench.kernels.base.Backend`. They are
imported lazily by :func:`digitbench.get_backend`, so that ``import digitbench`` does
not pay for Numba's start-up.
"""
