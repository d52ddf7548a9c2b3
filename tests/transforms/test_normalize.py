from ..helpers import code_lines, make_function, run_until


def body(fn, stage="normalize"):
    return [line.strip() for line in code_lines(run_until(fn, stage)) if not line.strip().startswith("#")][1:]


def test_nested_operations_become_temporaries_in_evaluation_order():
    fn = make_function("""
        def loss(w, b, x, y):
            pred = x @ w + b
            return np.mean((pred - y) ** 2)
    """)
    assert body(fn) == [
        "_t1 = x @ w", "pred = _t1 + b", "_t2 = pred - y", "_t3 = _t2 ** 2",
        "_out = np.mean(_t3)", "return _out",
    ]


def test_methods_on_expressions_and_keyword_arguments():
    fn = make_function("""
        def f(x):
            return (x * 2.0).sum(axis=0).mean()
    """)
    assert body(fn) == ["_t1 = x * 2.0", "_t2 = _t1.sum(axis=0)", "_out = _t2.mean()", "return _out"]


def test_tuples_keep_their_parentheses():
    fn = make_function("""
        def f(x):
            return np.sum(np.reshape(x, (4, 3)) * 2.0)
    """)
    assert body(fn)[0] == "_t1 = np.reshape(x, (4, 3))"


def test_list_arguments_and_subscripts_hold_atoms():
    fn = make_function("""
        def f(x, y):
            c = np.concatenate([x, y * 2.0], axis=0)
            return c[1:3].sum() + x[0]
    """)
    assert body(fn) == [
        "_t1 = y * 2.0", "c = np.concatenate([x, _t1], axis=0)", "_t2 = c[1:3]",
        "_t3 = _t2.sum()", "_t4 = x[0]", "_out = _t3 + _t4", "return _out",
    ]


def test_docstring_is_dropped_and_constants_stay_inline():
    fn = make_function('''
        def f(x):
            """Docstring."""
            return np.sum(x, axis=-1)
    ''')
    assert body(fn) == ["_out = np.sum(x, axis=-1)", "return _out"]


def test_reassigned_names_get_versions():
    fn = make_function("""
        def f(x, w):
            h = np.tanh(x)
            h = h * w
            x = h + x
            return x
    """)
    assert body(fn, "rename") == ["h = np.tanh(x)", "h_1 = h * w", "x_1 = h_1 + x", "return x_1"]


def test_unpacking_an_array_a_primitive_gives_takes_its_rows():
    fn = make_function("""
        def helper(v):
            return v, v * 2.0

        def f(x, log_params):
            ls, var, noise = np.exp(log_params)
            r0, r1 = (x * 2.0).sum(axis=0)
            a, b = np.split(x, 2)
            c, d = helper(x)
            return ls * var * noise * r0 * r1 * a * b * c * d
    """, "f")
    assert body(fn)[:13] == [  # the count checked first, as Python's unpacking does
        "_t1 = np.exp(log_params)", "rt.unpacked(_t1, 3)", "ls = _t1[0]", "var = _t1[1]",
        "noise = _t1[2]", "_t2 = x * 2.0", "_t3 = _t2.sum(axis=0)", "rt.unpacked(_t3, 2)",
        "r0 = _t3[0]", "r1 = _t3[1]",
        "a, b = np.split(x, 2)",  # a sequence=True rule's results, and a helper's, stay unpacked
        "c, d = helper(x)",
        "_t4 = ls * var",
    ]
