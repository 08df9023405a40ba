/* store/aggregate.py's `add_incs`, in C (issue 17, POST per event; session 21).
 *
 * A deep event's increments (features/facts.py DeepFacts.incs: (key suffix, field,
 * amount) tuples, ~4 an event of the bench's POST-50 traffic) added into its (app,
 * minute)'s dict of suffix -> field -> total. Compiled by mypyc, each increment cost ~650
 * instructions: the tuple checked and unpacked, the amount unboxed and the total boxed
 * again, three dict calls through mypyc's wrappers (bench/RESULTS.md, session 21). This
 * makes the very same calls — a lookup by suffix, a lookup and a store by field, the
 * strings' hashes cached — without the rest.
 *
 * The Python function `add_incs` in store/aggregate.py is the reference (and what runs
 * when this is not built); tests/test_deep_incs.py draws increments, hostile ones
 * included, and checks that both leave the same dicts and raise alike. As the compiled
 * Python does: an increment that is not a tuple of (str, str, int) raises TypeError, a
 * tuple of another length ValueError, after the increments before it were added. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *zero;  /* the 0 a new field's total starts from: 0 + amount, as names.get(name, 0) + amount */

static int add_one(PyObject *of_suffix, PyObject *inc) {
    if (!PyTuple_Check(inc)) {
        PyErr_SetString(PyExc_TypeError, "add_incs: an increment must be a tuple (suffix, field, amount)");
        return -1;
    }
    if (PyTuple_GET_SIZE(inc) != 3) {
        PyErr_SetString(PyExc_ValueError, "add_incs: an increment must have 3 items (suffix, field, amount)");
        return -1;
    }
    PyObject *suffix = PyTuple_GET_ITEM(inc, 0);
    PyObject *name = PyTuple_GET_ITEM(inc, 1);
    PyObject *amount = PyTuple_GET_ITEM(inc, 2);
    if (!PyUnicode_Check(suffix) || !PyUnicode_Check(name) || !PyLong_Check(amount)) {
        PyErr_SetString(PyExc_TypeError, "add_incs: an increment must be (str, str, int)");
        return -1;
    }
    PyObject *names = PyDict_GetItemWithError(of_suffix, suffix);  /* borrowed */
    if (names == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        names = PyDict_New();
        if (names == NULL) {
            return -1;
        }
        int stored = PyDict_SetItem(of_suffix, suffix, names);
        Py_DECREF(names);  /* of_suffix holds it */
        if (stored < 0) {
            return -1;
        }
    } else if (!PyDict_Check(names)) {
        PyErr_SetString(PyExc_TypeError, "add_incs: a suffix's fields must be a dict");
        return -1;
    }
    PyObject *total = PyDict_GetItemWithError(names, name);  /* borrowed */
    if (total == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (total != NULL && !PyLong_Check(total)) {
        PyErr_SetString(PyExc_TypeError, "add_incs: a field's total must be an int");
        return -1;
    }
    PyObject *sum = PyNumber_Add(total != NULL ? total : zero, amount);
    if (sum == NULL) {
        return -1;
    }
    int stored = PyDict_SetItem(names, name, sum);
    Py_DECREF(sum);
    return stored;
}

/* add_incs(of_suffix, incs) -> None */
static PyObject *deep_incs_add_incs(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2 || !PyDict_Check(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "add_incs(of_suffix: dict, incs: list)");
        return NULL;
    }
    PyObject *of_suffix = args[0], *incs = args[1];
    /* By index, the length read each time: the list is the caller's, as in the Python loop. */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(incs); i++) {
        PyObject *inc = PyList_GET_ITEM(incs, i);
        Py_INCREF(inc);
        int done = add_one(of_suffix, inc);
        Py_DECREF(inc);
        if (done < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef deep_incs_methods[] = {
    {"add_incs", (PyCFunction)(void (*)(void))deep_incs_add_incs, METH_FASTCALL,
     "add_incs(of_suffix, incs): each (suffix, field, amount) of incs added to of_suffix[suffix][field]."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef deep_incs_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "collector.store._deep_incs",
    .m_doc = "store/aggregate.py's add_incs, in C.",
    .m_size = 0,
    .m_methods = deep_incs_methods,
};

PyMODINIT_FUNC PyInit__deep_incs(void) {
    zero = PyLong_FromLong(0);
    if (zero == NULL) {
        return NULL;
    }
    return PyModule_Create(&deep_incs_module);
}
