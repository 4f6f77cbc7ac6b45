"""The package's shape: no import circle inside fastnn, the reference imports nothing of the rest
of fastnn and nothing else imports it, one version number, and a clear error when the source tree has no built module."""

import ast
import os
import shutil
import subprocess
import sys

import pytest

import fastnn

PKG = os.path.dirname(os.path.abspath(fastnn.__file__))
SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _modules():
    """{module name: path} of every fastnn .py file."""
    out = {}
    for folder, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, f), os.path.dirname(PKG))[:-3]
                name = rel.replace(os.sep, ".")
                out[name[:-len(".__init__")] if name.endswith(".__init__") else name] = \
                    os.path.join(folder, f)
    return out


def _top_level_imports(name, path, modules):
    """fastnn modules imported when ``name`` is imported (module level, not in functions)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in tree.body:
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    parts = package.split(".")[:len(package.split(".")) - n.level + 1]
                    base = ".".join(parts + ([n.module] if n.module else []))
                for a in n.names:
                    for cand in (f"{base}.{a.name}", base):
                        if cand in modules:
                            found.add(cand)
                            break
            elif isinstance(n, ast.Import):
                found.update(a.name for a in n.names if a.name in modules)
            stack.extend(ast.iter_child_nodes(n))
    found.discard(name)
    return found


def test_no_import_circle():
    modules = _modules()
    graph = {m: _top_level_imports(m, p, modules) for m, p in modules.items()}
    # a package imports its submodules' parents implicitly: drop edges to one's own parents
    for m in graph:
        graph[m] = {d for d in graph[m] if not m.startswith(d + ".")}
    state = {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        if state.get(m) == "open":
            cycle = path[path.index(m):] + [m]
            pytest.fail("import circle: " + " -> ".join(cycle))
        state[m] = "open"
        for d in sorted(graph[m]):
            visit(d, path + [m])
        state[m] = "done"

    for m in sorted(graph):
        visit(m, [])


def test_reference_imports_nothing_of_fastnn():
    modules = _modules()
    for name, path in modules.items():
        if name.startswith("fastnn.reference"):
            outside = {d for d in _top_level_imports(name, path, modules)
                       if not d.startswith("fastnn.reference")}
            tree = ast.parse(open(path, encoding="utf-8").read())
            lazy = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and
                    ((n.level >= 2) or (n.module or "").startswith("fastnn"))]
            assert not outside and not lazy, f"{name} imports {outside or lazy}"


def test_product_imports_nothing_of_the_reference():
    """The oracle stays independent: no product module imports it, at module level or inside a
    function, so parity tests never compare a class with itself."""
    for name, path in _modules().items():
        if name.startswith("fastnn.reference"):
            continue
        tree = ast.parse(open(path, encoding="utf-8").read())
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom):
                mod = n.module or ""
                names = [a.name for a in n.names]
                assert not (mod.split(".")[-1] == "reference" or "reference" in names
                            or ".reference." in f".{mod}."), f"{name} imports the reference"
            elif isinstance(n, ast.Import):
                assert not any("reference" in a.name.split(".") for a in n.names), name


def test_one_version_number():
    pyproject = os.path.join(SRC, "pyproject.toml")
    if not os.path.exists(pyproject):
        pytest.skip("the source tree's pyproject.toml is not beside the tests")
    text = open(pyproject).read()
    assert 'dynamic = ["version"]' in text and "\nversion =" not in text
    assert fastnn.__version__.count(".") == 2
    from importlib import metadata
    try:
        dist = metadata.distribution("fastnn")
    except metadata.PackageNotFoundError:
        return
    files = [str(dist.locate_file(f)) for f in dist.files or ()]
    if fastnn.__file__ in files:                      # the fastnn under test is the installed one
        assert dist.version == fastnn.__version__


def test_source_tree_without_built_module_says_what_to_do(tmp_path):
    tree = tmp_path / "src"
    shutil.copytree(PKG, tree / "fastnn",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    (tree / "pyproject.toml").write_text("[project]\nname = 'fastnn'\n")
    r = subprocess.run([sys.executable, "-c", "import fastnn"], cwd=tree, capture_output=True,
                       text=True, timeout=120, env={k: v for k, v in os.environ.items()
                                                    if k != "PYTHONPATH"})
    assert r.returncode != 0
    assert "compiled module fastnn._C has not been built" in r.stderr, r.stderr
    assert "circular import" not in r.stderr
