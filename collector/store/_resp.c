/* A Redis command in RESP, in C: store/redis_client.py's `pack` for the argument types it
 * meets on the flush's path (issue 17, POST batches).
 *
 * At saturation the flusher's thread packs every script call of a POST-50 second on the hit
 * loop's core: ~6 arguments an event (an event id, a field and its increment, the deep
 * tag's members), and hiredis.pack_command took ~135-240 ns an argument (it makes a new
 * bytes object of each str and a str and then bytes of each int): ~1.5 µs an event
 * (bench.flush_cpu --stages). Here an ASCII str is copied from the string itself and an
 * int written digit by digit into one growing buffer.
 *
 * `pack_command(args)` answers the very bytes hiredis.pack_command(args) does, or None
 * when an argument is of another type (a float, a memoryview, a subclass of str, int or
 * bytes, a bool), an int past 64 bits, or a str that is not valid UTF-8 (a lone surrogate):
 * redis_client.pack then calls hiredis, which packs it or raises its own error.
 * tests/test_resp_pack.py compares the two on hostile and random arguments.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t length;
    Py_ssize_t capacity;
} Buffer;

/* Room for `more` bytes past the end; 0 on failure (memory error set). */
static int reserve(Buffer *buffer, Py_ssize_t more) {
    if (buffer->length + more <= buffer->capacity) {
        return 1;
    }
    Py_ssize_t capacity = buffer->capacity * 2;
    if (capacity < buffer->length + more) {
        capacity = buffer->length + more;
    }
    char *grown = PyMem_Realloc(buffer->data, (size_t)capacity);
    if (grown == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    buffer->data = grown;
    buffer->capacity = capacity;
    return 1;
}

/* The decimal digits of `value` written backwards from `end`; returns where they start. */
static char *digits_before(char *end, long long value) {
    /* Negated as unsigned: LLONG_MIN has no positive long long. */
    unsigned long long magnitude = value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
    do {
        *--end = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (value < 0) {
        *--end = '-';
    }
    return end;
}

/* `prefix` (one char), the decimal `value`, then CRLF. */
static int put_header(Buffer *buffer, char prefix, long long value) {
    char scratch[24];
    char *start = digits_before(scratch + sizeof scratch, value);
    Py_ssize_t size = scratch + sizeof scratch - start;
    if (!reserve(buffer, size + 3)) {
        return 0;
    }
    char *out = buffer->data + buffer->length;
    *out++ = prefix;
    memcpy(out, start, (size_t)size);
    out += size;
    *out++ = '\r';
    *out++ = '\n';
    buffer->length = out - buffer->data;
    return 1;
}

/* One bulk string: $length CRLF bytes CRLF. */
static int put_bulk(Buffer *buffer, const char *bytes, Py_ssize_t size) {
    if (!put_header(buffer, '$', size) || !reserve(buffer, size + 2)) {
        return 0;
    }
    char *out = buffer->data + buffer->length;
    memcpy(out, bytes, (size_t)size);
    out[size] = '\r';
    out[size + 1] = '\n';
    buffer->length += size + 2;
    return 1;
}

/* 1 written, 0 error set, -1 an argument for hiredis (nothing set). */
static int put_argument(Buffer *buffer, PyObject *arg) {
    if (PyUnicode_CheckExact(arg)) {
        if (PyUnicode_IS_ASCII(arg)) {
            return put_bulk(buffer, (const char *)PyUnicode_DATA(arg), PyUnicode_GET_LENGTH(arg));
        }
        /* A temporary UTF-8 copy, as hiredis makes: PyUnicode_AsUTF8AndSize would keep one
         * on the string for as long as it lives (a snapshot's page names, say). */
        PyObject *encoded = PyUnicode_AsUTF8String(arg);
        if (encoded == NULL) {
            PyErr_Clear(); /* a lone surrogate: hiredis raises its own UnicodeEncodeError */
            return -1;
        }
        int done = put_bulk(buffer, PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded));
        Py_DECREF(encoded);
        return done;
    }
    if (PyLong_CheckExact(arg)) {
        int overflow = 0;
        long long value = PyLong_AsLongLongAndOverflow(arg, &overflow);
        if (overflow) {
            return -1;
        }
        if (value == -1 && PyErr_Occurred()) {
            return 0;
        }
        char scratch[24];
        char *start = digits_before(scratch + sizeof scratch, value);
        return put_bulk(buffer, start, scratch + sizeof scratch - start);
    }
    if (PyBytes_CheckExact(arg)) {
        return put_bulk(buffer, PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg));
    }
    return -1;
}

static PyObject *pack_command(PyObject *module, PyObject *args) {
    (void)module;
    if (!PyTuple_CheckExact(args)) {
        PyErr_SetString(PyExc_TypeError, "pack_command takes a tuple of arguments");
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(args);
    Buffer buffer = {NULL, 0, 0};
    if (!reserve(&buffer, 32 + count * 24) || !put_header(&buffer, '*', count)) {
        PyMem_Free(buffer.data);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        int done = put_argument(&buffer, PyTuple_GET_ITEM(args, i));
        if (done != 1) {
            PyMem_Free(buffer.data);
            if (done == 0) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
    }
    PyObject *packed = PyBytes_FromStringAndSize(buffer.data, buffer.length);
    PyMem_Free(buffer.data);
    return packed;
}

static PyMethodDef methods[] = {
    {"pack_command", pack_command, METH_O,
     "The RESP bytes of a command (a tuple of str, int, bytes), or None for hiredis to pack."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_resp", NULL, 0, methods};

PyMODINIT_FUNC PyInit__resp(void) { return PyModule_Create(&module); }
