"""Shared fixtures: where the real MNIST files are, and the loaded data set.

The files are looked for in $DIGITBENCH_DATA, else ``../shared/mnist`` beside the
repository (where CI keeps them), else digitbench's download cache (where
``digitbench download`` puts them). Tests that need them use the
``data_dir`` or ``mnist_data`` fixtures. Locally a missing data set skips those tests;
under CI=true it fails them, so that CI can never pass by skipping the real data.

Hypothesis runs the "dev" profile locally (few examples, a quick suite) and the "ci"
profile under CI=true (thousands of examples); HYPOTHESIS_PROFILE=ci runs CI's locally.
"""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

_QUIET = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, **_QUIET)
settings.register_profile("ci", max_examples=2000, **_QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if IN_CI else "dev"))



def _find_data_dir():
    from digitbench.data import default_cache_dir, missing_files

    candidates = [os.environ.get("DIGITBENCH_DATA"), REPO.parent / "shared" / "mnist", default_cache_dir() / "mnist"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir() and not missing_files(candidate):
            return Path(candidate)
    return None


#: The reason of every skip caused by missing data (counted by pytest_terminal_summary).
NO_DATA = "real MNIST files not found: set DIGITBENCH_DATA to a folder holding them"


@pytest.fixture(scope="session")
def data_dir():
    """Folder with the four real MNIST files."""
    found = _find_data_dir()
    if found is None:
        message = NO_DATA
        if IN_CI:
            pytest.fail(message + " (CI=true: missing data is a failure, not a skip)")
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def mnist_data(data_dir):
    """The real MNIST data set, loaded once per test session (checksums verified)."""
    from digitbench import load_mnist

    return load_mnist(data_dir, download=False)


def pytest_addoption(parser):
    parser.addoption("--installed-wheel", action="store_true",
                     help="require that digitbench is imported from an installed copy, not from this source tree")


def pytest_configure(config):
    """Let ``python -m pytest --benchmark-only`` time the benchmarks.

    pyproject.toml's addopts has ``--benchmark-disable`` (the normal run executes each
    benchmark once, untimed), and pytest-benchmark refuses it together with
    ``--benchmark-only``; asking for only the benchmarks means enabling them.
    pytest-benchmark reads the options later (its own hook is ``trylast``).
    """
    if config.getoption("benchmark_only", default=False):
        config.option.benchmark_enable = True
    if config.getoption("installed_wheel"):
        import digitbench

        if (REPO / "src") in Path(digitbench.__file__).resolve().parents:
            raise pytest.UsageError(f"--installed-wheel: digitbench was imported from the source tree ({digitbench.__file__})")


def pytest_terminal_summary(terminalreporter):
    """Say how many tests were skipped for want of the real data, and how to provide it."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if isinstance(r.longrepr, tuple) and NO_DATA in str(r.longrepr[2])]
    if skipped:
        from digitbench.data import SPLITS

        names = ", ".join(f"{name}.gz" for pair in SPLITS.values() for name in pair)
        terminalreporter.write_sep("-", "real data missing")
        terminalreporter.write_line(
            f"{len(skipped)} tests skipped because the real MNIST files were not found. To run them, either "
            f"`digitbench download` (about 11 MB, into the cache) or set DIGITBENCH_DATA to a folder holding "
            f"{names}.")
