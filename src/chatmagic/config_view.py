"""``%chat_config``: show settings, change them, switch profile, list profiles, enter a key."""

from __future__ import annotations

import getpass
import shlex
from typing import TYPE_CHECKING

from IPython.display import display

from .errors import OptionError
from .profiles import Profile, mask_key
from .render.html import table_html, text_html, view

if TYPE_CHECKING:
    from .magics import ChatMagics

__all__ = ["run", "SETTINGS"]

SETTINGS = ("profile", "model", "throttle", "widgets", "persist", "notebook", "debug",
            "max_compare", "timeout", "remote_images", "max_field_chars")


def key_source(magics: "ChatMagics", profile: Profile, key: str | None) -> str | None:
    """Where ``key`` (the profile's resolved key) comes from, in resolve_key's order."""
    if not key:
        return None
    if profile.api_key:
        if profile.name in magics.typed_keys:
            return "typed in with %chat_config key"
        source = magics.session.profiles.source
        return f"api_key in {source.name if source else 'the configuration'}"
    env = magics.session.clients.environ
    if profile.api_key_env and env.get(profile.api_key_env):
        return profile.api_key_env
    return "keyring"


def _show(magics: "ChatMagics") -> None:
    profiles = magics.session.profiles
    profile = profiles.get()
    key = profile.resolve_key(magics.session.clients.environ)
    unset = f"set {profile.api_key_env}" if profile.api_key_env else "no key variable"
    rows = [("profile", profile.name), ("endpoint", profile.base_url),
            ("model", profile.model or "(none: pass -m)"),
            ("key", f"{mask_key(key)} ({key_source(magics, profile, key) or unset})"
                    if key or profile.needs_key else "(not needed)"),
            ("notebook", magics.notebook_name() or "(unknown: history kept in memory)"),
            ("history file", str(magics.session.notebook.path or "(none)")),
            ("config file", str(profiles.source or "(none)"))]
    rows += [(name, str(getattr(magics, name))) for name in SETTINGS
             if name not in ("profile", "model", "notebook")]
    if profile.name == "demo":
        rows.insert(0, ("note", "talking to the local demo endpoint: replies are scripted"))
    html = "<ul>" + "".join(f"<li><b>{text_html(k)}</b>: {text_html(v)}" for k, v in rows) + \
        "</ul>"
    display(view(html, "\n".join(f"{k}: {v}" for k, v in rows)), raw=True)


def _profiles(magics: "ChatMagics") -> None:
    env = magics.session.clients.environ
    current = magics.session.profiles.default
    table: list[list[str]] = []
    plain = []
    for p in magics.session.profiles:
        source = key_source(magics, p, p.resolve_key(env))
        if source:
            key = f"set ({source})"
        elif p.needs_key:
            key = f"unset ({p.api_key_env})" if p.api_key_env else "unset"
        else:
            key = "not needed"
        mark = " ←" if p.name == current else ""
        table.append([f"{p.name}{mark}", p.base_url, key, p.model or ""])
        plain.append(f"{p.name}{mark}  {p.base_url}  key {key}  {p.model or ''}")
    display(view(table_html(["profile", "endpoint", "key", "model"], table), "\n".join(plain)),
            raw=True)


def _set(magics: "ChatMagics", pairs: list[str]) -> None:
    if not pairs:
        raise OptionError(f"set takes KEY=VALUE pairs; keys: {', '.join(SETTINGS)}")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in SETTINGS:
            raise OptionError(f"set {pair!r}: use KEY=VALUE with a key among {', '.join(SETTINGS)}")
        current = getattr(magics, key)
        if isinstance(current, bool):
            if value.lower() not in ("true", "false", "1", "0", "on", "off", "yes", "no"):
                raise OptionError(f"{key} takes true or false, not {value!r}")
            parsed: object = value.lower() in ("true", "1", "on", "yes")
        elif isinstance(current, (int, float)) and not isinstance(current, bool):
            try:
                parsed = type(current)(value)
            except ValueError:
                raise OptionError(f"{key} takes a number, not {value!r}") from None
        else:
            parsed = value
        setattr(magics, key, parsed)
        print(f"{key} = {getattr(magics, key)}")


def _key(magics: "ChatMagics", name: str) -> None:
    profile = magics.session.profiles.get(name)
    key = getpass.getpass(f"Key for {profile.name} ({profile.base_url}): ").strip()
    if not key:
        raise OptionError("no key entered; nothing changed")
    magics.session.profiles.update(profile.name, api_key=key)
    magics.typed_keys.add(profile.name)
    print(f"Key for {profile.name} kept for this session: {mask_key(key)}")


def run(magics: "ChatMagics", line: str) -> None:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise OptionError(f"%chat_config: {exc}") from None
    action, rest = (words[0], words[1:]) if words else ("show", [])
    if action == "show":
        _show(magics)
    elif action == "profiles":
        _profiles(magics)
    elif action == "set":
        _set(magics, rest)
    elif action == "use" and len(rest) == 1:
        magics.profile = magics.session.profiles.get(rest[0]).name
        print(f"Using profile {rest[0]} ({magics.session.profiles.get().base_url}).")
    elif action == "key" and len(rest) == 1:
        _key(magics, rest[0])
    elif action in ("trust", "untrust") and len(rest) <= 1:
        from . import trust

        print((trust.allow if action == "trust" else trust.revoke)(rest[0] if rest else None))
    else:
        raise OptionError("%chat_config takes show | set KEY=VALUE ... | use PROFILE | profiles "
                          "| key PROFILE | trust [PATH] | untrust [PATH]")
