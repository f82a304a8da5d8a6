"""Turn what went wrong into one sentence a user can act on."""

from __future__ import annotations

from ..protocol import CutoutError

# MIME types Chromium's image decoder handles (createImageBitmap).
DECODABLE = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp",
             "image/avif", "image/x-icon", "image/vnd.microsoft.icon")


def http_error(status: int, status_text: str = "") -> CutoutError:
    reason = f"HTTP {status}{' ' + status_text if status_text else ''}"
    if status in (401, 403):
        return CutoutError("forbidden", f"The image could not be downloaded ({reason}): "
                           "the site requires you to be logged in or refuses direct access. "
                           "Save the image and open it from the Cutout popup instead.")
    if status in (404, 410):
        return CutoutError("not-found", f"The image could not be downloaded ({reason}): "
                           "it no longer exists at that address.")
    return CutoutError("http", f"The image could not be downloaded ({reason}).")


def network_error(detail: str) -> CutoutError:
    return CutoutError("network", "The image could not be downloaded: the site could not be "
                       f"reached ({detail}).")


def too_slow(seconds: float) -> CutoutError:
    return CutoutError("timeout", f"The site did not send the image within {seconds:.0f} s. "
                       "Try again, or save the image and open it from the Cutout popup.")


def download_too_large(received: int, limit: int) -> CutoutError:
    return CutoutError("download-too-large", "The image file is too large to download "
                       f"({received / 2**20:.0f} MB or more; the limit is {limit / 2**20:.0f} MB).")


def unsupported_src(src: str) -> CutoutError | None:
    """URLs the engine cannot fetch at all, or None when it can try."""
    if not src:
        return CutoutError("no-image", "No image was found where you right-clicked.")
    scheme = src.split(":", 1)[0].lower()
    if scheme in ("http", "https", "data", "chrome-extension", "upload"):
        return None
    if scheme == "blob":
        return CutoutError("blob-url", "This image exists only inside the web page (a blob: "
                           "URL) and cannot be read from outside it. Save it, or copy it "
                           "and paste it into the Cutout popup.")
    return CutoutError("unsupported-url", f"Cutout cannot open {scheme}: addresses.")


def not_an_image(content_type: str) -> CutoutError:
    kind = content_type.split(";", 1)[0].strip() or "unknown type"
    return CutoutError("not-an-image", f"This is not an image Cutout can read ({kind}). "
                       "Supported: PNG, JPEG, WebP, GIF, BMP, AVIF.")


def undecodable(content_type: str) -> CutoutError:
    kind = content_type.split(";", 1)[0].strip()
    if kind == "image/svg+xml":
        return CutoutError("svg", "SVG drawings are not supported yet: they usually have no "
                           "background to remove. Export the SVG as PNG first.")
    return CutoutError("corrupt", "The image could not be decoded: the file is damaged or "
                       f"in a format the browser cannot read ({kind or 'unknown type'}).")


def unsupported_format(name: str) -> CutoutError:
    return CutoutError("unsupported-format", f"{name} images cannot be read by the browser, "
                       "so Cutout cannot open them. Save the image as PNG or JPEG and open "
                       "that in the Cutout popup.")


def too_large(width: int, height: int, max_pixels: int) -> CutoutError:
    return CutoutError("too-large", f"The image is too large ({width}x{height}, "
                       f"{width * height / 1e6:.0f} MP; the limit is {max_pixels / 1e6:.0f} MP).")
