from srcdiff import runtime as rt


def rnn_grad(w, x):
    # forward
    _t1 = x[0]
    h = _t1 * 0.0
    h_1 = h
    _tape1 = rt.Tape()
    for t in range(len(x)):
        h_2 = h_1
        _t2 = h_2 * w
        _t3 = x[t]
        _t4 = _t2 + _t3
        h_3 = np.tanh(_t4)
        h_1 = h_3
        # kept for the pullback: t, h_2, _t2, _t3, h_3
        _tape1.push((t, h_2, _t2, _t3, h_3))

    def rnn_pullback():
        # adjoint of: return np.sum(h)  (line N)
        dh_1 = rt.sum_adjoint(1.0, h_1)
        # adjoint of: for t in range(len(x)):  (line N)
        dw = rt.zeros_like(w)
        dx = rt.zeros_like(x)
        for t, h_2, _t2, _t3, h_3 in reversed(_tape1):
            # adjoint of: h = np.tanh(h * w + x[t])  (line N)
            dh_3 = dh_1
            d_t4 = dh_3 * (1.0 - h_3 * h_3)
            d_t2 = rt.unbroadcast(d_t4, _t2)
            d_t3 = rt.unbroadcast(d_t4, _t3)
            dx = rt.add_at(dx, d_t3, x, key=rt.at[t])
            dh_2 = rt.unbroadcast(d_t2 * w, h_2)
            dw = rt.add_into(dw, rt.unbroadcast(d_t2 * h_2, w))
            # adjoint of: for t in range(len(x)):  (line N)
            dh_1 = dh_2
        dh = dh_1
        # adjoint of: h = x[0] * 0.0  (line N)
        d_t1 = dh * 0.0
        dx = rt.add_at(dx, d_t1, x, key=rt.at[0])
        return dw, dx

    del _t1, h  # not read by the backward pass
    return rnn_pullback()
