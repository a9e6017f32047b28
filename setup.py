"""Package discovery for setuptools; the metadata lives in pyproject.toml.

The package ``digitbench`` lives in ``src/digitbench`` and its subpackage
``digitbench.kernels`` in the top-level folder ``kernels/`` (see docs/design.md).
Both trees are searched, so that a new subpackage in either is installed without
editing a list by hand (a hand-written list once missed ``digitbench.experiments``
and broke every non-editable install).
"""

from setuptools import find_packages, setup

KERNELS = "digitbench.kernels"
packages = find_packages("src") + [KERNELS] + [f"{KERNELS}.{name}" for name in find_packages("kernels")]

setup(packages=packages, package_dir={"": "src", KERNELS: "kernels"})
