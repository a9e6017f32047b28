"""A first run that says what it is doing, and ``--threads`` on every computing command.

The compile notice is tested with fake warm-ups that sleep (numba's real cold compile
takes ~15 s, too long for a test, and a warm cache loads in ~0.3 s); the delay is
shortened so that the slow fake needs only half a second.
"""

import argparse
import io
import os
import re
import time

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
    assert notice == "compiling the numba kernels (first run only, about 15 s)..."
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
    assert notice == "compiling the fake kernels (first run only, about 15 s)..."
    assert float(re.fullmatch(r"done in (\d+\.\d) s", done)[1]) >= 0.5, done
    quick = announce_warmup(FakeBackend(0.0))  # the default delay: 2 s
    quick.warmup()
    assert capsys.readouterr().err == ""


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
