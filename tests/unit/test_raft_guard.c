/* cluster/guard.c on libraft's raft_fixture (deterministic network, disk
 * and time). Five scenarios, each run on libraft 0.15 alone (a control
 * that must show the bug) and guarded: a follower's InstallSnapshot write
 * is slow while its leader dies; a follower's log write completes after a
 * term change; a new leader truncates an uncommitted configuration entry
 * whose committed predecessor was compacted (libraft alone dies: run in a
 * child process); a snapshot taken while a configuration is uncommitted;
 * a restart with an uncommitted configuration entry that is then
 * truncated.
 *
 * The first: a follower whose InstallSnapshot write is slow while its
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

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "cluster/guard.h"

#define N 3    /* servers in the first two scenarios */
#define NMAX 5 /* ... in the rollback one */
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
    int (*snapshot_put)(struct raft_io *io,
                        unsigned trailing,
                        struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot,
                        raft_io_snapshot_put_cb cb);
    unsigned snaps;         /* snapshots of its own stored */
    unsigned snap_servers;  /* servers in the last one's configuration */
    int in_done;            /* an append's completion is running */
    raft_term done_term;    /* the term it was made in */
    unsigned bad_results;   /* AppendEntries results sent by a non-follower */
    unsigned stale_results; /* ... from a write made in an older term */
};

static struct observer obs[NMAX];

static struct observer *obs_of(struct raft_io *io)
{
    for (unsigned i = 0; i < NMAX; i++) {
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

static int obs_snapshot_put(struct raft_io *io,
                            unsigned trailing,
                            struct raft_io_snapshot_put *req,
                            const struct raft_snapshot *snapshot,
                            raft_io_snapshot_put_cb cb)
{
    struct observer *o = obs_of(io);

    struct raft *r = io->data;

    if (r->snapshot.put.data == r) { /* its own snapshot, not an install */
        o->snaps++;
        o->snap_servers = snapshot->configuration.n;
    }
    return o->snapshot_put(io, trailing, req, snapshot, cb);
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
    unsigned n;
    struct raft_fsm fsms[NMAX];
    struct counter counters[NMAX];
    struct raft_guard guards[NMAX];
    int guarded;
};

static void cl_start_ex(struct cl *c,
                        unsigned n,
                        int guarded,
                        bool pre_vote,
                        void (*prepare)(struct raft_fixture *f),
                        unsigned elect)
{
    struct raft_configuration conf;

    memset(c, 0, sizeof *c); /* raft_fixture_initialize leaves f.n as is */
    memset(obs, 0, sizeof obs);
    c->n = n;
    c->guarded = guarded;
    assert_int_equal(raft_fixture_initialize(&c->f), 0);
    for (unsigned i = 0; i < n; i++) {
        c->fsms[i].version = 1;
        c->fsms[i].data = &c->counters[i];
        c->fsms[i].apply = c_apply;
        c->fsms[i].snapshot = c_snapshot;
        c->fsms[i].restore = c_restore;
        assert_int_equal(raft_fixture_grow(&c->f, &c->fsms[i]), 0);
    }
    assert_int_equal(raft_fixture_configuration(&c->f, n, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
    for (unsigned i = 0; i < n; i++) {
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
        obs[i].snapshot_put = io->snapshot_put;
        io->snapshot_put = obs_snapshot_put;
        if (guarded) {
            cluster_guard_install(&c->guards[i], io);
        }
    }
    if (prepare != NULL) {
        prepare(&c->f);
    }
    assert_int_equal(raft_fixture_start(&c->f), 0);
    raft_fixture_elect(&c->f, elect);
}

static void cl_start(struct cl *c, unsigned n, int guarded, bool pre_vote)
{
    cl_start_ex(c, n, guarded, pre_vote, NULL, 0);
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
    for (unsigned i = 0; i < c->n; i++) {
        out->bad_results += obs[i].bad_results;
        out->stale_results += obs[i].stale_results;
        if (c->guarded) {
            out->dropped += c->guards[i].n_dropped_results;
            out->held += c->guards[i].n_held_elections;
        }
    }
    raft_fixture_close(&c->f);
    if (c->guarded) {
        for (unsigned i = 0; i < c->n; i++) {
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
    cl_start(&c, N, guarded, true);

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
    cl_start(&c, N, guarded, false);
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

/* --- Rolling back an uncommitted configuration (guard.c, 3.) --- */

static void changed(struct raft_change *req, int status)
{
    (void)status;
    free(req);
}

static bool all_compacted(struct raft_fixture *f, void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < NMAX; i++) {
        if (raft_fixture_get(f, i)->log.offset < 1) {
            return false;
        }
    }
    return true;
}

/* One of servers 2-4 leads (the fixture's own check wants every live
 * server to know the leader; server 1 is cut off). */
static bool new_leader(struct raft_fixture *f, void *arg)
{
    unsigned *leader = arg;

    for (unsigned i = 2; i < NMAX; i++) {
        if (raft_fixture_get(f, i)->state == RAFT_LEADER) {
            *leader = i;
            return true;
        }
    }
    return false;
}

static bool has_uncommitted(struct raft_fixture *f, void *arg)
{
    const raft_index *k = arg;

    return raft_fixture_get(f, 1)->configuration_uncommitted_index == *k;
}

struct rollback_outcome
{
    int reached;            /* the new leader's entries were about to reach 1 */
    int caught_up;          /* server 1 applied the new leader's entries */
    unsigned servers;       /* in server 1's configuration afterwards */
    raft_index uncommitted; /* its configuration_uncommitted_index */
    unsigned long long rollbacks; /* done by the guard */
    unsigned long long missed;    /* ... that it could not do */
};

/* Five servers; the bootstrap configuration (index 1) has been compacted
 * into snapshots everywhere. The leader (0) adds a spare server; only
 * server 1 gets that configuration entry, and its answer is lost. Server 0
 * dies, servers 2-4 elect a leader without server 1 and write another entry
 * at the same index. When it reaches server 1, libraft 0.15 truncates the
 * uncommitted configuration entry and rolls back to the committed one,
 * which it looks for in the log (index 1, gone). @progress (a pipe, or -1)
 * gets 'R' just before that and 'S' when server 1 survived. */
static void scenario_rollback(int guarded,
                              struct rollback_outcome *out,
                              int progress)
{
    struct cl c;
    struct raft *r1;
    struct raft_change *chg = malloc(sizeof *chg);
    struct outcome o;
    raft_index k;
    unsigned leader;

    memset(out, 0, sizeof *out);
    assert_non_null(chg);
    cl_start(&c, NMAX, guarded, true);
    r1 = raft_fixture_get(&c.f, 1);
    for (int i = 0; i < 8; i++) {
        apply_one(&c.f, 0);
    }
    for (unsigned i = 0; i < NMAX; i++) {
        assert_true(raft_fixture_step_until_applied(&c.f, i, 9, 5000));
    }
    /* entry 1 is in no log */
    assert_true(raft_fixture_step_until(&c.f, all_compacted, NULL, 5000));
    assert_int_equal(r1->configuration_index, 1);

    for (unsigned j = 2; j < NMAX; j++) {
        raft_fixture_saturate(&c.f, 0, j);
    }
    raft_fixture_saturate(&c.f, 1, 0);
    assert_int_equal(
        raft_add(raft_fixture_get(&c.f, 0), chg, NMAX + 1, "spare", changed),
        0);
    k = raft_last_index(raft_fixture_get(&c.f, 0));
    assert_true(raft_fixture_step_until(&c.f, has_uncommitted, &k, 5000));

    raft_fixture_kill(&c.f, 0);
    for (unsigned j = 2; j < NMAX; j++) {
        raft_fixture_disconnect(&c.f, 1, j);
        raft_fixture_disconnect(&c.f, j, 1);
    }
    assert_true(raft_fixture_step_until(&c.f, new_leader, &leader, 10000));
    apply_one(&c.f, leader);
    assert_true(raft_fixture_step_until_applied(&c.f, leader, k, 5000));
    assert_true(raft_fixture_get(&c.f, 1)->configuration_uncommitted_index ==
                k);

    out->reached = 1;
    if (progress >= 0 && write(progress, "R", 1) != 1) {
        _exit(3);
    }
    for (unsigned j = 2; j < NMAX; j++) {
        raft_fixture_reconnect(&c.f, 1, j);
        raft_fixture_reconnect(&c.f, j, 1);
    }
    out->caught_up = raft_fixture_step_until_applied(
        &c.f, 1, raft_last_index(raft_fixture_get(&c.f, leader)), 10000);
    if (progress >= 0 && write(progress, "S", 1) != 1) {
        _exit(3);
    }
    out->servers = r1->configuration.n;
    out->uncommitted = r1->configuration_uncommitted_index;
    if (guarded) {
        out->rollbacks = c.guards[1].n_rollbacks;
        out->missed = c.guards[1].n_rollback_missed;
    }
    memset(&o, 0, sizeof o);
    cl_close(&c, &o);
}

/* libraft 0.15 alone, in a child process: it must die at that point (if it
 * stops dying, libraft has changed and this part of the guard may go). */
static void control_rollback(void **state)
{
    struct rollback_outcome out;
    char seen[8] = {0};
    int fds[2];
    int status;
    ssize_t n;
    pid_t pid;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* die of the fault, not in cmocka's handler (it would go on with
         * the parent's remaining tests) */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        signal(SIGILL, SIG_DFL);
        close(fds[0]);
        scenario_rollback(0, &out, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    n = read(fds[0], seen, sizeof seen - 1);
    while (n > 0 && n < (ssize_t)sizeof seen - 1) {
        ssize_t m = read(fds[0], seen + n, sizeof seen - 1 - (size_t)n);

        if (m <= 0) {
            break;
        }
        n += m;
    }
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    print_message("rollback, libraft alone: progress \"%s\", %s %d\n", seen,
                  WIFSIGNALED(status) ? "signal" : "exit",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    assert_string_equal(seen, "R"); /* reached the truncation, never after */
    assert_true(WIFSIGNALED(status));
}

static void guard_rollback(void **state)
{
    struct rollback_outcome out;

    (void)state;
    scenario_rollback(1, &out, -1);
    print_message(
        "rollback, guarded: rolled back %llu (missed %llu), "
        "caught up %d, %u servers, uncommitted index %llu\n",
        out.rollbacks, out.missed, out.caught_up, out.servers,
        (unsigned long long)out.uncommitted);
    assert_true(out.reached);
    assert_int_equal(out.rollbacks, 1);
    assert_int_equal(out.missed, 0);
    assert_true(out.caught_up);
    assert_int_equal(out.servers, NMAX); /* the spare is gone again */
    assert_int_equal(out.uncommitted, 0);
}

/* Server 1 takes a snapshot while a configuration entry is uncommitted on
 * it: cut off from the leader while five entries commit, it gets them in
 * one AppendEntries with a configuration entry after them (a spare server
 * added, not committed: server 2's answers are lost); libraft 0.15 makes
 * the configuration current, then applies the five and takes a snapshot. */
struct snapconf_outcome
{
    unsigned snaps;        /* snapshots server 1 stored */
    unsigned snap_servers; /* servers in the first one's configuration */
    raft_index snap_conf_index;
    unsigned long long fixed; /* guard: snapshot configurations fixed */
};

static bool snapshot_stored(struct raft_fixture *f, void *arg)
{
    (void)f;
    (void)arg;
    return obs[1].snaps > 0;
}

static void scenario_snapshot_conf(int guarded, struct snapconf_outcome *out)
{
    struct cl c;
    struct raft_change *chg = malloc(sizeof *chg);
    struct outcome o;
    raft_index k;

    memset(out, 0, sizeof *out);
    assert_non_null(chg);
    cl_start(&c, N, guarded, true);
    /* the leader keeps the entries, so it sends them, not a snapshot */
    raft_set_snapshot_trailing(raft_fixture_get(&c.f, 0), 100);
    raft_fixture_disconnect(&c.f, 0, 1);
    for (int i = 0; i < 5; i++) {
        apply_one(&c.f, 0);
    }
    assert_true(raft_fixture_step_until_applied(&c.f, 2, 6, 5000));
    raft_fixture_saturate(&c.f, 2, 0); /* the change cannot commit soon */
    assert_int_equal(
        raft_add(raft_fixture_get(&c.f, 0), chg, N + 1, "spare", changed), 0);
    k = raft_last_index(raft_fixture_get(&c.f, 0));
    raft_fixture_reconnect(&c.f, 0, 1);
    assert_true(raft_fixture_step_until(&c.f, has_uncommitted, &k, 5000));
    assert_true(raft_fixture_step_until(&c.f, snapshot_stored, NULL, 10000));
    out->snaps = obs[1].snaps;
    out->snap_servers = obs[1].snap_servers;
    if (guarded) {
        out->fixed = c.guards[1].n_snapshot_confs;
    }
    raft_fixture_desaturate(&c.f, 2, 0);
    memset(&o, 0, sizeof o);
    cl_close(&c, &o);
}

static void control_snapshot_conf(void **state)
{
    struct snapconf_outcome out;

    (void)state;
    scenario_snapshot_conf(0, &out);
    print_message("snapshot configuration, libraft alone: %u servers\n",
                  out.snap_servers);
    assert_int_equal(out.snap_servers, N + 1); /* the uncommitted one */
}

static void guard_snapshot_conf(void **state)
{
    struct snapconf_outcome out;

    (void)state;
    scenario_snapshot_conf(1, &out);
    print_message("snapshot configuration, guarded: %u servers, fixed %llu\n",
                  out.snap_servers, out.fixed);
    assert_int_equal(out.snap_servers, N); /* the committed one */
    assert_int_equal(out.fixed, 1);
}

/* Server 0 restarts with a configuration entry (a spare server added, term
 * 1) at index 2 that never committed; servers 1 and 2 have a command of
 * term 2 there. libraft 0.15 loads the newest configuration entry as
 * committed, so when server 1 leads and its entry replaces server 0's, no
 * rollback happens: server 0 keeps a configuration its log no longer
 * holds. */
static void restart_prepare(struct raft_fixture *f)
{
    struct raft_configuration conf;
    struct raft_entry e;

    assert_int_equal(raft_fixture_configuration(f, N, &conf), 0);
    assert_int_equal(raft_configuration_add(&conf, N + 1, "spare", RAFT_SPARE),
                     0);
    memset(&e, 0, sizeof e);
    e.term = 1;
    e.type = RAFT_CHANGE;
    assert_int_equal(raft_configuration_encode(&conf, &e.buf), 0);
    raft_configuration_close(&conf);
    raft_fixture_add_entry(f, 0, &e);
    for (unsigned i = 1; i < N; i++) {
        memset(&e, 0, sizeof e);
        e.term = 2;
        e.type = RAFT_COMMAND;
        e.buf.len = 8;
        e.buf.base = raft_malloc(e.buf.len);
        memset(e.buf.base, 0, e.buf.len);
        raft_fixture_add_entry(f, i, &e);
    }
    for (unsigned i = 0; i < N; i++) {
        raft_fixture_set_term(f, i, 2);
    }
}

struct restart_outcome
{
    raft_index conf_index;  /* server 0's, once server 1 leads */
    int marked;             /* guard: its entry 2 loaded as uncommitted */
    unsigned servers_after; /* in its configuration once server 1 leads */
    int caught_up;
};

static void scenario_restart(int guarded, struct restart_outcome *out)
{
    struct cl c;
    struct raft *r0;
    struct outcome o;

    memset(out, 0, sizeof *out);
    cl_start_ex(&c, N, guarded, true, restart_prepare, 1);
    r0 = raft_fixture_get(&c.f, 0);
    out->conf_index = r0->configuration_index;
    if (guarded) {
        out->marked = c.guards[0].start_uncommitted;
    }
    out->caught_up = cl_catch_up(&c, 0);
    out->servers_after = r0->configuration.n;
    memset(&o, 0, sizeof o);
    cl_close(&c, &o);
}

static void control_restart(void **state)
{
    struct restart_outcome out;

    (void)state;
    scenario_restart(0, &out);
    print_message(
        "restart, libraft alone: configuration index %llu, %u "
        "servers after the truncation\n",
        (unsigned long long)out.conf_index, out.servers_after);
    assert_int_equal(out.conf_index, 2);
    assert_int_equal(out.servers_after, N + 1); /* kept: in no log */
}

static void guard_restart(void **state)
{
    struct restart_outcome out;

    (void)state;
    scenario_restart(1, &out);
    print_message(
        "restart, guarded: marked uncommitted %d, configuration "
        "index %llu, %u servers after the truncation, caught up "
        "%d\n",
        out.marked, (unsigned long long)out.conf_index, out.servers_after,
        out.caught_up);
    assert_true(out.marked);
    assert_int_equal(out.conf_index, 1);
    assert_int_equal(out.servers_after, N); /* rolled back */
    assert_true(out.caught_up);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(control_install),
        cmocka_unit_test(guard_install),
        cmocka_unit_test(control_term_change),
        cmocka_unit_test(guard_term_change),
        cmocka_unit_test(control_rollback),
        cmocka_unit_test(guard_rollback),
        cmocka_unit_test(control_snapshot_conf),
        cmocka_unit_test(guard_snapshot_conf),
        cmocka_unit_test(control_restart),
        cmocka_unit_test(guard_restart),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
