"""Compile a PyMC model with nutpie's numba backend, with a leaner data-extraction wrapper.

nutpie hands its numba callbacks the model's shared data (``pm.Data``) as one record of
pointers, sizes and shapes, and unpacks it with a generic ``literal_unroll`` loop over a
heterogeneous tuple. Numba types and lowers that loop afresh for every model, and the
callback cannot be cached on disk, so for a model with data containers it dominates the
first fit: on radon (2 containers) the log-density callback took 3.0 s to compile against
0.7 s for the same model with its data frozen as constants.

:func:`compile_numba` calls :func:`nutpie.compile_pymc_model` unchanged, except that the
unpacking is generated as straight-line code (one ``carray`` per container, read from the
same record at offsets computed here), which types in a fraction of the time (radon: 3.0 s
-> 0.95 s for the callback). The record, ``with_data`` and everything else stay nutpie's.
If nutpie's private layout is not the one this module knows, the stock wrapper is used.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["compile_numba", "lean_extraction_supported"]

_WORD = 8  # bytes of every field of nutpie's record (uintp pointers, sizes, uint shapes)
_patch_lock = threading.Lock()


def _leaf_offsets(dtype: np.dtype, base: int = 0, prefix: tuple = ()) -> dict:
    """Byte offset and dtype of every leaf field of a nested structured dtype."""
    out: dict[tuple, tuple[int, np.dtype]] = {}
    for name, (sub, offset, *_) in dtype.fields.items():
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


def make_lean_extraction_fn(inner, shared_data, shared_var_keys, record_dtype, fallback=None):
    """Drop-in for ``nutpie.compile_pymc.make_extraction_fn``: a numba function
    ``extract(x, user_data_ptr)`` returning ``inner(x, *containers)``.

    The generated code reads the record as ``uint64`` words: for container ``i``,
    ``carray(pointer(words[p]), (words[s0], ...), dtype)``, a C-contiguous array of the
    container's dtype and number of dimensions, as nutpie's own unpacking returns. A record
    of another layout goes to ``fallback`` (nutpie's own function).
    """
    import numba
    from nutpie.compile_pymc import address_as_void_pointer

    keys = list(shared_var_keys)
    layout = _layout(shared_data, keys, record_dtype) if keys else []
    if layout is None:
        if fallback is None:
            raise ValueError("nutpie's shared-data record has an unknown layout")
        return fallback(inner, shared_data, shared_var_keys, record_dtype)
    env: dict[str, Any] = {
        "numba": numba,
        "np": np,
        "inner": inner,
        "as_pointer": address_as_void_pointer,
    }
    n_words = record_dtype.itemsize // _WORD
    lines = ["def extract_shared(x, user_data_):"]
    if keys:
        lines.append(f"    words = numba.carray(user_data_, ({n_words},), np.uint64)")
    names = []
    for i, (key, (data_word, shape_words)) in enumerate(zip(keys, layout, strict=True)):
        env[f"dtype_{i}"] = np.asarray(shared_data[key]).dtype
        dims = "".join(f"int(words[{w}]), " for w in shape_words)
        pointer = f"as_pointer(words[{data_word}])"
        lines.append(f"    c{i} = numba.carray({pointer}, ({dims}), dtype_{i})")
        names.append(f"c{i}")
    lines.append(f"    return inner(x{''.join(', ' + n for n in names)})")
    exec(compile("\n".join(lines), "<hierreg.nutpie_compile>", "exec"), env)  # noqa: S102
    return numba.njit(inline="always")(env["extract_shared"])


def make_c_logp_func(n_dim, logp_fn, user_data, shared_keys, shared_data):
    """Drop-in for ``nutpie.compile_pymc._make_c_logp_func``: the C callback
    ``logp(dim, x, grad_out, logp_out, user_data) -> status`` with nutpie's status codes
    (0 ok, -1 wrong dimension, 1 error, 3 non-finite gradient, 4 non-finite log density).

    It copies the gradient with a loop: nutpie's ``out[...] = grad`` makes numba compile
    its shape-mismatch error message, 2.7 s of the first fit in a fresh process.
    """
    import numba
    import nutpie.compile_pymc as ncp

    # during compile_numba: the lean unpacking, with nutpie's own as the fallback
    extract = ncp.make_extraction_fn(logp_fn, shared_data, shared_keys, user_data.dtype)
    c_sig = numba.types.int64(
        numba.types.uint64,
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.voidptr,
    )

    def logp_numba(dim, x_, out_, logp_, user_data_):
        if dim != n_dim:
            return -1
        try:
            x = numba.carray(x_, (n_dim,))
            out = numba.carray(out_, (n_dim,))
            logp = numba.carray(logp_, (1,))
            logp_val, grad = extract(x, user_data_)
            if grad.size != n_dim:
                return 1
            logp[0] = logp_val
            finite = True
            for i in range(n_dim):
                out[i] = grad[i]
                if not np.isfinite(grad[i]):
                    finite = False
            if not finite:
                return 3
            if not np.isfinite(logp_val):
                return 4
        except Exception:  # noqa: BLE001
            return 1
        return 0

    return logp_numba, c_sig


def make_c_expand_func(n_dim, n_expanded, expand_fn, user_data, shared_keys, shared_data):
    """Drop-in for ``nutpie.compile_pymc._make_c_expand_func`` (the draw -> stored values
    callback; status 0 ok, -1 wrong dimension, -2 error), copying with a loop."""
    import numba
    import nutpie.compile_pymc as ncp

    extract = ncp.make_extraction_fn(expand_fn, shared_data, shared_keys, user_data.dtype)
    c_sig = numba.types.int64(
        numba.types.uint64,
        numba.types.uint64,
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.voidptr,
    )

    def expand_numba(dim, expanded, x_, out_, user_data_):
        if dim != n_dim:
            return -1
        if expanded != n_expanded:
            return -1
        try:
            x = numba.carray(x_, (n_dim,))
            out = numba.carray(out_, (n_expanded,))
            (values,) = extract(x, user_data_)
            if values.size != n_expanded:
                return -2
            for i in range(n_expanded):
                out[i] = values[i]
        except Exception:  # noqa: BLE001
            return -2
        return 0

    return expand_numba, c_sig


# nutpie's private functions replaced during compile_numba, with the parameters they take
_HOOKS = {
    "make_extraction_fn": ["inner", "shared_data", "shared_var_keys", "record_dtype"],
    "_make_c_logp_func": ["n_dim", "logp_fn", "user_data", "shared_keys", "shared_data"],
    "_make_c_expand_func": [
        "n_dim", "n_expanded", "expand_fn", "user_data", "shared_var_keys", "shared_data",
    ],
}  # fmt: skip


def lean_extraction_supported() -> bool:
    """Whether the installed nutpie has the private hooks this module replaces, with the
    parameters it knows."""
    try:
        import nutpie.compile_pymc as ncp
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
    """``nutpie.compile_pymc_model(model, backend="numba")``, with the lean callbacks when
    ``lean`` and the installed nutpie supports them (else nutpie's own).

    Returns
    -------
    nutpie's compiled model (``CompiledPyMCModel``).
    """
    import nutpie

    if not (lean and lean_extraction_supported()):
        return nutpie.compile_pymc_model(model, backend="numba")
    import nutpie.compile_pymc as ncp

    with _patch_lock:
        stock = {name: getattr(ncp, name) for name in _HOOKS}
        ncp.make_extraction_fn = functools.partial(
            make_lean_extraction_fn, fallback=stock["make_extraction_fn"]
        )
        ncp._make_c_logp_func = make_c_logp_func
        ncp._make_c_expand_func = make_c_expand_func
        try:
            return nutpie.compile_pymc_model(model, backend="numba")
        finally:
            for name, function in stock.items():
                setattr(ncp, name, function)
