from srcdiff import runtime as rt


def mse_loss_grad(params, x, y):
    # forward
    _t1 = params["w"]
    _t2 = params["b"]
    _t5 = x @ _t1
    outputs = _t5 + _t2
    _t3 = outputs - y

    # backward
    # adjoint of: return np.mean((outputs - y) ** 2)  (line N)
    d_t3 = (1.0 / rt.count(_t3)) * 2 * _t3
    doutputs = rt.unbroadcast(d_t3, outputs)
    # adjoint of: return x @ w + b  (line N)
    d_t5 = rt.unbroadcast(doutputs, _t5)
    d_t2 = rt.unbroadcast(doutputs, _t2)
    d_t1 = rt.matmul_adjoint_x2(d_t5, x, _t1)
    # adjoint of: outputs = linear(x, params["w"], params["b"])  (line N)
    dparams = rt.tree_put(params, "b", d_t2)
    dparams = rt.tree_add_at(dparams, params, "w", d_t1)
    return dparams
