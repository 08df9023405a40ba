/* A request's hits as journal lines (format 4), in C: store/records.py's encode_hits for the
 * values a hit holds (issue 17, POST batches).
 *
 * A POST-50 event spent ~6,750 instructions on its journal line (bench/RESULTS.md, session
 * 21): its row made as a tuple with 5 ints boxed, its deep facts made into new lists by
 * DeepFacts.as_json, then orjson walking all of it again (~3,760). Here each hit's fields are
 * read by position from the Hit and written straight into one buffer a line.
 *
 * `Encoder(hit_type, request, row, deep_type, session_type).encode(hits)` answers the very
 * lines records.py's Python encode_hits writes with orjson (the reference), or None when a
 * value is one it leaves to Python: a type other than exactly str, int, None, list, tuple (a
 * request's device and region: any tuple; its visitor keys: exactly bytes) and the deep
 * facts; an int past 64 bits; a str holding a surrogate (orjson refuses it); nesting deeper
 * than MAX_DEPTH; an attribute that cannot be read. Python then encodes the same hits, or
 * raises what it raises for them. tests/test_lines.py compares the two on every row shape
 * the collector writes, hostile strings and random hits.
 *
 * JSON as orjson writes it: no spaces; a string's `"` and `\` escaped, its \b \t \n \f \r as
 * such, its other characters below 0x20 as \u00XX (lower-case hex), everything else (DEL,
 * U+2028, non-BMP) as its UTF-8 bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* Deeper than any value a hit holds (a deep fact's session targets are 4 levels below its
 * line); a deeper or recursive value is left to Python, which refuses it. */
#define MAX_DEPTH 16
/* Hit has 18 fields; room for a few more before this needs raising. */
#define MAX_FIELDS 32
/* A GET's line (~300 bytes) never leaves the stack; a POST-50 line (~12 KiB) grows once. */
#define STACK_BYTES 8192

enum { WRITTEN = 1, FAILED = 0, TO_PYTHON = -1 };

/* How a request field is written: as itself, a tuple (Device, Region) as the list of its
 * items, bytes (a visitor key) as its hex. */
enum { AS_VALUE, AS_ITEMS, AS_HEX };

typedef struct {
    char *data;
    Py_ssize_t length;
    Py_ssize_t capacity;
    int on_heap;
} Buffer;

typedef struct {
    PyObject_HEAD
    PyTypeObject *hit_type;
    PyTypeObject *deep_type;
    PyTypeObject *session_type;
    Py_ssize_t request_count;
    Py_ssize_t request_at[MAX_FIELDS];
    int request_as[MAX_FIELDS];
    Py_ssize_t row_count;
    Py_ssize_t row_at[MAX_FIELDS];
    Py_ssize_t hit_size; /* a hit has at least this many items */
} Encoder;

static PyObject *name_incs, *name_members, *name_session;
static PyObject *name_ms, *name_ws, *name_dur, *name_started, *name_targets;

/* Room for `more` bytes past the end; FAILED on failure (memory error set). */
static int reserve(Buffer *buffer, Py_ssize_t more) {
    if (buffer->length + more <= buffer->capacity) {
        return WRITTEN;
    }
    Py_ssize_t capacity = buffer->capacity * 2;
    if (capacity < buffer->length + more) {
        capacity = buffer->length + more;
    }
    char *grown;
    if (buffer->on_heap) {
        grown = PyMem_Realloc(buffer->data, (size_t)capacity);
    } else {
        grown = PyMem_Malloc((size_t)capacity);
        if (grown != NULL) {
            memcpy(grown, buffer->data, (size_t)buffer->length);
        }
    }
    if (grown == NULL) {
        PyErr_NoMemory();
        return FAILED;
    }
    buffer->data = grown;
    buffer->capacity = capacity;
    buffer->on_heap = 1;
    return WRITTEN;
}

static int put_byte(Buffer *buffer, char byte) {
    if (!reserve(buffer, 1)) {
        return FAILED;
    }
    buffer->data[buffer->length++] = byte;
    return WRITTEN;
}

static int put_bytes(Buffer *buffer, const char *bytes, Py_ssize_t size) {
    if (!reserve(buffer, size)) {
        return FAILED;
    }
    memcpy(buffer->data + buffer->length, bytes, (size_t)size);
    buffer->length += size;
    return WRITTEN;
}

/* What follows the backslash of an ASCII byte's escape; 0: the byte as it is; 'u': \u00XX. */
static char escape_of[128];

static void init_escapes(void) {
    for (int c = 0; c < 0x20; c++) {
        escape_of[c] = 'u';
    }
    escape_of['\b'] = 'b';
    escape_of['\t'] = 't';
    escape_of['\n'] = 'n';
    escape_of['\f'] = 'f';
    escape_of['\r'] = 'r';
    escape_of['"'] = '"';
    escape_of['\\'] = '\\';
}

static const char hex_digits[] = "0123456789abcdef";

/* An ASCII byte that needs its escape (escape_of[byte] != 0). */
static void put_escape(char *out, Py_ssize_t *length, unsigned char byte) {
    char kind = escape_of[byte];
    out[(*length)++] = '\\';
    out[(*length)++] = kind;
    if (kind == 'u') {
        out[(*length)++] = '0';
        out[(*length)++] = '0';
        out[(*length)++] = hex_digits[byte >> 4];
        out[(*length)++] = hex_digits[byte & 15];
    }
}

/* An ASCII string's characters: runs without escapes copied whole. */
static int put_ascii(Buffer *buffer, const unsigned char *text, Py_ssize_t size) {
    /* At most 6 bytes a character (\u00XX). */
    if (!reserve(buffer, size * 6)) {
        return FAILED;
    }
    char *out = buffer->data;
    Py_ssize_t length = buffer->length;
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        if (escape_of[text[i]]) {
            memcpy(out + length, text + start, (size_t)(i - start));
            length += i - start;
            put_escape(out, &length, text[i]);
            start = i + 1;
        }
    }
    memcpy(out + length, text + start, (size_t)(size - start));
    buffer->length = length + size - start;
    return WRITTEN;
}

/* A str holding a character past ASCII, as UTF-8, code point by code point (no UTF-8 copy
 * is made and kept on the string); TO_PYTHON at a surrogate, which orjson refuses. */
static int put_unicode(Buffer *buffer, PyObject *text) {
    Py_ssize_t size = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    /* At most 6 bytes a character (\u00XX; 4 for a code point past the BMP). */
    if (!reserve(buffer, size * 6)) {
        return FAILED;
    }
    char *out = buffer->data;
    Py_ssize_t length = buffer->length;
    for (Py_ssize_t i = 0; i < size; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 0x80) {
            if (escape_of[c]) {
                put_escape(out, &length, (unsigned char)c);
            } else {
                out[length++] = (char)c;
            }
        } else if (c < 0x800) {
            out[length++] = (char)(0xC0 | (c >> 6));
            out[length++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            if (c >= 0xD800 && c <= 0xDFFF) {
                return TO_PYTHON;
            }
            out[length++] = (char)(0xE0 | (c >> 12));
            out[length++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[length++] = (char)(0x80 | (c & 0x3F));
        } else {
            out[length++] = (char)(0xF0 | (c >> 18));
            out[length++] = (char)(0x80 | ((c >> 12) & 0x3F));
            out[length++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[length++] = (char)(0x80 | (c & 0x3F));
        }
    }
    buffer->length = length;
    return WRITTEN;
}

static int put_str(Buffer *buffer, PyObject *text) {
    if (!put_byte(buffer, '"')) {
        return FAILED;
    }
    int done = PyUnicode_IS_ASCII(text)
                   ? put_ascii(buffer, (const unsigned char *)PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text))
                   : put_unicode(buffer, text);
    if (done != WRITTEN) {
        return done;
    }
    return put_byte(buffer, '"');
}

static int put_int(Buffer *buffer, PyObject *number) {
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(number, &overflow);
    if (overflow) {
        return TO_PYTHON; /* orjson writes up to 2**64 - 1 and refuses beyond */
    }
    if (value == -1 && PyErr_Occurred()) {
        return FAILED;
    }
    char scratch[24];
    char *end = scratch + sizeof scratch;
    char *start = end;
    /* Negated as unsigned: LLONG_MIN has no positive long long. */
    unsigned long long magnitude = value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
    do {
        *--start = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (value < 0) {
        *--start = '-';
    }
    return put_bytes(buffer, start, end - start);
}

/* bytes as a JSON string of its hex digits (bytes.hex()). */
static int put_hex(Buffer *buffer, PyObject *data) {
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(data);
    if (!reserve(buffer, size * 2 + 2)) {
        return FAILED;
    }
    char *out = buffer->data + buffer->length;
    *out++ = '"';
    for (Py_ssize_t i = 0; i < size; i++) {
        *out++ = hex_digits[bytes[i] >> 4];
        *out++ = hex_digits[bytes[i] & 15];
    }
    *out++ = '"';
    buffer->length = out - buffer->data;
    return WRITTEN;
}

static int put_value(Encoder *self, Buffer *buffer, PyObject *value, int depth);

/* The items of a list or a tuple (or a tuple subclass: the caller decides) as a JSON array. */
static int put_items(Encoder *self, Buffer *buffer, PyObject *sequence, int depth) {
    if (depth > MAX_DEPTH) {
        return TO_PYTHON;
    }
    PyObject **items = PySequence_Fast_ITEMS(sequence);
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    if (!put_byte(buffer, '[')) {
        return FAILED;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (i && !put_byte(buffer, ',')) {
            return FAILED;
        }
        int done = put_value(self, buffer, items[i], depth + 1);
        if (done != WRITTEN) {
            return done;
        }
    }
    return put_byte(buffer, ']');
}

/* An attribute of a deep fact or a session, written with `put` (TO_PYTHON when it cannot
 * be read: Python raises its own error). */
static int put_attribute(Encoder *self, Buffer *buffer, PyObject *owner, PyObject *name, int depth) {
    PyObject *value = PyObject_GetAttr(owner, name);
    if (value == NULL) {
        PyErr_Clear();
        return TO_PYTHON;
    }
    int done = put_value(self, buffer, value, depth);
    Py_DECREF(value);
    return done;
}

/* Session.as_json: [ms, ws, dur, started, [list(t) for t in targets]], the targets a list
 * or tuple of lists or tuples (list(t) of anything else is left to Python). */
static int put_session(Encoder *self, Buffer *buffer, PyObject *session, int depth) {
    PyObject *const names[] = {name_ms, name_ws, name_dur, name_started};
    if (!put_byte(buffer, '[')) {
        return FAILED;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int done = put_attribute(self, buffer, session, names[i], depth + 1);
        if (done != WRITTEN) {
            return done;
        }
        if (!put_byte(buffer, ',')) {
            return FAILED;
        }
    }
    PyObject *targets = PyObject_GetAttr(session, name_targets);
    if (targets == NULL) {
        PyErr_Clear();
        return TO_PYTHON;
    }
    int done = TO_PYTHON;
    if (PyTuple_CheckExact(targets) || PyList_CheckExact(targets)) {
        done = WRITTEN;
        PyObject **items = PySequence_Fast_ITEMS(targets);
        Py_ssize_t count = PySequence_Fast_GET_SIZE(targets);
        for (Py_ssize_t i = 0; i < count; i++) {
            if (!PyTuple_CheckExact(items[i]) && !PyList_CheckExact(items[i])) {
                done = TO_PYTHON;
            }
        }
        if (done == WRITTEN) {
            done = put_items(self, buffer, targets, depth + 1);
        }
    }
    Py_DECREF(targets);
    if (done != WRITTEN) {
        return done;
    }
    return put_byte(buffer, ']');
}

/* DeepFacts.as_json: [incs, members, session.as_json() or null]. */
static int put_deep(Encoder *self, Buffer *buffer, PyObject *deep, int depth) {
    if (depth > MAX_DEPTH) {
        return TO_PYTHON;
    }
    if (!put_byte(buffer, '[')) {
        return FAILED;
    }
    int done = put_attribute(self, buffer, deep, name_incs, depth + 1);
    if (done != WRITTEN) {
        return done;
    }
    if (!put_byte(buffer, ',')) {
        return FAILED;
    }
    done = put_attribute(self, buffer, deep, name_members, depth + 1);
    if (done != WRITTEN) {
        return done;
    }
    if (!put_byte(buffer, ',')) {
        return FAILED;
    }
    PyObject *session = PyObject_GetAttr(deep, name_session);
    if (session == NULL) {
        PyErr_Clear();
        return TO_PYTHON;
    }
    if (session == Py_None) {
        done = put_bytes(buffer, "null", 4);
    } else if (Py_IS_TYPE(session, self->session_type)) {
        done = put_session(self, buffer, session, depth + 1);
    } else {
        done = TO_PYTHON; /* as_json would test its truth and call its as_json */
    }
    Py_DECREF(session);
    if (done != WRITTEN) {
        return done;
    }
    return put_byte(buffer, ']');
}

/* A value as orjson writes it; deep facts (orjson's `default` in records.py) as as_json's. */
static int put_value(Encoder *self, Buffer *buffer, PyObject *value, int depth) {
    if (PyUnicode_CheckExact(value)) {
        return put_str(buffer, value);
    }
    if (PyLong_CheckExact(value)) {
        return put_int(buffer, value);
    }
    if (value == Py_None) {
        return put_bytes(buffer, "null", 4);
    }
    if (PyTuple_CheckExact(value) || PyList_CheckExact(value)) {
        return put_items(self, buffer, value, depth);
    }
    if (Py_IS_TYPE(value, self->deep_type)) {
        return put_deep(self, buffer, value, depth);
    }
    return TO_PYTHON; /* a bool, a float, a subclass, another object: records.py decides */
}

/* The request field `value` is written as `as`. */
static int put_request_field(Encoder *self, Buffer *buffer, PyObject *value, int as) {
    if (as == AS_ITEMS) {
        return PyTuple_Check(value) ? put_items(self, buffer, value, 1) : TO_PYTHON;
    }
    if (as == AS_HEX) {
        return PyBytes_CheckExact(value) ? put_hex(buffer, value) : TO_PYTHON;
    }
    return put_value(self, buffer, value, 1);
}

/* records.py's _shares_with: `hit` has `first`'s request fields, the same objects or equal
 * ones. -1: a comparison failed (its error cleared: Python compares again, and raises). */
static int shares_with(Encoder *self, PyObject *hit, PyObject *first) {
    for (Py_ssize_t i = 0; i < self->request_count; i++) {
        PyObject *mine = PyTuple_GET_ITEM(hit, self->request_at[i]);
        PyObject *theirs = PyTuple_GET_ITEM(first, self->request_at[i]);
        if (mine == theirs) {
            continue;
        }
        int equal = PyObject_RichCompareBool(mine, theirs, Py_EQ);
        if (equal < 0) {
            PyErr_Clear();
            return -1;
        }
        if (!equal) {
            return 0;
        }
    }
    return 1;
}

/* One line: `first`'s request fields, then the rows of hits[start:end], then a newline. */
static int put_line(Encoder *self, Buffer *buffer, PyObject *first, PyObject **hits, Py_ssize_t start,
                    Py_ssize_t end) {
    if (!put_byte(buffer, '[')) {
        return FAILED;
    }
    for (Py_ssize_t i = 0; i < self->request_count; i++) {
        int done = put_request_field(self, buffer, PyTuple_GET_ITEM(first, self->request_at[i]), self->request_as[i]);
        if (done != WRITTEN) {
            return done;
        }
        if (!put_byte(buffer, ',')) {
            return FAILED;
        }
    }
    if (!put_byte(buffer, '[')) {
        return FAILED;
    }
    for (Py_ssize_t h = start; h < end; h++) {
        if (!put_bytes(buffer, h > start ? ",[" : "[", h > start ? 2 : 1)) {
            return FAILED;
        }
        for (Py_ssize_t i = 0; i < self->row_count; i++) {
            if (i && !put_byte(buffer, ',')) {
                return FAILED;
            }
            int done = put_value(self, buffer, PyTuple_GET_ITEM(hits[h], self->row_at[i]), 2);
            if (done != WRITTEN) {
                return done;
            }
        }
        if (!put_byte(buffer, ']')) {
            return FAILED;
        }
    }
    return put_bytes(buffer, "]]\n", 3);
}

/* Appends the line of hits[start:end] to `lines`; WRITTEN, FAILED or TO_PYTHON. */
static int add_line(Encoder *self, PyObject *lines, PyObject **hits, Py_ssize_t start, Py_ssize_t end) {
    char stack[STACK_BYTES];
    Buffer buffer = {stack, 0, sizeof stack, 0};
    int done = put_line(self, &buffer, hits[start], hits, start, end);
    if (done == WRITTEN) {
        PyObject *line = PyBytes_FromStringAndSize(buffer.data, buffer.length);
        if (line == NULL || PyList_Append(lines, line) < 0) {
            done = FAILED;
        }
        Py_XDECREF(line);
    }
    if (buffer.on_heap) {
        PyMem_Free(buffer.data);
    }
    return done;
}

static PyObject *encode(Encoder *self, PyObject *hits) {
    if (!PyList_CheckExact(hits)) {
        Py_RETURN_NONE;
    }
    PyObject *lines = PyList_New(0);
    if (lines == NULL) {
        return NULL;
    }
    /* The hits are held by `hits`, a list nothing changes while this runs: no Python code is
     * called from here (an equality test of str, bytes and tuples of str; a compiled deep
     * fact's attribute getters). */
    Py_ssize_t count = PyList_GET_SIZE(hits);
    PyObject **items = PySequence_Fast_ITEMS(hits);
    for (Py_ssize_t h = 0; h < count; h++) {
        if (!Py_IS_TYPE(items[h], self->hit_type) || PyTuple_GET_SIZE(items[h]) < self->hit_size) {
            Py_DECREF(lines);
            Py_RETURN_NONE;
        }
    }
    Py_ssize_t start = 0;
    for (Py_ssize_t h = 1; h <= count; h++) {
        int shared = h < count ? shares_with(self, items[h], items[start]) : 0;
        if (shared < 0) {
            Py_DECREF(lines);
            Py_RETURN_NONE;
        }
        if (shared) {
            continue;
        }
        int done = add_line(self, lines, items, start, h);
        if (done != WRITTEN) {
            Py_DECREF(lines);
            if (done == FAILED) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
        start = h;
    }
    return lines;
}

/* A tuple's items as positions in a hit (0 <= position < MAX_FIELDS); -1 on error (set). */
static Py_ssize_t read_positions(PyObject *positions, Py_ssize_t *into, const char *what) {
    if (!PyTuple_CheckExact(positions) || PyTuple_GET_SIZE(positions) > MAX_FIELDS) {
        PyErr_Format(PyExc_TypeError, "%s: a tuple of at most %d positions", what, MAX_FIELDS);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(positions); i++) {
        Py_ssize_t at = PyLong_AsSsize_t(PyTuple_GET_ITEM(positions, i));
        if (at == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (at < 0 || at >= MAX_FIELDS) {
            PyErr_Format(PyExc_ValueError, "%s: position %zd out of range", what, at);
            return -1;
        }
        into[i] = at;
    }
    return PyTuple_GET_SIZE(positions);
}

static int read_type(PyObject *value, PyTypeObject **into, const char *what) {
    if (!PyType_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s must be a type", what);
        return 0;
    }
    Py_INCREF(value);
    *into = (PyTypeObject *)value;
    return 1;
}

/* Encoder(hit_type, request_at, request_as, row_at, deep_type, session_type): request_as
 * says of each request field how it is written, 0 as itself, 1 as the list of a tuple's
 * items, 2 bytes as hex. */
static int encoder_init(Encoder *self, PyObject *args, PyObject *kwargs) {
    PyObject *hit_type, *request_at, *request_as, *row_at, *deep_type, *session_type;
    static char *keywords[] = {"hit_type", "request_at", "request_as", "row_at", "deep_type", "session_type", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!O!O!OO:Encoder", keywords, &hit_type, &PyTuple_Type,
                                     &request_at, &PyTuple_Type, &request_as, &PyTuple_Type, &row_at, &deep_type,
                                     &session_type)) {
        return -1;
    }
    if (self->hit_type != NULL) {
        PyErr_SetString(PyExc_TypeError, "an Encoder is made once");
        return -1;
    }
    self->request_count = read_positions(request_at, self->request_at, "request_at");
    if (self->request_count < 0) {
        return -1;
    }
    if (PyTuple_GET_SIZE(request_as) != self->request_count) {
        PyErr_SetString(PyExc_ValueError, "request_as: one for each of request_at");
        return -1;
    }
    for (Py_ssize_t i = 0; i < self->request_count; i++) {
        long as = PyLong_AsLong(PyTuple_GET_ITEM(request_as, i));
        if (as < AS_VALUE || as > AS_HEX) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "request_as: 0, 1 or 2");
            }
            return -1;
        }
        self->request_as[i] = (int)as;
    }
    self->row_count = read_positions(row_at, self->row_at, "row_at");
    if (self->row_count < 0) {
        return -1;
    }
    self->hit_size = 0;
    for (Py_ssize_t i = 0; i < self->request_count; i++) {
        self->hit_size = self->request_at[i] + 1 > self->hit_size ? self->request_at[i] + 1 : self->hit_size;
    }
    for (Py_ssize_t i = 0; i < self->row_count; i++) {
        self->hit_size = self->row_at[i] + 1 > self->hit_size ? self->row_at[i] + 1 : self->hit_size;
    }
    if (!read_type(deep_type, &self->deep_type, "deep_type") ||
        !read_type(session_type, &self->session_type, "session_type") ||
        !read_type(hit_type, &self->hit_type, "hit_type")) {
        return -1;
    }
    if (!PyType_IsSubtype(self->hit_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "hit_type must be a tuple type");
        return -1;
    }
    return 0;
}

static void encoder_dealloc(Encoder *self) {
    Py_XDECREF(self->hit_type);
    Py_XDECREF(self->deep_type);
    Py_XDECREF(self->session_type);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef encoder_methods[] = {
    {"encode", (PyCFunction)encode, METH_O,
     "A request's hits (a list of hit_type) as journal lines, or None for Python to encode them."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "collector.store._lines.Encoder",
    .tp_basicsize = sizeof(Encoder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Journal lines (format 4) of a request's hits, as store/records.py writes them.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)encoder_init,
    .tp_dealloc = (destructor)encoder_dealloc,
    .tp_methods = encoder_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_lines", NULL, 0, NULL};

PyMODINIT_FUNC PyInit__lines(void) {
    init_escapes();
    PyObject **names[] = {&name_incs, &name_members, &name_session, &name_ms, &name_ws, &name_dur, &name_started,
                          &name_targets};
    const char *spelled[] = {"incs", "members", "session", "ms", "ws", "dur", "started", "targets"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (*names[i] == NULL && (*names[i] = PyUnicode_InternFromString(spelled[i])) == NULL) {
            return NULL;
        }
    }
    if (PyType_Ready(&EncoderType) < 0) {
        return NULL;
    }
    PyObject *created = PyModule_Create(&module);
    if (created == NULL) {
        return NULL;
    }
    Py_INCREF(&EncoderType);
    if (PyModule_AddObject(created, "Encoder", (PyObject *)&EncoderType) < 0) {
        Py_DECREF(&EncoderType);
        Py_DECREF(created);
        return NULL;
    }
    return created;
}
