"""Browser fixtures: the built extension in headless Chromium, and two HTTP
servers on 127.0.0.1 (pages on one port, images on another: cross-origin)."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "build" / "extension"

pytestmark = pytest.mark.browser


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def extension_dir() -> Path:
    if not (EXTENSION / "manifest.json").is_file():  # as `invoke build` makes it
        from cutout.toolchain.build import build_extension
        from cutout.toolchain.snapshot import bundle_snapshot

        bundle_snapshot(build_extension().out)
    return EXTENSION


def _write_inputs(folder: Path) -> None:
    """The images the tests serve: samples plus every kind of bad input."""
    for sample in (ROOT / "samples").glob("*.jpg"):
        shutil.copy(sample, folder / sample.name)
    with Image.open(ROOT / "samples" / "coffee.jpg") as photo:  # a 4K (UHD) photo
        photo.convert("RGB").resize((3840, 2160)).save(folder / "uhd.jpg", quality=85)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 16)
    (folder / "notes.html").write_text("<!doctype html><p>not an image</p>")
    (folder / "drawing.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        '<circle cx="32" cy="32" r="20" fill="red"/></svg>')
    Image.new("RGB", (1, 1), (200, 30, 30)).save(folder / "pixel.png")
    frames = [Image.new("RGB", (64, 48), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    (folder / "empty.png").write_bytes(b"")
    # 30000 x 30000 of one colour: ~1 MB as PNG, 3.6 GB decoded.
    Image.new("L", (30000, 30000)).save(folder / "bomb.png", optimize=False)


@pytest.fixture(scope="session")
def image_server(tmp_path_factory):
    from cutout.headless.servers import StaticServer, _QuietHandler

    class LoginWall(_QuietHandler):
        """/private/* answers 401, as an image behind a login does; /redirect/<f> sends
        to /<f>; /slow/<f> answers after 3 s; /huge-declared says 400 MB; /huge-stream
        sends bytes without a length until the client gives up."""

        def do_GET(self) -> None:
            if self.path.startswith("/private/"):
                self.send_error(401, "Unauthorized")
            elif self.path.startswith("/redirect/"):
                self.send_response(302)
                self.send_header("Location", "/" + self.path.removeprefix("/redirect/"))
                self.end_headers()
            elif self.path.startswith("/slow/"):
                time.sleep(3)
                self.path = "/" + self.path.removeprefix("/slow/")
                super().do_GET()
            elif self.path in ("/huge-declared", "/huge-stream"):
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                if self.path == "/huge-declared":
                    self.send_header("Content-Length", str(400 << 20))
                self.end_headers()
                chunk = b"\0" * (1 << 20)
                try:
                    for _ in range(1 if self.path == "/huge-declared" else 400):
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            else:
                super().do_GET()

    folder = tmp_path_factory.mktemp("images")
    _write_inputs(folder)
    with StaticServer(folder, LoginWall) as server:
        server.folder = folder
        yield server


@pytest.fixture(scope="session")
def page_server(tmp_path_factory, image_server):
    """A web page on another port that shows an image of image_server (cross-origin),
    one hidden under a transparent overlay, one drawn as a CSS background, and text."""
    from cutout.headless.servers import StaticServer

    folder = tmp_path_factory.mktemp("pages")
    img = image_server.url
    (folder / "index.html").write_text(f"""<!doctype html>
<html><body style="margin:0">
<img id="photo" src="{img('astronaut.jpg')}" width="256" height="256">
<div style="position:relative;width:300px;height:200px">
  <img id="covered" src="{img('coffee.jpg')}" width="300" height="200">
  <div id="overlay" style="position:absolute;inset:0"></div>
</div>
<div id="bg" style="width:225px;height:150px;background-image:url('{img('chelsea.jpg')}');background-size:cover"></div>
<p id="words">Words, and no image under them.</p>
</body></html>""")
    with StaticServer(folder) as server:
        yield server


@pytest.fixture(scope="session")
def model_host():
    """build/models served as the model host (resumable ranges), as `invoke serve-models` does."""
    from cutout.headless.servers import ModelHostHandler, StaticServer
    from cutout.toolchain.build import MODELS_DIR

    with StaticServer(MODELS_DIR, ModelHostHandler) as server:
        yield server


@pytest.fixture(scope="session")
def browser(extension_dir, model_host):
    from cutout.headless.chromium import ExtensionBrowser

    with ExtensionBrowser(extension_dir) as b:
        b.set_settings(modelHost=model_host.url())
        yield b


@pytest.fixture(scope="session")
def fused_model() -> Path:
    """The file the default mode (Fast) runs on WASM, for the native reference."""
    from cutout.modes import get_mode
    from cutout.toolchain.build import MODELS_DIR

    return MODELS_DIR / f"{get_mode('fast').model_on('wasm')}.onnx"


@pytest.fixture(scope="session")
def png_alpha():
    """Decode a result PNG and return its alpha channel (H x W uint8)."""
    import numpy as np

    def decode(png: bytes):
        with Image.open(io.BytesIO(png)) as im:
            assert im.mode == "RGBA", im.mode
            return np.asarray(im)[..., 3]

    return decode
