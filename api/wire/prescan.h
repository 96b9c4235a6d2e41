/* Pre-scan of msgpack bytes before msgpack-c sees them.
 *
 * msgpack-c 4.0 allocates count x 24 bytes for a declared array/map before
 * reading its elements (5 bytes "dd ff ff ff ff" ask for ~96 GiB), fails
 * misleadingly past depth 32, and waits forever on a truncated str32. So
 * every message is walked here first, without allocating:
 *   - the whole message is at most @max_size bytes;
 *   - nesting depth is at most @max_depth;
 *   - every declared element count and str/bin/ext length fits in the bytes
 *     that can still follow (max_size - offset);
 *   - the never-used byte 0xc1 is rejected.
 * Hand-written because no library validates msgpack without decoding it.
 */
#ifndef API_PRESCAN_H
#define API_PRESCAN_H

#include <stddef.h>
#include <stdint.h>

#define API_MAX_MESSAGE (4u << 20) /* default message size limit */
#define API_MAX_DEPTH 16           /* default nesting limit */

/* Scan the first msgpack object in @buf[0..len).
 * Returns 0 and *msg_len = its size when it is complete and valid;
 * YH_EAGAIN when the bytes so far are a valid prefix (need more);
 * YH_EPROTO (invalid: 0xc1, depth, impossible count) or YH_ETOOBIG (over
 * @max_size) with a reason in @errmsg (@errmsg_size bytes). */
int api_prescan(const uint8_t *buf,
                size_t len,
                size_t max_size,
                unsigned max_depth,
                size_t *msg_len,
                char *errmsg,
                size_t errmsg_size);

#endif
