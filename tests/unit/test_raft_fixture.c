/* Our real fsm driven by libraft's raft_fixture (deterministic in-memory
 * network and disk) with seeded random disconnects, leader changes and low
 * snapshot thresholds: every replica ends at the same index with the same
 * digest and a byte-identical dump. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "fsm/base/mp.h"
#include "fsm/fsm.h"

#define MAX_N 7

struct replica
{
    struct fsm *fsm;
    struct raft_fixture *fx;
    unsigned i;
    char dir[64];
    struct yh_buf snap;
};

struct fixture
{
    struct raft_fixture fx;
    struct raft_fsm fsms[MAX_N];
    struct replica reps[MAX_N];
    unsigned n;
    char pub[FSM_KEY_SIZE];
    char admin_uid[FSM_ID_SIZE];
};

static int glue_apply(struct raft_fsm *rf,
                      const struct raft_buffer *buf,
                      void **result)
{
    struct replica *r = rf->data;
    struct raft *raft = raft_fixture_get(r->fx, r->i);
    struct yh_buf res = YH_BUF_INIT;
    uint64_t tag;
    int skipped;
    int rc = fsm_apply(r->fsm, raft_last_applied(raft) + 1, buf->base, buf->len,
                       &res, NULL, &tag, &skipped);

    yh_buf_release(&res);
    *result = NULL;
    return rc == 0 ? 0 : RAFT_IOERR;
}

static int glue_snapshot(struct raft_fsm *rf,
                         struct raft_buffer *bufs[],
                         unsigned *n)
{
    struct replica *r = rf->data;
    struct fsm_snap *s;
    int rc = fsm_snapshot_begin(r->fsm, &s);

    if (rc != 0) {
        return RAFT_IOERR;
    }
    yh_buf_init(&r->snap);
    rc = fsm_snapshot_encode(s, &r->snap);
    fsm_snapshot_end(s);
    if (rc != 0) {
        return RAFT_IOERR;
    }
    *bufs = malloc(sizeof **bufs);
    (*bufs)[0].base = r->snap.data;
    (*bufs)[0].len = r->snap.len;
    *n = 1;
    return 0;
}

static int glue_finalize(struct raft_fsm *rf,
                         struct raft_buffer *bufs[],
                         unsigned *n)
{
    struct replica *r = rf->data;

    free(*bufs);
    *bufs = NULL;
    *n = 0;
    yh_buf_release(&r->snap);
    return 0;
}

static int glue_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct replica *r = rf->data;
    int loaded;
    int rc = fsm_flush(r->fsm);

    if (rc == 0) {
        rc = fsm_restore(r->fsm, buf->base, buf->len, &loaded);
    }
    if (rc != 0) {
        return RAFT_CORRUPT;
    }
    raft_free(buf->base);
    return 0;
}

static void setup_n(struct fixture *f, unsigned n)
{
    struct raft_configuration conf;
    struct fsm_config cfg = {0};
    char errmsg[YH_ERRMSG_SIZE];

    memset(f, 0, sizeof *f);
    f->n = n;
    assert_int_equal(raft_fixture_initialize(&f->fx), 0);
    for (unsigned i = 0; i < n; i++) {
        struct replica *r = &f->reps[i];
        r->fx = &f->fx;
        r->i = i;
        snprintf(r->dir, sizeof r->dir, "/tmp/yh-fx-XXXXXX");
        assert_non_null(mkdtemp(r->dir));
        assert_int_equal(fsm_open(&r->fsm, r->dir, &cfg, errmsg), 0);
        f->fsms[i].version = 2;
        f->fsms[i].data = r;
        f->fsms[i].apply = glue_apply;
        f->fsms[i].snapshot = glue_snapshot;
        f->fsms[i].snapshot_finalize = glue_finalize;
        f->fsms[i].restore = glue_restore;
        assert_int_equal(raft_fixture_grow(&f->fx, &f->fsms[i]), 0);
        raft_set_snapshot_threshold(raft_fixture_get(&f->fx, i), 64);
        raft_set_snapshot_trailing(raft_fixture_get(&f->fx, i), 16);
    }
    raft_configuration_init(&conf);
    assert_int_equal(raft_fixture_configuration(&f->fx, n, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&f->fx, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&f->fx), 0);
}

static void teardown_n(struct fixture *f)
{
    char cmd[128];

    raft_fixture_close(&f->fx);
    for (unsigned i = 0; i < f->n; i++) {
        fsm_close(f->reps[i].fsm);
        snprintf(cmd, sizeof cmd, "rm -rf %s", f->reps[i].dir);
        assert_int_equal(system(cmd), 0);
    }
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    (void)status;
    (void)result;
    free(req);
}

/* Propose @env on the current leader (if any). */
static void propose(struct fixture *f, struct yh_buf *env)
{
    unsigned l = raft_fixture_leader_index(&f->fx);
    struct raft_apply *req;
    struct raft_buffer buf;

    if (l == f->n) {
        return;
    }
    req = malloc(sizeof *req);
    buf.base = raft_malloc(env->len);
    memcpy(buf.base, env->data, env->len);
    buf.len = env->len;
    if (raft_apply(raft_fixture_get(&f->fx, l), req, &buf, 1, apply_cb) != 0) {
        raft_free(buf.base);
        free(req);
    }
}

static void modify_env(struct fixture *f, unsigned k, struct yh_buf *env)
{
    struct yh_buf raw = YH_BUF_INIT;
    struct yh_buf res = YH_BUF_INIT;
    struct fsm_actor actor;
    msgpack_packer pk;
    msgpack_unpacked up;
    char remark[32];
    unsigned l = raft_fixture_leader_index(&f->fx);

    memset(&actor, 0, sizeof actor);
    snprintf(actor.user_id, sizeof actor.user_id, "%s", f->admin_uid);
    actor.admin = 1;
    snprintf(remark, sizeof remark, "r%u", k);
    msgpack_packer_init(&pk, &raw, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 2);
    yh_mp_pack_kv_str(&pk, "ResourceID", f->admin_uid);
    yh_mp_pack_kv_str(&pk, "Remark", remark);
    msgpack_unpacked_init(&up);
    assert_int_equal(
        msgpack_unpack_next(&up, (const char *)raw.data, raw.len, NULL),
        MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(
        fsm_cmd_prepare(f->reps[l == f->n ? 0 : l].fsm, "ModifyNameAndRemark",
                        &up.data, &actor, "127.0.0.1:1",
                        1000000000ull * (k + 1), k + 1, env, &res),
        0);
    assert_true(env->len > 0);
    msgpack_unpacked_destroy(&up);
    yh_buf_release(&raw);
    yh_buf_release(&res);
}

static char *dump(struct fsm *fsm)
{
    char *p = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&p, &n);

    assert_int_equal(fsm_dump(fsm, out), 0);
    fclose(out);
    return p;
}

static void run(unsigned n, unsigned n_cmds, unsigned seed)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct fsm_node nodes[1];
    struct yh_buf env = YH_BUF_INIT;
    struct fsm_key key;
    raft_index last;
    char d0[2 * FSM_DIGEST_SIZE + 1];
    char d[2 * FSM_DIGEST_SIZE + 1];
    char *dump0;

    srand(seed);
    setup_n(f, n);
    assert_true(raft_fixture_step_until_has_leader(&f->fx, 10000));

    memset(nodes, 0, sizeof nodes);
    nodes[0].id = 1;
    snprintf(nodes[0].raft_addr, sizeof nodes[0].raft_addr, "1");
    snprintf(nodes[0].api_addr, sizeof nodes[0].api_addr, "127.0.0.1:1");
    snprintf(f->pub, sizeof f->pub, "fixturepub");
    assert_int_equal(
        fsm_cmd_bootstrap(f->pub, "fixturepriv", nodes, 1, 1, &env), 0);
    propose(f, &env);
    yh_buf_reset(&env);
    assert_true(raft_fixture_step_until_applied(&f->fx, n, 2, 10000));
    assert_int_equal(fsm_key_get(f->reps[0].fsm, f->pub, &key), 0);
    snprintf(f->admin_uid, sizeof f->admin_uid, "%s", key.actor.user_id);

    for (unsigned k = 0; k < n_cmds; k++) {
        int dice = rand() % 100;
        unsigned a = (unsigned)rand() % n;
        unsigned b = (unsigned)rand() % n;
        if (dice < 4 && a != b) {
            raft_fixture_disconnect(&f->fx, a, b);
            raft_fixture_disconnect(&f->fx, b, a);
        } else if (dice < 14 && a != b) {
            raft_fixture_reconnect(&f->fx, a, b);
            raft_fixture_reconnect(&f->fx, b, a);
        } else if (dice < 18 && raft_fixture_leader_index(&f->fx) < f->n) {
            raft_fixture_depose(&f->fx);
        }
        modify_env(f, k, &env);
        propose(f, &env);
        yh_buf_reset(&env);
        raft_fixture_step_n(&f->fx, 5 + (unsigned)rand() % 40);
    }
    /* Heal and converge. */
    for (unsigned a = 0; a < n; a++) {
        for (unsigned b = 0; b < n; b++) {
            if (a != b) {
                raft_fixture_reconnect(&f->fx, a, b);
            }
        }
    }
    assert_true(raft_fixture_step_until_has_leader(&f->fx, 20000));
    /* One more entry from the final leader commits everything before it. */
    modify_env(f, n_cmds, &env);
    propose(f, &env);
    yh_buf_release(&env);
    raft_fixture_step_until_elapsed(&f->fx, 2000);
    last = raft_last_index(
        raft_fixture_get(&f->fx, raft_fixture_leader_index(&f->fx)));
    assert_true(raft_fixture_step_until_applied(&f->fx, n, last, 60000));

    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(fsm_flush(f->reps[i].fsm), 0);
    }
    fsm_digest_hex(f->reps[0].fsm, d0);
    dump0 = dump(f->reps[0].fsm);
    for (unsigned i = 1; i < n; i++) {
        char *di = dump(f->reps[i].fsm);
        assert_int_equal(fsm_applied_index(f->reps[i].fsm),
                         fsm_applied_index(f->reps[0].fsm));
        fsm_digest_hex(f->reps[i].fsm, d);
        assert_string_equal(d, d0);
        assert_string_equal(di, dump0);
        free(di);
    }
    print_message("n=%u cmds=%u seed=%u: applied %llu, digest %.16s\n", n,
                  n_cmds, seed,
                  (unsigned long long)fsm_applied_index(f->reps[0].fsm), d0);
    free(dump0);
    teardown_n(f);
    free(f);
}

static void fixture_3_nodes(void **state)
{
    (void)state;
    for (unsigned seed = 1; seed <= 3; seed++) {
        run(3, 400, seed);
    }
}

static void fixture_5_nodes(void **state)
{
    (void)state;
    run(5, 400, 11);
}

static void fixture_7_nodes(void **state)
{
    (void)state;
    run(7, 300, 21);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fixture_3_nodes),
        cmocka_unit_test(fixture_5_nodes),
        cmocka_unit_test(fixture_7_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
