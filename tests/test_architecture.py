"""The import rules of docs/architecture.md, checked on the source with ``ast``.

Every module of the package (src/digitbench and kernels/, installed as
digitbench.kernels) is parsed, its imports of the package resolved to module names,
and the graph checked: no cycle; each module imports only its own layer or lower ones;
no library module imports argparse, the CLI or the commands; the IDX reader does not
import the downloader; the package's own modules are imported at the top of a module,
never inside a function; a function imports lazily only the heavy or optional
libraries listed in :data:`LAZY_ALLOWED` (or the standard library).
"""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"digitbench": ROOT / "src" / "digitbench", "digitbench.kernels": ROOT / "kernels"}

#: The layers, lowest first: a module may import its own layer and the ones below.
#: A module is placed by the longest prefix of its name listed here; any other module
#: of the package is "library".
LAYERS = ("foundation", "kernels", "library", "api", "commands", "entry")
PLACES = {
    "digitbench.errors": "foundation",
    "digitbench.params": "foundation",
    "digitbench.pixels": "foundation",
    "digitbench.files": "foundation",
    "digitbench.networks": "foundation",
    "digitbench.kernels": "kernels",
    "digitbench": "api",  # the package itself: the public names re-exported
    "digitbench.commands": "commands",
    "digitbench.cli": "entry",
    "digitbench.__main__": "entry",
}
#: Pairs (importer, imported) forbidden although their layers would allow them.
FORBIDDEN = {("digitbench.data", "digitbench.download")}
#: Third-party libraries a function may import lazily (heavy, or optional).
LAZY_ALLOWED = {"numba", "llvmlite", "matplotlib", "PIL", "tqdm", "torch", "jax", "sklearn", "scipy"}
COMMAND_LINE = {"argparse"}


def module_files():
    """{module name: path} of every module of the package."""
    found = {}
    for package, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


MODULES = module_files()


def layer_of(module):
    prefixes = [p for p in PLACES if module == p or module.startswith(p + ".")]
    if module != "digitbench" and prefixes == ["digitbench"]:
        return "library"
    return PLACES[max(prefixes, key=len)] if prefixes else "library"


def imports_of(module, path):
    """(imported name, line, inside a function?) for each import in ``path``.

    Relative imports are resolved; ``from P import name`` counts as importing
    ``P.name`` when that is a module of the package, else ``P``.
    """
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    lazy_nodes = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(f)}
    out = []
    for node in ast.walk(tree):
        lazy = id(node) in lazy_nodes
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno, lazy) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                full = f"{target}.{alias.name}"
                out.append((full if full in MODULES else target, node.lineno, lazy))
    return out


def own(name):
    """The module of the package that ``name`` refers to, or None for an outside one."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


GRAPH = {m: imports_of(m, p) for m, p in MODULES.items()}


def test_the_package_is_found():
    assert {"digitbench", "digitbench.cli", "digitbench.commands.options", "digitbench.kernels.base",
            "digitbench.datasets", "digitbench.data", "digitbench.download"} <= set(MODULES)


def test_no_import_cycle():
    edges = {m: sorted({own(name) for name, _, _ in GRAPH[m] if own(name) and own(name) != m}) for m in MODULES}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in edges[m]:
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in MODULES:
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_each_module_imports_only_its_layer_or_lower():
    wrong = []
    for m in MODULES:
        for name, line, _ in GRAPH[m]:
            target = own(name)
            if target is None or target == m:
                continue
            if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(m)) or (m, target) in FORBIDDEN:
                wrong.append(f"{MODULES[m].name}:{line} {m} ({layer_of(m)}) imports {target} ({layer_of(target)})")
    assert not wrong, "\n".join(wrong)


def test_only_the_command_line_imports_argparse():
    wrong = [f"{m}:{line} imports {name}" for m in MODULES if layer_of(m) not in ("commands", "entry")
             for name, line, _ in GRAPH[m] if name.split(".")[0] in COMMAND_LINE]
    assert not wrong, "\n".join(wrong)


def test_the_package_is_imported_at_the_top_and_only_heavy_libraries_lazily():
    wrong = []
    for m in MODULES:
        for name, line, lazy in GRAPH[m]:
            top = name.split(".")[0]
            if not lazy or top in sys.stdlib_module_names or top in LAZY_ALLOWED:
                continue
            wrong.append(f"{MODULES[m]}:{line}: {name} imported inside a function")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module, importer, imported, expected", [
    ("digitbench.train", "digitbench.train", "digitbench.commands.options", "commands"),
    ("digitbench.kernels.naive", "digitbench.kernels.naive", "digitbench.datasets", "library"),
])
def test_the_rule_would_catch_an_upward_import(module, importer, imported, expected):
    """The layer check is not vacuous: an import upwards is out of order."""
    assert layer_of(imported) == expected
    assert LAYERS.index(layer_of(imported)) > LAYERS.index(layer_of(importer))


def test_the_cycle_check_resolves_relative_imports(tmp_path):
    """``from .x import y`` and ``from .. import z`` resolve to the package's module names."""
    path = tmp_path / "demo.py"
    path.write_text("from .data import read_idx\nfrom . import bench\nfrom .kernels.base import Backend\n"
                    "def f():\n    import matplotlib\n")
    found = [(own(name), lazy) for name, _, lazy in imports_of("digitbench.demo", path)]
    assert found == [("digitbench.data", False), ("digitbench.bench", False),
                     ("digitbench.kernels.base", False), (None, True)]


#: What only :mod:`digitbench.threads` may do: hold process-wide thread counts.
THREAD_POLICY_CALLS = {"set_num_threads", "get_num_threads"}


def thread_policy_uses(path):
    """(line, what) for each import of threadpoolctl and each use of numba's
    ``set_num_threads`` / ``get_num_threads`` in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "threadpoolctl"]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "threadpoolctl":
                found.append((node.lineno, node.module))
            found += [(node.lineno, a.name) for a in node.names if a.name in THREAD_POLICY_CALLS]
        elif isinstance(node, ast.Attribute) and node.attr in THREAD_POLICY_CALLS:
            found.append((node.lineno, node.attr))
    return found


def test_kernels_only_compute_and_leave_thread_policy_to_the_threads_module():
    """Kernels take ``threads`` as a value; holding a count is ``digitbench.threads``' job."""
    wrong = [f"{path}:{line}: {what}" for m, path in MODULES.items() if layer_of(m) == "kernels"
             for line, what in thread_policy_uses(path)]
    assert not wrong, "\n".join(wrong)


def test_the_thread_policy_rule_would_catch_a_kernel_that_sets_threads(tmp_path):
    path = tmp_path / "k.py"
    path.write_text("import numba\nfrom threadpoolctl import threadpool_limits\n\n\n"
                    "def f():\n    numba.set_num_threads(1)\n    return numba.get_num_threads()\n")
    assert [what for _, what in thread_policy_uses(path)] == ["threadpoolctl", "set_num_threads", "get_num_threads"]


def momentum_products(path):
    """Functions of ``path`` that multiply by ``momentum`` (``momentum * v``, ``v *= t(momentum)``):
    where the update rule v <- momentum v + g is written."""
    def is_momentum(node):
        if isinstance(node, ast.Call) and len(node.args) == 1:
            node = node.args[0]  # t(momentum): the dtype's scalar
        return isinstance(node, ast.Name) and node.id == "momentum"

    found = set()
    for function in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(function, ast.FunctionDef):
            continue
        for node in ast.walk(function):
            if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)
                    and (is_momentum(node.left) or is_momentum(node.right))) or \
                    (isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Mult) and is_momentum(node.value)):
                found.add(function.name)
    return found


def test_the_update_rule_is_written_once_per_backend():
    """A new term of the update (weight decay, say) is one change per backend: the
    momentum update is written in naive's sgd_update, base's sgd_update (NumPy, and the
    plain loop every backend inherits) and numba's sgd_step, which numba's
    sgd_update and W1's fused update both call; nowhere else in the package."""
    where = {f"{m.rsplit('.', 1)[-1]}.{f}" for m, path in MODULES.items() if m.startswith("digitbench.kernels")
             for f in momentum_products(path)}
    assert where == {"naive.sgd_update", "base.sgd_update", "numba_layers.sgd_step"}, where
    library = {f"{m}.{f}" for m, path in MODULES.items() if layer_of(m) == "library"
               for f in momentum_products(path)}
    assert library == set(), f"the update rule written outside the backends: {library}"
