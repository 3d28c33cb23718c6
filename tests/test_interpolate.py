"""{var} interpolation: names, attributes, literal indexes; the rest left as written."""

from chatmagic.interpolate import interpolate


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

from chatmagic import scrub  # noqa: E402
from chatmagic.errors import OptionError  # noqa: E402

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
