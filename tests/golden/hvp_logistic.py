from srcdiff import runtime as rt


def logistic_jvp_vjp(w, X, y, dw):
    # forward
    z = X @ w
    dz = X @ dw
    _t1 = np.logaddexp(0.0, z)
    _t8 = z - _t1
    _t9 = np.exp(_t8)
    d_t1 = dz * _t9
    _t2 = y * z
    d_t2 = dz * y
    _t3 = _t1 - _t2
    d_t3 = d_t1 - d_t2
    _t4 = np.mean(_t3)
    d_t4 = np.mean(d_t3)
    _t5 = w * w
    _t10 = 2 * dw
    d_t5 = _t10 * w
    _t6 = np.sum(_t5)
    d_t6 = np.sum(d_t5)
    _t7 = 0.01 * _t6
    d_t7 = d_t6 * 0.01
    _out = _t4 + _t7
    d_out = d_t4 + d_t7

    def logistic_jvp_pullback(dd_out):
        # adjoint of: d_out = d_t4 + d_t7  (line N)
        dd_t4 = rt.unbroadcast(dd_out, d_t4)
        dd_t7 = rt.unbroadcast(dd_out, d_t7)
        # adjoint of: d_t7 = d_t6 * 0.01  (line N)
        dd_t6 = dd_t7 * 0.01
        # adjoint of: d_t6 = np.sum(d_t5)  (line N)
        dd_t5 = rt.sum_adjoint(dd_t6, d_t5)
        # adjoint of: d_t5 = 2 * dw * w  (line N)
        dw_ = rt.unbroadcast(dd_t5 * _t10, w)
        # adjoint of: d_t4 = np.mean(d_t3)  (line N)
        dd_t3 = rt.mean_adjoint(dd_t4, d_t4, d_t3)
        # adjoint of: d_t3 = d_t1 - d_t2  (line N)
        dd_t1 = rt.unbroadcast(dd_t3, d_t1)
        # adjoint of: d_t1 = dz * np.exp(z - _t1)  (line N)
        d_t9 = rt.unbroadcast(dd_t1 * dz, _t9)
        d_t8 = d_t9 * _t9
        dz_ = rt.unbroadcast(d_t8, z)
        d_t1_ = -rt.unbroadcast(d_t8, _t1)
        # adjoint of: _t1 = np.logaddexp(0.0, z)  (line N)
        dz_ = dz_ + d_t1_ * np.exp(z - _t1)
        # adjoint of: z = X @ w  (line N)
        dw_ = dw_ + rt.matmul_adjoint_x2(dz_, X, w)
        return dw_

    return (d_out, _out), logistic_jvp_pullback
