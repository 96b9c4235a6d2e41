/* Growable byte buffer. Also usable as a msgpack-c write target:
 *
 *   msgpack_packer pk;
 *   msgpack_packer_init(&pk, &buf, yh_buf_msgpack_write);
 */
#ifndef YH_BUF_H
#define YH_BUF_H

#include <stddef.h>
#include <stdint.h>

struct yh_buf
{
    uint8_t *data; /* owned; NULL when empty and never grown */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
};

#define YH_BUF_INIT \
    {               \
        NULL, 0, 0  \
    }

void yh_buf_init(struct yh_buf *b);
void yh_buf_release(struct yh_buf *b); /* frees data, back to empty */
void yh_buf_reset(struct yh_buf *b);   /* len = 0, keeps memory */
int yh_buf_reserve(struct yh_buf *b, size_t extra); /* 0 or YH_ENOMEM */
/* Append @n bytes. The msgpack packer calls this once per token, so the
 * common case (room left) is inline; growing is out of line. */
int yh_buf_append_slow(struct yh_buf *b, const void *p, size_t n);
static inline int yh_buf_append(struct yh_buf *b, const void *p, size_t n)
{
    if (n <= b->cap - b->len) {
        if (n > 0) {
            __builtin_memcpy(b->data + b->len, p, n);
            b->len += n;
        }
        return 0;
    }
    return yh_buf_append_slow(b, p, n);
}
int yh_buf_printf(struct yh_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hand the bytes to the caller (owned, free with free()); buffer is empty
 * afterwards. */
uint8_t *yh_buf_steal(struct yh_buf *b, size_t *len);
/* msgpack_packer_write callback; @data is a struct yh_buf *. */
int yh_buf_msgpack_write(void *data, const char *p, size_t n);

/* snprintf(@dst, @size, "%s", @src) without the formatting machinery:
 * at most @size - 1 bytes, always NUL-terminated (@size > 0). */
static inline void yh_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = __builtin_strlen(src);

    if (n >= size) {
        n = size - 1;
    }
    __builtin_memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Lower-case hex of @n bytes into @out (2n+1 bytes, NUL-terminated). */
void yh_hex(const uint8_t *p, size_t n, char *out);
/* The 2n hex digits at @hex (either case) into @out (n bytes): 0, or
 * YH_EINVAL if any is not a hex digit (@out then holds garbage). */
int yh_unhex(const char *hex, size_t n, uint8_t *out);

#endif
