from ..helpers import code_lines, make_function, run_until


def test_augmented_assignment_becomes_plain_assignment():
    fn = make_function("""
        def f(x, w):
            acc = x * 1.0
            acc += w * x
            acc **= 2
            return acc
    """)
    after = code_lines(run_until(fn, "desugar"))
    assert "acc = acc + (w * x)" in [line.strip() for line in after]
    assert "acc = acc ** 2" in [line.strip() for line in after]


def test_chained_comparison_is_split():
    fn = make_function("""
        def f(x):
            m = 0.0 < x < 1.0
            return np.sum(np.where(m, x, 0.0))
    """)
    after = [line.strip() for line in code_lines(run_until(fn, "desugar"))]
    assert "m = 0.0 < x and x < 1.0" in after


def test_annotated_assignment_loses_its_annotation():
    fn = make_function("""
        def f(x):
            y: float = x * 2.0
            return y
    """)
    after = [line.strip() for line in code_lines(run_until(fn, "desugar"))]
    assert "y = x * 2.0" in after
