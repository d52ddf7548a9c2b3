/* srcdiff._dispatch: the first test of a gradient's written-out call, in C.

   srcdiff.fast_call writes, for each gradient, a Python __call__ that checks its arguments
   (each array's type, shape and dtype; each number's type), calls the generated gradient
   of the first signature it compiled, and makes each gradient the caller's own. For a
   64x3 least-squares gradient (~5 us) those checks cost ~0.5 us in Python. A FirstCall does
   the same tests on numpy's array struct (~0.05 us), then calls the same generated function;
   everything else (other shapes and types, keywords, a rebound __code__) goes to the Python
   call unchanged. What is tested, and what is done with each gradient, is the table
   srcdiff.fast_call.first_spec builds; this file only runs it.

   A FirstCall is installed as the gradient class's __call__: it is a method descriptor
   (Py_TPFLAGS_METHOD_DESCRIPTOR), so Python calls it with the gradient object first, and
   vectorcall takes the arguments with no tuple. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#define NPY_NO_DEPRECATED_API NPY_2_0_API_VERSION
#include <numpy/arrayobject.h>

/* what an argument must be (an entry of first_spec's "arguments") */
enum { ARG_ARRAY = 0, ARG_NUMBER = 1, ARG_TYPE = 2 };
/* what is done with a gradient (an entry of first_spec's "gradients") */
enum { GRAD_AS_IS = 0, GRAD_DTYPE = 1, GRAD_ARRAY = 2, GRAD_NUMBER = 3, GRAD_SLOW = 4 };

#define MAX_ARGS 32
#define MAX_DIMS 8

typedef struct {
    int kind;               /* ARG_* */
    int ndim;               /* ARG_ARRAY: the shape it must have */
    npy_intp shape[MAX_DIMS];
    int strict;             /* ARG_ARRAY: float64 only (the float64 variant); else by kind */
    int wrt;                /* ARG_ARRAY: differentiated (any float dtype) or not (not complex) */
    PyTypeObject *type;     /* ARG_TYPE: its exact type */
} ArgSpec;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Py_ssize_t nargs;
    ArgSpec args[MAX_ARGS];
    Py_ssize_t ngrads;
    Py_ssize_t positions[MAX_ARGS];  /* the argument each gradient is of */
    int grads[MAX_ARGS];             /* GRAD_* */
    int single, with_value;
    PyObject *fn;        /* the user's function: its __code__ must still be code */
    PyObject *code;
    PyObject *function;  /* the generated gradient of the first signature */
    PyObject *key;       /* the gradient object's _last after a call (what .source shows) */
    PyObject *other;     /* the Python call: other(self, *args, **kwargs) for everything else */
    PyObject *slow;      /* slow(g, x, args, True): the general conversion of a gradient */
} FirstCall;

static PyTypeObject *float64_type;  /* numpy.float64 */
static PyArray_Descr *float64_descr;
static PyObject *str_last, *str_copy;

static PyObject *
other_call(FirstCall *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return PyObject_Vectorcall(self->other, args, PyVectorcall_NARGS(nargsf), kwnames);
}

/* the gradient g of argument x made the caller's own, or NULL with an error set */
static PyObject *
owned(FirstCall *self, Py_ssize_t n, PyObject *g, PyObject *const *x, PyArray_Descr **descrs,
      PyTypeObject **kinds, PyObject **args_tuple)
{
    Py_ssize_t p = self->positions[n];
    int how = self->grads[n];
    if (how == GRAD_AS_IS)
        return g;
    if (how == GRAD_NUMBER) {
        PyTypeObject *kind = Py_TYPE(g);
        if (kind == kinds[p])
            return g;
        if (kind == &PyFloat_Type || kind == float64_type) {
            PyObject *r = PyObject_CallOneArg((PyObject *)kinds[p], g);
            Py_DECREF(g);
            return r;
        }
    }
    else if (how == GRAD_DTYPE || how == GRAD_ARRAY) {
        if (Py_TYPE(g) == &PyArray_Type) {
            PyArrayObject *a = (PyArrayObject *)g;
            PyArray_Descr *d = PyArray_DESCR(a);
            int same = d == descrs[p] || PyArray_EquivTypes(d, descrs[p]);
            if (same && how == GRAD_DTYPE)
                return g;
            if (same && PyArray_BASE(a) == NULL && PyArray_ISWRITEABLE(a) &&
                    PyArray_NDIM(a) == self->args[p].ndim &&
                    memcmp(PyArray_DIMS(a), self->args[p].shape,
                           self->args[p].ndim * sizeof(npy_intp)) == 0) {
                for (Py_ssize_t j = 0; j < self->nargs; j++) {
                    if (j != p && g == x[j]) {  /* d/dx sum(x * y) may be y itself */
                        PyObject *r = PyObject_CallMethodNoArgs(g, str_copy);
                        Py_DECREF(g);
                        return r;
                    }
                }
                return g;
            }
        }
    }
    if (*args_tuple == NULL) {
        *args_tuple = PyTuple_New(self->nargs);
        if (*args_tuple == NULL) {
            Py_DECREF(g);
            return NULL;
        }
        for (Py_ssize_t j = 0; j < self->nargs; j++) {
            Py_INCREF(x[j]);
            PyTuple_SET_ITEM(*args_tuple, j, x[j]);
        }
    }
    PyObject *r = PyObject_CallFunctionObjArgs(self->slow, g, x[p], *args_tuple, Py_True, NULL);
    Py_DECREF(g);
    return r;
}

static PyObject *
first_call(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    FirstCall *self = (FirstCall *)callable;
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    PyArray_Descr *descrs[MAX_ARGS];
    PyTypeObject *kinds[MAX_ARGS];
    if (kwnames != NULL || n != self->nargs + 1 ||
            PyFunction_GET_CODE(self->fn) != self->code)
        return other_call(self, args, nargsf, kwnames);
    PyObject *const *x = args + 1;  /* args[0]: the gradient object */
    for (Py_ssize_t i = 0; i < self->nargs; i++) {
        ArgSpec *spec = &self->args[i];
        PyObject *xi = x[i];
        if (spec->kind == ARG_ARRAY) {
            if (Py_TYPE(xi) != &PyArray_Type)
                return other_call(self, args, nargsf, kwnames);
            PyArrayObject *a = (PyArrayObject *)xi;
            if (PyArray_NDIM(a) != spec->ndim ||
                    memcmp(PyArray_DIMS(a), spec->shape, spec->ndim * sizeof(npy_intp)) != 0)
                return other_call(self, args, nargsf, kwnames);
            PyArray_Descr *d = PyArray_DESCR(a);
            if (d != float64_descr && (spec->strict ||
                    (spec->wrt ? d->kind != 'f' : d->kind == 'c')))
                return other_call(self, args, nargsf, kwnames);
            descrs[i] = d;
        }
        else if (spec->kind == ARG_NUMBER) {  /* a float or numpy's: one variant for both */
            kinds[i] = Py_TYPE(xi);
            if (kinds[i] != &PyFloat_Type && kinds[i] != float64_type)
                return other_call(self, args, nargsf, kwnames);
        }
        else if (Py_TYPE(xi) != spec->type) {
            return other_call(self, args, nargsf, kwnames);
        }
    }
    if (PyObject_SetAttr(args[0], str_last, self->key) < 0)
        return NULL;
    PyObject *result = PyObject_Vectorcall(self->function, x, self->nargs, NULL);
    if (result == NULL)
        return NULL;
    PyObject *value = NULL, *part = result;
    if (self->with_value) {  /* (value, gradients) */
        if (!PyTuple_CheckExact(result) || PyTuple_GET_SIZE(result) != 2) {
            Py_DECREF(result);
            PyErr_SetString(PyExc_TypeError, "srcdiff: a value_and_grad variant returned "
                            "something other than (value, gradients)");
            return NULL;
        }
        value = PyTuple_GET_ITEM(result, 0);
        part = PyTuple_GET_ITEM(result, 1);
        Py_INCREF(value);
    }
    PyObject *grads[MAX_ARGS];
    if (self->ngrads == 1) {
        grads[0] = part;
        Py_INCREF(part);
    }
    else {
        if (!PyTuple_CheckExact(part) || PyTuple_GET_SIZE(part) != self->ngrads) {
            Py_XDECREF(value);
            Py_DECREF(result);
            PyErr_SetString(PyExc_TypeError, "srcdiff: a gradient variant returned "
                            "the wrong number of gradients");
            return NULL;
        }
        for (Py_ssize_t k = 0; k < self->ngrads; k++) {
            grads[k] = PyTuple_GET_ITEM(part, k);
            Py_INCREF(grads[k]);
        }
    }
    Py_DECREF(result);
    PyObject *args_tuple = NULL;
    Py_ssize_t made = 0;
    for (; made < self->ngrads; made++) {
        grads[made] = owned(self, made, grads[made], x, descrs, kinds, &args_tuple);
        if (grads[made] == NULL)
            goto fail;
    }
    /* a gradient that is an earlier one (d/dx and d/dy of sum(f(x + y))): the caller's own */
    for (Py_ssize_t k = 1; k < self->ngrads; k++) {
        if (self->args[self->positions[k]].kind != ARG_ARRAY ||
                Py_TYPE(grads[k]) != &PyArray_Type)
            continue;
        for (Py_ssize_t j = 0; j < k; j++) {
            if (self->args[self->positions[j]].kind == ARG_ARRAY && grads[k] == grads[j]) {
                PyObject *copy = PyObject_CallMethodNoArgs(grads[k], str_copy);
                if (copy == NULL)
                    goto fail;
                Py_SETREF(grads[k], copy);
                break;
            }
        }
    }
    Py_XDECREF(args_tuple);
    PyObject *out;
    if (self->single) {
        out = grads[0];
    }
    else {
        out = PyTuple_New(self->ngrads);
        if (out == NULL) {
            made = self->ngrads;
            goto fail;
        }
        for (Py_ssize_t k = 0; k < self->ngrads; k++)
            PyTuple_SET_ITEM(out, k, grads[k]);
    }
    if (value != NULL) {
        PyObject *pair = PyTuple_Pack(2, value, out);
        Py_DECREF(value);
        Py_DECREF(out);
        return pair;
    }
    return out;
fail:
    for (Py_ssize_t k = 0; k < self->ngrads; k++) {
        if (k != made)  /* grads[made] is NULL: owned() has released it */
            Py_XDECREF(grads[k]);
    }
    Py_XDECREF(args_tuple);
    Py_XDECREF(value);
    return NULL;
}

static int
parse_arguments(FirstCall *self, PyObject *arguments)
{
    self->nargs = PyTuple_GET_SIZE(arguments);
    if (self->nargs > MAX_ARGS) {
        PyErr_SetString(PyExc_ValueError, "too many arguments for a FirstCall");
        return -1;
    }
    for (Py_ssize_t i = 0; i < self->nargs; i++) {
        ArgSpec *spec = &self->args[i];
        PyObject *entry = PyTuple_GET_ITEM(arguments, i), *shape = NULL, *type = NULL;
        if (!PyArg_ParseTuple(entry, "i|Oii", &spec->kind, &shape, &spec->strict, &spec->wrt))
            return -1;
        if (spec->kind == ARG_ARRAY) {
            if (!PyTuple_Check(shape) || PyTuple_GET_SIZE(shape) > MAX_DIMS) {
                PyErr_SetString(PyExc_ValueError, "an array's shape: a tuple of at most 8");
                return -1;
            }
            spec->ndim = (int)PyTuple_GET_SIZE(shape);
            for (int k = 0; k < spec->ndim; k++) {
                spec->shape[k] = PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, k));
                if (spec->shape[k] == -1 && PyErr_Occurred())
                    return -1;
            }
        }
        else if (spec->kind == ARG_TYPE) {
            type = shape;
            if (type == NULL || !PyType_Check(type)) {
                PyErr_SetString(PyExc_TypeError, "ARG_TYPE needs a type");
                return -1;
            }
            spec->type = (PyTypeObject *)type;
            Py_INCREF(type);
        }
        else if (spec->kind != ARG_NUMBER) {
            PyErr_SetString(PyExc_ValueError, "unknown argument kind");
            return -1;
        }
    }
    return 0;
}

static int
parse_gradients(FirstCall *self, PyObject *gradients)
{
    self->ngrads = PyTuple_GET_SIZE(gradients);
    if (self->ngrads < 1 || self->ngrads > self->nargs) {
        PyErr_SetString(PyExc_ValueError, "gradients: one to nargs (position, how) pairs");
        return -1;
    }
    for (Py_ssize_t k = 0; k < self->ngrads; k++) {
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(gradients, k), "ni", &self->positions[k],
                              &self->grads[k]))
            return -1;
        Py_ssize_t p = self->positions[k];
        int how = self->grads[k], kind;
        if (p < 0 || p >= self->nargs || how < GRAD_AS_IS || how > GRAD_SLOW) {
            PyErr_SetString(PyExc_ValueError, "a gradient's position or treatment");
            return -1;
        }
        kind = self->args[p].kind;
        if ((how <= GRAD_ARRAY) != (kind == ARG_ARRAY) || (how == GRAD_NUMBER) != (kind == ARG_NUMBER)) {
            PyErr_SetString(PyExc_ValueError, "a gradient's treatment does not fit its argument");
            return -1;
        }
    }
    return 0;
}

/* FirstCall(fn, function, key, other, slow, arguments, gradients, single, with_value) */
static PyObject *
first_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *fn, *function, *key, *other, *slow, *arguments, *gradients;
    int single, with_value;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "FirstCall takes its arguments by position");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!OOOOO!O!pp", &PyFunction_Type, &fn, &function, &key, &other,
                          &slow, &PyTuple_Type, &arguments, &PyTuple_Type, &gradients,
                          &single, &with_value))
        return NULL;
    FirstCall *self = (FirstCall *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = first_call;
    self->single = single;
    self->with_value = with_value;
    Py_INCREF(fn);
    self->fn = fn;
    self->code = PyFunction_GET_CODE(fn);
    Py_INCREF(self->code);
    Py_INCREF(function);
    self->function = function;
    Py_INCREF(key);
    self->key = key;
    Py_INCREF(other);
    self->other = other;
    Py_INCREF(slow);
    self->slow = slow;
    if (parse_arguments(self, arguments) < 0 || parse_gradients(self, gradients) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
first_traverse(FirstCall *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fn);
    Py_VISIT(self->code);
    Py_VISIT(self->function);
    Py_VISIT(self->key);
    Py_VISIT(self->other);
    Py_VISIT(self->slow);
    for (Py_ssize_t i = 0; i < self->nargs; i++) {
        if (self->args[i].kind == ARG_TYPE)
            Py_VISIT(self->args[i].type);
    }
    return 0;
}

static int
first_clear(FirstCall *self)
{
    Py_CLEAR(self->fn);
    Py_CLEAR(self->code);
    Py_CLEAR(self->function);
    Py_CLEAR(self->key);
    Py_CLEAR(self->other);
    Py_CLEAR(self->slow);
    for (Py_ssize_t i = 0; i < self->nargs; i++) {
        if (self->args[i].kind == ARG_TYPE)
            Py_CLEAR(self->args[i].type);
    }
    return 0;
}

static void
first_dealloc(FirstCall *self)
{
    PyObject_GC_UnTrack(self);
    first_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef first_members[] = {
    {"function", T_OBJECT, offsetof(FirstCall, function), READONLY,
     "the generated gradient of the first signature"},
    {"key", T_OBJECT, offsetof(FirstCall, key), READONLY, "the first signature's call key"},
    {"other", T_OBJECT, offsetof(FirstCall, other), READONLY,
     "the Python call, for every other call"},
    {NULL},
};

static PyTypeObject FirstCallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srcdiff._dispatch.FirstCall",
    .tp_doc = PyDoc_STR("A gradient's __call__: the first signature's tests in C, else `other`."),
    .tp_basicsize = sizeof(FirstCall),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_new = first_new,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(FirstCall, vectorcall),
    .tp_traverse = (traverseproc)first_traverse,
    .tp_clear = (inquiry)first_clear,
    .tp_dealloc = (destructor)first_dealloc,
    .tp_members = first_members,
};

static PyObject *
first_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);
}

static struct PyModuleDef dispatch_module = {
    PyModuleDef_HEAD_INIT, "srcdiff._dispatch",
    "The first test of a gradient's written-out call, in C (see srcdiff.fast_call).", -1, NULL,
};

PyMODINIT_FUNC
PyInit__dispatch(void)
{
    import_array();
    FirstCallType.tp_descr_get = first_get;  /* g.__call__ bound; g(...) calls it unbound */
    if (PyType_Ready(&FirstCallType) < 0)
        return NULL;
    PyObject *numpy = PyImport_ImportModule("numpy");
    if (numpy == NULL)
        return NULL;
    float64_type = (PyTypeObject *)PyObject_GetAttrString(numpy, "float64");
    Py_DECREF(numpy);
    if (float64_type == NULL)
        return NULL;
    float64_descr = PyArray_DescrFromType(NPY_DOUBLE);
    str_last = PyUnicode_InternFromString("_last");
    str_copy = PyUnicode_InternFromString("copy");
    if (float64_descr == NULL || str_last == NULL || str_copy == NULL)
        return NULL;
    PyObject *module = PyModule_Create(&dispatch_module);
    if (module == NULL)
        return NULL;
    Py_INCREF(&FirstCallType);
    if (PyModule_AddObject(module, "FirstCall", (PyObject *)&FirstCallType) < 0 ||
            PyModule_AddIntConstant(module, "ARG_ARRAY", ARG_ARRAY) < 0 ||
            PyModule_AddIntConstant(module, "ARG_NUMBER", ARG_NUMBER) < 0 ||
            PyModule_AddIntConstant(module, "ARG_TYPE", ARG_TYPE) < 0 ||
            PyModule_AddIntConstant(module, "GRAD_AS_IS", GRAD_AS_IS) < 0 ||
            PyModule_AddIntConstant(module, "GRAD_DTYPE", GRAD_DTYPE) < 0 ||
            PyModule_AddIntConstant(module, "GRAD_ARRAY", GRAD_ARRAY) < 0 ||
            PyModule_AddIntConstant(module, "GRAD_NUMBER", GRAD_NUMBER) < 0 ||
            PyModule_AddIntConstant(module, "GRAD_SLOW", GRAD_SLOW) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
