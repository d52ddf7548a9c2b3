from srcdiff import runtime as rt


# derivatives of the functions it calls, compiled on first use
linear_vjp = rt.derivative_of(linear, ('w', 'b'))


def mse_loss_vjp(params, x, y):
    # forward
    _t1 = params["w"]
    _t2 = params["b"]
    outputs, outputs_pullback = linear_vjp(x, _t1, _t2)
    _t3 = outputs - y
    _t4 = _t3 ** 2
    _out = np.mean(_t4)

    def mse_loss_pullback(d_out):
        # adjoint of: return np.mean((outputs - y) ** 2)  (line N)
        d_t4 = rt.mean_adjoint(d_out, _out, _t4)
        d_t3 = d_t4 * 2 * _t3
        doutputs = rt.unbroadcast(d_t3, outputs)
        # adjoint of: outputs = linear(x, params["w"], params["b"])  (line N)
        d_t1, d_t2 = outputs_pullback(doutputs)
        dparams = rt.tree_put(params, "b", d_t2)
        dparams = rt.tree_add_at(dparams, params, "w", d_t1)
        return dparams

    return _out, mse_loss_pullback
