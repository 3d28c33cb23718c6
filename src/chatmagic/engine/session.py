"""The core of a chat cell, without IPython: plan the requests, then record the replies.

`Session.plan` turns validated options into `Job`s (resolving ``PROFILE:MODEL``,
keys, images and the conversation so far) and raises before anything is sent;
`Session.record` puts what came back into the conversation and the usage
ledger. The magics, the Python API and the benchmarks all go through here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from ..core import scrub
from .capabilities import Capabilities, client_fetch
from ..transport.client import ClientPool
from ..store.batch_store import BatchStore
from ..store.conversation import Notebook, Turn
from ..core.errors import HistoryError, OptionError
from ..core.options import REQUEST_FIELDS, ChatOptions
from ..core.pricing import Pricer, check_budget, estimate_cost
from ..core.profiles import Profile, Profiles
from .endpoints import Knowledge
from ..engine.reply import Reply
from ..core.table import Row

if TYPE_CHECKING:
    from ..core.schema import Schema
    from ..tools.functions import Tool
    from .request import Job

__all__ = ["Plan", "Session", "UsageLedger", "resend_options", "current_session", "use_session"]


@dataclass
class Plan:
    """What one cell will send: the jobs, their labels, and where the reply goes."""

    options: ChatOptions
    jobs: list[Job]
    labels: list[str]
    user: dict[str, Any]
    schema: Schema | None = None  # --schema, resolved
    #: The tools offered (--tools), and the messages their rounds added between the user's
    #: message and the answer: the assistant's tool_calls and the tool results.
    tools: list[Tool] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)

    @property
    def side_by_side(self) -> bool:
        return len(self.jobs) > 1 or (self.options.n or 1) > 1


@dataclass
class UsageLedger:
    """Token usage of every request in this session."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, reply: Reply, conversation: str) -> None:
        usage = reply.usage
        if usage is None:
            return
        cost = reply.cost
        self.rows.append({"model": reply.model, "profile": reply.profile,
                          "conversation": conversation, **usage.to_dict(),
                          "cost": cost.amount if cost else None,
                          "currency": cost.currency if cost else None})

    def add_row(self, row: Row, model: str, profile: str, conversation: str) -> None:
        """One request of a run over many inputs (``--each``, `map`): its table row's counts
        (a row that reported no tokens is not counted, as `add` skips a reply without usage)."""
        if row.prompt_tokens is None:
            return
        completion = row.completion_tokens or 0
        self.rows.append({"model": model, "profile": profile, "conversation": conversation,
                          "prompt_tokens": row.prompt_tokens, "completion_tokens": completion,
                          "reasoning_tokens": 0,
                          "total_tokens": row.prompt_tokens + completion,
                          "estimated": row.estimated, "cost": row.cost,
                          "currency": row.currency if row.cost is not None else None})

    def totals(self, by: str | None = None) -> list[dict[str, Any]]:
        """One row per group (all in one row when ``by`` is None)."""
        groups: dict[str, Counter[str]] = {}
        estimated: dict[str, bool] = {}
        for row in self.rows:
            key = str(row[by]) if by else "all"
            counter = groups.setdefault(key, Counter())
            counter["requests"] += 1
            for name in ("prompt_tokens", "completion_tokens", "reasoning_tokens",
                         "total_tokens"):
                counter[name] += int(row[name])
            estimated[key] = estimated.get(key, False) or bool(row["estimated"])
        return [{(by or "scope"): key, **dict(counter), "estimated": estimated[key],
                 **self._costs(key, by)}
                for key, counter in groups.items()]

    def _costs(self, key: str, by: str | None) -> dict[str, Any]:
        """A group's cost per currency (``cost_USD``, ...) and how many requests had no
        known price (their cost is in no column: unknown is not 0)."""
        rows = [r for r in self.rows if (str(r[by]) if by else "all") == key]
        totals: dict[str, float] = {}
        for row in rows:
            if row.get("cost") is not None:
                totals[row["currency"]] = totals.get(row["currency"], 0.0) + row["cost"]
        return {**{f"cost_{c}": a for c, a in sorted(totals.items())},
                "unpriced": sum(1 for r in rows if r.get("cost") is None)}

    def currencies(self) -> list[str]:
        """Every currency a cost so far was in."""
        return sorted({r["currency"] for r in self.rows if r.get("cost") is not None})


class Session:
    """Profiles, clients, conversations and usage of one kernel (or script)."""

    def __init__(self, profiles: Profiles | None = None, notebook: Notebook | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.profiles = profiles or Profiles.load(environ)
        self.clients = ClientPool(environ)
        self.register_keys()
        self.notebook = notebook or Notebook()
        self.usage = UsageLedger()
        #: per conversation: the user message, the replies to keep one of, the options sent
        self.pending: dict[str, tuple[dict[str, Any], list[tuple[str, Reply, int]],
                                      dict[str, Any]]] = {}
        self.max_compare = 8
        self.max_cost = 0.0  # refuse a cell estimated to cost more (0: no limit)
        self.capabilities = Capabilities()  # what endpoints said of their models (issue 20)
        #: What requests taught of the endpoints: one at a time, structured-output modes.
        self.knowledge = Knowledge()
        #: Batch API jobs sent while histories are kept in memory only (persist off).
        self.batch_jobs = BatchStore()

    def register_keys(self) -> None:
        """Make every key in play known to the scrubber (profiles' keys, secret variables)."""
        scrub.register_environ(self.clients.environ)
        for profile in self.profiles:
            profile.resolve_key(self.clients.environ)

    # -- before sending --------------------------------------------------------
    def plan(self, options: ChatOptions, namespace: Mapping[str, Any] | None = None,
             user: dict[str, Any] | None = None) -> Plan:
        """Resolve everything the requests need; raise a ChatError before any is sent.

        ``user`` replaces the user message built from the prompt (``retry``).
        """
        # Imported here, on the first cell: `%load_ext` builds a Session but sends nothing.
        from ..core.images import image_url
        from ..core.schema import resolve_schema
        from ..tools.functions import resolve as resolve_tools
        from .request import Job, build_request, targets, user_message

        self.register_keys()  # a key typed or exported since the last cell
        if user is None and not options.prompt.strip() and not options.images:
            raise OptionError("The prompt is empty: write it in the cell body "
                              "(or after the options of %chat).")
        if options.profile is not None:
            self.profiles.get(options.profile)  # an unknown -p is refused by name
        if options.compare and len(options.compare) > self.max_compare:
            raise OptionError(f"--compare names {len(options.compare)} models; the limit is "
                              f"{self.max_compare} (%chat_config set max_compare=N)")
        asked = targets(options, self.profiles)
        for _, profile, _ in asked:
            profile.require_key(self.clients.environ)  # a missing key is one clear message
        schema = (None if options.schema is None
                  else resolve_schema(options.schema, namespace or {}))
        if user is None:
            user = user_message(options.prompt, [image_url(s, namespace) for s in options.images])
        # A name not defined, or a function that cannot be described: refused before --new.
        tools = resolve_tools(options.tools, namespace or {}) if options.tools else []
        # Last: the conversation changes (--new, -s) only once nothing else can fail.
        messages = self.messages_for(options) + [user]
        specs = tuple(tool.spec() for tool in tools)
        jobs = [Job(build_request(options, profile, model, messages, schema, specs), label,
                    self.pricer(profile, model))
                for label, profile, model in asked]
        self.check_budget(jobs)
        labels = [label for label, _, _ in asked]
        if options.n and options.n > 1:
            labels = [f"{labels[0]} · choice {i}" for i in range(options.n)]
        return Plan(options, jobs, labels, user, schema, tools=tools)

    # -- money -------------------------------------------------------------------
    def pricer(self, profile: Profile, model: str) -> Pricer:
        """How a reply of ``model`` at ``profile`` is priced (see `chatmagic.core.pricing`)."""
        return self.profiles.prices.pricer(profile.name, profile.base_url, model)

    def check_budget(self, jobs: list[Job]) -> None:
        """Refuse jobs estimated above ``max_cost`` (an OptionError; nothing sent)."""
        if self.max_cost > 0:
            check_budget(estimate_cost((j.pricer, j.request.body()) for j in jobs),
                         self.max_cost)

    def messages_for(self, options: ChatOptions) -> list[dict[str, Any]]:
        """The history to send before the new prompt."""
        if options.no_history:
            return [{"role": "system", "content": options.system}] if options.system else []
        name = options.conversation
        if options.new:
            self.notebook.clear(name)
            self.pending.pop(name, None)
        if options.system is not None:
            self.notebook.set_system(name, options.system)
        return self.notebook.get(name).messages()

    def warnings(self, plan: Plan) -> list[str]:
        """What the endpoints' own descriptions say against this plan (an image for a
        text-only model, a prompt past a known context), to show before it is sent."""
        return self.capabilities.warnings(
            plan.jobs, lambda profile: client_fetch(self.clients.sync(profile)))

    # -- after the replies -------------------------------------------------------
    def record(self, plan: Plan, replies: list[Reply]) -> None:
        """Count usage; add the exchange to the conversation (or hold it until kept)."""
        name = plan.options.conversation
        for reply in replies:
            self.usage.add(reply, name)
        if plan.options.no_history:
            return
        candidates = [(label, reply, 0) for label, reply in zip(plan.labels, replies)]
        if (plan.options.n or 1) > 1:
            # Only the choices the server sent: one that asked for 2 may get 1.
            sent = len(replies[0].choices)
            candidates = [(label, replies[0], i) for i, label in enumerate(plan.labels[:sent])]
        if len(candidates) == 1 or (plan.options.n or 1) > 1:
            label, reply, choice = candidates[0]
            if (reply.text(choice) or reply.choice_complete(choice) or reply.refusal(choice)
                    or plan.added):
                self.notebook.add_turn(name, _turn(plan.user, label, reply, choice,
                                                   resend_options(plan.options), plan.added))
        if len(candidates) > 1:
            self.pending[name] = (plan.user, candidates, resend_options(plan.options))
        else:  # `keep` is of the last cell only: an earlier cell's candidates are gone
            self.pending.pop(name, None)

    def keep(self, name: str, which: int | str) -> str:
        """Put candidate ``which`` (1-based number or label) of the last side-by-side cell
        into the conversation; replaces choice 0 kept by default after ``-n``."""
        if name not in self.pending:
            raise HistoryError(f"nothing to keep in conversation '{name}': run %%chat --compare "
                               "or -n 2 first")
        user, candidates, sent_with = self.pending[name]
        index = _pick(candidates, which)
        label, reply, choice = candidates[index]
        conv = self.notebook.get(name)
        if conv.turns and conv.turns[-1].user is user:
            self.notebook.undo(name)  # the -n default (choice 0) gives way to the kept one
        self.notebook.add_turn(name, _turn(user, label, reply, choice, sent_with))
        del self.pending[name]
        return f"Kept reply {index + 1} ({label}) in conversation '{name}'."


def _pick(candidates: list[tuple[str, Reply, int]], which: int | str) -> int:
    labels = [c[0] for c in candidates]
    if isinstance(which, int) or str(which).isdigit():
        index = int(which) - 1
        if 0 <= index < len(candidates):
            return index
        raise HistoryError(f"keep takes 1 to {len(candidates)} (or a model id: "
                           f"{', '.join(labels)})")
    if which in labels:
        return labels.index(str(which))
    raise HistoryError(f"no reply from '{which}' to keep; the replies: {', '.join(labels)}")


#: What a retry sends again as the cell did (not n: a retry asks for one reply; not the
#: images, which are in the user message already).
RESENT_FIELDS = tuple(f for f in REQUEST_FIELDS if f not in ("n", "images"))


def resend_options(options: ChatOptions) -> dict[str, Any]:
    """The request options a cell set, as a turn keeps them for ``%chat_history retry``."""
    defaults = ChatOptions()
    resent = {name: getattr(options, name) for name in RESENT_FIELDS
              if getattr(options, name) != getattr(defaults, name)}
    if isinstance(options.schema, str):  # --schema as written (a resolved class is no JSON)
        resent["schema"] = options.schema
    if isinstance(options.tools, str):  # --tools as written (functions are no JSON); a
        resent["tools"] = options.tools  # retry asks again for each call: --yes is not kept
        resent["max_rounds"] = options.max_rounds
    return resent


def _turn(user: dict[str, Any], label: str, reply: Reply, choice: int,
          options: dict[str, Any] | None = None,
          added: list[dict[str, Any]] | None = None) -> Turn:
    # The edge scrubs every byte; a key spread over many deltas shows only once assembled.
    text = scrub.scrub(reply.text(choice))
    meta: dict[str, Any] = {"model": reply.model, "label": label, "profile": reply.profile,
                            "finish_reason": reply.finish_reason(choice),
                            "usage": reply.usage.to_dict() if reply.usage else None,
                            "ttft": reply.ttft, "elapsed": reply.elapsed}
    cost = reply.cost
    if cost is not None:  # never a 0 for an unknown price: no key at all
        meta["cost"] = cost.to_dict()
    if options:
        meta["options"] = options
    if not reply.choice_complete(choice):  # its own finish: -n's others may lack theirs
        meta["incomplete"] = True
        meta["error"] = scrub.scrub(reply.error) if reply.error else (
            "stopped" if reply.interrupted else "no finish reason")
    if reply.refusal(choice):
        meta["refusal"] = scrub.scrub(reply.refusal(choice) or "")
    messages = [user, *(added or [])]
    if added:
        meta["tool_rounds"] = sum(1 for m in added if m.get("tool_calls"))
    if not (added and reply.tool_calls(choice)):  # a last round of calls is in added already
        messages.append({"role": "assistant", "content": text})
    return Turn(messages, meta)


#: The session the Python API talks through: the loaded extension's (`use_session` at
#: ``%load_ext``), else one made from the environment on first use.
_current: Session | None = None


def current_session() -> Session:
    """The session in use: the loaded extension's, else one made from the environment."""
    global _current
    if _current is None:
        _current = Session()
    return _current


def use_session(session: Session | None) -> None:
    """Make ``session`` the one `current_session` gives (None: a fresh one on next use)."""
    global _current
    _current = session
