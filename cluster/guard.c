/* A guard around a raft_io against libraft 0.15 follower bugs that upstream
 * fixed after 0.15 (Debian 12 ships 0.15.0, which we must use).
 *
 * A follower answers an AppendEntries or InstallSnapshot only when the disk
 * write it started has completed (appendFollowerCb, installSnapshotCb), and
 * libraft 0.15 then sends the result to
 * r->follower_state.current_leader.address without checking that it is
 * still a follower of that leader:
 *
 * 1. While a follower installs a snapshot (the write can take seconds), its
 *    election timer keeps running; if the leader goes silent (jepsen: leader
 *    SIGSTOPped) it converts to candidate, or even wins. When the write
 *    completes, installSnapshotCb reads follower_state, which for a
 *    candidate or leader is another member of the same union: a garbage
 *    address, and the node died with SIGSEGV in strlen() inside raft_uv's
 *    send (jepsen-quick, pause nemesis, session 4). Upstream: commit
 *    2a38d3d ("Fix handling of new term when snapshotting": a follower
 *    installing a snapshot does not start an election; a result is not sent
 *    after a term change).
 * 2. If the term changed while the write was in flight (a vote request
 *    from a higher term, a new leader), the follower either knows no leader
 *    (address NULL: strlen(NULL)) or tells the new leader that it stores
 *    entries it received from the old one: a claim about a log the new
 *    leader did not send. Upstream: commit 35479fc ("Don't respond to
 *    AppendEntries if role/term has changed").
 *
 * What the guard does, without touching libraft's memory except the
 * election timer start (a public field of struct raft in 0.15):
 *
 * - append and snapshot_put: remember the term in which each request was
 *   made, and while its completion callback runs, mark the guard as inside
 *   one (with that term);
 * - send: an AppendEntries result sent from inside such a callback is
 *   dropped (not sent; libraft frees the request) unless the node is still
 *   a follower in the same term with a known leader; one without an
 *   address is never sent. Dropping a result is always safe: the leader
 *   resends on its next heartbeat and the follower answers that;
 * - tick: while a follower installs a snapshot (r->snapshot.put.data set by
 *   replicationInstallSnapshot, and not by a snapshot of its own, for which
 *   libraft sets it to r), its election timer is held at zero as upstream
 *   does, so it cannot become candidate until the snapshot is installed;
 * - recv: a TimeoutNow (leadership transfer), the other way to become
 *   candidate, is dropped during such an install; the transfer times out
 *   and the leader stays.
 *
 * The guards live in a short list searched by io: a raft_io has no field of
 * its own for a wrapper (data is libraft's, impl raft_uv's), and a process
 * has one guarded io (tests a few). */
#include "guard.h"

#include <stddef.h>
#include <stdlib.h>

#include "fsm/base/log.h"

YH_LOG_MODULE("cluster");

static struct raft_guard *guards;

static struct raft_guard *guard_of(struct raft_io *io)
{
    struct raft_guard *g = guards;

    while (g != NULL && g->io != io) {
        g = g->next;
    }
    return g;
}

/* A snapshot sent by the leader is being written (not one of our own). */
static int installing(const struct raft *r)
{
    return r->snapshot.put.data != NULL &&
           r->snapshot.put.data != (const void *)r;
}

static int guard_send(struct raft_io *io,
                      struct raft_io_send *req,
                      const struct raft_message *m,
                      raft_io_send_cb cb)
{
    struct raft_guard *g = guard_of(io);
    struct raft *r = io->data;
    const char *why = NULL;

    if (m->type == RAFT_IO_APPEND_ENTRIES_RESULT) {
        if (g->in_done && r->state != RAFT_FOLLOWER) {
            why = "no longer a follower";
        } else if (g->in_done && r->current_term != g->done_term) {
            why = "term changed since the write began";
        } else if (g->in_done && r->follower_state.current_leader.id == 0) {
            why = "no known leader";
        } else if (m->server_address == NULL) {
            why = "no leader address";
        }
    }
    if (why != NULL) {
        g->n_dropped_results++;
        YH_INFO(
            "raft %llu: AppendEntries result (last index %llu) not sent: "
            "%s (term %llu)",
            (unsigned long long)r->id,
            (unsigned long long)m->append_entries_result.last_log_index, why,
            (unsigned long long)r->current_term);
        return RAFT_NOCONNECTION; /* libraft frees @req */
    }
    return g->send(io, req, m, cb);
}

/* A guarded append or snapshot_put: our request goes to the io below, the
 * caller's comes back to its callback. */
struct guarded
{
    union
    {
        struct raft_io_append append;
        struct raft_io_snapshot_put put;
    } inner;
    struct raft_guard *g;
    raft_term term; /* the node's term when the request was made */
    int is_put;
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

static struct guarded *guarded_new(struct raft_io *io, int is_put)
{
    struct raft *r = io->data;
    struct guarded *w = malloc(sizeof *w);

    if (w != NULL) {
        w->g = guard_of(io);
        w->term = r->current_term;
        w->is_put = is_put;
    }
    return w;
}

/* Run the caller's callback marked as inside a completion (nestable). */
static void guarded_done(struct guarded *w, int status)
{
    struct guarded done = *w;
    struct raft_guard *g = done.g;
    int in = g->in_done;
    raft_term term = g->done_term;

    free(w);
    g->in_done = 1;
    g->done_term = done.term;
    if (done.is_put) {
        done.cb.put(done.orig.put, status);
    } else {
        done.cb.append(done.orig.append, status);
    }
    g->in_done = in;
    g->done_term = term;
}

static void guard_append_cb(struct raft_io_append *req, int status)
{
    guarded_done(req->data, status);
}

static void guard_put_cb(struct raft_io_snapshot_put *req, int status)
{
    guarded_done(req->data, status);
}

static int guard_append(struct raft_io *io,
                        struct raft_io_append *req,
                        const struct raft_entry entries[],
                        unsigned n,
                        raft_io_append_cb cb)
{
    struct guarded *w = guarded_new(io, 0);
    int rv;

    if (w == NULL) {
        return RAFT_NOMEM;
    }
    w->inner.append.data = w;
    w->orig.append = req;
    w->cb.append = cb;
    rv = w->g->append(io, &w->inner.append, entries, n, guard_append_cb);
    if (rv != 0) {
        free(w);
    }
    return rv;
}

static int guard_snapshot_put(struct raft_io *io,
                              unsigned trailing,
                              struct raft_io_snapshot_put *req,
                              const struct raft_snapshot *snapshot,
                              raft_io_snapshot_put_cb cb)
{
    struct guarded *w = guarded_new(io, 1);
    int rv;

    if (w == NULL) {
        return RAFT_NOMEM;
    }
    w->inner.put.data = w;
    w->orig.put = req;
    w->cb.put = cb;
    rv =
        w->g->snapshot_put(io, trailing, &w->inner.put, snapshot, guard_put_cb);
    if (rv != 0) {
        free(w);
    }
    return rv;
}

static void guard_tick(struct raft_io *io)
{
    struct raft_guard *g = guard_of(io);
    struct raft *r = io->data;

    if (r->state == RAFT_FOLLOWER && installing(r)) {
        r->election_timer_start = io->time(io);
        g->n_held_elections++;
    }
    g->tick(io);
}

static void guard_recv(struct raft_io *io, struct raft_message *m)
{
    struct raft_guard *g = guard_of(io);
    struct raft *r = io->data;

    if (m->type == RAFT_IO_TIMEOUT_NOW && installing(r)) {
        g->n_dropped_timeout_now++;
        YH_INFO(
            "raft %llu: TimeoutNow from %llu ignored: installing a "
            "snapshot",
            (unsigned long long)r->id, (unsigned long long)m->server_id);
        return;
    }
    g->recv(io, m);
}

static int guard_start(struct raft_io *io,
                       unsigned msecs,
                       raft_io_tick_cb tick,
                       raft_io_recv_cb recv)
{
    struct raft_guard *g = guard_of(io);

    g->tick = tick;
    g->recv = recv;
    return g->start(io, msecs, guard_tick, guard_recv);
}

void cluster_guard_install(struct raft_guard *g, struct raft_io *io)
{
    g->io = io;
    g->send = io->send;
    g->append = io->append;
    g->snapshot_put = io->snapshot_put;
    g->start = io->start;
    g->tick = NULL;
    g->recv = NULL;
    g->in_done = 0;
    g->done_term = 0;
    g->n_dropped_results = 0;
    g->n_held_elections = 0;
    g->n_dropped_timeout_now = 0;
    io->send = guard_send;
    io->append = guard_append;
    io->snapshot_put = guard_snapshot_put;
    io->start = guard_start;
    g->next = guards;
    guards = g;
}

void cluster_guard_remove(struct raft_guard *g)
{
    struct raft_guard **p = &guards;

    while (*p != NULL && *p != g) {
        p = &(*p)->next;
    }
    if (*p == g) {
        *p = g->next;
    }
}
