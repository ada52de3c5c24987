"""The package's layout: sub-packages by pipeline role that import in one direction, no import cycles (function-level
imports included), no module over 400 lines. docs/architecture.md draws the same map."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lrl_utils"

# The roles, lowest first: a module may import its own role and the roles before it, never one after it.
LAYERS = (
    "config",
    "records",
    "data",
    "demo",
    "adapters",
    "training",
    "evaluation",
    "llm",
    "report",
    "orchestration",
)
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules that `path` imports, anywhere in the file (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; use `from lrl_utils.<role>...`")
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n in known}
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(path, set(mods)) - {name} for name, path in mods.items()}


def role(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_belongs_to_a_role():
    loose = [m for m in modules() if m != "lrl_utils" and role(m) not in LAYERS]
    assert not loose, f"modules outside the role folders {LAYERS}: {loose}"


def test_roles_import_in_one_direction():
    wrong = [
        f"{m} ({role(m)}) imports {t} ({role(t)})"
        for m, targets in graph().items()
        for t in targets
        if role(m) and role(t) and LAYERS.index(role(t)) > LAYERS.index(role(m))
    ]
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    g = graph()
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(g[m]):
            if state.get(t) == 1:
                return stack[stack.index(t) :] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state and (cycle := visit(m)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_modules_are_short():
    long = {
        m: n
        for m, p in modules().items()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_architecture_map_names_every_module():
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [
        m for m, p in modules().items() if p.name != "__init__.py" and f"{role(m)}/{p.name}" not in text
    ]
    assert not missing, f"docs/architecture.md does not mention: {missing}"
