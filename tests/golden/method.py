from srcdiff import runtime as rt


def method_grad(w, x):
    # forward
    layer = Dense(w)
    _t1, _t1_pullback = rt.call_vjp(layer.apply, x, wrt=(), wrt_self=layer)
    _t2 = _t1 ** 2

    # backward
    del layer  # not read by the backward pass
    # adjoint of: return np.sum(layer.apply(x) ** 2)  (line N)
    d_t2 = rt.sum_adjoint(1.0, _t2)
    d_t1 = d_t2 * 2 * _t1
    dlayer = _t1_pullback(d_t1)
    # adjoint of: layer = Dense(w)  (line N)
    dw = dlayer.W
    return dw
