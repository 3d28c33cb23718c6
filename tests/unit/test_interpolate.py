"""{var} interpolation: names, attributes, literal indexes; the rest left as written."""

from chatmagic.core.interpolate import interpolate


def test_fields_resolve_from_the_namespace() -> None:
    ns = {"x": 3, "cfg": {"k": "v"}, "In": ["", "a = 1", "b"], "Out": {2: 42}, "s": "abc"}
    assert interpolate("{x} {cfg['k']} {In[1]} {Out[2]} {s}", ns) == "3 v a = 1 42 abc"


def test_unknown_names_and_code_are_left_alone() -> None:
    code = "def f(d): return {k: v for k, v in d.items()} {missing} {x[99]}"
    assert interpolate(code, {"x": [1]}) == code


def test_double_braces_escape() -> None:
    assert interpolate("{{x}} is {x}", {"x": 1}) == "{x} is 1"


def test_private_attributes_are_not_reached() -> None:
    assert interpolate("{x.__class__}", {"x": 1}) == "{x.__class__}"


# -- only plain values; never a secret -------------------------------------------------
import os  # noqa: E402
import types  # noqa: E402

import pytest  # noqa: E402

from chatmagic.core import scrub  # noqa: E402
from chatmagic.core.errors import OptionError  # noqa: E402

KEY = "sk-interp-SECRET-0123456789abcd"


class Hooked:
    """Every way an attribute lookup could run code of ours."""

    plain_class_value = "class constant"
    __slots__ = ("slot", "__dict__")

    def __init__(self) -> None:
        self.slot = "in a slot"
        self.name = "in __dict__"
        self.calls: list[str] = []

    @property
    def prop(self) -> str:
        self.calls.append("prop")
        return "from a property"

    def __getattr__(self, name: str) -> str:
        self.calls.append(name)
        return f"made up {name}"

    def method(self) -> str:
        return "called"


class Items(dict):  # type: ignore[type-arg]
    def __getitem__(self, key: object) -> str:
        raise AssertionError("a custom __getitem__ ran")


def test_plain_attributes_resolve_and_no_object_code_runs() -> None:
    obj = Hooked()
    ns = {"o": obj, "m": types.SimpleNamespace(a=1)}
    assert interpolate("{o.name} {o.slot} {o.plain_class_value} {m.a}", ns) == \
        "in __dict__ in a slot class constant 1"
    assert interpolate("{o.prop} {o.hooked} {o.method} {o.calls.append}", ns) == \
        "{o.prop} {o.hooked} {o.method} {o.calls.append}"
    assert obj.calls == []  # neither the property nor __getattr__ ran


def test_items_only_of_built_in_containers() -> None:
    ns = {"d": Items(a=1), "t": ("x", "y"), "od": {"k": [1, 2]}}
    assert interpolate("{d['a']} {t[1]} {od['k'][0]}", ns) == "{d['a']} y 1"


def test_methods_are_not_sent_as_their_repr() -> None:
    assert interpolate("{s.upper} {f}", {"s": "abc", "f": len}) == "{s.upper} {f}"


def test_the_environment_is_never_interpolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_API_KEY", KEY)
    with pytest.raises(OptionError, match=r"\{os.environ\} is the process environment"):
        interpolate("my env: {os.environ}", {"os": os})
    assert interpolate("{os.environ['SOME_API_KEY']}", {"os": os}) == \
        "{os.environ['SOME_API_KEY']}"  # not a built-in container: left as written
    with pytest.raises(OptionError) as info:
        interpolate("copy: {env}", {"env": dict(os.environ)})
    assert "holds an API key (sk-…bcd)" in str(info.value) and KEY not in str(info.value)


def test_a_value_holding_a_known_key_is_refused() -> None:
    scrub.register(KEY + "-typed")
    with pytest.raises(OptionError, match=r"\{cfg\} holds an API key"):
        interpolate("{cfg}", {"cfg": {"api_key": KEY + "-typed"}})
    assert interpolate("{{cfg}}", {"cfg": KEY}) == "{cfg}"


def test_c_level_fields_of_arrays_resolve() -> None:
    np = pytest.importorskip("numpy")
    assert interpolate("{a.shape} {a.ndim}", {"a": np.zeros((2, 3))}) == "(2, 3) 2"


# -- notebook context: {Err}, compact data, cut fields -----------------------------------
from chatmagic.core.context import ErrorLog  # noqa: E402
from chatmagic.core.interpolate import fill  # noqa: E402


def _log(**errors: str) -> ErrorLog:
    log = ErrorLog()
    for name, text in errors.items():
        log.add(int(name.lstrip("c")), text)
    return log


def test_err_is_the_last_error_and_err_n_the_one_cell_n_raised() -> None:
    log = _log(c3="ZeroDivisionError: division by zero", c7="KeyError: 'x'")
    assert "Cell In[7] raised KeyError: 'x'" in interpolate("why? {Err}", {}, errors=log)
    assert "ZeroDivisionError" in interpolate("{Err[3]}", {}, errors=log)
    assert "KeyError" not in interpolate("{Err[ 3 ]}", {}, errors=log)
    assert interpolate("{{Err}} {Err.x}", {}, errors=log) == "{Err} {Err.x}"


def test_err_with_no_such_error_is_refused_before_sending() -> None:
    with pytest.raises(OptionError, match=r"\{Err\}: no cell has raised an error yet"):
        interpolate("{Err}", {"Err": "a variable is not used"}, errors=ErrorLog())
    with pytest.raises(OptionError, match=r"\{Err\[4\]\}: cell 4 raised no error \(errors "
                                          r"were raised by cells 3, 7\)"):
        interpolate("{Err[4]}", {}, errors=_log(c3="x", c7="y"))
    # without a log (the Python API) Err is an ordinary name
    assert interpolate("{Err}", {"Err": 1}) == "1"


def test_a_key_in_an_error_is_masked_not_sent() -> None:
    scrub.register(KEY + "-err")
    text = interpolate("{Err}", {}, errors=_log(c1=f"AuthError: bad key {KEY}-err"))
    assert KEY not in text and "AuthError: bad key sk-…err" in text


def test_long_fields_are_cut_saying_how_much() -> None:
    filled = fill("a {s} b {s} {n}", {"s": "x" * 10_000, "n": 5}, max_field_chars=1000)
    assert filled.text.count("x") == 2000 and len(filled.text) < 2200
    assert "… [cut: 1,000 of 10,000 characters shown]" in filled.text
    assert [(c.field, c.shown, c.total) for c in filled.cut] == [("{s}", 1000, 10_000)]
    assert fill("{s}", {"s": "x" * 10_000}, max_field_chars=0).text == "x" * 10_000
    assert fill("{s}", {"s": "short"}).cut == []


def test_a_key_past_the_cut_is_still_refused() -> None:
    scrub.register(KEY + "-late")
    with pytest.raises(OptionError, match=r"\{s\} holds an API key"):
        fill("{s}", {"s": "x" * 5000 + KEY + "-late"}, max_field_chars=100)


def test_a_thousand_row_frame_is_a_few_kb_with_shape_columns_and_dtypes() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"id": range(1000), "score": [i / 7 for i in range(1000)],
                       "label": [f"item|{i}\nline" for i in range(1000)]})
    text = interpolate("look at {df}", {"df": df})
    assert len(text) < 3000  # the whole frame is about 20 kB
    assert "DataFrame: 1,000 rows × 3 columns" in text
    assert "id (int64), score (float64), label (" in text
    lines = text.splitlines()
    assert "| 0 | 0 | 0.0 | item\\|0 line |" in lines  # one line a row, pipes escaped
    assert "| 999 | 999 | 142.71428571428572 | item\\|999 line |" in lines
    assert "| … | … | … | … |" in lines and "| 500 |" not in text
    assert interpolate("{Out[2]}", {"Out": {2: df}}) == text[len("look at "):]
    series = interpolate("{s}", {"s": df["score"]})
    assert series.startswith("Series 'score': 1,000 values, dtype float64") and \
        "| 999 | 142.71428571428572 |" in series and len(series) < 1000


def test_wide_frames_show_some_columns_and_list_every_dtype() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({f"c{i}": [i, i + 1] for i in range(60)})
    text = interpolate("{df}", {"df": df})
    assert "c59 (int64)" in text and "(the table shows 20 of the 60 columns)" in text
    header = next(line for line in text.splitlines() if line.startswith("|  |"))
    assert header.count("|") == 23 and "| … |" in header and "c59" in header


def test_arrays_are_written_compactly() -> None:
    np = pytest.importorskip("numpy")
    text = interpolate("{a}", {"a": np.arange(10_000).reshape(1000, 10)})
    assert text.startswith("ndarray: shape (1000, 10), dtype int64") and len(text) < 1500
    assert "| 999 | 9990 |" in text
    cube = interpolate("{c}", {"c": np.zeros((50, 50, 50))})
    assert cube.startswith("ndarray: shape (50, 50, 50)") and len(cube) < 2000


def test_look_alikes_are_not_taken_for_data() -> None:
    class Frame:
        shape = (1, 1)
        columns = ["a"]

        def __str__(self) -> str:
            return "my own frame"

    assert interpolate("{f}", {"f": Frame()}) == "my own frame"
