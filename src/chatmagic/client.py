"""The only place that constructs openai clients: one per profile, built lazily, reused."""

from __future__ import annotations

import asyncio
import os
from typing import Mapping

import openai

from .profiles import Profile

__all__ = ["ClientPool"]


class ClientPool:
    """Clients keyed by profile; async ones also by event loop.

    An async client's connection pool belongs to the loop it first ran on, so
    a loop of its own (a worker thread, ``asyncio.run``) gets its own client.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self._sync: dict[tuple[object, ...], openai.OpenAI] = {}
        self._async: dict[tuple[object, ...], openai.AsyncOpenAI] = {}

    def _identity(self, profile: Profile) -> tuple[object, ...]:
        # A client is reused while what it was built from is unchanged.
        return (profile.name, profile.base_url, profile.require_key(self._environ),
                tuple(sorted(profile.headers.items())), profile.timeout)

    def _kwargs(self, profile: Profile) -> dict[str, object]:
        return {"base_url": profile.base_url, "api_key": profile.require_key(self._environ),
                "default_headers": dict(profile.headers) or None,
                "timeout": profile.timeout if profile.timeout else openai.NOT_GIVEN}

    def sync(self, profile: Profile) -> openai.OpenAI:
        """The blocking client for this profile (used for ``/models``)."""
        key = self._identity(profile)
        if key not in self._sync:
            self._sync[key] = openai.OpenAI(**self._kwargs(profile))  # type: ignore[arg-type]
        return self._sync[key]

    def async_(self, profile: Profile) -> openai.AsyncOpenAI:
        """The async client for this profile on the running event loop."""
        loop = id(asyncio.get_running_loop())
        # Clients of loops that are gone would pin their pools: keep only this loop's.
        for stale in [k for k in self._async if k[0] != loop]:
            del self._async[stale]
        key = (loop, *self._identity(profile))
        if key not in self._async:
            self._async[key] = openai.AsyncOpenAI(**self._kwargs(profile))  # type: ignore[arg-type]
        return self._async[key]

    async def aclose_loop(self) -> None:
        """Close and forget the async clients of the running loop (before that loop ends)."""
        loop = id(asyncio.get_running_loop())
        for key in [k for k in self._async if k[0] == loop]:
            await self._async.pop(key).close()

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ
