from srcdiff import runtime as rt


def tanh_layer_grad(w, x):
    # forward
    _t1 = x @ w
    h = np.tanh(_t1)
    h_1 = h * h
    _t2 = np.sum(h_1, axis=0)

    # backward
    del _t1  # not read by the backward pass
    # adjoint of: return np.sum(h, axis=0).mean()  (line N)
    d_t2 = rt.sum_adjoint(1.0 / rt.count(_t2), _t2)
    dh_1 = rt.sum_adjoint(d_t2, h_1, axis=0)
    # adjoint of: h = h * h  (line N)
    dh = 2 * dh_1 * h
    # adjoint of: h = np.tanh(x @ w)  (line N)
    d_t1 = dh * (1.0 - h * h)
    dw = rt.matmul_adjoint_x2(d_t1, x, w)
    return dw
