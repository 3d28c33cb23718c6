"""One prompt over many inputs, planned: the elements, and one request per element × model.

`elements` reads a list, tuple, dict, pandas Series or DataFrame (or another
finite iterable) into `Element`s: what ``{item}``, ``{key}``, ``{index}`` and
``{COLUMN}`` stand for in each row. `plan_each` checks the template against
them and builds every row's request (`engine.request.build_request`), never with
the conversation's history (only ``-s``'s system message), raising an
OptionError before anything is sent. `planned_requests` lists what a run would
send (rows no earlier run finished), `estimate_run` what it would cost.

With ``--schema`` (`chatmagic.core.schema`) each request asks for the schema,
and the schema's fields are the table's columns before ``text``.
"""

from __future__ import annotations

from collections import ChainMap
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..core import scrub
from ..core.context import ErrorLog, _kind
from ..core.errors import OptionError
from ..core.images import image_url
from ..core.interpolate import MAX_FIELD_CHARS, field_names, fill
from ..core.options import ChatOptions
from ..core.pricing import Estimate, check_budget, estimate_cost
from ..core.profiles import Profiles
from ..core.table import STAT_COLUMNS, TEXT_COLUMN
from ..engine.request import Job, Request, build_request, targets, user_message
from ..engine.scheduler import DEFAULT_CONCURRENCY
from ..store.rowstore import RowStore, request_digest

__all__ = ["Element", "elements", "EachPlan", "plan_each", "planned_requests", "estimate_run"]

#: Fields a template may name in any row besides a DataFrame's columns.
_ROW_FIELDS = {"item", "key", "index"}


@dataclass(frozen=True)
class Element:
    """One input: its key or index, and the values its row's ``{fields}`` take."""

    key: Any
    fields: Mapping[str, Any]


def elements(value: Any, name: str = "the value",
             where: str | None = None) -> tuple[str, list[Element]]:
    """The elements of a collection and the name of the table's key column.

    A dict gives ``{key}`` and ``{item}`` (the value), key column ``key``; a
    DataFrame one element per row, ``{COLUMN}`` its values and ``{item}`` the
    row as a dict; a Series or list ``{item}``, with ``{index}`` the label or
    position. Anything else iterable (a set, a generator, a 1-D array) is read
    as a list. Text, bytes and non-iterables are refused, as is an empty one.
    """
    where = where or f"--each {name}"
    kind = _kind(value)
    items: list[Element]
    key_name = "index"
    if kind == "DataFrame":
        labels = list(value.index)
        records = value.to_dict("records")
        # A column named item or index is that column: {COLUMN} is what the SPEC promises.
        items = [Element(label, {"item": record, "index": label,
                                 **{str(c): v for c, v in record.items()}})
                 for label, record in zip(labels, records)]
    elif kind == "Series":
        items = [Element(label, {"item": v, "index": label}) for label, v in value.items()]
    elif isinstance(value, Mapping):
        key_name = "key"
        items = [Element(k, {"item": v, "key": k}) for k, v in value.items()]
    elif isinstance(value, (str, bytes, bytearray)):
        raise OptionError(f"{where}: {name} is text, not a collection: wrap it in a list "
                          f"([{name}]) to send it once, or split it into the inputs you mean")
    else:
        try:
            listed = list(value)
        except TypeError:
            raise OptionError(f"{where}: {name} is of type {type(value).__name__}, which holds "
                              "no elements to iterate over: give a list, tuple, dict, pandas "
                              "Series or DataFrame") from None
        items = [Element(i, {"item": v, "index": i}) for i, v in enumerate(listed)]
    if not items:
        raise OptionError(f"{where}: {name} is empty; nothing was sent")
    return key_name, items


def _check_fields(template: str, items: list[Element], namespace: Mapping[str, Any],
                  name: str, where: str) -> None:
    """Refuse a template field that is neither in the rows nor in the notebook."""
    first = items[0].fields
    for field_name in field_names(template):
        if field_name in first or field_name in namespace or field_name in ("Err", "In", "Out"):
            continue
        columns = [c for c in first if c not in _ROW_FIELDS]
        offered = ", ".join("{" + c + "}" for c in [*columns, *sorted(set(first) & _ROW_FIELDS)])
        raise OptionError(f"{where}: the prompt's {{{field_name}}} is in no row of {name} "
                          f"and names no notebook variable; a row offers {offered}. Nothing "
                          "was sent.")


@dataclass
class EachPlan:
    """Every row a run over many inputs sends, and how its table is shaped."""

    variable: str
    key_name: str
    labels: list[str]
    jobs: list[Job]  # element by element, each element's models in order
    concurrency: int = DEFAULT_CONCURRENCY
    fresh: bool = False
    schema_fields: list[str] | None = None
    #: With a schema: the reply text and finish reason → its fields (raise ValueError
    #: naming the problem).
    parse: Callable[[str, str | None], dict[str, Any]] | None = None


def _digest(request: Request) -> str:
    """A row's resume key: its request before a schema is put in it (how a schema is sent
    changes with what the session learned of the endpoint, `Knowledge.modes`), and the
    schema itself."""
    kwargs = request.kwargs()
    if request.schema is not None:
        kwargs["schema"] = request.schema.json_schema
    return request_digest(request.profile.base_url, kwargs)


def plan_each(options: ChatOptions, value: Any, profiles: Profiles,
              namespace: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None,
              errors: ErrorLog | None = None, max_field_chars: int = MAX_FIELD_CHARS,
              interpolate: bool = True, where: str | None = None) -> EachPlan:
    """Every row's request; an OptionError (nothing sent) for bad input.

    ``options.prompt`` is the template (not yet interpolated); ``value`` the
    collection ``options.each`` names.
    """
    name = options.each or "items"
    where = where or f"--each {name}"
    namespace = namespace or {}
    if not options.prompt.strip():
        raise OptionError("The prompt is empty: write the template in the cell body, e.g. "
                          "Classify: {item}")
    key_name, items = elements(value, name, where)
    if interpolate:
        _check_fields(options.prompt, items, namespace, name, where)
    schema = None
    if options.schema is not None:
        from ..core.schema import resolve_schema

        schema = resolve_schema(options.schema, namespace)
    asked = targets(options, profiles)
    for _, profile, _ in asked:
        profile.require_key(environ)  # a missing key is one clear message
    images = [image_url(s, namespace) for s in options.images]
    system = [{"role": "system", "content": options.system}] if options.system else []
    jobs = []
    if interpolate:
        scrub.register_environ()  # once for every row (a key exported in this cell counts)
    shared = dict(namespace)
    for element in items:
        if interpolate:
            text = fill(options.prompt, ChainMap(dict(element.fields), shared), errors=errors,
                        max_field_chars=max_field_chars, register=False).text
        else:
            text = options.prompt
        messages = [*system, user_message(text, images)]
        for label, profile, model in asked:
            request = build_request(options, profile, model, messages, schema)
            jobs.append(Job(request, label,
                            profiles.prices.pricer(profile.name, profile.base_url, model),
                            element.key, _digest(request)))
    plan = EachPlan(name, key_name, [t[0] for t in asked], jobs,
                    options.concurrency or DEFAULT_CONCURRENCY, options.fresh)
    if schema is not None:
        taken = sorted(set(schema.fields) & {key_name, "model", TEXT_COLUMN, *STAT_COLUMNS})
        if taken:
            raise OptionError(f"{where}: the schema's field {taken[0]!r} is also a column of "
                              "the table (its key, model, text, finish_reason, tokens, cost, "
                              "seconds, error): rename the field. Nothing was sent.")
        plan.schema_fields = list(schema.fields)
        plan.parse = lambda text, finish: dict(schema.as_fields(schema.parse(text, finish)))
    return plan


def estimate_run(plan: EachPlan, store: RowStore | None = None,
                 max_cost: float = 0.0) -> Estimate:
    """What the rows a run would send are estimated to cost (`chatmagic.core.pricing`); an
    OptionError, before anything is sent, when that is above ``max_cost`` (0: no limit)."""
    estimate = estimate_cost((job.pricer, job.request.body())
                             for job in planned_requests(plan, store))
    check_budget(estimate, max_cost)
    return estimate


def planned_requests(plan: EachPlan, store: RowStore | None = None) -> list[Job]:
    """The requests a run of ``plan`` would send: every row, less those ``store`` holds
    finished (unless the plan is ``fresh``). For an estimate before sending."""
    if store is None or plan.fresh:
        return list(plan.jobs)
    return [job for job in plan.jobs if store.get(job.digest, job.key) is None]
