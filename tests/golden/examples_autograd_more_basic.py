from srcdiff import runtime as rt


def basic_grad(x):
    # forward
    y = x + 2
    _t1 = y * y
    z = _t1 * 3

    # backward
    del _t1  # not read by the backward pass
    # adjoint of: out = z.mean()  (line N)
    dz = rt.sum_adjoint(1.0 / rt.count(z), z)
    # adjoint of: z = y * y * 3  (line N)
    d_t1 = dz * 3
    dy = 2 * d_t1 * y
    # adjoint of: y = x + 2  (line N)
    dx = dy
    return dx
