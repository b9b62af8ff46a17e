"""The dependency rules of DESIGN.md "Layout", checked on the source (imports point one way)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Return every module a file imports, at any depth (relative imports made absolute)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            # "from pkg import module" imports pkg.module too
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def imports_any(path: Path, *prefixes: str) -> list[str]:
    return sorted(name for name in imported_modules(path)
                  if any(name == prefix or name.startswith(f"{prefix}.") for prefix in prefixes))


RETRIEVAL_FILES = sorted((ROOT / "retrieval").rglob("*.py"))


def test_the_walk_finds_the_source():
    assert ROOT / "retrieval" / "search.py" in RETRIEVAL_FILES
    assert (ROOT / "evaluation" / "evaluation.py").is_file()


@pytest.mark.parametrize("path", RETRIEVAL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_retrieval_never_imports_workers_or_evaluation(path):
    assert imports_any(path, "workers", "evaluation") == []


def test_catalog_and_retrieval_views_do_not_import_each_other():
    assert imports_any(ROOT / "catalog" / "api.py", "retrieval.api", "retrieval.views") == []
    assert imports_any(ROOT / "retrieval" / "api.py", "catalog.api") == []
    assert imports_any(ROOT / "retrieval" / "views.py", "catalog.api") == []


def test_fusion_is_pure():
    assert imports_any(ROOT / "retrieval" / "fusion.py",
                       "django", "rest_framework", "catalog", "retrieval.backends") == []
    # relative imports inside retrieval/ are resolved, so ".backends" is caught too
    assert imports_any(ROOT / "retrieval" / "fusion.py", "retrieval.search") == []


def test_the_checker_sees_relative_and_nested_imports(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    package = tmp_path / "retrieval"
    package.mkdir()
    source = package / "sample.py"
    source.write_text("from . import backends\n"
                      "def late():\n    from workers.ingest import register\n")
    assert imports_any(source, "workers") == ["workers.ingest", "workers.ingest.register"]
    assert imports_any(source, "retrieval.backends") == ["retrieval.backends"]
