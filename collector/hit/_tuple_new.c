/* tuple.__new__(cls, items), for a plain tuple subclass, its items passed as arguments, in C
 * (hit/ingest.py _hit: a Hit per POST event; issue 17, session 20).
 *
 * Called from compiled code, `tuple.__new__(Hit, items)` went through the type call's
 * machinery: the builtin's argument tuple, tp_new_wrapper's checks, tuple_new's argument
 * parsing, tuple_subtype_new's re-made tuple of the items — ~950 instructions a hit
 * (bench/RESULTS.md, session 20). This is tuple_subtype_new's own work alone: the
 * subclass's object allocated (tp_alloc, which tracks it for the garbage collector as
 * tuple.__new__'s is) and the items put in it. The items come as the call's arguments
 * (compiled code passes them on its stack, session 23), not as a tuple of them: that tuple
 * was made, tracked by the garbage collector and freed again for every hit. Only for what
 * ingest asks it: a subclass of tuple that adds no room to its objects (a NamedTuple:
 * `__slots__ = ()`); anything else is a TypeError, never a different object. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *tuple_of(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs < 1 || !PyType_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "tuple_of(cls, *items)");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    if (!PyType_IsSubtype(cls, &PyTuple_Type) || cls->tp_basicsize != PyTuple_Type.tp_basicsize
        || cls->tp_itemsize != PyTuple_Type.tp_itemsize || cls->tp_alloc == NULL) {
        PyErr_SetString(PyExc_TypeError, "tuple_of: cls must be a tuple subclass without instance fields");
        return NULL;
    }
    Py_ssize_t count = nargs - 1;
    PyObject *made = cls->tp_alloc(cls, count);
    if (made == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = args[i + 1];
        Py_INCREF(item);
        PyTuple_SET_ITEM(made, i, item);
    }
    return made;
}

static PyMethodDef tuple_new_methods[] = {
    {"tuple_of", (PyCFunction)(void (*)(void))tuple_of, METH_FASTCALL,
     "tuple_of(cls, *items) -> tuple.__new__(cls, items), for a tuple subclass without instance fields."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef tuple_new_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "collector.hit._tuple_new",
    .m_doc = "tuple.__new__(cls, items) in C, the items as arguments, for hit/ingest.py's Hit.",
    .m_size = 0,
    .m_methods = tuple_new_methods,
};

PyMODINIT_FUNC PyInit__tuple_new(void) {
    return PyModule_Create(&tuple_new_module);
}
