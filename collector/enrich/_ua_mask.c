/* enrich/ua_versions.py's version_masked, in C (issue 17, unique-visitor hits).
 *
 * The version memo's key is made for every User-Agent the device cache has not seen: on
 * the bench's never-seen visitors ~22,000 instructions a UA compiled by mypyc (a split on
 * "/", a slice, a set lookup and an rfind per piece, an encode/translate/decode and two
 * concatenations per version masked, a join). Here one pass over a copy of the string.
 * ua_versions.py keeps the Python form as the reference; tests/test_ua_mask.py compares the
 * two on the labelled corpus, hostile strings and random draws. The rules are that form's
 * (its comments say why each holds); the tokens come from it too, as an argument.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static int is_digit(Py_UCS4 c) { return c >= '0' && c <= '9'; }

static int is_hex(Py_UCS4 c) {
    return is_digit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

/* Whether text[start:end) equals the str `word`. */
static int equals(int kind, const void *data, Py_ssize_t start, Py_ssize_t end, PyObject *word) {
    Py_ssize_t length = end - start;
    if (PyUnicode_GET_LENGTH(word) != length) {
        return 0;
    }
    int word_kind = PyUnicode_KIND(word);
    const void *word_data = PyUnicode_DATA(word);
    for (Py_ssize_t i = 0; i < length; i++) {
        if (PyUnicode_READ(kind, data, start + i) != PyUnicode_READ(word_kind, word_data, i)) {
            return 0;
        }
    }
    return 1;
}

/* Whether text[start:end) equals one of `tokens` (a tuple of str). */
static int is_token(int kind, const void *data, Py_ssize_t start, Py_ssize_t end, PyObject *tokens) {
    for (Py_ssize_t t = 0; t < PyTuple_GET_SIZE(tokens); t++) {
        if (equals(kind, data, start, end, PyTuple_GET_ITEM(tokens, t))) {
            return 1;
        }
    }
    return 0;
}

/* _version_end: the length of the version the piece text[start:stop) starts with, or 0;
 * `at_the_end`: no "/" follows the piece. */
static Py_ssize_t version_end(int kind, const void *data, Py_ssize_t start, Py_ssize_t stop, int at_the_end) {
    Py_ssize_t end = start;
    while (end < stop) {
        Py_UCS4 c = PyUnicode_READ(kind, data, end);
        if (!is_digit(c) && c != '.') {
            break;
        }
        end++;
    }
    if (end == start || PyUnicode_READ(kind, data, end - 1) == '.') {
        return 0;
    }
    if (end < stop) {
        Py_UCS4 c = PyUnicode_READ(kind, data, end);
        return (c == ' ' || c == ';' || c == ')' || c == '(') ? end - start : 0;
    }
    return at_the_end ? end - start : 0;
}

/* _hex_end: where "(0x<hex digits>)" at text[at] of the piece ending at `stop` ends (after
 * its ")"), or 0. */
static Py_ssize_t hex_end(int kind, const void *data, Py_ssize_t at, Py_ssize_t stop) {
    if (at + 3 > stop || PyUnicode_READ(kind, data, at) != '(' || PyUnicode_READ(kind, data, at + 1) != '0'
        || PyUnicode_READ(kind, data, at + 2) != 'x') {
        return 0;
    }
    Py_ssize_t end = at + 3;
    while (end < stop && is_hex(PyUnicode_READ(kind, data, end))) {
        end++;
    }
    return (end > at + 3 && end < stop && PyUnicode_READ(kind, data, end) == ')') ? end + 1 : 0;
}

/* version_masked(ua, tokens, hex_token) -> str: ua_versions.version_masked's answer. */
static PyObject *ua_mask_version_masked(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyTuple_Check(args[1]) || !PyUnicode_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "version_masked(ua: str, tokens: tuple[str, ...], hex_token: str)");
        return NULL;
    }
    PyObject *ua = args[0], *tokens = args[1], *hex_token = args[2];
    Py_ssize_t count = PyTuple_GET_SIZE(tokens);
    for (Py_ssize_t t = 0; t < count; t++) {
        if (!PyUnicode_Check(PyTuple_GET_ITEM(tokens, t))) {
            PyErr_SetString(PyExc_TypeError, "tokens: a tuple of str");
            return NULL;
        }
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(ua);
    int kind = PyUnicode_KIND(ua);
    const void *data = PyUnicode_DATA(ua);
    PyObject *out = NULL;  /* the copy being masked, made at the first version found */
    void *out_data = NULL;
    /* The pieces between "/"s: piece_start..slash. A piece's token is what follows its
     * last space; it counts when a "/" follows the piece (so not for the last piece). */
    Py_ssize_t piece_start = 0;
    for (Py_ssize_t slash = 0; slash < n; slash++) {
        if (PyUnicode_READ(kind, data, slash) != '/') {
            continue;
        }
        /* The token, read from the copy when there is one (the Python form reads the pieces
         * as masked so far; a token never overlaps a masked place, but read alike anyway). */
        int read_kind = out != NULL ? PyUnicode_KIND(out) : kind;
        const void *read_data = out != NULL ? out_data : data;
        Py_ssize_t token_start = slash;
        while (token_start > piece_start && PyUnicode_READ(read_kind, read_data, token_start - 1) != ' ') {
            token_start--;
        }
        Py_ssize_t next_start = slash + 1, next_stop = next_start;
        while (next_stop < n && PyUnicode_READ(kind, data, next_stop) != '/') {
            next_stop++;
        }
        if (is_token(read_kind, read_data, token_start, slash, tokens)) {
            Py_ssize_t end = version_end(kind, data, next_start, next_stop, next_stop == n);
            if (end) {
                Py_ssize_t hex_stop = 0;  /* WeChat's hex build, when it follows */
                if (equals(read_kind, read_data, token_start, slash, hex_token)) {
                    hex_stop = hex_end(kind, data, next_start + end, next_stop);
                }
                if (out == NULL) {
                    out = PyUnicode_New(n, PyUnicode_MAX_CHAR_VALUE(ua));
                    if (out == NULL) {
                        return NULL;
                    }
                    memcpy(PyUnicode_DATA(out), data, (size_t)n * (size_t)kind);
                    out_data = PyUnicode_DATA(out);
                }
                int out_kind = PyUnicode_KIND(out);
                for (Py_ssize_t i = next_start; i < next_start + end; i++) {
                    if (is_digit(PyUnicode_READ(kind, data, i))) {
                        PyUnicode_WRITE(out_kind, out_data, i, '0');
                    }
                }
                for (Py_ssize_t i = next_start + end; i < hex_stop; i++) {  /* "(0x…)": class for class */
                    Py_UCS4 c = PyUnicode_READ(kind, data, i);
                    if (is_digit(c)) {
                        PyUnicode_WRITE(out_kind, out_data, i, '0');
                    } else if (c >= 'A' && c <= 'F') {
                        PyUnicode_WRITE(out_kind, out_data, i, 'A');
                    } else if (c >= 'a' && c <= 'f') {
                        PyUnicode_WRITE(out_kind, out_data, i, 'a');
                    }
                }
            }
        }
        piece_start = slash + 1;
    }
    if (out == NULL) {
        Py_INCREF(ua);
        return ua;
    }
    return out;
}

static PyMethodDef ua_mask_methods[] = {
    {"version_masked", (PyCFunction)(void (*)(void))ua_mask_version_masked, METH_FASTCALL,
     "version_masked(ua, tokens, hex_token) -> str: enrich/ua_versions.py's version_masked."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef ua_mask_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "collector.enrich._ua_mask",
    .m_doc = "enrich/ua_versions.py's version_masked, in C.",
    .m_size = 0,
    .m_methods = ua_mask_methods,
};

PyMODINIT_FUNC PyInit__ua_mask(void) {
    return PyModule_Create(&ua_mask_module);
}
