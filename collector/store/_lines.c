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
#include <stdint.h>
#include <string.h>

#include "../_long_value.h"

/* Deeper than any value a hit holds (a deep fact's session targets are 4 levels below its
 * line); a deeper or recursive value is left to Python, which refuses it. */
#define MAX_DEPTH 16
/* Hit has 18 fields; room for a few more before this needs raising. */
#define MAX_FIELDS 32
/* A line's room to start with (add_line): a GET's (~300 bytes) and a POST-50 line (~15 KiB)
 * never grow. */
#define STACK_BYTES 4096
#define LINE_BYTES 1024
#define LINE_BYTES_PER_HIT 512
/* The JSON of up to this many tuples is kept, by identity (KnownTuple), each up to
 * KNOWN_BYTES (a slot of 128 bytes: 512 KiB in all). A POST-50 pass of bench.traffic writes
 * ~1,500 distinct tuples; with 1,024 slots of 56 bytes, a media event's members (~60 bytes)
 * and session targets (~100) were never kept, and slots collided (bench/RESULTS.md,
 * session 25). */
#define KNOWN_BITS 12
#define KNOWN_SLOTS (1 << KNOWN_BITS)
#define KNOWN_BYTES 119
#define KNOWN_SHORT 64 /* a kept JSON this long or shorter is copied as this many bytes */

enum { WRITTEN = 1, FAILED = 0, TO_PYTHON = -1 };

/* How a request field is written: as itself, a tuple (Device, Region) as the list of its
 * items, bytes (a visitor key) as its hex. */
enum { AS_VALUE, AS_ITEMS, AS_HEX };

typedef struct {
    char *data;
    Py_ssize_t length;
    Py_ssize_t capacity;
    PyObject *line; /* the bytes object written into (its size: capacity), or NULL: the stack */
} Buffer;

/* An attribute of the deep facts or a session: its getter, called directly (a compiled
 * class's attributes are getset descriptors; PyObject_GetAttr finds the same one by name
 * each time, ~100 instructions), or NULL: read by name. */
typedef struct {
    PyObject *name;
    PyObject *descriptor;
    getter get;
    void *closure;
} Attribute;

enum { INCS, MEMBERS, SESSION, DEEP_ATTRIBUTES };
enum { MS, WS, DUR, STARTED, TARGETS, SESSION_ATTRIBUTES };

typedef struct {
    PyObject_HEAD
    Attribute deep[DEEP_ATTRIBUTES];
    Attribute session[SESSION_ATTRIBUTES];
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

static const char *const deep_names[DEEP_ATTRIBUTES] = {"incs", "members", "session"};
static const char *const session_names[SESSION_ATTRIBUTES] = {"ms", "ws", "dur", "started", "targets"};

/* `owner`'s attribute; NULL with no error set when it cannot be read (Python will raise). */
static PyObject *read_attribute(PyObject *owner, const Attribute *attribute) {
    PyObject *value = attribute->get != NULL ? attribute->get(owner, attribute->closure)
                                             : PyObject_GetAttr(owner, attribute->name);
    if (value == NULL) {
        PyErr_Clear();
    }
    return value;
}

/* How `type`'s attributes `names` are read (Attribute); 0 on error (set). */
static int find_attributes(PyTypeObject *type, const char *const *names, Attribute *into, int count) {
    for (int i = 0; i < count; i++) {
        into[i].name = PyUnicode_InternFromString(names[i]);
        if (into[i].name == NULL) {
            return 0;
        }
        PyObject *descriptor = PyObject_GetAttr((PyObject *)type, into[i].name);
        if (descriptor == NULL) {
            return 0; /* the class has no such attribute: records.py passed the wrong one */
        }
        into[i].descriptor = descriptor;
        /* Only where generic attribute lookup would call this very getter. */
        if (Py_IS_TYPE(descriptor, &PyGetSetDescr_Type) && type->tp_getattro == PyObject_GenericGetAttr &&
            ((PyGetSetDescrObject *)descriptor)->d_getset->get != NULL) {
            into[i].get = ((PyGetSetDescrObject *)descriptor)->d_getset->get;
            into[i].closure = ((PyGetSetDescrObject *)descriptor)->d_getset->closure;
        }
    }
    return 1;
}

/* The buffer grown to hold `more` bytes past the end, into a bytes object if it was on the
 * stack; FAILED on failure (memory error set). Apart from reserve: its call is then the only
 * code every write carries. */
static Py_NO_INLINE int grow(Buffer *buffer, Py_ssize_t more) {
    Py_ssize_t capacity = buffer->capacity * 2;
    if (capacity < buffer->length + more) {
        capacity = buffer->length + more;
    }
    if (buffer->line == NULL) {
        buffer->line = PyBytes_FromStringAndSize(NULL, capacity);
        if (buffer->line == NULL) {
            return FAILED;
        }
        memcpy(PyBytes_AS_STRING(buffer->line), buffer->data, (size_t)buffer->length);
    } else if (_PyBytes_Resize(&buffer->line, capacity) < 0) {
        return FAILED; /* (the line freed) */
    }
    buffer->data = PyBytes_AS_STRING(buffer->line);
    buffer->capacity = capacity;
    return WRITTEN;
}

/* Room for `more` bytes past the end; FAILED on failure (memory error set). */
static inline int reserve(Buffer *buffer, Py_ssize_t more) {
    if (buffer->length + more <= buffer->capacity) {
        return WRITTEN;
    }
    return grow(buffer, more);
}

static inline int put_byte(Buffer *buffer, char byte) {
    if (!reserve(buffer, 1)) {
        return FAILED;
    }
    buffer->data[buffer->length++] = byte;
    return WRITTEN;
}

static inline int put_bytes(Buffer *buffer, const char *bytes, Py_ssize_t size) {
    if (!reserve(buffer, size)) {
        return FAILED;
    }
    memcpy(buffer->data + buffer->length, bytes, (size_t)size);
    buffer->length += size;
    return WRITTEN;
}

static char digit_pairs[200]; /* "00" to "99" */

/* What follows the backslash of a UTF-8 byte's escape; 0: the byte as it is; 'u': \u00XX. */
static char escape_of[256];

static void init_escapes(void) {
    for (int n = 0; n < 100; n++) {
        digit_pairs[2 * n] = (char)('0' + n / 10);
        digit_pairs[2 * n + 1] = (char)('0' + n % 10);
    }
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

/* One UTF-8 byte, escaped if it must be; returns where the next goes. */
static char *put_escaped(char *out, unsigned char byte) {
    char kind = escape_of[byte];
    if (!kind) {
        *out++ = (char)byte;
        return out;
    }
    *out++ = '\\';
    *out++ = kind;
    if (kind == 'u') {
        *out++ = '0';
        *out++ = '0';
        *out++ = hex_digits[byte >> 4];
        *out++ = hex_digits[byte & 15];
    }
    return out;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Whether any of 8 UTF-8 bytes must be escaped: one below 0x20, a quote or a backslash
 * (a byte past 0x7F never sets its own high bit in these tests: no false answer). A string
 * is checked 8 bytes at a time, as orjson does 16 or 32 (most need no escape at all). */
static inline int any_to_escape(uint64_t bytes) {
    uint64_t below_space = (bytes - 0x20 * ONES) & ~bytes & HIGHS;
    uint64_t quotes = bytes ^ ('"' * ONES);
    uint64_t backslashes = bytes ^ ('\\' * ONES);
    return (below_space | ((quotes - ONES) & ~quotes & HIGHS) | ((backslashes - ONES) & ~backslashes & HIGHS)) != 0;
}

/* Bytes that are no byte of a string to escape: what a chunk of fewer than 8 bytes is
 * filled up with (any_to_escape then looks at 8). */
#define CLEAN_FILL 0x6161616161000000ULL /* 'a' in its 5 high bytes */

/* `size` UTF-8 bytes as they are (no byte to escape) or escaped, from `in` to `out` (room
 * for 6 a byte); returns where the next goes. A string of fewer than 8 bytes (most of a
 * hit's: "pageview", "zh-cn", ids, a deep fact's names) is checked as one chunk of 8 made
 * of bytes it holds: 4 and 4 overlapping, or its first, middle and last byte and CLEAN_FILL
 * (each byte is among them), and written the same way. */
static inline char *put_utf8(char *out, const unsigned char *in, Py_ssize_t size) {
    const unsigned char *end = in + size;
    if (size < 8) {
        if (size >= 4) {
            uint32_t head, tail;
            memcpy(&head, in, 4);
            memcpy(&tail, end - 4, 4);
            if (!any_to_escape(head | (uint64_t)tail << 32)) {
                memcpy(out, &head, 4);
                memcpy(out + size - 4, &tail, 4);
                return out + size;
            }
        } else if (size > 0) {
            unsigned char first = in[0], middle = in[size >> 1], last = end[-1];
            if (!any_to_escape(first | (uint64_t)middle << 8 | (uint64_t)last << 16 | CLEAN_FILL)) {
                out[0] = (char)first;
                out[size >> 1] = (char)middle;
                out[size - 1] = (char)last;
                return out + size;
            }
        }
        while (in < end) {
            out = put_escaped(out, *in++);
        }
        return out;
    }
    char *first_out = out;
    const unsigned char *first_in = in;
    while (end - in >= 8) {
        uint64_t chunk;
        memcpy(&chunk, in, 8);
        if (any_to_escape(chunk)) {
            for (int i = 0; i < 8; i++) {
                out = put_escaped(out, in[i]);
            }
        } else {
            memcpy(out, in, 8);
            out += 8;
        }
        in += 8;
    }
    if (in < end && out - first_out == in - first_in) {
        /* The last bytes, as the last 8 of the string when nothing was escaped so far (the
         * output is then the input, byte for byte): the chunk overlaps bytes already written
         * with the same bytes. */
        uint64_t chunk;
        memcpy(&chunk, end - 8, 8);
        if (!any_to_escape(chunk)) {
            memcpy(out - (8 - (end - in)), end - 8, 8);
            return out + (end - in);
        }
    }
    while (in < end) {
        out = put_escaped(out, *in++);
    }
    return out;
}

/* A str as a JSON string. Its UTF-8 is what orjson reads: an ASCII string's own bytes,
 * another's UTF-8 made by PyUnicode_AsUTF8AndSize and kept on the string (orjson.dumps keeps
 * it the same way, so the reference's memory is this one's). TO_PYTHON at a surrogate. */
static Py_NO_INLINE int put_str(Buffer *buffer, PyObject *text) {
    const char *utf8;
    Py_ssize_t size;
    if (PyUnicode_IS_COMPACT_ASCII(text)) {
        utf8 = (const char *)PyUnicode_DATA(text);
        size = PyUnicode_GET_LENGTH(text);
    } else {
        utf8 = PyUnicode_AsUTF8AndSize(text, &size);
        if (utf8 == NULL) {
            PyErr_Clear(); /* a surrogate: orjson raises its JSONEncodeError */
            return TO_PYTHON;
        }
    }
    /* At most 6 bytes a byte (\u00XX), and the quotes. */
    if (!reserve(buffer, size * 6 + 2)) {
        return FAILED;
    }
    char *out = buffer->data + buffer->length;
    *out++ = '"';
    out = put_utf8(out, (const unsigned char *)utf8, size);
    *out++ = '"';
    buffer->length = out - buffer->data;
    return WRITTEN;
}

/* 10**0 to 10**19: decimal_digits' bounds. */
static const unsigned long long powers_of_ten[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL, 1000000000ULL,
    10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL, 100000000000000ULL,
    1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL, 1000000000000000000ULL,
    10000000000000000000ULL,
};

/* How many decimal digits `n` has (1 for 0). Its bit length times log10(2) (1233 / 4096) is
 * floor(log10(n)) or one more, which one compare with a power of ten tells. Counted of
 * n | 1: the same digits (an even n's n + 1 is 1 or odd, never 10**k for k > 0), and no zero
 * for __builtin_clzll. */
static inline int decimal_digits(unsigned long long n) {
    unsigned long long odd = n | 1;
    int guess = ((64 - __builtin_clzll(odd)) * 1233) >> 12;
    return guess + 1 - (odd < powers_of_ten[guess]);
}

static Py_NO_INLINE int put_int(Buffer *buffer, PyObject *number) {
    int overflow;
    long long value = long_value(number, &overflow);
    if (overflow) {
        return TO_PYTHON; /* orjson writes up to 2**64 - 1 and refuses beyond */
    }
    if (value == -1 && PyErr_Occurred()) {
        return FAILED;
    }
    /* 20 digits and a sign at most. */
    if (!reserve(buffer, 21)) {
        return FAILED;
    }
    char *out = buffer->data + buffer->length;
    /* Negated as unsigned: LLONG_MIN has no positive long long. */
    unsigned long long magnitude = value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
    if (value < 0) {
        *out++ = '-';
    }
    /* Written in place from its last digit, two at a time: no scratch copy. */
    char *end = out + decimal_digits(magnitude);
    char *at = end;
    while (magnitude >= 100) {
        at -= 2;
        memcpy(at, digit_pairs + 2 * (magnitude % 100), 2);
        magnitude /= 100;
    }
    if (magnitude >= 10) {
        memcpy(at - 2, digit_pairs + 2 * magnitude, 2);
    } else {
        at[-1] = (char)('0' + magnitude);
    }
    buffer->length = end - buffer->data;
    return WRITTEN;
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

static inline int put_value(Encoder *self, Buffer *buffer, PyObject *value, int depth);
static int put_items(Encoder *self, Buffer *buffer, PyObject *sequence, int depth);

/* A tuple's JSON, kept. A deep fact's increments are mostly the very tuples features/facts.py
 * KeyStrings.unit_inc keeps (~3.5 an event), and a media event's members those its resource
 * keeps: the same few hundred tuples, each written ~250 instructions item by item, copied here
 * in ~40. By identity, which is safe as the slot holds a reference to its tuple (its address
 * is not reused while kept) and as only a tuple of exactly str, int and kept tuples is kept
 * (a session's targets), whose JSON cannot change. A slot is taken by the last tuple written
 * that hashes to it (its address times 2**64 / golden ratio, top bits: addresses 64 bytes
 * apart, as pymalloc hands out 3-tuples, spread over all slots): at most KNOWN_SLOTS small
 * tuples are held. */
typedef struct {
    PyObject *tuple;
    unsigned char length;
    char json[KNOWN_BYTES];
} KnownTuple;

static KnownTuple known_tuples[KNOWN_SLOTS];

static inline KnownTuple *known_slot(PyObject *tuple) {
    return &known_tuples[((uint64_t)(uintptr_t)tuple * 0x9E3779B97F4A7C15ULL) >> (64 - KNOWN_BITS)];
}

/* A kept tuple's JSON, copied from its slot: KNOWN_SHORT or KNOWN_BYTES bytes (constant
 * sizes: no call), its length kept. Inlined in put_value: a kept tuple costs no call. */
static inline int put_known(Buffer *buffer, const KnownTuple *slot) {
    if (!reserve(buffer, KNOWN_BYTES)) {
        return FAILED;
    }
    if (slot->length <= KNOWN_SHORT) {
        memcpy(buffer->data + buffer->length, slot->json, KNOWN_SHORT);
    } else {
        memcpy(buffer->data + buffer->length, slot->json, KNOWN_BYTES);
    }
    buffer->length += slot->length;
    return WRITTEN;
}

/* A tuple not kept (put_value copies those), written and then kept if it can be. */
static int put_tuple(Encoder *self, Buffer *buffer, PyObject *tuple, int depth) {
    KnownTuple *slot = known_slot(tuple);
    Py_ssize_t start = buffer->length;
    int done = put_items(self, buffer, tuple, depth);
    Py_ssize_t length = buffer->length - start;
    if (done != WRITTEN || length > KNOWN_BYTES) {
        return done;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (!PyUnicode_CheckExact(item) && !PyLong_CheckExact(item) &&
            !(PyTuple_CheckExact(item) && known_slot(item)->tuple == item)) {
            return WRITTEN;
        }
    }
    PyObject *replaced = slot->tuple;
    Py_INCREF(tuple);
    slot->tuple = tuple;
    slot->length = (unsigned char)length;
    memcpy(slot->json, buffer->data + start, (size_t)length);
    Py_XDECREF(replaced); /* a tuple of str and int: its deallocation runs no Python code */
    return WRITTEN;
}

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

/* An attribute of a deep fact or a session (TO_PYTHON when it cannot be read: Python raises
 * its own error). */
static int put_attribute(Encoder *self, Buffer *buffer, PyObject *owner, const Attribute *attribute, int depth) {
    PyObject *value = read_attribute(owner, attribute);
    if (value == NULL) {
        return TO_PYTHON;
    }
    int done = put_value(self, buffer, value, depth);
    Py_DECREF(value);
    return done;
}

/* '[' and then `owner`'s attributes `attributes[0..count)`, each followed by ',': the start of
 * a deep fact's or a session's list, whose last item its writer adds. */
static int put_leading_attributes(
    Encoder *self, Buffer *buffer, PyObject *owner, const Attribute *attributes, int count, int depth) {
    if (!put_byte(buffer, '[')) {
        return FAILED;
    }
    for (int i = 0; i < count; i++) {
        int done = put_attribute(self, buffer, owner, &attributes[i], depth + 1);
        if (done != WRITTEN) {
            return done;
        }
        if (!put_byte(buffer, ',')) {
            return FAILED;
        }
    }
    return WRITTEN;
}

/* Session.as_json: [ms, ws, dur, started, [list(t) for t in targets]], the targets a list
 * or tuple of lists or tuples (list(t) of anything else is left to Python). */
static int put_session(Encoder *self, Buffer *buffer, PyObject *session, int depth) {
    int leading = put_leading_attributes(self, buffer, session, &self->session[MS], TARGETS - MS, depth);
    if (leading != WRITTEN) {
        return leading;
    }
    PyObject *targets = read_attribute(session, &self->session[TARGETS]);
    if (targets == NULL) {
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
    int leading = put_leading_attributes(self, buffer, deep, &self->deep[INCS], SESSION - INCS, depth);
    if (leading != WRITTEN) {
        return leading;
    }
    PyObject *session = read_attribute(deep, &self->deep[SESSION]);
    if (session == NULL) {
        return TO_PYTHON;
    }
    int done;
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

/* What put_value does not write itself: None, tuples, lists, deep facts; the rest is left
 * to Python. Apart: put_value, inlined in the loops over items and a row's fields, is then
 * two type tests and a call, with no frame of its own (put_value held all of it: ~24
 * instructions of saving and restoring registers a value, bench/RESULTS.md session 22). */
static Py_NO_INLINE int put_other(Encoder *self, Buffer *buffer, PyObject *value, int depth) {
    if (value == Py_None) {
        return put_bytes(buffer, "null", 4);
    }
    if (PyTuple_CheckExact(value)) {
        return put_tuple(self, buffer, value, depth);
    }
    if (PyList_CheckExact(value)) {
        return put_items(self, buffer, value, depth);
    }
    if (Py_IS_TYPE(value, self->deep_type)) {
        return put_deep(self, buffer, value, depth);
    }
    return TO_PYTHON; /* a bool, a float, a subclass, another object: records.py decides */
}

/* A value as orjson writes it; deep facts (orjson's `default` in records.py) as as_json's. */
static inline int put_value(Encoder *self, Buffer *buffer, PyObject *value, int depth) {
    if (PyUnicode_CheckExact(value)) {
        return put_str(buffer, value);
    }
    if (PyLong_CheckExact(value)) {
        return put_int(buffer, value);
    }
    if (PyTuple_CheckExact(value)) {
        const KnownTuple *slot = known_slot(value);
        if (slot->tuple == value) {
            return put_known(buffer, slot);
        }
    }
    return put_other(self, buffer, value, depth);
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

/* Two compact exact str of the same text (str.__eq__: the same length, kind and code points; a
 * compact str's data is canonical, its kind the narrowest that holds it). */
static inline int same_text(PyObject *a, PyObject *b) {
    Py_ssize_t length = PyUnicode_GET_LENGTH(a);
    return length == PyUnicode_GET_LENGTH(b) && PyUnicode_KIND(a) == PyUnicode_KIND(b) &&
           memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)length * PyUnicode_KIND(a)) == 0;
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
        if (PyUnicode_CheckExact(mine) && PyUnicode_CheckExact(theirs) && PyUnicode_IS_COMPACT(mine) &&
            PyUnicode_IS_COMPACT(theirs)) {
            /* str == str, without the calls (an event's app key: a new str each event) */
            if (!same_text(mine, theirs)) {
                return 0;
            }
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

/* Where a row's field was written in this line: the value, then its JSON at `at`. */
typedef struct {
    PyObject *value;
    Py_ssize_t at;
    Py_ssize_t length;
} Span;

/* The JSON a span holds, written again at the end. Up to 16 bytes as one 16-byte load and
 * store (no call; the load may reach past the end, into room reserved, and is done before the
 * store that may overlap it). */
static inline int put_span(Buffer *buffer, const Span *span) {
    if (!reserve(buffer, span->length + 16)) {
        return FAILED;
    }
    char *out = buffer->data + buffer->length;
    const char *in = buffer->data + span->at;
    if (span->length <= 16) {
        char chunk[16];
        memcpy(chunk, in, 16);
        memcpy(out, chunk, 16);
    } else {
        memcpy(out, in, (size_t)span->length); /* (the span ends before `out`) */
    }
    buffer->length += span->length;
    return WRITTEN;
}

/* A hit's row: its fields' values, each copied from the previous row's when it is the very
 * object written there (`last`, this line's): a request's events mostly share their etype,
 * page, referrer, lang, flags and often their deep facts (a feature's memo hands the same
 * DeepFacts to the events that count the same, features/facts.py). By identity, which is
 * safe within a line: the hits, held by the list encode was given, hold the values, and no
 * Python code runs while it is written (the JSON of the same object cannot change).
 * `last` NULL: a line's only row (a GET's), with nothing to copy and no spans to keep. */
static int put_row(Encoder *self, Buffer *buffer, PyObject *hit, Span *last) {
    for (Py_ssize_t i = 0; i < self->row_count; i++) {
        if (i && !put_byte(buffer, ',')) {
            return FAILED;
        }
        PyObject *value = PyTuple_GET_ITEM(hit, self->row_at[i]);
        int done;
        if (last == NULL) {
            done = put_value(self, buffer, value, 2);
        } else if (value == last[i].value) {
            done = put_span(buffer, &last[i]);
        } else {
            Py_ssize_t at = buffer->length;
            done = put_value(self, buffer, value, 2);
            last[i] = (Span){value, at, buffer->length - at};
        }
        if (done != WRITTEN) {
            return done;
        }
    }
    return put_byte(buffer, ']');
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
    Span spans[MAX_FIELDS];
    Span *last = NULL; /* a lone row keeps no spans */
    if (end - start > 1) {
        for (Py_ssize_t i = 0; i < self->row_count; i++) {
            spans[i].value = NULL;
        }
        last = spans;
    }
    for (Py_ssize_t h = start; h < end; h++) {
        if (!put_bytes(buffer, h > start ? ",[" : "[", h > start ? 2 : 1)) {
            return FAILED;
        }
        int done = put_row(self, buffer, hits[h], last);
        if (done != WRITTEN) {
            return done;
        }
    }
    return put_bytes(buffer, "]]\n", 3);
}

/* The line written, as bytes (a new reference; NULL on failure, error set). */
static PyObject *finish(Buffer *buffer) {
    if (buffer->line == NULL) {
        return PyBytes_FromStringAndSize(buffer->data, buffer->length);
    }
    PyObject *line = buffer->line;
    buffer->line = NULL;
    return _PyBytes_Resize(&line, buffer->length) < 0 ? NULL : line;
}

/* Appends the line of hits[start:end] to `lines`; WRITTEN, FAILED or TO_PYTHON. A line of a
 * few hits (a GET's, ~300 bytes) is written on the stack, then copied into its bytes; a longer
 * one (a POST-50 line, ~15 KiB) straight into its bytes object, made with room for
 * LINE_BYTES_PER_HIT a hit and cut to its length at the end (copying it cost ~290
 * instructions a POST-50 event; a small line's malloc and cut would cost more than its copy). */
static int add_line(Encoder *self, PyObject *lines, PyObject **hits, Py_ssize_t start, Py_ssize_t end) {
    char stack[STACK_BYTES];
    Buffer buffer = {stack, 0, STACK_BYTES, NULL};
    Py_ssize_t room = LINE_BYTES + LINE_BYTES_PER_HIT * (end - start);
    if (room > STACK_BYTES) {
        buffer.line = PyBytes_FromStringAndSize(NULL, room);
        if (buffer.line == NULL) {
            return FAILED;
        }
        buffer.data = PyBytes_AS_STRING(buffer.line);
        buffer.capacity = room;
    }
    int done = put_line(self, &buffer, hits[start], hits, start, end);
    if (done == WRITTEN) {
        PyObject *line = finish(&buffer);
        if (line == NULL || PyList_Append(lines, line) < 0) {
            done = FAILED;
        }
        Py_XDECREF(line);
    }
    Py_XDECREF(buffer.line);
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
    if (!find_attributes(self->deep_type, deep_names, self->deep, DEEP_ATTRIBUTES) ||
        !find_attributes(self->session_type, session_names, self->session, SESSION_ATTRIBUTES)) {
        return -1;
    }
    return 0;
}

static void encoder_dealloc(Encoder *self) {
    for (int i = 0; i < DEEP_ATTRIBUTES; i++) {
        Py_XDECREF(self->deep[i].name);
        Py_XDECREF(self->deep[i].descriptor);
    }
    for (int i = 0; i < SESSION_ATTRIBUTES; i++) {
        Py_XDECREF(self->session[i].name);
        Py_XDECREF(self->session[i].descriptor);
    }
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
