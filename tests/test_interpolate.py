"""{var} interpolation: names, attributes, literal indexes; the rest left as written."""

from chatmagic.interpolate import interpolate


def test_fields_resolve_from_the_namespace() -> None:
    ns = {"x": 3, "cfg": {"k": "v"}, "In": ["", "a = 1", "b"], "Out": {2: 42}, "s": "abc"}
    assert interpolate("{x} {cfg['k']} {In[1]} {Out[2]} {s.upper}", ns).startswith("3 v a = 1 42")


def test_unknown_names_and_code_are_left_alone() -> None:
    code = "def f(d): return {k: v for k, v in d.items()} {missing} {x[99]}"
    assert interpolate(code, {"x": [1]}) == code


def test_double_braces_escape() -> None:
    assert interpolate("{{x}} is {x}", {"x": 1}) == "{x} is 1"


def test_private_attributes_are_not_reached() -> None:
    assert interpolate("{x.__class__}", {"x": 1}) == "{x.__class__}"
