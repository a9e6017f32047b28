import numpy as np
import pytest

from digitbench import N_PARAMS, Params, init_params
from digitbench.params import PARAM_SHAPES


def test_parameter_count_is_the_networks():
    # 784*128 + 128 + 128*64 + 64 + 64*10 + 10
    assert N_PARAMS == 109_386
    assert sum(a.size for a in init_params()) == 109_386


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_and_dtype(dtype):
    params = init_params(seed=1, dtype=dtype)
    assert isinstance(params, Params)
    assert [a.shape for a in params] == [(784, 128), (128,), (128, 64), (64,), (64, 10), (10,)]
    assert list(PARAM_SHAPES) == [a.shape for a in params]
    assert all(a.dtype == dtype and a.flags.c_contiguous for a in params)


def test_he_initialisation_statistics():
    params = init_params(seed=0, dtype=np.float64)
    for W, fan_in in ((params.W1, 784), (params.W2, 128), (params.W3, 64)):
        # std of N(0, 2 / fan_in); with >= 640 samples the estimate is within ~6%
        assert abs(W.std() / np.sqrt(2 / fan_in) - 1) < 0.06
        assert abs(W.mean()) < 4 * np.sqrt(2 / fan_in) / np.sqrt(W.size)
    for b in (params.b1, params.b2, params.b3):
        assert not b.any()


def test_same_seed_same_parameters_other_seed_other():
    a, b, c = init_params(7), init_params(7), init_params(8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a.W1, c.W1)
