/* Fuzz target: arbitrary bytes as a committed raft entry. fsm_apply must
 * never fail or crash on them (a malformed envelope is a YH_EPROTO result),
 * and every result must be a msgpack map carrying RetCode. */
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/mp.h"
#include "fsm/fsm.h"

static struct fsm *f;
static uint64_t idx;
static char dir[] = "/tmp/yh-fuzz-envelope-XXXXXX";

static void cleanup(void)
{
    char cmd[64];

    fsm_close(f);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
}

static void open_store(void)
{
    struct fsm_config cfg = {0};
    char errmsg[YH_ERRMSG_SIZE];

    cfg.nosync = 1;
    cfg.map_size = 256u << 20;
    if (mkdtemp(dir) == NULL || fsm_open(&f, dir, &cfg, errmsg) != 0) {
        abort();
    }
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct yh_buf res = YH_BUF_INIT;
    struct yh_buf ev = YH_BUF_INIT;
    msgpack_unpacked u;
    uint64_t tag;
    int skipped;

    if (f == NULL) {
        open_store();
    }
    if (fsm_apply(f, ++idx, data, size, &res, &ev, &tag, &skipped) != 0) {
        abort(); /* untrusted bytes must never be a local failure */
    }
    msgpack_unpacked_init(&u);
    if (skipped || res.len == 0 ||
        msgpack_unpack_next(&u, (const char *)res.data, res.len, NULL) !=
            MSGPACK_UNPACK_SUCCESS ||
        yh_mp_get(&u.data, "RetCode") == NULL) {
        abort();
    }
    msgpack_unpacked_destroy(&u);
    if (idx % 64 == 0 && fsm_flush(f) != 0) {
        abort();
    }
    yh_buf_release(&res);
    yh_buf_release(&ev);
    return 0;
}
