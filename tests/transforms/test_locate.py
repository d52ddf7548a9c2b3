from ..helpers import code_lines, make_function, run_until


def test_each_statement_carries_its_file_line():
    fn = make_function("""
        def f(x):
            y = np.sin(x)
            return y * 2.0
    """)
    first = fn.__code__.co_firstlineno
    assert code_lines(run_until(fn, "locate")) == code_lines(f"""
        def f(x):
            # line {first + 1}: y = np.sin(x)
            y = np.sin(x)
            # line {first + 2}: return y * 2.0
            return y * 2.0
    """)


def test_decorators_are_stripped_and_lines_still_match():
    fn = make_function("""
        @srcdiff.grad
        def f(x):
            return x * 2.0
    """, name="f").__wrapped__
    first = fn.__code__.co_firstlineno
    lines = code_lines(run_until(fn, "locate"))
    assert lines[0] == "def f(x):"
    assert lines[1].strip() == f"# line {first + 2}: return x * 2.0"  # first is the decorator
