from srcdiff import runtime as rt


def comprehension_grad(w, x):
    # forward
    heads = []
    heads_1 = heads
    _tape1 = rt.Tape()
    # x[i] @ w for every i at once
    x_w = rt.rows_matmul(x, w)
    for i in range(len(x)):
        heads_2 = heads_1
        _t1 = x[i]
        _t2 = x_w[i]
        _t3 = np.tanh(_t2)
        heads_3 = rt.append_in_place(heads_2, _t3)
        heads_1 = heads_3
        # kept for the pullback: _t1, _t3
        _tape1.push((_t1, _t3))
    _t4 = np.stack(heads_1)

    def comprehension_pullback():
        # adjoint of: return np.sum(np.stack(heads) ** 2)  (line N)
        d_t4 = 2.0 * _t4
        dheads_1 = list(rt.stack_adjoint(d_t4, heads_1))
        # adjoint of: heads = [np.tanh(x[i] @ w) for i in range(len(x))]  (line N)
        dw_terms = []
        for _t1, _t3 in reversed(_tape1):
            dheads_3 = dheads_1
            d_t3 = rt.pop_adjoint(dheads_3, heads)
            dheads_2 = dheads_3
            d_t2 = d_t3 * (1.0 - _t3 * _t3)
            dw_terms.append((d_t2, _t1))
            dheads_1 = dheads_2
        # the loop's matmul terms, summed at once
        dw = rt.matmul_adjoint_x2_sum(dw_terms, w)
        return dw

    del x_w  # not read by the backward pass
    return comprehension_pullback()
