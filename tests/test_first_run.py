"""A first run that says what it is doing, and ``--threads`` on every computing command.

The compile notice is tested with fake warm-ups that sleep (numba's real cold compile
takes tens of seconds, too long for a test); the delay is shortened so that the slow
fake needs only half a second. The notice carries no figure of its own: the measured
compile time lives on the results page (each machine's ``compile.json`` record).
"""

import argparse
import io
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from digitbench import cli
from digitbench.commands.runtime import announce_warmup, compile_notice, default_threads, threaded


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_slow_warmup_prints_the_notice_then_done():
    stream = io.StringIO()
    with compile_notice("numba kernels", delay=0.1, stream=stream):
        time.sleep(0.5)
    notice, done = stream.getvalue().splitlines()
    assert notice == "compiling the numba kernels (once; later runs load it from the cache)..."
    assert float(re.fullmatch(r"done in (\d+\.\d) s", done)[1]) >= 0.5, done


def test_fast_warmup_prints_nothing():
    stream = Terminal()
    with compile_notice("numba kernels", delay=0.5, stream=stream):
        time.sleep(0.01)  # a warm cache
    assert stream.getvalue() == ""


def test_terminal_shows_elapsed_seconds_on_one_line():
    stream = Terminal()
    with compile_notice("numba kernels", delay=0.05, stream=stream):
        time.sleep(0.7)
    text = stream.getvalue()
    assert text.count("\n") == 1 and float(re.search(r"\.\.\. done in (\d+\.\d) s\n$", text)[1]) >= 0.7, text
    assert text.count("\r") >= 3, "the spinner redraws the line in place"
    assert " s" in text.split("\r")[2]


def test_notice_printed_even_when_warmup_fails():
    stream = io.StringIO()
    with pytest.raises(RuntimeError), compile_notice("x", delay=0.05, stream=stream):
        time.sleep(0.2)
        raise RuntimeError("compile error")
    assert stream.getvalue().splitlines()[-1].startswith("done in")


class FakeBackend:
    name = "fake"

    def __init__(self, seconds):
        self.seconds, self.calls = seconds, 0

    def warmup(self, dtypes=()):
        self.calls += 1
        time.sleep(self.seconds)
        return self.seconds


def test_announce_warmup_wraps_the_instance_once(capsys):
    shared = FakeBackend(0.5)
    backend = announce_warmup(announce_warmup(shared, delay=0.1), delay=0.1)
    assert "warmup" not in vars(shared), "the shared backend was changed"
    assert backend.warmup() == 0.5 and backend.calls == 1
    notice, done = capsys.readouterr().err.splitlines()
    assert notice == "compiling the fake kernels (once; later runs load it from the cache)..."
    assert float(re.fullmatch(r"done in (\d+\.\d) s", done)[1]) >= 0.5, done
    quick = announce_warmup(FakeBackend(0.0))  # the default delay: 2 s
    quick.warmup()
    assert capsys.readouterr().err == ""


class CachedBackend(FakeBackend):
    """A slow warm-up whose kernels are cached for float32 only (a slow cache load)."""

    def kernels_cached(self, dtypes):
        return all(np.dtype(d) == np.float32 for d in dtypes)


def test_a_slow_cache_load_says_nothing_but_uncached_dtypes_do(capsys):
    backend = announce_warmup(CachedBackend(0.3), delay=0.05)
    backend.warmup((np.float32,))
    assert capsys.readouterr().err == ""  # loading, however long, is not compiling
    backend.warmup((np.float32, np.float64))
    assert capsys.readouterr().err.startswith("compiling the fake kernels")


def test_the_notice_has_no_figure_of_its_own():
    """Numbers about compile time come from the measured record, never from the code."""
    import inspect

    from digitbench.commands import runtime

    assert not re.search(r"about \d+ ?s", inspect.getsource(runtime))
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert not re.search(r"compil[^.]*about \d+ ?s", readme)


def test_numba_backend_knows_whether_its_kernels_are_cached():
    from digitbench.kernels.numba_cache import cached_dispatchers, kernels_cached

    assert len(cached_dispatchers()) > 20
    assert kernels_cached(()) in (True, False)  # (no dtype asked: every kernel has some entry, or not)
    from digitbench import get_backend

    backend = get_backend("numba")
    backend.warmup((np.float32,))  # compiles, or loads from the cache: either way the cache now holds it
    assert backend.kernels_cached((np.float32,))


# --------------------------------------------------------------------------- threads


def test_default_threads_is_every_core_we_may_use():
    assert default_threads() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "bench", "gradcheck", "experiment"])
def test_every_computing_command_takes_threads(command):
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    options = {o for a in sub.choices[command]._actions for o in a.option_strings}
    assert "--threads" in options
    assert {"--data-dir", "--dataset"} <= options or command in ("predict", "evaluate", "gradcheck")


def test_threaded_holds_blas_and_numba_at_n_and_restores():
    import numba

    before = numba.get_num_threads()
    seen = {}

    def run(args):
        seen["blas"] = {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
        seen["numba"] = numba.get_num_threads()
        return 7

    assert threaded(run)(argparse.Namespace(threads=1, backend="numba")) == 7
    assert seen == {"blas": {1}, "numba": 1}
    assert numba.get_num_threads() == before
