/* The re-send record's compiled form (hit/remarks.py RecentIds; issue 17, RSS during POST).
 *
 * The same record as RecentIds' two sets — the 64-bit hash of (app, id), the newest
 * `generation` to 2 * `generation` of them in two generations, the older dropped when the
 * current one is full — kept as two open-addressing tables of 64-bit slots instead of sets of
 * int objects: 8 bytes a slot, at most half of the slots used (100,000 ids in 2 MB, against
 * ~7.4 MB of sets, whose ints were also made one per event among each request's short-lived
 * objects and kept pymalloc's pools from emptying). No Python object per id, so the garbage
 * collector has nothing to walk (the type is not a GC container).
 *
 * Why C and not mypyc: mypyc has no native fixed array of int64, so a table in compiled Python
 * made an int object at every probe (bench/RESULTS.md, session 13: 612-719 ns a lookup against
 * the sets' 323-333). hit/remarks.py keeps the sets as the fallback when this is not built.
 *
 * The hash is Python's own hash((app, event_id)), so both forms take the same ids for repeats.
 * pair_hash computes it without making the tuple (bench/RESULTS.md, session 27).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint64_t *slots;   /* 0 marks an empty slot; the key 0 itself is held by has_zero */
    Py_ssize_t count;  /* distinct keys held */
    int has_zero;
} Table;

typedef struct {
    PyObject_HEAD
    Py_ssize_t generation; /* keys a table holds before it becomes the previous one */
    int shift;             /* 64 - log2(slots) */
    size_t slots;          /* a power of two, at least 2 * generation */
    Table current;
    Table previous;
} IdGenerations;

/* Fibonacci hashing: the slot from the key's high bits after a multiply, so keys that share
 * their low bits (ints hash to themselves) still spread. */
static inline size_t first_slot(const IdGenerations *self, uint64_t key) {
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> self->shift);
}

/* Whether `table` holds `key`; `*empty` gets the empty slot where the search ended. */
static inline int holds(const IdGenerations *self, const Table *table, uint64_t key, size_t *empty) {
    if (key == 0) {
        return table->has_zero;
    }
    size_t mask = self->slots - 1;
    size_t slot = first_slot(self, key);
    for (;;) {
        uint64_t held = table->slots[slot];
        if (held == key) {
            return 1;
        }
        if (held == 0) {
            *empty = slot;
            return 0;
        }
        slot = (slot + 1) & mask;
    }
}

static int IdGenerations_init(IdGenerations *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"generation", NULL};
    Py_ssize_t generation;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n", keywords, &generation)) {
        return -1;
    }
    if (generation < 1 || generation > ((Py_ssize_t)1 << 40)) {
        PyErr_SetString(PyExc_ValueError, "generation must be between 1 and 2**40");
        return -1;
    }
    if (self->current.slots != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "IdGenerations is initialised once");
        return -1;
    }
    size_t slots = 8;
    int bits = 3;
    while (slots < 2 * (size_t)generation) {
        slots *= 2;
        bits += 1;
    }
    /* Zeroed memory for both tables at once: a large calloc is mapped pages that become
     * resident only as keys are written into them. PyMem_Raw: tracemalloc sees it. */
    self->current.slots = PyMem_RawCalloc(slots, sizeof(uint64_t));
    self->previous.slots = PyMem_RawCalloc(slots, sizeof(uint64_t));
    if (self->current.slots == NULL || self->previous.slots == NULL) {
        PyMem_RawFree(self->current.slots);
        PyMem_RawFree(self->previous.slots);
        self->current.slots = self->previous.slots = NULL;
        PyErr_NoMemory();
        return -1;
    }
    self->generation = generation;
    self->slots = slots;
    self->shift = 64 - bits;
    return 0;
}

static void IdGenerations_dealloc(IdGenerations *self) {
    PyMem_RawFree(self->current.slots);
    PyMem_RawFree(self->previous.slots);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* CPython's tuplehash (Objects/tupleobject.c, the same since 3.8) for the pair (a, b): the
 * value hash((a, b)) has, without the tuple. Making the pair and freeing it again cost ~200
 * instructions an event (bench/RESULTS.md, session 27). -1 when an item cannot be hashed. */
#if SIZEOF_PY_UHASH_T > 4
#define XXPRIME_1 ((Py_uhash_t)11400714785074694791ULL)
#define XXPRIME_2 ((Py_uhash_t)14029467366897019727ULL)
#define XXPRIME_5 ((Py_uhash_t)2870177450012600261ULL)
#define XXROTATE(x) ((x << 31) | (x >> 33))
#else
#define XXPRIME_1 ((Py_uhash_t)2654435761UL)
#define XXPRIME_2 ((Py_uhash_t)2246822519UL)
#define XXPRIME_5 ((Py_uhash_t)374761393UL)
#define XXROTATE(x) ((x << 13) | (x >> 19))
#endif

static Py_hash_t pair_hash(PyObject *a, PyObject *b) {
    PyObject *items[2] = {a, b};
    Py_uhash_t acc = XXPRIME_5;
    for (int i = 0; i < 2; i++) {
        Py_uhash_t lane = (Py_uhash_t)PyObject_Hash(items[i]);
        if (lane == (Py_uhash_t)-1) {
            return -1;
        }
        acc += lane * XXPRIME_2;
        acc = XXROTATE(acc);
        acc *= XXPRIME_1;
    }
    acc += 2 ^ (XXPRIME_5 ^ 3527539UL); /* the length, mangled as tuplehash does */
    if (acc == (Py_uhash_t)-1) {
        return 1546275796;
    }
    return (Py_hash_t)acc;
}

/* seen(app, event_id) -> bool: True when the id came before; else remember it. */
static PyObject *IdGenerations_seen(IdGenerations *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "seen() takes an app and an event id");
        return NULL;
    }
    if (self->current.slots == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "IdGenerations was not initialised");
        return NULL;
    }
    Py_hash_t hash = pair_hash(args[0], args[1]);
    if (hash == -1 && PyErr_Occurred()) {
        return NULL;
    }
    uint64_t key = (uint64_t)hash;
    size_t empty = 0;
    if (holds(self, &self->current, key, &empty)) {
        Py_RETURN_TRUE;
    }
    size_t unused;
    if (self->previous.count && holds(self, &self->previous, key, &unused)) {
        Py_RETURN_TRUE;
    }
    if (self->current.count >= self->generation) {
        /* The turn: the current generation becomes the previous one, the older is dropped
         * (its slots cleared and reused: no allocation, no memory handed back and taken again). */
        Table dropped = self->previous;
        self->previous = self->current;
        memset(dropped.slots, 0, self->slots * sizeof(uint64_t));
        dropped.count = 0;
        dropped.has_zero = 0;
        self->current = dropped;
        if (key != 0) {
            holds(self, &self->current, key, &empty);
        }
    }
    if (key == 0) {
        self->current.has_zero = 1;
    } else {
        self->current.slots[empty] = key;
    }
    self->current.count += 1;
    Py_RETURN_FALSE;
}

static Py_ssize_t IdGenerations_len(IdGenerations *self) {
    return self->current.count + self->previous.count;
}

static PyObject *IdGenerations_sizes(IdGenerations *self, PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue("(nn)", self->current.count, self->previous.count);
}

static PyMethodDef IdGenerations_methods[] = {
    {"seen", (PyCFunction)(void (*)(void))IdGenerations_seen, METH_FASTCALL,
     "seen(app, event_id) -> bool: True when the id came before; else remember it and return False."},
    {"sizes", (PyCFunction)IdGenerations_sizes, METH_NOARGS,
     "sizes() -> (ids in the current generation, ids in the previous one)."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods IdGenerations_as_sequence = {
    .sq_length = (lenfunc)IdGenerations_len,
};

static PyTypeObject IdGenerationsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "collector.hit._id_table.IdGenerations",
    .tp_doc = "IdGenerations(generation): the re-send record's two generations of 64-bit hashes.",
    .tp_basicsize = sizeof(IdGenerations),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)IdGenerations_init,
    .tp_dealloc = (destructor)IdGenerations_dealloc,
    .tp_methods = IdGenerations_methods,
    .tp_as_sequence = &IdGenerations_as_sequence,
};

static struct PyModuleDef id_table_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "collector.hit._id_table",
    .m_doc = "The re-send record's two generations of 64-bit hashes (hit/remarks.py RecentIds).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__id_table(void) {
    if (PyType_Ready(&IdGenerationsType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&id_table_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&IdGenerationsType);
    if (PyModule_AddObject(module, "IdGenerations", (PyObject *)&IdGenerationsType) < 0) {
        Py_DECREF(&IdGenerationsType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
