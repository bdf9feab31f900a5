import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hierreg import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_shrinkage_draws_one_arrow_per_county(radon_fits):
    ax = plots.shrinkage(radon_fits["none"], radon_fits["partial"])
    arrows = [c for c in ax.texts if c.arrow_patch is not None]
    assert len(arrows) == 85
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Intercept", "floor")
    start = ax.collections[0].get_offsets()
    end = ax.collections[1].get_offsets()
    np.testing.assert_allclose(end, radon_fits["partial"].coef_.to_numpy())
    # shrinkage: partial-pooling points are less spread than the unpooled ones
    assert np.std(end[:, 0]) < np.std(start[:, 0])


def test_shrinkage_needs_grouped_fits(radon_fits):
    with pytest.raises(ValueError, match="two grouped fits"):
        plots.shrinkage(radon_fits["complete"], radon_fits["partial"])


def test_group_lines_panels(radon, radon_fits):
    groups = ["CASS", "CROW WING", "FREEBORN"]
    axes = plots.group_lines(
        radon_fits["complete"],
        radon_fits["none"],
        radon_fits["partial"],
        groups=groups,
        x="floor",
        data=radon,
        n_lines=5,
    )
    assert [a.get_title() for a in axes] == groups
    # per estimator: 5 posterior lines + 1 mean line
    assert len(axes[0].lines) == 3 * 6
    mean_line = axes[0].lines[-1]
    expected = radon_fits["partial"].predict(
        __import__("pandas").DataFrame({"floor": mean_line.get_xdata(), "county": "CASS"})
    )
    np.testing.assert_allclose(mean_line.get_ydata(), expected)


def test_forest_sorted_with_population_line(radon_fits):
    ax = plots.forest(radon_fits["partial"], term="floor")
    means = ax.lines[0].get_xdata()
    assert len(means) == 85 and np.all(np.diff(means) >= 0)
    assert ax.lines[-1].get_xdata()[0] == pytest.approx(
        radon_fits["partial"].population_coef_["floor"]
    )
    with pytest.raises(ValueError, match="term 'slope' is not one of"):
        plots.forest(radon_fits["partial"], term="slope")
