"""Endpoint profiles: built-in presets, the environment and ``chatmagic.toml``.

This is the one place that knows where an endpoint's key comes from. Sources,
later wins: presets, the environment, the TOML file, then the notebook
(``%chat_config``). A key is never shown: `mask_key` is what reprs print.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from . import scrub
from .errors import ProfileError
from .pricing import PriceBook
from .trust import Untrusted, digest, is_loopback

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["Profile", "Profiles", "PRESETS", "DEMO_PORT", "mask_key", "config_paths",
           "split_model"]

#: Where ``chatmagic demo`` and ``python -m chatmagic.testing`` serve by default.
DEMO_PORT = 8765

#: The values of a profile's ``structured_output`` (see `chatmagic.core.schema.MODES`).
STRUCTURED_OUTPUT = ("json_schema", "json_object", "none")

# The placeholder the openai SDK needs for endpoints that take no key (it refuses an empty one).
NO_KEY = "no-key-needed"


@dataclass(frozen=True)
class Profile:
    """One OpenAI-compatible endpoint and how to talk to it."""

    name: str
    base_url: str
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    max_tokens_field: str = "max_tokens"
    needs_key: bool = True
    include_usage: bool = True
    timeout: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    #: The endpoint serves one request at a time (llama-cpp-python cuts a running stream
    #: when another request arrives): send it one at a time from the start.
    one_at_a_time: bool = False
    #: How the endpoint takes ``--schema``: ``json_schema``, ``json_object`` (with the schema
    #: beside it, as llama-cpp-python takes it) or ``none`` (the schema in the prompt only).
    structured_output: str = "json_schema"
    #: Most requests in flight to this endpoint during a run over many inputs (--each): a
    #: lower bound than --concurrency for a rate-limited account or a small server.
    concurrency: int | None = None
    #: The most bytes one response's body may hold once decompressed, in MB (10**6 bytes),
    #: and one line (or event) of a stream: past either, reading stops with one clear
    #: failure, keeping what came (`chatmagic.transport.limits`).
    max_response_mb: float = 256.0
    max_line_mb: float = 16.0
    #: Set when a working-directory file points a key of the user's here without consent.
    untrusted: Untrusted | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        key = "set" if self.api_key else "unset"
        return (f"Profile(name={self.name!r}, base_url={self.base_url!r}, "
                f"api_key_env={self.api_key_env!r}, api_key={key}, model={self.model!r})")

    def resolve_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The key for this endpoint, or None when none is configured."""
        env = os.environ if environ is None else environ
        if self.api_key:
            key: str | None = self.api_key
        elif self.api_key_env and env.get(self.api_key_env):
            key = env[self.api_key_env]
        else:
            key = _keyring_key(self.name)
        scrub.register(key)  # a key in play is masked in whatever a server sends back
        return key

    def require_key(self, environ: Mapping[str, str] | None = None) -> str:
        """The key to send; a placeholder for keyless endpoints; else a clear error."""
        key = self.resolve_key(environ)
        if key:
            if self.untrusted is not None and not self.api_key:
                self.untrusted.check()  # a key from the environment, sent where a file says
            return key
        if not self.needs_key:
            return NO_KEY
        where = (f"set the environment variable {self.api_key_env}" if self.api_key_env
                 else f"add api_key_env to [profiles.{self.name}] in chatmagic.toml")
        raise ProfileError(
            f"No API key for profile '{self.name}' ({self.base_url}): {where}, or run "
            f"`%chat_config key {self.name}` to type it in. To try chatmagic offline, run "
            f"`chatmagic demo` (or `python -m chatmagic.testing`) and `%chat_config use demo`.")

    @property
    def host(self) -> str:
        """The endpoint without scheme and path, for headers and messages."""
        rest = self.base_url.split("://", 1)[-1]
        return rest.split("/", 1)[0]


def mask_key(key: str | None) -> str:
    """A key as it may be shown: ``sk-…7Be``."""
    if not key:
        return "(none)"
    if key == NO_KEY:
        return "(not needed)"
    if len(key) < 12:
        return "…"
    return f"{key[:3]}…{key[-3:]}"


def _keyring_key(name: str) -> str | None:
    """A key kept with the optional `keyring` package under service 'chatmagic'."""
    if "keyring" not in sys.modules and os.environ.get("CHATMAGIC_KEYRING") != "1":
        return None  # importing keyring can be slow or prompt; use it only when asked
    try:
        import keyring  # type: ignore[import-not-found, unused-ignore]

        return keyring.get_password("chatmagic", name)  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - any keyring backend failure means "no key there"
        return None


PRESETS: dict[str, Profile] = {p.name: p for p in [
    Profile("openai", "https://api.openai.com/v1", "OPENAI_API_KEY", model="gpt-4o-mini",
            max_tokens_field="max_completion_tokens", description="OpenAI"),
    Profile("qwen", "https://dashscope.aliyuncs.com/compatible-mode/v1", "DASHSCOPE_API_KEY",
            model="qwen-plus", description="Alibaba Qwen (DashScope compatible mode)"),
    Profile("xinghuo", "https://spark-api-open.xf-yun.com/v1", "XINGHUO_API_KEY",
            model="generalv3.5", description="iFlytek Spark (key: the APIPassword)"),
    Profile("claude", "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY",
            model="claude-sonnet-4-5", description="Anthropic's OpenAI-compatible endpoint"),
    Profile("gemini", "https://generativelanguage.googleapis.com/v1beta/openai",
            "GEMINI_API_KEY", model="gemini-2.5-flash",
            description="Google Gemini's OpenAI-compatible endpoint"),
    Profile("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", model="deepseek-chat",
            description="DeepSeek"),
    Profile("ollama", "http://localhost:11434/v1", None, model="llama3.2", needs_key=False,
            description="a local Ollama server"),
    Profile("vllm", "http://localhost:8000/v1", "VLLM_API_KEY", needs_key=False,
            description="a vLLM server"),
    Profile("llamacpp", "http://localhost:8080/v1", None, needs_key=False,
            description="a llama.cpp server"),
    Profile("demo", f"http://127.0.0.1:{DEMO_PORT}/v1", None, model="markdown", needs_key=False,
            description="the local demo endpoint (chatmagic.testing), no real model"),
]}

_PROFILE_KEYS = {"base_url", "api_key_env", "api_key", "model", "headers", "max_tokens_field",
                 "needs_key", "include_usage", "timeout", "params", "description",
                 "one_at_a_time", "structured_output",
                 "concurrency", "prices", "max_response_mb", "max_line_mb"}


def config_paths(cwd: Path | None = None) -> list[Path]:
    """Where the TOML file is looked for, first found wins."""
    import platformdirs

    here = (cwd or Path.cwd()) / "chatmagic.toml"
    user = Path(platformdirs.user_config_dir("chatmagic", appauthor=False)) / "config.toml"
    return [here, user]


def _read_toml(paths: list[Path]) -> tuple[Path | None, dict[str, Any], bytes]:
    for path in paths:
        if path.is_file():
            try:
                raw = path.read_bytes()
                return path, tomllib.loads(raw.decode("utf-8")), raw
            except tomllib.TOMLDecodeError as exc:
                raise ProfileError(f"{path} is not valid TOML: {exc}") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise ProfileError(f"cannot read {path}: {exc}") from None
    return None, {}, b""


def _hostname(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return url.lower()


def _key_routes(profiles: Any) -> dict[str, set[str]]:
    """Which hosts trusted sources send each key variable to."""
    routes: dict[str, set[str]] = {}
    for profile in profiles:
        if profile.api_key_env:
            routes.setdefault(profile.api_key_env, set()).add(_hostname(profile.base_url))
    return routes


def _user_routes(path: Path, base: dict[str, Profile]) -> dict[str, set[str]]:
    """The routes the user's own config file sets up (it is not loaded beside a local file)."""
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8")).get("profiles", {})
        return _key_routes(_profile_from_table(name, table, base.get(name), path)
                           for name, table in tables.items())
    except (OSError, ValueError, AttributeError, TypeError, ProfileError):
        return {}  # a broken file routes nothing; the local file then asks for consent


def _check_local(profile: Profile, base: Profile | None, routes: dict[str, set[str]],
                 path: Path, content: str) -> Profile:
    """Mark a working-directory profile that would send a key of the user's elsewhere."""
    if profile.api_key:
        return profile  # the file's own key: nothing of the user's goes anywhere
    host = _hostname(profile.base_url)
    if profile.api_key_env:
        hosts = routes.get(profile.api_key_env, set())
        # A variable no trusted source names may serve a server on this machine only.
        if host in hosts or (not hosts and is_loopback(host)):
            return profile
        source, trusted = profile.api_key_env, tuple(sorted(hosts))
    elif base is not None and host != _hostname(base.base_url):
        source, trusted = f"the keyring entry '{profile.name}'", (_hostname(base.base_url),)
    else:
        return profile
    return replace(profile, untrusted=Untrusted(path.resolve(), content, profile.name, source,
                                                profile.host, trusted))


def _profile_from_table(name: str, table: Any, base: Profile | None, path: Path) -> Profile:
    if not isinstance(table, dict):
        raise ProfileError(f"{path}: [profiles.{name}] must be a table")
    unknown = set(table) - _PROFILE_KEYS
    if unknown:
        raise ProfileError(f"{path}: [profiles.{name}] has unknown keys {sorted(unknown)}; "
                           f"allowed: {sorted(_PROFILE_KEYS)}")
    if base is None and "base_url" not in table:
        raise ProfileError(f"{path}: [profiles.{name}] needs base_url")
    if table.get("max_tokens_field", "max_tokens") not in ("max_tokens", "max_completion_tokens"):
        raise ProfileError(f"{path}: [profiles.{name}] max_tokens_field must be "
                           "\"max_tokens\" or \"max_completion_tokens\"")
    if table.get("structured_output", "json_schema") not in STRUCTURED_OUTPUT:
        raise ProfileError(f"{path}: [profiles.{name}] structured_output must be one of "
                           + ", ".join(f'"{m}"' for m in STRUCTURED_OUTPUT))
    limit = table.get("concurrency")
    if limit is not None and (type(limit) is not int or limit < 1):
        raise ProfileError(f"{path}: [profiles.{name}] concurrency must be a whole number of "
                           f"at least 1, not {limit!r}")
    for name_ in ("max_response_mb", "max_line_mb"):
        size = table.get(name_)
        if size is not None and (type(size) not in (int, float) or not 0 < size < 1e9):
            raise ProfileError(f"{path}: [profiles.{name}] {name_} must be a number of "
                               f"megabytes above 0, not {size!r}")
    fields = dict(table)
    fields.pop("prices", None)  # read by PriceBook.from_toml: prices are no endpoint field
    fields["base_url"] = str(fields.get("base_url", base.base_url if base else "")).rstrip("/")
    if base is None:
        # A new endpoint that names no key source is taken to need none (a local server).
        fields.setdefault("needs_key", bool(fields.get("api_key_env") or fields.get("api_key")))
        return Profile(name=name, **fields)
    return replace(base, **fields)


class Profiles:
    """Every profile known in this session, and which one is current."""

    def __init__(self, profiles: dict[str, Profile], default: str,
                 source: Path | None = None) -> None:
        self._profiles = profiles
        self.default = default
        self.source = source
        #: The prices chatmagic.toml sets (`chatmagic.core.pricing`).
        self.prices: PriceBook = PriceBook()

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> "Profiles":
        """Presets, then the environment, then the first TOML file found."""
        env = os.environ if environ is None else environ
        profiles = dict(PRESETS)
        default = "openai"
        if env.get("CHATMAGIC_DEMO_URL"):  # set by `chatmagic demo` when it picked the port
            profiles["demo"] = replace(profiles["demo"], base_url=env["CHATMAGIC_DEMO_URL"])
        if env.get("OPENAI_BASE_URL"):
            # OPENAI_BASE_URL defines its own profile, which alone shares OPENAI_API_KEY.
            profiles["env"] = Profile("env", env["OPENAI_BASE_URL"].rstrip("/"), "OPENAI_API_KEY",
                                      needs_key=False, description="from OPENAI_BASE_URL")
            default = "env"
        local, user = config_paths(cwd)
        path, data, raw = _read_toml([local, user])
        if path is not None:
            tables = data.get("profiles", {})
            if not isinstance(tables, dict):
                raise ProfileError(f"{path}: 'profiles' must be a table of [profiles.NAME] tables")
            routes: dict[str, set[str]] = {}
            if path == local:  # where clones and downloads land: not a trusted source
                routes = _key_routes(profiles.values())
                for var, hosts in _user_routes(user, profiles).items() if user.is_file() else ():
                    routes.setdefault(var, set()).update(hosts)
            for name, table in tables.items():
                base = profiles.get(name)
                profile = _profile_from_table(name, table, base, path)
                if path == local:
                    profile = _check_local(profile, base, routes, path, digest(raw))
                profiles[name] = profile
            default = str(data.get("default_profile", default))
        default = env.get("CHATMAGIC_PROFILE") or default
        result = cls(profiles, default, path)
        if path is not None:
            result.prices = type(result.prices).from_toml(data, path,
                                                          raw.decode("utf-8", "replace"))
        result.get(default)  # an unknown default is refused here, once, with the known names
        if env.get("CHATMAGIC_MODEL"):
            result.update(default, model=env["CHATMAGIC_MODEL"])
        return result

    def __contains__(self, name: object) -> bool:
        return name in self._profiles

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._profiles.values())

    def names(self) -> list[str]:
        return list(self._profiles)

    def get(self, name: str | None = None) -> Profile:
        """The named profile (the current one by default), or a clear error."""
        name = name or self.default
        try:
            return self._profiles[name]
        except KeyError:
            import difflib

            near = difflib.get_close_matches(name, self._profiles, n=1)
            hint = f" Did you mean '{near[0]}'?" if near else ""
            raise ProfileError(f"Unknown profile '{name}'.{hint} Known profiles: "
                               f"{', '.join(self._profiles)}.") from None

    def set(self, profile: Profile) -> None:
        self._profiles[profile.name] = profile

    def update(self, name: str, **changes: Any) -> Profile:
        """Change a profile from the notebook (a trusted source: it may point a key anywhere)."""
        if {"base_url", "api_key_env", "api_key"} & set(changes):
            changes.setdefault("untrusted", None)
        profile = replace(self.get(name), **changes)
        self._profiles[name] = profile
        return profile


def split_model(model: str, profiles: Profiles, profile: str | None = None) -> tuple[Profile, str]:
    """Resolve ``PROFILE:MODEL`` (or a bare model) to a profile and a model id.

    The part before the first ``:`` names a profile only when one has that name,
    so Ollama's ``llama3:8b`` stays whole. With an explicit profile, never split.
    """
    if profile is not None:
        return profiles.get(profile), model
    head, sep, rest = model.partition(":")
    if sep and head in profiles:
        return profiles.get(head), rest
    return profiles.get(), model
