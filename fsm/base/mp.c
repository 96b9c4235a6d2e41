#include "mp.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"

const msgpack_object *yh_mp_get(const msgpack_object *map, const char *key)
{
    size_t klen = strlen(key);

    if (map == NULL || map->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            memcmp(k->via.str.ptr, key, klen) == 0) {
            return &map->via.map.ptr[i].val;
        }
    }
    return NULL;
}

int yh_has_ctl(const void *p, size_t n)
{
    const unsigned char *b = p;
    const uint64_t ones = 0x0101010101010101u;
    const uint64_t high = 0x8080808080808080u;
    size_t i = 0;

    /* Per word: a byte below 0x20 (x - 0x20.. borrows into a clear high
     * bit), or equal to 0x7f (x ^ 0x7f.. has a zero byte). Both tests are
     * exact as "any byte" answers. */
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, b + i, 8);
        y = x ^ (0x7f * ones);
        if ((((x - 0x20 * ones) & ~x) | ((y - ones) & ~y)) & high) {
            return 1;
        }
    }
    for (; i < n; i++) {
        if (b[i] < 0x20 || b[i] == 0x7f) {
            return 1;
        }
    }
    return 0;
}

int yh_mp_eq(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);

    if (o->type == MSGPACK_OBJECT_STR) {
        return o->via.str.size == n && memcmp(o->via.str.ptr, s, n) == 0;
    }
    if (o->type == MSGPACK_OBJECT_BIN) {
        return o->via.bin.size == n && memcmp(o->via.bin.ptr, s, n) == 0;
    }
    return 0;
}

int yh_mp_str(const msgpack_object *map,
              const char *key,
              const char **p,
              size_t *len,
              char *scratch)
{
    const msgpack_object *v = yh_mp_get(map, key);
    int n;

    if (v == NULL || v->type == MSGPACK_OBJECT_NIL) {
        return YH_EMISSING;
    }
    switch (v->type) {
    case MSGPACK_OBJECT_STR:
        *p = v->via.str.ptr;
        *len = v->via.str.size;
        return 0;
    case MSGPACK_OBJECT_BIN:
        *p = v->via.bin.ptr;
        *len = v->via.bin.size;
        return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        n = snprintf(scratch, 24, "%" PRIu64, v->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        n = snprintf(scratch, 24, "%" PRId64, v->via.i64);
        break;
    default:
        return YH_EINVAL;
    }
    *p = scratch;
    *len = (size_t)n;
    return 0;
}

int yh_mp_strcpy(const msgpack_object *map,
                 const char *key,
                 char *out,
                 size_t size)
{
    char scratch[24];
    const char *p;
    size_t len;
    int rc = yh_mp_str(map, key, &p, &len, scratch);

    if (rc != 0) {
        return rc;
    }
    if (len >= size || memchr(p, '\0', len) != NULL) {
        return YH_EINVAL;
    }
    memcpy(out, p, len);
    out[len] = '\0';
    return 0;
}

int yh_mp_int(const msgpack_object *map, const char *key, int64_t *out)
{
    const msgpack_object *v = yh_mp_get(map, key);
    char tmp[32];
    char *end;
    long long x;

    if (v == NULL || v->type == MSGPACK_OBJECT_NIL) {
        return YH_EMISSING;
    }
    switch (v->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (v->via.u64 > INT64_MAX) {
            return YH_EINVAL;
        }
        *out = (int64_t)v->via.u64;
        return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = v->via.i64;
        return 0;
    case MSGPACK_OBJECT_STR:
        if (v->via.str.size == 0 || v->via.str.size >= sizeof tmp) {
            return YH_EINVAL;
        }
        memcpy(tmp, v->via.str.ptr, v->via.str.size);
        tmp[v->via.str.size] = '\0';
        errno = 0;
        x = strtoll(tmp, &end, 10);
        if (errno != 0 || *end != '\0') {
            return YH_EINVAL;
        }
        *out = x;
        return 0;
    default:
        return YH_EINVAL;
    }
}

/* The header msgpack_pack_str writes for @n < 256 (fixstr or str8) and
 * the bytes, appended at @out; returns the bytes written. */
static size_t put_short_str(char *out, const char *s, size_t n)
{
    size_t h = 0;

    if (n < 32) {
        out[h++] = (char)(0xa0 | n);
    } else {
        out[h++] = (char)0xd9;
        out[h++] = (char)n;
    }
    memcpy(out + h, s, n);
    return h + n;
}

/* Short strings (nearly all: names, IDs, messages) go to the packer's
 * writer in one call with their header, not two: the same bytes as
 * msgpack_pack_str + msgpack_pack_str_body. */
void yh_mp_pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
    char b[2 + 255];

    if (n < 256) {
        pk->callback(pk->data, b, put_short_str(b, s, n));
        return;
    }
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void yh_mp_pack_str(msgpack_packer *pk, const char *s)
{
    yh_mp_pack_strn(pk, s, strlen(s));
}

void yh_mp_pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    size_t kn = strlen(k);
    size_t vn = strlen(v);
    char b[2 * (2 + 255)];

    if (kn < 256 && vn < 256) {
        size_t n = put_short_str(b, k, kn);
        n += put_short_str(b + n, v, vn);
        pk->callback(pk->data, b, n);
        return;
    }
    yh_mp_pack_strn(pk, k, kn);
    yh_mp_pack_strn(pk, v, vn);
}

void yh_mp_pack_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
    yh_mp_pack_str(pk, k);
    msgpack_pack_int64(pk, v);
}

struct kv_enc
{
    struct yh_buf key; /* canonical encoding of the key */
    const msgpack_object *val;
};

static int kv_cmp(const void *a, const void *b)
{
    const struct kv_enc *x = a;
    const struct kv_enc *y = b;
    size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
    int c = memcmp(x->key.data, y->key.data, n);

    if (c != 0) {
        return c;
    }
    return x->key.len < y->key.len ? -1 : x->key.len > y->key.len;
}

void yh_mp_pack_canonical(msgpack_packer *pk, const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        msgpack_pack_array(pk, o->via.array.size);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            yh_mp_pack_canonical(pk, &o->via.array.ptr[i]);
        }
        return;
    }
    if (o->type != MSGPACK_OBJECT_MAP) {
        msgpack_pack_object(pk, *o);
        return;
    }
    uint32_t n = o->via.map.size;
    struct kv_enc *kv = calloc(n ? n : 1, sizeof *kv);
    if (kv == NULL) {
        /* Out of memory: fall back to the original order. The digest then
         * differs from the canonical one, which only weakens token reuse
         * detection for this one request. */
        msgpack_pack_object(pk, *o);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        msgpack_packer kp;
        yh_buf_init(&kv[i].key);
        msgpack_packer_init(&kp, &kv[i].key, yh_buf_msgpack_write);
        yh_mp_pack_canonical(&kp, &o->via.map.ptr[i].key);
        kv[i].val = &o->via.map.ptr[i].val;
    }
    qsort(kv, n, sizeof *kv, kv_cmp);
    msgpack_pack_map(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        pk->callback(pk->data, (const char *)kv[i].key.data, kv[i].key.len);
        yh_mp_pack_canonical(pk, kv[i].val);
        yh_buf_release(&kv[i].key);
    }
    free(kv);
}
