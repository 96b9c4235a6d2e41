/* cluster/guard.c on libraft's raft_fixture (deterministic network, disk
 * and time): a follower whose InstallSnapshot write is slow while its
 * leader dies. Without the guard, libraft 0.15 turns it into a candidate
 * during the write and then sends an AppendEntries result as if it were a
 * follower (reading follower_state of a candidate: the SIGSEGV in strlen
 * that jepsen found); with the guard it stays a follower until the snapshot
 * is installed, sends no such result, and the cluster goes on. The control
 * run (no guard) must show the bug, so this test can fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "cluster/guard.h"

#define N 3
#define SLOW 2 /* index of the slow follower */

struct counter
{
    uint64_t n;
};

static int c_apply(struct raft_fsm *fsm,
                   const struct raft_buffer *buf,
                   void **result)
{
    struct counter *c = fsm->data;

    (void)buf;
    c->n++;
    *result = NULL;
    return 0;
}

static int c_snapshot(struct raft_fsm *fsm,
                      struct raft_buffer *bufs[],
                      unsigned *n)
{
    struct counter *c = fsm->data;

    *bufs = raft_malloc(sizeof **bufs);
    (*bufs)[0].len = sizeof c->n;
    (*bufs)[0].base = raft_malloc(sizeof c->n);
    memcpy((*bufs)[0].base, &c->n, sizeof c->n);
    *n = 1;
    return 0;
}

static int c_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct counter *c = fsm->data;

    memcpy(&c->n, buf->base, sizeof c->n);
    raft_free(buf->base);
    return 0;
}

/* Below the guard: sees what would reach the network, and which disk
 * write's completion (made in which term) is running when it is sent. */
struct observer
{
    struct raft_io *io;
    int (*send)(struct raft_io *io,
                struct raft_io_send *req,
                const struct raft_message *message,
                raft_io_send_cb cb);
    int (*append)(struct raft_io *io,
                  struct raft_io_append *req,
                  const struct raft_entry entries[],
                  unsigned n,
                  raft_io_append_cb cb);
    int in_done;            /* an append's completion is running */
    raft_term done_term;    /* the term it was made in */
    unsigned bad_results;   /* AppendEntries results sent by a non-follower */
    unsigned stale_results; /* ... from a write made in an older term */
};

static struct observer obs[N];

static struct observer *obs_of(struct raft_io *io)
{
    for (unsigned i = 0; i < N; i++) {
        if (obs[i].io == io) {
            return &obs[i];
        }
    }
    fail();
    return NULL;
}

static int obs_send(struct raft_io *io,
                    struct raft_io_send *req,
                    const struct raft_message *m,
                    raft_io_send_cb cb)
{
    struct raft *r = io->data;
    struct observer *o = obs_of(io);

    if (m->type == RAFT_IO_APPEND_ENTRIES_RESULT &&
        (r->state != RAFT_FOLLOWER || m->server_address == NULL)) {
        /* its address is another union member's bytes: never send it */
        o->bad_results++;
        return RAFT_NOCONNECTION;
    }
    if (m->type == RAFT_IO_APPEND_ENTRIES_RESULT && o->in_done &&
        o->done_term != r->current_term) {
        o->stale_results++; /* sent anyway: what libraft 0.15 does */
    }
    return o->send(io, req, m, cb);
}

struct obs_append
{
    struct raft_io_append inner;
    struct observer *o;
    raft_term term;
    struct raft_io_append *orig;
    raft_io_append_cb cb;
};

static void obs_append_cb(struct raft_io_append *req, int status)
{
    struct obs_append w = *(struct obs_append *)req->data;

    free(req->data);
    w.o->in_done = 1;
    w.o->done_term = w.term;
    w.cb(w.orig, status);
    w.o->in_done = 0;
}

static int obs_append(struct raft_io *io,
                      struct raft_io_append *req,
                      const struct raft_entry entries[],
                      unsigned n,
                      raft_io_append_cb cb)
{
    struct raft *r = io->data;
    struct obs_append *w = malloc(sizeof *w);
    int rv;

    assert_non_null(w);
    w->inner.data = w;
    w->o = obs_of(io);
    w->term = r->current_term;
    w->orig = req;
    w->cb = cb;
    rv = w->o->append(io, &w->inner, entries, n, obs_append_cb);
    if (rv != 0) {
        free(w);
    }
    return rv;
}

static int installing(const struct raft *r)
{
    return r->snapshot.put.data != NULL &&
           r->snapshot.put.data != (const void *)r;
}

struct outcome
{
    int installed_started;       /* the slow follower began the install */
    int candidate_while_install; /* it left follower state meanwhile */
    unsigned bad_results;        /* results sent while not a follower */
    unsigned stale_results;      /* ... for a write of an older term */
    unsigned long long dropped;  /* guard: results dropped */
    unsigned long long held;     /* guard: ticks with the timer held */
    int caught_up;               /* it applied the new leader's entries */
};

static void applied(struct raft_apply *req, int status, void *result)
{
    (void)status;
    (void)result;
    free(req);
}

static void apply_one(struct raft_fixture *f, unsigned leader)
{
    struct raft_apply *req = malloc(sizeof *req);
    struct raft_buffer buf;

    buf.len = 8;
    buf.base = raft_malloc(buf.len);
    memset(buf.base, 0, buf.len);
    assert_int_equal(
        raft_apply(raft_fixture_get(f, leader), req, &buf, 1, applied), 0);
}

struct cl
{
    struct raft_fixture f;
    struct raft_fsm fsms[N];
    struct counter counters[N];
    struct raft_guard guards[N];
    int guarded;
};

static void cl_start(struct cl *c, int guarded, bool pre_vote)
{
    struct raft_configuration conf;

    memset(c, 0, sizeof *c); /* raft_fixture_initialize leaves f.n as is */
    memset(obs, 0, sizeof obs);
    c->guarded = guarded;
    assert_int_equal(raft_fixture_initialize(&c->f), 0);
    for (unsigned i = 0; i < N; i++) {
        c->fsms[i].version = 1;
        c->fsms[i].data = &c->counters[i];
        c->fsms[i].apply = c_apply;
        c->fsms[i].snapshot = c_snapshot;
        c->fsms[i].restore = c_restore;
        assert_int_equal(raft_fixture_grow(&c->f, &c->fsms[i]), 0);
    }
    assert_int_equal(raft_fixture_configuration(&c->f, N, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
    for (unsigned i = 0; i < N; i++) {
        struct raft *r = raft_fixture_get(&c->f, i);
        struct raft_io *io = &c->f.servers[i].io;

        raft_set_snapshot_threshold(r, 4);
        raft_set_snapshot_trailing(r, 1);
        raft_set_pre_vote(r, pre_vote);
        obs[i].io = io;
        obs[i].send = io->send;
        io->send = obs_send;
        obs[i].append = io->append;
        io->append = obs_append;
        if (guarded) {
            cluster_guard_install(&c->guards[i], io);
        }
    }
    assert_int_equal(raft_fixture_start(&c->f), 0);
    raft_fixture_elect(&c->f, 0);
}

/* A new entry from whoever leads now reaches server @i. */
static int cl_catch_up(struct cl *c, unsigned i)
{
    unsigned leader;

    if (!raft_fixture_step_until_has_leader(&c->f, 10000)) {
        return 0;
    }
    leader = raft_fixture_leader_index(&c->f);
    apply_one(&c->f, leader);
    return raft_fixture_step_until_applied(
        &c->f, i, raft_last_index(raft_fixture_get(&c->f, leader)), 10000);
}

static void cl_close(struct cl *c, struct outcome *out)
{
    for (unsigned i = 0; i < N; i++) {
        out->bad_results += obs[i].bad_results;
        out->stale_results += obs[i].stale_results;
        if (c->guarded) {
            out->dropped += c->guards[i].n_dropped_results;
            out->held += c->guards[i].n_held_elections;
        }
    }
    raft_fixture_close(&c->f);
    if (c->guarded) {
        for (unsigned i = 0; i < N; i++) {
            cluster_guard_remove(&c->guards[i]);
        }
    }
}

/* A follower whose InstallSnapshot write takes 3 s while its leader dies. */
static void scenario_install(int guarded, struct outcome *out)
{
    struct cl c;
    struct raft *slow;
    raft_time end;

    memset(out, 0, sizeof *out);
    cl_start(&c, guarded, true);

    /* The slow follower misses enough entries to need a snapshot. */
    for (unsigned i = 0; i < N; i++) {
        if (i != SLOW) {
            raft_fixture_disconnect(&c.f, i, SLOW);
            raft_fixture_disconnect(&c.f, SLOW, i);
        }
    }
    for (int k = 0; k < 12; k++) {
        apply_one(&c.f, 0);
    }
    assert_true(raft_fixture_step_until_applied(&c.f, 0, 13, 5000));
    assert_true(raft_fixture_step_until_applied(&c.f, 1, 13, 5000));

    /* Its disk takes 3 s per write; reconnect: the leader sends the snapshot,
     * then dies while it is being written. */
    raft_fixture_set_disk_latency(&c.f, SLOW, 3000);
    slow = raft_fixture_get(&c.f, SLOW);
    for (unsigned i = 0; i < N; i++) {
        if (i != SLOW) {
            raft_fixture_reconnect(&c.f, i, SLOW);
            raft_fixture_reconnect(&c.f, SLOW, i);
        }
    }
    end = raft_fixture_time(&c.f) + 3000;
    while (!installing(slow) && raft_fixture_time(&c.f) < end) {
        raft_fixture_step(&c.f);
    }
    out->installed_started = installing(slow);
    assert_true(out->installed_started);
    raft_fixture_kill(&c.f, 0);

    end = raft_fixture_time(&c.f) + 8000;
    while (raft_fixture_time(&c.f) < end) {
        raft_fixture_step(&c.f);
        if (installing(slow) && slow->state != RAFT_FOLLOWER) {
            out->candidate_while_install = 1;
        }
    }
    /* The survivors' leader gets a new entry to it (fast disk again). */
    raft_fixture_set_disk_latency(&c.f, SLOW, 10);
    out->caught_up = cl_catch_up(&c, SLOW);
    cl_close(&c, out);
}

/* A follower whose log write takes 8 s; meanwhile its leader dies and the
 * other follower is elected in a higher term (no pre-vote, so the vote
 * request moves the slow one to the new term at once). When the write
 * completes, libraft 0.15 answers it in the new term: to no leader (a NULL
 * address) or to the new leader, about entries the new leader never sent. */
static void scenario_term_change(int guarded, struct outcome *out)
{
    struct cl c;
    struct raft *slow;
    raft_term term;

    memset(out, 0, sizeof *out);
    cl_start(&c, guarded, false);
    slow = raft_fixture_get(&c.f, SLOW);
    term = slow->current_term;
    raft_fixture_set_disk_latency(&c.f, SLOW, 8000);
    raft_fixture_set_randomized_election_timeout(&c.f, SLOW, 20000);
    apply_one(&c.f, 0);
    assert_true(raft_fixture_step_until_applied(&c.f, 1, 2, 5000));
    raft_fixture_kill(&c.f, 0);
    assert_true(raft_fixture_step_until_term_is(&c.f, SLOW, term + 1, 5000));
    raft_fixture_step_until_elapsed(&c.f, 10000);
    raft_fixture_set_disk_latency(&c.f, SLOW, 10);
    out->caught_up = cl_catch_up(&c, SLOW);
    cl_close(&c, out);
}

static void report(const char *what, const struct outcome *o)
{
    print_message(
        "%s: candidate during install %d, results sent while not a "
        "follower %u, after a term change %u, dropped by the guard %llu, "
        "ticks held %llu, caught up %d\n",
        what, o->candidate_while_install, o->bad_results, o->stale_results,
        o->dropped, o->held, o->caught_up);
}

/* The controls run libraft 0.15 alone and must show each bug: if one stops
 * failing, libraft has changed and the guard may be removed. */
static void control_install(void **state)
{
    struct outcome o;

    (void)state;
    scenario_install(0, &o);
    report("install, libraft alone", &o);
    assert_true(o.candidate_while_install);
    assert_true(o.bad_results >= 1);
}

static void guard_install(void **state)
{
    struct outcome o;

    (void)state;
    scenario_install(1, &o);
    report("install, guarded", &o);
    assert_false(o.candidate_while_install);
    assert_int_equal(o.bad_results, 0);
    assert_true(o.held > 0);
    assert_true(o.caught_up);
}

static void control_term_change(void **state)
{
    struct outcome o;

    (void)state;
    scenario_term_change(0, &o);
    report("term change, libraft alone", &o);
    assert_true(o.bad_results + o.stale_results >= 1);
}

static void guard_term_change(void **state)
{
    struct outcome o;

    (void)state;
    scenario_term_change(1, &o);
    report("term change, guarded", &o);
    assert_int_equal(o.bad_results + o.stale_results, 0);
    assert_true(o.dropped >= 1);
    assert_true(o.caught_up);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(control_install),
        cmocka_unit_test(guard_install),
        cmocka_unit_test(control_term_change),
        cmocka_unit_test(guard_term_change),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
