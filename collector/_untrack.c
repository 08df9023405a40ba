/* collector/untracked.py's `untracked`, as a C function (issue 17, POST per event).
 *
 * The same call as the ctypes one it replaces — PyObject_GC_UnTrack, CPython's own — but
 * without ctypes' argument conversion and the Python frame of the wrapper around it:
 * ~0.3 µs a call there, made for every new cell of a snapshot's cube (about one per
 * POST-50 event: bench/RESULTS.md, session 15). The caller's promise is untracked.py's.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* untracked(container) -> container, no longer walked by the garbage collector. An
 * object the collector does not know (no GC header) is returned as it is. */
static PyObject *untrack_untracked(PyObject *module, PyObject *container) {
    (void)module;
    if (PyObject_IS_GC(container) && PyObject_GC_IsTracked(container)) {
        PyObject_GC_UnTrack(container);
    }
    Py_INCREF(container);
    return container;
}

static PyMethodDef untrack_methods[] = {
    {"untracked", (PyCFunction)untrack_untracked, METH_O,
     "untracked(container) -> container, no longer walked by the garbage collector (collector/untracked.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef untrack_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "collector._untrack",
    .m_doc = "collector/untracked.py's untracked, in C.",
    .m_size = 0,
    .m_methods = untrack_methods,
};

PyMODINIT_FUNC PyInit__untrack(void) {
    return PyModule_Create(&untrack_module);
}
