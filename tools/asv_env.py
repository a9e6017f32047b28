"""asv's install command: a commit's wheel with exactly its declared dependencies, at pinned versions.

Usage (asv.conf.json, run with the environment's Python)::

    python tools/asv_env.py WHEEL

asv reuses one virtualenv for every commit and only uninstalls the project between
them, so dependencies pile up: a commit that forgot to declare one works after a later
commit installed it, and fails after an earlier one. This script makes the environment
a function of the commit alone:

1. installs the harness (asv_runner, pympler, build tools, threadpoolctl, which the
   benchmarks use to hold thread counts) and the wheel with ``pip install -c
   benchmarks/constraints.txt``, so every version is the pinned one;
2. removes every installed distribution that is neither the harness nor in the
   wheel's declared dependency closure (read from the installed metadata, markers and
   extras evaluated), whatever earlier commits left behind;
3. refuses (exit 1, one line) when a distribution is not pinned in the constraints
   file, so nothing can float to a newly published release unnoticed.

Only the standard library and pip's vendored ``packaging`` are imported.
"""

import importlib
import importlib.metadata as metadata
import re
import subprocess
import sys
from pathlib import Path

CONSTRAINTS = Path(__file__).resolve().parents[1] / "benchmarks" / "constraints.txt"
#: Installed in every environment whatever the commit: what asv and the benchmarks run on.
HARNESS = ("asv_runner", "pympler", "build", "setuptools", "wheel", "threadpoolctl")
#: Never removed, never checked against the pins (it is running this install).
KEEP = ("pip",)


def normalize(name):
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path=CONSTRAINTS):
    """{normalized name: version} of every ``name==version`` line of the constraints file."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            out[normalize(name)] = version.strip()
    return out


def closure(roots):
    """Normalized names of ``roots`` and everything they require, as installed (markers evaluated)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip always carries a copy
        from pip._vendor.packaging.requirements import Requirement
    seen, todo = set(), [(normalize(r), ()) for r in roots]
    while todo:
        name, extras = todo.pop()
        key = (name, extras)
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue  # an optional dependency not installed: pip decided it is not needed
        for line in requires:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("",) + extras):
                todo.append((normalize(req.name), tuple(sorted(req.extras))))
    return {name for name, _ in seen}


def installed():
    """{normalized name: version} of every distribution in this environment."""
    importlib.invalidate_caches()
    return {normalize(d.metadata["Name"]): d.version for d in metadata.distributions()}


def pip(*args):
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def main(argv):
    if len(argv) != 1:
        sys.exit("usage: python tools/asv_env.py WHEEL")
    wheel = argv[0]
    project = normalize(Path(wheel).name.split("-")[0])
    pip("install", "--no-input", "--disable-pip-version-check", "-c", str(CONSTRAINTS), *HARNESS, wheel)
    wanted = closure((project,) + HARNESS) | {normalize(k) for k in KEEP}
    extra = sorted(set(installed()) - wanted)
    if extra:
        print(f"asv_env: removing what {Path(wheel).name} does not declare: {' '.join(extra)}")
        pip("uninstall", "--yes", *extra)
    pinned, now = pins(), installed()
    skip = {project} | {normalize(k) for k in KEEP}
    loose = [f"{n}=={v}" for n, v in sorted(now.items()) if n not in skip and pinned.get(n) != v]
    if loose:
        sys.exit(f"asv_env: not pinned in {CONSTRAINTS.name} (or another version): {', '.join(loose)}")
    print("asv_env: " + " ".join(f"{n}=={v}" for n, v in sorted(now.items())))


if __name__ == "__main__":
    main(sys.argv[1:])
