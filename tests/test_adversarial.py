"""An adversarial battery: tampered model files, faults during a save, interrupts, damaged
compile caches, silent-wrong-answer inputs and CLI misuse. Each case asserts its exact
outcome (the exception and its message, or the state left behind)."""

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest
import xarray as xr

import hierreg.design._formulae as formulae_module
import hierreg.results.atomic as atomic
import hierreg.sampling.compiled as compiled_cache
from hierreg import CompileCacheWarning, HierarchicalLinearRegression
from hierreg.cli import main
from hierreg.results import persistence
from hierreg.sampling.compile_cache import healing
from hierreg.sampling.samplers import interrupts_propagate
from tests.conftest import fit_quietly, simulate_groups

TINY = dict(draws=30, tune=30, chains=1, progressbar=False, random_state=0)
FRAME, _ = simulate_groups(n_groups=4, n_per_group=8, seed=11)


def _fit(formula="y ~ x + np.log(2 + x ** 2)", frame=FRAME, **params):
    params = {"group": "g", **TINY, **params}
    return fit_quietly(HierarchicalLinearRegression(formula, **params), frame)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("adversarial") / "model"
    _fit().save(path)
    return path


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("adversarial_other") / "model"
    frame, _ = simulate_groups(n_groups=5, n_per_group=6, seed=12)
    _fit(frame=frame.assign(g=frame["g"].str.upper())).save(path)
    return path


@pytest.fixture
def copy(model_dir, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(model_dir, target)
    return target


@pytest.fixture
def no_formula_evaluation(monkeypatch):
    """Fail if formulae evaluates any formula (a refused file must run nothing)."""

    def fail(*args, **kwargs):
        raise AssertionError("a formula was evaluated")

    monkeypatch.setattr(formulae_module, "design_matrices", fail)


def _meta(path):
    return json.loads((path / "model.json").read_text())


def _write_meta(path, meta, reseal=True):
    """Write model.json; ``reseal`` recomputes its checksum, as a deliberate tamperer would."""
    if reseal and "integrity" in meta:
        meta["integrity"]["metadata"] = persistence._metadata_digest(meta)
    (path / "model.json").write_text(json.dumps(meta))


def _edit(path, edit, reseal=True):
    meta = _meta(path)
    edit(meta)
    _write_meta(path, meta, reseal)


def _write_posterior(path, data: bytes):
    """Replace posterior.nc and reseal both checksums."""
    (path / "posterior.nc").write_bytes(data)
    meta = _meta(path)
    meta["integrity"]["posterior"] = hashlib.sha256(data).hexdigest()
    _write_meta(path, meta)


def _edit_posterior(path, edit):
    with xr.open_datatree(path / "posterior.nc", engine="h5netcdf") as tree:
        tree = tree.load()
    tree = edit(tree) or tree
    _write_posterior(path, bytes(tree.to_netcdf(None, engine="h5netcdf")))


def _load(path):
    return HierarchicalLinearRegression.load(path)


# --- load: formulas are data --------------------------------------------------------------

INJECTED_DESIGN_FORMULAS = [
    "scale.__init__.__globals__(x)",
    "C.__globals__.get(x)",
    "np.log.__class__(x)",
    "x.__class__",
    "__import__(x)",
    "exec(x)",
    "os.system(x)",
    "np.load(x)",
    "{x.__class__}",
    "x + `__builtins__`",
    "center(x) + eval(x)",
    "np.lib.npyio.load(x)",
    "undefined_name + x",
]


@pytest.mark.parametrize("formula", INJECTED_DESIGN_FORMULAS)
def test_load_refuses_an_injected_design_formula_before_evaluating_it(
    copy, formula, no_formula_evaluation
):
    _edit(copy, lambda m: m["design"].update(formula=formula))
    with pytest.raises(ValueError, match=r"\(design\.formula\) .* is (refused: |not a formula)"):
        _load(copy)


@pytest.mark.parametrize(
    "formula", ["y ~ os.system(x)", "y ~ x.__class__", "y ~ x + (1 | g.__dict__)"]
)
def test_load_refuses_an_injected_parameter_formula(copy, formula, no_formula_evaluation):
    """``params.formula`` is evaluated by a refit of the loaded estimator: same allow-list."""
    _edit(copy, lambda m: m["params"].update(formula=formula))
    with pytest.raises(ValueError, match=r"\(params\.formula\) .* is (refused: |not a formula)"):
        _load(copy)


def test_the_allowed_formula_still_loads_and_predicts(copy):
    back = _load(copy)
    np.testing.assert_array_equal(back.predict(FRAME), _load(copy).predict(FRAME))
    assert back.terms_ == ["Intercept", "x", "np.log(2 + x ** 2)"]


# --- load: a strict schema --------------------------------------------------------------

SCHEMA_CASES = [
    ("format_version True", lambda m: m.update(format_version=True), "positive integer"),
    ("format_version -7", lambda m: m.update(format_version=-7), "positive integer"),
    ("format_version text", lambda m: m.update(format_version="2"), "positive integer"),
    ("missing response", lambda m: m["design"].pop("response"), "'design.response' is missing"),
    ("missing params", lambda m: m.pop("params"), "'params' is missing"),
    ("extra top-level", lambda m: m.update(payload="x"), "'payload' is not a field"),
    ("extra parameter", lambda m: m["params"].update(evil=1), "'params.evil' is not a field"),
    ("n_features_in text", lambda m: m.update(n_features_in="3"), "'n_features_in' must be an"),
    ("pooling unknown", lambda m: m["structure"].update(pooling="sideways"), "one of"),
    ("draws zero", lambda m: m["params"].update(draws=0), "'params.draws' must be a positive"),
    ("draws bool", lambda m: m["params"].update(draws=True), "'params.draws' must be an integ"),
    ("seed text", lambda m: m["params"].update(random_state="abc"), "'params.random_state'"),
    ("sampler unknown", lambda m: m["params"].update(sampler="evil"), "'params.sampler'"),
    ("terms not a list", lambda m: m["design"].update(terms="Intercept"), "'design.terms' must"),
    ("label object", lambda m: m["design"]["groups"].__setitem__(0, {}), r"'design.groups\[0\]'"),
    ("prior sd < 0", lambda m: m["priors"]["coef"][0]["params"].update(sigma=-1.0), "> 0"),
    ("prior mu NaN", lambda m: m["priors"]["coef"][0]["params"].update(mu=float("nan")), "finite"),
    ("prior unknown", lambda m: m["priors"]["tau"][0].update(distribution="Beta"), "not a prior"),
    ("prior params", lambda m: m["priors"]["sigma"]["params"].update(beta=1.0), "takes param"),
    ("prior support", lambda m: m["priors"]["tau"][0].update(distribution="Normal"), "positive"),
    ("varying short", lambda m: m["structure"]["varying"].pop(), "inconsistent: structure"),
    ("duplicate label", lambda m: m["design"]["groups"].__setitem__(1, "g00"), "repeats a label"),
    ("names vs count", lambda m: m.update(feature_names_in=["x"]), "feature_names_in and n_f"),
    (
        "unknown category",
        lambda m: m["design"]["categories"].update(z={"categories": [], "ordered": False}),
        "categories names",
    ),  # noqa: E501
    ("integrity algo", lambda m: m["integrity"].update(algorithm="md5"), "'integrity.algorithm'"),
    ("not hex", lambda m: m["integrity"].update(posterior="z" * 64), "64 lowercase hex"),
]


@pytest.mark.parametrize(
    "edit, match", [c[1:] for c in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES]
)
def test_load_refuses_a_field_that_is_missing_extra_or_mistyped(copy, edit, match):
    _edit(copy, edit)
    with pytest.raises(ValueError, match=match):
        _load(copy)


def test_load_refuses_metadata_edited_without_resealing(copy):
    _edit(copy, lambda m: m["params"].update(draws=29), reseal=False)
    with pytest.raises(ValueError, match="does not match its own checksum"):
        _load(copy)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"[1, 2]", "not a hierreg model file"),
        (b"[" * 100_000, "not valid JSON"),
        (b"\xff\xfe\x00 not utf-8", "not valid JSON"),
        (b"", "not valid JSON"),
    ],
    ids=["a list", "deep nesting", "not utf-8", "empty"],
)
def test_load_refuses_json_that_is_not_a_model(copy, content, match):
    (copy / "model.json").write_bytes(content)
    with pytest.raises(ValueError, match=match):
        _load(copy)


@pytest.mark.parametrize("limit", ["MAX_META_BYTES", "MAX_POSTERIOR_BYTES"])
def test_load_refuses_an_oversized_file_unread(copy, monkeypatch, limit):
    monkeypatch.setattr(persistence, limit, 100)
    with pytest.raises(ValueError, match="larger than hierreg reads from a saved model"):
        _load(copy)


# --- load: the two files belong together -----------------------------------------------


def test_swapped_labels_are_refused_not_permuted(copy):
    def swap(meta):
        groups = meta["design"]["groups"]
        groups[0], groups[1] = groups[1], groups[0]

    _edit(copy, swap)
    with pytest.raises(ValueError, match=r"labels of 'g' .* differ .*position 0: 'g00' vs 'g01'"):
        _load(copy)


def test_renamed_terms_are_refused(copy):
    def rename(meta):
        meta["design"]["terms"][1] = meta["priors"]["terms"][1] = "z"
        meta["params"]["formula"] = meta["params"]["formula"].replace("x +", "z +")

    _edit(copy, rename)
    with pytest.raises(ValueError, match="re-creates terms|labels of 'term'"):
        _load(copy)


def test_a_posterior_from_another_model_is_refused(copy, other_model_dir):
    _write_posterior(copy, (other_model_dir / "posterior.nc").read_bytes())
    with pytest.raises(ValueError, match="labels of 'g' in posterior.nc differ"):
        _load(copy)


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage" * 100, b"\x89HDF\r\n\x1a\n" + b"\x00" * 500],
    ids=["empty", "garbage", "hdf5 header only"],
)
def test_a_posterior_that_is_not_netcdf_is_refused(copy, data):
    _write_posterior(copy, data)
    with pytest.raises(ValueError, match="cannot be read as the netCDF posterior"):
        _load(copy)


def test_non_finite_draws_are_refused(copy):
    def poison(tree):
        posterior = tree["posterior"].to_dataset()
        beta = posterior["beta"].copy()
        beta[0, 0, 0, 0] = np.nan
        tree["posterior"] = posterior.assign(beta=beta)

    _edit_posterior(copy, poison)
    with pytest.raises(ValueError, match="draws of 'beta' are not all finite"):
        _load(copy)


def test_a_posterior_without_its_variables_is_refused(copy):
    def drop(tree):
        tree["posterior"] = tree["posterior"].to_dataset().drop_vars("sigma")

    _edit_posterior(copy, drop)
    with pytest.raises(ValueError, match="does not hold the posterior"):
        _load(copy)


def test_a_posterior_without_the_formula_columns_is_refused(copy):
    def drop(tree):
        tree["constant_data"] = tree["constant_data"].to_dataset().drop_vars("x")

    _edit_posterior(copy, drop)
    with pytest.raises(ValueError, match="constant_data lacks"):
        _load(copy)


def _with_version_2_priors(meta):
    """The priors as formats 1 and 2 held them: the default distributions' numbers."""
    priors = meta["priors"]
    meta["priors"] = {
        "terms": priors["terms"],
        "loc": [p["params"]["mu"] for p in priors["coef"]],
        "scale": [p["params"]["sigma"] for p in priors["coef"]],
        "group_sd_scale": [p["params"]["sigma"] for p in priors["tau"]],
        "sigma_rate": priors["sigma"]["params"]["lam"],
    }


def test_a_version_1_model_still_loads(copy):
    """Models written before the integrity record (format 1) load with their own check."""
    expected = _load(copy).priors_
    meta = _meta(copy)
    meta["format_version"] = 1
    meta["posterior_sha256"] = meta.pop("integrity")["posterior"]
    _with_version_2_priors(meta)
    _write_meta(copy, meta, reseal=False)
    back = _load(copy)
    assert back.terms_ == ["Intercept", "x", "np.log(2 + x ** 2)"]
    assert back.priors_ == expected


def test_a_version_2_model_still_loads(copy):
    expected = _load(copy).priors_
    meta = _meta(copy)
    meta["format_version"] = 2
    _with_version_2_priors(meta)
    _write_meta(copy, meta)
    assert _load(copy).priors_ == expected


# --- save: atomic ---------------------------------------------------------------------------


@pytest.fixture
def saved_pair(tmp_path):
    """An earlier model at a path, its predictions, and a different fitted estimator."""
    path = tmp_path / "model"
    first = _fit()
    first.save(path)
    second = _fit(draws=40)
    return path, first.predict(FRAME), second


def _assert_earlier_model_intact(path, predictions):
    back = _load(path)
    assert back.draws == 30
    np.testing.assert_array_equal(back.predict(FRAME), predictions)
    assert sorted(p.name for p in path.parent.iterdir()) == ["model"]  # nothing left over


def test_a_full_disk_during_a_save_keeps_the_earlier_model(saved_pair, monkeypatch):
    path, predictions, second = saved_pair
    real = atomic.write_file

    def full_disk(target, data):
        if target.name == "model.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(target, data)

    monkeypatch.setattr(persistence, "write_file", full_disk)
    with pytest.raises(OSError, match="No space left"):
        second.save(path)
    _assert_earlier_model_intact(path, predictions)


def test_a_failing_netcdf_writer_keeps_the_earlier_model(saved_pair, monkeypatch):
    path, predictions, second = saved_pair

    def broken(*args, **kwargs):
        raise RuntimeError("HDF5 error")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", broken)
    with pytest.raises(RuntimeError, match="HDF5 error"):
        second.save(path)
    _assert_earlier_model_intact(path, predictions)


def test_a_failing_swap_keeps_the_earlier_model(saved_pair, monkeypatch):
    path, predictions, second = saved_pair

    def refuse(a, b):
        raise PermissionError(errno.EACCES, "Permission denied", str(b))

    monkeypatch.setattr(atomic, "_exchange", refuse)
    with pytest.raises(PermissionError):
        second.save(path)
    _assert_earlier_model_intact(path, predictions)


def test_the_two_rename_fallback_restores_the_earlier_model_on_failure(saved_pair, monkeypatch):
    path, predictions, second = saved_pair
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    real_rename = os.rename

    def rename(src, dst):
        if ".saving-" in str(src) and str(dst) == str(path):
            raise OSError(errno.EIO, "I/O error")
        real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", rename)
    with pytest.raises(OSError, match="I/O error"):
        second.save(path)
    _assert_earlier_model_intact(path, predictions)


def test_the_two_rename_fallback_replaces_the_model(saved_pair, monkeypatch):
    path, _, second = saved_pair
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    second.save(path)
    assert _load(path).draws == 40
    assert sorted(p.name for p in path.parent.iterdir()) == ["model"]


def test_an_unwritable_location_keeps_the_earlier_model(saved_pair, monkeypatch):
    path, predictions, second = saved_pair

    def read_only(*args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(atomic.tempfile, "mkdtemp", read_only)
    with pytest.raises(PermissionError, match="Read-only"):
        second.save(path)
    _assert_earlier_model_intact(path, predictions)


def test_saving_over_a_model_replaces_it_whole(saved_pair):
    path, _, second = saved_pair
    second.save(path)
    back = _load(path)
    assert back.draws == 40 and sorted(p.name for p in path.iterdir()) == [
        "model.json",
        "posterior.nc",
    ]


def test_kill_9_during_a_save_keeps_the_earlier_model(saved_pair, tmp_path):
    """A child process saving over the model is killed while it writes the new files."""
    path, predictions, _ = saved_pair
    script = textwrap.dedent(
        f"""
        import os, signal, warnings
        warnings.simplefilter("ignore")
        import hierreg.results.persistence as persistence
        from hierreg import HierarchicalLinearRegression
        from tests.conftest import simulate_groups
        frame, _ = simulate_groups(n_groups=4, n_per_group=8, seed=11)
        est = HierarchicalLinearRegression("y ~ x", group="g", draws=40, tune=30, chains=1,
                                           progressbar=False, random_state=0).fit(frame)
        real = persistence.write_file
        def write_then_die(target, data):
            real(target, data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        persistence.write_file = write_then_die
        est.save({str(path)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd(), timeout=300)
    assert proc.returncode == -signal.SIGKILL
    back = _load(path)
    np.testing.assert_array_equal(back.predict(FRAME), predictions)
    leftovers = [p.name for p in path.parent.iterdir() if p.name != "model"]
    assert all(name.startswith(".model.saving-") for name in leftovers)


def test_save_refuses_a_file_and_leaves_it_alone(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    with pytest.raises(FileExistsError, match="is not a folder of a saved model"):
        _fit().save(target)
    assert target.read_text() == "mine"


def test_save_refuses_a_folder_of_other_files_and_leaves_them_alone(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(FileExistsError, match=r"holds files that are not part of a saved model"):
        _fit().save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["data.csv"]


# --- fit: silent wrong answers become errors before sampling -------------------------------

SILENT = [
    (
        "column named Intercept",
        dict(formula="y ~ x + Intercept"),
        lambda: (FRAME.assign(Intercept=FRAME["x"] * 2),),
        "column 'Intercept' used by the formula .* has the name of the intercept",
    ),
    (
        "Intercept column without formula",
        dict(formula=None),
        lambda: (FRAME.assign(Intercept=1.5)[["x", "Intercept", "g"]], FRAME["y"]),
        "two terms named 'Intercept'",
    ),
    (
        "array columns named alike",
        dict(formula=None),
        lambda: (FRAME[["x", "g"]].assign(x0=1.0).rename(columns={"x": 0}), FRAME["y"]),
        "two terms named 'x0'",
    ),
    (
        "response on the right",
        dict(formula="y ~ x + y"),
        lambda: (FRAME,),
        "column 'y' is the response .* and also a predictor",
    ),
    (
        "response inside a transform",
        dict(formula="y ~ x + np.exp(y)"),
        lambda: (FRAME,),
        "column 'y' is the response",
    ),
    (
        "y given and also a predictor",
        dict(formula="~ x"),
        lambda: (FRAME, FRAME["x"]),
        "column 'x' is the response",
    ),
    (
        "group column as predictor",
        dict(formula="y ~ x + g"),
        lambda: (FRAME,),
        "column 'g' is a grouping column and also a predictor",
    ),
    (
        "group term column as predictor",
        dict(formula="y ~ x + g + (1 | g)", group=None),
        lambda: (FRAME,),
        "column 'g' is a grouping column and also a predictor",
    ),
    (
        "nested factor part as predictor",
        dict(formula="y ~ x + s", group=["s", "s:g"]),
        lambda: (FRAME.assign(s=np.where(FRAME["g"] < "g02", 1.0, 2.0)),),
        "column 's' is a grouping column and also a predictor",
    ),
    (
        "group predictor that is the group",
        dict(formula="y ~ x", group_predictors=["g"]),
        lambda: (FRAME,),
        "column 'g' is a grouping column and also a predictor",
    ),
    (
        "misspelt group, complete pooling",
        dict(formula="y ~ x", group="gg", pooling="complete"),
        lambda: (FRAME,),
        "group column 'gg' is not a column of X",
    ),
    (
        "misspelt second factor, complete pooling",
        dict(formula="y ~ x", group=["g", "rater"], pooling="complete"),
        lambda: (FRAME,),
        "group column 'rater' is not a column of X",
    ),
]


@pytest.mark.parametrize("params, data, match", [c[1:] for c in SILENT], ids=[c[0] for c in SILENT])
def test_silent_inputs_are_errors_before_sampling(params, data, match, no_sampling):
    params = {"group": "g", **params}
    est = HierarchicalLinearRegression(**params, **TINY)
    with pytest.raises(ValueError, match=match):
        est.fit(*data())
    assert not hasattr(est, "idata_")


def test_group_column_as_predictor_is_fine_under_complete_pooling():
    est = _fit("y ~ x + g", pooling="complete")
    assert est.terms_[:2] == ["Intercept", "x"] and len(est.terms_) == 5


# --- predict: labels of another type ------------------------------------------------------


@pytest.fixture(scope="module")
def int_labelled():
    return _fit("y ~ x", frame=FRAME.assign(g=FRAME["g"].str[1:].astype(int)))


def test_string_labels_for_an_integer_group_are_refused(int_labelled):
    new = FRAME.assign(g=FRAME["g"].str[1:].astype(int).astype(str))
    with pytest.raises(ValueError, match=r"group column 'g' holds text labels at predict .*'0'"):
        int_labelled.predict(new)


def test_integer_labels_for_a_string_group_are_refused():
    est = _fit("y ~ x")
    with pytest.raises(ValueError, match="holds numeric labels at predict .* text labels at fit"):
        est.predict(FRAME.assign(g=np.arange(len(FRAME)) % 4))


def test_mixed_seen_and_mistyped_labels_are_refused(int_labelled):
    new = FRAME.assign(g=FRAME["g"].str[1:].astype(int)).astype({"g": object})
    new.loc[new.index[0], "g"] = "1"
    with pytest.raises(ValueError, match="holds text labels at predict"):
        int_labelled.predict(new)


def test_a_second_factor_with_mistyped_labels_is_refused():
    frame = FRAME.assign(r=np.arange(len(FRAME)) % 3)
    est = _fit("y ~ x", frame=frame, group=["g", "r"])
    with pytest.raises(ValueError, match="group column 'r' holds text labels"):
        est.predict(frame.assign(r=frame["r"].astype(str)))


def test_float_labels_equal_to_integer_labels_are_the_same_groups(int_labelled):
    new = FRAME.assign(g=FRAME["g"].str[1:].astype(int))
    np.testing.assert_array_equal(
        int_labelled.predict(new.astype({"g": float})), int_labelled.predict(new)
    )


def test_genuinely_new_labels_of_the_same_type_still_predict(int_labelled):
    new = FRAME.assign(g=100)
    assert np.isfinite(int_labelled.predict(new)).all()


# --- interrupts -----------------------------------------------------------------------------


def _interrupt_when_sampling(monkeypatch, after):
    """SIGINT ``after`` seconds into nutpie's sampling; returns the moment it was sent."""
    import nutpie

    sent = {}
    stock = nutpie.sample

    def start(*args, **kwargs):
        def fire():
            sent["at"] = time.perf_counter()
            signal.raise_signal(signal.SIGINT)

        threading.Timer(after, fire).start()
        return stock(*args, **kwargs)

    monkeypatch.setattr(nutpie, "sample", start)
    return sent


@pytest.mark.parametrize(
    "phase, settings, sample_kwargs",
    [
        ("tuning", dict(tune=10**6, draws=10), None),
        ("drawing", dict(tune=20, draws=10**6), None),
        ("tuning through pymc.sample", dict(tune=10**6, draws=10), {"nuts": {"max_treedepth": 5}}),
    ],
)
def test_ctrl_c_reaches_the_caller_and_leaves_the_estimator_as_it_was(
    monkeypatch, phase, settings, sample_kwargs
):
    est = _fit("y ~ x")
    before = est.idata_["posterior"].to_dataset().copy(deep=True)
    est.set_params(**settings, sample_kwargs=sample_kwargs, chains=2)
    sent = _interrupt_when_sampling(monkeypatch, after=0.5)
    with pytest.raises(KeyboardInterrupt):
        est.fit(FRAME)
    assert time.perf_counter() - sent["at"] < 2.0
    assert est.idata_["posterior"].to_dataset().identical(before)  # the earlier fit, whole
    assert est.diagnostics_["draws"] == 30


def test_interrupt_guard_restores_the_handler_and_is_inert_off_the_main_thread():
    handler = signal.getsignal(signal.SIGINT)
    with interrupts_propagate():
        assert signal.getsignal(signal.SIGINT) is not handler
    assert signal.getsignal(signal.SIGINT) is handler
    seen = []

    def worker():
        with interrupts_propagate():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [handler]


# --- the compile cache ------------------------------------------------------------------------


NUMBA_MODULE = """
import numba

@numba.njit(cache=True)
def double(x):
    return 2.0 * x


@numba.njit(cache=True)
def triple(x):
    return 3.0 * x
"""


def _cached_numba_function(folder, monkeypatch):
    """A fresh import of a module whose numba function numba caches beside it on disk."""
    (folder / "cached_mod.py").write_text(NUMBA_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    sys.modules.pop("cached_mod", None)
    import cached_mod

    return cached_mod


@pytest.mark.parametrize("suffix", [".nbi", ".nbc"])
def test_a_damaged_numba_cache_entry_is_removed_and_rebuilt(tmp_path, monkeypatch, suffix):
    double = _cached_numba_function(tmp_path, monkeypatch).double
    assert double(2.0) == 4.0  # compiled and saved (in __pycache__ beside the module)
    (entry,) = [p for p in tmp_path.rglob(f"cached_mod.double*{suffix}")]
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2])
    double = _cached_numba_function(tmp_path, monkeypatch).double
    with pytest.warns(CompileCacheWarning, match="could not be read .* compiled again"):
        result = healing(lambda: double(3.0))
    assert result == 6.0


def test_every_damaged_entry_of_one_compile_is_removed_once(tmp_path, monkeypatch):
    """As after an upgrade that moved a module the cached code refers to: one compile meets
    several unreadable entries, one at a time."""
    module = _cached_numba_function(tmp_path, monkeypatch)
    assert (module.double(2.0), module.triple(2.0)) == (4.0, 6.0)
    entries = sorted(tmp_path.rglob("cached_mod.*.nbi"))
    assert len(entries) == 2
    for entry in entries:
        entry.write_bytes(b"garbage")
    module = _cached_numba_function(tmp_path, monkeypatch)
    with pytest.warns(CompileCacheWarning, match="could not be read") as caught:
        result = healing(lambda: (module.double(3.0), module.triple(3.0)))
    assert result == (6.0, 9.0)
    assert len(caught) == 1  # one warning naming both
    assert all(entry.name in str(caught[0].message) for entry in entries)


def test_errors_that_are_not_the_cache_propagate_unhealed():
    def failing():
        raise ValueError("a real error")

    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileCacheWarning)
        with pytest.raises(ValueError, match="a real error"):
            healing(failing)


@pytest.mark.parametrize("home", ["/dev/null", "/proc/no-such-home"])
def test_an_unusable_home_moves_the_compile_cache_to_a_temporary_folder(home):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTENSOR_FLAGS", "PYTENSORRC")}
    env["HOME"] = home
    env["MPLCONFIGDIR"] = "/tmp"
    code = "import hierreg, pytensor; print(pytensor.config.base_compiledir)"
    proc = subprocess.run(
        [sys.executable, "-W", "always", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "CompileCacheWarning: the compile cache folder" in proc.stderr
    assert "hierreg-pytensor-" in proc.stdout


# --- determinism ---------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_posterior_whatever_the_cache_holds():
    frame, _ = simulate_groups(n_groups=10, n_per_group=6, seed=13)
    compiled_cache.clear_cache()
    first = _fit("y ~ x", frame=frame).idata_["posterior"]["beta"].values
    # other fits compile models with other slot counts, or share this one's
    _fit("y ~ x", frame=frame[frame["g"] < "g03"])
    _fit("y ~ x", frame=frame[frame["g"] < "g09"])
    again = _fit("y ~ x", frame=frame).idata_["posterior"]["beta"].values
    np.testing.assert_array_equal(first, again)
    compiled_cache.clear_cache()
    fresh = _fit("y ~ x", frame=frame).idata_["posterior"]["beta"].values
    np.testing.assert_array_equal(first, fresh)


# --- CLI ------------------------------------------------------------------------------------


def _run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        code = main(argv)
        raise SystemExit(code)
    err = capsys.readouterr().err
    return exit_info.value.code, err


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "train.csv"
    FRAME.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "make_out, match",
    [
        (
            lambda p: (p / "f.txt").write_text("x") and p / "f.txt",
            "is not a folder of a saved model",
        ),
        (
            lambda p: ((p / "d").mkdir(), (p / "d" / "a").write_text(""))[0] or p / "d",
            "holds files",
        ),
        (lambda p: (p / "f.txt").write_text("x") and p / "f.txt" / "m", "is a file, not a folder"),
    ],
    ids=["onto a file", "onto a folder of files", "under a file"],
)
def test_cli_fit_checks_out_before_fitting(tmp_path, csv, capsys, make_out, match, no_sampling):
    out = make_out(tmp_path)
    code, err = _run_cli(["fit", str(csv), "--formula", "y ~ x", "--out", str(out)], capsys)
    assert code == 2 and err.startswith("hierreg: error: ") and err.count("\n") == 1
    assert match in err


def test_cli_predict_refuses_a_tampered_model_in_one_line(copy, csv, capsys):
    _edit(copy, lambda m: m["design"].update(formula="os.system(x)"))
    code, err = _run_cli(["predict", str(copy), str(csv)], capsys)
    assert code == 2 and err.count("\n") == 1 and "is refused" in err


@pytest.mark.parametrize(
    "argv, match",
    [
        (
            ["fit", "x.csv", "--formula", "y ~ x", "--out", "m", "--draws", "0"],
            "must be a positive",
        ),
        (["predict"], "the following arguments are required"),
        (["bogus"], "invalid choice"),
    ],
)
def test_cli_argument_errors_are_one_line_without_usage(argv, match, capsys):
    code, err = _run_cli(argv, capsys)
    assert code == 2 and err.startswith("hierreg: error: ") and err.count("\n") == 1
    assert match in err and "usage:" not in err


def test_cli_unexpected_errors_and_interrupts_are_one_line(monkeypatch, csv, model_dir, capsys):
    import hierreg.cli as cli

    def bug(path):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "_read_csv", bug)
    code, err = _run_cli(["predict", str(model_dir), str(csv)], capsys)
    assert (
        code == 2
        and err
        == "hierreg: error: unexpected RuntimeError: boom (HIERREG_TRACEBACK=1 shows where)\n"
    )

    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_read_csv", interrupted)
    code, err = _run_cli(["predict", str(model_dir), str(csv)], capsys)
    assert code == 130 and err == "hierreg: interrupted\n"


def test_cli_radon_refuses_a_file_as_out_before_fitting(tmp_path, capsys, no_sampling):
    (tmp_path / "f").write_text("")
    code, err = _run_cli(["radon", "--out", str(tmp_path / "f")], capsys)
    assert code == 2 and "is a file, not a folder" in err
