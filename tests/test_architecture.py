"""The import layers of docs/architecture.md, checked on the source: every package imports
only the layers below it, nothing imports a private module from outside its package, and
every public module declares ``__all__``."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: installed package -> its folder in the repository
FOLDERS = {"mmfree.golden": "golden", "mmfree.spec": "src/mmfree/spec", "mmfree.hdl": "hdl",
           "mmfree.flow": "flow", "mmfree.sim": "sim", "mmfree.model": "src/mmfree/model",
           "mmfree.cli": "src/mmfree/cli"}
#: package -> the packages it may import (docs/architecture.md)
ALLOWED = {
    "mmfree.golden": set(),
    "mmfree.spec": {"mmfree.golden"},
    "mmfree.hdl": {"mmfree.golden", "mmfree.spec"},
    "mmfree.flow": {"mmfree.golden", "mmfree.spec", "mmfree.hdl"},
    "mmfree.sim": {"mmfree.golden", "mmfree.spec", "mmfree.hdl", "mmfree.flow"},
    "mmfree.model": {"mmfree.golden", "mmfree.spec"},
    "mmfree.cli": {"mmfree.golden", "mmfree.spec", "mmfree.hdl", "mmfree.flow", "mmfree.sim",
                   "mmfree.model"},
}


def modules() -> list[tuple[str, Path]]:
    """(dotted module name, path) of every module of the layered packages."""
    out = []
    for package, folder in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out.append((".".join([package, *parts]), path))
    return out


def imports(name: str, path: Path) -> list[str]:
    """Every mmfree module ``name`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("mmfree")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("mmfree"):
                found += [target] + [f"{target}.{a.name}" for a in node.names]
    return found


def layer(module: str) -> str | None:
    return next((p for p in FOLDERS if module == p or module.startswith(p + ".")), None)


def test_imports_go_down_the_layers_only():
    wrong = []
    for name, path in modules():
        own = layer(name)
        for target in imports(name, path):
            other = layer(target)
            if other is not None and other != own and other not in ALLOWED[own]:
                wrong.append(f"{name} imports {target}: {own} may not use {other}")
    assert not wrong, "\n".join(wrong)


def test_no_private_module_is_imported_from_outside_its_package():
    wrong = []
    for name, path in modules():
        for target in imports(name, path):
            parts = target.split(".")
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__") and \
                        not name.startswith(".".join(parts[:i]) + "."):
                    wrong.append(f"{name} imports private {target}")
    assert not wrong, "\n".join(wrong)


def test_public_modules_declare_all():
    missing = []
    for name, path in modules():
        if name.startswith("mmfree.sim.tb") or path.name.startswith("_"):
            continue  # cocotb test modules; packages and private modules
        tree = ast.parse(path.read_text())
        names = {t.id for node in tree.body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)}
        if "__all__" not in names:
            missing.append(name)
    assert not missing, f"no __all__ in {', '.join(missing)}"
