"""The installed package holds every module of the source tree, and runs as a module.

Run against the built wheel by .ci/run (``--installed-wheel``), these tests catch a
subpackage left out of the distribution, which once broke every command of a
non-editable install.
"""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import digitbench

REPO = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = {"digitbench": REPO / "src" / "digitbench", "digitbench.kernels": REPO / "kernels"}


def _source_modules():
    names = []
    for package, root in SOURCE_ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts and parts[-1] == "__main__":
                continue
            names.append(".".join((package, *parts)))
    return sorted(set(names))


@pytest.mark.parametrize("name", _source_modules())
def test_every_source_module_is_importable_from_the_installed_package(name):
    # Under --installed-wheel (conftest.py) digitbench comes from site-packages, so a
    # module missing from the wheel fails to import here.
    importlib.import_module(name)


def test_python_dash_m_runs_the_command():
    out = subprocess.run([sys.executable, "-m", "digitbench", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"digitbench {digitbench.__version__}"


def test_summary_says_why_tests_were_skipped(tmp_path):
    """Without the real data, pytest's summary counts the skips it caused and says how to fix it."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "conftest.py").write_text((Path(__file__).parent / "conftest.py").read_text())
    (tmp_path / "tests" / "test_x.py").write_text(
        "import pytest\n\ndef test_a(data_dir):\n    pass\n\ndef test_b(mnist_data):\n    pass\n\n"
        "def test_c():\n    pytest.skip('another reason')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DIGITBENCH_DATA", "CI")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # an empty download cache
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert "3 skipped" in proc.stdout, proc.stdout
    assert ("2 tests skipped because the real MNIST files were not found. To run them, either `digitbench download`"
            in proc.stdout), proc.stdout
    assert "DIGITBENCH_DATA to a folder holding train-images-idx3-ubyte.gz" in proc.stdout
