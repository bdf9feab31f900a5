import numpy as np
import pytest

from hierreg.datasets import list_datasets, load_dataset, load_radon


def test_load_radon_shape_and_columns():
    df = load_radon()
    assert df.shape == (919, 12)
    assert df["county"].nunique() == 85
    assert {"log_radon", "floor", "county", "log_uranium"} <= set(df.columns)
    assert set(df["floor"].unique()) == {0, 1}


def test_radon_matches_its_provenance():
    df = load_radon()
    np.testing.assert_allclose(df["log_radon"], np.log(df["radon_pCiL"] + 0.1), atol=1e-12)
    sizes = df.groupby("county").size()
    assert (sizes.min(), sizes.max(), sizes.median()) == (1, 116, 5)
    # CASS has no first-floor measurement (the notebook's point about prediction)
    assert (df.loc[df["county"] == "CASS", "floor"] == 0).all()
    # pooled OLS sanity figures from the data README
    X = np.column_stack([np.ones(len(df)), df["floor"]])
    beta = np.linalg.lstsq(X, df["log_radon"], rcond=None)[0]
    np.testing.assert_allclose(beta, [1.362, -0.586], atol=5e-4)


def test_load_returns_fresh_copy():
    a = load_radon()
    a.loc[0, "log_radon"] = 999.0
    assert load_radon().loc[0, "log_radon"] != 999.0


def test_list_datasets_names_radon():
    names = list_datasets()
    assert "radon" in names and "85 counties" in names["radon"]


@pytest.mark.parametrize("bad", ["radn", "", None, 3])
def test_unknown_dataset_is_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"unknown dataset .*available datasets: 'radon'"):
        load_dataset(bad)
