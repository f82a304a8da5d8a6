"""The standard-library modules the engine imports, taken into Pyodide's start-up snapshot.

Pyodide's own start imports a few (json, asyncio, re, typing); the engine's import
then loaded the rest on every start: urllib.parse (with ipaddress) and statistics
(with fractions, decimal, numbers) were ~150 of its ~220 ms (Pyodide in Node). Imported
before the snapshot is taken, they are restored with Pyodide's memory instead
(offscreen.js). Found by reading the engine's sources, so the list follows the code:
every import statement of every `cutout` module reachable from the engine's entry
module, function bodies included (those run during a job).
"""

from __future__ import annotations

import ast
import hashlib
import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # pysrc/cutout
ENGINE_MODULE = "cutout.engine.offscreen"


def _source(module: str, root: Path) -> Path | None:
    """The file of a `cutout` module (a package's __init__.py), or None."""
    parts = module.split(".")[1:]
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def engine_stdlib_imports(entry: str = ENGINE_MODULE, root: Path = PACKAGE_ROOT) -> tuple[str, ...]:
    """Sorted dotted names of the standard-library modules `entry` imports, directly or
    through other `cutout` modules (`__future__` aside: a compiler directive)."""
    found: set[str] = set()
    seen: set[str] = set()
    todo = [entry]
    while todo:
        module = todo.pop()
        path = _source(module, root)
        if module in seen or path is None:
            continue
        seen.add(module)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                    target = f"{base}.{node.module}" if node.module else base
                    # `from . import jobs` names modules; `from .jobs import X` names X in one.
                    todo += [target, *(f"{target}.{alias.name}" for alias in node.names)]
                    continue
                names = [node.module or ""]
                if names[0] == "cutout":
                    names = [f"cutout.{alias.name}" for alias in node.names] + names
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "cutout":
                    todo.append(name)
                elif top in sys.stdlib_module_names and top != "__future__":
                    found.add(name)
    return tuple(sorted(found))


def snapshot_key(pyodide_version: str, imports: tuple[str, ...]) -> str:
    """The Cache Storage key of a snapshot: a snapshot holding other imports (another
    build) is another entry, so that an update does not keep restoring an older one."""
    digest = hashlib.sha256("\n".join(imports).encode()).hexdigest()[:12]
    return f"https://engine.invalid/pyodide-{pyodide_version}-{digest}.snapshot.gz"
