/* Allocation-free msgpack pre-scan (see prescan.h for why it exists).
 *
 * The walk keeps, per open container, how many objects it still expects,
 * plus the total of objects still expected at every level (@pending). Each
 * of those objects needs at least one byte, so a message is impossible as
 * soon as the bytes a head declares plus @pending exceed what is left of the
 * size limit. Checking that at every head bounds the whole message by
 * @max_size before any of its body has arrived, which is what makes a
 * truncated "db 7f ff ff ff" an immediate error instead of a wait. */
#include "prescan.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "../../fsm/base/err.h"
#include "prescan_int.h"

static int fail(int rc, char *errmsg, size_t errmsg_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(int rc, char *errmsg, size_t errmsg_size, const char *fmt, ...)
{
    va_list ap;

    if (errmsg != NULL && errmsg_size > 0) {
        va_start(ap, fmt);
        vsnprintf(errmsg, errmsg_size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Big-endian unsigned integer of @n bytes (1, 2, 4 or 8). */
static uint64_t be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Head layout by type byte: kind, head size and how many length bytes
 * follow the type byte (0 when the length is in the type byte or fixed). */
static void head_layout(uint8_t b, struct api__mp_head *h, size_t *len_bytes)
{
    h->type = b;
    h->n = 0;
    *len_bytes = 0;
    h->head_size = 1;
    h->kind = API__MP_SCALAR;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        return; /* fixint, nil, bool */
    }
    if (b <= 0x8f) {
        h->kind = API__MP_MAP;
        h->n = b & 0x0f;
        return;
    }
    if (b <= 0x9f) {
        h->kind = API__MP_ARRAY;
        h->n = b & 0x0f;
        return;
    }
    if (b <= 0xbf) {
        h->kind = API__MP_BYTES;
        h->n = b & 0x1f;
        return;
    }
    switch (b) {
    case 0xc4: /* bin 8/16/32 */
    case 0xc5:
    case 0xc6:
        h->kind = API__MP_BYTES;
        *len_bytes = (size_t)1 << (b - 0xc4);
        h->head_size = 1 + *len_bytes;
        return;
    case 0xc7: /* ext 8/16/32: length, then a one-byte ext type */
    case 0xc8:
    case 0xc9:
        h->kind = API__MP_BYTES;
        *len_bytes = (size_t)1 << (b - 0xc7);
        h->head_size = 2 + *len_bytes;
        return;
    case 0xca: /* float 32/64 */
        h->head_size = 5;
        return;
    case 0xcb:
        h->head_size = 9;
        return;
    case 0xcc: /* uint 8..64 */
    case 0xcd:
    case 0xce:
    case 0xcf:
        h->head_size = 1 + ((size_t)1 << (b - 0xcc));
        return;
    case 0xd0: /* int 8..64 */
    case 0xd1:
    case 0xd2:
    case 0xd3:
        h->head_size = 1 + ((size_t)1 << (b - 0xd0));
        return;
    case 0xd4: /* fixext 1/2/4/8/16: ext type byte, then the data */
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        h->kind = API__MP_BYTES;
        h->n = (uint64_t)1 << (b - 0xd4);
        h->head_size = 2;
        return;
    case 0xd9: /* str 8/16/32 */
    case 0xda:
    case 0xdb:
        h->kind = API__MP_BYTES;
        *len_bytes = (size_t)1 << (b - 0xd9);
        h->head_size = 1 + *len_bytes;
        return;
    case 0xdc: /* array 16/32 */
    case 0xdd:
        h->kind = API__MP_ARRAY;
        *len_bytes = (size_t)2 << (b - 0xdc);
        h->head_size = 1 + *len_bytes;
        return;
    case 0xde: /* map 16/32 */
    case 0xdf:
        h->kind = API__MP_MAP;
        *len_bytes = (size_t)2 << (b - 0xde);
        h->head_size = 1 + *len_bytes;
        return;
    default: /* 0xc1, handled by the caller */
        return;
    }
}

int api__mp_head(const uint8_t *p, size_t len, struct api__mp_head *h)
{
    size_t len_bytes;

    if (len == 0) {
        h->head_size = 1;
        return YH_EAGAIN;
    }
    if (p[0] == 0xc1) {
        return YH_EPROTO;
    }
    head_layout(p[0], h, &len_bytes);
    if (len < h->head_size) {
        return YH_EAGAIN;
    }
    if (len_bytes > 0) {
        h->n = be(p + 1, len_bytes);
    }
    return 0;
}

static const char *kind_name(uint8_t b)
{
    if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb)) {
        return "str";
    }
    if (b >= 0xc4 && b <= 0xc6) {
        return "bin";
    }
    return "ext";
}

int api__prescan_need(const uint8_t *buf,
                      size_t len,
                      size_t max_size,
                      unsigned max_depth,
                      size_t *msg_len,
                      size_t *min_len,
                      char *errmsg,
                      size_t errmsg_size)
{
    /* left[d]: objects still expected in the container open at level d;
     * left[0] is the message itself. */
    uint64_t left[API__PRESCAN_DEPTH_CAP + 1];
    unsigned depth = 0;
    uint64_t pending = 1; /* sum of left[0..depth] */
    size_t off = 0;
    struct api__mp_head h;
    uint64_t room; /* bytes the head's own object may still use */
    uint64_t need;
    int rc;

    if (max_depth > API__PRESCAN_DEPTH_CAP) {
        max_depth = API__PRESCAN_DEPTH_CAP;
    }
    if (max_size == 0) {
        return fail(YH_ETOOBIG, errmsg, errmsg_size,
                    "message size limit is 0 bytes");
    }
    left[0] = 1;
    while (pending > 0) {
        /* Invariant: pending <= max_size - off, so off < max_size. */
        rc = api__mp_head(buf + off, len - off, &h);
        if (rc == YH_EPROTO) {
            return fail(YH_EPROTO, errmsg, errmsg_size,
                        "invalid type byte 0xc1 at offset %zu", off);
        }
        pending--;
        room = (uint64_t)(max_size - off) - pending;
        if (rc == YH_EAGAIN) {
            if (h.head_size > room) {
                return fail(YH_ETOOBIG, errmsg, errmsg_size,
                            "message larger than the %zu-byte limit", max_size);
            }
            if (min_len != NULL) {
                *min_len = off + h.head_size + (size_t)pending;
            }
            return YH_EAGAIN;
        }
        switch (h.kind) {
        case API__MP_SCALAR:
            need = h.head_size;
            break;
        case API__MP_BYTES:
            need = h.head_size + h.n;
            break;
        case API__MP_ARRAY:
            need = h.head_size + h.n;
            break;
        default:
            need = h.head_size + 2 * h.n;
            break;
        }
        if (need > room) {
            if (h.kind == API__MP_ARRAY || h.kind == API__MP_MAP) {
                return fail(YH_EPROTO, errmsg, errmsg_size,
                            "%s at offset %zu declares %" PRIu64
                            " %s, more than the %zu-byte limit can hold",
                            h.kind == API__MP_ARRAY ? "array" : "map", off, h.n,
                            h.kind == API__MP_ARRAY ? "elements" : "pairs",
                            max_size);
            }
            if (h.kind == API__MP_BYTES) {
                return fail(YH_ETOOBIG, errmsg, errmsg_size,
                            "%s of %" PRIu64
                            " bytes at offset %zu exceeds the %zu-byte "
                            "message limit",
                            kind_name(h.type), h.n, off, max_size);
            }
            return fail(YH_ETOOBIG, errmsg, errmsg_size,
                        "message larger than the %zu-byte limit", max_size);
        }
        left[depth]--;
        if (h.kind == API__MP_ARRAY || h.kind == API__MP_MAP) {
            if (depth + 1 > max_depth) {
                return fail(YH_EPROTO, errmsg, errmsg_size,
                            "nesting deeper than %u levels at offset %zu",
                            max_depth, off);
            }
            depth++;
            left[depth] = h.kind == API__MP_ARRAY ? h.n : 2 * h.n;
            pending += left[depth];
            off += h.head_size;
        } else {
            if (len - off < need) {
                if (min_len != NULL) {
                    *min_len = off + (size_t)need + (size_t)pending;
                }
                return YH_EAGAIN;
            }
            off += (size_t)need;
        }
        while (depth > 0 && left[depth] == 0) {
            depth--;
        }
    }
    if (msg_len != NULL) {
        *msg_len = off;
    }
    return 0;
}

int api_prescan(const uint8_t *buf,
                size_t len,
                size_t max_size,
                unsigned max_depth,
                size_t *msg_len,
                char *errmsg,
                size_t errmsg_size)
{
    return api__prescan_need(buf, len, max_size, max_depth, msg_len, NULL,
                             errmsg, errmsg_size);
}

int api__prescan_skip(const uint8_t *p, size_t len, size_t *obj_size)
{
    if (len == 0) {
        return YH_EAGAIN;
    }
    return api_prescan(p, len, len, API__PRESCAN_DEPTH_CAP, obj_size, NULL, 0);
}
