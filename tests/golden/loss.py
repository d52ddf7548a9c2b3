from srcdiff import runtime as rt


def loss_grad(w, b, x, y):
    # forward
    _t1 = x @ w
    pred = _t1 + b
    _t2 = pred - y

    # backward
    # adjoint of: return np.mean((pred - y) ** 2)  (line N)
    d_t2 = (1.0 / rt.count(_t2)) * 2 * _t2
    dpred = rt.unbroadcast(d_t2, pred)
    # adjoint of: pred = x @ w + b  (line N)
    d_t1 = rt.unbroadcast(dpred, _t1)
    db = rt.unbroadcast(dpred, b)
    dw = rt.matmul_adjoint_x2(d_t1, x, w)
    return dw, db
