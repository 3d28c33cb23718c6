"""Working-directory trust: a ``chatmagic.toml`` that arrived with a clone or a download
may not point a key of yours at another host until you say so, once.

Trusted sources say where each key variable may go: the built-in presets, the
environment (``OPENAI_BASE_URL``), the user's config dir and ``%chat_config``.
A working-directory file that would send such a key elsewhere (or any key
from the environment to a host that is not this machine) leaves its profile
marked `Untrusted`; sending with it raises one ProfileError naming the file,
the host and the variable, until `allow` records the file's content hash in
the user's config dir. An edited file needs a new say-so.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ProfileError

__all__ = ["Untrusted", "allow", "revoke", "is_allowed", "digest", "store_path", "is_loopback",
           "LOCAL_FILE"]

#: The working-directory file this module guards.
LOCAL_FILE = "chatmagic.toml"


def is_loopback(host: str) -> bool:
    """Whether a host name is this machine (localhost, 127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def store_path() -> Path:
    """Where the decisions are kept: ``trusted.json`` in the user's config dir."""
    import platformdirs

    return Path(platformdirs.user_config_dir("chatmagic", appauthor=False)) / "trusted.json"


def digest(data: bytes) -> str:
    """The content hash a decision is remembered by."""
    return hashlib.sha256(data).hexdigest()


def _load() -> dict[str, Any]:
    try:
        data = json.loads(store_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def _save(files: dict[str, Any]) -> None:
    path = store_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"files": files}, f, indent=1)
    os.replace(tmp, path)


def is_allowed(content_digest: str) -> bool:
    """Whether the user agreed to a working-directory file with this content."""
    return content_digest in _load()


def _local(path: str | Path | None) -> Path:
    target = Path(path).expanduser() if path else Path.cwd() / LOCAL_FILE
    return target.resolve()


def allow(path: str | Path | None = None) -> str:
    """Trust ``path`` (default: ./chatmagic.toml) as it is now; say what was recorded.

    Backs ``%chat_config trust``. An edited file is a new file: it needs a new say-so.
    """
    target = _local(path)
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise ProfileError(f"trust: cannot read {target}: {exc.strerror}") from None
    files = _load()
    files[digest(data)] = {"path": str(target), "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    _save(files)
    return (f"Trusted {target} as it is now (sha256 {digest(data)[:12]}…); its profiles may use "
            "your keys. Editing the file asks again.")


def revoke(path: str | Path | None = None) -> str:
    """Forget every decision about ``path`` (default: ./chatmagic.toml)."""
    target = str(_local(path))
    files = _load()
    kept = {d: e for d, e in files.items() if not (isinstance(e, dict) and e.get("path") == target)}
    _save(kept)
    return f"Forgot {len(files) - len(kept)} decision(s) about {target}."


@dataclass(frozen=True)
class Untrusted:
    """Why a profile from a working-directory file may not use its key yet."""

    path: Path
    digest: str
    profile: str
    source: str  # the variable (or keyring entry) the key would come from
    host: str
    trusted_hosts: tuple[str, ...]

    def check(self) -> None:
        """Raise the one clear message, unless the user agreed to this file's content."""
        if is_allowed(self.digest):
            return
        if self.trusted_hosts:
            where = f"{self.source} is configured for {', '.join(self.trusted_hosts)}"
        else:
            where = f"no trusted configuration names {self.source}"
        raise ProfileError(
            f"{self.path} (in the working directory) would send your key from {self.source} "
            f"to {self.host} (profile '{self.profile}'; {where}). Nothing was sent. If you "
            f"trust this file, run `%chat_config trust` (from Python: "
            f"chatmagic.core.trust.allow({str(self.path)!r})); it is remembered for this content "
            f"of the file. Otherwise remove the file or its [profiles.{self.profile}] table.")
