/* A POST body's JSON decoded in C, with the protocol's field names as the interned str
 * objects the compiled code looks them up with (hit/protocol.py parse_body; issue 17,
 * POST events/s, session 22).
 *
 * orjson.loads took ~7,300 instructions of a POST-50 event's ~39,100, and the keys it
 * makes are new str objects (equal to the protocol's names, not the same objects): every
 * later `event.get("u")` of the compiled code found its key by hash, then compared it
 * character by character (PyUnicode_RichCompare + memcmp, ~1,200 instructions an event).
 * Here a key that is one of the names the Decoder was made with (the protocol's fields:
 * STRING_FIELDS, INT_FIELDS, `p`, `img`; a fixed, bounded set, interned once when the
 * Decoder is made) is that interned object, so those look-ups are pointer hits. Any other
 * key (a custom property's, an unknown field's) is a new str, never interned: a client
 * cannot grow the interned strings.
 *
 * `decode` answers exactly what orjson.loads answers, or None when it has no answer, and
 * the caller then asks orjson (and its fallback). It decodes what the beacon sends: an
 * array or object at the top, strings, integers, true/false/null, nested arrays and
 * objects up to MAX_DEPTH levels. It answers None (never a different value) for:
 * - a top-level value that is not an array or object;
 * - floats, fractions and exponents (orjson's float parsing is not reproduced), and
 *   integers of more than LONG_DIGITS digits (orjson's int range ends at 64 bits, then
 *   floats);
 * - a string with a raw control byte, invalid UTF-8 (CPython's strict decoder, the same
 *   standard orjson checks), an unknown escape, or a \u escape of a surrogate that is not
 *   a high one followed by a low one (orjson refuses those; the slow path scrubs them);
 * - nesting past MAX_DEPTH, any syntax error, anything after the value but whitespace.
 * Duplicate keys: the last value wins, at the first key's place (a dict's insertion, as
 * orjson's). -0 is the int 0, as orjson's. tests/test_batch_json_differential.py holds it
 * to orjson on every bench body, hostile bodies and random draws.
 *
 * Cost is linear in the body: each byte is read once (strings 16 at a time; a string the
 * short ways leave to `string` at most twice, integers 8 digits at a time), recursion is
 * bounded by MAX_DEPTH, an escaped string's buffer is at most its raw length, and what is
 * built is what orjson would build - but a value string that repeats within the body is
 * one str object (equal values, fewer objects: see Repeats).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define KNOWN_BITS 7     /* 128 slots, more than twice the names the protocol knows */
#define KNOWN_SLOTS (1u << KNOWN_BITS)
#define KNOWN_LONGEST 8  /* a name is one 64-bit word: a longer one is refused at init */
#define MAX_DEPTH 8      /* the beacon sends 3 levels (batch, event, `p`) */
#define LONG_DIGITS 18   /* at most this many digits fit a long long whatever they are */
#define PAIRS 32         /* an object's first pairs are held here, then its dict made at its size */
#define STACK_BYTES 512  /* an escaped string up to this long is unescaped on the stack */

typedef struct {
    uint64_t word;     /* the name's bytes, the first the lowest (name_word) */
    Py_ssize_t length;
    PyObject *name;    /* interned; NULL: an empty slot */
} Known;

typedef struct {
    PyObject_HEAD
    Known known[KNOWN_SLOTS];
    int ready;
} Decoder;

/* One decode's repeated values (session 22, values22). In a POST-50 body the same value
 * strings come in every event (`k`, `sid`, `vid`, `t`, `n`, `rid`, `ms`, `tr`, `u`, the
 * resource labels): handing back one str object for each raw spelling lets the code after
 * the decoder hash it once (a str caches its hash) and find it in its dicts and tuples by
 * pointer instead of memcmp. The table lives on decode's stack and holds its strs for that
 * call only: a client's values are never kept past the call, never interned. It is keyed
 * by the value's raw bytes in the body (what was between the quotes, escapes and UTF-8 as
 * sent: the same bytes always decode to the same str) - by length and the first and last
 * 8 bytes to find the slot and compare (Fingerprint), then by memcmp of any bytes between
 * them. A slot is overwritten on a
 * collision, so it is bounded (REPEAT_SLOTS strong references) and a miss costs a hash and
 * a store, whatever the body. */
#define REPEAT_BITS 8
#define REPEAT_SLOTS (1u << REPEAT_BITS)
#define REPEAT_LONGEST 64 /* longer values (long URLs) are rarely worth the memcmp */

typedef struct {
    const unsigned char *raw; /* the value's raw bytes, inside the body */
    Py_ssize_t length;
    uint64_t first, last;     /* its Fingerprint's */
    PyObject *text;           /* a strong reference; a slot is filled when its `used` bit is set */
} Repeat;

typedef struct {
    uint64_t used[REPEAT_SLOTS / 64];
    Repeat slots[REPEAT_SLOTS];
} Repeats;

typedef struct {
    const unsigned char *at;
    const unsigned char *end;
    const Decoder *decoder;
    Repeats *repeats;
    int depth;
} Reader;

/* The 1 to KNOWN_LONGEST bytes at `chars` as one number, the first byte the lowest: one
 * 8-byte load and a mask when the body has 8 bytes from there (a key is followed by at
 * least `":x}`, so nearly always), else byte by byte. */
static inline uint64_t name_word(const unsigned char *chars, Py_ssize_t length, const unsigned char *end) {
    uint64_t word = 0;
    if (end - chars >= 8) {
        memcpy(&word, chars, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        word = __builtin_bswap64(word);
#endif
        return length == 8 ? word : word & ((1ULL << (8 * length)) - 1);
    }
    for (Py_ssize_t i = 0; i < length; i++) {
        word |= (uint64_t)chars[i] << (8 * i);
    }
    return word;
}

static size_t known_slot(uint64_t word) {
    return (size_t)((word * 0x9E3779B97F4A7C15ULL) >> (64 - KNOWN_BITS));
}

/* The interned name of the bytes [chars, chars + length) (`end`: how far they may be read),
 * or NULL when they are not one of the names. */
static inline PyObject *known_name(const Decoder *self, const unsigned char *chars, Py_ssize_t length,
                                   const unsigned char *end) {
    if (length == 0 || length > KNOWN_LONGEST) {
        return NULL;
    }
    uint64_t word = name_word(chars, length, end);
    for (size_t at = known_slot(word);; at = (at + 1) & (KNOWN_SLOTS - 1)) {
        const Known *known = &self->known[at];
        if (known->name == NULL) {
            return NULL;
        }
        if (known->word == word && known->length == length) {
            return known->name;
        }
    }
}

/* A raw value of 1 to REPEAT_LONGEST bytes in three words (session 24): its length, its
 * first 8 bytes and its last 8 (up to 8 bytes: all of them in `first`, `last` 0). Two values
 * of at most 16 bytes are the same bytes exactly when their fingerprints are equal (the
 * first and last 8 cover them all); a longer one's middle is compared too (repeat_same).
 * Before, a memcmp call for each value that repeats (~20 instructions, 8 a value). */
typedef struct {
    Py_ssize_t length;
    uint64_t first, last;
} Fingerprint;

static inline Fingerprint fingerprint(const unsigned char *chars, Py_ssize_t length, const unsigned char *end) {
    Fingerprint print = {length, 0, 0};
    if (length <= 8) {
        print.first = name_word(chars, length, end);
    } else {
        memcpy(&print.first, chars, 8);
        memcpy(&print.last, chars + length - 8, 8); /* byte order does not matter: only compared */
    }
    return print;
}

/* The slot of a fingerprint. */
static inline Repeat *repeat_slot(Repeats *repeats, const Fingerprint *print) {
    uint64_t word = print->first ^ ((print->last << 29) | (print->last >> 35)) ^ (uint64_t)print->length;
    return &repeats->slots[(size_t)((word * 0x9E3779B97F4A7C15ULL) >> (64 - REPEAT_BITS))];
}

static inline int repeat_used(const Repeats *repeats, size_t index) {
    return (int)(repeats->used[index / 64] >> (index % 64) & 1);
}

/* Whether `slot` holds a str made in this decode of the same raw bytes as `chars`. */
static inline int repeat_same(const Repeat *slot, const Fingerprint *print, const unsigned char *chars) {
    return slot->length == print->length && slot->first == print->first && slot->last == print->last
        && (print->length <= 16 || memcmp(slot->raw + 8, chars + 8, (size_t)print->length - 16) == 0);
}

/* Remember `text` (made from the raw bytes `chars`) in its slot, dropping what the slot held. */
static void repeat_keep(Repeats *repeats, Repeat *slot, const Fingerprint *print, const unsigned char *chars,
                        PyObject *text) {
    size_t index = (size_t)(slot - repeats->slots);
    if (repeat_used(repeats, index)) {
        Py_DECREF(slot->text);
    }
    repeats->used[index / 64] |= 1ULL << (index % 64);
    slot->raw = chars;
    slot->length = print->length;
    slot->first = print->first;
    slot->last = print->last;
    slot->text = Py_NewRef(text);
}

/* Drop the table's references at the end of a decode. */
static void repeats_clear(Repeats *repeats) {
    for (size_t word = 0; word < REPEAT_SLOTS / 64; word++) {
        for (uint64_t used = repeats->used[word]; used != 0; used &= used - 1) {
            Py_DECREF(repeats->slots[word * 64 + (size_t)__builtin_ctzll(used)].text);
        }
        repeats->used[word] = 0;
    }
}

static int Decoder_init(Decoder *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"names", NULL};
    PyObject *names;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!", keywords, &PyTuple_Type, &names)) {
        return -1;
    }
    if (self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Decoder is initialised once");
        return -1;
    }
    if (PyTuple_GET_SIZE(names) > KNOWN_SLOTS / 2) {
        PyErr_SetString(PyExc_ValueError, "names: at most 64");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_CheckExact(name) || !PyUnicode_IS_ASCII(name) || PyUnicode_GET_LENGTH(name) == 0
            || PyUnicode_GET_LENGTH(name) > KNOWN_LONGEST) {
            PyErr_SetString(PyExc_ValueError, "names: each an ASCII str of 1 to 8 characters");
            return -1;
        }
        const unsigned char *chars = PyUnicode_1BYTE_DATA(name);
        Py_ssize_t length = PyUnicode_GET_LENGTH(name);
        if (known_name(self, chars, length, chars + length) != NULL) {
            continue; /* named twice */
        }
        uint64_t word = name_word(chars, length, chars + length);
        Py_INCREF(name);
        PyUnicode_InternInPlace(&name); /* the interned str of this text (sys.intern) */
        size_t at = known_slot(word);
        while (self->known[at].name != NULL) {
            at = (at + 1) & (KNOWN_SLOTS - 1);
        }
        self->known[at].word = word;
        self->known[at].length = length;
        self->known[at].name = name;
    }
    self->ready = 1;
    return 0;
}

static void Decoder_dealloc(Decoder *self) {
    for (size_t i = 0; i < KNOWN_SLOTS; i++) {
        Py_CLEAR(self->known[i].name);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* JSON's whitespace: space, tab, line feed, carriage return (no other). A compact body
 * has none: one test of the byte against ' ' answers. r->at is never past r->end, and a
 * bytes object's last byte is followed by a NUL (CPython's promise: PyBytes_AS_STRING),
 * so the byte is read before r->at is compared with r->end (0 is below ' '). */
static inline void skip_space(Reader *r) {
    while (*r->at <= ' ' && r->at < r->end && (*r->at == ' ' || *r->at == '\n' || *r->at == '\r' || *r->at == '\t')) {
        r->at++;
    }
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* The string scan (session 24): the bytes of the 16 (SSE2) or 8 (elsewhere) at `at` it
 * must stop at, one bit each, the first byte the lowest. A '"', a '\\' or a byte below
 * 0x20 always; a byte of 0x80 and above too while `ascii` (none seen yet in this string):
 * the first one clears it, and the scan goes on without stopping at them. So an ASCII
 * string (nearly every one) is read with one test a block and is known ASCII at its end,
 * with no separate pass or running or of the bytes. */
#if defined(__SSE2__)
#define SCAN_BLOCK 16
static inline unsigned scan_stops(const unsigned char *at, int ascii) {
    __m128i block = _mm_loadu_si128((const __m128i *)at);
    __m128i quote_or_slash = _mm_or_si128(_mm_cmpeq_epi8(block, _mm_set1_epi8('"')),
                                          _mm_cmpeq_epi8(block, _mm_set1_epi8('\\')));
    /* signed: below 0x20 is a control byte, or (negative) one of 0x80 and above */
    __m128i low = ascii ? _mm_cmplt_epi8(block, _mm_set1_epi8(0x20))
                        : _mm_cmpeq_epi8(_mm_min_epu8(block, _mm_set1_epi8(0x1F)), block);
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(quote_or_slash, low));
}
#else
#define SCAN_BLOCK 8
/* The classic "has a zero byte" tests, each flag a byte's top bit. The lowest flag is
 * exact (a false one can only stand above a true one), which is all the scan uses. */
static inline uint64_t scan_stops(const unsigned char *at, int ascii) {
    uint64_t word;
    memcpy(&word, at, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    word = __builtin_bswap64(word); /* the first byte the lowest, as trailing zeros count */
#endif
    uint64_t quote = word ^ (ONES * '"');
    uint64_t slash = word ^ (ONES * '\\');
    uint64_t stops = ((quote - ONES) & ~quote) | ((slash - ONES) & ~slash) | ((word - ONES * 0x20) & ~word);
    return (stops | (ascii ? word : 0)) & HIGHS;
}
#endif

/* The byte (0 to SCAN_BLOCK - 1) of the lowest flag of scan_stops (not 0). */
static inline unsigned first_stop(uint64_t stops) {
    return SCAN_BLOCK == 16 ? (unsigned)__builtin_ctzll(stops) : (unsigned)__builtin_ctzll(stops) / 8;
}

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The 4 hex digits at `at` (which has 4 bytes), or -1. */
static long hex4(const unsigned char *at) {
    long value = 0;
    for (int i = 0; i < 4; i++) {
        int digit = hex_value(at[i]);
        if (digit < 0) {
            return -1;
        }
        value = value * 16 + digit;
    }
    return value;
}

/* The string's raw bytes [start, stop) with escapes, unescaped into `out` (room for
 * stop - start bytes: no escape is shorter than what it stands for). The length written,
 * or -1 for an escape orjson refuses (or that decodes to a lone surrogate). */
static Py_ssize_t unescape(const unsigned char *start, const unsigned char *stop, unsigned char *out) {
    unsigned char *put = out;
    const unsigned char *at = start;
    while (at < stop) {
        if (*at != '\\') {
            *put++ = *at++;
            continue;
        }
        if (at + 1 >= stop) {
            return -1;
        }
        unsigned char c = at[1];
        at += 2;
        switch (c) {
        case '"': *put++ = '"'; continue;
        case '\\': *put++ = '\\'; continue;
        case '/': *put++ = '/'; continue;
        case 'b': *put++ = '\b'; continue;
        case 'f': *put++ = '\f'; continue;
        case 'n': *put++ = '\n'; continue;
        case 'r': *put++ = '\r'; continue;
        case 't': *put++ = '\t'; continue;
        case 'u': break;
        default: return -1;
        }
        if (stop - at < 4) {
            return -1;
        }
        long code = hex4(at);
        at += 4;
        if (code < 0 || (code >= 0xDC00 && code <= 0xDFFF)) {
            return -1; /* a low surrogate first */
        }
        if (code >= 0xD800 && code <= 0xDBFF) {
            if (stop - at < 6 || at[0] != '\\' || at[1] != 'u') {
                return -1;
            }
            long low = hex4(at + 2);
            if (low < 0xDC00 || low > 0xDFFF) {
                return -1;
            }
            at += 6;
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
        }
        if (code < 0x80) {
            *put++ = (unsigned char)code;
        } else if (code < 0x800) {
            *put++ = (unsigned char)(0xC0 | (code >> 6));
            *put++ = (unsigned char)(0x80 | (code & 0x3F));
        } else if (code < 0x10000) {
            *put++ = (unsigned char)(0xE0 | (code >> 12));
            *put++ = (unsigned char)(0x80 | ((code >> 6) & 0x3F));
            *put++ = (unsigned char)(0x80 | (code & 0x3F));
        } else {
            *put++ = (unsigned char)(0xF0 | (code >> 18));
            *put++ = (unsigned char)(0x80 | ((code >> 12) & 0x3F));
            *put++ = (unsigned char)(0x80 | ((code >> 6) & 0x3F));
            *put++ = (unsigned char)(0x80 | (code & 0x3F));
        }
    }
    return put - out;
}

/* A str of UTF-8 bytes (strict), or NULL with no exception when they are not UTF-8. */
static PyObject *utf8_text(const unsigned char *chars, Py_ssize_t length, int ascii) {
    if (ascii) {
        PyObject *text = PyUnicode_New(length, 127);
        if (text != NULL) {
            memcpy(PyUnicode_1BYTE_DATA(text), chars, (size_t)length);
        }
        return text;
    }
    PyObject *text = PyUnicode_DecodeUTF8((const char *)chars, length, NULL);
    if (text == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
    }
    return text;
}

static PyObject *new_string(Reader *r, const unsigned char *start, const unsigned char *stop, int key, int ascii,
                            int escaped);

/* The string whose opening quote r->at is on; `key`: an object's key, which is the
 * interned name when it is one of the Decoder's. A value seen before in this decode, with
 * the same raw bytes, is the same str object (Repeats). New reference, or NULL (an
 * exception set only when Python failed: MemoryError). */
static __attribute__((noinline)) PyObject *string(Reader *r, int key) {
    const unsigned char *start = ++r->at;
    const unsigned char *at = start;
    int ascii = 1; /* no byte of 0x80 and above passed */
    int escaped = 0;
    for (;;) {
        if (r->end - at >= SCAN_BLOCK) {
            uint64_t stops = scan_stops(at, ascii);
            if (stops == 0) {
                at += SCAN_BLOCK;
                continue;
            }
            at += first_stop(stops);
        } else if (at >= r->end) {
            return NULL; /* no closing quote */
        }
        /* a stop, or (the body's last SCAN_BLOCK - 1 bytes) each byte */
        unsigned char c = *at;
        if (c == '"') {
            break;
        }
        if (c == '\\') {
            escaped = 1;
            at += 2; /* the escaped byte is never the closing quote; unescape judges the rest */
            continue;
        }
        if (c < 0x20) {
            return NULL; /* a raw control byte */
        }
        ascii &= c < 0x80;
        at++;
    }
    const unsigned char *stop = at;
    r->at = stop + 1;
    Py_ssize_t length = stop - start;
    if (key) {
        if (!escaped && ascii) {
            PyObject *name = known_name(r->decoder, start, length, r->end);
            if (name != NULL) {
                return Py_NewRef(name);
            }
        }
        return new_string(r, start, stop, key, ascii, escaped);
    }
    if (length == 0 || length > REPEAT_LONGEST) {
        return new_string(r, start, stop, key, ascii, escaped);
    }
    Fingerprint print = fingerprint(start, length, r->end);
    Repeat *slot = repeat_slot(r->repeats, &print);
    if (repeat_used(r->repeats, (size_t)(slot - r->repeats->slots)) && repeat_same(slot, &print, start)) {
        return Py_NewRef(slot->text);
    }
    PyObject *text = new_string(r, start, stop, key, ascii, escaped);
    if (text != NULL) {
        repeat_keep(r->repeats, slot, &print, start, text);
    }
    return text;
}

/* An object's key, whose opening quote r->at is on: string(r, 1), with a short way for
 * one of the Decoder's names (session 24: an event's ~11 keys nearly all are). The first
 * stop of the scan is the closing quote, the bytes before it ASCII: known_name answers, or
 * string does it all again (any other key, escaped or not, is rare and still right). */
static inline PyObject *object_key(Reader *r) {
    const unsigned char *start = r->at + 1;
    if (r->end - start >= SCAN_BLOCK) {
        uint64_t stops = scan_stops(start, 1);
        if (stops != 0) {
            unsigned length = first_stop(stops);
            if (start[length] == '"') {
                PyObject *name = known_name(r->decoder, start, (Py_ssize_t)length, r->end);
                if (name != NULL) {
                    r->at = start + length + 1;
                    return Py_NewRef(name);
                }
            }
        }
    }
    return string(r, 1);
}

/* A value string, whose opening quote r->at is on: string(r, 0), with a short way for one
 * of plain ASCII (session 24: nearly every value; the others, escaped, not ASCII, or near
 * the body's end, are string's, which reads them again). */
static inline PyObject *value_string(Reader *r) {
    const unsigned char *start = r->at + 1;
    const unsigned char *at = start;
    while (r->end - at >= SCAN_BLOCK) {
        uint64_t stops = scan_stops(at, 1);
        if (stops == 0) {
            at += SCAN_BLOCK;
            continue;
        }
        at += first_stop(stops);
        if (*at != '"') {
            break;
        }
        Py_ssize_t length = at - start;
        r->at = at + 1;
        if (length == 0 || length > REPEAT_LONGEST) {
            return utf8_text(start, length, 1);
        }
        Fingerprint print = fingerprint(start, length, r->end);
        Repeat *slot = repeat_slot(r->repeats, &print);
        if (repeat_used(r->repeats, (size_t)(slot - r->repeats->slots)) && repeat_same(slot, &print, start)) {
            return Py_NewRef(slot->text);
        }
        PyObject *text = utf8_text(start, length, 1);
        if (text != NULL) {
            repeat_keep(r->repeats, slot, &print, start, text);
        }
        return text;
    }
    return string(r, 0);
}

/* The str of the raw bytes [start, stop) of a string (`ascii`: no byte of 0x80 and above;
 * `escaped`: a backslash among them), the interned name for a key that is one. */
static PyObject *new_string(Reader *r, const unsigned char *start, const unsigned char *stop, int key, int ascii,
                            int escaped) {
    Py_ssize_t length = stop - start;
    if (!escaped) {
        return utf8_text(start, length, ascii); /* (a key's name was looked for by string) */
    }
    unsigned char stack[STACK_BYTES];
    unsigned char *out = length <= STACK_BYTES ? stack : PyMem_Malloc((size_t)length);
    if (out == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *text = NULL;
    Py_ssize_t written = unescape(start, stop, out);
    if (written >= 0) {
        int plain = 1;
        for (Py_ssize_t i = 0; i < written && plain; i++) {
            plain = out[i] < 0x80;
        }
        PyObject *name = key && plain ? known_name(r->decoder, out, written, out + written) : NULL; /* "\u0074" is `t` too */
        text = name != NULL ? Py_NewRef(name) : utf8_text(out, written, plain);
    }
    if (out != stack) {
        PyMem_Free(out);
    }
    return text;
}

/* The value of the 8 bytes at `at` when they are all ASCII digits (the first the most
 * significant), else -1: SWAR, a few operations for the 8 (session 24: a timestamp `ts`
 * has 13 digits, ~14 instructions each one by one). Little-endian only (DIGITS8). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define DIGITS8 1
static inline long long eight_digits(const unsigned char *at) {
    uint64_t word;
    memcpy(&word, at, 8);
    /* each byte 0x30-0x39: its high nibble 3, and adding 6 does not carry it past 3 */
    if (((word & 0xF0F0F0F0F0F0F0F0ULL) | (((word + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) >> 4))
        != 0x3333333333333333ULL) {
        return -1;
    }
    word -= 0x3030303030303030ULL;
    word = (word * 10) + (word >> 8); /* pairs of digits */
    word = (((word & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32)))
            + (((word >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >> 32;
    return (long long)word;
}
#else
#define DIGITS8 0
static inline long long eight_digits(const unsigned char *at) {
    (void)at;
    return -1;
}
#endif

/* An integer (-?(0|[1-9][0-9]*), not followed by a fraction or exponent) of at most
 * LONG_DIGITS digits. */
static PyObject *integer(Reader *r) {
    const unsigned char *at = r->at;
    int negative = 0;
    if (*at == '-') {
        negative = 1;
        at++;
    }
    const unsigned char *digits = at;
    long long value = 0;
    /* 8 digits at a time while the number stays within LONG_DIGITS (so it cannot overflow;
     * the loop below refuses it past them, as it would have one digit at a time) */
    while (DIGITS8 && r->end - at >= 8 && at - digits <= LONG_DIGITS - 8) {
        long long eight = eight_digits(at);
        if (eight < 0) {
            break;
        }
        value = value * 100000000LL + eight;
        at += 8;
    }
    while (at < r->end && *at >= '0' && *at <= '9') {
        value = value * 10 + (*at - '0');
        at++;
        if (at - digits > LONG_DIGITS) {
            return NULL; /* past a long long's sure digits: orjson's int range is 64 bits, then floats */
        }
    }
    if (at == digits || (*digits == '0' && at - digits > 1)) {
        return NULL; /* no digit, or a leading zero */
    }
    if (at < r->end && (*at == '.' || *at == 'e' || *at == 'E')) {
        return NULL; /* a float */
    }
    r->at = at;
    return PyLong_FromLongLong(negative ? -value : value);
}

static PyObject *value(Reader *r);

/* After an item of an object or array: 1 at a ',' (stepped over, with the space after it),
 * 0 at `close` (stepped over), -1 at anything else or the body's end. */
static int next_item(Reader *r, unsigned char close) {
    skip_space(r);
    if (r->at >= r->end) {
        return -1;
    }
    if (*r->at == ',') {
        r->at++;
        skip_space(r);
        return 1;
    }
    if (*r->at != close) {
        return -1;
    }
    r->at++;
    return 0;
}

/* Put the held pairs into `dict` in order, dropping them; -1 when Python failed. A
 * duplicate key keeps its first place and takes the later value, as orjson's dict does. */
static int put_held(PyObject *dict, PyObject **keys, PyObject **values, Py_ssize_t *held) {
    int failed = 0;
    for (Py_ssize_t i = 0; i < *held; i++) {
        if (!failed && PyDict_SetItem(dict, keys[i], values[i]) < 0) {
            failed = 1;
        }
        Py_DECREF(keys[i]);
        Py_DECREF(values[i]);
    }
    *held = 0;
    return failed ? -1 : 0;
}

/* The object whose '{' r->at is on. Its first PAIRS pairs are held until the dict can be
 * made at their number (no resize as an event's ~12 fields go in: a dict made empty grew
 * twice, ~600 instructions an event); past PAIRS the dict is made, the held pairs put in,
 * and the rest go straight in. orjson makes its dicts presized too (_PyDict_NewPresized:
 * in 3.11 a dict of general keys, which the code after it has always looked up in). */
static PyObject *object(Reader *r) {
    PyObject *keys[PAIRS], *values[PAIRS];
    Py_ssize_t held = 0;
    PyObject *dict = NULL;
    r->at++;
    skip_space(r);
    if (r->at < r->end && *r->at == '}') {
        r->at++;
        return PyDict_New();
    }
    for (;;) {
        if (r->at >= r->end || *r->at != '"') {
            goto fail;
        }
        PyObject *key = object_key(r);
        if (key == NULL) {
            goto fail;
        }
        skip_space(r);
        if (r->at >= r->end || *r->at != ':') {
            Py_DECREF(key);
            goto fail;
        }
        r->at++;
        skip_space(r);
        PyObject *item = value(r);
        if (item == NULL) {
            Py_DECREF(key);
            goto fail;
        }
        if (dict == NULL && held == PAIRS) {
            dict = _PyDict_NewPresized(2 * PAIRS);
            if (dict == NULL || put_held(dict, keys, values, &held) < 0) {
                Py_DECREF(key);
                Py_DECREF(item);
                goto fail;
            }
        }
        if (dict == NULL) {
            keys[held] = key;
            values[held] = item;
            held++;
        } else {
            int failed = PyDict_SetItem(dict, key, item);
            Py_DECREF(key);
            Py_DECREF(item);
            if (failed < 0) {
                goto fail;
            }
        }
        int more = next_item(r, '}');
        if (more < 0) {
            goto fail;
        }
        if (!more) {
            break;
        }
    }
    if (dict == NULL) {
        dict = _PyDict_NewPresized(held);
        if (dict == NULL || put_held(dict, keys, values, &held) < 0) {
            goto fail;
        }
    }
    return dict;
fail:
    for (Py_ssize_t i = 0; i < held; i++) {
        Py_DECREF(keys[i]);
        Py_DECREF(values[i]);
    }
    Py_XDECREF(dict);
    return NULL;
}

/* The array whose '[' r->at is on. */
static PyObject *array(Reader *r) {
    r->at++;
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    skip_space(r);
    if (r->at < r->end && *r->at == ']') {
        r->at++;
        return list;
    }
    for (;;) {
        PyObject *item = value(r);
        if (item == NULL) {
            goto fail;
        }
        int failed = PyList_Append(list, item);
        Py_DECREF(item);
        if (failed < 0) {
            goto fail;
        }
        int more = next_item(r, ']');
        if (more < 0) {
            goto fail;
        }
        if (!more) {
            return list;
        }
    }
fail:
    Py_DECREF(list);
    return NULL;
}

/* `word` at r->at (the rest of a literal after its first letter was seen). */
static PyObject *literal(Reader *r, const char *word, size_t length, PyObject *answer) {
    if ((size_t)(r->end - r->at) < length || memcmp(r->at, word, length) != 0) {
        return NULL;
    }
    r->at += length;
    return Py_NewRef(answer);
}

/* The value at r->at (whitespace before it skipped already). New reference, or NULL:
 * with an exception only when Python failed, else no answer. */
static PyObject *value(Reader *r) {
    if (r->at >= r->end) {
        return NULL;
    }
    PyObject *found;
    switch (*r->at) {
    case '"':
        return value_string(r);
    case '{':
    case '[':
        if (r->depth >= MAX_DEPTH) {
            return NULL;
        }
        r->depth++;
        found = *r->at == '{' ? object(r) : array(r);
        r->depth--;
        return found;
    case 't':
        return literal(r, "true", 4, Py_True);
    case 'f':
        return literal(r, "false", 5, Py_False);
    case 'n':
        return literal(r, "null", 4, Py_None);
    default:
        if (*r->at == '-' || (*r->at >= '0' && *r->at <= '9')) {
            return integer(r);
        }
        return NULL;
    }
}

static PyObject *Decoder_decode(Decoder *self, PyObject *body) {
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Decoder is not initialised");
        return NULL;
    }
    if (!PyBytes_CheckExact(body)) {
        Py_RETURN_NONE;
    }
    Repeats repeats; /* only `used` is cleared: a slot is read only when its bit is set */
    memset(repeats.used, 0, sizeof(repeats.used));
    Reader r = {(const unsigned char *)PyBytes_AS_STRING(body),
                (const unsigned char *)PyBytes_AS_STRING(body) + PyBytes_GET_SIZE(body), self, &repeats, 0};
    skip_space(&r);
    if (r.at >= r.end || (*r.at != '[' && *r.at != '{')) {
        Py_RETURN_NONE; /* a scalar document (or none): orjson answers */
    }
    PyObject *found = value(&r);
    repeats_clear(&repeats);
    if (found == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    skip_space(&r);
    if (r.at != r.end) {
        Py_DECREF(found);
        Py_RETURN_NONE; /* something after the document */
    }
    return found;
}

static PyMethodDef Decoder_methods[] = {
    {"decode", (PyCFunction)Decoder_decode, METH_O,
     "decode(body) -> what orjson.loads(body) gives, the Decoder's names as their interned str; or None"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "collector.hit._batch_json.Decoder",
    .tp_basicsize = sizeof(Decoder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Decoder(names): a POST body's JSON, the names' keys as their interned str",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Decoder_init,
    .tp_dealloc = (destructor)Decoder_dealloc,
    .tp_methods = Decoder_methods,
};

static struct PyModuleDef batch_json_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "collector.hit._batch_json",
    .m_doc = "A POST body's JSON decoded in C (hit/protocol.py parse_body).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__batch_json(void) {
    if (PyType_Ready(&DecoderType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&batch_json_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Decoder", (PyObject *)&DecoderType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
