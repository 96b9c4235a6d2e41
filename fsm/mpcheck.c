/* Bounds pre-scan of msgpack bytes before msgpack-c decodes them, and a
 * decoder that checks the same bounds as it goes (fsm__mp_decode).
 *
 * msgpack-c 4.0 allocates count x 24 bytes for a declared array/map before
 * reading its elements, so a 5-byte input can ask for ~96 GiB. Log entries
 * and snapshots are only as trustworthy as the disk and the leader, so every
 * stored or replicated msgpack object is walked here first: each declared
 * count and length must fit in the bytes that follow, nesting is bounded,
 * 0xc1 is rejected and the object must span the input exactly. */
#include <string.h>

#include "fsm/fsm_int.h"

struct scan
{
    const uint8_t *p; /* input */
    size_t len;       /* input size */
    size_t off;       /* next byte */
};

static int need(struct scan *s, size_t n)
{
    return n <= s->len - s->off ? 0 : YH_EPROTO;
}

static uint64_t be_n(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Read an @n-byte big-endian length at the cursor. */
static int length(struct scan *s, unsigned n, uint64_t *out)
{
    if (need(s, n) != 0) {
        return YH_EPROTO;
    }
    *out = be_n(s->p + s->off, n);
    s->off += n;
    return 0;
}

static int scan_obj(struct scan *s, unsigned depth)
{
    uint64_t items = 0; /* nested objects that follow */
    uint64_t raw = 0;   /* raw bytes that follow */
    uint8_t b;

    if (need(s, 1) != 0) {
        return YH_EPROTO;
    }
    b = s->p[s->off++];
    if (b <= 0x7f || b >= 0xe0) {
        return 0;
    }
    if ((b & 0xe0) == 0xa0) {
        raw = b & 0x1f;
    } else if ((b & 0xf0) == 0x90) {
        items = b & 0x0f;
    } else if ((b & 0xf0) == 0x80) {
        items = 2u * (b & 0x0f);
    } else {
        switch (b) {
        case 0xc0:
        case 0xc2:
        case 0xc3:
            return 0;
        case 0xc4:
        case 0xd9:
            if (length(s, 1, &raw) != 0) {
                return YH_EPROTO;
            }
            break;
        case 0xc5:
        case 0xda:
            if (length(s, 2, &raw) != 0) {
                return YH_EPROTO;
            }
            break;
        case 0xc6:
        case 0xdb:
            if (length(s, 4, &raw) != 0) {
                return YH_EPROTO;
            }
            break;
        case 0xc7:
            if (length(s, 1, &raw) != 0) {
                return YH_EPROTO;
            }
            raw += 1; /* ext type byte */
            break;
        case 0xc8:
            if (length(s, 2, &raw) != 0) {
                return YH_EPROTO;
            }
            raw += 1;
            break;
        case 0xc9:
            if (length(s, 4, &raw) != 0) {
                return YH_EPROTO;
            }
            raw += 1;
            break;
        case 0xcc:
        case 0xd0:
            raw = 1;
            break;
        case 0xcd:
        case 0xd1:
            raw = 2;
            break;
        case 0xca:
        case 0xce:
        case 0xd2:
            raw = 4;
            break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
            raw = 8;
            break;
        case 0xd4:
            raw = 2;
            break;
        case 0xd5:
            raw = 3;
            break;
        case 0xd6:
            raw = 5;
            break;
        case 0xd7:
            raw = 9;
            break;
        case 0xd8:
            raw = 17;
            break;
        case 0xdc:
            if (length(s, 2, &items) != 0) {
                return YH_EPROTO;
            }
            break;
        case 0xdd:
            if (length(s, 4, &items) != 0) {
                return YH_EPROTO;
            }
            break;
        case 0xde:
            if (length(s, 2, &items) != 0) {
                return YH_EPROTO;
            }
            items *= 2;
            break;
        case 0xdf:
            if (length(s, 4, &items) != 0) {
                return YH_EPROTO;
            }
            items *= 2;
            break;
        default: /* 0xc1, never used */
            return YH_EPROTO;
        }
    }
    if (raw != 0) {
        if (need(s, raw) != 0) {
            return YH_EPROTO;
        }
        s->off += raw;
        return 0;
    }
    if (items == 0) {
        return 0;
    }
    /* Every element takes at least one byte. */
    if (depth == 0 || need(s, items) != 0) {
        return YH_EPROTO;
    }
    for (uint64_t i = 0; i < items; i++) {
        if (scan_obj(s, depth - 1) != 0) {
            return YH_EPROTO;
        }
    }
    return 0;
}

int fsm__mp_check(const void *p, size_t len, unsigned max_depth)
{
    struct scan s = {p, len, 0};

    if (p == NULL || len == 0) {
        return YH_EPROTO;
    }
    if (scan_obj(&s, max_depth) != 0 || s.off != len) {
        return YH_EPROTO;
    }
    return 0;
}

/* ---- one-pass decoding ----
 *
 * The same acceptance as fsm__mp_check followed by msgpack_unpack_next,
 * and the same objects as msgpack-c 4.0 builds (strings, binaries and
 * extensions point into the input; arrays and maps live in a zone created
 * on the first container; a non-negative signed integer is
 * POSITIVE_INTEGER; float 32 is FLOAT32), in one walk instead of a scan
 * and then msgpack-c's generic state machine. A container's count is
 * checked against the bytes left (every element takes at least one)
 * before anything is allocated for it, as the scan did. */

struct dec
{
    const uint8_t *p;    /* input */
    size_t len;          /* input size */
    size_t off;          /* next byte */
    msgpack_unpacked *u; /* zone owner */
    size_t chunk;        /* zone chunk size */
};

static void *dec_alloc(struct dec *d, size_t size)
{
    if (d->u->zone == NULL) {
        d->u->zone = msgpack_zone_new(d->chunk);
        if (d->u->zone == NULL) {
            return NULL;
        }
    }
    return msgpack_zone_malloc(d->u->zone, size);
}

static int dec_obj(struct dec *d, msgpack_object *o, unsigned depth)
{
    uint64_t n = 0;
    uint8_t b;

    if (d->off >= d->len) {
        return YH_EPROTO;
    }
    b = d->p[d->off++];
    if (b <= 0x7f) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = b;
        return 0;
    }
    if (b >= 0xe0) {
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = (int8_t)b;
        return 0;
    }
    if ((b & 0xe0) == 0xa0) {
        n = b & 0x1f;
        goto str;
    }
    if ((b & 0xf0) == 0x90) {
        n = b & 0x0f;
        goto array;
    }
    if ((b & 0xf0) == 0x80) {
        n = b & 0x0f;
        goto map;
    }
    switch (b) {
    case 0xc0:
        o->type = MSGPACK_OBJECT_NIL;
        return 0;
    case 0xc2:
    case 0xc3:
        o->type = MSGPACK_OBJECT_BOOLEAN;
        o->via.boolean = b == 0xc3;
        return 0;
    case 0xc4:
    case 0xc5:
    case 0xc6: {
        struct scan s = {d->p, d->len, d->off};
        if (length(&s, 1u << (b - 0xc4), &n) != 0 || need(&s, n) != 0) {
            return YH_EPROTO;
        }
        o->type = MSGPACK_OBJECT_BIN;
        o->via.bin.ptr = (const char *)d->p + s.off;
        o->via.bin.size = (uint32_t)n;
        d->off = s.off + n;
        return 0;
    }
    case 0xc7:
    case 0xc8:
    case 0xc9: {
        struct scan s = {d->p, d->len, d->off};
        if (length(&s, 1u << (b - 0xc7), &n) != 0 || need(&s, n + 1) != 0) {
            return YH_EPROTO;
        }
        o->type = MSGPACK_OBJECT_EXT;
        o->via.ext.type = (int8_t)d->p[s.off];
        o->via.ext.ptr = (const char *)d->p + s.off + 1;
        o->via.ext.size = (uint32_t)n;
        d->off = s.off + 1 + n;
        return 0;
    }
    case 0xca: {
        uint32_t bits;
        float f;
        if (d->len - d->off < 4) {
            return YH_EPROTO;
        }
        bits = (uint32_t)be_n(d->p + d->off, 4);
        memcpy(&f, &bits, 4);
        d->off += 4;
        o->type = MSGPACK_OBJECT_FLOAT32;
        o->via.f64 = f;
        return 0;
    }
    case 0xcb: {
        uint64_t bits;
        if (d->len - d->off < 8) {
            return YH_EPROTO;
        }
        bits = be_n(d->p + d->off, 8);
        d->off += 8;
        o->type = MSGPACK_OBJECT_FLOAT64;
        memcpy(&o->via.f64, &bits, 8);
        return 0;
    }
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf: {
        unsigned w = 1u << (b - 0xcc);
        if (d->len - d->off < w) {
            return YH_EPROTO;
        }
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = be_n(d->p + d->off, w);
        d->off += w;
        return 0;
    }
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        unsigned w = 1u << (b - 0xd0);
        uint64_t v;
        int64_t x;
        if (d->len - d->off < w) {
            return YH_EPROTO;
        }
        v = be_n(d->p + d->off, w);
        d->off += w;
        /* sign-extend the w-byte value */
        if (w < 8 && (v >> (8 * w - 1)) != 0) {
            v |= ~(uint64_t)0 << (8 * w);
        }
        x = (int64_t)v;
        if (x < 0) {
            o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
            o->via.i64 = x;
        } else {
            o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            o->via.u64 = (uint64_t)x;
        }
        return 0;
    }
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        n = 1u << (b - 0xd4);
        if (d->len - d->off < n + 1) {
            return YH_EPROTO;
        }
        o->type = MSGPACK_OBJECT_EXT;
        o->via.ext.type = (int8_t)d->p[d->off];
        o->via.ext.ptr = (const char *)d->p + d->off + 1;
        o->via.ext.size = (uint32_t)n;
        d->off += 1 + n;
        return 0;
    case 0xd9:
    case 0xda:
    case 0xdb: {
        struct scan s = {d->p, d->len, d->off};
        if (length(&s, 1u << (b - 0xd9), &n) != 0) {
            return YH_EPROTO;
        }
        d->off = s.off;
        goto str;
    }
    case 0xdc:
    case 0xdd: {
        struct scan s = {d->p, d->len, d->off};
        if (length(&s, b == 0xdc ? 2 : 4, &n) != 0) {
            return YH_EPROTO;
        }
        d->off = s.off;
        goto array;
    }
    case 0xde:
    case 0xdf: {
        struct scan s = {d->p, d->len, d->off};
        if (length(&s, b == 0xde ? 2 : 4, &n) != 0) {
            return YH_EPROTO;
        }
        d->off = s.off;
        goto map;
    }
    default: /* 0xc1, never used */
        return YH_EPROTO;
    }

str:
    if (n > d->len - d->off) {
        return YH_EPROTO;
    }
    o->type = MSGPACK_OBJECT_STR;
    o->via.str.ptr = (const char *)d->p + d->off;
    o->via.str.size = (uint32_t)n;
    d->off += n;
    return 0;

array:
    /* Every element takes at least one byte. */
    if (n > 0 && (depth == 0 || n > d->len - d->off)) {
        return YH_EPROTO;
    }
    o->type = MSGPACK_OBJECT_ARRAY;
    o->via.array.size = (uint32_t)n;
    o->via.array.ptr = dec_alloc(d, n * sizeof(msgpack_object));
    if (o->via.array.ptr == NULL) {
        return YH_EPROTO;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (dec_obj(d, &o->via.array.ptr[i], depth - 1) != 0) {
            return YH_EPROTO;
        }
    }
    return 0;

map:
    if (n > 0 && (depth == 0 || n > (d->len - d->off) / 2)) {
        return YH_EPROTO;
    }
    o->type = MSGPACK_OBJECT_MAP;
    o->via.map.size = (uint32_t)n;
    o->via.map.ptr = dec_alloc(d, n * sizeof(msgpack_object_kv));
    if (o->via.map.ptr == NULL) {
        return YH_EPROTO;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (dec_obj(d, &o->via.map.ptr[i].key, depth - 1) != 0 ||
            dec_obj(d, &o->via.map.ptr[i].val, depth - 1) != 0) {
            return YH_EPROTO;
        }
    }
    return 0;
}

/* Decode the one object at the start of @p into @u; *end gets where it
 * ends. */
static int dec_root(const void *p, size_t len, msgpack_unpacked *u, size_t *end)
{
    /* Records and entries are a few hundred bytes: a small first chunk
     * (msgpack-c's is 8 KiB); the zone grows if a document needs more. */
    struct dec d = {p, len, 0, u, len < 1024 ? 2048 : MSGPACK_ZONE_CHUNK_SIZE};

    if (u->zone != NULL) {
        msgpack_zone_free(u->zone);
        u->zone = NULL;
    }
    if (p == NULL || len == 0 || dec_obj(&d, &u->data, FSM_MAX_DEPTH) != 0) {
        return YH_EPROTO;
    }
    *end = d.off;
    return 0;
}

int fsm__mp_decode(const void *p, size_t len, msgpack_unpacked *u)
{
    size_t end = 0;

    if (dec_root(p, len, u, &end) != 0 || end != len) {
        return YH_EPROTO;
    }
    return 0;
}

int fsm__mp_decode_entry(const void *p,
                         size_t len,
                         msgpack_unpacked *u,
                         size_t *obj_len)
{
    const uint8_t *b = p;
    size_t end = 0;

    *obj_len = 0;
    if (dec_root(p, len, u, &end) != 0) {
        return YH_EPROTO;
    }
    /* what follows the object may only be the cluster's zero padding */
    if (len - end > 7) {
        return YH_EPROTO;
    }
    for (size_t i = end; i < len; i++) {
        if (b[i] != 0) {
            return YH_EPROTO;
        }
    }
    *obj_len = end;
    return 0;
}

static int out_write(void *data, const char *p, size_t n)
{
    struct fsm_out *o = data;

    if (yh_buf_append(o->buf, p, n) != 0) {
        o->oom = 1;
        return -1;
    }
    return 0;
}

void fsm__out_init(struct fsm_out *o, struct yh_buf *buf)
{
    o->buf = buf;
    o->oom = 0;
    msgpack_packer_init(&o->pk, o, out_write);
}
