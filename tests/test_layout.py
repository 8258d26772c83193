"""The house plan holds: stages import only downwards, and no room outgrows itself.

Layers, top first (peers on one line never import each other)::

    cli
    jobs
    web | site
    newsletter
    delivery | source
    store
    errors, text, settings, formats, urls, templating, weeks, crontab (shared)
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "publisher"
RANK = {
    "cli": 6,
    "__main__": 7,
    "jobs": 5,
    "web": 4,
    "site": 4,
    "newsletter": 3,
    "delivery": 2,
    "source": 2,
    "store": 1,
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _stage(module: str) -> str:
    """``publisher.site.build`` -> ``site``; a shared module is its own name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _rank(stage: str) -> int:
    return RANK.get(stage, 0)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "publisher":
                found += [(node.lineno, f"publisher.{a.name}") for a in node.names]
            elif node.module.startswith("publisher."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("publisher.")]
    return found


def _name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(p for p in rel.parts if p != "__init__")


def test_every_import_runs_down_the_stages() -> None:
    wrong = []
    for path in _modules():
        me = _stage(_name(path))
        for line, target in _imports(path):
            them = _stage(target)
            if them == "__version__" or them == me:
                continue
            peers = _rank(them) == _rank(me) and _rank(me) > 0  # shared may use shared
            if _rank(them) > _rank(me) or peers:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {me or 'shared'} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_module_and_no_function_is_too_long() -> None:
    long = []
    for path in _modules():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            long.append(f"{path.relative_to(ROOT)}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.name} {size} lines")
    assert not long, "\n".join(long)


def test_the_checks_see_the_package() -> None:
    """The two checks above pass vacuously on an empty tree: they must see every stage."""
    stages = {_stage(_name(p)) for p in _modules()}
    assert set(RANK) - {"__main__", "cli"} <= stages


def test_the_tests_mirror_the_package() -> None:
    """A stage's tests live in the folder of its name (``tests/site`` for
    ``publisher/site``); shared helpers in ``tests/helpers``."""
    tests = ROOT / "tests"
    folders = {p.name for p in tests.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    stages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert folders - {"helpers"} == stages
    assert all(any((tests / s).glob("test_*.py")) for s in stages)
