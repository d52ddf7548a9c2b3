/* srcdiff.runtime._kernels: the mask selections of a ReLU and of its adjoint, one pass each.

   numpy has no one-pass ufunc for these; its spellings take two or three:
   - a float array times a bool mask of its shape (``g *= m``, ``a * (a > 0)``): numpy casts
     the mask to floats in buffered chunks, ~2-3x the time of a float product;
   - np.where's adjoint, ``g * m`` where every element of g is finite, else
     ``np.where(m, g, 0)`` (``g * m`` gives NaN where g is infinite and the branch is not
     taken): numpy tests every element for finiteness first (a pass and a mask);
   - the positive part with np.where's values (``np.where(a > 0, a, 0)``): ``np.fmax``, then
     ``+ 0.0`` to turn its -0.0 into np.where's +0.0 (two passes);
   - a ReLU spelled as a mask product, ``a * (a > 0)``: the comparison makes the mask (a pass
     and an array), the product reads it.

   Each function here writes its result into its first array and returns it, with exactly
   the values the numpy spelling gives (the loops compare and multiply as numpy's do, IEEE
   double or float arithmetic; tests/test_kernels.py compares them at NaN, infinities and
   signed zeros). It returns None, touching nothing, where the arrays are not what it
   handles: an exact numpy array, aligned, C-contiguous, writeable, native float64 or float32
   (the mask: bool, of the array's shape, in memory that does not overlap it). The caller
   (runtime/inplace.py) then computes the value with numpy. Optional like srcdiff._dispatch:
   without a C compiler the runtime runs the numpy spellings. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_2_0_API_VERSION
#include <numpy/arrayobject.h>
#include <string.h>

/* An array the loops can write: exact ndarray, float64 or float32, aligned, C-contiguous,
   writeable, native byte order. Its type number, or -1. */
static int
float_target(PyObject *obj)
{
    if (!PyArray_CheckExact(obj))
        return -1;
    PyArrayObject *a = (PyArrayObject *)obj;
    int type = PyArray_TYPE(a);
    if (type != NPY_DOUBLE && type != NPY_FLOAT)
        return -1;
    if (!PyArray_ISCARRAY(a) || !PyArray_ISNOTSWAPPED(a))
        return -1;
    return type;
}

/* A bool mask of a's shape, C-contiguous, in memory apart from a's. */
static int
mask_of(PyArrayObject *a, PyObject *obj)
{
    if (!PyArray_CheckExact(obj))
        return 0;
    PyArrayObject *m = (PyArrayObject *)obj;
    if (PyArray_TYPE(m) != NPY_BOOL || !PyArray_IS_C_CONTIGUOUS(m) ||
        !PyArray_SAMESHAPE(a, m))
        return 0;
    const char *a0 = PyArray_BYTES(a), *a1 = a0 + PyArray_NBYTES(a);
    const char *m0 = PyArray_BYTES(m), *m1 = m0 + PyArray_NBYTES(m);
    return m1 <= a0 || a1 <= m0;
}

/* The loops: plain C that compilers vectorize at -O3 (setup.py), no branch per element. */

/* numpy reads any nonzero byte of a bool array as True (1.0); the loop that converts the
   byte itself vectorizes, so each block is checked for bytes other than 0 and 1 first. */
#define BLOCK 4096

#define MASK_MULTIPLY(T)                                                        \
    static void mask_multiply_##T(T *restrict a, const npy_bool *restrict m,    \
                                  npy_intp n, int keep)                         \
    {                                                                           \
        for (npy_intp start = 0; start < n; start += BLOCK) {                   \
            npy_intp end = n - start < BLOCK ? n : start + BLOCK;               \
            npy_bool bits = 0;                                                  \
            for (npy_intp i = start; i < end; i++)                              \
                bits |= m[i];                                                   \
            if (bits <= 1)                                                      \
                for (npy_intp i = start; i < end; i++)                          \
                    a[i] = a[i] * (T)m[i];                                      \
            else                                                                \
                for (npy_intp i = start; i < end; i++)                          \
                    a[i] = a[i] * (T)(m[i] != 0);                               \
        }                                                                       \
    }

/* The adjoint of a branch of np.where, as the runtime rule computes it (rules._branch): where
   every element of a is finite, the product a * m (a * !m for the other branch; -0.0 for a
   negative element not taken); else np.where's values (+0.0 where not taken). One pass that
   notes a non-finite element (v - v is +0.0, all bits 0, for a finite v, and NaN for
   infinities and NaNs: the bits OR-ed, an integer reduction that vectorizes), and a second
   pass only where there is one. */
#define SELECT(T, BITS)                                                         \
    static void select_##T(T *restrict a, const npy_bool *restrict m,           \
                           npy_intp n, int keep)                                \
    {                                                                           \
        BITS bad = 0;                                                           \
        for (npy_intp start = 0; start < n; start += BLOCK) {                   \
            npy_intp end = n - start < BLOCK ? n : start + BLOCK;               \
            npy_bool bits = 0;                                                  \
            for (npy_intp i = start; i < end; i++)                              \
                bits |= m[i];                                                   \
            if (bits <= 1 && keep)                                              \
                for (npy_intp i = start; i < end; i++) {                        \
                    T v = a[i], d = v - v;                                      \
                    bad |= bits_##T(d);                                         \
                    a[i] = v * (T)m[i];                                         \
                }                                                               \
            else if (bits <= 1)                                                 \
                for (npy_intp i = start; i < end; i++) {                        \
                    T v = a[i], d = v - v;                                      \
                    bad |= bits_##T(d);                                         \
                    a[i] = v * (T)(m[i] ^ 1);                                   \
                }                                                               \
            else                                                                \
                for (npy_intp i = start; i < end; i++) {                        \
                    T v = a[i], d = v - v;                                      \
                    bad |= bits_##T(d);                                         \
                    a[i] = v * (T)((m[i] != 0) == keep);                        \
                }                                                               \
        }                                                                       \
        if (bad)                                                                \
            for (npy_intp i = 0; i < n; i++)                                    \
                a[i] = ((m[i] != 0) == keep) ? a[i] : (T)0;                     \
    }

#define POSITIVE_PART(T)                                                        \
    static void positive_part_##T(T *restrict a, npy_intp n)                    \
    {                                                                           \
        for (npy_intp i = 0; i < n; i++) {                                      \
            T v = a[i];                                                         \
            a[i] = v > (T)0 ? v : (T)0;                                         \
        }                                                                       \
    }

/* x * (x > 0): x where positive, else x * 0 (-0.0 for a negative x, NaN for NaN and -inf), as
   numpy's product with the mask gives; both sides computed, then one selected (the compiler
   may do that for every element: -fno-trapping-math, setup.py). */
#define POSITIVE_PRODUCT(T)                                                     \
    static void positive_product_##T(T *restrict a, npy_intp n)                 \
    {                                                                           \
        for (npy_intp i = 0; i < n; i++) {                                      \
            T v = a[i];                                                         \
            T zero = v * (T)0;                                                  \
            a[i] = v > (T)0 ? v : zero;                                         \
        }                                                                       \
    }

MASK_MULTIPLY(double)
MASK_MULTIPLY(float)
static inline npy_uint64 bits_double(double d) { npy_uint64 u; memcpy(&u, &d, 8); return u; }
static inline npy_uint32 bits_float(float d) { npy_uint32 u; memcpy(&u, &d, 4); return u; }

SELECT(double, npy_uint64)
SELECT(float, npy_uint32)
POSITIVE_PART(double)
POSITIVE_PART(float)
POSITIVE_PRODUCT(double)
POSITIVE_PRODUCT(float)

static PyObject *
returned(PyObject *a)
{
    Py_INCREF(a);
    return a;
}

PyDoc_STRVAR(mask_multiply_doc,
"mask_multiply(a, m)\n--\n\n"
"``a *= m`` for a float array ``a`` and a bool array ``m`` of its shape: ``a``, or None\n"
"(nothing written) where the arrays are not ones this handles.");

/* An array and its mask's loop, in place, for its dtype: the shared body of the two calls
   below (``keep``: select's branch; mask_multiply's loops ignore it). */
static PyObject *
with_mask(PyObject *const *args, int keep,
          void (*on_double)(double *, const npy_bool *, npy_intp, int),
          void (*on_float)(float *, const npy_bool *, npy_intp, int))
{
    int type = float_target(args[0]);
    if (type < 0 || !mask_of((PyArrayObject *)args[0], args[1]))
        Py_RETURN_NONE;
    PyArrayObject *a = (PyArrayObject *)args[0], *m = (PyArrayObject *)args[1];
    npy_intp n = PyArray_SIZE(a);
    NPY_BEGIN_ALLOW_THREADS
    if (type == NPY_DOUBLE)
        on_double(PyArray_DATA(a), PyArray_DATA(m), n, keep);
    else
        on_float(PyArray_DATA(a), PyArray_DATA(m), n, keep);
    NPY_END_ALLOW_THREADS
    return returned(args[0]);
}

static PyObject *
mask_multiply(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "mask_multiply(a, m) takes two arrays");
        return NULL;
    }
    return with_mask(args, 1, mask_multiply_double, mask_multiply_float);
}

PyDoc_STRVAR(select_doc,
"select(a, m, keep)\n--\n\n"
"``rt.where_adjoint_x(a, m)`` (``keep`` true) or ``rt.where_adjoint_y(a, m)`` (false),\n"
"written into the float array ``a``, for a bool array ``m`` of its shape: ``a``, or None\n"
"(nothing written) where the arrays are not ones this handles.");

static PyObject *
select_(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "select(a, m, keep) takes three arguments");
        return NULL;
    }
    int keep = PyObject_IsTrue(args[2]);
    if (keep < 0)
        return NULL;
    return with_mask(args, keep, select_double, select_float);
}

PyDoc_STRVAR(positive_part_doc,
"positive_part(a)\n--\n\n"
"``np.where(a > 0, a, 0)`` written into the float array ``a``: ``a``, or None (nothing\n"
"written) where the array is not one this handles.");

/* One array's loop, in place, for its dtype: the shared body of the two calls below. */
static PyObject *
in_place(PyObject *arg, void (*on_double)(double *, npy_intp), void (*on_float)(float *, npy_intp))
{
    int type = float_target(arg);
    if (type < 0)
        Py_RETURN_NONE;
    PyArrayObject *a = (PyArrayObject *)arg;
    npy_intp n = PyArray_SIZE(a);
    NPY_BEGIN_ALLOW_THREADS
    if (type == NPY_DOUBLE)
        on_double(PyArray_DATA(a), n);
    else
        on_float(PyArray_DATA(a), n);
    NPY_END_ALLOW_THREADS
    return returned(arg);
}

static PyObject *
positive_part(PyObject *module, PyObject *arg)
{
    return in_place(arg, positive_part_double, positive_part_float);
}

PyDoc_STRVAR(positive_product_doc,
"positive_product(a)\n--\n\n"
"``a * (a > 0)`` written into the float array ``a``: ``a``, or None (nothing written) where\n"
"the array is not one this handles.");

static PyObject *
positive_product(PyObject *module, PyObject *arg)
{
    return in_place(arg, positive_product_double, positive_product_float);
}

/* The stand-in for a stack read only for its shape and dtype (runtime/helpers.py, blank). */
static char zero_bytes[64];

PyDoc_STRVAR(stack_blank_doc,
"stack_blank(xs)\n--\n\n"
"For a non-empty list or tuple of exact numpy arrays of one shape and one dtype (of at most\n"
"64 bytes, holding no objects): a read-only array of ``np.stack(xs)``'s shape and dtype whose\n"
"every element is a zero of that dtype (all strides 0, no copy); None for anything else.");

static PyObject *
stack_blank(PyObject *module, PyObject *xs)
{
    if (!PyList_CheckExact(xs) && !PyTuple_CheckExact(xs))
        Py_RETURN_NONE;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(xs);
    PyObject **items = PySequence_Fast_ITEMS(xs);
    if (n == 0 || Py_TYPE(items[0]) != &PyArray_Type)
        Py_RETURN_NONE;
    PyArrayObject *first = (PyArrayObject *)items[0];
    PyArray_Descr *descr = PyArray_DESCR(first);
    int ndim = PyArray_NDIM(first);
    npy_intp *dims = PyArray_DIMS(first);
    if (ndim + 1 > NPY_MAXDIMS || PyDataType_ELSIZE(descr) > (npy_intp)sizeof(zero_bytes) ||
            PyDataType_REFCHK(descr))
        Py_RETURN_NONE;
    for (Py_ssize_t i = 1; i < n; i++) {
        if (Py_TYPE(items[i]) != &PyArray_Type)
            Py_RETURN_NONE;
        PyArrayObject *a = (PyArrayObject *)items[i];
        if (PyArray_NDIM(a) != ndim ||
                (PyArray_DESCR(a) != descr && !PyArray_EquivTypes(PyArray_DESCR(a), descr)))
            Py_RETURN_NONE;
        npy_intp *d = PyArray_DIMS(a);
        for (int k = 0; k < ndim; k++)
            if (d[k] != dims[k])
                Py_RETURN_NONE;
    }
    npy_intp shape[NPY_MAXDIMS], strides[NPY_MAXDIMS];
    shape[0] = n;
    strides[0] = 0;
    for (int k = 0; k < ndim; k++) {
        shape[k + 1] = dims[k];
        strides[k + 1] = 0;
    }
    Py_INCREF(descr);  /* NewFromDescr steals it */
    return PyArray_NewFromDescr(&PyArray_Type, descr, ndim + 1, shape, strides, zero_bytes,
                                0 /* not writeable, not owned */, NULL);
}

static PyMethodDef kernels_methods[] = {
    {"mask_multiply", (PyCFunction)(void (*)(void))mask_multiply, METH_FASTCALL, mask_multiply_doc},
    {"select", (PyCFunction)(void (*)(void))select_, METH_FASTCALL, select_doc},
    {"positive_part", positive_part, METH_O, positive_part_doc},
    {"positive_product", positive_product, METH_O, positive_product_doc},
    {"stack_blank", stack_blank, METH_O, stack_blank_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef kernels_module = {
    PyModuleDef_HEAD_INIT, "srcdiff.runtime._kernels",
    "One-pass mask selections for the in-place runtime (see runtime/_kernels.c).", -1,
    kernels_methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    import_array();
    return PyModule_Create(&kernels_module);
}
