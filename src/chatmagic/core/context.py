"""What a prompt may say about the notebook: the errors its cells raised, and data in brief.

`ErrorLog` keeps, as text, the error each cell raised (``{Err[N]}``, ``{Err}``),
fed by a ``post_run_cell`` hook that ``%load_ext chatmagic`` registers.
`compact` writes a pandas DataFrame or Series, or a numpy array, as its shape,
columns and dtypes and its first and last rows as a Markdown table, and `cut`
bounds any field's text. Plain Python: pandas and numpy are recognised by the
module their classes come from, never imported or required.
"""

from __future__ import annotations

import re
import traceback
from collections import OrderedDict
from typing import Any

__all__ = ["ErrorLog", "describe_error", "compact", "cut", "ERROR_CHARS", "KEPT_ERRORS",
           "EDGE_ROWS", "MAX_COLUMNS", "LISTED_COLUMNS"]

#: Longest error text kept per cell (its start and its end; the middle is cut).
ERROR_CHARS = 3000
#: How many cells' errors are remembered (the most recent).
KEPT_ERRORS = 50
#: Rows shown from each end of a frame, series or array.
EDGE_ROWS = 5
#: Columns a table shows (the first and last halves).
MAX_COLUMNS = 20
#: Columns whose dtype is listed before the rest are counted.
LISTED_COLUMNS = 100
_CELL_CHARS = 60  # one table cell: a long string in a frame should not fill the prompt

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def _plain(text: str) -> str:
    """Text without terminal colour codes (IPython's and many libraries' messages hold them)."""
    return _ANSI.sub("", text)


def _shorten(text: str, limit: int) -> str:
    """At most about ``limit`` characters: the first quarter and the rest from the end, whole
    lines where it can (a traceback's first frames show where, its last ones what)."""
    if len(text) <= limit:
        return text
    head_end = text.rfind("\n", 0, limit // 4) + 1 or limit // 4
    tail_start = text.find("\n", len(text) - (limit - head_end)) + 1 or \
        len(text) - (limit - head_end)
    dropped = tail_start - head_end
    return f"{text[:head_end]}  ... [{dropped:,} characters of the traceback cut] ...\n" \
           f"{text[tail_start:]}"


def _own_frame(filename: str) -> bool:
    return "/IPython/" in filename.replace("\\", "/")


def describe_error(exc: BaseException, limit: int = ERROR_CHARS) -> str:
    """``exc``'s type and message on one line, then the traceback Python would print,
    without colour codes or IPython's own frames (the ``exec`` of the cell), at most about
    ``limit`` characters."""
    summary = traceback.TracebackException.from_exception(exc)
    while summary.stack and _own_frame(summary.stack[0].filename):
        del summary.stack[0]
    # First its type and message on one line: a cut traceback might lose them otherwise.
    first = " ".join(_plain("".join(summary.format_exception_only())).split())
    if len(first) > 300:
        first = first[:299] + "…"
    text = _plain("".join(summary.format())).rstrip("\n")
    return f"{first}\n\n{_shorten(text, limit)}"


class ErrorLog:
    """The errors cells raised, by execution count, as text (no exception object is kept:
    its traceback would hold every local of the failed cell, a large frame included).

    ``ignore``: exception types not recorded, nor a UsageError raised ``from None`` while
    handling one: chatmagic's own failures, so that a refused or failed ``%%chat`` does not
    hide the error the next prompt asks about.
    """

    def __init__(self, ignore: tuple[type[BaseException], ...] = (),
                 keep: int = KEPT_ERRORS) -> None:
        self.ignore = ignore
        self.keep = keep
        self._errors: OrderedDict[int, str] = OrderedDict()

    def record(self, result: Any) -> None:
        """A ``post_run_cell`` hook: keep the error the cell raised, if any.

        ``result`` is IPython's ExecutionResult; never raises (a failing hook would print
        its traceback after every cell).
        """
        try:
            exc = getattr(result, "error_in_exec", None) or \
                getattr(result, "error_before_exec", None)
            count = getattr(result, "execution_count", None)
            if not isinstance(exc, BaseException) or not isinstance(count, int):
                return
            if self._ignored(exc):
                return
            try:
                text = describe_error(exc)
            except Exception:  # noqa: BLE001 - a traceback that cannot be formatted
                text = _plain(f"{type(exc).__name__}: (its traceback could not be read)")
            self.add(count, text)
        except Exception:  # noqa: BLE001, S110 - see the docstring
            pass

    def _ignored(self, exc: BaseException) -> bool:
        if isinstance(exc, self.ignore):
            return True
        return exc.__suppress_context__ and isinstance(exc.__context__, self.ignore)

    def add(self, count: int, text: str) -> None:
        """Keep ``text`` as the error of cell ``count`` (the oldest beyond ``keep`` go)."""
        self._errors.pop(count, None)
        self._errors[count] = text
        while len(self._errors) > self.keep:
            self._errors.popitem(last=False)

    def get(self, count: int) -> str | None:
        return self._errors.get(count)

    def last(self) -> tuple[int, str] | None:
        """The most recent cell's error as (execution count, text), or None."""
        if not self._errors:
            return None
        count = max(self._errors)
        return count, self._errors[count]

    def cells(self) -> list[int]:
        """The execution counts of the cells whose errors are kept, in order."""
        return sorted(self._errors)

    def clear(self) -> None:
        self._errors.clear()

    def __len__(self) -> int:
        return len(self._errors)


# -- data in brief ----------------------------------------------------------------------

def _kind(value: Any) -> str | None:
    """"DataFrame", "Series" or "ndarray" when ``value`` is (a subclass of) pandas' or
    numpy's class of that name; told by the defining module, so nothing is imported and an
    unrelated class with a ``shape`` is not mistaken for one."""
    for cls in type(value).__mro__:
        root = (getattr(cls, "__module__", "") or "").split(".")[0]
        if root == "pandas" and cls.__name__ in ("DataFrame", "Series"):
            return str(cls.__name__)
        if root == "numpy" and cls.__name__ == "ndarray":
            return "ndarray"
    return None


def _cell(value: Any) -> str:
    text = " ".join(str(value).split())  # one line: a newline would end the table row
    if len(text) > _CELL_CHARS:
        text = text[:_CELL_CHARS - 1] + "…"
    return text.replace("|", "\\|")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _edges(length: int) -> tuple[list[int], bool]:
    """The row positions shown (first and last EDGE_ROWS), and whether rows are skipped."""
    if length <= 2 * EDGE_ROWS:
        return list(range(length)), False
    return list(range(EDGE_ROWS)) + list(range(length - EDGE_ROWS, length)), True


def _with_gap(rows: list[list[Any]], skipped: bool, width: int) -> list[list[Any]]:
    if not skipped:
        return rows
    return rows[:EDGE_ROWS] + [["…"] * width] + rows[EDGE_ROWS:]


def _column_picks(count: int) -> list[int | None]:
    """The column positions a table shows; None where columns are skipped."""
    if count <= MAX_COLUMNS:
        return list(range(count))
    half = MAX_COLUMNS // 2
    return [*range(half), None, *range(count - half, count)]


def _frame(frame: Any) -> str:
    rows_n, cols_n = frame.shape
    columns = list(frame.columns)
    dtypes = [str(d) for d in frame.dtypes]
    listed = ", ".join(f"{c} ({d})" for c, d in list(zip(columns, dtypes))[:LISTED_COLUMNS])
    if cols_n > LISTED_COLUMNS:
        listed += f", … and {cols_n - LISTED_COLUMNS:,} more"
    picks = _column_picks(cols_n)
    positions, skipped = _edges(rows_n)
    header = [""] + ["…" if j is None else str(columns[j]) for j in picks]
    index = list(frame.index[positions]) if positions else []
    # .iat, not a row: a row of an int and a float column would show the int as a float.
    body = [[label] + ["…" if j is None else frame.iat[i, j] for j in picks]
            for i, label in zip(positions, index)]
    parts = [f"DataFrame: {rows_n:,} rows × {cols_n:,} columns",
             f"columns (dtype): {listed}" if cols_n else "columns: none"]
    if body:
        if cols_n > MAX_COLUMNS:
            parts.append(f"(the table shows {MAX_COLUMNS} of the {cols_n:,} columns)")
        parts.append(_table(header, _with_gap(body, skipped, len(header))))
    return "\n".join(parts)


def _series(series: Any) -> str:
    length = len(series)
    name = "" if series.name is None else f" {series.name!r}"
    positions, skipped = _edges(length)
    index = list(series.index[positions]) if positions else []
    body = [[label, series.iloc[i]] for i, label in zip(positions, index)]
    parts = [f"Series{name}: {length:,} values, dtype {series.dtype}"]
    if body:
        parts.append(_table(["", "value"], _with_gap(body, skipped, 2)))
    return "\n".join(parts)


def _array(array: Any) -> str:
    shape = tuple(array.shape)
    head = f"ndarray: shape {shape}, dtype {array.dtype}"
    if array.ndim == 1:
        positions, skipped = _edges(shape[0])
        body = [[i, array[i]] for i in positions]
        return head + ("\n" + _table(["", "value"], _with_gap(body, skipped, 2)) if body else "")
    if array.ndim == 2:
        picks = _column_picks(shape[1])
        positions, skipped = _edges(shape[0])
        body = [[i] + ["…" if j is None else array[i, j] for j in picks] for i in positions]
        header = [""] + ["…" if j is None else str(j) for j in picks]
        return head + ("\n" + _table(header, _with_gap(body, skipped, len(header)))
                       if body else "")
    import numpy  # an ndarray exists, so numpy is imported already

    # numpy summarises other dimensions itself ("..." past its threshold).
    return head + "\n" + numpy.array2string(array, threshold=100, edgeitems=2)


def compact(value: Any) -> str | None:
    """A DataFrame, Series or ndarray written for a prompt; None for any other value (and
    when pandas or numpy fails to answer: the caller then uses ``str(value)``)."""
    kind = _kind(value)
    if kind is None:
        return None
    try:
        if kind == "DataFrame":
            return _frame(value)
        if kind == "Series":
            return _series(value)
        return _array(value)
    except Exception:  # noqa: BLE001 - an unusual dtype or index: fall back to str()
        return None


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with a note saying how much was cut (0: no
    limit)."""
    if limit <= 0 or len(text) <= limit:
        return text
    return f"{text[:limit]}\n… [cut: {limit:,} of {len(text):,} characters shown]"
