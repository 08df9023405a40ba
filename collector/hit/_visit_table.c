/* The visit tracker's compiled form (hit/visitors.py VisitTracker; issue 17, RSS after 10^6
 * distinct visitors).
 *
 * The same record as VisitTracker's dict — visitor key -> last seen (whole seconds) << 2 |
 * page views in the visit (1, 2, 3 = more), pruned the same way when full — kept as one
 * open-addressing table of (key, entry) pairs of 64-bit words instead of a dict of bytes and
 * int objects: 16 bytes a slot, at most half of the slots used (100,000 visitors in 4 MB,
 * against ~12.5 MB of dict, 8-byte bytes keys and ints: bench/RESULTS.md, session 14). The key
 * is the visitor key's 8 bytes themselves (hit/visitors.py DIGEST_SIZE), so two visitors are
 * one only when their keys are equal, as in the dict. No Python object per visitor, so the
 * garbage collector has nothing to walk (the type is not a GC container).
 *
 * An entry is never 0 (its page count is at least 1): 0 marks an empty slot.
 * hit/visitors.py keeps the dict as the fallback when this is not built; both answer alike
 * for every sequence of visits (tests/test_visit_tracker.py against each other).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY_BYTES 8

typedef struct {
    uint64_t key;
    uint64_t entry; /* 0: empty */
} Slot;

typedef struct {
    PyObject_HEAD
    int64_t timeout;       /* seconds idle that end a visit */
    Py_ssize_t max_entries;
    int shift;             /* 64 - log2(capacity) */
    size_t capacity;       /* a power of two, at least 2 * max_entries */
    Py_ssize_t count;
    Slot *slots;
    uint64_t *scratch;     /* 2 * max_entries words while a prune runs, else NULL */
} VisitTable;

/* Fibonacci hashing: the slot from the key's high bits after a multiply. */
static inline size_t first_slot(const VisitTable *self, uint64_t key) {
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> self->shift);
}

/* The slot holding `key`, or the empty slot where it would go. */
static inline Slot *find(const VisitTable *self, uint64_t key) {
    size_t mask = self->capacity - 1;
    size_t at = first_slot(self, key);
    for (;;) {
        Slot *slot = &self->slots[at];
        if (slot->entry == 0 || slot->key == key) {
            return slot;
        }
        at = (at + 1) & mask;
    }
}

static int VisitTable_init(VisitTable *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"timeout", "max_entries", NULL};
    long long timeout;
    Py_ssize_t max_entries;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Ln", keywords, &timeout, &max_entries)) {
        return -1;
    }
    if (max_entries < 1 || max_entries > ((Py_ssize_t)1 << 36) || timeout < 0 || timeout > ((long long)1 << 40)) {
        PyErr_SetString(PyExc_ValueError, "max_entries must be between 1 and 2**36, timeout between 0 and 2**40");
        return -1;
    }
    if (self->slots != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "VisitTable is initialised once");
        return -1;
    }
    size_t capacity = 8;
    int bits = 3;
    while (capacity < 2 * (size_t)max_entries) {
        capacity *= 2;
        bits += 1;
    }
    /* Zeroed by calloc: mapped pages that become resident as visitors are written into them.
     * PyMem_Raw: tracemalloc sees it. */
    self->slots = PyMem_RawCalloc(capacity, sizeof(Slot));
    if (self->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->timeout = timeout;
    self->max_entries = max_entries;
    self->capacity = capacity;
    self->shift = 64 - bits;
    self->count = 0;
    return 0;
}

static void VisitTable_dealloc(VisitTable *self) {
    PyMem_RawFree(self->slots);
    PyMem_RawFree(self->scratch);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Keep only the entries >= `lowest`, re-placed in a cleared table (as the dict's
 * comprehension builds a new dict). The survivors wait in `scratch` as key, entry pairs:
 * at most max_entries of them, so 2 * max_entries words. */
static void keep_from(VisitTable *self, uint64_t lowest) {
    Py_ssize_t kept = 0;
    for (size_t i = 0; i < self->capacity; i++) {
        Slot slot = self->slots[i];
        if (slot.entry != 0 && slot.entry >= lowest) {
            self->scratch[2 * kept] = slot.key;
            self->scratch[2 * kept + 1] = slot.entry;
            kept++;
        }
    }
    memset(self->slots, 0, self->capacity * sizeof(Slot));
    for (Py_ssize_t i = 0; i < kept; i++) {
        Slot *slot = find(self, self->scratch[2 * i]);
        slot->key = self->scratch[2 * i];
        slot->entry = self->scratch[2 * i + 1];
    }
    self->count = kept;
}

static int compare_words(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* VisitTracker.prune: forget those idle over the timeout; if the table is still full (all
 * recent), those not strictly newer than the median entry — ties go too, so at least half
 * always does. */
static int prune(VisitTable *self, double now) {
    /* Held only while it runs (a prune comes once per tens of thousands of new visitors). */
    self->scratch = PyMem_RawMalloc(2 * (size_t)self->max_entries * sizeof(uint64_t));
    if (self->scratch == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int64_t cutoff_seconds = (int64_t)(now - (double)self->timeout);
    uint64_t cutoff = cutoff_seconds > 0 ? (uint64_t)cutoff_seconds << 2 : 0;
    keep_from(self, cutoff);
    if (self->count >= self->max_entries) {
        Py_ssize_t n = 0;
        for (size_t i = 0; i < self->capacity; i++) {
            if (self->slots[i].entry != 0) {
                self->scratch[n++] = self->slots[i].entry;
            }
        }
        qsort(self->scratch, (size_t)n, sizeof(uint64_t), compare_words);
        keep_from(self, self->scratch[n / 2] + 1);
    }
    PyMem_RawFree(self->scratch);
    self->scratch = NULL;
    return 0;
}

/* visit(visitor, now) -> the page views of the visitor's visit with this one: 1 (it starts a
 * visit), 2, or 3 (more). As VisitTracker.visit_flag, which maps them to the flags. */
static PyObject *VisitTable_visit(VisitTable *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "visit() takes a visitor key and a time");
        return NULL;
    }
    if (self->slots == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "VisitTable was not initialised");
        return NULL;
    }
    if (!PyBytes_Check(args[0]) || PyBytes_GET_SIZE(args[0]) != KEY_BYTES) {
        PyErr_SetString(PyExc_ValueError, "a visitor key is 8 bytes");
        return NULL;
    }
    double now = PyFloat_AsDouble(args[1]);
    if (now == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (!(now >= 0.0 && now < 4e15)) { /* stamps are whole seconds << 2 in 64 bits */
        PyErr_SetString(PyExc_ValueError, "the time is out of range");
        return NULL;
    }
    uint64_t key;
    memcpy(&key, PyBytes_AS_STRING(args[0]), KEY_BYTES);
    uint64_t stamp = (uint64_t)(int64_t)now << 2;
    Slot *slot = find(self, key);
    uint64_t entry = slot->entry;
    if (entry == 0 || (int64_t)(stamp - (entry & ~(uint64_t)3)) > (self->timeout << 2)) {
        /* A new visit. Full: pruned first, whether or not the visitor is held (as the dict's
         * tracker does); an idle visitor held is pruned with the others, and comes back. */
        if (self->count >= self->max_entries) {
            if (prune(self, now) < 0) {
                return NULL;
            }
            slot = find(self, key);
        }
        if (slot->entry == 0) {
            slot->key = key;
            self->count++;
        }
        slot->entry = stamp | 1;
        return PyLong_FromLong(1);
    }
    uint64_t pages = (entry & 3) + 1;
    if (pages > 3) {
        pages = 3;
    }
    slot->entry = stamp | pages;
    return PyLong_FromLong((long)pages);
}

static Py_ssize_t VisitTable_len(VisitTable *self) {
    return self->count;
}

static PyMethodDef VisitTable_methods[] = {
    {"visit", (PyCFunction)(void (*)(void))VisitTable_visit, METH_FASTCALL,
     "visit(visitor, now) -> page views of the visitor's visit with this one: 1 (a new visit), 2 or 3 (more)."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods VisitTable_as_sequence = {
    .sq_length = (lenfunc)VisitTable_len,
};

static PyTypeObject VisitTableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "collector.hit._visit_table.VisitTable",
    .tp_doc = "VisitTable(timeout, max_entries): the visit tracker's table of 8-byte visitor keys.",
    .tp_basicsize = sizeof(VisitTable),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)VisitTable_init,
    .tp_dealloc = (destructor)VisitTable_dealloc,
    .tp_methods = VisitTable_methods,
    .tp_as_sequence = &VisitTable_as_sequence,
};

static struct PyModuleDef visit_table_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "collector.hit._visit_table",
    .m_doc = "The visit tracker's table of 8-byte visitor keys (hit/visitors.py VisitTracker).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__visit_table(void) {
    if (PyType_Ready(&VisitTableType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&visit_table_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&VisitTableType);
    if (PyModule_AddObject(module, "VisitTable", (PyObject *)&VisitTableType) < 0) {
        Py_DECREF(&VisitTableType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
