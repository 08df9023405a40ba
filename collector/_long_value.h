/* An int's value as a C long long, shared by the C modules that read many small ints
 * (hit/_query.c's bounds, store/_lines.c's journal numbers). Included by path; its digest
 * is part of the build's manifest (collector/native.py C_HEADERS), so an edit here makes
 * every C module stale until rebuilt. */
#ifndef EDU_BEACON_LONG_VALUE_H
#define EDU_BEACON_LONG_VALUE_H

#include <Python.h>

/* `number` (an exact int) as a long long; *overflow set when it does not fit, -1 with an
 * exception set when reading it failed (as PyLong_AsLongLongAndOverflow). CPython 3.11's
 * layout: an int of one 30-bit digit (most of them: minutes, counts, bounds) has its sign
 * in its size, read here without the call; 3.12 changed the layout, so it takes the call. */
static inline long long long_value(PyObject *number, int *overflow) {
#if PY_VERSION_HEX < 0x030C0000
    Py_ssize_t digits = Py_SIZE(number);
    if (digits >= -1 && digits <= 1) {
        *overflow = 0;
        return (long long)digits * (long long)((PyLongObject *)number)->ob_digit[0];
    }
#endif
    return PyLong_AsLongLongAndOverflow(number, overflow);
}

#endif
