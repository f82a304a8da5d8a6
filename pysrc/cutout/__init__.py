"""Cutout: on-device background removal.

`engine` runs under Pyodide in the extension's offscreen document (pure Python
plus the `js` bridge); `native` is the numpy + onnxruntime reference pipeline;
`toolchain` fetches, converts and packs everything `invoke build` ships.
`protocol` and `modes` are shared by all of them and stay dependency-free.
"""

__version__ = "0.1.0"
