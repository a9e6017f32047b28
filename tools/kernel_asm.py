"""Whether the hot numba loops keep their sums in registers, on a CPU you name.

    python tools/kernel_asm.py                      # this machine's CPU
    python tools/kernel_asm.py --cpu haswell        # AVX2 (16 vector registers of 8 float32)
    python tools/kernel_asm.py --cpu skylake-avx512 # AVX-512 (32 registers of 16 float32)

numba compiles for the CPU that ``NUMBA_CPU_NAME`` names (``host`` by default), with that
CPU's own features when ``NUMBA_CPU_FEATURES`` is set and empty (unset, numba adds this
machine's, AVX-512 perhaps), so any x86-64 CPU's machine code can be read here without
running it: each kernel is compiled (never called) in a fresh process for that CPU, from
its source, with its own fastmath flags. For each basic block that does vector arithmetic (the loops' bodies), the table
counts the vector multiply-adds and the vector loads and stores between registers and
the stack: a row of 128 float32 that does not fit the registers is "spilled", and those
moves then sit in the loop beside the arithmetic.
"""

import argparse
import json
import os
import re
import subprocess
import sys

#: The kernels read: name -> (module, function).
KERNELS = {"layer 1 forward": ("numba_layers", "linear_forward_sparse"),
           "W1 update": ("numba_layers", "sgd_update_sparse"),
           "CNN conv2 forward": ("conv_tiles", "correlate"),
           "CNN conv2 dW": ("conv_tiles", "weight_grads")}

ARITH = re.compile(r"\bv(fn?madd|fn?msub)\w*ps|\bv(mul|add|sub)ps")
STACK_MOVE = re.compile(r"\bvmov\w+\s+(%[xyz]mm\d+, -?\d*\(%rsp\)|-?\d*\(%rsp\), %[xyz]mm\d+)")
WIDEST = re.compile(r"%([xyz])mm\d+")


def blocks(asm):
    """[(label, vector arithmetic, stack moves)] of each basic block with vector arithmetic."""
    out, label, arith, moves = [], "entry", 0, 0
    for line in asm.splitlines() + [".Lend:"]:
        found = re.match(r"^(\.L\w+):", line)
        if found:
            if arith:
                out.append((label, arith, moves))
            label, arith, moves = found.group(1), 0, 0
            continue
        arith += bool(ARITH.search(line))
        moves += bool(STACK_MOVE.search(line))
    return out


def read_kernels():
    """In this process (NUMBA_CPU_NAME already set): compile each kernel and count."""
    import numpy as np
    from numba import njit, typeof

    from digitbench.kernels import conv_tiles, numba_layers, numba_sparse

    n = 8
    sp = numba_sparse.new_sparse(n, 784, np.float32)
    W1, z1 = np.zeros((784, 128), np.float32), np.zeros((n, 128), np.float32)
    none = np.empty(0, np.float32)
    args = {"linear_forward_sparse": (0, n, sp, W1, np.zeros(128, np.float32), z1),
            "sgd_update_sparse": (sp, z1, W1, W1, np.float32(0.1), np.float32(0.9), 0, 784, none, none),
            # conv2 of the CNN: 16 -> 32 channels, 14 x 14, padded by 2
            "correlate": (np.zeros((n, 18, 18 * 16), np.float32), 16, np.zeros((2, 5, 80, 16), np.float32),
                          np.zeros(32, np.float32), np.zeros((n, 14, 14, 32), np.float32), 1),
            "weight_grads": (np.zeros((n, 18, 18 * 16), np.float32), 16, np.zeros((n, 18, 18, 32), np.float32), 2,
                             np.zeros((2, 5, 80, 16), np.float32), np.zeros(32, np.float32), 1)}
    report = {}
    for name, (module, function) in KERNELS.items():
        kernel = getattr({"numba_layers": numba_layers, "conv_tiles": conv_tiles}[module], function)
        options = {k: v for k, v in kernel.targetoptions.items() if k not in ("cache", "nopython")}
        fresh = njit(**options)(kernel.py_func)
        signature = tuple(typeof(a) for a in args[function])
        fresh.compile(signature)  # compiled, never run: the CPU may not be this one
        asm = fresh.inspect_asm(signature)
        hot = blocks(asm)
        report[name] = {"function": f"{module}.{function}", "blocks": len(hot), "avx512": conv_tiles.WIDE_TILES,
                        "arithmetic": sum(b[1] for b in hot), "stack moves": sum(b[2] for b in hot),
                        "registers": sorted(set(WIDEST.findall(asm)))[-1] + "mm"}
    return report


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu", default="host", help="an LLVM CPU name: host, haswell, znver3, skylake-avx512, ...")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.inside:
        print(json.dumps(read_kernels()))
        return
    env = {**os.environ, "NUMBA_CPU_NAME": args.cpu}
    env.pop("NUMBA_CPU_FEATURES", None)
    if args.cpu != "host":
        env["NUMBA_CPU_FEATURES"] = ""  # the named CPU's own features (unset: this machine's)
    proc = subprocess.run([sys.executable, __file__, "--inside"], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"kernel_asm: compiling for {args.cpu!r} failed: {proc.stderr.strip().splitlines()[-1:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    tiles = "2 x 4" if next(iter(report.values()))["avx512"] else "2 x 2"
    print(f"CPU {args.cpu}: basic blocks with vector arithmetic, and vector moves to or from the stack in them "
          f"(CNN forward tiles of {tiles} pixels)")
    print(f"{'kernel':18s} {'function':36s} {'blocks':>6s} {'arithmetic':>10s} {'stack moves':>11s}  registers")
    for name, r in report.items():
        print(f"{name:18s} {r['function']:36s} {r['blocks']:6d} {r['arithmetic']:10d} {r['stack moves']:11d}  "
              f"{r['registers']}")


if __name__ == "__main__":
    main()
