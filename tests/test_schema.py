"""The strict schema: every missing, extra or mistyped field is named."""

import pytest

from hierreg.schema import AnyOf, Check, Choice, Fields, ListOf, MapOf, Optional, validate

SCHEMA = Fields(
    {
        "n": Check(int, lambda v: v > 0, "must be positive"),
        "x": float,
        "name": Optional(str),
        "mode": Choice(("a", "b")),
        "items": ListOf(Fields({"k": str}), 1),
        "map": MapOf(AnyOf((bool, ListOf(int)), "true/false or a list of integers")),
    }
)
GOOD = {"n": 1, "x": 2, "name": None, "mode": "a", "items": [{"k": "v"}], "map": {"a": [1]}}


def test_a_valid_document_passes():
    validate(GOOD, SCHEMA, where="doc")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("x"), "field 'x' is missing"),
        (lambda d: d.update(extra=1), "field 'extra' is not a field"),
        (lambda d: d.update(n=True), "field 'n' must be an integer, got true or false True"),
        (lambda d: d.update(n=0), "field 'n' must be positive, got 0"),
        (lambda d: d.update(x="1"), "field 'x' must be a number, got a string"),
        (lambda d: d.update(mode="c"), "field 'mode' must be one of 'a', 'b', got 'c'"),
        (lambda d: d.update(items=[]), "field 'items' must hold at least 1 item"),
        (lambda d: d["items"][0].update(k=1), r"field 'items\[0\].k' must be a string"),
        (lambda d: d["map"].update(b="x"), "field 'map.b' must be true/false or a list"),
        (lambda d: d.update(map=[]), "field 'map' must be an object, got a list"),
    ],
)
def test_each_problem_names_its_field(change, message):
    doc = {**GOOD, "items": [dict(GOOD["items"][0])], "map": dict(GOOD["map"])}
    change(doc)
    with pytest.raises(ValueError, match=f"^doc: {message}"):
        validate(doc, SCHEMA, where="doc")
