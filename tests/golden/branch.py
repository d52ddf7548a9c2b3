from srcdiff import runtime as rt


def branch_grad(x, w):
    # forward
    h = x * w
    _c1 = np.sum(h) > 0
    if _c1:
        h_1 = np.tanh(h)
    else:
        h_1 = h * 0.1
    _t1 = h_1 * x

    # backward
    del h  # not read by the backward pass
    # adjoint of: return np.sum(h * x)  (line N)
    d_t1 = rt.sum_adjoint(1.0, _t1)
    dh_1 = rt.unbroadcast(d_t1 * x, h_1)
    dx = rt.unbroadcast(d_t1 * h_1, x)
    # adjoint of: if np.sum(h) > 0:  (line N)
    if _c1:
        # adjoint of: h = np.tanh(h)  (line N)
        dh = dh_1 * (1.0 - h_1 * h_1)
    else:
        # adjoint of: h = h * 0.1  (line N)
        dh = dh_1 * 0.1
    # adjoint of: h = x * w  (line N)
    dx = dx + rt.unbroadcast(dh * w, x)
    dw = rt.unbroadcast(dh * x, w)
    return dx, dw
