"""Tools that read the compiler's analyses back to the user: ``check`` and ``explain``.

    srcdiff check model.py            every problem of every function, all at once
    srcdiff explain model.py:loss --wrt w --shapes x=64x3,w=3

The modules are named apart from the functions they define (``srcdiff.check`` is the
function ``tools.check.check``), so importing one never hides the other.
"""
