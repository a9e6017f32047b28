"""Which vector instructions the kernels are compiled for: the CPU numba targets.

numba compiles for the machine it runs on, unless ``NUMBA_CPU_NAME`` (and
``NUMBA_CPU_FEATURES``) name another one; the tile sizes of :mod:`~.conv_tiles` follow
the same choice, so that the code compiled for a CPU has tiles that fit its registers.
"""

import platform

import llvmlite.binding as llvm
from numba.core import config

#: Whether this is an x86 machine (AVX2 and AVX-512 are x86's).
IS_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")

#: LLVM CPU names with AVX-512 (for ``NUMBA_CPU_NAME`` with empty ``NUMBA_CPU_FEATURES``).
AVX512_NAMES = ("skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client", "icelake-server",
                "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids", "graniterapids", "znver4", "znver5",
                "x86-64-v4")


def has_avx512():
    """Whether numba's target CPU has AVX-512 (the foundation, ``avx512f``).

    numba gives LLVM the CPU name ``NUMBA_CPU_NAME`` (default: this machine's) with the
    features ``NUMBA_CPU_FEATURES``; unset, this machine's features, whatever the name;
    set but empty, the named CPU's own (``NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=``
    compiles for an AVX2 CPU)."""
    if not IS_X86:
        return False
    if config.CPU_FEATURES is None:
        return llvm.get_host_cpu_features().get("avx512f", False)
    if config.CPU_FEATURES:
        return "+avx512f" in config.CPU_FEATURES.split(",")
    name = config.CPU_NAME or "host"
    return llvm.get_host_cpu_features().get("avx512f", False) if name == "host" else name in AVX512_NAMES
