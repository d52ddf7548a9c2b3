from srcdiff import runtime as rt


def basic_grad(x):
    # forward
    y = x + 2
    _t1 = y * y
    z = _t1 * 3

    # backward
    del _t1  # not read by the backward pass
    # adjoint of: z = y * y * 3  (line N)
    dy = 2 * ((1.0 / rt.count(z)) * 3) * y
    # adjoint of: y = x + 2  (line N)
    dx = dy
    return dx
