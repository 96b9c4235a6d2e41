/* Bounds pre-scan of msgpack bytes before msgpack-c decodes them.
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

int fsm__mp_decode(const void *p, size_t len, msgpack_unpacked *u)
{
    size_t off = 0;

    if (fsm__mp_check(p, len, FSM_MAX_DEPTH) != 0) {
        return YH_EPROTO;
    }
    if (msgpack_unpack_next(u, p, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != len) {
        return YH_EPROTO;
    }
    return 0;
}

int fsm__mp_decode_entry(const void *p,
                         size_t len,
                         msgpack_unpacked *u,
                         size_t *obj_len)
{
    struct scan s = {p, len, 0};
    const uint8_t *b = p;
    size_t off = 0;

    *obj_len = 0;
    if (p == NULL || len == 0 || scan_obj(&s, FSM_MAX_DEPTH) != 0) {
        return YH_EPROTO;
    }
    /* what follows the object may only be the cluster's zero padding */
    if (len - s.off > 7) {
        return YH_EPROTO;
    }
    for (size_t i = s.off; i < len; i++) {
        if (b[i] != 0) {
            return YH_EPROTO;
        }
    }
    if (msgpack_unpack_next(u, p, s.off, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != s.off) {
        return YH_EPROTO;
    }
    *obj_len = s.off;
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
