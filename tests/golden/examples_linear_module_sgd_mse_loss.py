from srcdiff import runtime as rt


# derivatives of the functions it calls, compiled on first use
linear_vjp = rt.derivative_of(linear, ('w', 'b'))


def mse_loss_grad(params, x, y):
    # forward
    _t1 = params["w"]
    _t2 = params["b"]
    outputs, outputs_pullback = linear_vjp(x, _t1, _t2)
    _t3 = outputs - y

    # backward
    del _t1, _t2  # not read by the backward pass
    # adjoint of: return np.mean((outputs - y) ** 2)  (line N)
    d_t3 = (1.0 / rt.count(_t3)) * 2 * _t3
    doutputs = rt.unbroadcast(d_t3, outputs)
    # adjoint of: outputs = linear(x, params["w"], params["b"])  (line N)
    d_t1, d_t2 = outputs_pullback(doutputs)
    dparams = rt.tree_put(params, "b", d_t2)
    dparams = rt.tree_add_at(dparams, params, "w", d_t1)
    return dparams
