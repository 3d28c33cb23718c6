"""The table of a run over many inputs: finished rows in, a DataFrame (or list of dicts) out.

`--each`, `chatmagic.map` and the Batch API's ``fetch`` all end here, so they
give the same table: one row per element × model, with the columns

    KEY, model, text (or one column per schema field, then text: the raw
    text of a reply that did not fit), finish_reason,
    prompt_tokens, completion_tokens, cost, seconds, error

where KEY is ``key`` for a dict's elements and ``index`` otherwise (a list's
position, a Series' or DataFrame's index label). `build_table` makes a pandas
DataFrame when pandas can be imported (no hard dependency), else a list of
dicts with the same keys in the same order.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

__all__ = ["Row", "build_table", "columns", "STAT_COLUMNS", "TEXT_COLUMN", "have_pandas"]

#: The columns after the answer's, in order.
STAT_COLUMNS = ("finish_reason", "prompt_tokens", "completion_tokens", "cost", "seconds",
                "error")
#: The answer's column when there is no schema.
TEXT_COLUMN = "text"


@dataclass
class Row:
    """One finished (or failed) request of a run: what the table shows of it.

    ``key`` is the element's key or index; ``fields`` holds the parsed schema
    fields when the run had a schema (their names are the table's columns then,
    before ``text``, which holds only a reply that did not fit). A failed row has
    ``error`` set and whatever text came.
    """

    key: Any
    model: str
    text: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    seconds: float | None = None
    error: str | None = None
    fields: dict[str, Any] | None = field(default=None)
    currency: str | None = None  # of ``cost`` (not a column: the table's cost is a number)
    #: The tokens were counted here, the endpoint reported none (not a column: for
    #: %chat_usage's "estimated").
    estimated: bool = False

    @property
    def ok(self) -> bool:
        """Finished with an answer (no error)."""
        return self.error is None

    def record(self, key_name: str = "index",
               schema_fields: Sequence[str] | None = None) -> dict[str, Any]:
        """This row as one dict in the table's column order."""
        out: dict[str, Any] = {key_name: self.key, "model": self.model}
        if schema_fields is None:
            out[TEXT_COLUMN] = self.text
        else:
            values = self.fields or {}
            for name in schema_fields:
                out[name] = values.get(name)
            # The raw text of a reply that did not fit the schema (the SPEC: kept).
            out[TEXT_COLUMN] = self.text if self.fields is None else None
        for name in STAT_COLUMNS:
            out[name] = getattr(self, name)
        return out


def columns(key_name: str = "index", schema_fields: Sequence[str] | None = None) -> list[str]:
    """The table's column names, in order."""
    answer = [TEXT_COLUMN] if schema_fields is None else [*schema_fields, TEXT_COLUMN]
    return [key_name, "model", *answer, *STAT_COLUMNS]


def have_pandas() -> bool:
    """Whether pandas can be imported (the table is a DataFrame then)."""
    try:
        importlib.import_module("pandas")
    except ImportError:
        return False
    return True


def build_table(rows: Iterable[Row], *, key_name: str = "index",
                schema_fields: Sequence[str] | None = None,
                use_pandas: bool | None = None) -> Any:
    """The SPEC's table of ``rows``: a pandas DataFrame, or a list of dicts without pandas.

    ``key_name`` names the first column (``"key"`` for a dict's elements,
    ``"index"`` otherwise); ``schema_fields`` puts one column per field before
    ``text`` (missing fields are None; ``text`` only where the reply did not fit).
    ``use_pandas`` forces the choice
    (None: a DataFrame whenever pandas imports). An empty run gives an empty
    table with the same columns.
    """
    records = [row.record(key_name, schema_fields) for row in rows]
    if use_pandas is None:
        use_pandas = have_pandas()
    if not use_pandas:
        return records
    pandas: Any = importlib.import_module("pandas")  # optional: no stubs needed
    names = columns(key_name, schema_fields)
    frame = pandas.DataFrame.from_records(records, columns=names)
    # A column of whole numbers with a gap (a failed row's tokens, a field it lacks) would
    # become floats (36.0): pandas' nullable Int64 keeps them whole, the gap <NA>.
    for name in names:
        values = [r[name] for r in records if r.get(name) is not None]
        if values and all(type(v) is int for v in values) and len(values) < len(records):
            frame[name] = frame[name].astype("Int64")
    return frame
