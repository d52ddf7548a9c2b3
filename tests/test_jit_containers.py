"""srcdiff.jit with container (pytree) arguments: dicts, lists, tuples, namedtuples and
dataclasses flattened into the kernel's arguments and the gradients rebuilt in their
structure; against the numpy path (same structure, types and dtypes, values to 1e-12 in
float64) and finite differences through the shared oracle; a new structure gets its own
kernel; what stays refused is refused at the user's line."""

import collections
import dataclasses
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import optree
import pytest

pytest.importorskip("numba")

import srcdiff  # noqa: E402
from srcdiff.compiled import JitError, JitFallbackWarning  # noqa: E402
from srcdiff.runtime import trees  # noqa: E402
from srcdiff.testing import check_grad  # noqa: E402

rng = np.random.default_rng(11)
slow = pytest.mark.skipif(not os.environ.get("SRCDIFF_SLOW"), reason="long: set SRCDIFF_SLOW=1")

Layer = collections.namedtuple("Layer", "W b")


@dataclasses.dataclass
class Head:
    V: np.ndarray
    scale: float


def mlp(params, x, y):
    enc = params["enc"]
    h = np.tanh(x @ enc["W"] + enc["b"])
    h = np.tanh(h @ params["layers"][0]["W"]) * params["layers"][-1]["s"]
    out = h @ params["W2"]
    return np.mean((out - y) ** 2) * params["steps"] / len(params["layers"])


def mlp_params(dtype=np.float64):
    return {"enc": {"W": rng.normal(size=(3, 4)).astype(dtype), "b": rng.normal(size=4).astype(dtype)},
            "layers": [{"W": (rng.normal(size=(4, 4)) * 0.5).astype(dtype)}, {"s": 0.7}],
            "W2": rng.normal(size=4).astype(dtype), "steps": 3, "note": None}


def typed(layer, head, x):
    W, b = layer
    z = np.tanh(x @ W + layer.b) @ head.V
    return np.sum(z ** 2) * head.scale + np.sum(b)


def typed_args():
    return (Layer(rng.normal(size=(3, 2)), rng.normal(size=2)),
            Head(rng.normal(size=(2, 2)), 1.5), rng.normal(size=(4, 3)))


def with_aux(ps, x):
    r = x * ps[0] + ps[1]
    return np.sum(r ** 2), {"r": r, "n": np.sum(ps[1])}


def assert_same_tree(got, want):
    """The same structure (None entries included), leaf types, dtypes and shapes; values to
    1e-12 relative."""
    spec = optree.tree_structure(want, none_is_leaf=True, namespace=trees.NAMESPACE)
    assert optree.tree_structure(got, none_is_leaf=True, namespace=trees.NAMESPACE) == spec
    for a, b in zip(optree.tree_leaves(got, none_is_leaf=True, namespace=trees.NAMESPACE),
                    optree.tree_leaves(want, none_is_leaf=True, namespace=trees.NAMESPACE)):
        assert type(a) is type(b), (type(a), type(b))
        if b is not None:
            assert np.shape(a) == np.shape(b) and getattr(a, "dtype", None) == getattr(b, "dtype", None)
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-300)


def check_leaves(fn, args, i, grad):
    """Every float leaf of ``grad`` (the gradient of container ``args[i]``) against finite
    differences of ``fn`` in that leaf alone."""
    trees.register_dataclasses(args[i])
    leaves, spec = optree.tree_flatten(args[i], namespace=trees.NAMESPACE)
    got = optree.tree_leaves(grad, none_is_leaf=True, namespace=trees.NAMESPACE)
    got = [g for g, leaf in zip(got, leaves)] if len(got) == len(leaves) else got
    checked = 0
    for k, (leaf, g) in enumerate(zip(leaves, got)):
        if g is None:
            continue

        def in_leaf(v, k=k):
            moved = list(leaves)
            moved[k] = v
            return fn(*args[:i], optree.tree_unflatten(spec, moved), *args[i + 1:])

        check_grad(in_leaf, (leaf,), (g,))
        checked += 1
    assert checked


@pytest.mark.parametrize("maker", [srcdiff.grad, pytest.param(srcdiff.value_and_grad, marks=slow)])
def test_nested_dict_of_arrays_numbers_and_none(maker):
    """A dict holding a dict, a list of dicts, an int and None; read through an alias, keys,
    a negative position and len(): the gradient is a dict of the same structure, None for
    the int and None entries, a float for the float."""
    args = (mlp_params(), rng.normal(size=(5, 3)), rng.normal(size=5))
    compiled, numpy_path = srcdiff.jit(maker(mlp)), maker(mlp)
    got, want = compiled(*args), numpy_path(*args)
    if maker is srcdiff.value_and_grad:
        assert type(got[0]) is type(want[0]) and got[0] == pytest.approx(want[0], rel=1e-12)
        got, want = got[1], want[1]
    assert_same_tree(got, want)
    assert list(got) == list(args[0]) and got["steps"] is None and got["note"] is None
    check_leaves(mlp, args, 0, got)
    assert "params_enc_W" in compiled.kernel_source and "params[" not in compiled.kernel_source


def test_namedtuple_dataclass_unpacking_and_several_wrt():
    args = typed_args()
    compiled = srcdiff.jit(srcdiff.grad(typed, wrt=(0, 1, 2)))
    got, want = compiled(*args), srcdiff.grad(typed, wrt=(0, 1, 2))(*args)
    assert isinstance(got[0], Layer) and isinstance(got[1], Head) and type(got[1].scale) is float
    assert_same_tree(got, want)
    check_leaves(typed, args, 0, got[0])
    check_leaves(typed, args, 1, got[1])
    check_grad(typed, args, (got[2],), argnums=(2,))
    # by keyword, and a later call with the same structure reuses its kernel
    again = compiled(layer=args[0], head=args[1], x=args[2])
    assert_same_tree(again, want)
    assert len(compiled._variants) == 1  # noqa: SLF001
    # containers outside wrt: read, not differentiated
    got = srcdiff.jit(srcdiff.grad(typed, wrt="x"))(*args)
    np.testing.assert_allclose(got, want[2], rtol=1e-12)


def test_has_aux_and_a_new_structure_gets_its_own_kernel():
    """A list, a tuple, a list with an int leaf: each structure its own twin, and the first
    again its first; has_aux's dict rebuilt (grad and value_and_grad)."""
    compiled = srcdiff.jit(srcdiff.value_and_grad(with_aux, has_aux=True))
    numpy_path = srcdiff.value_and_grad(with_aux, has_aux=True)
    x = rng.normal(size=3)
    first = ([rng.normal(size=3), 0.5], x)
    second = ((rng.normal(size=3), np.array([0.1, 0.2, 0.3])), x)  # a tuple, an array leaf
    third = ([rng.normal(size=3), 2], x)  # an int leaf: no gradient for it
    for args in (first, second, third, first):
        got, want = compiled(*args), numpy_path(*args)
        (value, aux), grads = got
        assert type(value) is type(want[0][0]) and value == pytest.approx(want[0][0], rel=1e-12)
        assert_same_tree(aux, want[0][1])
        assert_same_tree(grads, want[1])
        check_leaves(lambda ps, x: with_aux(ps, x)[0], args, 0, grads)
    assert len(compiled._variants) == 3  # noqa: SLF001
    got = srcdiff.jit(srcdiff.grad(with_aux, has_aux=True))(*first)
    assert_same_tree(got, srcdiff.grad(with_aux, has_aux=True)(*first))


def test_plain_function_of_a_container():
    compiled = srcdiff.jit(mlp)
    args = (mlp_params(), rng.normal(size=(5, 3)), rng.normal(size=5))
    assert compiled(*args) == pytest.approx(mlp(*args), rel=1e-12)


@slow
def test_float32_containers_agree_to_1e_5():
    args32 = (mlp_params(np.float32), rng.normal(size=(5, 3)).astype(np.float32),
              rng.normal(size=5).astype(np.float32))
    got, want = srcdiff.jit(srcdiff.grad(mlp))(*args32), srcdiff.grad(mlp)(*args32)
    assert got["enc"]["W"].dtype == np.float32
    for a, b in zip(optree.tree_leaves(got), optree.tree_leaves(want)):
        assert type(a) is type(b) and getattr(a, "dtype", None) == getattr(b, "dtype", None)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ----- what stays refused, at the user's line -----


def loops_over(params, x):
    for layer in params["layers"]:
        x = np.tanh(x @ layer)
    return np.sum(x)


def computed_key(params, x):
    k = "W"
    return np.sum(x @ params[k])


def helper(params, x):
    return x @ params["W"]


def passes_whole(params, x):
    return np.sum(helper(params, x))


@pytest.mark.parametrize("fn, params, construct", [
    (loops_over, {"layers": [np.eye(2), np.eye(2)]}, 'params["layers"]'),
    (computed_key, {"W": np.eye(2)}, "params[k]"),
    (passes_whole, {"W": np.eye(2)}, "params"),
])
def test_reads_a_kernel_cannot_take_are_refused_at_their_line(fn, params, construct):
    with pytest.raises(JitError, match="keys written in the source") as info:
        srcdiff.jit(srcdiff.grad(fn))(params, np.ones((3, 2)))
    assert info.value.filename == __file__ and construct in str(info.value)
    line = info.value.text.strip()
    assert construct in line, line
    with pytest.warns(JitFallbackWarning):
        got = srcdiff.jit(srcdiff.grad(fn), fallback=True)(params, np.ones((3, 2)))
    assert_same_tree(got, srcdiff.grad(fn)(params, np.ones((3, 2))))


def test_a_leaf_a_kernel_cannot_take_is_refused():
    def activation(params, x):
        return np.sum(np.tanh(x * params["w"]))

    with pytest.raises(JitError, match="container holding a str"):
        srcdiff.jit(srcdiff.grad(activation))({"w": np.ones(2), "act": "tanh"}, np.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(srcdiff.SrcdiffError, match="holds no floating-point value"):
            srcdiff.jit(srcdiff.grad(activation))({"w": np.ones(2, dtype=int)}, np.ones(2))


def reads_one(params, x):
    return np.sum(np.sin(x * params["a"]))


def test_leaves_not_read_get_zeros_of_their_type_and_integers_none():
    params = {"a": rng.normal(size=2), "unused": 1.0, "u32": np.ones(2, np.float32),
              "i": np.arange(2), "n": 4}
    x = rng.normal(size=2)
    got, want = srcdiff.jit(srcdiff.grad(reads_one))(params, x), srcdiff.grad(reads_one)(params, x)
    assert_same_tree(got, want)
    assert got["unused"] == 0.0 and got["u32"].dtype == np.float32 and got["i"] is None
    check_leaves(reads_one, (params, x), 0, got)


@slow
def test_a_plain_functions_twin_has_its_own_disk_cache(tmp_path):
    """The twin over a tuple's leaf (p_0, x) and the function itself called with an array p
    take the same argument types; each is cached under its own name (numba keeps one cache
    index per function name and line, which two processes saving at once can corrupt), and
    a second process loads both with their own results."""
    module = tmp_path / "first_of.py"
    module.write_text("import numpy as np\n\n\ndef first_of(p, x):\n    return np.sum(p[0] * x)\n")
    program = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np, srcdiff
        from first_of import first_of
        f, x = srcdiff.jit(first_of), np.arange(3.0)
        print(f(np.array([2.0, 5.0, 7.0]), x), f((np.array([2.0, 5.0, 7.0]),), x))
    """)
    env = {**os.environ, "SRCDIFF_CACHE_DIR": str(tmp_path / "cache")}
    for _ in range(2):  # the second process loads both from the disk cache
        run = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True)
        assert run.stdout.split() == ["6.0", "19.0"], run.stderr
    assert len(list((tmp_path / "__pycache__").glob("first_of.first_of*.nbi"))) == 2
