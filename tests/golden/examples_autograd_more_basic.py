from srcdiff import runtime as rt


def basic_grad(x):
    # forward
    y = x + 2

    # backward
    # adjoint of: z = y * y * 3  (line N)
    dy = 2 * ((1.0 / rt.count(x)) * 3) * y
    # adjoint of: y = x + 2  (line N)
    dx = dy
    return dx
