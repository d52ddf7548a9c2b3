from srcdiff import runtime as rt


def tanh_rnn_grad(w, u, xs):
    # forward
    h = np.zeros_like(u)
    h_1 = h
    _tape1 = rt.Tape()
    for _i in range(len(xs)):
        h_2 = h_1
        x = xs[_i]
        _t1 = w @ h_2
        _t2 = u * x
        _t3 = _t1 + _t2
        h_3 = np.tanh(_t3)
        h_1 = h_3
        # kept for the pullback: h_2, x, _t1, _t2, h_3
        _tape1.push((h_2, x, _t1, _t2, h_3))
    _t4 = h_1 ** 2

    def tanh_rnn_pullback():
        # adjoint of: return np.sum(h ** 2)  (line N)
        d_t4 = rt.sum_adjoint(1.0, _t4)
        dh_1 = d_t4 * 2 * h_1
        # adjoint of: for x in xs:  (line N)
        du = rt.zeros_like(u)
        dw_terms = []
        for h_2, x, _t1, _t2, h_3 in reversed(_tape1):
            # adjoint of: h = np.tanh(w @ h + u * x)  (line N)
            dh_3 = dh_1
            d_t3 = dh_3 * (1.0 - h_3 * h_3)
            d_t1 = rt.unbroadcast(d_t3, _t1)
            d_t2 = rt.unbroadcast(d_t3, _t2)
            du = rt.add_into(du, rt.unbroadcast(d_t2 * x, u))
            dw_terms.append((d_t1, h_2))
            dh_2 = rt.matmul_adjoint_x2(d_t1, w, h_2)
            # adjoint of: for x in xs:  (line N)
            dh_1 = dh_2
        # the loop's matmul terms, summed at once
        dw = rt.matmul_adjoint_x1_sum(dw_terms, w)
        return dw, du

    del h  # not read by the backward pass
    return tanh_rnn_pullback()
