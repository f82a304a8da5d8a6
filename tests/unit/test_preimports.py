"""The standard-library modules taken into Pyodide's start-up snapshot (toolchain.preimports)."""

from __future__ import annotations

from pathlib import Path

from cutout.toolchain.preimports import engine_stdlib_imports, snapshot_key


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "cutout" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "cutout"


def test_imports_are_followed_through_the_package(tmp_path):
    """Relative and absolute imports of `cutout` modules are followed; imports inside
    functions count (they run during a job); what the entry never reaches does not."""
    root = _package(tmp_path, {
        "__init__.py": "",
        "modes.py": "from __future__ import annotations\nimport math\n",
        "engine/__init__.py": "",
        "engine/offscreen.py": "import js\nfrom . import jobs\nfrom ..modes import X\n",
        "engine/jobs.py": ("from urllib.parse import urlsplit\nimport cutout_host\n"
                           "from cutout import tiers\n"
                           "def zip_all():\n    import zipfile\n"),
        "tiers.py": "from statistics import median\nfrom collections.abc import Callable\n",
        "native/pipeline.py": "import numpy\nimport sqlite3\n",  # not reached
    })
    assert engine_stdlib_imports(root=root) == (
        "collections.abc", "math", "statistics", "urllib.parse", "zipfile")


def test_the_engine_s_own_imports():
    """The real engine: the modules measured slow to import under Pyodide are found,
    nothing that is not the standard library is."""
    found = engine_stdlib_imports()
    assert {"statistics", "urllib.parse", "json", "asyncio"} <= set(found)
    assert not {"js", "cutout_host", "pyodide", "numpy", "__future__"} & {
        name.split(".")[0] for name in found}


def test_the_key_names_the_imports():
    a = snapshot_key("1.0", ("json", "statistics"))
    assert a != snapshot_key("1.0", ("json",)) and a != snapshot_key("1.1", ("json", "statistics"))
    assert a == snapshot_key("1.0", ("json", "statistics"))
