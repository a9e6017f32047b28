"""pytest's summary says why each test was skipped, and how to install what it needs."""

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_summary_lists_skip_reasons():
    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    assert "-rs" in options.split()


def test_skips_for_optional_libraries_say_which_extra_to_install():
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        text = path.read_text()
        for call in re.findall(r"importorskip\((\"(?:torch|jax|sklearn|asv)\".*)$", text, re.M):
            assert "pip install -e '.[" in call, f"{path.name}: importorskip({call}) gives no reason"
        for reason in re.findall(r"pytest\.skip\(f?\"([^\"]*(?:torch|jax|compare)[^\"]*)\"", text):
            assert "pip install -e '.[compare]'" in reason, f"{path.name}: {reason}"
