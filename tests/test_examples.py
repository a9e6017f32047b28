"""examples/mlp_in_one_screen.py: the whole MLP in one screen of NumPy, run on a small subset."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "mlp_in_one_screen.py"


def test_it_fits_on_one_screen():
    assert len(SCRIPT.read_text().splitlines()) <= 60


def test_it_trains_the_mlp_on_a_subset(data_dir):
    env = dict(os.environ, DIGITBENCH_DATA=str(data_dir))
    out = subprocess.run([sys.executable, str(SCRIPT), "3000", "2"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("epoch 2: test accuracy ") and float(last.split()[-1].rstrip("%")) > 60, out.stdout
