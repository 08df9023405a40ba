/* Tables of 64-bit hashes. The re-send record's compiled form (hit/remarks.py RecentIds; issue
 * 17, RSS during POST), and below it the UV guard's memory of a minute (HashSet, HashCounts).
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
 * their low bits (ints hash to themselves) still spread. `shift`: 64 - log2(slots). */
static inline size_t first_slot(int shift, uint64_t key) {
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> shift);
}

/* Whether `slots` (a power of two of them, `shift` as first_slot's; 0 marks an empty slot,
 * so the key 0 is held beside them, as `has_zero`) hold the key `key`; `*at` gets the slot
 * holding it, or the empty one where the search ended (unset for the key 0). */
static inline int probe(const uint64_t *slots, int has_zero, size_t count, int shift, uint64_t key, size_t *at) {
    if (key == 0) {
        return has_zero;
    }
    size_t mask = count - 1;
    size_t slot = first_slot(shift, key);
    for (;;) {
        uint64_t held = slots[slot];
        if (held == key || held == 0) {
            *at = slot;
            return held == key;
        }
        slot = (slot + 1) & mask;
    }
}

/* Whether `table` holds `key`; `*empty` gets the empty slot where the search ended. */
static inline int holds(const IdGenerations *self, const Table *table, uint64_t key, size_t *empty) {
    return probe(table->slots, table->has_zero, self->slots, self->shift, key, empty);
}

/* The number of slots for `keys` keys, at most half of them used: a power of two, at least 8;
 * `*bits` its log2. */
static size_t slots_for(size_t keys, int *bits) {
    size_t slots = 8;
    *bits = 3;
    while (slots < 2 * keys) {
        slots *= 2;
        *bits += 1;
    }
    return slots;
}

/* A type's one argument, `keywords[0]`: a number of keys from 1 to 2**40. 0 with an exception
 * set when it is not one, or when the object was initialised already (`initialised`). */
static int parse_keys(PyObject *args, PyObject *kwds, char **keywords, Py_ssize_t *keys, int initialised) {
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n", keywords, keys)) {
        return 0;
    }
    if (initialised) {
        PyErr_SetString(PyExc_RuntimeError, "a table is initialised once");
        return 0;
    }
    if (*keys < 1 || *keys > ((Py_ssize_t)1 << 40)) {
        PyErr_Format(PyExc_ValueError, "%s must be between 1 and 2**40", keywords[0]);
        return 0;
    }
    return 1;
}

static int IdGenerations_init(IdGenerations *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"generation", NULL};
    Py_ssize_t generation;
    if (!parse_keys(args, kwds, keywords, &generation, self->current.slots != NULL)) {
        return -1;
    }
    int bits;
    size_t slots = slots_for((size_t)generation, &bits);
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

/* ---- The UV guard's memory of a minute (hit/uvguard.py UvGuard) --------------------------
 *
 * HashSet: a set of 64-bit hashes (Python's own hash() values), and HashCounts: a map of them to
 * counts below 2**32, each holding at most `capacity` keys in the slots of slots_for, 8 bytes a
 * slot (and 4 for a count): the guard's 50,000 identities of a minute in 1 MB and their addresses'
 * counts in 1.5 MB, against ~6 MB of a set and a dict of int objects, which were also made and
 * freed by the ten thousand through pymalloc every minute (bench/RESULTS.md, session 29). They
 * answer as the set and the dict they replace (`in`, add, get, item assignment, len, clear) for
 * every int key of 64 bits, so UvGuard's code is the same over either (tests/test_uv_tables.py). */
typedef struct {
    PyObject_HEAD
    Py_ssize_t capacity; /* keys held at most: one more is an OverflowError */
    int shift;           /* 64 - log2(slots) */
    size_t slots;        /* a power of two, at least 2 * capacity */
    uint64_t *keys;      /* 0 marks an empty slot; the key 0 itself is held by has_zero */
    uint32_t *counts;    /* HashCounts: beside keys, slot by slot; HashSet: NULL */
    Py_ssize_t count;    /* keys held */
    int has_zero;
    uint32_t zero_count;
} HashTable;

static PyTypeObject HashSetType;
static PyTypeObject HashCountsType;

/* Zeroed tables for the slots: a large calloc is mapped pages that become resident only as keys
 * are written into them. 0 with an exception set when out of memory. */
static int allocate(HashTable *self) {
    uint64_t *keys = PyMem_RawCalloc(self->slots, sizeof(uint64_t));
    uint32_t *counts = NULL;
    if (keys != NULL && Py_IS_TYPE(self, &HashCountsType)) {
        counts = PyMem_RawCalloc(self->slots, sizeof(uint32_t));
        if (counts == NULL) {
            PyMem_RawFree(keys);
            keys = NULL;
        }
    }
    if (keys == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    PyMem_RawFree(self->keys);
    PyMem_RawFree(self->counts);
    self->keys = keys;
    self->counts = counts;
    self->count = 0;
    self->has_zero = 0;
    self->zero_count = 0;
    return 1;
}

static int HashTable_init(HashTable *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"capacity", NULL};
    Py_ssize_t capacity;
    if (!parse_keys(args, kwds, keywords, &capacity, self->keys != NULL)) {
        return -1;
    }
    int bits;
    self->slots = slots_for((size_t)capacity, &bits);
    self->shift = 64 - bits;
    self->capacity = capacity;
    return allocate(self) ? 0 : -1;
}

static void HashTable_dealloc(HashTable *self) {
    PyMem_RawFree(self->keys);
    PyMem_RawFree(self->counts);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* `key` (an int of 64 bits: a hash) as the table's word; 0 with an exception set otherwise. */
static int key_of(HashTable *self, PyObject *key, uint64_t *word) {
    if (self->keys == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the hash table was not initialised");
        return 0;
    }
    if (!PyLong_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "the keys are ints (64-bit hashes)");
        return 0;
    }
    long long value = PyLong_AsLongLong(key);
    if (value == -1 && PyErr_Occurred()) {
        return 0;
    }
    *word = (uint64_t)value;
    return 1;
}

/* Whether the table holds the key `word`; `*at` as probe's. */
static inline int table_holds(const HashTable *self, uint64_t word, size_t *at) {
    return probe(self->keys, self->has_zero, self->slots, self->shift, word, at);
}

/* Hold the key `word`, new to the table, found missing at `at`: 0 with OverflowError when full. */
static int table_insert(HashTable *self, uint64_t word, size_t at) {
    if (self->count >= self->capacity) {
        PyErr_SetString(PyExc_OverflowError, "the hash table holds its capacity of keys");
        return 0;
    }
    if (word == 0) {
        self->has_zero = 1;
    } else {
        self->keys[at] = word;
    }
    self->count += 1;
    return 1;
}

static int HashTable_contains(HashTable *self, PyObject *key) {
    uint64_t word;
    size_t at;
    if (!key_of(self, key, &word)) {
        return -1;
    }
    return table_holds(self, word, &at);
}

static Py_ssize_t HashTable_len(HashTable *self) {
    return self->count;
}

/* clear(): hold no key. The slots are allocated afresh (their pages handed back, as a new set's
 * would be), not zeroed in place, which would make every page of them resident. */
static PyObject *HashTable_clear(HashTable *self, PyObject *Py_UNUSED(ignored)) {
    if (self->keys != NULL && (self->count || self->has_zero) && !allocate(self)) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* HashSet.add(key): hold the key (nothing when it is held). */
static PyObject *HashSet_add(HashTable *self, PyObject *key) {
    uint64_t word;
    size_t at = 0;
    if (!key_of(self, key, &word)) {
        return NULL;
    }
    if (!table_holds(self, word, &at) && !table_insert(self, word, at)) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* HashCounts.get(key, default=None): the key's count, or `default` when it is not held. */
static PyObject *HashCounts_get(HashTable *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get() takes a key and an optional default");
        return NULL;
    }
    uint64_t word;
    size_t at = 0;
    if (!key_of(self, args[0], &word)) {
        return NULL;
    }
    if (table_holds(self, word, &at)) {
        return PyLong_FromUnsignedLong(word == 0 ? self->zero_count : self->counts[at]);
    }
    PyObject *missing = nargs == 2 ? args[1] : Py_None;
    Py_INCREF(missing);
    return missing;
}

/* table[key] = count (0 <= count < 2**32); deleting a key is not supported. */
static int HashCounts_set(HashTable *self, PyObject *key, PyObject *value) {
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "HashCounts keeps its keys until clear()");
        return -1;
    }
    uint64_t word;
    size_t at = 0;
    if (!key_of(self, key, &word)) {
        return -1;
    }
    unsigned long count = PyLong_AsUnsignedLong(value);
    if (count == (unsigned long)-1 && PyErr_Occurred()) {
        return -1;
    }
    if (count > UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "a count is below 2**32");
        return -1;
    }
    if (!table_holds(self, word, &at) && !table_insert(self, word, at)) {
        return -1;
    }
    if (word == 0) {
        self->zero_count = (uint32_t)count;
    } else {
        self->counts[at] = (uint32_t)count;
    }
    return 0;
}

static PyObject *HashCounts_subscript(HashTable *self, PyObject *key) {
    PyObject *args[1] = {key};
    PyObject *found = HashCounts_get(self, args, 1);
    if (found == Py_None) {
        Py_DECREF(found);
        PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    return found;
}

static PySequenceMethods HashTable_as_sequence = {
    .sq_length = (lenfunc)HashTable_len,
    .sq_contains = (objobjproc)HashTable_contains,
};

static PyMappingMethods HashCounts_as_mapping = {
    .mp_length = (lenfunc)HashTable_len,
    .mp_subscript = (binaryfunc)HashCounts_subscript,
    .mp_ass_subscript = (objobjargproc)HashCounts_set,
};

#define CLEAR_METHOD \
    {"clear", (PyCFunction)HashTable_clear, METH_NOARGS, "clear(): hold no key (the slots allocated afresh)."}

static PyMethodDef HashSet_methods[] = {
    {"add", (PyCFunction)HashSet_add, METH_O, "add(key): hold the key (an int of 64 bits)."},
    CLEAR_METHOD,
    {NULL, NULL, 0, NULL},
};

static PyMethodDef HashCounts_methods[] = {
    {"get", (PyCFunction)(void (*)(void))HashCounts_get, METH_FASTCALL,
     "get(key, default=None) -> the key's count, or default when it is not held."},
    CLEAR_METHOD,
    {NULL, NULL, 0, NULL},
};

/* What HashSet's and HashCounts' types share: one struct, its life and `in` and len. */
#define HASH_TABLE_TYPE(name, doc)                                                               \
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "collector.hit._id_table." name, .tp_doc = doc,       \
    .tp_basicsize = sizeof(HashTable), .tp_flags = Py_TPFLAGS_DEFAULT, .tp_new = PyType_GenericNew, \
    .tp_init = (initproc)HashTable_init, .tp_dealloc = (destructor)HashTable_dealloc,              \
    .tp_as_sequence = &HashTable_as_sequence

static PyTypeObject HashSetType = {
    HASH_TABLE_TYPE("HashSet", "HashSet(capacity): a set of at most `capacity` 64-bit hashes, 8 bytes a slot."),
    .tp_methods = HashSet_methods,
};

static PyTypeObject HashCountsType = {
    HASH_TABLE_TYPE("HashCounts", "HashCounts(capacity): at most `capacity` 64-bit hashes, each with a count below 2**32."),
    .tp_methods = HashCounts_methods,
    .tp_as_mapping = &HashCounts_as_mapping,
};

static struct PyModuleDef id_table_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "collector.hit._id_table",
    .m_doc = "Tables of 64-bit hashes: the re-send record's two generations (hit/remarks.py RecentIds), "
             "the UV guard's set and counts of a minute (hit/uvguard.py UvGuard).",
    .m_size = -1,
};

/* Add `type` to `module` under its short name: 0 with an exception set when that failed. */
static int add_type(PyObject *module, PyTypeObject *type, const char *name) {
    Py_INCREF(type);
    if (PyModule_AddObject(module, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return 0;
    }
    return 1;
}

PyMODINIT_FUNC PyInit__id_table(void) {
    if (PyType_Ready(&IdGenerationsType) < 0 || PyType_Ready(&HashSetType) < 0 || PyType_Ready(&HashCountsType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&id_table_module);
    if (module == NULL) {
        return NULL;
    }
    if (!add_type(module, &IdGenerationsType, "IdGenerations") || !add_type(module, &HashSetType, "HashSet")
        || !add_type(module, &HashCountsType, "HashCounts")) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
