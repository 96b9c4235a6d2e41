/* Fuzz target: fsm__mp_decode (fsm/mpcheck.c, the one-pass decoder of every
 * stored and replicated msgpack object) against what it replaced: the
 * bounds pre-scan fsm__mp_check followed by msgpack-c's msgpack_unpack_next.
 * Both must accept the same inputs, and an accepted input must give the
 * same object (compared by packing both with msgpack-c: the same bytes).
 * fsm__mp_decode_entry must accept an object followed by up to 7 zero bytes
 * of padding and give the same object and length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "fsm/fsm_int.h"

static int pack(const msgpack_object *o, msgpack_sbuffer *sb)
{
    msgpack_packer pk;

    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    return msgpack_pack_object(&pk, *o);
}

static void same_object(const msgpack_object *a, const msgpack_object *b)
{
    msgpack_sbuffer x;
    msgpack_sbuffer y;

    if (pack(a, &x) != 0 || pack(b, &y) != 0 || x.size != y.size ||
        memcmp(x.data, y.data, x.size) != 0 || a->type != b->type) {
        abort();
    }
    msgpack_sbuffer_destroy(&x);
    msgpack_sbuffer_destroy(&y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msgpack_unpacked ref;
    msgpack_unpacked got;
    size_t off = 0;
    int ref_ok;
    int got_ok;

    msgpack_unpacked_init(&ref);
    msgpack_unpacked_init(&got);
    ref_ok = fsm__mp_check(data, size, FSM_MAX_DEPTH) == 0 &&
             msgpack_unpack_next(&ref, (const char *)data, size, &off) ==
                 MSGPACK_UNPACK_SUCCESS &&
             off == size;
    got_ok = fsm__mp_decode(data, size, &got) == 0;
    if (ref_ok != got_ok) {
        abort();
    }
    if (ref_ok) {
        same_object(&ref.data, &got.data);
    }
    msgpack_unpacked_destroy(&got);

    /* the same object as a raft entry, padded to a multiple of 8 */
    if (ref_ok) {
        size_t padded = (size + 7) & ~(size_t)7;
        uint8_t *e = calloc(1, padded == 0 ? 1 : padded);
        size_t obj_len = 0;

        if (e == NULL) {
            abort();
        }
        memcpy(e, data, size);
        msgpack_unpacked_init(&got);
        if (fsm__mp_decode_entry(e, padded, &got, &obj_len) != 0 ||
            obj_len != size) {
            abort();
        }
        same_object(&ref.data, &got.data);
        msgpack_unpacked_destroy(&got);
        free(e);
    }
    msgpack_unpacked_destroy(&ref);
    return 0;
}
