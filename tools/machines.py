"""Which machine a record was measured on, and where its records live: one folder a machine.

A machine is what changes the figures: the CPU model and family, its vector instruction
level (AVX2, AVX-512), the cores available, the BLAS kernels that ran and whether
``OPENBLAS_CORETYPE`` forced them. Its records are kept in ``docs/results/<id>/``, with a
``machine.json`` describing it; a run on another machine writes into another folder, so
no machine's records overwrite another's. ``load`` reads every machine on record.
"""

import json
import os
import platform
import re
import subprocess
from pathlib import Path

MACHINE_FILE = "machine.json"


def isa_level(flags):
    """The widest vector level among the CPU's ``flags`` (as /proc/cpuinfo lists them)."""
    flags = set(flags)
    for flag, level in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse2", "SSE2")):
        if flag in flags:
            return level
    return platform.machine() or "unknown"


def probe(blas_kernels, coretype):
    """This machine, as a dict: ``cpu``, ``family``, ``isa``, ``cores``, ``blas``, ``coretype``.

    ``blas_kernels``: the kernels OpenBLAS ran (a run's versions, "BLAS kernels");
    ``coretype``: the value of ``OPENBLAS_CORETYPE`` during the run, or None.
    """
    info = {}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        info = dict(re.findall(r"^([^:\n]+):\s*(.*)$", lscpu, flags=re.M))
    except (OSError, subprocess.SubprocessError):
        pass
    flags = info.get("Flags", "").split()
    if not flags and Path("/proc/cpuinfo").is_file():
        found = re.search(r"^flags\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), flags=re.M)
        flags = found[1].split() if found else []
    return {"cpu": info.get("Model name", "").strip() or platform.processor() or platform.machine(),
            "family": info.get("CPU family", "").strip() or None, "isa": isa_level(flags),
            "cores": len(os.sched_getaffinity(0)), "blas": blas_kernels, "coretype": coretype}


def machine_id(m):
    """A folder name for machine ``m``: e.g. ``amd-epyc-family26-avx-512-2cores``; with
    ``-openblas-haswell-forced`` appended when OPENBLAS_CORETYPE chose the kernels."""
    parts = [m["cpu"], f"family {m['family']}" if m.get("family") else "", m["isa"], f"{m['cores']} cores"]
    if m.get("coretype"):
        parts.append(f"openblas {m['coretype']} forced")
    return re.sub(r"[^a-z0-9]+", "-", " ".join(parts).lower()).strip("-")


def describe(m):
    """One line for a reader: ``AMD EPYC (CPU family 26), AVX-512, 2 cores; BLAS ...``."""
    family = f" (CPU family {m['family']})" if m.get("family") else ""
    forced = (f" (forced: OPENBLAS_CORETYPE={m['coretype']})" if m.get("coretype")
              else " (OpenBLAS's own choice: OPENBLAS_CORETYPE unset)")
    return f"{m['cpu']}{family}, {m['isa']}, {m['cores']} cores; BLAS {m['blas'] or 'unknown'}{forced}"


def save(results, m, name, entry):
    """Write record ``entry`` as ``name`` under machine ``m``'s folder of ``results``."""
    folder = results / machine_id(m)
    (folder / Path(name).parent).mkdir(parents=True, exist_ok=True)
    (folder / MACHINE_FILE).write_text(json.dumps(m, indent=1) + "\n")
    (folder / f"{name}.json").write_text(json.dumps(entry, indent=1) + "\n")
    return folder / f"{name}.json"


def load(results):
    """Every machine on record: ``{id: {"machine": dict, "records": {name: record}}}``.

    Record names are paths inside the machine's folder without ``.json`` (``bench-peers``,
    ``sweeps/batch``).
    """
    found = {}
    for file in sorted(results.glob(f"*/{MACHINE_FILE}")):
        folder = file.parent
        records = {str(p.relative_to(folder).with_suffix("")): json.loads(p.read_text())
                   for p in sorted(folder.rglob("*.json")) if p.name != MACHINE_FILE}
        found[folder.name] = {"machine": json.loads(file.read_text()), "records": records}
    return found
