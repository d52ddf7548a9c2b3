"""Helpers that generated code and the rules share: broadcasting, zeros, indexing keys."""

from __future__ import annotations

import numpy as np

__all__ = ["setitem", "append", "append_in_place", "guard", "unbroadcast", "matmul_rows", "rows_matmul", "dot_rows", "rows_dot", "row_dots", "dot_all", "sum_all", "mean_all", "float_like",
           "zeros_like", "add", "at", "expand_reduced", "inverse_permutation",
           "count", "where_positive", "softmax", "log_softmax", "sigmoid"]


def unbroadcast(g, x):
    """Sum ``g`` down to the shape of ``x``, undoing numpy broadcasting.

    >>> unbroadcast(np.ones((4, 3)), np.ones(3))
    array([4., 4., 4.])
    """
    if type(g) is np.ndarray and type(x) is np.ndarray:  # the common case first: numpy arrays
        shape = x.shape
        if g.shape == shape:
            return g
    elif type(x) is float or type(x) is np.float64 or type(x) is np.float32:  # b in x + b
        if type(g) is float:
            return g
        if type(g) is np.ndarray:  # (b an np.float64: as np.mean(y) or b - lr * db make it)
            return np.add.reduce(g, axis=None)
    elif type(g) is not float:  # other arrays (CuPy): first whether anything was broadcast
        try:
            if g.shape == x.shape:
                return g
        except AttributeError:  # a Python int or a list on one side
            pass
    if type(g) is type(x) and isinstance(x, (list, tuple, dict)):
        return g  # d[k] = [a, b]: the entry's adjoint is the list's, as it is
    # ``.shape`` directly: np.shape is a dispatched call, and this runs on every adjoint
    shape = x.shape if hasattr(x, "shape") else () if isinstance(x, (float, int)) else np.shape(x)
    gshape = g.shape if hasattr(g, "shape") else () if isinstance(g, (float, int)) else np.shape(g)
    if gshape == shape:
        return g
    extra = len(gshape) - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and gshape[extra + i] != 1
    )
    if axes:  # for a numpy array the ufunc itself: np.sum's dispatch costs more than a small sum
        g = np.add.reduce(g, axis=axes) if type(g) is np.ndarray else np.sum(g, axis=axes)
    if (g.shape if type(g) is np.ndarray or isinstance(g, np.generic) else np.shape(g)) != shape:
        g = np.reshape(g, shape)
    return g


def matmul_rows(a, xs):
    """``a @ xs[t]`` for every ``t`` (a stack, or a list where ``a`` has batch axes): a loop's
    products of a fixed matrix with the rows of ``xs``, in one matmul (the batch pass).

    >>> matmul_rows(np.eye(2), np.array([[1.0, 2.0], [3.0, 4.0]]))[1]
    array([3., 4.])
    """
    n_a, n_x = _ndim(a), _ndim(xs)
    if n_a not in (1, 2) or n_x < 2 or len(xs) == 0:  # rows of one number; or no row at all
        return [a @ row for row in xs]
    if n_x == 2:  # vectors: each a @ v is a row of xs @ a.T (a number per row for a vector a)
        return xs @ (a if n_a == 1 else a.T if type(a) is np.ndarray else np.swapaxes(a, 0, 1))
    return a @ xs  # matrices: a is broadcast over the leading axis


def rows_matmul(xs, b):
    """``xs[t] @ b`` for every ``t``: a loop's products of the rows of ``xs`` with a fixed
    matrix, in one matmul (the batch pass).

    >>> rows_matmul(np.array([[1.0, 2.0], [3.0, 4.0]]), np.eye(2))[0]
    array([1., 2.])
    """
    if _ndim(b) not in (1, 2) or _ndim(xs) < 2 or len(xs) == 0:
        return [row @ b for row in xs]
    return xs @ b


def dot_rows(a, xs):
    """``np.dot(a, xs[t])`` for every ``t``: ``matmul_rows`` where ``np.dot`` is ``@`` (``a``
    and each row with one or two axes), one ``np.dot`` per row otherwise."""
    if _ndim(a) in (1, 2) and _ndim(xs) in (2, 3):
        return matmul_rows(a, xs)
    return [np.dot(a, row) for row in xs]


def rows_dot(xs, b):
    """``np.dot(xs[t], b)`` for every ``t``, as ``dot_rows``."""
    if _ndim(b) in (1, 2) and _ndim(xs) in (2, 3):
        return rows_matmul(xs, b)
    return [np.dot(row, b) for row in xs]


def row_dots(a, b):
    """``np.sum(a * b, axis=-1, keepdims=True)`` for two float numpy arrays of one shape, as
    one batched matmul of their rows: no product array, and a dot product per row instead of
    numpy's loop over each short row (the ``rowdots`` stage writes it in pullbacks). The
    same sums up to rounding; other operands are summed as written.

    >>> row_dots(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 1.0], [0.5, 2.0]]))
    array([[3. ],
           [9.5]])
    """
    if type(a) is np.ndarray and type(b) is np.ndarray and a.ndim and a.shape == b.shape and \
            a.dtype.kind == "f" and a.dtype == b.dtype:
        return (a[..., None, :] @ b[..., :, None])[..., 0]
    return np.sum(a * b, axis=-1, keepdims=True)


_F8 = np.dtype(np.float64)


def dot_all(a, b):
    """``(a * b).sum()`` for two float64 numpy arrays of one shape, both C-ordered: one BLAS
    dot product of their memory (``np.vdot``), no product array (the ``rowdots`` stage writes
    it in pullbacks: a number's adjoint, ``(g * x).sum()``). The same sum up to rounding;
    other operands (float32, whose dot product would add in float32 where numpy's sum adds
    pairwise) are summed as written.

    >>> dot_all(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 1.0], [0.5, 2.0]]))
    np.float64(12.5)
    """
    if type(a) is np.ndarray and type(b) is np.ndarray and a.dtype is _F8 and \
            b.dtype is _F8 and a.shape == b.shape and a.flags.c_contiguous and \
            b.flags.c_contiguous:
        return np.vdot(a, b)
    return (a * b).sum()


def sum_all(x):
    """``np.sum(x)`` of one operand: for a numpy array, numpy's own ``np.add.reduce(x,
    axis=None)`` without ``np.sum``'s Python layers (~0.7 µs instead of ~1.7 on a small
    array; the ``reductions`` stage writes it); anything else to ``np.sum``.

    >>> sum_all(np.array([1.0, 2.0, 3.5]))
    np.float64(6.5)
    """
    if type(x) is np.ndarray:
        return np.add.reduce(x, axis=None)
    return np.sum(x)


def mean_all(x):
    """``np.mean(x)`` of one operand: for a non-empty numpy array of floats (half precision
    aside, which numpy sums in single), the operations of numpy's own ``np.mean``, the sum
    and the division by the count as numpy writes them, so the same value to the bit
    (~0.9 µs instead of ~2.5); anything else to ``np.mean``.

    >>> mean_all(np.array([1.0, 2.0, 3.5]))
    np.float64(2.1666666666666665)
    """
    if type(x) is np.ndarray and x.dtype.kind == "f" and x.dtype.itemsize > 2 and x.size:
        total = np.add.reduce(x, axis=None)
        return total.dtype.type(total / x.size)
    return np.mean(x)


def float_like(d, x):
    """The adjoint ``d`` in ``x``'s float dtype where ``x`` is a float array (a rule's numpy
    result may be wider: float32 in, float32 back). A complex ``d`` of a real ``x`` stays
    complex: an adjoint made complex by a value srcdiff did not see coming reaches the API,
    which refuses it, instead of losing its imaginary part here (a wrong real gradient)."""
    dtype = getattr(x, "dtype", None)
    own = getattr(d, "dtype", None)
    if dtype is None or dtype.kind != "f" or own is None or own == dtype or own.kind == "c":
        return d
    return d.astype(dtype)


def _ndim(x) -> int:
    return x.ndim if type(x) is np.ndarray else np.ndim(x)


def zeros_like(x):
    """Zeros with the shape, dtype and array library of ``x`` (a Python float gives 0.0)."""
    if isinstance(x, (float, int)):
        return 0.0
    return np.zeros_like(x)


def add(a, b):
    """Sum of two adjoints, where ``None`` stands for zero."""
    if a is None:
        return b
    if b is None:
        return a
    return a + b


class _At:
    """``at[1:3, 0]`` spells an indexing key as a value, for the adjoint of ``x[1:3, 0]``."""

    def __getitem__(self, key):
        return key

    def __repr__(self):
        return "at"


at = _At()


def expand_reduced(g, shape, axis, keepdims):
    """Reshape the result of a reduction over ``axis`` so it broadcasts against ``shape``.

    A number (grad's seed ``1.0``, a numpy scalar) broadcasts against any shape as it is,
    and is returned as it is: ``np.reshape(1.0, ...)`` would be a host array, which a device
    array (CuPy) cannot be combined with.

    >>> expand_reduced(np.ones(4), (3, 4), 0, False).shape
    (1, 4)
    >>> expand_reduced(1.0, (3, 4), None, False)
    1.0
    """
    if keepdims:
        return g
    if type(g) is np.ndarray:
        if axis is None:
            return g if g.ndim == len(shape) else g.reshape((1,) * len(shape))
        if type(axis) is int and shape:  # one axis: ~0.5 us, not ~2.5
            a = axis % len(shape)
            return g.reshape((*shape[:a], 1, *shape[a + 1:]))
    elif type(g) is float or isinstance(g, (int, np.generic)):
        return g
    elif axis is None:  # another library's array: reshaped by its own library
        return g if np.ndim(g) == len(shape) else np.reshape(g, (1,) * len(shape))
    if not shape:  # a number reduced along axis 0 or -1 (numpy allows it): g has its shape
        return g
    axes = (axis,) if type(axis) is int or np.ndim(axis) == 0 else tuple(axis)
    axes = tuple(a % len(shape) for a in axes)
    kept = [1 if i in axes else n for i, n in enumerate(shape)]
    return g.reshape(kept) if type(g) is np.ndarray else np.reshape(g, kept)


def inverse_permutation(axes, ndim):
    """The axes that undo ``transpose(axes)``, as a tuple of Python ints (no array is made,
    so nothing lands in host memory for a GPU ``g``).

    >>> inverse_permutation((2, 0, 1), 3)
    (1, 2, 0)
    """
    inverse = [0] * ndim
    for i, a in enumerate(axes):
        inverse[int(a) % ndim] = i
    return tuple(inverse)


def setitem(x, key, value):
    """A copy of ``x`` with ``x[key] = value``: srcdiff's functional form of ``out[i] = v``.

    Every write makes a new version, so the pullback can read each version as it was.

    >>> setitem(np.zeros(3), 1, 5.0)
    array([0., 5., 0.])
    """
    if type(x) is tuple:  # an adjoint of a list that np.stack's rule gave as a tuple
        out = list(x)
        out[key] = value
        return tuple(out)
    out = x.copy()
    out[key] = value
    return out


def append(xs, value):
    """A new list ``xs + [value]``: srcdiff's functional form of ``xs.append(value)``.

    >>> append([1.0], 2.0)
    [1.0, 2.0]
    """
    return [*xs, value]


def append_in_place(xs, value):
    """``xs.append(value)``, and ``xs``: srcdiff's ``append`` where no earlier version of the
    list is read again (the ``lists`` stage proves it), so no copy per append is needed.

    >>> xs = [1.0]
    >>> append_in_place(xs, 2.0) is xs
    True
    """
    xs.append(value)
    return xs


# per itemsize of a float adjoint: the numbers a rule may divide by, take a root, logarithm or a
# power of (|exponent| <= 10) and stay finite in that precision
_NUMBER_BOUNDS = {np.dtype(t): (1.0 / float(np.finfo(t).max) ** 0.1, float(np.finfo(t).max) ** 0.1)
                  for t in (np.float16, np.float32, np.float64)}
_NO_BOUNDS = (np.inf, -np.inf)  # another float (long double): the checks below


def guard(value, g):
    """``value``, but 1 wherever the adjoint ``g`` is exactly zero.

    Rules divide by (or take a negative power of) a guarded value, so a zero adjoint stays
    exactly zero even where the local derivative is infinite or NaN: the gradient of
    ``np.where(x > 0, np.sqrt(x), 0.0)`` is 0, not NaN, at ``x <= 0``. A genuinely infinite
    derivative with a nonzero adjoint still shows as inf.

    >>> guard(np.array([0.0, 4.0]), np.array([0.0, 1.0]))
    array([1., 4.])
    """
    if isinstance(g, (float, int, np.generic)) or type(g) is np.ndarray and g.ndim == 0:
        return value if g != 0 else 1.0  # one adjoint (a 0-d one from np.where too)
    if isinstance(value, (float, int, np.floating, np.integer)):  # a number (np.sqrt(d))
        low, high = _NUMBER_BOUNDS.get(g.dtype, _NO_BOUNDS) if type(g) is np.ndarray else _NO_BOUNDS
        if low <= value <= high:
            # well inside g's range: a root, a logarithm, a power up to the 10th of it is one
            # finite number, so g times it is 0 wherever g is (no pass over g, ~1 us not ~8)
            return value
        if type(g) is np.ndarray and np.count_nonzero(g) == g.size:
            return value  # no zero adjoint: the number itself
        # 1 where g is 0 (the rule may take a root or a power of it: np.sqrt(1.0 - x * x)
        # of an x with |x| > 1 in a branch not taken), the number elsewhere, in g's dtype
        # (a Python number stays weak: float32 stays float32)
        return np.where(g == 0, np.ones_like(g), value)
    if type(g) is np.ndarray and type(value) is np.ndarray and value.dtype.kind == "f" and \
            np.count_nonzero(g) == g.size:  # no zero adjoint: value itself (~1 us, not ~3)
        return value
    return np.where(g == 0, 1.0, value)


def unpacked(v, n: int) -> None:
    """Raises what ``a, b, ... = v`` (``n`` names) raises for ``v`` of another length: the
    compiled code then reads the rows ``v[0]``, ``v[1]``, ... one by one, which checks no length.

    >>> unpacked(np.ones(2), 2)
    >>> unpacked(np.ones(3), 2)
    Traceback (most recent call last):
    ValueError: too many values to unpack (expected 2)
    """
    try:
        count = len(v)
    except TypeError:
        iter(v)  # Python's own error for what cannot be unpacked (a 0-d array, a number)
        raise
    if count > n:
        raise ValueError(f"too many values to unpack (expected {n})")
    if count < n:
        raise ValueError(f"not enough values to unpack (expected {n}, got {count})")


def split(ary, indices_or_sections, axis=0):
    """``np.split(ary, indices_or_sections, axis)``: for a numpy array and an int number of
    sections that divides the axis, the same list of views, made directly (``np.split`` runs
    ``np.array_split``'s Python code, ~10 us for four parts); anything else is ``np.split``'s.

    >>> [p.tolist() for p in split(np.arange(4.0), 2)]
    [[0.0, 1.0], [2.0, 3.0]]
    """
    if type(ary) is np.ndarray and type(indices_or_sections) is int and type(axis) is int and \
            indices_or_sections > 0 and -ary.ndim <= axis < ary.ndim:
        axis %= ary.ndim
        length = ary.shape[axis]
        if length % indices_or_sections == 0:
            step = length // indices_or_sections
            lead = (slice(None),) * axis
            return [ary[(*lead, slice(start, start + step))] for start in range(0, length, step)] \
                if step else [ary[(*lead, slice(0, 0))] for _ in range(indices_or_sections)]
    return np.split(ary, indices_or_sections, axis)


def blank(make, xs):
    """An array of the shape and dtype of ``make(xs)`` (``make`` is ``np.stack`` or
    ``np.array``) for code that reads only those: where ``xs`` is a non-empty list or tuple of
    numpy arrays of one shape and dtype, a read-only array whose every element is a zero of
    that dtype (all strides 0: the entries are not copied); otherwise ``make(xs)`` itself,
    with its errors (``np.stack([])``, entries of different shapes).

    >>> b = blank(np.stack, [np.ones(3), np.zeros(3)])
    >>> b.shape, b.dtype, b.flags.writeable
    ((2, 3), dtype('float64'), False)
    """
    if _kernels is not None:  # the same test in C (runtime/_kernels.c): ~0.2 us for 50 entries
        found = _kernels.stack_blank(xs)
        return make(xs) if found is None else found
    if (type(xs) is list or type(xs) is tuple) and xs and type(xs[0]) is np.ndarray:
        shape, dtype = xs[0].shape, xs[0].dtype
        if dtype.itemsize <= len(_ZERO_BYTES) and not dtype.hasobject:
            for x in xs:
                if type(x) is not np.ndarray or x.shape != shape or \
                        (x.dtype is not dtype and x.dtype != dtype):
                    break
            else:
                return np.ndarray((len(xs), *shape), dtype, _ZERO_BYTES, 0, (0,) * (len(shape) + 1))
    return make(xs)


_ZERO_BYTES = bytes(64)  # read-only: so is every array over it
PAGE = 4096  # bytes: an array smaller than this costs nothing to keep, and no page fault to make


def blank_like(x):
    """``x`` for code that reads only its shape and dtype (a loop's tape keeps it for the
    pullback's ``rt.getitem_adjoint(g, x, key=...)``): where ``x`` is a numpy array of a page
    (4 KiB) or more, a read-only array of its shape and dtype whose every element is a zero
    (all strides 0), so that the tape does not keep the array's memory alive: an LSTM's ``z``
    of (16, 256) kept at each of ten steps is 320 KiB of fresh pages a call. Otherwise ``x``
    itself (smaller arrays cost nothing to keep; other libraries' arrays are theirs).

    >>> b = blank_like(np.ones((16, 256)))
    >>> b.shape, b.dtype, b.strides, b.flags.writeable
    ((16, 256), dtype('float64'), (0, 0), False)
    """
    if type(x) is np.ndarray and x.nbytes >= PAGE:
        dtype = x.dtype
        if dtype.itemsize <= len(_ZERO_BYTES) and not dtype.hasobject:
            return np.ndarray(x.shape, dtype, _ZERO_BYTES, 0, (0,) * x.ndim)
    return x


try:
    from . import _kernels
except ImportError:  # built without a C compiler
    _kernels = None


def count(x) -> int:
    """How many numbers ``np.mean(x)`` averages, at least 1 (an empty mean's adjoint is empty:
    its spread number never reaches an element)."""
    n = x.size if hasattr(x, "shape") else np.size(x)  # np.size of a Dask array computes it
    return n if n else 1


def where_positive(condition, x, y):
    """``np.where(condition, x, y)`` where ``condition`` is ``x > 0`` and ``y`` a literal 0 or
    0.0: a ReLU spelled with ``np.where`` (the ``canonical`` stage writes this call, and
    the adjoint is ``np.where``'s). numpy's ``np.where`` branches per element, ~25x slower than
    ``np.fmax`` on a random mask; ``np.fmax(y, x)`` gives the same values (NaN and -inf
    give ``y``: fmax ignores a NaN), except at -0.0, where adding 0.0 gives +0.0 as
    ``np.where`` does.

    >>> where_positive(np.array([2.0, -1.0, np.nan]) > 0, np.array([2.0, -1.0, np.nan]), 0)
    array([2., 0., 0.])
    """
    if type(x) is np.ndarray and x.ndim and x.dtype.kind == "f":
        out = np.fmax(y, x)
        out += 0.0  # -0.0 + 0.0 is +0.0; every other value stays itself
        return out
    return np.where(condition, x, y)


def sigmoid(x):
    """``1.0 / (1.0 + np.exp(-x))``: the ``sigmoid`` stage writes this call for those lines, so
    that the adjoint is one product, ``g * s * (1 - s)``, not the negation's, the exponential's
    and the quotient's (whose chain gives NaN where ``exp(-x)`` overflows). The same operations
    as the lines, in one array made here, so the same values.

    >>> sigmoid(np.array([0.0, np.log(3.0)]))
    array([0.5 , 0.75])
    """
    if type(x) is np.ndarray and x.ndim and x.dtype.kind == "f":  # (a 0-d one: numbers)
        e = np.negative(x)
        np.exp(e, out=e)
        e += 1.0
        return np.divide(1.0, e, out=e)
    return 1.0 / (1.0 + np.exp(-x))


def squared_norm(x):
    """``np.linalg.norm(x) ** 2``: the ``norms`` stage writes this call for those lines, so
    that the adjoint is ``2 * g * x``, not the square's times the norm's (which divides by
    the norm, so needs it computed, and a whole ``rt.norm_adjoint`` call). The same
    operations as the lines, so the same value.

    >>> float(squared_norm(np.array([3.0, 4.0])))
    25.0
    """
    return np.linalg.norm(x) ** 2


def softmax(x, axis=-1, shifted=True):
    """``e / np.sum(e, axis=axis, keepdims=True)`` with ``e = np.exp(x - np.max(x, axis=axis,
    keepdims=True))`` (``e = np.exp(x)`` where not ``shifted``; for ``axis=None``, both
    reductions without keepdims): the ``canonical`` stage writes
    this call for those lines, so the adjoint is one product (``softmax_axis_adjoint``), not
    one per line with the maximum's. The same operations as the lines, so the same values.

    >>> softmax(np.array([[0.0, np.log(3.0)]]))
    array([[0.25, 0.75]])
    """
    if axis is None:  # over the whole array, written without keepdims: numbers stay numbers
        e = np.exp(x - np.max(x)) if shifted else np.exp(x)
        return e / np.sum(e)
    if type(x) is np.ndarray and x.dtype.kind == "f":  # the same operations, in the arrays
        e = x - np.max(x, axis=axis, keepdims=True) if shifted else np.exp(x)  # made here
        if shifted:
            np.exp(e, out=e)
        e /= np.sum(e, axis=axis, keepdims=True)
        return e
    e = np.exp(x - np.max(x, axis=axis, keepdims=True)) if shifted else np.exp(x)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1, shifted=True):
    """``z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))`` with ``z = x -
    np.max(x, axis=axis, keepdims=True)`` (``z = x`` where not ``shifted``; for ``axis=None``,
    both reductions without keepdims): what the ``softmax`` stage writes for those lines (a
    cross-entropy's), the same operations, with one adjoint (``log_softmax_axis_adjoint``).

    >>> log_softmax(np.array([[0.0, np.log(3.0)]]))
    array([[-1.38629436, -0.28768207]])
    """
    if axis is None:
        z = x - np.max(x) if shifted else x
        return z - np.log(np.sum(np.exp(z)))
    z = x - np.max(x, axis=axis, keepdims=True) if shifted else x
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
