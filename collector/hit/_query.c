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
#include <string.h>

#define KNOWN_SLOTS 256 /* a power of two, more than twice the names the protocol knows */
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
} Known;

typedef struct {
    PyObject_HEAD
    PyObject *kept_encoded; /* dict: name -> the longest value kept encoded */
    Known known[KNOWN_SLOTS];
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
    static char *keywords[] = {"names", "kept_encoded", "integers", "later", "caps", "bounds", NULL};
    PyObject *names, *kept_encoded, *integers = NULL, *later = NULL, *caps = NULL, *bounds = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!|OOO!O!", keywords, &names, &PyDict_Type, &kept_encoded,
                                     &integers, &later, &PyDict_Type, &caps, &PyDict_Type, &bounds)) {
        return -1;
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
        self->known[at] = (Known){length, chars, name, TEXT_FIELD, -1, 0, 0, 0};
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

/* Whether each field of `event` (a dict, as orjson makes a POST body's event) is within the
 * rule protocol.validate_event's field walk holds it to (session 19): a string field's value
 * a str (exactly) no longer than its cap, an integer field's an int (exactly: not a bool)
 * within its bounds. A name with no rule (`img`, unknown names, any name that is not ASCII)
 * has none here either, whatever its value. 0, so that the walk runs and says what it
 * finds, for anything else: a value of another type (an integer `uid` too, which the walk
 * turns into text), `p` (its properties are the walk's to judge), an int past a C long long,
 * a key that is not a str, a dict subclass. Like `event`'s valid, only ever a promise that
 * the walk would find nothing (tests/test_event_fields_differential.py). */
static int fields_within_rules(const QueryDecoder *self, PyObject *event) {
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
        const Known *known = known_name(self, (const char *)PyUnicode_DATA(name), PyUnicode_GET_LENGTH(name));
        if (known == NULL) {
            continue;
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
            int overflow = 0;
            long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
            if (overflow || (number == -1 && PyErr_Occurred()) || number < known->lo || number > known->hi) {
                PyErr_Clear();
                return 0;
            }
        } else {
            return 0; /* `p` */
        }
    }
    return 1;
}

static PyObject *QueryDecoder_fields_valid(QueryDecoder *self, PyObject *event) {
    return PyBool_FromLong(fields_within_rules(self, event));
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

typedef struct {
    PyObject_HEAD
    QueryDecoder *decoder;
    PyObject *types;         /* frozenset of str */
    PyObject *required;      /* dict: type -> tuple of str */
    PyObject *deep_types;    /* frozenset of str */
    PyObject *actions;       /* dict: type -> dict: action -> tuple of str (copies) */
    PyObject *pairs;         /* dict: type -> tuple of (str, str) */
    PyObject *default_pairs; /* tuple of (str, str) */
    PyObject *boundaries;    /* frozenset of int */
} EventJudge;

static PyTypeObject EventJudgeType;
static PyObject *name_k, *name_t, *name_u, *name_n, *name_etr, *name_epos, *name_pb, *name_dur, *name_pos, *name_ws;
static PyObject *prefix_http, *prefix_https;

/* A tuple of str (`pairs`: of 2-tuples of str). */
static int names_tuple(PyObject *value, int pairs) {
    if (!PyTuple_CheckExact(value)) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(value); i++) {
        PyObject *item = PyTuple_GET_ITEM(value, i);
        if (pairs ? !(PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2 && PyUnicode_CheckExact(PyTuple_GET_ITEM(item, 0))
                      && PyUnicode_CheckExact(PyTuple_GET_ITEM(item, 1)))
                  : !PyUnicode_CheckExact(item)) {
            return 0;
        }
    }
    return 1;
}

/* A copy of `table` (str -> a tuple of names, or with `nested` str -> such a dict); NULL with
 * ValueError if it is anything else. */
static PyObject *table_copy(PyObject *table, int nested, int pairs, const char *what) {
    PyObject *copy = PyDict_New();
    Py_ssize_t at = 0;
    PyObject *key, *value;
    while (copy != NULL && PyDict_Next(table, &at, &key, &value)) {
        PyObject *kept = NULL;
        if (PyUnicode_CheckExact(key)) {
            if (nested && PyDict_CheckExact(value)) {
                kept = table_copy(value, 0, 0, what);
            } else if (!nested && names_tuple(value, pairs)) {
                kept = Py_NewRef(value);
            }
        }
        if (kept == NULL || PyDict_SetItem(copy, key, kept) < 0) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_ValueError, "%s: str keys, tuples of names", what);
            }
            Py_XDECREF(kept);
            Py_CLEAR(copy);
            break;
        }
        Py_DECREF(kept);
    }
    return copy;
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
    if (!names_tuple(default_pairs, 1)) {
        PyErr_SetString(PyExc_ValueError, "default_pairs: a tuple of (str, str)");
        return -1;
    }
    self->required = table_copy(required, 0, 0, "required");
    self->actions = self->required == NULL ? NULL : table_copy(actions, 1, 0, "actions");
    self->pairs = self->actions == NULL ? NULL : table_copy(pairs, 0, 1, "pairs");
    if (self->pairs == NULL) {
        return -1;
    }
    self->decoder = (QueryDecoder *)Py_NewRef(decoder);
    self->types = Py_NewRef(types);
    self->deep_types = Py_NewRef(deep_types);
    self->default_pairs = Py_NewRef(default_pairs);
    self->boundaries = Py_NewRef(boundaries);
    return 0;
}

static void EventJudge_dealloc(EventJudge *self) {
    Py_XDECREF(self->decoder);
    Py_XDECREF(self->types);
    Py_XDECREF(self->required);
    Py_XDECREF(self->deep_types);
    Py_XDECREF(self->actions);
    Py_XDECREF(self->pairs);
    Py_XDECREF(self->default_pairs);
    Py_XDECREF(self->boundaries);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* 1 when `name` is a key of `event`, 0 when not; -1 on an error (cleared: no verdict). */
static int has(PyObject *event, PyObject *name) {
    int found = PyDict_Contains(event, name);
    if (found < 0) {
        PyErr_Clear();
    }
    return found;
}

/* `event`[name], borrowed; NULL when absent (or on an error, cleared: *failed set). */
static PyObject *field(PyObject *event, PyObject *name, int *failed) {
    PyObject *value = PyDict_GetItemWithError(event, name);
    if (value == NULL && PyErr_Occurred()) {
        PyErr_Clear();
        *failed = 1;
    }
    return value;
}

/* Each of `names` (a tuple of str) present in `event`. */
static int all_present(PyObject *event, PyObject *names) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        if (has(event, PyTuple_GET_ITEM(names, i)) != 1) {
            return 0;
        }
    }
    return 1;
}

/* What protocol._deep_problems judges, for an event whose fields are within their rules
 * (so each integer field present is an int within a C long long) and whose type is str. */
static int deep_clean(const EventJudge *self, PyObject *event, PyObject *etype) {
    int failed = 0;
    PyObject *actions = field(self->actions, etype, &failed);
    PyObject *action = field(event, name_n, &failed);
    if (failed) {
        return 0;
    }
    if (actions != NULL && action != NULL) { /* (`n` is a str: its rule's) */
        PyObject *needs = field(actions, action, &failed);
        if (needs == NULL || !all_present(event, needs)) {
            return 0; /* an unknown action, or one without what it requires */
        }
    }
    PyObject *pairs = field(self->pairs, etype, &failed);
    if (failed) {
        return 0;
    }
    pairs = pairs != NULL ? pairs : self->default_pairs;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(pairs); i++) {
        PyObject *pair = PyTuple_GET_ITEM(pairs, i);
        int first = has(event, PyTuple_GET_ITEM(pair, 0)), second = has(event, PyTuple_GET_ITEM(pair, 1));
        if (first < 0 || second < 0 || first != second) {
            return 0;
        }
    }
    PyObject *pb = field(event, name_pb, &failed);
    if (pb != NULL && PyLong_CheckExact(pb) && PySet_Contains(self->boundaries, pb) != 1) {
        PyErr_Clear();
        return 0;
    }
    PyObject *dur = field(event, name_dur, &failed);
    if (dur != NULL && PyLong_CheckExact(dur)) {
        long long seconds = PyLong_AsLongLong(dur);
        if (seconds >= 0) {
            PyObject *pos = field(event, name_pos, &failed), *ws = field(event, name_ws, &failed);
            if (pos != NULL && PyLong_CheckExact(pos) && PyUnicode_CompareWithASCIIString(etype, "media") == 0
                && PyLong_AsLongLong(pos) > seconds) {
                return 0;
            }
            if (ws != NULL && PyLong_CheckExact(ws) && PyLong_AsLongLong(ws) > seconds + 1) {
                return 0;
            }
        }
    }
    if (failed || PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

static int event_clean(const EventJudge *self, PyObject *event) {
    if (!fields_within_rules(self->decoder, event)) {
        return 0; /* (and not a plain dict, or a field the walk must judge) */
    }
    int failed = 0;
    PyObject *app = field(event, name_k, &failed); /* a str within its cap, when present */
    PyObject *etype = field(event, name_t, &failed);
    if (failed || app == NULL || etype == NULL || PyUnicode_GET_LENGTH(app) == 0) {
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
    if (PySet_Contains(self->types, etype) != 1) {
        PyErr_Clear();
        return 0;
    }
    PyObject *required = field(self->required, etype, &failed);
    if (failed || (required != NULL && !all_present(event, required))) {
        return 0;
    }
    PyObject *url = field(event, name_u, &failed);
    if (failed || (url != NULL && PyUnicode_GET_LENGTH(url) > 0 && PyUnicode_Tailmatch(url, prefix_http, 0, PY_SSIZE_T_MAX, -1) != 1
                   && PyUnicode_Tailmatch(url, prefix_https, 0, PY_SSIZE_T_MAX, -1) != 1)) {
        PyErr_Clear();
        return 0;
    }
    int deep = PySet_Contains(self->deep_types, etype);
    if (deep == 0) {
        int etr = has(event, name_etr), epos = has(event, name_epos);
        if (etr < 0 || epos < 0) {
            return 0;
        }
        deep = etr || epos;
    }
    if (deep < 0) {
        PyErr_Clear();
        return 0;
    }
    return deep ? deep_clean(self, event, etype) : 1;
}

static PyObject *EventJudge_judge(EventJudge *self, PyObject *event) {
    if (self->decoder == NULL) {
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
    PyObject **interned[] = {&name_k, &name_t, &name_u, &name_n, &name_etr, &name_epos, &name_pb, &name_dur, &name_pos,
                             &name_ws, &prefix_http, &prefix_https};
    const char *texts[] = {"k", "t", "u", "n", "etr", "epos", "pb", "dur", "pos", "ws", "http://", "https://"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        if (*interned[i] == NULL && (*interned[i] = PyUnicode_InternFromString(texts[i])) == NULL) {
            return NULL;
        }
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
