"""The allow-list for formulas read from files."""

import re

import pytest

from hierreg.design.formula_check import ALLOWED_CALLS, UnsafeFormulaError, check_formula_is_data

COLUMNS = {"x", "k", "a b"}


@pytest.mark.parametrize(
    "formula",
    [
        "x",
        "0 + x",
        "np.log(2 + x ** 2) + scale(x) + center(x)",
        'C(k, levels=["u", "v"]) + C(k, Treatment("u"))',
        "x:k + x*k + I(x ** 2) + {x + 1}",
        "`a b` + bs(x, df=3)",
        "np.power(x, 2) + np.exp(-x) + standardize(x)",
    ],
)
def test_formulas_of_columns_transforms_and_ufuncs_pass(formula):
    check_formula_is_data(formula, COLUMNS, where="f")


@pytest.mark.parametrize(
    "formula, reason",
    [
        ("os.system(x)", "is not an allowed call"),
        ("np.where(x > 0, x, 0)", "is not an allowed call"),
        ("scale.__init__.__globals__(x)", "contains '__'"),
        ("x.real", "is an attribute access"),
        ("y + x", "'y' is not a column the model reads"),
        ("`__class__`", "is not a column the model reads"),
        ("exec(x)", "is not an allowed call"),
    ],
)
def test_anything_else_is_refused_by_name(formula, reason):
    pattern = re.escape(f"f {formula!r} is refused: ") + ".*" + re.escape(reason)
    with pytest.raises(UnsafeFormulaError, match=pattern):
        check_formula_is_data(formula, COLUMNS, where="f")


def test_any_plain_name_passes_when_asked_but_calls_and_dots_are_still_checked():
    check_formula_is_data("y ~ x + z + (1 + x | g)", COLUMNS, where="f", any_plain_name=True)
    with pytest.raises(UnsafeFormulaError, match="not an allowed call"):
        check_formula_is_data("y ~ getattr(x)", COLUMNS, where="f", any_plain_name=True)
    with pytest.raises(UnsafeFormulaError, match="is an attribute access"):
        check_formula_is_data("y ~ z.real", COLUMNS, where="f", any_plain_name=True)


def test_a_column_named_with_a_dot_is_a_column():
    check_formula_is_data("x.y + x", {"x", "x.y"}, where="f")
    with pytest.raises(UnsafeFormulaError, match="attribute access"):
        check_formula_is_data("x.real", {"x", "x.y"}, where="f")


def test_the_allowed_calls_are_transforms_encodings_and_ufuncs_only():
    assert {"C", "scale", "center", "np.log", "np.exp"} <= ALLOWED_CALLS
    assert not {"np.where", "np.load", "eval", "np.lib"} & ALLOWED_CALLS
