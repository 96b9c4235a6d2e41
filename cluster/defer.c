/* Deferred apply on followers.
 *
 * libraft 0.15 applies committed entries inside the callback of a
 * follower's disk append (appendFollowerCb) and sends the AppendEntries
 * result only afterwards, so the leader's commit of batch k+1 waits for a
 * follower to apply all of batch k (thousands of entries under load, several
 * milliseconds). The leader and followers then take turns instead of
 * overlapping, and a 2-core machine sat ~18 % idle under a saturating
 * benchmark (perf sched: the leader waiting 5-30 ms for acks).
 *
 * A follower (or candidate) therefore copies each committed entry into this
 * FIFO and returns at once; an idle handle applies the queue in slices of at
 * most DEFER_SLICE_NS between I/O, so acknowledgements go out first. Order
 * is the log's: entries leave the queue in index order, and anything that
 * needs the state current drains the queue first (cluster_fsm(), becoming
 * leader, snapshots, restores, close).
 *
 * Durability does not change: an entry that is not yet applied is in the
 * raft log, and a restart replays from the state's applied index. Entries
 * stay queued until the LMDB batch holding them is committed, so a batch
 * that fails (and is rolled back whole) is applied again from the queue
 * instead of stopping the node. The queue is bounded (DEFER_MAX_ENTRIES,
 * DEFER_MAX_BYTES); past that, glue_apply() drains and applies
 * synchronously, as before. */
#include "cluster_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"

YH_LOG_MODULE("cluster");

#define DEFER_MAX_ENTRIES 65536u
#define DEFER_MAX_BYTES (64u << 20)
#define DEFER_SLICE_NS 1000000u  /* apply at most ~1 ms between I/O */
#define DEFER_COMMIT_EVERY 8192u /* entries applied between commits */

struct cluster_deferred
{
    uint64_t index;
    size_t len;
    unsigned char data[];
};

static struct cluster_deferred *slot(struct cluster *c, uint64_t i)
{
    return c->dq[i & (c->dq_cap - 1)];
}

int cluster__defer_push(struct cluster *c,
                        uint64_t index,
                        const void *data,
                        size_t len)
{
    struct cluster_deferred *d;

    if (c->dq_tail - c->dq_head >= DEFER_MAX_ENTRIES ||
        c->dq_bytes + len > DEFER_MAX_BYTES) {
        return YH_EBUSY;
    }
    if (c->dq_tail > c->dq_head &&
        slot(c, c->dq_tail - 1)->index + 1 != index) {
        /* Not contiguous (cannot happen with libraft's in-order apply):
         * the caller applies synchronously after draining. */
        return YH_EBUSY;
    }
    if (c->dq_tail - c->dq_head == c->dq_cap) {
        unsigned cap = c->dq_cap ? c->dq_cap * 2 : 1024;
        struct cluster_deferred **q = malloc(cap * sizeof *q);
        if (q == NULL) {
            return YH_ENOMEM;
        }
        for (uint64_t i = c->dq_head; i < c->dq_tail; i++) {
            q[i & (cap - 1)] = slot(c, i);
        }
        free(c->dq);
        c->dq = q;
        c->dq_cap = cap;
    }
    d = malloc(sizeof *d + len);
    if (d == NULL) {
        return YH_ENOMEM;
    }
    d->index = index;
    d->len = len;
    memcpy(d->data, data, len);
    c->dq[c->dq_tail & (c->dq_cap - 1)] = d;
    c->dq_tail++;
    c->dq_bytes += len;
    return 0;
}

unsigned cluster__defer_waiting(const struct cluster *c)
{
    return (unsigned)(c->dq_tail - c->dq_next);
}

/* A batch was rolled back: the state is at its last commit again. The
 * queue can re-apply what was lost only if it holds every entry from there
 * up to the last one libraft handed us (entries applied synchronously, not
 * queued, would be lost for good). */
int cluster__defer_rewind(struct cluster *c)
{
    uint64_t applied = fsm_applied_index(c->fsm);

    if (c->dq_head == c->dq_tail ||
        slot(c, c->dq_tail - 1)->index != raft_last_applied(&c->raft) ||
        slot(c, c->dq_head)->index > applied + 1) {
        return -1;
    }
    for (uint64_t i = c->dq_head; i < c->dq_tail; i++) {
        if (slot(c, i)->index == applied + 1) {
            c->dq_next = i;
            return 0;
        }
    }
    return -1;
}

void cluster__defer_committed(struct cluster *c)
{
    uint64_t applied = fsm_applied_index(c->fsm);

    while (c->dq_head < c->dq_next && slot(c, c->dq_head)->index <= applied) {
        struct cluster_deferred *d = slot(c, c->dq_head);
        c->dq_bytes -= d->len;
        free(d);
        c->dq_head++;
    }
    c->dq_uncommitted = 0;
}

int cluster__defer_drain(struct cluster *c, uint64_t budget_ns)
{
    uint64_t start = budget_ns ? uv_hrtime() : 0;
    unsigned n = 0;
    int rc = 0;

    if (c->draining) {
        return 0; /* called back from inside an entry's apply */
    }
    c->draining = 1;
    while (c->dq_next < c->dq_tail) {
        struct cluster_deferred *d = slot(c, c->dq_next);
        rc = cluster__apply_one(c, d->index, d->data, d->len);
        if (rc != 0) {
            static struct yh_ratelimit rl = YH_RATELIMIT_INIT(5, 10);
            YH_WARN_RL(&rl,
                       "n%" PRIu64 " apply %" PRIu64 " failed: %s (retrying)",
                       c->cfg.id, d->index, yh_strerror(rc));
            if (cluster__defer_rewind(c) != 0) {
                YH_ERR("n%" PRIu64 " apply %" PRIu64
                       " failed: %s, batch back to %" PRIu64
                       "; stopping to replay from the log",
                       c->cfg.id, d->index, yh_strerror(rc),
                       fsm_applied_index(c->fsm));
                cluster__stop_now(); /* exits 70 */
            }
            break;
        }
        c->dq_next++;
        c->dq_uncommitted++;
        if (budget_ns && (++n & 31u) == 0 && uv_hrtime() - start >= budget_ns) {
            break;
        }
    }
    c->draining = 0;
    return rc;
}

int cluster__defer_should_commit(const struct cluster *c)
{
    return c->dq_next == c->dq_tail || c->dq_uncommitted >= DEFER_COMMIT_EVERY;
}

static void drain_cb(uv_idle_t *h)
{
    struct cluster *c = h->data;

    if (c->closing || cluster__defer_drain(c, DEFER_SLICE_NS) != 0 ||
        c->dq_next == c->dq_tail) {
        /* Done, or failing: the housekeeping timer retries a failure. */
        uv_idle_stop(h);
    }
}

void cluster__defer_start(struct cluster *c)
{
    if (!c->closing && c->dq_next < c->dq_tail) {
        uv_idle_start(&c->drain, drain_cb);
    }
}

void cluster__defer_clear(struct cluster *c)
{
    for (uint64_t i = c->dq_head; i < c->dq_tail; i++) {
        free(slot(c, i));
    }
    c->dq_head = c->dq_next = c->dq_tail = 0;
    c->dq_bytes = 0;
    c->dq_uncommitted = 0;
}

void cluster__defer_free(struct cluster *c)
{
    cluster__defer_clear(c);
    free(c->dq);
    c->dq = NULL;
    c->dq_cap = 0;
}
