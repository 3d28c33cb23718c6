"""Images for ``-i/--image``: a file, an http(s) URL, or a variable → an image URL.

Files and in-memory images become base64 ``data:`` URLs (we read the file, the
endpoint never does); http(s) and ``data:image/`` URLs are sent as is; any
other scheme (``file://`` included) is refused.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any, Mapping

from .errors import OptionError

__all__ = ["image_url", "MAX_IMAGE_BYTES"]

#: The largest image accepted (OpenAI's limit is 20 MB per image).
MAX_IMAGE_BYTES = 20 * 1024 * 1024

_MAGIC = [(b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
          (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif")]


def _mime(data: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _data_url(data: bytes, source: str) -> str:
    if len(data) > MAX_IMAGE_BYTES:
        raise OptionError(f"-i {source}: the image is {len(data) / 2**20:.1f} MiB; the limit is "
                          f"{MAX_IMAGE_BYTES / 2**20:.0f} MiB. Resize it first.")
    mime = _mime(data)
    if mime is None:
        raise OptionError(f"-i {source}: not a PNG, JPEG, GIF or WebP image")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _object_bytes(value: Any) -> bytes | None:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    buffer = io.BytesIO()
    if hasattr(value, "savefig"):  # a matplotlib Figure
        value.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()
    if hasattr(value, "save") and hasattr(value, "mode") and hasattr(value, "size"):  # PIL Image
        value.save(buffer, format="PNG")
        return buffer.getvalue()
    return None


def image_url(source: str, namespace: Mapping[str, Any] | None = None) -> str:
    """The ``image_url.url`` for one ``-i`` value, or an OptionError naming it."""
    if namespace is not None and source.isidentifier() and source in namespace:
        value = namespace[source]
        if isinstance(value, (str, Path)):
            return image_url(str(value))
        data = _object_bytes(value)
        if data is None:
            raise OptionError(f"-i {source}: the variable holds a {type(value).__name__}, not an "
                              "image (bytes, a PIL image, a matplotlib figure, a path or a URL)")
        return _data_url(data, source)
    scheme = source.split(":", 1)[0].lower() if re.match(r"[A-Za-z][\w+.-]*:", source) else ""
    if scheme in ("http", "https"):
        return source
    if scheme == "data":
        if not source.lower().startswith("data:image/"):
            raise OptionError(f"-i {source[:40]}: a data: URL must hold an image (data:image/...)")
        if len(source) > MAX_IMAGE_BYTES * 4 // 3 + 100:
            raise OptionError(f"-i data:...: the image is over {MAX_IMAGE_BYTES / 2**20:.0f} MiB")
        return source
    if scheme == "file":
        # The endpoint cannot read our disk, and must not be asked to read its own.
        raise OptionError(f"-i {source[:80]}: file:// URLs are not sent; give the path itself "
                          "(-i photo.png) and chatmagic reads the file and sends its bytes")
    if scheme and len(scheme) > 1:  # a one-letter scheme is a Windows drive (C:\\...)
        raise OptionError(f"-i {source[:80]}: only http(s) and data: URLs, image files and "
                          "variables can be images")
    path = Path(source).expanduser()
    if not path.is_file():
        raise OptionError(f"-i {source}: no such file, URL or variable")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OptionError(f"-i {source}: cannot read the file: {exc.strerror}") from None
    return _data_url(data, source)
