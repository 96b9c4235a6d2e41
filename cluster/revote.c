/* Vote requests resent until answered.
 *
 * libraft 0.15 sends a candidate's (pre-)vote requests once per election
 * round: a request or its answer that is lost costs a whole randomized
 * election timeout (600-800 ms) before the candidate tries again, while
 * the Raft paper has servers "retry RPCs if they do not receive a response
 * in a timely manner" (5.1). Losing one is not rare here. raft_uv's
 * outgoing connections only write, so a connection to a peer that was
 * killed and restarted still looks open: the first message written to it
 * is accepted by the kernel and vanishes (the dead socket answers with a
 * reset), the second fails and only then does raft_uv reconnect.
 * Followers do not talk to each other, so such a connection is the one
 * that carries the next election's votes: in the session-7 jepsen matrix
 * 4 of 17 kill-leader failovers took ~1.5 s instead of ~0.75 s, each one
 * a candidate whose grant (or request) went into a connection to a node
 * restarted earlier in the run. The network can lose them too (jepsen's
 * loss and delay nemeses).
 *
 * So this wrapper remembers the last RequestVote libraft sent to each
 * voter, and while the raft is still a candidate in that round (same
 * phase, same term) and that voter has not answered it, sends it again
 * every interval_ms (at most RAFT_REVOTE_MAX_RESENDS times). Raft
 * tolerates duplicated messages: a voter judges a repeated request as the
 * first (it has already voted for this candidate in this term, or a
 * pre-vote binds nothing), and libraft counts a voter's grant once
 * (electionTally marks a voter's slot). An answer ends the resends to that
 * voter (a pre-vote refusal too, even one from a voter that still knew a
 * leader and might grant a little later: libraft's own retry, or the other
 * node's round, settles that as before; a real-vote refusal from a voter
 * with an older term does not count, libraft ignores it too). Granting
 * another candidate's (pre-)vote ends all of them: a request resent to a
 * peer that has become a candidate meanwhile would be granted too, both
 * would pass their pre-votes and split the real vote (the race that
 * pre-vote otherwise leaves to one message delay; a resend crossing the
 * other candidate's first request in flight still can, once in ~40 ms /
 * one message delay). Leadership transfers are left alone (revote_send).
 * Polled from the io's ticks and, in yunhand, from a timer the wrapper
 * asks for (wake). */
#include "revote.h"

#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"

YH_LOG_MODULE("cluster");

static struct raft_revote *revotes;

static struct raft_revote *revote_of(struct raft_io *io)
{
    struct raft_revote *v = revotes;

    while (v != NULL && v->io != io) {
        v = v->next;
    }
    return v;
}

/* Is @args the request of the round the raft is in now? */
static int current_round(const struct raft *r,
                         const struct raft_request_vote *args)
{
    if (r->state != RAFT_CANDIDATE ||
        args->pre_vote != r->candidate_state.in_pre_vote) {
        return 0;
    }
    /* a pre-vote request names the term the candidate would take */
    return args->term == r->current_term + (args->pre_vote ? 1 : 0);
}

static struct raft_revote_peer *peer_slot(struct raft_revote *v, raft_id id)
{
    struct raft_revote_peer *free_slot = NULL;

    for (unsigned i = 0; i < RAFT_REVOTE_PEERS; i++) {
        if (v->peers[i].id == id) {
            return &v->peers[i];
        }
        if (free_slot == NULL &&
            (v->peers[i].id == 0 || !v->peers[i].waiting)) {
            free_slot = &v->peers[i];
        }
    }
    return free_slot;
}

static void resend_cb(struct raft_io_send *req, int status)
{
    (void)status; /* a failed one is resent at the next interval */
    free(req);
}

static void wake(struct raft_revote *v)
{
    if (v->wake != NULL) {
        v->wake(v->wake_arg, v->interval_ms);
    }
}

static int revote_send(struct raft_io *io,
                       struct raft_io_send *req,
                       const struct raft_message *m,
                       raft_io_send_cb cb)
{
    struct raft_revote *v = revote_of(io);
    struct raft_revote_peer *p;
    int rv = v->send(io, req, m, cb);

    if (m->type == RAFT_IO_REQUEST_VOTE_RESULT &&
        m->request_vote_result.vote_granted) {
        /* We back another candidate: insisting on our own round could only
         * make both pass their pre-votes and split the real vote. */
        for (unsigned i = 0; i < RAFT_REVOTE_PEERS; i++) {
            v->peers[i].waiting = 0;
        }
        return rv;
    }
    /* A leadership transfer's request (disrupt_leader) is never resent:
     * libraft 0.15 lets the old leader vote for the transfer target even
     * after voting for another candidate in that term (electionVote's
     * is_transferee), so every extra copy is one more chance of two
     * leaders in a term; a failed transfer simply times out. */
    if (m->type != RAFT_IO_REQUEST_VOTE || m->request_vote.disrupt_leader ||
        m->server_address == NULL ||
        strlen(m->server_address) >= RAFT_REVOTE_ADDRESS) {
        return rv;
    }
    p = peer_slot(v, m->server_id);
    if (p == NULL) {
        return rv; /* more voters than slots: they get libraft's one try */
    }
    p->id = m->server_id;
    strcpy(p->address, m->server_address);
    p->args = m->request_vote;
    p->sent_at = io->time(io);
    p->n_sent = 1;
    p->waiting = 1;
    wake(v);
    return rv;
}

/* Does @res answer the request @p waits on? */
static int answers(const struct raft_revote_peer *p,
                   const struct raft_request_vote_result *res)
{
    if (p->args.pre_vote) {
        /* a pre-vote answer carries the request's term */
        return res->pre_vote == raft_tribool_true && res->term == p->args.term;
    }
    return res->pre_vote != raft_tribool_true && res->term >= p->args.term;
}

static void revote_recv(struct raft_io *io, struct raft_message *m)
{
    struct raft_revote *v = revote_of(io);
    struct raft *r = io->data;

    if (m->type == RAFT_IO_REQUEST_VOTE_RESULT) {
        for (unsigned i = 0; i < RAFT_REVOTE_PEERS; i++) {
            struct raft_revote_peer *p = &v->peers[i];

            if (p->id != m->server_id || !p->waiting ||
                !answers(p, &m->request_vote_result)) {
                continue;
            }
            p->waiting = 0;
            if (p->n_sent > 1) {
                v->n_answered++;
                YH_INFO(
                    "raft %llu: n%llu answered the %svote request of "
                    "term %llu after %u sends (%s)",
                    (unsigned long long)r->id, (unsigned long long)p->id,
                    p->args.pre_vote ? "pre-" : "",
                    (unsigned long long)p->args.term, p->n_sent,
                    m->request_vote_result.vote_granted ? "granted"
                                                        : "refused");
            }
        }
    }
    v->recv(io, m);
}

int cluster_revote_poll(struct raft_revote *v)
{
    struct raft *r = v->io->data;
    raft_time now = v->io->time(v->io);
    int next = -1;

    for (unsigned i = 0; i < RAFT_REVOTE_PEERS; i++) {
        struct raft_revote_peer *p = &v->peers[i];
        struct raft_io_send *req;
        struct raft_message m;
        raft_time due;

        if (p->id == 0 || !p->waiting) {
            continue;
        }
        if (!current_round(r, &p->args) ||
            p->n_sent > RAFT_REVOTE_MAX_RESENDS) {
            p->waiting = 0;
            continue;
        }
        due = p->sent_at + v->interval_ms;
        if (now < due) {
            if (next < 0 || (int)(due - now) < next) {
                next = (int)(due - now);
            }
            continue;
        }
        req = malloc(sizeof *req);
        if (req == NULL) {
            next = (int)v->interval_ms;
            continue;
        }
        memset(&m, 0, sizeof m);
        m.type = RAFT_IO_REQUEST_VOTE;
        m.server_id = p->id;
        m.server_address = p->address;
        m.request_vote = p->args;
        if (p->n_sent == 1) {
            YH_INFO(
                "raft %llu: no answer from n%llu to the %svote request of "
                "term %llu after %llu ms: resending",
                (unsigned long long)r->id, (unsigned long long)p->id,
                p->args.pre_vote ? "pre-" : "",
                (unsigned long long)p->args.term,
                (unsigned long long)(now - p->sent_at));
        }
        p->sent_at = now;
        p->n_sent++;
        v->n_resent++;
        if (v->send(v->io, req, &m, resend_cb) != 0) {
            free(req); /* not queued: tried again at the next interval */
        }
        if (next < 0 || (int)v->interval_ms < next) {
            next = (int)v->interval_ms;
        }
    }
    return next;
}

static void revote_tick(struct raft_io *io)
{
    struct raft_revote *v = revote_of(io);

    v->tick(io);
    cluster_revote_poll(v);
}

static int revote_start(struct raft_io *io,
                        unsigned msecs,
                        raft_io_tick_cb tick,
                        raft_io_recv_cb recv)
{
    struct raft_revote *v = revote_of(io);

    v->tick = tick;
    v->recv = recv;
    return v->start(io, msecs, revote_tick, revote_recv);
}

void cluster_revote_install(struct raft_revote *v,
                            struct raft_io *io,
                            unsigned interval_ms,
                            void (*wake_fn)(void *arg, unsigned delay_ms),
                            void *wake_arg)
{
    memset(v, 0, sizeof *v);
    v->io = io;
    v->send = io->send;
    v->start = io->start;
    v->interval_ms = interval_ms;
    v->wake = wake_fn;
    v->wake_arg = wake_arg;
    io->send = revote_send;
    io->start = revote_start;
    v->next = revotes;
    revotes = v;
}

void cluster_revote_remove(struct raft_revote *v)
{
    struct raft_revote **p = &revotes;

    while (*p != NULL && *p != v) {
        p = &(*p)->next;
    }
    if (*p == v) {
        *p = v->next;
    }
}
