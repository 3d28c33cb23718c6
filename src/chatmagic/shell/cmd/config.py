"""``%chat_config``'s subcommands: show settings, change them, switch profile, list profiles,
enter a key, trust a configuration file.

Each is a function of (its words, the session, the settings) that returns what to show; the
magic prints or displays it. The settings are the magic's traits (validated there, by
traitlets), seen here through `Settings`; nothing here imports IPython.
"""

from __future__ import annotations

import getpass
import shlex
from typing import Any, Callable, Protocol

from ...core.errors import OptionError
from ...core.names import did_you_mean
from .history import Outcome
from ...core.profiles import Profile, mask_key
from ...render.html import table_html, text_html, view
from ...engine.session import Session

__all__ = ["run", "COMMANDS", "SETTINGS", "Settings"]

SETTINGS = ("profile", "model", "throttle", "widgets", "persist", "notebook", "debug",
            "max_compare", "timeout", "remote_images", "max_field_chars", "max_cost")


class Settings(Protocol):
    """The settings %chat_config reads and sets: `SETTINGS` as attributes, plus these."""

    typed_keys: set[str]  # profiles whose key was typed in with %chat_config key

    def notebook_name(self) -> str | None: ...


def key_source(session: Session, settings: Settings, profile: Profile,
               key: str | None) -> str | None:
    """Where ``key`` (the profile's resolved key) comes from, in resolve_key's order."""
    if not key:
        return None
    if profile.api_key:
        if profile.name in settings.typed_keys:
            return "typed in with %chat_config key"
        source = session.profiles.source
        return f"api_key in {source.name if source else 'the configuration'}"
    env = session.clients.environ
    if profile.api_key_env and env.get(profile.api_key_env):
        return profile.api_key_env
    return "keyring"


def _show(words: list[str], session: Session, settings: Settings) -> Outcome:
    profiles = session.profiles
    profile = profiles.get()
    key = profile.resolve_key(session.clients.environ)
    unset = f"set {profile.api_key_env}" if profile.api_key_env else "no key variable"
    rows = [("profile", profile.name), ("endpoint", profile.base_url),
            ("model", profile.model or "(none: pass -m)"),
            ("key", f"{mask_key(key)} ({key_source(session, settings, profile, key) or unset})"
                    if key or profile.needs_key else "(not needed)"),
            ("notebook", settings.notebook_name() or "(unknown: history kept in memory)"),
            ("history file", str(session.notebook.path or "(none)")),
            ("config file", str(profiles.source or "(none)"))]
    rows += [(name, str(getattr(settings, name))) for name in SETTINGS
             if name not in ("profile", "model", "notebook")]
    if profile.name == "demo":
        rows.insert(0, ("note", "talking to the local demo endpoint: replies are scripted"))
    html = "<ul>" + "".join(f"<li><b>{text_html(k)}</b>: {text_html(v)}" for k, v in rows) + \
        "</ul>"
    return view(html, "\n".join(f"{k}: {v}" for k, v in rows))


def _profiles(words: list[str], session: Session, settings: Settings) -> Outcome:
    env = session.clients.environ
    current = session.profiles.default
    table: list[list[str]] = []
    plain = []
    for p in session.profiles:
        source = key_source(session, settings, p, p.resolve_key(env))
        if source:
            key = f"set ({source})"
        elif p.needs_key:
            key = f"unset ({p.api_key_env})" if p.api_key_env else "unset"
        else:
            key = "not needed"
        mark = " ←" if p.name == current else ""
        table.append([f"{p.name}{mark}", p.base_url, key, p.model or ""])
        plain.append(f"{p.name}{mark}  {p.base_url}  key {key}  {p.model or ''}")
    return view(table_html(["profile", "endpoint", "key", "model"], table), "\n".join(plain))


def _set(pairs: list[str], session: Session, settings: Settings) -> Outcome:
    if not pairs:
        raise OptionError(f"set takes KEY=VALUE pairs; keys: {', '.join(SETTINGS)}")
    said = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if key not in SETTINGS:
            raise OptionError(f"set {pair!r}: no setting named {key!r}.{did_you_mean(key, SETTINGS)}"
                              f" The settings: {', '.join(SETTINGS)}")
        if not sep:
            raise OptionError(f"set {pair!r}: write {key}=VALUE")
        current = getattr(settings, key)
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
        setattr(settings, key, parsed)  # validated by the setting itself (a TraitError)
        said.append(f"{key} = {getattr(settings, key)}")
    return "\n".join(said)


def _use(words: list[str], session: Session, settings: Settings) -> Outcome:
    setattr(settings, "profile", session.profiles.get(words[0]).name)
    return f"Using profile {words[0]} ({session.profiles.get().base_url})."


def _key(words: list[str], session: Session, settings: Settings) -> Outcome:
    profile = session.profiles.get(words[0])
    key = getpass.getpass(f"Key for {profile.name} ({profile.base_url}): ").strip()
    if not key:
        raise OptionError("no key entered; nothing changed")
    session.profiles.update(profile.name, api_key=key)
    settings.typed_keys.add(profile.name)
    return f"Key for {profile.name} kept for this session: {mask_key(key)}"


def _trust(words: list[str], session: Session, settings: Settings) -> Outcome:
    from ...core import trust

    return trust.allow(words[0] if words else None)


def _untrust(words: list[str], session: Session, settings: Settings) -> Outcome:
    from ...core import trust

    return trust.revoke(words[0] if words else None)


Command = Callable[[list[str], Session, Settings], Outcome]

#: The subcommands: a function of (the words after it, the session, the settings), and how
#: many words it takes (least, most).
COMMANDS: dict[str, tuple[Command, int, int]] = {
    "show": (_show, 0, 0), "profiles": (_profiles, 0, 0), "set": (_set, 0, 99),
    "use": (_use, 1, 1), "key": (_key, 1, 1), "trust": (_trust, 0, 1),
    "untrust": (_untrust, 0, 1),
}


def run(line: str, session: Session, settings: Any) -> Outcome:
    """Carry out one %chat_config line (``settings``: see `Settings`)."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise OptionError(f"%chat_config: {exc}") from None
    action, rest = (words[0], words[1:]) if words else ("show", [])
    command, least, most = COMMANDS.get(action, (None, 0, 0))
    if command is None or not least <= len(rest) <= most:
        unknown = (f"no subcommand {action!r}.{did_you_mean(action, COMMANDS)} "
                   if command is None else "")
        raise OptionError(f"%chat_config: {unknown}%chat_config takes show | set KEY=VALUE ... "
                          "| use PROFILE | profiles | key PROFILE | trust [PATH] | untrust [PATH]")
    return command(rest, session, settings)
