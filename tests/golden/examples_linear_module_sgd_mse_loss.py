from srcdiff import runtime as rt


def mse_loss_grad(params, x, y):
    # forward
    _t1 = params["w"]
    _t2 = params["b"]
    outputs = x.dot(_t1)
    outputs += _t2
    _t3 = outputs
    _t3 -= y

    # backward
    del _t1, _t2, outputs  # not read by the backward pass
    # adjoint of: return np.mean((outputs - y) ** 2)  (line N)
    d_t3 = _t3
    d_t3 *= (1.0 / (_t3.size or 1)) * 2
    doutputs = d_t3
    # adjoint of: return x @ w + b  (line N)
    d_t5 = doutputs
    d_t2 = doutputs.sum(axis=0)
    d_t1 = x.T.dot(d_t5)
    # adjoint of: outputs = linear(x, params["w"], params["b"])  (line N)
    dparams = {"w": d_t1, "b": d_t2}
    return dparams
