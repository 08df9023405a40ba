/* A GET hit's query string decoded in C (hit/protocol.py decode_ascii_query; issue 17, GET
 * hits/s).
 *
 * hit/protocol.py decode_query, compiled by mypyc, still made each name and value by a str
 * slice after two str.find calls and four `in` tests, and decoded the whole target to str
 * first: ~27,000 instructions of a realistic hit's ~235,000 (bench/RESULTS.md, session 16).
 * Here one pass over the target's bytes finds the '&', '=', '%' and '+' of each parameter;
 * a name the protocol knows is the protocol's own str object (no copy, its hash kept), a
 * plain value is one ASCII str, and a value with escapes is unquoted here.
 *
 * Only ASCII targets are decoded (the fast path's request line admits nothing else:
 * web/hit_head.py TARGET_BYTES); for any other byte `decode` answers None and the caller
 * uses decode_query. The result is decode_query's, key for key and in the same order
 * (tests/test_query_differential.py runs both on hostile and random queries):
 * - split at '&' only; a '#' ends the query; empty parameters are skipped; a name without
 *   '=' has the value ""; the last value of a name wins (at the first one's place);
 * - '+' is a space, "%XX" (either case) is the byte XX, a '%' not followed by two hex
 *   digits is kept as it is, and the bytes are then read as UTF-8 with U+FFFD for each
 *   maximal invalid part — what yarl's unquoter (decode_query's) gives for ASCII text;
 * - a value of a kept-encoded field (`kept_encoded`: name -> its cap) is left as sent
 *   when it is no longer than its cap.
 *
 * `event` (hit/protocol.py decode_target_event) decodes the same parameters a step further,
 * as the start of the event protocol.query_event makes of them (session 17): the value of an
 * integer field (`integers`) that is integer text as query_event takes it (-?[0-9]+, at most
 * INTEGER_CHARS characters, unescaped) is that int, not its text; and it says whether
 * query_event still has work (`clean` false): a name of `later` (`p`, JSON), an integer
 * field whose value it left as text, or any escaped name (which could spell either).
 * query_event leaves an int it is given as it is, so with or without this step the event
 * and its problems are the same (tests/test_query_differential.py).
 *
 * And, a step further again (session 18), whether the event's fields are `valid`: clean,
 * and each value within the rule protocol.validate_event's field walk holds it to — a
 * string field's text no longer than its cap (`caps`: name -> cap, counted in characters
 * of the decoded text), an integer field's int within its bounds (`bounds`: name ->
 * (lo, hi)). A name with neither rule has none there either (`img`, unknown names). An
 * integer field without bounds given, or an int past a C long long, is never valid. valid
 * is only ever a promise that the walk would find nothing; when it is false the walk runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#include "../_long_value.h"

#define KNOWN_SLOTS 256 /* a power of two, more than twice the names the protocol knows */
#define KEY_SLOTS 256   /* a power of two: dict keys whose Known is kept by identity (KnownKey) */
#define STACK_BYTES 2048
#define INTEGER_CHARS 20 /* protocol._INTEGER_DIGITS_MAX: longer integer text is refused there */
#define LONG_DIGITS 18   /* at most this many digits fit a long long whatever they are */

/* What a known name is to `event`: text, an integer field, or one query_event decodes. */
enum { TEXT_FIELD = 0, INTEGER_FIELD, LATER_FIELD };

typedef struct {
    Py_ssize_t length;    /* 0: an empty slot */
    const char *chars;    /* the name's ASCII characters (owned by `name`) */
    PyObject *name;
    int kind;             /* TEXT_FIELD, INTEGER_FIELD or LATER_FIELD */
    Py_ssize_t cap;       /* a text field's longest value (`caps`); -1: no cap */
    int bounded;          /* an integer field's bounds are known (`bounds`) */
    long long lo, hi;     /* those bounds */
    int index;            /* the name's place among the names (0, 1, ...): EventJudge's `seen` */
} Known;

/* A POST event's key (an exact ASCII str) and its Known (NULL: no name the protocol knows),
 * kept by identity (session 22). orjson keeps the str it makes of a key and gives the same
 * object for that key in every body, so the ~11 keys of an event are mostly the very objects
 * of the event before: their Known is then a pointer compare, not a hash of the name and a
 * memcmp in known_name (~350 instructions an event). Safe as the slot holds a reference to
 * its key (its address is not reused while kept) and a str cannot change. A slot is taken by
 * the last key looked up that hashes to it: at most KEY_SLOTS keys are held. */
typedef struct {
    PyObject *name;
    const Known *known;
} KnownKey;

typedef struct {
    PyObject_HEAD
    PyObject *kept_encoded; /* dict: name -> the longest value kept encoded */
    int count;              /* how many names (at most KNOWN_SLOTS / 2) */
    /* `props` (session 20): the most properties `p` may have, and the longest name and text
     * value of one (protocol.PROPS_MAX_*); props_judged 0 when not given (`p` is then left to
     * the walk). */
    int props_judged;
    Py_ssize_t props_max_keys, props_max_key, props_max_value;
    Known known[KNOWN_SLOTS];
    KnownKey keys[KEY_SLOTS];
} QueryDecoder;

/* What a byte of the query means to the scan: 0 for most. */
enum { PLAIN = 0, AMPERSAND, EQUALS, ESCAPE, NOT_ASCII };
static unsigned char byte_kind[256];
static signed char hex_value[256];

static size_t known_slot(const char *chars, Py_ssize_t length) {
    return ((size_t)length * 31u + (unsigned char)chars[0] * 7u + (unsigned char)chars[length - 1]) & (KNOWN_SLOTS - 1);
}

/* The protocol's entry for this name (its str borrowed); NULL when it is not one it knows. */
static const Known *known_name(const QueryDecoder *self, const char *chars, Py_ssize_t length) {
    if (length == 0) {
        return NULL;
    }
    for (size_t at = known_slot(chars, length);; at = (at + 1) & (KNOWN_SLOTS - 1)) {
        const Known *known = &self->known[at];
        if (known->length == 0) {
            return NULL;
        }
        if (known->length == length && memcmp(known->chars, chars, (size_t)length) == 0) {
            return known;
        }
    }
}

/* The Known entry of `name`, which must be among the names; NULL with ValueError if not. */
static Known *entry_of(QueryDecoder *self, PyObject *name, const char *what) {
    const Known *known = PyUnicode_CheckExact(name) && PyUnicode_IS_ASCII(name) && PyUnicode_GET_LENGTH(name) > 0
        ? known_name(self, (const char *)PyUnicode_DATA(name), PyUnicode_GET_LENGTH(name)) : NULL;
    if (known == NULL) {
        PyErr_Format(PyExc_ValueError, "%s must be among the names", what);
    }
    return (Known *)known;
}

/* Each text field's cap (`caps`: name -> int >= 0). */
static int mark_caps(QueryDecoder *self, PyObject *caps) {
    Py_ssize_t at = 0;
    PyObject *name, *cap;
    while (PyDict_Next(caps, &at, &name, &cap)) {
        Known *known = entry_of(self, name, "caps");
        if (known == NULL) {
            return -1;
        }
        Py_ssize_t most = PyLong_AsSsize_t(cap);
        if (most == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (most < 0 || known->kind != TEXT_FIELD) {
            PyErr_SetString(PyExc_ValueError, "caps: a text field's cap is an int >= 0");
            return -1;
        }
        known->cap = most;
    }
    return 0;
}

/* Each integer field's bounds (`bounds`: name -> (lo, hi)). */
static int mark_bounds(QueryDecoder *self, PyObject *bounds) {
    Py_ssize_t at = 0;
    PyObject *name, *pair;
    while (PyDict_Next(bounds, &at, &name, &pair)) {
        Known *known = entry_of(self, name, "bounds");
        if (known == NULL) {
            return -1;
        }
        long long lo, hi;
        if (known->kind != INTEGER_FIELD || !PyTuple_Check(pair) || !PyArg_ParseTuple(pair, "LL", &lo, &hi)) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "bounds: an integer field's (lo, hi)");
            }
            return -1;
        }
        known->lo = lo;
        known->hi = hi;
        known->bounded = 1;
    }
    return 0;
}

/* Mark each of `names` (all among the known ones) as of `kind`. */
static int mark_kind(QueryDecoder *self, PyObject *names, int kind) {
    PyObject *sequence = PySequence_Fast(names, "integers and later must be sequences of str");
    if (sequence == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(sequence); i++) {
        Known *known = entry_of(self, PySequence_Fast_GET_ITEM(sequence, i), "integers and later");
        if (known == NULL) {
            Py_DECREF(sequence);
            return -1;
        }
        known->kind = kind;
    }
    Py_DECREF(sequence);
    return 0;
}

static int QueryDecoder_init(QueryDecoder *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"names", "kept_encoded", "integers", "later", "caps", "bounds", "props", NULL};
    PyObject *names, *kept_encoded, *integers = NULL, *later = NULL, *caps = NULL, *bounds = NULL;
    Py_ssize_t props[3] = {-1, -1, -1};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!|OOO!O!(nnn)", keywords, &names, &PyDict_Type, &kept_encoded,
                                     &integers, &later, &PyDict_Type, &caps, &PyDict_Type, &bounds, &props[0],
                                     &props[1], &props[2])) {
        return -1;
    }
    if (props[0] != -1 || props[1] != -1 || props[2] != -1) {
        if (props[0] < 0 || props[1] < 0 || props[2] < 0) {
            PyErr_SetString(PyExc_ValueError, "props: (most properties, longest name, longest text value), each >= 0");
            return -1;
        }
        self->props_judged = 1;
        self->props_max_keys = props[0];
        self->props_max_key = props[1];
        self->props_max_value = props[2];
    }
    if (self->kept_encoded != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "QueryDecoder is initialised once");
        return -1;
    }
    PyObject *sequence = PySequence_Fast(names, "names must be a sequence of str");
    if (sequence == NULL) {
        return -1;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    if (count > KNOWN_SLOTS / 2) {
        Py_DECREF(sequence);
        PyErr_SetString(PyExc_ValueError, "too many names");
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *name = PySequence_Fast_GET_ITEM(sequence, i);
        if (!PyUnicode_CheckExact(name) || !PyUnicode_IS_ASCII(name) || PyUnicode_GET_LENGTH(name) == 0) {
            Py_DECREF(sequence);
            PyErr_SetString(PyExc_ValueError, "names must be non-empty ASCII str");
            return -1;
        }
        const char *chars = (const char *)PyUnicode_DATA(name);
        Py_ssize_t length = PyUnicode_GET_LENGTH(name);
        if (known_name(self, chars, length) != NULL) {
            continue; /* named twice */
        }
        size_t at = known_slot(chars, length);
        while (self->known[at].length != 0) {
            at = (at + 1) & (KNOWN_SLOTS - 1);
        }
        Py_INCREF(name);
        self->known[at] = (Known){length, chars, name, TEXT_FIELD, -1, 0, 0, 0, self->count++};
    }
    Py_DECREF(sequence);
    if ((integers != NULL && mark_kind(self, integers, INTEGER_FIELD) < 0)
        || (later != NULL && mark_kind(self, later, LATER_FIELD) < 0)
        || (caps != NULL && mark_caps(self, caps) < 0) || (bounds != NULL && mark_bounds(self, bounds) < 0)) {
        return -1;
    }
    Py_INCREF(kept_encoded);
    self->kept_encoded = kept_encoded;
    return 0;
}

static void QueryDecoder_dealloc(QueryDecoder *self) {
    for (size_t at = 0; at < KNOWN_SLOTS; at++) {
        Py_XDECREF(self->known[at].name);
    }
    for (size_t at = 0; at < KEY_SLOTS; at++) {
        Py_XDECREF(self->keys[at].name);
    }
    Py_XDECREF(self->kept_encoded);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The text of ASCII `chars` with '+' a space and "%XX" escapes decoded, read as UTF-8. */
static PyObject *unquoted(const char *chars, Py_ssize_t length) {
    char stack[STACK_BYTES] = {0};
    char *bytes = length <= STACK_BYTES ? stack : PyMem_Malloc((size_t)length);
    if (bytes == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t out = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        char c = chars[i];
        if (c == '+') {
            bytes[out++] = ' ';
        } else if (c == '%' && i + 2 < length && hex_value[(unsigned char)chars[i + 1]] >= 0
                   && hex_value[(unsigned char)chars[i + 2]] >= 0) {
            bytes[out++] = (char)(hex_value[(unsigned char)chars[i + 1]] << 4 | hex_value[(unsigned char)chars[i + 2]]);
            i += 2;
        } else {
            bytes[out++] = c;
        }
    }
    PyObject *text = PyUnicode_DecodeUTF8(bytes, out, "replace");
    if (bytes != stack) {
        PyMem_Free(bytes);
    }
    return text;
}

/* The parameter's value as decode_query makes it: left as sent for a kept-encoded field
 * within its cap, else unquoted when it has an escape or '+'. */
static PyObject *value_text(const QueryDecoder *self, PyObject *name, const char *chars, Py_ssize_t length, int escaped) {
    if (!escaped) {
        return PyUnicode_DecodeASCII(chars, length, NULL);
    }
    PyObject *cap = PyDict_GetItemWithError(self->kept_encoded, name);
    if (cap != NULL) {
        Py_ssize_t most = PyLong_AsSsize_t(cap);
        if (most == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (length <= most) {
            return PyUnicode_DecodeASCII(chars, length, NULL);
        }
    } else if (PyErr_Occurred()) {
        return NULL;
    }
    return unquoted(chars, length);
}

/* The int of `chars` when they are integer text as protocol.query_event takes it (-?[0-9]+,
 * at most INTEGER_CHARS characters); NULL without an exception when they are not. `*number`
 * is it as a C long long, `*fits` whether it is one (at most LONG_DIGITS digits). */
static PyObject *integer_of(const char *chars, Py_ssize_t length, long long *number, int *fits) {
    Py_ssize_t first = length > 0 && chars[0] == '-' ? 1 : 0;
    *fits = 0;
    if (length - first == 0 || length > INTEGER_CHARS) {
        return NULL;
    }
    long long digits = 0;
    for (Py_ssize_t i = first; i < length; i++) {
        if (chars[i] < '0' || chars[i] > '9') {
            return NULL;
        }
        if (i - first < LONG_DIGITS) {
            digits = digits * 10 + (chars[i] - '0');
        }
    }
    if (length - first <= LONG_DIGITS) {
        *number = first ? -digits : digits;
        *fits = 1;
        return PyLong_FromLongLong(*number);
    }
    char text[INTEGER_CHARS + 1];
    memcpy(text, chars, (size_t)length);
    text[length] = '\0';
    return PyLong_FromString(text, NULL, 10);
}

/* The parameters of raw[start:], an ASCII query string, as decode_query gives them — or,
 * with `as_event`, as `event` gives them, `*clean` set to whether query_event has nothing
 * left to do and `*valid` to whether, clean, each field is within its rule (caps, bounds).
 * None when raw has a byte that is not ASCII (decode_query then decodes it). */
static PyObject *decoded(QueryDecoder *self, PyObject *const *args, Py_ssize_t nargs, int as_event, int *clean,
                         int *valid) {
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "decode(raw: bytes, start: int)");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) {
        return NULL;
    }
    const char *raw = PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    if (start < 0 || start > size) {
        PyErr_SetString(PyExc_ValueError, "start must be within raw");
        return NULL;
    }
    const char *hash = memchr(raw + start, '#', (size_t)(size - start));
    Py_ssize_t end = hash == NULL ? size : hash - raw;
    /* What follows a '#' is dropped unread, whatever its bytes (decode_query decodes the
     * whole string with U+FFFD for what is not UTF-8, which cannot take the ASCII '#'). */
    PyObject *query = PyDict_New();
    if (query == NULL) {
        return NULL;
    }
    *clean = 1;
    *valid = 1; /* and cleared by any value outside its rule: the last one of a name need not be */
    Py_ssize_t i = start;
    while (i <= end) {
        Py_ssize_t piece = i, equals = -1;
        int name_escaped = 0, value_escaped = 0;
        for (; i < end; i++) {
            unsigned char kind = byte_kind[(unsigned char)raw[i]];
            if (kind == PLAIN) {
                continue;
            }
            if (kind == AMPERSAND) {
                break;
            }
            if (kind == EQUALS) {
                if (equals < 0) {
                    equals = i;
                }
            } else if (kind == ESCAPE) {
                if (equals < 0) {
                    name_escaped = 1;
                } else {
                    value_escaped = 1;
                }
            } else { /* NOT_ASCII */
                Py_DECREF(query);
                Py_RETURN_NONE;
            }
        }
        Py_ssize_t amp = i++; /* the '&' or the end; the next piece starts after it */
        if (equals < 0 && amp == piece) {
            continue; /* an empty parameter ("a=1&&b=2", or a trailing '&') */
        }
        Py_ssize_t name_end = equals < 0 ? amp : equals;
        PyObject *name;
        int field = TEXT_FIELD;
        const Known *known = NULL;
        if (name_escaped) {
            name = unquoted(raw + piece, name_end - piece);
            *clean = 0; /* it may spell an integer field or `p` */
        } else {
            known = known_name(self, raw + piece, name_end - piece);
            if (known != NULL) {
                name = known->name;
                field = known->kind;
                Py_INCREF(name);
            } else {
                name = PyUnicode_DecodeASCII(raw + piece, name_end - piece, NULL);
            }
        }
        if (name == NULL) {
            Py_DECREF(query);
            return NULL;
        }
        PyObject *value = NULL;
        if (as_event && field != TEXT_FIELD) {
            if (field == INTEGER_FIELD && equals >= 0 && !value_escaped) {
                long long number = 0;
                int fits;
                value = integer_of(raw + equals + 1, amp - equals - 1, &number, &fits);
                if (value == NULL && PyErr_Occurred()) {
                    Py_DECREF(name);
                    Py_DECREF(query);
                    return NULL;
                }
                if (!fits || !known->bounded || number < known->lo || number > known->hi) {
                    *valid = 0;
                }
            }
            if (value == NULL) {
                *clean = 0; /* left as text: query_event decodes or refuses it */
            }
        }
        if (value == NULL) {
            value = equals < 0 ? PyUnicode_New(0, 0)
                               : value_text(self, name, raw + equals + 1, amp - equals - 1, value_escaped);
            if (value != NULL && known != NULL && known->cap >= 0 && PyUnicode_GET_LENGTH(value) > known->cap) {
                *valid = 0;
            }
        }
        if (value == NULL || PyDict_SetItem(query, name, value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(name);
            Py_DECREF(query);
            return NULL;
        }
        Py_DECREF(value);
        Py_DECREF(name);
    }
    return query;
}

static PyObject *QueryDecoder_decode(QueryDecoder *self, PyObject *const *args, Py_ssize_t nargs) {
    int clean, valid;
    return decoded(self, args, nargs, 0, &clean, &valid);
}

static PyObject *QueryDecoder_event(QueryDecoder *self, PyObject *const *args, Py_ssize_t nargs) {
    int clean, valid;
    PyObject *query = decoded(self, args, nargs, 1, &clean, &valid);
    if (query == NULL || query == Py_None) {
        return query;
    }
    PyObject *answer = PyTuple_New(3);
    if (answer == NULL) {
        Py_DECREF(query);
        return NULL;
    }
    PyTuple_SET_ITEM(answer, 0, query);
    PyTuple_SET_ITEM(answer, 1, PyBool_FromLong(clean));
    PyTuple_SET_ITEM(answer, 2, PyBool_FromLong(clean && valid));
    return answer;
}

/* Whether `value`, an event's `p`, is properties protocol._props_problem finds nothing in: a
 * dict (exactly) of at most props_max_keys items, each named by a str (exactly) of at most
 * props_max_key characters and valued a str (exactly) of at most props_max_value characters,
 * an int (exactly), a bool or a finite float (exactly). 0, so that the walk judges, for
 * anything else, a subclass too (session 20: `p` was always the walk's, ~9,000 instructions
 * for each event that has it). */
static int props_within_rules(const QueryDecoder *self, PyObject *value) {
    if (!PyDict_CheckExact(value) || PyDict_GET_SIZE(value) > self->props_max_keys) {
        return 0;
    }
    Py_ssize_t at = 0;
    PyObject *name, *item;
    while (PyDict_Next(value, &at, &name, &item)) {
        if (!PyUnicode_CheckExact(name) || PyUnicode_READY(name) < 0 || PyUnicode_GET_LENGTH(name) > self->props_max_key) {
            PyErr_Clear();
            return 0;
        }
        if (PyUnicode_CheckExact(item)) {
            if (PyUnicode_READY(item) < 0 || PyUnicode_GET_LENGTH(item) > self->props_max_value) {
                PyErr_Clear();
                return 0;
            }
        } else if (PyFloat_CheckExact(item)) {
            if (!isfinite(PyFloat_AS_DOUBLE(item))) {
                return 0;
            }
        } else if (!PyLong_CheckExact(item) && !PyBool_Check(item)) {
            return 0;
        }
    }
    return 1;
}

/* Whether each field of `event` (a dict, as orjson makes a POST body's event) is within the
 * rule protocol.validate_event's field walk holds it to (session 19): a string field's value
 * a str (exactly) no longer than its cap, an integer field's an int (exactly: not a bool)
 * within its bounds. A name with no rule (`img`, unknown names, any name that is not ASCII)
 * has none here either, whatever its value. 0, so that the walk runs and says what it
 * finds, for anything else: a value of another type (an integer `uid` too, which the walk
 * turns into text), `p` (its properties are the walk's to judge, unless `props` was given:
 * props_within_rules), an int past a C long long, a key that is not a str, a dict subclass.
 * Like `event`'s valid, only ever a promise that the walk would find nothing
 * (tests/test_event_fields_differential.py).
 * With `seen` (self->count entries, all NULL), each known name's value is put at its index
 * (borrowed from `event`): EventJudge then finds a field without a look-up in the dict. */
/* known_name of a dict key `name`, an exact ASCII str: by identity (KnownKey) when it is
 * the key last looked up in its slot, else by its text, then kept. */
static const Known *known_key(QueryDecoder *self, PyObject *name) {
    KnownKey *slot = &self->keys[((uintptr_t)name >> 4) & (KEY_SLOTS - 1)];
    if (slot->name == name) {
        return slot->known;
    }
    const Known *known = known_name(self, (const char *)PyUnicode_DATA(name), PyUnicode_GET_LENGTH(name));
    PyObject *replaced = slot->name;
    Py_INCREF(name);
    slot->name = name;
    slot->known = known;
    Py_XDECREF(replaced); /* a str: its deallocation runs no Python code */
    return known;
}

static int fields_within_rules(QueryDecoder *self, PyObject *event, PyObject **seen) {
    if (!PyDict_CheckExact(event)) {
        return 0;
    }
    Py_ssize_t at = 0;
    PyObject *name, *value;
    while (PyDict_Next(event, &at, &name, &value)) {
        if (!PyUnicode_CheckExact(name) || PyUnicode_READY(name) < 0) {
            PyErr_Clear();
            return 0;
        }
        if (!PyUnicode_IS_ASCII(name)) {
            continue; /* every rule's name is ASCII */
        }
        const Known *known = known_key(self, name);
        if (known == NULL) {
            continue;
        }
        if (seen != NULL) {
            seen[known->index] = value;
        }
        if (known->kind == TEXT_FIELD) {
            if (known->cap < 0) {
                continue; /* a name known to the decoder that has no rule (`img`) */
            }
            if (!PyUnicode_CheckExact(value) || PyUnicode_READY(value) < 0 || PyUnicode_GET_LENGTH(value) > known->cap) {
                PyErr_Clear();
                return 0;
            }
        } else if (known->kind == INTEGER_FIELD) {
            if (!known->bounded || !PyLong_CheckExact(value)) {
                return 0;
            }
            int overflow;
            long long number = long_value(value, &overflow);
            if (overflow || (number == -1 && PyErr_Occurred())) {
                PyErr_Clear();
                return 0;
            }
            if (number < known->lo || number > known->hi) {
                return 0;
            }
        } else if (!self->props_judged || !props_within_rules(self, value)) {
            return 0; /* `p`, unless judged here */
        }
    }
    return 1;
}

static PyObject *QueryDecoder_fields_valid(QueryDecoder *self, PyObject *event) {
    return PyBool_FromLong(fields_within_rules(self, event, NULL));
}

static PyMethodDef QueryDecoder_methods[] = {
    {"decode", (PyCFunction)(void (*)(void))QueryDecoder_decode, METH_FASTCALL,
     "decode(raw, start) -> the parameters of raw[start:] as decode_query gives them; None if it is not ASCII."},
    {"event", (PyCFunction)(void (*)(void))QueryDecoder_event, METH_FASTCALL,
     "event(raw, start) -> (parameters, clean, valid): decode's, integer fields' integer text as ints; clean: "
     "nothing left for query_event; valid: clean, and every field within its caps or bounds. None if it is not "
     "ASCII."},
    {"fields_valid", (PyCFunction)QueryDecoder_fields_valid, METH_O,
     "fields_valid(event) -> True when every field of the dict `event` is of its rule's type and within its cap or "
     "bounds (validate_event's field walk would find nothing); False when the walk must judge."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject QueryDecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "collector.hit._query.QueryDecoder",
    .tp_doc = "QueryDecoder(names, kept_encoded, integers=(), later=(), caps={}, bounds={}): decode_query for ASCII "
              "query strings.",
    .tp_basicsize = sizeof(QueryDecoder),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)QueryDecoder_init,
    .tp_dealloc = (destructor)QueryDecoder_dealloc,
    .tp_methods = QueryDecoder_methods,
};

/* ---- EventJudge: a POST event judged whole (session 19) ----------------------------------
 *
 * protocol.validate_event runs for each event of every batch, ~7,000 instructions compiled
 * (bench/RESULTS.md, session 19), nearly always to find nothing. `judge(event)` answers in
 * one pass whether it would find nothing: the fields within their rules (fields_within_rules,
 * the decoder's caps and bounds), then what validate_event judges of fields together, from
 * the protocol's own tables given at construction —
 * - the app key `k` present, not empty, without a character of [\x00-\x1f\x7f{}];
 * - the type `t` present and one of `types`, and each field `required[type]` present;
 * - a URL `u` that is empty or starts with http:// or https://;
 * - for a type of `deep_types`, or an event with `etr` or `epos` (protocol._deep_problems):
 *   an action `n` among `actions[type]` when the type has actions, and the fields that
 *   action requires; each pair of `pairs.get(type, default_pairs)` both present or both
 *   absent; `pb` among `boundaries`; and, with `dur`, a media event's `pos` at most `dur`
 *   and `ws` at most `dur` + 1.
 * True is a promise that validate_event finds no problem; False is no verdict (the Python
 * judges, and says what is wrong). It never looks at `checked_key`: the app key is scanned
 * each time (64 characters at most), which can only make it refuse more.
 * tests/test_event_fields_differential.py holds it to protocol.event_problems. */

/* The judge's tables (session 20). The first version looked each field up in the event dict
 * (~8 look-ups and ~5 membership tests an event, each hashing or comparing the name with a
 * key orjson made) and each rule up by the type's text in 5 dicts and sets: ~5,000
 * instructions an event. Now the pass over the fields (fields_within_rules) notes where
 * each known field is (`seen`, by the name's index), the rules are kept per type in C
 * arrays of those indices, and the type and the action are found by comparing their text
 * with the few there are: no hashing, no dict. */
#define RULE_TYPES 16   /* the most types `types` may hold */
#define RULE_ACTIONS 16 /* the most actions a type may have */
#define RULE_FIELDS 8   /* the most fields a type or an action may require */
#define RULE_PAIRS 4    /* the most pairs a type may have */
#define TYPE_SLOTS 8    /* a power of two: type str objects whose rule is kept by identity */

typedef struct {
    int count;
    int field[RULE_FIELDS]; /* the required fields' indices (Known.index) */
} Fields;

typedef struct {
    PyObject *name; /* the action (str) */
    Fields needs;
} ActionRule;

typedef struct {
    PyObject *name; /* the type (str, of `types`) */
    Fields required;
    int deep;       /* of `deep_types` */
    int media;      /* "media": its `pos` may not pass `dur` (protocol._deep_problems) */
    int actions;    /* how many of `action`; -1 when the type has no actions */
    ActionRule action[RULE_ACTIONS];
    int pairs;
    int pair[RULE_PAIRS][2];
} TypeRule;

typedef struct {
    PyObject_HEAD
    QueryDecoder *decoder;
    PyObject *boundaries; /* frozenset of int */
    int types;
    TypeRule type[RULE_TYPES];
    /* The indices of the fields judged together; k, t, u and n are text fields with a cap
     * (so a str when present), pb, dur, pos and ws integer fields with bounds (an int). */
    int k, t, u, n, etr, epos, pb, dur, pos, ws;
    /* Verdicts kept by identity (session 24), each slot holding a reference to its str (its
     * address is not reused while kept; a str cannot change): the type `t` objects last found
     * among `types` and their rules, and the app key `k` last found clean. The batch decoder
     * gives one str object for each value that repeats within a body (hit/_batch_json.c
     * Repeats), so a POST-50 body's events find their type's rule and their app key's verdict
     * by address (~150 instructions an event by text). Bounded: TYPE_SLOTS + 1 str, each
     * within its field's cap. */
    struct {
        PyObject *text;
        const TypeRule *rule;
    } known_type[TYPE_SLOTS];
    PyObject *clean_app;
    int ready; /* initialised whole */
} EventJudge;

static PyTypeObject EventJudgeType;

/* The same text: str equality (exact, ready str objects). */
static int same_text(PyObject *a, PyObject *b) {
    Py_ssize_t length = PyUnicode_GET_LENGTH(a);
    return a == b || (length == PyUnicode_GET_LENGTH(b) && PyUnicode_KIND(a) == PyUnicode_KIND(b)
                      && memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)length * PyUnicode_KIND(a)) == 0);
}

/* The index of the field `name`, which must be one of the decoder's of `kind` (a text field
 * with a cap, or an integer field with bounds); -1 with ValueError if not. */
static int field_index(EventJudge *self, PyObject *name, int kind) {
    Known *known = entry_of(self->decoder, name, "the judge's fields");
    if (known == NULL) {
        return -1;
    }
    if (kind >= 0 && (known->kind != kind || (kind == TEXT_FIELD ? known->cap < 0 : !known->bounded))) {
        PyErr_SetString(PyExc_ValueError, "the judge's fields: k, t, u, n text fields with caps, the others integers with bounds");
        return -1;
    }
    return known->index;
}

/* `fields` from `names` (a tuple of str, or NULL: none). */
static int fields_of(EventJudge *self, PyObject *names, Fields *fields) {
    fields->count = 0;
    if (names == NULL) {
        return 0;
    }
    if (!PyTuple_CheckExact(names) || PyTuple_GET_SIZE(names) > RULE_FIELDS) {
        PyErr_SetString(PyExc_ValueError, "required fields: a tuple of at most 8 str");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        int index = field_index(self, PyTuple_GET_ITEM(names, i), -1);
        if (index < 0) {
            return -1;
        }
        fields->field[fields->count++] = index;
    }
    return 0;
}

/* `rule`'s actions from `actions` (a dict: action -> tuple of str, or NULL: the type has none). */
static int actions_of(EventJudge *self, PyObject *actions, TypeRule *rule) {
    rule->actions = -1;
    if (actions == NULL) {
        return 0;
    }
    if (!PyDict_CheckExact(actions) || PyDict_GET_SIZE(actions) > RULE_ACTIONS) {
        PyErr_SetString(PyExc_ValueError, "actions: a dict of at most 16 actions");
        return -1;
    }
    rule->actions = 0;
    Py_ssize_t at = 0;
    PyObject *action, *needs;
    while (PyDict_Next(actions, &at, &action, &needs)) {
        if (!PyUnicode_CheckExact(action) || PyUnicode_READY(action) < 0) {
            PyErr_SetString(PyExc_ValueError, "actions: str actions");
            return -1;
        }
        ActionRule *entry = &rule->action[rule->actions];
        if (fields_of(self, needs, &entry->needs) < 0) {
            return -1;
        }
        entry->name = Py_NewRef(action);
        rule->actions++;
    }
    return 0;
}

/* `rule`'s pairs from `pairs` (a tuple of (str, str)). */
static int pairs_of(EventJudge *self, PyObject *pairs, TypeRule *rule) {
    if (!PyTuple_CheckExact(pairs) || PyTuple_GET_SIZE(pairs) > RULE_PAIRS) {
        PyErr_SetString(PyExc_ValueError, "pairs: a tuple of at most 4 (str, str)");
        return -1;
    }
    rule->pairs = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(pairs); i++) {
        PyObject *pair = PyTuple_GET_ITEM(pairs, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_ValueError, "pairs: a tuple of (str, str)");
            return -1;
        }
        for (int j = 0; j < 2; j++) {
            if ((rule->pair[rule->pairs][j] = field_index(self, PyTuple_GET_ITEM(pair, j), -1)) < 0) {
                return -1;
            }
        }
        rule->pairs++;
    }
    return 0;
}

/* The rule of the type `etype` (of `types`), from the tables. */
static int type_rule(EventJudge *self, PyObject *etype, PyObject *required, PyObject *deep_types, PyObject *actions,
                     PyObject *pairs, PyObject *default_pairs, TypeRule *rule) {
    if (!PyUnicode_CheckExact(etype) || PyUnicode_READY(etype) < 0) {
        PyErr_SetString(PyExc_ValueError, "types: str");
        return -1;
    }
    rule->name = Py_NewRef(etype);
    rule->actions = -1;
    rule->media = PyUnicode_CompareWithASCIIString(etype, "media") == 0;
    if ((rule->deep = PySet_Contains(deep_types, etype)) < 0) {
        return -1;
    }
    PyObject *found = PyDict_GetItemWithError(required, etype);
    if ((found == NULL && PyErr_Occurred()) || fields_of(self, found, &rule->required) < 0) {
        return -1;
    }
    found = PyDict_GetItemWithError(actions, etype);
    if ((found == NULL && PyErr_Occurred()) || actions_of(self, found, rule) < 0) {
        return -1;
    }
    found = PyDict_GetItemWithError(pairs, etype);
    if (found == NULL && PyErr_Occurred()) {
        return -1;
    }
    return pairs_of(self, found != NULL ? found : default_pairs, rule);
}

static int EventJudge_init(EventJudge *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"decoder", "types", "required", "deep_types", "actions", "pairs", "default_pairs",
                               "boundaries", NULL};
    PyObject *decoder, *types, *required, *deep_types, *actions, *pairs, *default_pairs, *boundaries;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!O!O!O!O!", keywords, &QueryDecoderType, &decoder,
                                     &PyFrozenSet_Type, &types, &PyDict_Type, &required, &PyFrozenSet_Type,
                                     &deep_types, &PyDict_Type, &actions, &PyDict_Type, &pairs, &PyTuple_Type,
                                     &default_pairs, &PyFrozenSet_Type, &boundaries)) {
        return -1;
    }
    if (self->decoder != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "EventJudge is initialised once");
        return -1;
    }
    if (PySet_GET_SIZE(types) > RULE_TYPES) {
        PyErr_SetString(PyExc_ValueError, "types: at most 16");
        return -1;
    }
    self->decoder = (QueryDecoder *)Py_NewRef(decoder);
    const char *texts[] = {"k", "t", "u", "n", "etr", "epos", "pb", "dur", "pos", "ws"};
    int *indices[] = {&self->k, &self->t, &self->u, &self->n, &self->etr, &self->epos, &self->pb, &self->dur,
                      &self->pos, &self->ws};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        PyObject *name = PyUnicode_InternFromString(texts[i]);
        if (name == NULL) {
            return -1;
        }
        /* k t u n: text with caps (str when present); etr epos: any field; the rest: integers */
        *indices[i] = field_index(self, name, i < 4 ? TEXT_FIELD : i < 6 ? -1 : INTEGER_FIELD);
        Py_DECREF(name);
        if (*indices[i] < 0) {
            return -1;
        }
    }
    PyObject *iterator = PyObject_GetIter(types);
    if (iterator == NULL) {
        return -1;
    }
    PyObject *etype;
    while ((etype = PyIter_Next(iterator)) != NULL) {
        int failed = type_rule(self, etype, required, deep_types, actions, pairs, default_pairs,
                               &self->type[self->types]);
        self->types++; /* (counted when it fails too: dealloc drops what it holds) */
        Py_DECREF(etype);
        if (failed < 0) {
            Py_DECREF(iterator);
            return -1;
        }
    }
    Py_DECREF(iterator);
    if (PyErr_Occurred()) {
        return -1;
    }
    self->boundaries = Py_NewRef(boundaries);
    self->ready = 1;
    return 0;
}

static void EventJudge_dealloc(EventJudge *self) {
    for (int i = 0; i < self->types; i++) {
        TypeRule *rule = &self->type[i];
        Py_XDECREF(rule->name);
        for (int j = 0; j < rule->actions; j++) {
            Py_XDECREF(rule->action[j].name);
        }
    }
    for (int i = 0; i < TYPE_SLOTS; i++) {
        Py_XDECREF(self->known_type[i].text);
    }
    Py_XDECREF(self->clean_app);
    Py_XDECREF(self->decoder);
    Py_XDECREF(self->boundaries);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Each of `fields` present. */
static int all_seen(PyObject *const *seen, const Fields *fields) {
    for (int i = 0; i < fields->count; i++) {
        if (seen[fields->field[i]] == NULL) {
            return 0;
        }
    }
    return 1;
}

/* What protocol._deep_problems judges, for an event whose fields are within their rules
 * (so each integer field present is an int within a C long long) and of the type `rule`. */
static int deep_clean(const EventJudge *self, const TypeRule *rule, PyObject *const *seen) {
    PyObject *action = seen[self->n]; /* (a str: its rule's) */
    if (rule->actions >= 0 && action != NULL) {
        const ActionRule *found = NULL;
        for (int i = 0; i < rule->actions && found == NULL; i++) {
            found = same_text(rule->action[i].name, action) ? &rule->action[i] : NULL;
        }
        if (found == NULL || !all_seen(seen, &found->needs)) {
            return 0; /* an unknown action, or one without what it requires */
        }
    }
    for (int i = 0; i < rule->pairs; i++) {
        if ((seen[rule->pair[i][0]] == NULL) != (seen[rule->pair[i][1]] == NULL)) {
            return 0;
        }
    }
    PyObject *pb = seen[self->pb];
    if (pb != NULL && PySet_Contains(self->boundaries, pb) != 1) {
        PyErr_Clear();
        return 0;
    }
    PyObject *dur = seen[self->dur];
    if (dur != NULL) {
        long long seconds = PyLong_AsLongLong(dur);
        if (seconds >= 0) {
            PyObject *pos = seen[self->pos], *ws = seen[self->ws];
            if (pos != NULL && rule->media && PyLong_AsLongLong(pos) > seconds) {
                return 0;
            }
            if (ws != NULL && PyLong_AsLongLong(ws) > seconds + 1) {
                return 0;
            }
        }
    }
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* Whether the str `app` (an app key within its cap) is not empty and has no character of
 * [\x00-\x1f\x7f{}]: by identity when it is the key last found so, else scanned (and kept). */
static int app_key_clean(EventJudge *self, PyObject *app) {
    if (app == self->clean_app) {
        return 1;
    }
    if (PyUnicode_GET_LENGTH(app) == 0) {
        return 0;
    }
    int kind = PyUnicode_KIND(app);
    const void *data = PyUnicode_DATA(app);
    for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(app); i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 0x20 || c == 0x7f || c == '{' || c == '}') {
            return 0;
        }
    }
    Py_XSETREF(self->clean_app, Py_NewRef(app)); /* (a str: its deallocation runs no Python code) */
    return 1;
}

/* The rule of the type `etype` (a str), or NULL when it is not one of `types`: by identity
 * when it is the object last found in its slot, else by its text (and kept). */
static const TypeRule *type_rule_of(EventJudge *self, PyObject *etype) {
    size_t at = ((uintptr_t)etype >> 4) & (TYPE_SLOTS - 1);
    if (self->known_type[at].text == etype) {
        return self->known_type[at].rule;
    }
    const TypeRule *rule = NULL;
    for (int i = 0; i < self->types && rule == NULL; i++) {
        rule = same_text(self->type[i].name, etype) ? &self->type[i] : NULL;
    }
    if (rule != NULL) {
        Py_XSETREF(self->known_type[at].text, Py_NewRef(etype));
        self->known_type[at].rule = rule;
    }
    return rule;
}

/* Whether the str `text` starts with the ASCII `prefix` of `length` characters
 * (str.startswith, any kind of str). */
static int starts_with(PyObject *text, const char *prefix, Py_ssize_t length) {
    if (PyUnicode_GET_LENGTH(text) < length) {
        return 0;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    for (Py_ssize_t i = 0; i < length; i++) {
        if (PyUnicode_READ(kind, data, i) != (Py_UCS4)(unsigned char)prefix[i]) {
            return 0;
        }
    }
    return 1;
}

static int event_clean(EventJudge *self, PyObject *event) {
    PyObject *seen[KNOWN_SLOTS / 2];
    memset(seen, 0, sizeof(PyObject *) * (size_t)self->decoder->count);
    if (!fields_within_rules(self->decoder, event, seen)) {
        return 0; /* (and not a plain dict, or a field the walk must judge) */
    }
    PyObject *app = seen[self->k], *etype = seen[self->t]; /* str within their caps, when present */
    if (app == NULL || etype == NULL || !app_key_clean(self, app)) {
        return 0;
    }
    const TypeRule *rule = type_rule_of(self, etype);
    if (rule == NULL || !all_seen(seen, &rule->required)) {
        return 0; /* not one of `types`, or without a field it requires */
    }
    PyObject *url = seen[self->u];
    if (url != NULL && PyUnicode_GET_LENGTH(url) > 0 && !starts_with(url, "http://", 7)
        && !starts_with(url, "https://", 8)) {
        return 0;
    }
    int deep = rule->deep || seen[self->etr] != NULL || seen[self->epos] != NULL;
    return deep ? deep_clean(self, rule, seen) : 1;
}

static PyObject *EventJudge_judge(EventJudge *self, PyObject *event) {
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "EventJudge is not initialised");
        return NULL;
    }
    return PyBool_FromLong(event_clean(self, event));
}

static PyMethodDef EventJudge_methods[] = {
    {"judge", (PyCFunction)EventJudge_judge, METH_O,
     "judge(event) -> True when protocol.validate_event would find no problem in `event`; False: no verdict."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EventJudgeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "collector.hit._query.EventJudge",
    .tp_doc = "EventJudge(decoder, types, required, deep_types, actions, pairs, default_pairs, boundaries): whether a "
              "POST event is valid as a whole.",
    .tp_basicsize = sizeof(EventJudge),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)EventJudge_init,
    .tp_dealloc = (destructor)EventJudge_dealloc,
    .tp_methods = EventJudge_methods,
};

static struct PyModuleDef query_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "collector.hit._query",
    .m_doc = "A GET hit's ASCII query string decoded as hit/protocol.py decode_query decodes it.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__query(void) {
    for (int byte = 0; byte < 256; byte++) {
        byte_kind[byte] = byte >= 0x80 ? NOT_ASCII : PLAIN;
        hex_value[byte] = byte >= '0' && byte <= '9' ? (signed char)(byte - '0')
                        : byte >= 'a' && byte <= 'f' ? (signed char)(byte - 'a' + 10)
                        : byte >= 'A' && byte <= 'F' ? (signed char)(byte - 'A' + 10)
                                                     : -1;
    }
    byte_kind['&'] = AMPERSAND;
    byte_kind['='] = EQUALS;
    byte_kind['%'] = ESCAPE;
    byte_kind['+'] = ESCAPE;
    if (PyType_Ready(&QueryDecoderType) < 0 || PyType_Ready(&EventJudgeType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&query_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&QueryDecoderType);
    if (PyModule_AddObject(module, "QueryDecoder", (PyObject *)&QueryDecoderType) < 0) {
        Py_DECREF(&QueryDecoderType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&EventJudgeType);
    if (PyModule_AddObject(module, "EventJudge", (PyObject *)&EventJudgeType) < 0) {
        Py_DECREF(&EventJudgeType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
