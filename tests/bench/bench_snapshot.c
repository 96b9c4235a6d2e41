/* bench_snapshot STATE_DIR: time a snapshot of a node's LMDB state (a copy
 * of <data-dir>/state, taken while the node is stopped) and its restore into
 * a fresh store; check both hold the same digest. Prints one line per step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsm/fsm.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct fsm_config cfg = {0};
    char errmsg[YH_ERRMSG_SIZE];
    char d1[2 * FSM_DIGEST_SIZE + 1];
    char d2[2 * FSM_DIGEST_SIZE + 1];
    char fresh[] = "/tmp/yh-bench-restore-XXXXXX";
    struct yh_buf buf = YH_BUF_INIT;
    struct fsm *src;
    struct fsm *dst;
    struct fsm_snap *snap;
    double t0;
    double t1;
    double t2;
    int loaded = 0;
    char cmd[128];

    if (argc != 2) {
        fprintf(stderr, "usage: bench_snapshot STATE_DIR\n");
        return 2;
    }
    cfg.nosync = 1;
    if (fsm_open(&src, argv[1], &cfg, errmsg) != 0) {
        fprintf(stderr, "bench_snapshot: %s\n", errmsg);
        return 1;
    }
    t0 = now_s();
    if (fsm_snapshot_begin(src, &snap) != 0 ||
        fsm_snapshot_encode(snap, &buf) != 0) {
        fprintf(stderr, "bench_snapshot: snapshot failed\n");
        return 1;
    }
    fsm_snapshot_end(snap);
    t1 = now_s();
    if (mkdtemp(fresh) == NULL || fsm_open(&dst, fresh, &cfg, errmsg) != 0 ||
        fsm_restore(dst, buf.data, buf.len, &loaded) != 0 || !loaded ||
        fsm_flush(dst) != 0) {
        fprintf(stderr, "bench_snapshot: restore failed\n");
        return 1;
    }
    t2 = now_s();
    fsm_digest_hex(src, d1);
    fsm_digest_hex(dst, d2);
    printf("state index %llu, snapshot %.1f MiB\n",
           (unsigned long long)fsm_applied_index(src),
           (double)buf.len / (1 << 20));
    printf("snapshot encode %.2f s, restore %.2f s, total %.2f s\n", t1 - t0,
           t2 - t1, t2 - t0);
    printf("digests %s\n", strcmp(d1, d2) == 0 ? "equal" : "DIFFER");
    fsm_close(src);
    fsm_close(dst);
    yh_buf_release(&buf);
    snprintf(cmd, sizeof cmd, "rm -rf %s", fresh);
    if (system(cmd) != 0) {
        return 1;
    }
    return strcmp(d1, d2) == 0 ? 0 : 1;
}
