"""``NUMBA_DISABLE_JIT=1``: the numba backend runs as plain Python and agrees with the compiled one.

Each case runs in a fresh process, since numba reads the variable when imported. Without
the JIT the kernels add the same terms in the same order, but no multiply-add is fused
into an FMA (``fastmath={"contract"}``), so float64 agrees to a few ulps, not bit for bit.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from numba_cases import run_case  # noqa: E402

CASES = Path(__file__).parent / "numba_cases.py"
NOJIT = dict(os.environ, NUMBA_DISABLE_JIT="1")
TOL = 1e-12  # float64 eps is 1.1e-16; unfused vs fused multiply-adds over <= 784 terms


def test_plain_python_training_and_inference_agree_with_the_compiled_kernels(tmp_path):
    out = tmp_path / "nojit.npz"
    subprocess.run([sys.executable, str(CASES), str(out)], env=NOJIT, check=True, timeout=600)
    plain, compiled = dict(np.load(out)), run_case("float64")
    assert np.array_equal(plain["labels"], compiled["labels"])
    for key, want in compiled.items():
        if key == "threads":  # how many threads ran: not a result
            continue
        err = np.max(np.abs(plain[key] - want)) / max(np.max(np.abs(want)), 1e-300)
        assert err <= TOL, f"{key}: plain Python vs compiled, rel err {err:.1e}"


FLUSH = """
import numpy as np, numba
from digitbench import get_backend, init_params
from digitbench.params import zeros_like_params
assert numba.config.DISABLE_JIT
params = init_params(0, np.float32)
velocity = zeros_like_params(params)
velocity.W1[:] = np.float32(2e-38)  # 0.9^8 * 2e-38 = 8.6e-39: subnormal unless flushed
get_backend("numba").train_batches(params, velocity, np.zeros((8, 784), np.uint8), np.arange(8),
                                   np.tile(np.arange(8), 8), 8, np.zeros(8), 0.9)
print(int(np.count_nonzero(velocity.W1)), np.float32(1e-38) * np.float32(0.5) > 0)
"""


def test_plain_python_flushes_subnormals_inside_the_kernels_only():
    run = subprocess.run([sys.executable, "-c", FLUSH], env=NOJIT, check=True, capture_output=True,
                         text=True, timeout=600)
    nonzero, subnormals_outside = run.stdout.split()
    assert nonzero == "0", f"{nonzero} subnormal velocities were not flushed without the JIT"
    assert subnormals_outside == "True", "the caller's floating-point mode was not restored"
