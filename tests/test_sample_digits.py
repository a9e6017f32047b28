"""The sample digits ship, and README's ``predict`` example classifies them."""

import re
import shlex
import shutil
from pathlib import Path

from digitbench import cli, train

REPO = Path(__file__).resolve().parents[1]
DIGITS = REPO / "docs" / "images" / "digits"


def readme_predict_lines():
    """README's ``digitbench predict`` commands that name the shipped sample digits."""
    text = (REPO / "README.md").read_text()
    return [shlex.split(line.split("#")[0])[1:] for line in text.splitlines()
            if line.startswith("digitbench predict docs/images/digits/")]


def test_ten_small_sample_digits_ship():
    files = sorted(p.name for p in DIGITS.glob("*.png"))
    assert files == [f"{d}.png" for d in range(10)]
    assert all((DIGITS / name).stat().st_size < 10_000 for name in files)


def test_readmes_predict_example_works(mnist_data, tmp_path, monkeypatch, capsys):
    (command,) = readme_predict_lines()
    shutil.copytree(DIGITS, tmp_path / "docs" / "images" / "digits")
    monkeypatch.chdir(tmp_path)
    train("numpy", mnist_data, recipe="fast", epochs=1, progress=False).save("model.npz")  # README's model.npz
    assert cli.main(command) == 0
    out = capsys.readouterr().out
    for path in command[1:]:
        digit = Path(path).stem
        assert re.search(rf"^{re.escape(path)}: {digit} ", out, re.M), out
