/* A hit's request head judged in C (web/hit_head.py read_head; issue 17, GET hits/s).
 *
 * ByteSet counts the bytes of a request target outside the bytes HTTP allows there: read_head
 * did it with `len(data.translate(None, allowed))`, and bytes.translate builds its table of 256
 * entries at every call and copies what it keeps.
 *
 * HeadLines reads the header lines as hit_head.py's _judge_lines does (its Python form, kept
 * as the fallback and the reference): no CR, LF or other control byte but the CRLFs, at most
 * max_lines lines, each a token name, a colon and a value; Host exactly once, no judged name
 * twice, none refused; the values of the read names kept (stripped of spaces and tabs, as
 * sent) — in one pass, without a bytes object a line and a name. Compiled by mypyc, the
 * Python form made a list of the lines, a slice a name and a dict look-up by a new bytes
 * object a line: with the two translates, ~30,000 instructions of a realistic hit's ~210,000
 * (bench/RESULTS.md, session 16). tests/test_hit_head.py runs both forms on every head it
 * has, and both against the regex read_head was first written as.
 *
 * It reads the lines as sent (session 18): a name is lower-cased on the stack for its look-up
 * (and judged a token as sent: a token's bytes lower-cased are tokens, and the others stay
 * others), and read answers how many times "content-length" appears in the lines in any case
 * — what hit_connection.py asks of them — found at the '-' bytes the byte check passes
 * anyway. read_head lower-cased the whole head (bytes.lower, ~2,700 instructions a realistic
 * hit) for these two only.
 *
 * head_end finds where a head ends (the first CRLF CRLF from a position), as
 * bytes.find(b"\r\n\r\n", pos) does: hit_connection.py asks it once a request. CPython's
 * find walks a ~850-byte realistic GET head a byte at a time (~430 ns, ~4 % of a hit's CPU
 * in-process, bench/RESULTS.md session 29); here memchr jumps from CR to CR, a line at a time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    unsigned char outside[256]; /* 1 for a byte not in the set */
} ByteSet;

static int ByteSet_init(ByteSet *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"allowed", NULL};
    Py_buffer allowed;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*", keywords, &allowed)) {
        return -1;
    }
    memset(self->outside, 1, sizeof self->outside);
    for (Py_ssize_t i = 0; i < allowed.len; i++) {
        self->outside[((const unsigned char *)allowed.buf)[i]] = 0;
    }
    PyBuffer_Release(&allowed);
    return 0;
}

/* outside(data): how many bytes of data are not in the set, len(data.translate(None, allowed)). */
static PyObject *ByteSet_outside(ByteSet *self, PyObject *data) {
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "outside(data: bytes)");
        return NULL;
    }
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        count += self->outside[bytes[i]];
    }
    return PyLong_FromSsize_t(count);
}

static PyMethodDef ByteSet_methods[] = {
    {"outside", (PyCFunction)ByteSet_outside, METH_O,
     "outside(data) -> how many bytes of data are not in the set."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ByteSetType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "collector.web._head_scan.ByteSet",
    .tp_doc = "ByteSet(allowed): a set of bytes, to count the bytes of data outside it.",
    .tp_basicsize = sizeof(ByteSet),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ByteSet_init,
    .tp_methods = ByteSet_methods,
};

/* ---- HeadLines: read_head's header lines, judged and read in one pass ---------------- */

/* web/hit_head.py's kinds of line (LINE_KIND's values), checked at construction. */
enum { KIND_OTHER = 0, KIND_PLAIN = 1, KIND_JUDGE, KIND_JUDGE_AND_READ, KIND_READ_FIRST, KIND_READ_EVERY, KIND_REFUSE };
#define NAME_SLOTS 128 /* a power of two, more than twice LINE_KIND's names */
#define NAME_CHARS 64  /* the longest name LINE_KIND may have (lower-cased on the stack) */

typedef struct {
    Py_ssize_t length; /* 0: an empty slot */
    const char *chars; /* owned by `name` */
    PyObject *name;    /* LINE_KIND's key: the values' key */
    int kind;
    int judged_bit;    /* JUDGE and JUDGE_AND_READ names: their bit in a head's judged mask */
} LineName;

/* What a byte of the header lines is to read's byte check: most are FIELD_BYTE. */
enum { FIELD_BYTE = 0, NOT_FIELD, DASH };
#define LENGTH_NAME "content-length"
#define LENGTH_DASH 7 /* where its '-' is */

typedef struct {
    PyObject_HEAD
    Py_ssize_t max_lines;
    Py_ssize_t longest;           /* the longest name of line_kind: a longer one is none of them */
    uint64_t host_bit;
    unsigned char scan[256];      /* NOT_FIELD: a byte no header line may hold (CR and LF are judged apart) */
    unsigned char not_token[256]; /* 1: a byte no header name may hold */
    LineName names[NAME_SLOTS];
} HeadLines;

static size_t name_slot(const char *chars, Py_ssize_t length) {
    return ((size_t)length * 31u + (unsigned char)chars[0] * 7u + (unsigned char)chars[length - 1]) & (NAME_SLOTS - 1);
}

static const LineName *line_name(const HeadLines *self, const char *chars, Py_ssize_t length) {
    for (size_t at = name_slot(chars, length);; at = (at + 1) & (NAME_SLOTS - 1)) {
        const LineName *known = &self->names[at];
        if (known->length == 0) {
            return NULL;
        }
        if (known->length == length && memcmp(known->chars, chars, (size_t)length) == 0) {
            return known;
        }
    }
}

static int HeadLines_init(HeadLines *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"line_kind", "host", "token_bytes", "field_bytes", "max_lines", NULL};
    PyObject *line_kind, *host;
    Py_buffer token_bytes, field_bytes;
    Py_ssize_t max_lines;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!y*y*n", keywords, &PyDict_Type, &line_kind, &PyBytes_Type, &host,
                                     &token_bytes, &field_bytes, &max_lines)) {
        return -1;
    }
    memset(self->not_token, 1, sizeof self->not_token);
    for (Py_ssize_t i = 0; i < token_bytes.len; i++) {
        self->not_token[((const unsigned char *)token_bytes.buf)[i]] = 0;
    }
    memset(self->scan, NOT_FIELD, sizeof self->scan);
    for (Py_ssize_t i = 0; i < field_bytes.len; i++) {
        self->scan[((const unsigned char *)field_bytes.buf)[i]] = FIELD_BYTE;
    }
    PyBuffer_Release(&token_bytes);
    PyBuffer_Release(&field_bytes);
    self->scan['\r'] = self->scan['\n'] = NOT_FIELD;
    if (self->scan['-'] != FIELD_BYTE) {
        PyErr_SetString(PyExc_ValueError, "field_bytes must hold '-'");
        return -1;
    }
    self->scan['-'] = DASH;
    if (self->host_bit != 0) {
        PyErr_SetString(PyExc_RuntimeError, "HeadLines is initialised once");
        return -1;
    }
    if (max_lines < 0 || PyDict_GET_SIZE(line_kind) > NAME_SLOTS / 2) {
        PyErr_SetString(PyExc_ValueError, "max_lines must be >= 0, line_kind at most 64 names");
        return -1;
    }
    self->max_lines = max_lines;
    Py_ssize_t position = 0;
    PyObject *name, *kind_object;
    int judged = 0;
    while (PyDict_Next(line_kind, &position, &name, &kind_object)) {
        long kind = PyLong_Check(kind_object) ? PyLong_AsLong(kind_object) : -1;
        if (!PyBytes_CheckExact(name) || PyBytes_GET_SIZE(name) == 0 || PyBytes_GET_SIZE(name) > NAME_CHARS
            || kind < KIND_PLAIN || kind > KIND_REFUSE) {
            PyErr_SetString(PyExc_ValueError, "line_kind: a name must be bytes of 1..64, a kind 1..6");
            return -1;
        }
        for (Py_ssize_t i = 0; i < PyBytes_GET_SIZE(name); i++) {
            char c = PyBytes_AS_STRING(name)[i];
            if (c >= 'A' && c <= 'Z') {
                PyErr_SetString(PyExc_ValueError, "line_kind: names are lower-case");
                return -1;
            }
        }
        if (PyBytes_GET_SIZE(name) > self->longest) {
            self->longest = PyBytes_GET_SIZE(name);
        }
        int bit = -1;
        if (kind == KIND_JUDGE || kind == KIND_JUDGE_AND_READ) {
            if (judged == 64) {
                PyErr_SetString(PyExc_ValueError, "line_kind: at most 64 judged names");
                return -1;
            }
            bit = judged++;
        }
        const char *chars = PyBytes_AS_STRING(name);
        Py_ssize_t length = PyBytes_GET_SIZE(name);
        size_t at = name_slot(chars, length);
        while (self->names[at].length != 0) {
            at = (at + 1) & (NAME_SLOTS - 1);
        }
        Py_INCREF(name);
        self->names[at] = (LineName){length, chars, name, (int)kind, bit};
    }
    const LineName *host_name = line_name(self, PyBytes_AS_STRING(host), PyBytes_GET_SIZE(host));
    if (PyBytes_GET_SIZE(host) == 0 || host_name == NULL || host_name->judged_bit < 0) {
        PyErr_SetString(PyExc_ValueError, "host must be a judged name of line_kind");
        return -1;
    }
    self->host_bit = (uint64_t)1 << host_name->judged_bit;
    return 0;
}

static void HeadLines_dealloc(HeadLines *self) {
    for (size_t at = 0; at < NAME_SLOTS; at++) {
        Py_XDECREF(self->names[at].name);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Keep a read line's value, fields[start:stop] without its spaces and tabs at either end:
 * every X-Forwarded-For in order, else the first of its name. */
static int keep(const LineName *known, const char *fields, Py_ssize_t start, Py_ssize_t stop, PyObject *values,
                PyObject *forwarded) {
    while (start < stop && (fields[start] == ' ' || fields[start] == '\t')) {
        start++;
    }
    while (stop > start && (fields[stop - 1] == ' ' || fields[stop - 1] == '\t')) {
        stop--;
    }
    PyObject *value = PyBytes_FromStringAndSize(fields + start, stop - start);
    if (value == NULL) {
        return -1;
    }
    PyObject *kept = known->kind == KIND_READ_EVERY ? (PyList_Append(forwarded, value) < 0 ? NULL : value)
                                                    : PyDict_SetDefault(values, known->name, value);
    Py_DECREF(value);
    return kept == NULL ? -1 : 0;
}

/* "content-length" in any case at fields[dash - 7:dash + 7], around the '-' at `dash`. */
static int length_name_at(const char *fields, Py_ssize_t size, Py_ssize_t dash) {
    if (dash < LENGTH_DASH || dash + (Py_ssize_t)sizeof LENGTH_NAME - 1 - LENGTH_DASH > size) {
        return 0;
    }
    const char *at = fields + dash - LENGTH_DASH;
    for (size_t i = 0; i < sizeof LENGTH_NAME - 1; i++) {
        /* (| 0x20 lower-cases a letter, and makes no other byte one) */
        if ((at[i] | 0x20) != LENGTH_NAME[i]) {
            return 0;
        }
    }
    return 1;
}

/* read(fields, values, forwarded): hit_head.py judge_lines (its Python form) in one pass over
 * the head's header lines: how many times "content-length" appears in them in any case when
 * the fast path serves them, else None. */
static PyObject *HeadLines_read(HeadLines *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyBytes_Check(args[0]) || !PyDict_Check(args[1]) || !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "read(fields: bytes, values: dict, forwarded: list)");
        return NULL;
    }
    const char *fields = PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    /* No CR, LF or other control byte but the CRLFs that end lines; and each '-' looked at. */
    Py_ssize_t separators = 0, lengths = 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        unsigned char kind = self->scan[(unsigned char)fields[i]];
        if (kind == FIELD_BYTE) {
            continue;
        }
        if (kind == DASH) {
            lengths += length_name_at(fields, size, i);
        } else if (fields[i] == '\r' && i + 1 < size && fields[i + 1] == '\n') {
            separators++;
            i++;
        } else {
            Py_RETURN_NONE;
        }
    }
    if (separators > self->max_lines) {
        Py_RETURN_NONE;
    }
    uint64_t judged = 0;
    char name[NAME_CHARS];
    const char *cr = memchr(fields, '\r', (size_t)size); /* the end of the text before the first line */
    while (cr != NULL) {
        Py_ssize_t start = cr - fields + 2;
        cr = memchr(fields + start, '\r', (size_t)(size - start));
        Py_ssize_t stop = cr == NULL ? size : cr - fields;
        const char *colon = memchr(fields + start, ':', (size_t)(stop - start));
        if (colon == NULL || colon == fields + start) {
            Py_RETURN_NONE;
        }
        Py_ssize_t name_length = colon - (fields + start);
        const LineName *known = NULL;
        if (name_length <= self->longest) {
            for (Py_ssize_t i = 0; i < name_length; i++) {
                char c = fields[start + i];
                name[i] = c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
            }
            known = line_name(self, name, name_length);
        }
        if (known == NULL) {
            for (Py_ssize_t i = start; i < start + name_length; i++) {
                if (self->not_token[(unsigned char)fields[i]]) {
                    Py_RETURN_NONE;
                }
            }
            continue;
        }
        if (known->kind == KIND_REFUSE) {
            Py_RETURN_NONE;
        }
        if (known->judged_bit >= 0) {
            uint64_t bit = (uint64_t)1 << known->judged_bit;
            if (judged & bit) {
                Py_RETURN_NONE;
            }
            judged |= bit;
        }
        if (known->kind >= KIND_JUDGE_AND_READ && known->kind <= KIND_READ_EVERY
            && keep(known, fields, start + name_length + 1, stop, args[1], args[2]) < 0) {
            return NULL;
        }
    }
    if ((judged & self->host_bit) == 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromSsize_t(lengths);
}

static PyMethodDef HeadLines_methods[] = {
    {"read", (PyCFunction)(void (*)(void))HeadLines_read, METH_FASTCALL,
     "read(fields, values, forwarded) -> how many times 'content-length' appears in these header lines (in any "
     "case) when the fast path serves them, else None."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject HeadLinesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "collector.web._head_scan.HeadLines",
    .tp_doc = "HeadLines(line_kind, host, token_bytes, field_bytes, max_lines): read_head's header lines, read in C.",
    .tp_basicsize = sizeof(HeadLines),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)HeadLines_init,
    .tp_dealloc = (destructor)HeadLines_dealloc,
    .tp_methods = HeadLines_methods,
};

static PyObject *head_end(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "head_end(buffer: bytes, pos: int)");
        return NULL;
    }
    const char *bytes = PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (pos < 0) {  /* as find's start: counted from the end */
        pos = pos + size < 0 ? 0 : pos + size;
    }
    if (size - pos < 4) {
        return PyLong_FromLong(-1);
    }
    const char *last = bytes + size - 4;  /* the last place a CRLF CRLF can start */
    const char *at = bytes + pos;
    while (at <= last) {
        const char *cr = memchr(at, '\r', (size_t)(last - at) + 1);
        if (cr == NULL) {
            break;
        }
        if (cr[1] == '\n' && cr[2] == '\r' && cr[3] == '\n') {
            return PyLong_FromSsize_t(cr - bytes);
        }
        at = cr + 1;
    }
    return PyLong_FromLong(-1);
}

static PyMethodDef head_scan_functions[] = {
    {"head_end", (PyCFunction)(void (*)(void))head_end, METH_FASTCALL,
     "head_end(buffer, pos) -> where the first CRLF CRLF at or after pos starts, or -1 (buffer.find's answer)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef head_scan_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "collector.web._head_scan",
    .m_doc = "A hit's request head judged in C (web/hit_head.py read_head).",
    .m_size = -1,
    .m_methods = head_scan_functions,
};

PyMODINIT_FUNC PyInit__head_scan(void) {
    if (PyType_Ready(&ByteSetType) < 0 || PyType_Ready(&HeadLinesType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&head_scan_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&ByteSetType);
    if (PyModule_AddObject(module, "ByteSet", (PyObject *)&ByteSetType) < 0) {
        Py_DECREF(&ByteSetType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&HeadLinesType);
    if (PyModule_AddObject(module, "HeadLines", (PyObject *)&HeadLinesType) < 0) {
        Py_DECREF(&HeadLinesType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
