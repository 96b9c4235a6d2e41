/* cluster/revote.c on libraft's raft_fixture (deterministic network and
 * time). Three servers; server 0 leads and is killed; server 1's election
 * timer fires first (1100 ms) and its pre-vote is
 * refused by server 2, which still knows the dead leader; server 2's fires
 * 200 ms later (1300 ms) and its pre-vote is what elects a leader. Each
 * scenario runs on libraft alone (a control that must show the cost) and with
 * the wrapper:
 *
 * - request lost: server 2's pre-vote request to server 1 is dropped (what
 *   a connection to a restarted peer does to the first message written to
 *   it). libraft alone waits for an election timer to fire again (server
 *   1's, ~900 ms later); resent, server 2 leads ~100 ms later.
 * - answer lost: server 1's grant is dropped instead: the same.
 * - slow answers: server 1's messages take 150 ms, longer than the resend
 *   interval, so server 2 gets every answer twice, the pre-vote grant after
 *   the real vote began: libraft must count each voter once and ignore the
 *   stale pre-vote answer; one leader, the same term everywhere, and an
 *   entry replicates.
 * - a grant ends the resends, a leadership transfer's requests are never
 *   resent (test_grant_ends_resends, test_transfer_not_resent, below).
 *
 * Times are the fixture's virtual milliseconds, not the wall clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "cluster/revote.h"

#define N 3
#define INTERVAL_MS 40

static int c_apply(struct raft_fsm *fsm,
                   const struct raft_buffer *buf,
                   void **result)
{
    (void)fsm;
    (void)buf;
    *result = NULL;
    return 0;
}

struct cl
{
    struct raft_fixture f;
    struct raft_fsm fsms[N];
    struct raft_revote revotes[N];
    int wrapped;
};

static void cl_start(struct cl *c, int wrapped)
{
    struct raft_configuration conf;

    memset(c, 0, sizeof *c);
    c->wrapped = wrapped;
    assert_int_equal(raft_fixture_initialize(&c->f), 0);
    for (unsigned i = 0; i < N; i++) {
        c->fsms[i].version = 1;
        c->fsms[i].apply = c_apply;
        assert_int_equal(raft_fixture_grow(&c->f, &c->fsms[i]), 0);
    }
    assert_int_equal(raft_fixture_configuration(&c->f, N, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
    for (unsigned i = 0; i < N; i++) {
        raft_set_pre_vote(raft_fixture_get(&c->f, i), true);
        if (wrapped) {
            cluster_revote_install(&c->revotes[i], &c->f.servers[i].io,
                                   INTERVAL_MS, NULL, NULL);
        }
    }
    assert_int_equal(raft_fixture_start(&c->f), 0);
    raft_fixture_elect(&c->f, 0);
}

static void cl_close(struct cl *c)
{
    raft_fixture_close(&c->f);
    if (c->wrapped) {
        for (unsigned i = 0; i < N; i++) {
            cluster_revote_remove(&c->revotes[i]);
        }
    }
}

static bool is_candidate(struct raft_fixture *f, void *arg)
{
    return raft_state(raft_fixture_get(f, *(unsigned *)arg)) == RAFT_CANDIDATE;
}

enum fault {
    LOSE_REQUEST, /* server 2's first pre-vote request to server 1 */
    LOSE_ANSWER,  /* server 1's first answer to it */
    SLOW_ANSWERS  /* server 1's messages take 150 ms */
};

struct outcome
{
    unsigned leader;         /* index */
    raft_time elapsed;       /* from server 2's candidacy to a leader */
    unsigned long long sent; /* resends by server 2 */
};

static void run(int wrapped, enum fault fault, struct outcome *out)
{
    struct cl c;
    unsigned one = 1;
    unsigned two = 2;
    raft_time t0;

    cl_start(&c, wrapped);
    raft_fixture_step_until_elapsed(&c.f, 300);
    raft_fixture_kill(&c.f, 0);
    /* the followers' running timers, and what they draw next */
    for (unsigned i = 1; i < N; i++) {
        unsigned ms = i == 1 ? 1100 : 1300;

        raft_fixture_set_randomized_election_timeout(&c.f, i, ms);
        raft_fixture_get(&c.f, i)->follower_state.randomized_election_timeout =
            ms;
    }
    /* server 1's round: refused by server 2, which still has a leader */
    assert_true(raft_fixture_step_until(&c.f, is_candidate, &one, 5000));
    raft_fixture_step_until_elapsed(&c.f, 35);
    assert_int_equal(raft_state(raft_fixture_get(&c.f, 2)), RAFT_FOLLOWER);
    if (fault == LOSE_REQUEST) {
        raft_fixture_saturate(&c.f, 2, 1);
    } else if (fault == LOSE_ANSWER) {
        raft_fixture_saturate(&c.f, 1, 2);
    } else {
        raft_fixture_set_network_latency(&c.f, 1, 150);
    }
    assert_true(raft_fixture_step_until(&c.f, is_candidate, &two, 5000));
    t0 = c.f.time;
    /* server 1 was candidate first, refused by server 2 */
    assert_int_equal(raft_state(raft_fixture_get(&c.f, 1)), RAFT_CANDIDATE);
    if (fault != SLOW_ANSWERS) {
        /* 15 ms to deliver the request, 15 more for the answer */
        raft_fixture_step_until_elapsed(&c.f, 35);
        raft_fixture_desaturate(&c.f, 2, 1);
        raft_fixture_desaturate(&c.f, 1, 2);
    }
    assert_true(raft_fixture_step_until_has_leader(&c.f, 10000));
    out->leader = raft_fixture_leader_index(&c.f);
    out->elapsed = c.f.time - t0;
    out->sent = wrapped ? c.revotes[2].n_resent : 0;
    print_message("%s, %s: leader %u after %llu ms, %llu resent by server 2\n",
                  wrapped ? "resent" : "libraft alone",
                  fault == LOSE_REQUEST  ? "request lost"
                  : fault == LOSE_ANSWER ? "answer lost"
                                         : "slow answers",
                  out->leader, (unsigned long long)out->elapsed, out->sent);

    /* one leader, one term, and it replicates */
    {
        struct raft *l = raft_fixture_get(&c.f, out->leader);
        unsigned other = out->leader == 1 ? 2 : 1;
        struct raft *o = raft_fixture_get(&c.f, other);
        struct raft_buffer buf;
        struct raft_apply *req = malloc(sizeof *req);

        raft_fixture_set_network_latency(&c.f, 1, 15);
        raft_fixture_step_until_elapsed(&c.f, 500);
        assert_int_equal(raft_state(l), RAFT_LEADER);
        assert_int_equal(raft_state(o), RAFT_FOLLOWER);
        assert_int_equal(o->current_term, l->current_term);
        buf.len = 8;
        buf.base = raft_malloc(8);
        memset(buf.base, 0, 8);
        assert_int_equal(raft_apply(l, req, &buf, 1, NULL), 0);
        assert_true(raft_fixture_step_until_applied(&c.f, other,
                                                    raft_last_index(l), 5000));
        free(req);
    }
    cl_close(&c);
}

/* One message of server 2's round lost (@fault): libraft alone waits for
 * an election timer to fire again; resent, server 2 leads at its next
 * tick (~100 ms: the fixture ticks every 100 ms). */
static void check_lost(enum fault fault)
{
    struct outcome alone, resent;

    run(0, fault, &alone);
    run(1, fault, &resent);
    assert_true(alone.elapsed >= 800);
    assert_int_equal(resent.leader, 2);
    assert_true(resent.elapsed <= 300);
    assert_true(resent.sent >= 1);
}

static void test_request_lost(void **state)
{
    (void)state;
    check_lost(LOSE_REQUEST);
}

static void test_answer_lost(void **state)
{
    (void)state;
    check_lost(LOSE_ANSWER);
}

static void test_slow_answers(void **state)
{
    struct outcome alone, resent;

    (void)state;
    run(0, SLOW_ANSWERS, &alone);
    run(1, SLOW_ANSWERS, &resent);
    /* duplicates change nothing: the same leader, as soon */
    assert_int_equal(resent.leader, alone.leader);
    assert_true(resent.elapsed <= alone.elapsed);
    assert_true(resent.sent >= 2); /* pre-vote and vote both resent */
}

/* Server 1's pre-vote request to server 2 is lost (and resent, lost
 * again) while server 2 still has a leader; server 2 then runs its own
 * round and server 1 grants it. From
 * then on server 1 must not resend its own request: server 2, a candidate
 * by then, would grant it, both would pass their pre-votes and split the
 * vote of the next term. One term, server 2 leads. */
static void test_grant_ends_resends(void **state)
{
    struct cl c;
    unsigned two = 2;
    raft_term term;
    unsigned long long before;

    (void)state;
    cl_start(&c, 1);
    raft_fixture_step_until_elapsed(&c.f, 300);
    term = raft_fixture_get(&c.f, 0)->current_term;
    raft_fixture_kill(&c.f, 0);
    for (unsigned i = 1; i < N; i++) {
        unsigned ms = i == 1 ? 1100 : 1300;

        raft_fixture_set_randomized_election_timeout(&c.f, i, ms);
        raft_fixture_get(&c.f, i)->follower_state.randomized_election_timeout =
            ms;
    }
    raft_fixture_saturate(&c.f, 1, 2);
    assert_true(raft_fixture_step_until(&c.f, is_candidate, &two, 5000));
    before = c.revotes[1].n_resent;
    /* server 2's request reaches server 1 (15 ms), which grants it; the
     * grant is lost too, so server 2 resends at its next tick, the same
     * instant as server 1's next tick (the fixture's ticks are aligned):
     * had server 1 resent then, each would grant the other. */
    raft_fixture_step_until_elapsed(&c.f, 20);
    raft_fixture_desaturate(&c.f, 1, 2);
    assert_true(raft_fixture_step_until_has_leader(&c.f, 5000));
    print_message(
        "leader %u in term %llu (was %llu); server 1 resent %llu "
        "before server 2's round, %llu after\n",
        raft_fixture_leader_index(&c.f),
        (unsigned long long)raft_fixture_get(&c.f,
                                             raft_fixture_leader_index(&c.f))
            ->current_term,
        (unsigned long long)term, before, c.revotes[1].n_resent - before);
    assert_true(before >= 1); /* it was insisting */
    assert_int_equal(c.revotes[1].n_resent - before, 0);
    assert_int_equal(raft_fixture_leader_index(&c.f), 2);
    assert_int_equal(raft_fixture_get(&c.f, 2)->current_term, term + 1);
    cl_close(&c);
}

/* A leadership transfer's vote requests (disrupt_leader) are not resent:
 * libraft 0.15 lets the old leader vote for the transfer target after
 * voting for someone else in the same term, so copies could elect two
 * leaders. The target's requests are lost; nothing is resent; the
 * cluster still gets a leader once the messages pass again. */
static void test_transfer_not_resent(void **state)
{
    struct cl c;
    struct raft_transfer req;

    (void)state;
    cl_start(&c, 1);
    raft_fixture_step_until_elapsed(&c.f, 300);
    raft_fixture_saturate(&c.f, 1, 0);
    raft_fixture_saturate(&c.f, 1, 2);
    assert_int_equal(raft_transfer(raft_fixture_get(&c.f, 0), &req,
                                   raft_fixture_get(&c.f, 1)->id, NULL),
                     0);
    raft_fixture_step_until_elapsed(&c.f, 500);
    assert_int_equal(raft_state(raft_fixture_get(&c.f, 1)), RAFT_CANDIDATE);
    assert_int_equal(c.revotes[1].n_resent, 0);
    raft_fixture_desaturate(&c.f, 1, 0);
    raft_fixture_desaturate(&c.f, 1, 2);
    assert_true(raft_fixture_step_until_has_leader(&c.f, 10000));
    cl_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_lost),
        cmocka_unit_test(test_answer_lost),
        cmocka_unit_test(test_slow_answers),
        cmocka_unit_test(test_grant_ends_resends),
        cmocka_unit_test(test_transfer_not_resent),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
