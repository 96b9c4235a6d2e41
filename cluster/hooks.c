/* Wrappers around raft_uv's raft_io methods that work around libraft
 * 0.15 behaviours which cost seconds of availability (jepsen findings).
 *
 * 1. recv: an InstallSnapshot that reaches a follower while it is taking
 *    (or installing) a snapshot of its own is dropped by libraft without an
 *    answer ("the leader will eventually retry"), and the leader, whose
 *    progress for that follower is in snapshot mode, retries only after
 *    install_snapshot_timeout (libraft default 30 s, ours 8 s): the follower
 *    makes no progress meanwhile and is useless for the next majority. Here
 *    such a message is held instead and handed to libraft as soon as the
 *    local snapshot is done (cluster__hooks_poll, every loop turn), so the
 *    follower installs the leader's snapshot a few milliseconds later. The
 *    message is delivered unchanged and later than it arrived, which the
 *    protocol allows (a stale term is rejected by libraft as usual, a
 *    snapshot older than ours is a no-op). Only the newest such message is
 *    kept.
 *
 * 2. random: libraft's only use of io->random is the election timer, drawn
 *    in [T, 2T). With pre-vote, a follower still rejects every (pre-)vote
 *    while it has a leader, that is until its own randomized timer fires;
 *    so the first follower to time out after the leader died is refused by
 *    the other one, and tries again only one more randomized timeout later:
 *    up to 2 x 2T = 2.4 s at T = 600 ms before a new leader (jepsen
 *    isolate-leader runs). The draw is narrowed to [T, T + T/3): every
 *    follower still waits at least T without a heartbeat (no earlier
 *    elections than before), the refused first candidate retries sooner,
 *    and the window still spreads candidates over 2-3 ticks against split
 *    votes (rare with pre-vote: both candidates would have to start within
 *    one message delay of each other).
 *
 * 3. recv, again: libraft 0.15 refuses a (pre-)vote while the follower
 *    knows a leader, however long that leader has been silent, which makes
 *    the first candidate after a leader failure lose its first round (the
 *    other follower's own timer has not fired yet) and wait a whole election
 *    timeout to try again. The Raft dissertation (4.2.3) only asks a server
 *    to ignore a vote request "within the minimum election timeout of
 *    hearing from a current leader": so when a RequestVote reaches a
 *    follower that has heard nothing from its leader for at least T, the
 *    follower forgets that leader first (as libraft itself does when its
 *    own timer fires) and libraft then judges the request on terms and logs
 *    as usual. A leader that is alive keeps its followers' timers fresh
 *    with heartbeats, so it is never disrupted by this.
 *
 * 4. recv also notes when each peer was last heard from, for
 *    cluster__quorum_contact(): a leader that has heard from no majority
 *    for an election timeout stops holding clients (submit.c, node.c).
 *
 * 5. start: libraft asks raft_uv for a tick every heartbeat timeout (100
 *    ms) and checks its timers only on ticks, so a "randomized" election
 *    timeout of 600-800 ms fires on one of two or three ticks. Nodes
 *    started together (a cluster brought up at once, every jepsen run) have
 *    ticks a few milliseconds apart for their whole life: when the leader
 *    fails, the two followers often fire on the same tick, both become
 *    candidates before either hears the other, and the votes split (one
 *    more election timeout; twice in a row made the 3.4 s pause-leader
 *    failover of session 7). The tick is asked for every TICK_MS instead:
 *    every timer libraft 0.15 keeps is a comparison of io->time with a
 *    duration (election, heartbeat per follower, install_snapshot_timeout,
 *    promotion rounds, transfers), so a finer tick changes no duration,
 *    only how late each is noticed: at most TICK_MS. A tick of a follower
 *    is one comparison; the leader's walks its followers' progress. */
#include "cluster_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"

YH_LOG_MODULE("cluster");

#define TICK_MS 10u /* 5. */

static struct cluster *io_cluster(struct raft_io *io)
{
    struct raft *r = io->data;

    return r->data;
}

static int snapshot_busy(const struct raft *r)
{
    return r->snapshot.pending.term != 0 || r->snapshot.put.data != NULL;
}

static void held_free(struct cluster *c)
{
    if (c->held_valid) {
        raft_configuration_close(&c->held.install_snapshot.conf);
        raft_free(c->held.install_snapshot.data.base);
        c->held_valid = 0;
    }
}

static void note_contact(struct cluster *c, raft_id id, uint64_t now)
{
    unsigned n = sizeof c->contact / sizeof c->contact[0];
    unsigned oldest = 0;

    for (unsigned i = 0; i < n; i++) {
        if (c->contact[i].id == id || c->contact[i].id == 0) {
            c->contact[i].id = id;
            c->contact[i].ms = now;
            return;
        }
        if (c->contact[i].ms < c->contact[oldest].ms) {
            oldest = i;
        }
    }
    c->contact[oldest].id = id;
    c->contact[oldest].ms = now;
}

int cluster__quorum_contact(struct cluster *c, uint64_t window_ms)
{
    struct raft *r = &c->raft;
    uint64_t now = uv_now(c->loop);
    unsigned n = sizeof c->contact / sizeof c->contact[0];
    unsigned voters = 0;
    unsigned heard = 0;

    if (r->state != RAFT_LEADER) {
        return 1;
    }
    if (c->contact_term != r->current_term) {
        c->contact_term = r->current_term;
        c->contact_since = now;
        c->contact_lost = 0;
    }
    if (now - c->contact_since < window_ms) {
        return 1;
    }
    for (unsigned i = 0; i < r->configuration.n; i++) {
        const struct raft_server *sv = &r->configuration.servers[i];
        if (sv->role != RAFT_VOTER) {
            continue;
        }
        voters++;
        if (sv->id == r->id) {
            heard++;
            continue;
        }
        for (unsigned j = 0; j < n; j++) {
            if (c->contact[j].id == sv->id) {
                heard += now - c->contact[j].ms < window_ms;
                break;
            }
        }
    }
    if (2 * heard > voters) {
        c->contact_lost = 0;
        return 1;
    }
    if (!c->contact_lost) {
        c->contact_lost = 1;
        YH_WARN("n%" PRIu64
                " leader in term %llu heard from %u of %u voters "
                "in the last %llu ms: refusing requests until a majority "
                "answers or libraft steps down",
                c->cfg.id, (unsigned long long)r->current_term, heard, voters,
                (unsigned long long)window_ms);
    }
    return 0;
}

static void hook_recv(struct raft_io *io, struct raft_message *m)
{
    struct cluster *c = io_cluster(io);
    struct raft *r = &c->raft;

    note_contact(c, m->server_id, uv_now(c->loop));

    if (m->type == RAFT_IO_INSTALL_SNAPSHOT && !c->closing &&
        r->state != RAFT_UNAVAILABLE && snapshot_busy(r) &&
        strlen(m->server_address) < sizeof c->held_addr) {
        held_free(c);
        c->held = *m;
        strcpy(c->held_addr, m->server_address);
        c->held.server_address = c->held_addr;
        c->held_valid = 1;
        c->n_deferred++;
        YH_INFO("n%" PRIu64
                " InstallSnapshot from n%llu (index %llu) "
                "arrived during a local snapshot: deferred",
                c->cfg.id, (unsigned long long)m->server_id,
                (unsigned long long)m->install_snapshot.last_index);
        return;
    }
    if (m->type == RAFT_IO_REQUEST_VOTE && r->state == RAFT_FOLLOWER &&
        r->follower_state.current_leader.id != 0 &&
        r->io->time(r->io) - r->election_timer_start >= r->election_timeout) {
        YH_INFO(
            "n%" PRIu64
            " vote request from n%llu after %llu ms without "
            "a heartbeat from leader n%llu: leader forgotten",
            c->cfg.id, (unsigned long long)m->server_id,
            (unsigned long long)(r->io->time(r->io) - r->election_timer_start),
            (unsigned long long)r->follower_state.current_leader.id);
        r->follower_state.current_leader.id = 0;
    }
    c->raft_recv(io, m);
}

void cluster__hooks_poll(struct cluster *c)
{
    struct raft_message m;

    if (!c->held_valid || c->closing || snapshot_busy(&c->raft)) {
        return;
    }
    m = c->held;
    c->held_valid = 0; /* libraft owns its buffers from here */
    YH_INFO("n%" PRIu64
            " local snapshot done: delivering the deferred "
            "InstallSnapshot (index %llu)",
            c->cfg.id, (unsigned long long)m.install_snapshot.last_index);
    c->raft_recv(&c->io, &m);
}

static int hook_start(struct raft_io *io,
                      unsigned msecs,
                      raft_io_tick_cb tick,
                      raft_io_recv_cb recv)
{
    struct cluster *c = io_cluster(io);

    c->raft_recv = recv;
    return c->io_start(io, msecs < TICK_MS ? msecs : TICK_MS, tick, hook_recv);
}

static int hook_random(struct raft_io *io, int min, int max)
{
    struct cluster *c = io_cluster(io);
    int span = (max - min) / 3;

    if (span < 1) {
        return c->io_random(io, min, max);
    }
    return c->io_random(io, min, min + span);
}

/* 4. append: libraft 0.15's cleanup after a failed log write (disk full,
 *    I/O error) is broken: under jepsen's disk-full nemesis a leader whose
 *    segment write failed died in free() ("munmap_chunk(): invalid
 *    pointer") inside that cleanup (upstream canonical/raft fixed this path
 *    later: PRs 466 and 483). A node that cannot write its log cannot take
 *    part anyway: the append's result is checked here first, and a failure
 *    stops the process cleanly (exit 70, as for a failed state commit); on
 *    restart raft replays what its log holds and catches up from the
 *    leader. A successful append goes to libraft unchanged. */
struct hooked_append
{
    struct raft_io_append inner; /* handed to raft_uv */
    struct raft_io_append *orig; /* libraft's request */
    raft_io_append_cb orig_cb;   /* libraft's callback */
    struct cluster *c;
};

static void hook_append_cb(struct raft_io_append *req, int status)
{
    struct hooked_append *h = req->data;
    struct raft_io_append *orig = h->orig;
    raft_io_append_cb cb = h->orig_cb;
    struct cluster *c = h->c;

    free(h);
    if (status != 0 && !c->closing) {
        YH_ERR("n%" PRIu64
               " writing the raft log failed: %s; stopping (a "
               "restart replays the log and catches up)",
               c->cfg.id, raft_strerror(status));
        cluster__stop_now(); /* exits 70 */
    }
    cb(orig, status);
}

static int hook_append(struct raft_io *io,
                       struct raft_io_append *req,
                       const struct raft_entry entries[],
                       unsigned n,
                       raft_io_append_cb cb)
{
    struct cluster *c = io_cluster(io);
    struct hooked_append *h = malloc(sizeof *h);
    int rv;

    if (h == NULL) {
        return RAFT_NOMEM;
    }
    h->inner.data = h;
    h->orig = req;
    h->orig_cb = cb;
    h->c = c;
    rv = c->io_append(io, &h->inner, entries, n, hook_append_cb);
    if (rv != 0) {
        free(h);
    }
    return rv;
}

void cluster__hooks_install(struct cluster *c)
{
    c->io_start = c->io.start;
    c->io.start = hook_start;
    c->io_random = c->io.random;
    c->io.random = hook_random;
    c->io_append = c->io.append;
    c->io.append = hook_append;
}

void cluster__hooks_close(struct cluster *c)
{
    held_free(c);
}
