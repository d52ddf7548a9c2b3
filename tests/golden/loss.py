from srcdiff import runtime as rt


def loss_vjp(w, b, x, y):
    # forward
    _t1 = x @ w
    pred = _t1 + b
    _t2 = pred - y
    _t3 = _t2 ** 2
    _out = np.mean(_t3)

    def loss_pullback(d_out):
        # adjoint of: return np.mean((pred - y) ** 2)  (line N)
        d_t3 = rt.mean_adjoint(d_out, _out, _t3)
        d_t2 = d_t3 * 2 * _t2
        dpred = rt.unbroadcast(d_t2, pred)
        # adjoint of: pred = x @ w + b  (line N)
        d_t1 = rt.unbroadcast(dpred, _t1)
        db = rt.unbroadcast(dpred, b)
        dw = rt.matmul_adjoint_x2(d_t1, x, w)
        return dw, db

    return _out, loss_pullback
