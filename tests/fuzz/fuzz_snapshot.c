/* Fuzz target: arbitrary bytes as a snapshot (InstallSnapshot from a peer,
 * or a file on disk). fsm_restore must accept it whole or reject it with
 * YH_ECORRUPT leaving the state exactly as it was. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/fsm.h"

static struct fsm *f;
static char dir[] = "/tmp/yh-fuzz-snapshot-XXXXXX";

static void cleanup(void)
{
    char cmd[64];

    fsm_close(f);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char before[2 * FSM_DIGEST_SIZE + 1];
    char after[2 * FSM_DIGEST_SIZE + 1];
    uint64_t idx_before;
    int loaded = 0;
    int rc;

    if (f == NULL) {
        struct fsm_config cfg = {0};
        char errmsg[YH_ERRMSG_SIZE];
        cfg.nosync = 1;
        cfg.map_size = 256u << 20;
        if (mkdtemp(dir) == NULL || fsm_open(&f, dir, &cfg, errmsg) != 0) {
            abort();
        }
        atexit(cleanup);
    }
    fsm_digest_hex(f, before);
    idx_before = fsm_applied_index(f);
    rc = fsm_restore(f, data, size, &loaded);
    fsm_digest_hex(f, after);
    if (rc != 0) {
        if (rc != YH_ECORRUPT && rc != YH_EIO) {
            abort();
        }
        if (strcmp(before, after) != 0 || fsm_applied_index(f) != idx_before) {
            abort(); /* a rejected snapshot changed the state */
        }
    } else if (!loaded && (strcmp(before, after) != 0 ||
                           fsm_applied_index(f) != idx_before)) {
        abort();
    }
    return 0;
}
