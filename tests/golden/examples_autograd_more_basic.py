from srcdiff import runtime as rt


def basic_vjp(x):
    # forward
    y = x + 2
    _t1 = y * y
    z = _t1 * 3
    out = z.mean()

    def basic_pullback(dout):
        # adjoint of: out = z.mean()  (line N)
        dz = rt.mean_adjoint(dout, out, z)
        # adjoint of: z = y * y * 3  (line N)
        d_t1 = dz * 3
        dy = 2 * d_t1 * y
        # adjoint of: y = x + 2  (line N)
        dx = dy
        return dx

    return out, basic_pullback
