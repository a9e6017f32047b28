"""Small arrays on the calling kernel's stack, which LLVM keeps in registers.

Why: the layer-1 kernels add rows of W1 (784, 128) into one row of 128 values: z1[i] in
the forward pass, the gradient of W1[j] in its update. Kept in an ordinary array, that
row is loaded and stored on every pass over it. Before each pass, LLVM also checks at
run time that it does not overlap the rows being read, because numba tells LLVM nothing
about which arrays may overlap. A row allocated on the kernel's own stack (an LLVM
``alloca``) cannot overlap anything else. With its width fixed at 128, LLVM keeps it in
registers for a whole loop (8 AVX-512 registers of float32), and each pixel costs 8
loads and 8 multiply-adds.

Use: ``acc = stack_row(W1)`` inside the kernel that fills it. It must never be returned:
it is gone when that kernel returns. Its values start undefined. With
``NUMBA_DISABLE_JIT=1`` it is a NumPy array (``np.empty``). ``stack_array(like, size)``
is the same for any size written as a number in the source: the convolution kernels
keep a tile of outputs (4 pixels times 16 channels) in one.
"""

import numpy as np
from llvmlite import ir
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from digitbench.params import LAYER_SIZES

from . import numba_cache  # noqa: F401  (first: the cache keyed by every kernel's source)

#: The row's width: the 128 units of hidden layer 1 (a constant, so that loops over a
#: row have a fixed length: what lets LLVM keep the row in registers).
ROW = LAYER_SIZES[1]


def stack_array(like, size):
    """An uninitialised array of ``size`` values of ``like``'s dtype; plain Python: a new array."""
    return np.empty(size, like.dtype)


def stack_row(like):
    """An uninitialised row of ROW values of ``like``'s dtype; plain Python: a new array."""
    return np.empty(ROW, like.dtype)


@intrinsic
def _stack_pointer(typingctx, like, size):
    """A pointer to ``size`` values of ``like``'s dtype (``size`` a constant of the source),
    allocated in the entry block of the function being compiled (so once per call, not
    once per loop iteration)."""
    if not isinstance(size, types.IntegerLiteral):
        return None  # numba then reports that the size must be a constant
    sig = types.CPointer(like.dtype)(like, size)

    def codegen(context, builder, signature, args):
        element = context.get_data_type(like.dtype)
        array = cgutils.alloca_once(builder, ir.ArrayType(element, size.literal_value))
        return builder.bitcast(array, element.as_pointer())

    return sig, codegen


@overload(stack_array, inline="always")  # inlined, so that the array is in the caller's frame
def _stack_array_compiled(like, size):
    return lambda like, size: carray(_stack_pointer(like, size), size)


@overload(stack_row, inline="always")
def _stack_row_compiled(like):
    return lambda like: carray(_stack_pointer(like, ROW), ROW)


@njit(cache=True, inline="always")
def check_row_width(W1):
    """Raise ValueError unless W1's rows are ROW wide (the kernels are built for them)."""
    if W1.shape[1] != ROW:
        raise ValueError("the numba kernels are built for 128 units in the first hidden layer")
