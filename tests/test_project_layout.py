"""The project's shape stays what its documents say.

- docs/ARCHITECTURE.md's module tree names every module of ``hpcacq`` and nothing else.
- No test module imports another (shared code lives in tests/helpers, fixtures in conftest.py).
- The names ``hpcacq`` exports lazily are the names type checkers see, and ``py.typed`` ships.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hpcacq"
TESTS = ROOT / "tests"

ENTRY = re.compile(r"^  (?P<name>[A-Za-z_][\w]*(?:\.py|/))(?:\s|$)")  # a tree line at indent 2
MODULE = re.compile(r"(?<![\w./-])((?:[A-Za-z_]\w*/)*[A-Za-z_]\w*\.py)\b")  # x.py or sub/x.py in prose


def tree_text() -> str:
    """The first fenced block of docs/ARCHITECTURE.md, the one that starts with ``hpcacq/``."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        if block.startswith("hpcacq/\n"):
            return block
    raise AssertionError("docs/ARCHITECTURE.md has no ``` block starting with 'hpcacq/'")


def modules_in_tree(block: str) -> set[str]:
    """Paths (relative to hpcacq/) the tree names: its entries, and within a package entry's
    description (its line and the indented lines under it) every ``name.py`` of that package.
    A package entry (``jobs/``) names its ``__init__.py``."""
    named: set[str] = set()
    package: str | None = None
    for line in block.splitlines()[1:]:
        entry = ENTRY.match(line)
        if entry:
            name = entry["name"]
            package = name if name.endswith("/") else None
            named.add(name + "__init__.py" if package else name)
            description = line[entry.end():]
        else:
            description = line
        if package is not None:
            named.update(package + found for found in MODULE.findall(description))
    return named


def modules_in_code() -> set[str]:
    return {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")}


def test_architecture_tree_names_exactly_the_modules_of_the_code():
    named, code = modules_in_tree(tree_text()), modules_in_code()
    assert not code - named, f"modules missing from docs/ARCHITECTURE.md's tree: {sorted(code - named)}"
    assert not named - code, f"docs/ARCHITECTURE.md's tree names modules that do not exist: {sorted(named - code)}"


def test_tree_parser_reads_entries_and_package_descriptions():
    block = ("hpcacq/\n  model.py    AcqImage (see reader.py elsewhere)\n"
             "  io/         readers.py (TIFF), tiff.py\n              limits.py, sub/deep.py\n  cli/  commands\n")
    assert modules_in_tree(block) == {"model.py", "io/__init__.py", "io/readers.py", "io/tiff.py", "io/limits.py",
                                      "io/sub/deep.py", "cli/__init__.py"}


def _test_modules() -> list[Path]:
    return sorted(TESTS.glob("test_*.py")) + [TESTS / "conftest.py"] + sorted((TESTS / "helpers").glob("*.py"))


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", _test_modules(), ids=lambda p: p.relative_to(TESTS).as_posix())
def test_no_test_module_imports_another(path):
    test_modules = {p.stem for p in TESTS.glob("*.py")} | {"tests"}
    wrong = _imported(path) & test_modules
    assert not wrong, f"{path.name} imports {sorted(wrong)}: shared code goes to tests/helpers, fixtures to conftest.py"


def test_lazy_exports_are_what_type_checkers_see():
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    typed = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.If)
             and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
             for stmt in node.body if isinstance(stmt, ast.ImportFrom) for alias in stmt.names}
    import hpcacq

    assert typed == set(hpcacq._LAZY)
    for name, module in hpcacq._LAZY.items():  # each name is imported from the module that defines it
        assert getattr(hpcacq, name) is getattr(importlib.import_module(module), name)


def test_package_ships_its_type_information():
    assert (PACKAGE / "py.typed").is_file()
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["hpcacq"]
