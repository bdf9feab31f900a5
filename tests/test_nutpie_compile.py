"""hierreg's nutpie callbacks compute what nutpie's own compute, and are cached on disk."""

import ctypes

import numpy as np
import nutpie
import pymc as pm
import pytest

from hierreg.sampling.nutpie_compile import (
    _layout,
    compile_numba,
    lean_callbacks_supported,
    make_c_logp_func,
)


def _containers(n_rows: int, seed: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, n_rows).astype(np.int32)
    X = rng.normal(size=(n_rows, 2))
    y = 1.0 + shift + np.array([-1.0, 0.0, 1.0])[g] + X @ [0.5, -0.3] + rng.normal(0, 0.5, n_rows)
    return {"X": X, "g": g, "y": y, "scale": np.array(2.0), "loc": np.array([0.0, 0.1, -0.1])}


def _model() -> pm.Model:
    """Containers of every kind: 2-D and 1-D float, 1-D int32 (index), 0-d, static 1-D."""
    data = _containers(60, seed=0)
    with pm.Model() as model:
        X = pm.Data("X", data["X"])
        g = pm.Data("g", data["g"])
        y = pm.Data("y", data["y"])
        scale = pm.Data("scale", data["scale"])
        loc = pm.Data("loc", data["loc"], shape=(3,))
        a = pm.Normal("a", loc, scale)
        b = pm.Normal("b", 0.0, scale, shape=2)
        sigma = pm.HalfNormal("sigma", scale)
        pm.Deterministic("spread", a.max() - a.min())
        pm.Normal("obs", a[g] + pm.math.dot(X, b), sigma, observed=y)
    return model


def _pointer(a: np.ndarray):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


def _logp(compiled, x: np.ndarray) -> tuple[int, float, np.ndarray]:
    """Call the compiled C callback as nutpie does: (status, log density, gradient)."""
    grad, logp = np.zeros(compiled.n_dim), np.zeros(1)
    status = compiled.compiled_logp_func.ctypes(
        len(x), _pointer(x), _pointer(grad), _pointer(logp), compiled.user_data.ctypes.data
    )
    return status, logp[0], grad


def _expand(compiled, x: np.ndarray) -> tuple[int, np.ndarray]:
    out = np.zeros(compiled.n_expanded)
    status = compiled.compiled_expand_func.ctypes(
        len(x), len(out), _pointer(x), _pointer(out), compiled.user_data.ctypes.data
    )
    return status, out


def _draws(compiled, **data) -> np.ndarray:
    if data:
        compiled = compiled.with_data(**data)
    idata = nutpie.sample(
        compiled, draws=60, tune=60, chains=2, cores=1, seed=7, progress_bar=False
    )
    post = idata["posterior"]
    return np.concatenate([post[v].values.reshape(2, 60, -1) for v in ("a", "b", "sigma")], -1)


def test_the_installed_nutpie_has_the_hook_we_replace():
    # if this fails, nutpie changed its private layout: compile_numba falls back to the stock
    # (slower to compile) unpacking; update hierreg.sampling.nutpie_compile
    assert lean_callbacks_supported()


def test_lean_callbacks_compute_nutpies_values_before_and_after_new_data():
    model = _model()
    stock, lean = compile_numba(model, lean=False), compile_numba(model, lean=True)
    assert lean.compiled_logp_func is not stock.compiled_logp_func
    # new data of another length and location, swapped in without recompiling
    new = {k: v for k, v in _containers(150, seed=1, shift=3.0).items() if k != "loc"}
    new["loc"] = np.array([3.0, 4.0, 5.0])
    rng = np.random.default_rng(0)
    for pair in ((stock, lean), (stock.with_data(**new), lean.with_data(**new))):
        for _ in range(5):
            x = rng.normal(size=stock.n_dim)
            (s_status, s_logp, s_grad), (l_status, l_logp, l_grad) = (_logp(c, x) for c in pair)
            assert s_status == l_status == 0
            # equal up to rounding: the callbacks are optimised together with the model's
            # (fastmath) function, so the last bits of a sum may differ
            assert l_logp == pytest.approx(s_logp, rel=1e-12)
            np.testing.assert_allclose(l_grad, s_grad, rtol=1e-12, atol=1e-12)
            (s_status, s_out), (l_status, l_out) = (_expand(c, x) for c in pair)
            assert s_status == l_status == 0
            np.testing.assert_allclose(l_out, s_out, rtol=1e-12, atol=1e-12)
    # the new data changed the log density
    x = rng.normal(size=stock.n_dim)
    assert _logp(lean, x)[1] != pytest.approx(_logp(lean.with_data(**new), x)[1], rel=1e-3)
    # an error inside the model's function (rows of y and X that do not match) -> 1, as nutpie
    bad = {"y": np.zeros(7)}
    assert _logp(stock.with_data(**bad), x)[0] == _logp(lean.with_data(**bad), x)[0] == 1
    # nutpie's status codes: wrong dimension -> -1
    assert lean.compiled_logp_func.ctypes(
        stock.n_dim + 1, _pointer(x), _pointer(np.zeros(9)), _pointer(np.zeros(1)),
        lean.user_data.ctypes.data,
    ) == -1  # fmt: skip
    # and the draws follow the new data (intercepts near 1 + 3 + (-1, 0, 1))
    new_draws = _draws(lean, **new)
    np.testing.assert_allclose(new_draws[..., :3].mean(axis=(0, 1)), [3.0, 4.0, 5.0], atol=0.4)


def test_a_record_of_another_layout_goes_to_the_fallback():
    shared = {"k": np.zeros(3)}
    odd = np.dtype(
        [("shared", [("data", [("k", np.uint32)]), ("size", [("k", np.uint32)]),
                     ("shape", [("k", np.uint32, (1,))])])]
    )  # fmt: skip
    assert _layout(shared, ["k"], odd) is None
    user_data = np.zeros((), dtype=odd)
    called = []
    result = make_c_logp_func(
        3, None, user_data, ["k"], shared, fallback=lambda *args: called.append(args) or "stock"
    )
    assert result == "stock" and len(called) == 1
    with pytest.raises(ValueError, match="unknown layout"):
        make_c_logp_func(3, None, user_data, ["k"], shared)


def test_layout_reads_nutpie_record_offsets():
    from nutpie.compile_pymc import make_user_data

    shared = {"a": np.zeros((4, 2)), "b": np.zeros(5, dtype=np.int32), "c": np.array(1.0)}

    class Var:  # what make_user_data reads of a shared variable
        def __init__(self, ndim):
            self.ndim = ndim

    record = make_user_data({Var(v.ndim): k for k, v in shared.items()}, shared).dtype
    layout = _layout(shared, list(shared), record)
    words = np.zeros((), dtype=record)
    raw = words.reshape(1).view(np.uint64)
    assert raw.size == record.itemsize // 8
    for key, (data_word, shape_words) in zip(shared, layout, strict=True):
        assert len(shape_words) == shared[key].ndim
        words["shared"]["data"][key] = 1000 + data_word
        assert raw[data_word] == 1000 + data_word


_CHILD = """
import json
from hierreg.sampling.nutpie_compile import compile_numba
from tests.test_nutpie_compile import _draws, _model
compiled = compile_numba(_model())
hits = [compiled.compiled_logp_func.cache_hits, compiled.compiled_expand_func.cache_hits]
print(json.dumps({"hits": hits, "draws": _draws(compiled).tolist()}))
"""


def _child() -> dict:
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=root, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_later_process_loads_both_callbacks_from_the_disk_cache():
    # compiled here first, so that both children find PyTensor's function of the model on
    # disk and differ only in where the callbacks come from
    here = _draws(compile_numba(_model()))
    first = _child()  # compiles the callbacks, or loads them if an earlier run saved them
    second = _child()
    assert second["hits"] == [1, 1]
    np.testing.assert_array_equal(second["draws"], first["draws"])
    # a process that compiled the model's function itself has numba inline it into the
    # callbacks (fastmath: other rounding, so other trajectories): the same posterior, not
    # always the same bits (they are the same when this process loaded it from disk too)
    there = np.asarray(second["draws"])
    sd = here.std(axis=(0, 1))
    assert np.all(np.abs(here.mean(axis=(0, 1)) - there.mean(axis=(0, 1))) < 0.5 * sd)


def test_every_lean_model_passes_the_self_check():
    from hierreg.sampling.nutpie_compile import _agrees_with_model

    compiled = compile_numba(_model())
    assert _agrees_with_model(compiled) is None


def test_a_wrong_record_layout_is_caught_and_nutpie_own_callbacks_used(monkeypatch):
    """What the version bound cannot catch: a layout that changed under the same signature.
    Here the containers' data pointers are read from each other's slots."""
    import hierreg.sampling.nutpie_compile as nc

    real_layout = nc._layout

    def shuffled(shared_data, keys, record_dtype):
        layout = real_layout(shared_data, keys, record_dtype)
        if layout is None or len(layout) < 2:
            return layout
        (p0, s0), (p1, s1), *rest = layout
        return [(p1, s0), (p0, s1), *rest]  # a float matrix read as the int index, etc.

    monkeypatch.setattr(nc, "_layout", shuffled)
    monkeypatch.setattr(nc, "_lean_disabled", False)
    model = _model()
    with pytest.warns(nc.LeanCallbackWarning, match="disagree with the model"):
        compiled = nc.compile_numba(model)
    assert nc._lean_disabled  # the rest of the process uses nutpie's callbacks
    x = np.random.default_rng(3).normal(size=compiled.n_dim)
    status, logp, grad = _logp(compiled, x)
    want_logp, want_grad = compiled.logp_func(x)
    assert status == 0 and logp == pytest.approx(float(want_logp), rel=1e-10)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10)


def test_other_threads_get_stock_nutpie_and_numba_while_hierreg_compiles():
    """The replacements act only in the compiling thread: elsewhere numba.cfunc caches
    nothing it was not asked to, and nutpie's factories are nutpie's."""
    import threading

    import numba

    import hierreg.sampling.nutpie_compile as nc

    compile_numba(_model())  # installs the hooks
    seen = {}

    def elsewhere():
        seen["active"] = nc._thread_state().active
        cf = numba.cfunc("float64(float64)")(lambda v: 2.0 * v)
        seen["cache"] = type(cf._cache).__name__
        seen["value"] = cf.ctypes(2.0)

    state = nc._thread_state()
    state.active = True  # as inside compile_numba
    try:
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
    finally:
        state.active = False
    assert seen == {"active": False, "cache": "NullCache", "value": 4.0}
