from srcdiff import runtime as rt


# tangents of the functions it calls, compiled on first use
cell_jvp = rt.tangent_of(cell, ('a',))


def rnn_jvp(x, W, n, dx, dW):
    # tangent of: h = x  (line N)
    h = x
    dh = dx
    # tangent of: for t in range(n):  (line N)
    h_1 = h
    dh_1 = dh
    for t in range(n):
        h_2 = h_1
        dh_2 = dh_1
        # tangent of: h = cell(W @ h, 2.0) + x  (line N)
        _t1 = W @ h_2
        d_t1 = dW @ h_2 + W @ dh_2
        _t2, d_t2 = cell_jvp(_t1, 2.0, d_t1)
        h_3 = _t2 + x
        dh_3 = d_t2 + dx
        # tangent of: if np.sum(h) > 0:  (line N)
        _c1 = np.sum(h_3) > 0
        if _c1:
            # tangent of: h = h * 0.5  (line N)
            h_4 = h_3 * 0.5
            dh_4 = dh_3 * 0.5
        else:
            h_4 = h_3
            dh_4 = dh_3
        h_1 = h_4
        dh_1 = dh_4
    # tangent of: return np.sum(h ** 2) / len(x)  (line N)
    _t3 = h_1 ** 2
    d_t3 = dh_1 * 2 * h_1
    _t4 = np.sum(_t3)
    d_t4 = np.sum(d_t3)
    _t5 = len(x)
    _out = _t4 / _t5
    d_out = d_t4 / rt.guard(_t5, d_t4)
    return _out, d_out
