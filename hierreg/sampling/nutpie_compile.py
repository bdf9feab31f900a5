"""Compile a PyMC model with nutpie's numba backend, with leaner, disk-cached callbacks.

nutpie turns a model into two C callbacks compiled by numba: the log density with its
gradient, and the "expand" function that maps a draw to the stored values. Both get the
model's shared data (``pm.Data``) as one record of pointers, sizes and shapes. nutpie's own
callbacks unpack that record with a generic ``literal_unroll`` loop over a heterogeneous
tuple and copy their results with ``out[...] = x``; numba types and lowers this afresh for
every model (the callbacks close over the model's functions, so numba cannot cache them),
and ``out[...] = x`` makes it compile an error message once per process. On radon's
partial-pooling model (2 containers) the log-density callback took 3.0 s to compile in a
warm process, against 0.7 s with the data frozen as constants, and the error message 2.7 s
more in a fresh process.

:func:`compile_numba` calls :func:`nutpie.compile_pymc_model` unchanged, except that the two
callbacks are generated as straight-line source: one ``carray`` per container, read from
the same record at word offsets computed here, then the model's function (the only call
inside ``try``: numba's exception handling is slow to compile), then loops that copy the
results. That compiles in a fraction of the time (radon: 3.0 s -> 0.4 s). The
source is registered with PyTensor's numba cache under a key that hashes the source (which
spells out every constant: dimensions, offsets, dtypes) and the PyTensor cache key of the
model's function, so a later process compiling the same model structure loads both
callbacks from disk. The record, ``with_data`` and everything else stay nutpie's. If
nutpie's private functions or record layout are not the ones this module knows, nutpie's
own callbacks are used.

This is the one module that touches nutpie's and PyTensor's private API, so it guards it
three ways: pyproject.toml bounds both packages to the minor versions it was written for;
:func:`lean_callbacks_supported` checks the private functions' parameters; and every model
compiled with the lean callbacks is checked before it is used (:func:`_agrees_with_model`):
the callbacks' log density, gradient and expanded values must equal the model's own PyTensor
functions at a few points, else the model is compiled again with nutpie's own callbacks and a
:class:`LeanCallbackWarning` says so. The replacements are installed once, and act only in a
thread that is inside :func:`compile_numba`: any other thread compiling with nutpie or numba
at the same time gets their stock behaviour.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["LeanCallbackWarning", "compile_numba", "lean_callbacks_supported"]

# bump when the generated source changes meaning without changing its text
_SOURCE_VERSION = "hierreg-nutpie-callbacks-4"
_WORD = 8  # bytes of every field of nutpie's record (uintp pointers, sizes, uint shapes)
_install_lock = threading.Lock()
_installed = False
# per thread: whether it is inside compile_numba, and the ids of the generated callbacks it
# registered with a disk-cache key (numba.cfunc gives those cache=True)
_local = threading.local()
# set when a lean model disagreed with its own functions: the rest of the process uses
# nutpie's callbacks
_lean_disabled = False
# the self-check's tolerance: the lean and stock callbacks differ in the last bits (LLVM
# optimises the callback together with the fast-math model code), by ~1e-12 relative
_SELF_CHECK_RTOL = 1e-8


class LeanCallbackWarning(RuntimeWarning):
    """hierreg's lean nutpie callbacks disagreed with the model; nutpie's own are used."""


def _thread_state():
    if not hasattr(_local, "active"):
        _local.active = False
        _local.cacheable = set()
    return _local


# nutpie's private functions replaced during compile_numba, with the parameters they take
_HOOKS = {
    "_make_c_logp_func": ["n_dim", "logp_fn", "user_data", "shared_keys", "shared_data"],
    "_make_c_expand_func": [
        "n_dim", "n_expanded", "expand_fn", "user_data", "shared_var_keys", "shared_data",
    ],
}  # fmt: skip

_LOGP_SIGNATURE = ("int64", ("uint64", "double*", "double*", "double*", "voidptr"))
_EXPAND_SIGNATURE = ("int64", ("uint64", "uint64", "double*", "double*", "voidptr"))


def _leaf_offsets(dtype: np.dtype, base: int = 0, prefix: tuple = ()) -> dict:
    """Byte offset and dtype of every leaf field of a nested structured dtype."""
    out: dict[tuple, tuple[int, np.dtype]] = {}
    for name, (sub, offset, *_) in (dtype.fields or {}).items():
        if sub.fields:
            out.update(_leaf_offsets(sub, base + offset, (*prefix, name)))
        else:
            out[(*prefix, name)] = (base + offset, sub)
    return out


def _layout(
    shared_data: Mapping[str, np.ndarray], keys: Sequence[str], record_dtype: np.dtype
) -> list[tuple[int, list[int]]] | None:
    """(word of the data pointer, words of the shape) per container, or None if the record
    is not made of 8-byte words as expected."""
    if record_dtype.itemsize % _WORD:
        return None
    offsets = _leaf_offsets(record_dtype)
    layout = []
    for key in keys:
        data = offsets.get(("shared", "data", key))
        shape = offsets.get(("shared", "shape", key))
        ndim = np.asarray(shared_data[key]).ndim
        if data is None or (ndim and shape is None):
            return None
        if data[1].itemsize != _WORD or data[0] % _WORD:
            return None
        shape_words: list[int] = []
        if ndim:
            base, dt = shape
            if base % _WORD or dt.base.itemsize != _WORD or dt.shape != (ndim,):
                return None
            shape_words = [base // _WORD + j for j in range(ndim)]
        layout.append((data[0] // _WORD, shape_words))
    return layout


def _unpacking(
    shared_data: Mapping[str, np.ndarray], keys: Sequence[str], record_dtype: np.dtype
) -> tuple[list[str], str] | None:
    """Source lines that unpack the record into ``c0, c1, ...`` and the argument list
    ``", c0, c1"``; None if the record's layout is unknown."""
    layout = _layout(shared_data, keys, record_dtype)
    if layout is None:
        return None
    if not keys:
        return [], ""
    lines = [f"words = numba.carray(user_data_, ({record_dtype.itemsize // _WORD},), np.uint64)"]
    for i, (key, (data_word, shape_words)) in enumerate(zip(keys, layout, strict=True)):
        dtype = np.asarray(shared_data[key]).dtype
        if dtype.byteorder not in "=|" or dtype.fields is not None:
            return None
        dims = "".join(f"int(words[{w}]), " for w in shape_words)
        lines.append(
            f"c{i} = numba.carray(as_pointer(words[{data_word}]), ({dims}), np.{dtype.name})"
        )
    return lines, "".join(f", c{i}" for i in range(len(keys)))


def _register(source: str, name: str, inner) -> Callable:
    """Compile the generated ``source`` into a Python function, registered with PyTensor's
    numba disk cache when ``inner`` (the model's function) has a PyTensor cache key."""
    import numba
    from nutpie.compile_pymc import address_as_void_pointer
    from pytensor import config
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

    inner_key = CACHED_SRC_FUNCTIONS.get(getattr(inner, "py_func", None))
    key = None
    if inner_key is not None and config.numba__cache:
        text = "\n".join([_SOURCE_VERSION, inner_key, source])
        key = hashlib.sha256(text.encode()).hexdigest()
    # __name__: numba rebuilds a cached function's environment from an importable module
    env: dict[str, Any] = {"__name__": __name__, "numba": numba, "np": np, "inner": inner}
    env["as_pointer"] = address_as_void_pointer
    function = compile_numba_function_src(source, name, env, cache_key=key)
    if key is not None:
        _thread_state().cacheable.add(id(function))
    return function


def _body(lines: Sequence[str]) -> str:
    """``lines`` as statements of a function body (indented, one per line)."""
    return "".join(f"    {line}\n" for line in lines)


def make_c_logp_func(n_dim, logp_fn, user_data, shared_keys, shared_data, fallback=None):
    """Drop-in for ``nutpie.compile_pymc._make_c_logp_func``: the C callback
    ``logp(dim, x, grad_out, logp_out, user_data) -> status`` with nutpie's status codes
    (0 ok, -1 wrong dimension, 1 error, 3 non-finite gradient, 4 non-finite log density).
    A record of unknown layout goes to ``fallback`` (nutpie's own function)."""
    unpacking = _unpacking(shared_data, list(shared_keys), user_data.dtype)
    if unpacking is None:
        if fallback is None:
            raise ValueError("nutpie's shared-data record has an unknown layout")
        return fallback(n_dim, logp_fn, user_data, shared_keys, shared_data)
    lines, args = unpacking
    source = f"""\
def logp_numba(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    x = numba.carray(x_, ({n_dim},))
    out = numba.carray(out_, ({n_dim},))
    logp = numba.carray(logp_, (1,))
{_body(lines)}    try:
        logp_array, grad = inner(x{args})
    except:  # noqa: E722
        return 1
    if grad.size != {n_dim}:
        return 1
    logp_val = logp_array[()]  # a 0-d array; its cast to a scalar compiles ``take``
    logp[0] = logp_val
    finite = True
    for i in range(dim):  # the argument, not a constant: LLVM need not unroll
        out[i] = grad[i]
        if not np.isfinite(grad[i]):
            finite = False
    if not finite:
        return 3
    if not np.isfinite(logp_val):
        return 4
    return 0
"""
    return _register(source, "logp_numba", logp_fn), _signature(*_LOGP_SIGNATURE)


def make_c_expand_func(
    n_dim, n_expanded, expand_fn, user_data, shared_var_keys, shared_data, fallback=None
):
    """Drop-in for ``nutpie.compile_pymc._make_c_expand_func``: the C callback that maps a
    draw to the stored values (status 0 ok, -1 wrong dimension, -2 error)."""
    unpacking = _unpacking(shared_data, list(shared_var_keys), user_data.dtype)
    if unpacking is None:
        if fallback is None:
            raise ValueError("nutpie's shared-data record has an unknown layout")
        return fallback(n_dim, n_expanded, expand_fn, user_data, shared_var_keys, shared_data)
    lines, args = unpacking
    source = f"""\
def expand_numba(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim}:
        return -1
    if expanded != {n_expanded}:
        return -1
    x = numba.carray(x_, ({n_dim},))
    out = numba.carray(out_, ({n_expanded},))
{_body(lines)}    try:
        (values,) = inner(x{args})
    except:  # noqa: E722
        return -2
    if values.size != {n_expanded}:
        return -2
    for i in range(expanded):
        out[i] = values[i]
    return 0
"""
    return _register(source, "expand_numba", expand_fn), _signature(*_EXPAND_SIGNATURE)


def _signature(result: str, args: Sequence[str]):
    import numba

    def numba_type(name: str):
        if name.endswith("*"):
            return numba.types.CPointer(getattr(numba.types, name[:-1]))
        return getattr(numba.types, name)

    return numba_type(result)(*[numba_type(a) for a in args])


def _install_hooks() -> None:
    """Replace nutpie's two private callback factories and ``numba.cfunc``, once per process,
    by functions that act only in a thread inside :func:`compile_numba` and otherwise call
    the originals unchanged."""
    global _installed
    import numba
    import nutpie.compile_pymc as ncp

    with _install_lock:
        if _installed:
            return
        stock_logp = ncp._make_c_logp_func
        stock_expand = ncp._make_c_expand_func
        stock_cfunc = numba.cfunc

        @functools.wraps(stock_logp)
        def logp_hook(*args, **kwargs):
            if not _thread_state().active:
                return stock_logp(*args, **kwargs)
            return make_c_logp_func(*args, fallback=stock_logp, **kwargs)

        @functools.wraps(stock_expand)
        def expand_hook(*args, **kwargs):
            if not _thread_state().active:
                return stock_expand(*args, **kwargs)
            return make_c_expand_func(*args, fallback=stock_expand, **kwargs)

        @functools.wraps(stock_cfunc)
        def cfunc_hook(*args, **kwargs):
            state = _thread_state()
            if not state.active:
                return stock_cfunc(*args, **kwargs)

            def apply(pyfunc):
                cache = {"cache": True} if id(pyfunc) in state.cacheable else {}
                return stock_cfunc(*args, **{**kwargs, **cache})(pyfunc)

            return apply

        ncp._make_c_logp_func = logp_hook
        ncp._make_c_expand_func = expand_hook
        numba.cfunc = cfunc_hook
        _installed = True


def lean_callbacks_supported() -> bool:
    """Whether the installed nutpie has the private functions this module replaces, with
    the parameters it knows."""
    try:
        import nutpie.compile_pymc as ncp
        import pytensor.link.numba.cache  # noqa: F401
    except ImportError:
        return False
    if not hasattr(ncp, "address_as_void_pointer"):
        return False
    for name, expected in _HOOKS.items():
        hook = getattr(ncp, name, None)
        if hook is None:
            return False
        try:
            params = list(inspect.signature(hook).parameters)
        except (TypeError, ValueError):
            return False
        if params != expected:
            return False
    return True


def compile_numba(model, lean: bool = True):
    """``nutpie.compile_pymc_model(model, backend="numba")``, with the lean, disk-cached
    callbacks when ``lean`` and the installed nutpie supports them (else nutpie's own).

    A model compiled with the lean callbacks is checked against its own PyTensor functions
    (:func:`_agrees_with_model`); if they disagree, it is compiled again with nutpie's
    callbacks, with a :class:`LeanCallbackWarning`.

    Returns
    -------
    nutpie's compiled model (``CompiledPyMCModel``).
    """
    global _lean_disabled
    import nutpie

    if not (lean and not _lean_disabled and lean_callbacks_supported()):
        return nutpie.compile_pymc_model(model, backend="numba")
    _install_hooks()
    state = _thread_state()
    state.active = True
    try:
        compiled = nutpie.compile_pymc_model(model, backend="numba")
    finally:
        state.active = False
        state.cacheable.clear()
    problem = _agrees_with_model(compiled)
    if problem is None:
        return compiled
    _lean_disabled = True
    warnings.warn(
        f"hierreg's compiled nutpie callbacks disagree with the model ({problem}); nutpie's "
        "own callbacks are used for the rest of this process (slower to compile). Please "
        "report this with your nutpie and pytensor versions.",
        LeanCallbackWarning,
        stacklevel=3,
    )
    return nutpie.compile_pymc_model(model, backend="numba")


def _agrees_with_model(compiled, n_points: int = 3) -> str | None:
    """None if the compiled callbacks give the log density, its gradient and the expanded
    values of the model's own PyTensor functions at ``n_points`` points; else what differs.

    Catches what the version bounds cannot: a record layout, an argument order or a status
    code that changed under the same signatures.
    """
    import ctypes

    n_dim, n_expanded = compiled.n_dim, compiled.n_expanded
    double_p = ctypes.POINTER(ctypes.c_double)
    user_data = ctypes.c_void_p(compiled.user_data.ctypes.data)
    logp_c = compiled.compiled_logp_func.ctypes
    expand_c = compiled.compiled_expand_func.ctypes
    rng = np.random.default_rng(20261202)
    for i in range(n_points):
        x = np.zeros(n_dim) if i == 0 else rng.normal(0.0, 0.5, n_dim)
        grad, logp, expanded = np.zeros(n_dim), np.zeros(1), np.zeros(n_expanded)
        try:
            status = logp_c(
                n_dim, x.ctypes.data_as(double_p), grad.ctypes.data_as(double_p),
                logp.ctypes.data_as(double_p), user_data,
            )  # fmt: skip
            expand_status = expand_c(
                n_dim, n_expanded, x.ctypes.data_as(double_p),
                expanded.ctypes.data_as(double_p), user_data,
            )  # fmt: skip
            want_logp, want_grad = (np.asarray(v, dtype=float) for v in compiled.logp_func(x))
            want_expanded = np.concatenate(
                [np.asarray(v, dtype=float).ravel() for v in compiled.expand_func(x)]
            )
        except Exception as err:  # the model's own functions failed: nothing to compare
            return f"evaluating at a test point raised {type(err).__name__}: {err}"
        finite = np.isfinite(want_logp) and np.isfinite(want_grad).all()
        if finite and status != 0:
            return f"log-density status {status} at a point where the model is finite"
        if expand_status != 0:
            return f"expand status {expand_status}"
        if finite and not np.allclose(logp[0], want_logp, rtol=_SELF_CHECK_RTOL, atol=0):
            return f"log density {logp[0]!r} vs the model's {float(want_logp)!r}"
        if finite and not np.allclose(grad, want_grad, rtol=_SELF_CHECK_RTOL, atol=1e-12):
            return "gradient differs"
        if want_expanded.shape != expanded.shape or not np.allclose(
            expanded, want_expanded, rtol=_SELF_CHECK_RTOL, atol=1e-12, equal_nan=True
        ):
            return "expanded values differ"
    return None
