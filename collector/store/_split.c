/* store/aggregate.py's `_dicts_by_app` in C: a snapshot's dict split by app, each key put
 * into its app's dict with the hash the snapshot's dict already holds for it (issue 17,
 * POST batches).
 *
 * A cube key is a tuple of ten items, two of them tuples: a tuple keeps no hash, so putting
 * it into another dict from Python hashes it again, nested tuples and all (~290
 * instructions a POST-50 event of the flush's split, bench/RESULTS.md session 24). A dict
 * keeps each key's hash beside it: read with the key (_PyDict_Next), it is given back to
 * the new dict (_PyDict_SetItem_KnownHash), the same insert without the hashing.
 *
 * `dicts_by_first(entries, pace, every)` -> {key[0]: {key: value}} in `entries`' order, as
 * the Python form; `pace()` is called after every `every` entries (store/pacing.py: the
 * flusher's thread lets the hit loop take the GIL). The snapshot is sealed and nothing
 * changes it meanwhile; were it changed all the same, RuntimeError, as a dict's own
 * iteration raises. A key that is not a non-empty tuple: TypeError (the Python form would
 * raise too, or index its first character).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The dict of `first` in `out`, made empty when missing (a borrowed reference), or NULL. */
static PyObject *group_of(PyObject *out, PyObject *first) {
    PyObject *group = PyDict_GetItemWithError(out, first);
    if (group != NULL || PyErr_Occurred()) {
        return group;
    }
    group = PyDict_New();
    if (group == NULL) {
        return NULL;
    }
    int failed = PyDict_SetItem(out, first, group);
    Py_DECREF(group); /* `out` holds it */
    return failed ? NULL : group;
}

static PyObject *split_dicts_by_first(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 3 || !PyDict_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "dicts_by_first(entries: dict, pace, every: int)");
        return NULL;
    }
    PyObject *entries = args[0], *pace = args[1];
    Py_ssize_t every = PyLong_AsSsize_t(args[2]);
    if (every == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (every < 1) {
        PyErr_SetString(PyExc_ValueError, "dicts_by_first: every must be at least 1");
        return NULL;
    }
    PyObject *out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t size = PyDict_GET_SIZE(entries), position = 0, done = 0;
    PyObject *key, *value;
    Py_hash_t hash;
    while (_PyDict_Next(entries, &position, &key, &value, &hash)) {
        if (!PyTuple_Check(key) || PyTuple_GET_SIZE(key) == 0) {
            PyErr_SetString(PyExc_TypeError, "dicts_by_first: a key that is not a non-empty tuple");
            goto fail;
        }
        /* Held across the pace call below, which may let other threads run. */
        Py_INCREF(key);
        Py_INCREF(value);
        PyObject *group = group_of(out, PyTuple_GET_ITEM(key, 0));
        int failed = group == NULL || _PyDict_SetItem_KnownHash(group, key, value, hash) < 0;
        Py_DECREF(key);
        Py_DECREF(value);
        if (failed) {
            goto fail;
        }
        if (++done % every == 0) {
            PyObject *paced = PyObject_CallNoArgs(pace);
            if (paced == NULL) {
                goto fail;
            }
            Py_DECREF(paced);
            if (PyDict_GET_SIZE(entries) != size) {
                PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
                goto fail;
            }
        }
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef split_methods[] = {
    {"dicts_by_first", (PyCFunction)(void (*)(void))split_dicts_by_first, METH_FASTCALL,
     "dicts_by_first(entries, pace, every) -> {key[0]: {key: value}}, in entries' order (store/aggregate.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef split_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "collector.store._split",
    .m_doc = "store/aggregate.py's _dicts_by_app, in C: keys moved with their hashes.",
    .m_size = 0,
    .m_methods = split_methods,
};

PyMODINIT_FUNC PyInit__split(void) {
    return PyModule_Create(&split_module);
}
