from srcdiff import runtime as rt


def function_value_grad(w, x):
    # forward
    act = ACTIVATIONS["tanh"]
    _t1 = x @ w
    _t2, _t2_pullback = rt.call_vjp(act, _t1, wrt=(0,))
    _t3 = _t2 ** 2

    # backward
    del act, _t1  # not read by the backward pass
    # adjoint of: return np.sum(act(x @ w) ** 2)  (line N)
    d_t3 = rt.sum_adjoint(1.0, _t3)
    d_t2 = d_t3 * 2 * _t2
    d_t1 = _t2_pullback(d_t2)
    dw = rt.matmul_adjoint_x2(d_t1, x, w)
    return dw
