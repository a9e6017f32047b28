"""Backprop against central finite differences, for every backend (digitbench.gradcheck)."""

import json

import numpy as np
import pytest

from digitbench.backends import BACKENDS, get_backend
from digitbench.cli import main
from digitbench.gradcheck import TOLERANCE, gradcheck
from digitbench.kernels.numpy_backend import NumpyBackend
from digitbench.params import Params


@pytest.mark.parametrize("name", list(BACKENDS))
def test_gradients_match_finite_differences(name):
    # naive evaluates the loss in Python loops: fewer entries keep it to a few seconds
    entries = 4 if name == "naive" else 12
    records = gradcheck(get_backend(name), batch_size=3, entries=entries, seed=1)
    assert [r["tensor"] for r in records] == list(Params._fields)
    for r in records:
        assert r["checked"] == min(entries, int(np.prod(r["shape"])))
        assert r["max_rel_error"] <= TOLERANCE, f"{name}: d{r['tensor']} off by {r['max_rel_error']:.2e}"


class OffByOnePercent(NumpyBackend):
    """A backend with a bug: dW2 is 1% too large."""

    name = "broken"

    def loss_and_grads(self, params, X, y):
        loss, grads = super().loss_and_grads(params, X, y)
        return loss, grads._replace(W2=grads.W2 * 1.01)


def test_a_wrong_gradient_is_caught():
    records = {r["tensor"]: r for r in gradcheck(OffByOnePercent(), batch_size=3, entries=8)}
    assert not records["W2"]["ok"]
    assert records["W2"]["max_rel_error"] > 1e-3  # |1.01 g - g| / (2.01 |g|) = 0.005
    assert all(records[t]["ok"] for t in Params._fields if t != "W2")


def test_command_prints_a_table_and_json(capsys):
    assert main(["gradcheck", "--backend", "numpy", "--entries", "3", "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.split()[:1] == ["W1"] and line.endswith("ok") for line in out)
    record = json.loads(out[-1])
    assert record["ok"] is True and record["backends"] == ["numpy"]
    assert len(record["results"]["numpy"]) == 6


def test_command_exits_nonzero_above_tolerance(capsys):
    # no finite difference is exact to 1e-15: every tensor fails, and the exit code says so
    assert main(["gradcheck", "--backend", "numpy", "--entries", "2", "--tolerance", "1e-15"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "numpy.W1" in err[0]
