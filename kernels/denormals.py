"""Flush-to-zero for the numba kernels: subnormal floats are slow, and SGD makes them.

Why: the momentum buffer of a pixel that is rarely non-zero decays by 0.9 every step
(``v <- 0.9 v + 0``); after a few hundred steps it falls below float32's smallest
normal number (1.2e-38) into the subnormal range, where each multiply-add takes ~100
cycles instead of one. With momentum 0.9, thousands of W1's velocities become
subnormal within the first epoch, and the epochs after it slow down.

What: x86's MXCSR register has two bits that make the hardware treat subnormal inputs
as zero (DAZ, bit 6) and round subnormal results to zero (FTZ, bit 15), as
``torch.set_flush_denormal(True)`` does in PyTorch (off there by default). The jitted
kernels set them on entry and restore the caller's MXCSR on exit
(:func:`flush_subnormals_on`, :func:`mxcsr_restore`), so nothing outside them, NumPy included, is affected. Values
below 1.2e-38 become 0, a change far below float32's rounding of anything that matters
here; on other architectures both do nothing.

With ``NUMBA_DISABLE_JIT=1`` the kernels run as plain Python, where an ``@intrinsic``
cannot be called; the two functions are then Python functions that set the same bits
through two tiny native functions built with llvmlite (:func:`_pure_python_versions`),
so that the un-jitted kernels flush subnormals as the compiled ones do.
"""

from llvmlite import ir
from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic

from .target_cpu import IS_X86

#: MXCSR bits: DAZ (denormals are zero, 0x0040) | FTZ (flush to zero, 0x8000).
FTZ_DAZ = 0x8040


def _mxcsr_call(builder, name, slot):
    byte_ptr = ir.IntType(8).as_pointer()
    fnty = ir.FunctionType(ir.VoidType(), [byte_ptr])
    fn = cgutils.get_or_insert_function(builder.module, fnty, name)
    builder.call(fn, [builder.bitcast(slot, byte_ptr)])


@intrinsic
def flush_subnormals_on(typingctx):
    """Set MXCSR's FTZ and DAZ bits; return the previous MXCSR (uint32) for
    :func:`mxcsr_restore`. On non-x86 machines: returns 0, changes nothing."""
    sig = types.uint32()

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        if not IS_X86:
            return ir.Constant(i32, 0)
        old_slot = cgutils.alloca_once(builder, i32)
        new_slot = cgutils.alloca_once(builder, i32)
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", old_slot)
        old = builder.load(old_slot)
        builder.store(builder.or_(old, ir.Constant(i32, FTZ_DAZ)), new_slot)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", new_slot)
        return old

    return sig, codegen


@intrinsic
def mxcsr_restore(typingctx, saved):
    """Load ``saved`` (uint32, from :func:`flush_subnormals_on`) back into MXCSR."""
    sig = types.void(types.uint32)

    def codegen(context, builder, signature, args):
        if IS_X86:
            slot = cgutils.alloca_once(builder, ir.IntType(32))
            builder.store(args[0], slot)
            _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()

    return sig, codegen


# ------------------------------------------------- without the JIT (NUMBA_DISABLE_JIT=1)


def _native_mxcsr_functions():
    """(get, set): ctypes functions reading and writing this thread's MXCSR, compiled
    by llvmlite from the same two LLVM intrinsics as above."""
    import ctypes

    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    module = ir.Module(name="mxcsr")
    module.triple = llvm.get_process_triple()
    i32 = ir.IntType(32)
    getter = ir.Function(module, ir.FunctionType(i32, []), name="get_mxcsr")
    builder = ir.IRBuilder(getter.append_basic_block())
    slot = builder.alloca(i32)
    _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
    builder.ret(builder.load(slot))
    setter = ir.Function(module, ir.FunctionType(ir.VoidType(), [i32]), name="set_mxcsr")
    builder = ir.IRBuilder(setter.append_basic_block())
    slot = builder.alloca(i32)
    builder.store(setter.args[0], slot)
    _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
    builder.ret_void()
    target = llvm.Target.from_default_triple().create_target_machine()
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(str(module)), target)
    engine.finalize_object()
    _native_mxcsr_functions.engine = engine  # the machine code lives as long as the engine
    return (ctypes.CFUNCTYPE(ctypes.c_uint32)(engine.get_function_address("get_mxcsr")),
            ctypes.CFUNCTYPE(None, ctypes.c_uint32)(engine.get_function_address("set_mxcsr")))


def _pure_python_versions():
    """flush_subnormals_on and mxcsr_restore for plain Python: they set the calling
    thread's MXCSR through :func:`_native_mxcsr_functions`, so NumPy's arithmetic in the
    un-jitted kernels flushes subnormals exactly as the compiled kernels do."""
    if not IS_X86:
        return (lambda: 0), (lambda saved: None)
    get_mxcsr, set_mxcsr = _native_mxcsr_functions()

    def flush_subnormals_on():
        old = get_mxcsr()
        set_mxcsr(old | FTZ_DAZ)
        return old

    def mxcsr_restore(saved):
        set_mxcsr(int(saved))

    return flush_subnormals_on, mxcsr_restore


if config.DISABLE_JIT:  # the kernels run as Python: intrinsics cannot be called there
    flush_subnormals_on, mxcsr_restore = _pure_python_versions()
