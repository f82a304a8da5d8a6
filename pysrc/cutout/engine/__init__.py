"""The engine: runs under Pyodide in the offscreen document.

Only `_js` touches the browser (`js`, `pyodide.ffi`); `naming` and `errors`
are plain Python and are unit-tested under CPython too.
"""
