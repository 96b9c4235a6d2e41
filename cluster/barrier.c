/* One raft_uv barrier at a time, against a libraft 0.15 bug.
 *
 * raft_uv orders a log truncation and a snapshot write against the log
 * writes with a "barrier" (uv_append.c): the open segments are closed, then
 * the barrier's callback runs the truncation or the snapshot write, and
 * raft_uv clears uv->barrier when that work is done. In 0.15 a second
 * barrier requested before the first is cleared is attached only to open
 * segments that no barrier holds yet; when there are none, or when the one
 * it was attached to is closed while the first barrier is still current, it
 * is never fired (canonical/raft issue 372, fixed after 0.15 by PR 435):
 *
 * - a truncation requested while our own snapshot is being written is
 *   silently never done: the entries libraft dropped stay in a closed
 *   segment on disk while the new ones are written after them at the same
 *   indexes (upstream's jepsen saw it as "closed segment ... is past last
 *   snapshot" at the next start);
 * - an InstallSnapshot write (a blocking barrier) requested while a
 *   truncation's barrier is current never starts: the follower is stuck
 *   "installing" for good, defers every later InstallSnapshot, and its
 *   raft_close never completes (our jepsen pause run of session 6: a
 *   deposed leader that truncated its uncommitted tail and was then sent a
 *   snapshot stayed 36,000 entries behind and ignored SIGTERM).
 *
 * This wrapper, directly above raft_uv, keeps at most one truncate or
 * snapshot_put inside raft_uv at a time. A truncate or snapshot_put that
 * comes while one is in progress is held, and so is every request after
 * it, in call order (an append must not overtake a truncation or an
 * InstallSnapshot write that libraft asked for first: raft_uv places
 * entries at the index those set); appends otherwise pass straight
 * through. A snapshot_put is over one loop turn after its callback (raft_uv
 * clears its barrier only after calling it). A truncate has no callback:
 * it is over when the first append passed after it completes, since
 * raft_uv holds every write behind a truncation's (blocking) barrier until
 * the truncation is done, and libraft always appends the leader's entries
 * right after truncating (replication.c, deleteConflictingEntries). Held
 * requests are then passed on in order. libraft sees nothing but a slower
 * disk; on close held requests are cancelled as raft_uv cancels its own.
 *
 * Written by hand: there is no library for this, and raft_uv's barrier
 * state is private to it. */
#include "cluster/barrier.h"

#include <stdlib.h>

#include "fsm/base/log.h"

YH_LOG_MODULE("cluster");

enum { OP_APPEND, OP_TRUNCATE, OP_PUT };

struct raft_barriers_op
{
    int kind;
    struct raft_barriers_op *next;
    /* OP_APPEND */
    struct raft_io_append *append;
    const struct raft_entry *entries;
    unsigned n;
    raft_io_append_cb append_cb;
    /* OP_TRUNCATE */
    raft_index index;
    /* OP_PUT */
    unsigned trailing;
    struct raft_io_snapshot_put *put;
    const struct raft_snapshot *snapshot;
    raft_io_snapshot_put_cb put_cb;
};

/* A request of ours in raft_uv whose completion ends a barrier. */
struct marked
{
    union
    {
        struct raft_io_append append;
        struct raft_io_snapshot_put put;
    } inner;
    struct raft_barriers *b;
    union
    {
        struct raft_io_append *append;
        struct raft_io_snapshot_put *put;
    } orig;
    union
    {
        raft_io_append_cb append;
        raft_io_snapshot_put_cb put;
    } cb;
};

static struct raft_barriers *all;

static struct raft_barriers *barriers_of(struct raft_io *io)
{
    struct raft_barriers *b = all;

    while (b != NULL && b->io != io) {
        b = b->next;
    }
    return b;
}

static void drain_cb(uv_timer_t *t);

static void timer_closed(uv_handle_t *h)
{
    free(h);
}

static void close_timer(struct raft_barriers *b)
{
    if (b->drain != NULL) {
        uv_timer_stop(b->drain);
        uv_close((uv_handle_t *)b->drain, timer_closed);
        b->drain = NULL;
    }
}

/* The barrier in raft_uv is over: pass held requests on, on the next loop
 * turn (raft_uv may still be inside the completion). */
static void barrier_over(struct raft_barriers *b)
{
    b->busy_done = 1;
    if (!b->closing && b->drain != NULL) {
        uv_timer_start(b->drain, drain_cb, 0, 0);
    }
}

static void marked_append_cb(struct raft_io_append *req, int status)
{
    struct marked *m = req->data;
    struct raft_barriers *b = m->b;
    struct raft_io_append *orig = m->orig.append;
    raft_io_append_cb cb = m->cb.append;

    free(m);
    barrier_over(b);
    cb(orig, status);
}

static void marked_put_cb(struct raft_io_snapshot_put *req, int status)
{
    struct marked *m = req->data;
    struct raft_barriers *b = m->b;
    struct raft_io_snapshot_put *orig = m->orig.put;
    raft_io_snapshot_put_cb cb = m->cb.put;

    free(m);
    barrier_over(b);
    cb(orig, status);
}

static int pass_append(struct raft_barriers *b,
                       struct raft_io_append *req,
                       const struct raft_entry entries[],
                       unsigned n,
                       raft_io_append_cb cb)
{
    struct marked *m;
    int rv;

    if (!b->need_marker) {
        return b->append(b->io, req, entries, n, cb);
    }
    m = malloc(sizeof *m);
    if (m == NULL) {
        return RAFT_NOMEM;
    }
    m->inner.append.data = m;
    m->b = b;
    m->orig.append = req;
    m->cb.append = cb;
    rv = b->append(b->io, &m->inner.append, entries, n, marked_append_cb);
    if (rv != 0) {
        free(m);
        return rv;
    }
    b->need_marker = 0;
    return 0;
}

static int pass_truncate(struct raft_barriers *b, raft_index index)
{
    int rv = b->truncate(b->io, index);

    if (rv == 0) {
        b->busy = 1;
        b->busy_done = 0;
        b->need_marker = 1;
    }
    return rv;
}

static int pass_put(struct raft_barriers *b,
                    unsigned trailing,
                    struct raft_io_snapshot_put *req,
                    const struct raft_snapshot *snapshot,
                    raft_io_snapshot_put_cb cb)
{
    struct marked *m = malloc(sizeof *m);
    int rv;

    if (m == NULL) {
        return RAFT_NOMEM;
    }
    m->inner.put.data = m;
    m->b = b;
    m->orig.put = req;
    m->cb.put = cb;
    rv = b->snapshot_put(b->io, trailing, &m->inner.put, snapshot,
                         marked_put_cb);
    if (rv != 0) {
        free(m);
        return rv;
    }
    b->busy = 1;
    b->busy_done = 0;
    return 0;
}

static int hold(struct raft_barriers *b, const struct raft_barriers_op *op)
{
    struct raft_barriers_op *h = malloc(sizeof *h);

    if (h == NULL) {
        return RAFT_NOMEM;
    }
    *h = *op;
    h->next = NULL;
    if (b->tail != NULL) {
        b->tail->next = h;
    } else {
        b->head = h;
    }
    b->tail = h;
    b->n_held++;
    b->n_held_puts += op->kind == OP_PUT;
    b->n_held_truncs += op->kind == OP_TRUNCATE;
    return 0;
}

static struct raft_barriers_op *unhold(struct raft_barriers *b)
{
    struct raft_barriers_op *h = b->head;

    b->head = h->next;
    if (b->head == NULL) {
        b->tail = NULL;
    }
    return h;
}

/* Pass held requests on until one would start a second barrier. A held
 * request that raft_uv refuses gets the error in its callback; after a
 * refused truncation no append may go on (it would land at the wrong
 * index), so they all fail and the node stops (hooks.c). */
static void drain(struct raft_barriers *b)
{
    while (b->head != NULL && !b->closing) {
        struct raft_barriers_op *h = b->head;
        int rv;

        if (h->kind != OP_APPEND && b->busy) {
            return;
        }
        unhold(b);
        switch (h->kind) {
        case OP_APPEND:
            rv = b->failed ? b->failed
                           : pass_append(b, h->append, h->entries, h->n,
                                         h->append_cb);
            if (rv != 0) {
                h->append_cb(h->append, rv);
            }
            break;
        case OP_TRUNCATE:
            rv = pass_truncate(b, h->index);
            if (rv != 0) {
                YH_ERR("raft log: held truncation at %llu failed: %s",
                       (unsigned long long)h->index, raft_strerror(rv));
                b->failed = rv;
            }
            break;
        default:
            rv = pass_put(b, h->trailing, h->put, h->snapshot, h->put_cb);
            if (rv != 0) {
                h->put_cb(h->put, rv);
            }
            break;
        }
        free(h);
    }
}

static void drain_cb(uv_timer_t *t)
{
    struct raft_barriers *b = t->data;

    if (b->busy_done) {
        b->busy = 0;
        b->busy_done = 0;
    }
    drain(b);
}

static int b_append(struct raft_io *io,
                    struct raft_io_append *req,
                    const struct raft_entry entries[],
                    unsigned n,
                    raft_io_append_cb cb)
{
    struct raft_barriers *b = barriers_of(io);
    struct raft_barriers_op op = {.kind = OP_APPEND,
                                  .append = req,
                                  .entries = entries,
                                  .n = n,
                                  .append_cb = cb};

    if (b->failed) {
        return b->failed;
    }
    if (b->head != NULL) {
        return hold(b, &op);
    }
    return pass_append(b, req, entries, n, cb);
}

static int b_truncate(struct raft_io *io, raft_index index)
{
    struct raft_barriers *b = barriers_of(io);
    struct raft_barriers_op op = {.kind = OP_TRUNCATE, .index = index};

    if (b->head != NULL || b->busy) {
        YH_INFO(
            "raft log: truncation at %llu held until the truncation or "
            "snapshot write in progress is done",
            (unsigned long long)index);
        return hold(b, &op);
    }
    return pass_truncate(b, index);
}

static int b_snapshot_put(struct raft_io *io,
                          unsigned trailing,
                          struct raft_io_snapshot_put *req,
                          const struct raft_snapshot *snapshot,
                          raft_io_snapshot_put_cb cb)
{
    struct raft_barriers *b = barriers_of(io);
    struct raft_barriers_op op = {.kind = OP_PUT,
                                  .trailing = trailing,
                                  .put = req,
                                  .snapshot = snapshot,
                                  .put_cb = cb};

    if (b->head != NULL || b->busy) {
        YH_INFO(
            "raft log: snapshot %llu (%s) held until the truncation or "
            "snapshot write in progress is done",
            (unsigned long long)snapshot->index,
            trailing == 0 ? "installed" : "ours");
        return hold(b, &op);
    }
    return pass_put(b, trailing, req, snapshot, cb);
}

static void b_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct raft_barriers *b = barriers_of(io);

    b->closing = 1;
    while (b->head != NULL) {
        struct raft_barriers_op *h = unhold(b);

        if (h->kind == OP_APPEND) {
            h->append_cb(h->append, RAFT_CANCELED);
        } else if (h->kind == OP_PUT) {
            h->put_cb(h->put, RAFT_CANCELED);
        }
        free(h);
    }
    close_timer(b);
    b->close(io, cb);
}

int cluster_barriers_install(struct raft_barriers *b,
                             struct raft_io *io,
                             uv_loop_t *loop)
{
    int rv;

    b->drain = malloc(sizeof *b->drain);
    if (b->drain == NULL) {
        return UV_ENOMEM;
    }
    rv = uv_timer_init(loop, b->drain);
    if (rv != 0) {
        free(b->drain);
        b->drain = NULL;
        return rv;
    }
    b->drain->data = b;
    b->io = io;
    b->append = io->append;
    b->truncate = io->truncate;
    b->snapshot_put = io->snapshot_put;
    b->close = io->close;
    b->head = NULL;
    b->tail = NULL;
    b->busy = 0;
    b->busy_done = 0;
    b->need_marker = 0;
    b->closing = 0;
    b->failed = 0;
    b->n_held = 0;
    b->n_held_puts = 0;
    b->n_held_truncs = 0;
    io->append = b_append;
    io->truncate = b_truncate;
    io->snapshot_put = b_snapshot_put;
    io->close = b_close;
    b->next = all;
    all = b;
    return 0;
}

void cluster_barriers_remove(struct raft_barriers *b)
{
    struct raft_barriers **p = &all;

    while (*p != NULL && *p != b) {
        p = &(*p)->next;
    }
    if (*p == b) {
        *p = b->next;
    }
    close_timer(b);
}
