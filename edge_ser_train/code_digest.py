"""A digest of the source code a module runs, found by following its imports.

Why: the feature cache must be invalidated by any change to code that shapes a window (front end,
gate, segmenter, augmentation, audio reading). A hand-kept list of files goes stale the first time
a module is split or a helper moves; following the import statements of our own packages cannot.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from pathlib import Path

OWN_PACKAGES = ("edge_ser", "edge_ser_train")


def _imported_modules(path: Path, package: str) -> set[str]:
    """Module names imported by the source at `path` (absolute and relative imports)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                if node.level else node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return names


def _package_root(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    return None if spec is None or spec.origin is None else Path(spec.origin).parent


def _source_file(module: str, packages: tuple[str, ...]) -> Path | None:
    """The .py file of one of our modules, or None for anything else (stdlib, third party, names
    imported from a module). Found by path, without importing anything."""
    top, *rest = module.split(".")
    root = _package_root(top) if top in packages else None
    if root is None:
        return None
    base = root.joinpath(*rest)
    for candidate in (base / "__init__.py", base.with_suffix(".py")) if rest else (root / "__init__.py",):
        if candidate.is_file():
            return candidate
    return None


def source_closure(module: str, packages: tuple[str, ...] = OWN_PACKAGES) -> list[Path]:
    """Every source file of `packages` that `module` imports, directly or not, itself included."""
    seen: dict[str, Path] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        path = _source_file(name, packages)
        if name in seen or path is None:
            continue
        seen[name] = path
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        pending.extend(_imported_modules(path, package))
        parent = name.rpartition(".")[0]
        if parent:
            pending.append(parent)  # a package's __init__ runs before its modules
    return sorted(set(seen.values()))


def code_digest(module: str, packages: tuple[str, ...] = OWN_PACKAGES) -> str:
    """sha256 (16 hex digits) over the relative paths and contents of `source_closure(module)`."""
    digest = hashlib.sha256()
    for path in source_closure(module, packages):
        digest.update(f"{path.parent.name}/{path.name}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
