from srcdiff import runtime as rt


def elementwise_grad(x, y):
    # forward
    _t1 = x * y
    _t2 = -x
    _t3 = np.exp(_t2)
    _t4 = _t3 / y
    z = _t1 + _t4
    _t5 = z ** 2
    _t6 = _t5 + 1.0
    _t7 = np.sqrt(_t6)

    # backward
    del _t2, _t5, _t6  # not read by the backward pass
    # adjoint of: return np.sum(np.sqrt(z ** 2 + 1.0))  (line N)
    d_t6 = 1.0 / (2.0 * _t7)
    d_t5 = d_t6
    dz = d_t5 * 2 * z
    # adjoint of: z = x * y + np.exp(-x) / y  (line N)
    d_t1 = rt.unbroadcast(dz, _t1)
    d_t4 = rt.unbroadcast(dz, _t4)
    d_t3 = rt.unbroadcast(d_t4 / rt.guard(y, d_t4), _t3)
    dy = -rt.unbroadcast(d_t4 * _t3 / rt.guard(y * y, d_t4), y)
    d_t2 = d_t3 * _t3
    dx = -d_t2
    dx = rt.add_into(dx, rt.unbroadcast(d_t1 * y, x))
    dy = rt.add_into(dy, rt.unbroadcast(d_t1 * x, y))
    return dx, dy
