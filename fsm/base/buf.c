#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void yh_buf_init(struct yh_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void yh_buf_release(struct yh_buf *b)
{
    free(b->data);
    yh_buf_init(b);
}

void yh_buf_reset(struct yh_buf *b)
{
    b->len = 0;
}

int yh_buf_reserve(struct yh_buf *b, size_t extra)
{
    size_t need = b->len + extra;
    size_t cap;
    uint8_t *p;

    if (need < b->len) {
        return YH_ENOMEM;
    }
    if (need <= b->cap) {
        return 0;
    }
    /* Results and envelopes are a few hundred bytes: start there rather
     * than realloc'ing up from a handful. */
    cap = b->cap ? b->cap : 512;
    while (cap < need) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        return YH_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int yh_buf_append_slow(struct yh_buf *b, const void *p, size_t n)
{
    int rc;

    if (n == 0) {
        return 0;
    }
    rc = yh_buf_reserve(b, n);
    if (rc != 0) {
        return rc;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int yh_buf_printf(struct yh_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    int rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return YH_EINTERNAL;
    }
    rc = yh_buf_reserve(b, (size_t)n + 1);
    if (rc != 0) {
        return rc;
    }
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

uint8_t *yh_buf_steal(struct yh_buf *b, size_t *len)
{
    uint8_t *p = b->data;

    if (len != NULL) {
        *len = b->len;
    }
    yh_buf_init(b);
    return p;
}

int yh_buf_msgpack_write(void *data, const char *p, size_t n)
{
    return yh_buf_append(data, p, n) == 0 ? 0 : -1;
}

void yh_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Hex digit values plus one, 0 for anything else: a table, not branches
 * (the digits of a signature are random, so '0'-'9' against 'a'-'f'
 * mispredicts half the time; two signatures are decoded per request). */
static const uint8_t hex_val1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,
    ['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12,
    ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16, ['A'] = 11, ['B'] = 12,
    ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

int yh_unhex(const char *hex, size_t n, uint8_t *out)
{
    unsigned bad = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned hi = hex_val1[(unsigned char)hex[2 * i]];
        unsigned lo = hex_val1[(unsigned char)hex[2 * i + 1]];
        bad |= (hi == 0) | (lo == 0);
        out[i] = (uint8_t)((hi - 1) << 4 | ((lo - 1) & 15));
    }
    return bad ? YH_EINVAL : 0;
}
