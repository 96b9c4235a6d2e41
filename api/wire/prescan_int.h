/* Byte-level msgpack helpers shared by the files of api/wire/ (not part of
 * the public API). They never allocate and never read past @len. */
#ifndef API_PRESCAN_INT_H
#define API_PRESCAN_INT_H

#include <stddef.h>
#include <stdint.h>

/* api_prescan() keeps one counter per open container on its own stack, so
 * it cannot follow more levels than this whatever @max_depth says. */
#define API__PRESCAN_DEPTH_CAP 128

enum api__mp_kind {
    API__MP_SCALAR, /* nil, bool, int, float: no body */
    API__MP_BYTES,  /* str, bin, ext: @n body bytes follow the head */
    API__MP_ARRAY,  /* @n elements follow */
    API__MP_MAP,    /* @n key/value pairs follow */
};

/* The head of one msgpack object: its type byte and length fields. */
struct api__mp_head
{
    int kind;         /* enum api__mp_kind */
    uint8_t type;     /* the type byte */
    size_t head_size; /* bytes of the head (type byte, length, ext type) */
    uint64_t n;       /* body bytes (BYTES) or element/pair count */
};

/* Parse the head at @p[0..len). 0, YH_EAGAIN if @len is too short to hold
 * it, YH_EPROTO for the never-used type byte 0xc1. */
int api__mp_head(const uint8_t *p, size_t len, struct api__mp_head *h);

/* api_prescan(), and on YH_EAGAIN also *min_len: a lower bound (every
 * object still owed counted as one byte) on the message's total size, so a
 * stream reader can wait for that many bytes instead of re-scanning the
 * same prefix after every small read. */
int api__prescan_need(const uint8_t *buf,
                      size_t len,
                      size_t max_size,
                      unsigned max_depth,
                      size_t *msg_len,
                      size_t *min_len,
                      char *errmsg,
                      size_t errmsg_size);

/* Size of the one whole object starting at @p[0..len), validated as
 * api_prescan() does with @len as the size limit: 0 and *obj_size,
 * YH_EAGAIN/YH_EPROTO/YH_ETOOBIG otherwise. */
int api__prescan_skip(const uint8_t *p, size_t len, size_t *obj_size);

#endif
