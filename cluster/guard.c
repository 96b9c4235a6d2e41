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
 * 3. Rolling back an uncommitted configuration: when a new leader's
 *    AppendEntries truncates a follower's log at or below an uncommitted
 *    configuration entry, libraft 0.15 (deleteConflictingEntries ->
 *    membershipRollback) decodes the last committed configuration from the
 *    in-memory log, at r->configuration_index. If that entry has been
 *    compacted into a snapshot, logGet returns NULL and the node dies with
 *    SIGSEGV (jepsen, membership+kill, session 5). A snapshot taken while a
 *    configuration is uncommitted is also wrong: takeSnapshot stores the
 *    uncommitted configuration under the committed one's index. And after
 *    installing a snapshot, configuration_uncommitted_index still names an
 *    entry the snapshot replaced. Upstream: commit baa8f52 ("Ensure
 *    configuration rollback is possible").
 *
 * For (3) the guard keeps copies of the configurations it has seen at their
 * log indexes (the last RAFT_GUARD_CONFS: the committed one and any newer)
 * from the raft's own state and from the configuration entries of each
 * AppendEntries it delivered. Before delivering an AppendEntries that would
 * make libraft roll back with the committed entry gone from the log, the
 * guard does the rollback itself from its copy (r->configuration and
 * r->configuration_uncommitted_index, public fields), so that libraft finds
 * nothing to roll back. A snapshot of our own gets the configuration of its
 * configuration index; a completed install clears the stale uncommitted
 * index, as upstream does. At start, libraft 0.15 takes the newest
 * configuration entry in the log as committed, which it may not be (if a
 * new leader then truncates it, the node keeps a configuration no log
 * holds); the guard marks it uncommitted and the one before it (or the
 * snapshot's) as the committed one, as upstream does: a leader appends a
 * configuration entry only once the one before it is committed.
 *
 * The guards live in a short list searched by io: a raft_io has no field of
 * its own for a wrapper (data is libraft's, impl raft_uv's), and a process
 * has one guarded io (tests a few). */
#include "guard.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* --- libraft 0.15's in-memory log and configurations, read by hand ---
 *
 * struct raft_log is public in raft.h, but its accessors (logGet,
 * logTermOf) and configurationDecode are not exported by libraft.so 0.15;
 * these follow log.c and configuration.c of v0.15.0 on the public fields
 * and the documented encoding. */

static size_t log_n(const struct raft_log *l)
{
    return l->front <= l->back ? l->back - l->front
                               : l->size - l->front + l->back;
}

static const struct raft_entry *log_get(const struct raft_log *l,
                                        raft_index index)
{
    size_t n = log_n(l);

    if (n == 0 || index <= l->offset || index > l->offset + n) {
        return NULL;
    }
    return &l->entries[(l->front + (size_t)(index - 1 - l->offset)) % l->size];
}

static raft_term log_term_of(const struct raft_log *l, raft_index index)
{
    const struct raft_entry *e;

    if (index == 0) {
        return 0;
    }
    if (index == l->snapshot.last_index) {
        return l->snapshot.last_term;
    }
    e = log_get(l, index);
    return e != NULL ? e->term : 0;
}

static uint64_t get64le(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* A RAFT_CHANGE entry's configuration: a format byte (1), a 64-bit
 * little-endian count, then per server a 64-bit little-endian id, a
 * NUL-terminated address and a role byte. */
static int conf_decode(const struct raft_buffer *buf,
                       struct raft_configuration *c)
{
    const uint8_t *p = buf->base;
    const uint8_t *end = p + buf->len;
    uint64_t n;

    raft_configuration_init(c);
    if (buf->len < 9 || p[0] != 1) {
        return RAFT_MALFORMED;
    }
    n = get64le(p + 1);
    p += 9;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *nul;
        const char *address;
        raft_id id;
        int role;

        if (end - p < 8) {
            goto bad;
        }
        id = get64le(p);
        p += 8;
        nul = memchr(p, 0, (size_t)(end - p));
        if (nul == NULL || nul + 1 >= end) {
            goto bad;
        }
        address = (const char *)p;
        role = nul[1];
        p = nul + 2;
        if (raft_configuration_add(c, id, address, role) != 0) {
            goto bad;
        }
    }
    return 0;
bad:
    raft_configuration_close(c);
    raft_configuration_init(c);
    return RAFT_MALFORMED;
}

static int conf_copy(const struct raft_configuration *src,
                     struct raft_configuration *dst)
{
    raft_configuration_init(dst);
    for (unsigned i = 0; i < src->n; i++) {
        const struct raft_server *s = &src->servers[i];

        if (raft_configuration_add(dst, s->id, s->address, s->role) != 0) {
            raft_configuration_close(dst);
            raft_configuration_init(dst);
            return RAFT_NOMEM;
        }
    }
    return 0;
}

static int conf_equal(const struct raft_configuration *a,
                      const struct raft_configuration *b)
{
    if (a->n != b->n) {
        return 0;
    }
    for (unsigned i = 0; i < a->n; i++) {
        if (a->servers[i].id != b->servers[i].id ||
            a->servers[i].role != b->servers[i].role ||
            strcmp(a->servers[i].address, b->servers[i].address) != 0) {
            return 0;
        }
    }
    return 1;
}

static struct raft_guard_conf *conf_find(struct raft_guard *g, raft_index index)
{
    for (unsigned i = 0; i < RAFT_GUARD_CONFS; i++) {
        if (g->confs[i].index == index && index != 0) {
            return &g->confs[i];
        }
    }
    return NULL;
}

/* Remember @conf as the configuration of the entry at @index (@term 0: not
 * known, the entry is no longer in the log). Takes @conf over when @owned.
 * A full table forgets its lowest index other than @keep (the committed
 * configuration's, which a rollback needs). */
static void conf_record(struct raft_guard *g,
                        raft_index index,
                        raft_term term,
                        struct raft_configuration *conf,
                        int owned,
                        raft_index keep)
{
    struct raft_guard_conf *slot = conf_find(g, index);
    struct raft_configuration copy;

    if (slot != NULL && (term == 0 || slot->term == term)) {
        if (slot->term == 0) {
            slot->term = term;
        }
        goto out; /* already known */
    }
    for (unsigned i = 0; slot == NULL && i < RAFT_GUARD_CONFS; i++) {
        if (g->confs[i].index == 0) {
            slot = &g->confs[i];
        }
    }
    for (unsigned i = 0; i < RAFT_GUARD_CONFS; i++) {
        if (g->confs[i].index != keep &&
            (slot == NULL || g->confs[i].index < slot->index)) {
            slot = &g->confs[i];
        }
    }
    if (owned) {
        copy = *conf;
        raft_configuration_init(conf);
    } else if (conf_copy(conf, &copy) != 0) {
        return; /* out of memory: not remembered */
    }
    raft_configuration_close(&slot->conf);
    slot->conf = copy;
    slot->index = index;
    slot->term = term;
    return;
out:
    if (owned) {
        raft_configuration_close(conf);
        raft_configuration_init(conf);
    }
}

/* The raft's current configuration, at its index. */
static void conf_observe(struct raft_guard *g, struct raft *r)
{
    raft_index index = r->configuration_uncommitted_index != 0
                           ? r->configuration_uncommitted_index
                           : r->configuration_index;

    if (r->state == RAFT_UNAVAILABLE || index == 0) {
        return;
    }
    conf_record(g, index, log_term_of(&r->log, index), &r->configuration, 0,
                r->configuration_index);
}

/* The configuration entries at [@first, @last] now in the log. */
static void conf_record_entries(struct raft_guard *g,
                                struct raft *r,
                                raft_index first,
                                raft_index last)
{
    for (raft_index i = first; i <= last && r->state != RAFT_UNAVAILABLE; i++) {
        const struct raft_entry *e = log_get(&r->log, i);
        const struct raft_guard_conf *known = conf_find(g, i);
        struct raft_configuration c;

        if (e != NULL && e->type == RAFT_CHANGE &&
            (known == NULL || known->term != e->term) &&
            conf_decode(&e->buf, &c) == 0) {
            conf_record(g, i, e->term, &c, 1, r->configuration_index);
        }
    }
}

/* The index at which libraft 0.15 would truncate the log on this
 * AppendEntries (recvAppendEntries -> replicationAppend ->
 * checkLogMatchingProperty, deleteConflictingEntries), 0 if it would not. */
static raft_index truncation_at(const struct raft *r,
                                const struct raft_append_entries *a)
{
    if (r->state == RAFT_UNAVAILABLE || a->term < r->current_term ||
        (r->state == RAFT_LEADER && a->term == r->current_term)) {
        return 0;
    }
    if (r->last_stored == 0 && r->snapshot.put.data != NULL &&
        a->n_entries > 0) {
        return 0; /* installing a snapshot: entries ignored */
    }
    if (a->prev_log_index > 0 &&
        log_term_of(&r->log, a->prev_log_index) != a->prev_log_term) {
        return 0; /* rejected, or a shutdown */
    }
    for (unsigned j = 0; j < a->n_entries; j++) {
        raft_index index = a->prev_log_index + 1 + j;
        raft_term local = log_term_of(&r->log, index);

        if (local == 0) {
            return 0;
        }
        if (local != a->entries[j].term) {
            return index > r->commit_index ? index : 0;
        }
    }
    return 0;
}

/* Roll back to the last committed configuration before libraft does, if
 * libraft would have to find it in the log and it is no longer there. */
static void maybe_rollback(struct raft_guard *g,
                           struct raft *r,
                           const struct raft_append_entries *a)
{
    raft_index at;
    struct raft_guard_conf *slot;
    struct raft_configuration c;

    if (r->configuration_uncommitted_index == 0) {
        return;
    }
    at = truncation_at(r, a);
    if (at == 0 || r->configuration_uncommitted_index < at ||
        log_get(&r->log, r->configuration_index) != NULL) {
        return; /* no rollback, or one libraft can do */
    }
    slot = conf_find(g, r->configuration_index);
    if (slot == NULL || conf_copy(&slot->conf, &c) != 0) {
        g->n_rollback_missed++;
        YH_ERR(
            "raft %llu: configuration %llu must be rolled back to %llu, "
            "which is neither in the log nor known to the guard",
            (unsigned long long)r->id,
            (unsigned long long)r->configuration_uncommitted_index,
            (unsigned long long)r->configuration_index);
        return;
    }
    raft_configuration_close(&r->configuration);
    r->configuration = c;
    r->configuration_uncommitted_index = 0;
    g->n_rollbacks++;
    YH_INFO(
        "raft %llu: log truncated at %llu: uncommitted configuration "
        "rolled back to the committed one at %llu (%u servers), which "
        "the log no longer holds",
        (unsigned long long)r->id, (unsigned long long)at,
        (unsigned long long)slot->index, c.n);
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
    int is_install; /* a snapshot_put of the leader's snapshot */
    raft_index snap_index;
    int fixed_conf; /* @snap is a copy with its configuration fixed */
    struct raft_snapshot snap;
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
        memset(w, 0, sizeof *w);
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
    struct raft *r = g->io->data;
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
    if (done.fixed_conf) {
        raft_configuration_close(&done.snap.configuration);
    }
    /* An installed snapshot replaced the log and the configuration: no
     * configuration entry is uncommitted any more (libraft 0.15 keeps the
     * index of one the snapshot replaced). */
    if (done.is_install && status == 0 && r->state != RAFT_UNAVAILABLE &&
        r->last_stored == done.snap_index &&
        r->configuration_uncommitted_index != 0 &&
        r->configuration_uncommitted_index <= done.snap_index) {
        YH_INFO(
            "raft %llu: snapshot %llu installed: uncommitted "
            "configuration index %llu cleared",
            (unsigned long long)r->id, (unsigned long long)done.snap_index,
            (unsigned long long)r->configuration_uncommitted_index);
        r->configuration_uncommitted_index = 0;
    }
    conf_observe(g, r);
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
    struct raft *r = io->data;
    struct guarded *w = guarded_new(io, 1);
    const struct raft_guard_conf *known;
    int rv;

    if (w == NULL) {
        return RAFT_NOMEM;
    }
    w->is_install = installing(r);
    w->snap_index = snapshot->index;
    /* Our own snapshot carries the configuration libraft had when it was
     * taken, which may be an uncommitted one: store the configuration of
     * its configuration index instead. */
    known = conf_find(w->g, snapshot->configuration_index);
    if (!w->is_install && known != NULL &&
        !conf_equal(&known->conf, &snapshot->configuration) &&
        conf_copy(&known->conf, &w->snap.configuration) == 0) {
        struct raft_configuration fixed = w->snap.configuration;

        w->snap = *snapshot;
        w->snap.configuration = fixed;
        w->fixed_conf = 1;
        w->g->n_snapshot_confs++;
        YH_INFO(
            "raft %llu: snapshot %llu stored with the configuration of "
            "index %llu (%u servers), not the uncommitted one (%u)",
            (unsigned long long)r->id, (unsigned long long)snapshot->index,
            (unsigned long long)snapshot->configuration_index, fixed.n,
            snapshot->configuration.n);
        snapshot = &w->snap;
    }
    w->inner.put.data = w;
    w->orig.put = req;
    w->cb.put = cb;
    rv =
        w->g->snapshot_put(io, trailing, &w->inner.put, snapshot, guard_put_cb);
    if (rv != 0) {
        if (w->fixed_conf) {
            raft_configuration_close(&w->snap.configuration);
        }
        free(w);
    }
    return rv;
}

/* Elections are rare and their timing is what jepsen's failover figures
 * measure: each change of role is logged with its term. */
static void note_role(const struct raft *r,
                      unsigned short state,
                      raft_term term)
{
    static const char *names[] = {"unavailable", "follower", "candidate",
                                  "leader"};

    if (r->state > RAFT_LEADER || state > RAFT_LEADER ||
        (r->state == state &&
         (state != RAFT_CANDIDATE || r->current_term == term))) {
        return;
    }
    YH_INFO("raft %llu: %s -> %s, term %llu -> %llu%s",
            (unsigned long long)r->id, names[state], names[r->state],
            (unsigned long long)term, (unsigned long long)r->current_term,
            r->state == RAFT_CANDIDATE && r->candidate_state.in_pre_vote
                ? " (pre-vote)"
                : "");
}

static void guard_tick(struct raft_io *io)
{
    struct raft_guard *g = guard_of(io);
    struct raft *r = io->data;
    unsigned short state = r->state;
    raft_term term = r->current_term;

    if (r->state == RAFT_FOLLOWER && installing(r)) {
        r->election_timer_start = io->time(io);
        g->n_held_elections++;
    }
    conf_observe(g, r);
    g->tick(io);
    note_role(r, state, term);
}

static void guard_recv(struct raft_io *io, struct raft_message *m)
{
    struct raft_guard *g = guard_of(io);
    struct raft *r = io->data;
    raft_index first;
    raft_index last;
    unsigned short state;
    raft_term term;

    if (m->type == RAFT_IO_TIMEOUT_NOW && installing(r)) {
        g->n_dropped_timeout_now++;
        YH_INFO(
            "raft %llu: TimeoutNow from %llu ignored: installing a "
            "snapshot",
            (unsigned long long)r->id, (unsigned long long)m->server_id);
        return;
    }
    if (m->type != RAFT_IO_APPEND_ENTRIES) {
        state = r->state;
        term = r->current_term;
        g->recv(io, m);
        conf_observe(g, r);
        note_role(r, state, term);
        return;
    }
    /* @m's entries belong to libraft once delivered */
    first = m->append_entries.prev_log_index + 1;
    last = m->append_entries.prev_log_index + m->append_entries.n_entries;
    conf_observe(g, r);
    maybe_rollback(g, r, &m->append_entries);
    state = r->state;
    term = r->current_term;
    g->recv(io, m);
    conf_record_entries(g, r, first, last);
    conf_observe(g, r);
    note_role(r, state, term);
}

static int guard_load(struct raft_io *io,
                      raft_term *term,
                      raft_id *voted_for,
                      struct raft_snapshot **snapshot,
                      raft_index *start_index,
                      struct raft_entry *entries[],
                      size_t *n_entries)
{
    struct raft_guard *g = guard_of(io);
    int rv;

    rv =
        g->load(io, term, voted_for, snapshot, start_index, entries, n_entries);
    g->load_conf_index = 0;
    if (rv == 0 && *snapshot != NULL) {
        g->load_conf_index = (*snapshot)->configuration_index;
        conf_record(g, g->load_conf_index, 0, &(*snapshot)->configuration, 0,
                    0);
    }
    return rv;
}

/* raft_start has restored the log and the configuration (and calls the
 * io's start next): the newest configuration entry after the snapshot's
 * may not be committed. */
static void start_conf(struct raft_guard *g, struct raft *r)
{
    raft_index first = r->log.offset + 1;
    raft_index end = r->log.offset + log_n(&r->log);
    raft_index last = 0;
    raft_index prev = 0;
    raft_index committed;
    const struct raft_entry *e;
    struct raft_configuration c;

    for (raft_index i = first; i <= end; i++) {
        e = log_get(&r->log, i);
        if (e != NULL && e->type == RAFT_CHANGE && i > g->load_conf_index) {
            prev = last;
            last = i;
        }
    }
    committed = prev != 0 ? prev : g->load_conf_index;
    if (last <= 1 || committed == 0 || r->configuration_index != last ||
        r->configuration_uncommitted_index != 0) {
        return; /* none, the bootstrap one, or nothing known before it */
    }
    if (prev != 0 && conf_find(g, prev) == NULL) {
        e = log_get(&r->log, prev);
        if (conf_decode(&e->buf, &c) != 0) {
            return;
        }
        conf_record(g, prev, e->term, &c, 1, committed);
    }
    if (conf_find(g, committed) == NULL) {
        return; /* could not keep a copy: leave libraft's view */
    }
    conf_record(g, last, log_term_of(&r->log, last), &r->configuration, 0,
                committed);
    r->configuration_index = committed;
    r->configuration_uncommitted_index = last;
    g->start_uncommitted = 1;
    YH_INFO(
        "raft %llu: configuration entry %llu loaded as uncommitted "
        "(committed: %llu)",
        (unsigned long long)r->id, (unsigned long long)last,
        (unsigned long long)committed);
}

static int guard_start(struct raft_io *io,
                       unsigned msecs,
                       raft_io_tick_cb tick,
                       raft_io_recv_cb recv)
{
    struct raft_guard *g = guard_of(io);

    start_conf(g, io->data);
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
    g->load = io->load;
    g->load_conf_index = 0;
    g->start_uncommitted = 0;
    g->tick = NULL;
    g->recv = NULL;
    g->in_done = 0;
    g->done_term = 0;
    g->n_dropped_results = 0;
    g->n_held_elections = 0;
    g->n_dropped_timeout_now = 0;
    for (unsigned i = 0; i < RAFT_GUARD_CONFS; i++) {
        g->confs[i].index = 0;
        g->confs[i].term = 0;
        raft_configuration_init(&g->confs[i].conf);
    }
    g->n_rollbacks = 0;
    g->n_rollback_missed = 0;
    g->n_snapshot_confs = 0;
    io->send = guard_send;
    io->append = guard_append;
    io->snapshot_put = guard_snapshot_put;
    io->start = guard_start;
    io->load = guard_load;
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
    for (unsigned i = 0; i < RAFT_GUARD_CONFS; i++) {
        raft_configuration_close(&g->confs[i].conf);
        raft_configuration_init(&g->confs[i].conf);
        g->confs[i].index = 0;
    }
}
