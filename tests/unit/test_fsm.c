/* Unit tests of the replicated state machine (fsm/fsm.h): apply semantics,
 * identity actions, permissions, idempotency, persistence, oplog,
 * determinism across two stores, snapshots. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <msgpack.h>
#include <xxhash.h>
#include <zstd.h>

#include "fsm/base/buf.h"
#include "fsm/base/err.h"
#include "fsm/base/log.h"
#include "fsm/base/mp.h"
#include "fsm/fsm.h"
#include "fsm/fsm_int.h"
#include "tests/lib/fsmtest.h"

#define SEC FSMTEST_SEC
#define T0 FSMTEST_T0

/* The bootstrap of these tests records two nodes. */
static void bootstrap(struct fsmtest *x)
{
    static const struct fsm_node nodes[2] = {
        {1, "127.0.0.1:7501", "127.0.0.1:7401"},
        {2, "127.0.0.1:7502", "127.0.0.1:7402"}};

    fsmtest_bootstrap_nodes(x, nodes, 2);
}

/* ---- action table ---- */

static void action_kinds(void **state)
{
    unsigned fl;
    const char *const *names = fsm_action_names();
    int n = 0;

    (void)state;
    assert_int_equal(fsm_action_kind("CreateUser", &fl), FSM_ACT_WRITE);
    assert_true(fl & FSM_ACT_F_ADMIN);
    assert_int_equal(fsm_action_kind("LoginByPassword", &fl), FSM_ACT_WRITE);
    assert_int_equal(fl, FSM_ACT_F_ANON);
    assert_int_equal(fsm_action_kind("DescribeUser", &fl), FSM_ACT_READ);
    assert_int_equal(fsm_action_kind("DescribeOperationLog", NULL),
                     FSM_ACT_READ);
    assert_int_equal(fsm_action_kind("DescribeCluster", &fl), FSM_ACT_CLUSTER);
    assert_int_equal(fl, FSM_ACT_F_ANON);
    assert_int_equal(fsm_action_kind("AddNode", &fl), FSM_ACT_CLUSTER);
    assert_int_equal(fl, FSM_ACT_F_ADMIN);
    assert_int_equal(fsm_action_kind("Watch", &fl), FSM_ACT_CLUSTER);
    assert_int_equal(fsm_action_kind("_Bootstrap", &fl), FSM_ACT_UNKNOWN);
    assert_int_equal(fsm_action_kind("NoSuchAction", &fl), FSM_ACT_UNKNOWN);
    for (; names[n] != NULL; n++) {
        assert_true(names[n][0] != '_');
    }
    assert_true(n >= 12);
}

/* ---- bootstrap, users ---- */

static void bootstrap_once(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_node nodes[4];
    struct yh_buf b = YH_BUF_INIT;
    unsigned n;

    bootstrap(x);
    assert_int_equal(fsm_nodes(x->f, nodes, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(nodes[0].id, 1);
    assert_string_equal(nodes[1].api_addr, "127.0.0.1:7402");
    /* second time: a result, nothing changes */
    assert_int_equal(
        fsm_cmd_bootstrap("otherpub", "otherpriv", nodes, 1, x->time, &b), 0);
    assert_int_equal(fsmtest_apply_raw(x, b.data, b.len), YH_EEXIST);
    yh_buf_release(&b);
    assert_int_equal(fsm_key_get(x->f, "otherpub", &(struct fsm_key){0}),
                     YH_ENOTFOUND);
    /* node commands */
    nodes[0] = (struct fsm_node){3, "127.0.0.1:7503", "127.0.0.1:7403"};
    assert_int_equal(fsm_cmd_node(&nodes[0], 0, x->time, 9, &b), 0);
    assert_int_equal(fsmtest_apply_raw(x, b.data, b.len), 0);
    assert_int_equal(x->tag, 9);
    nodes[0].id = 1;
    assert_int_equal(fsm_cmd_node(&nodes[0], 1, x->time, 0, &b), 0);
    assert_int_equal(fsmtest_apply_raw(x, b.data, b.len), 0);
    assert_int_equal(fsmtest_apply_raw(x, b.data, b.len), YH_ENOTFOUND);
    yh_buf_release(&b);
    assert_int_equal(fsm_nodes(x->f, nodes, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(nodes[0].id, 2);
    assert_int_equal(nodes[1].id, 3);
    assert_int_equal(fsm_nodes(x->f, nodes, 1, &n), 0);
    assert_int_equal(n, 1);
}

static void create_user_validation(void **state)
{
    struct fsmtest *x = *state;
    uint64_t before;

    bootstrap(x);
    before = x->index;
    assert_int_equal(fsmtest_call(x, "CreateUser", &x->admin, "PassWord",
                                  "long-enough", NULL),
                     YH_EMISSING);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "UserEmail"));
    assert_string_equal(fsmtest_res_str(x, "Action"), "CreateUserResponse");
    assert_int_equal(fsmtest_call(x, "CreateUser", &x->admin, "UserEmail",
                                  "nope", "PassWord", "long-enough", NULL),
                     YH_EINVAL);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "UserEmail"));
    assert_int_equal(
        fsmtest_call(x, "CreateUser", &x->admin, "UserEmail", "a@b.io", NULL),
        YH_EMISSING);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "PassWord"));
    assert_int_equal(fsmtest_call(x, "CreateUser", &x->admin, "UserEmail",
                                  "a@b.io", "PassWord", "short", NULL),
                     YH_EINVAL);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "PassWord"));
    assert_int_equal(
        fsmtest_call(
            x, "CreateUser", &x->admin, "UserEmail", "a@b.io", "PassWord",
            "long-enough", "Name",
            "01234567890123456789012345678901234567890123456789012345678901"
            "234",
            NULL),
        YH_EINVAL);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "Name"));
    /* none of these were proposed */
    assert_int_equal(x->index, before);
    assert_int_equal(fsm_applied_index(x->f), before);

    assert_int_equal(fsmtest_call(x, "CreateUser", &x->admin, "UserEmail",
                                  "Alice@Example.com", "PassWord",
                                  "long-enough", "Name", "Alice", NULL),
                     0);
    assert_string_equal(fsmtest_res_str(x, "UserID"), "uid-00000001");
    assert_string_equal(fsmtest_res_str(x, "Action"), "CreateUserResponse");
    assert_null(yh_mp_get(&x->res.data, "PassWord"));
    /* unique email, case-insensitively: rejected at apply */
    assert_int_equal(
        fsmtest_call(x, "CreateUser", &x->admin, "UserEmail",
                     "alice@example.COM", "PassWord", "long-enough", NULL),
        YH_EEXIST);
    assert_true(x->proposed);
    assert_int_equal(
        fsmtest_call(x, "CreateUser", &x->admin, "UserEmail", "bob@example.com",
                     "PassWord", "long-enough", NULL),
        0);
    assert_string_equal(fsmtest_res_str(x, "UserID"), "uid-00000002");
    /* the password never enters the log */
    assert_null(memmem(x->env.data, x->env.len, "long-enough", 11));
    assert_null(yh_mp_get(&x->res.data, "PwHash"));
}

static void describe_user(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor alice, bob;
    char aid[FSM_ID_SIZE], bid[FSM_ID_SIZE];
    const msgpack_object *infos;
    char email[32];

    bootstrap(x);
    fsmtest_make_tenant(x, "alice@x.io", &alice, aid);
    fsmtest_make_tenant(x, "bob@x.io", &bob, bid);
    for (int i = 0; i < 23; i++) {
        snprintf(email, sizeof email, "user%d@x.io", i);
        assert_int_equal(fsmtest_call(x, "CreateUser", &x->admin, "UserEmail",
                                      email, "PassWord", "long-enough", NULL),
                         0);
    }
    /* admin: everyone (25 + admin), default page of 20 */
    assert_int_equal(fsmtest_call(x, "DescribeUser", &x->admin, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 26);
    infos = yh_mp_get(&x->res.data, "Infos");
    assert_int_equal(infos->via.array.size, 20);
    assert_true(yh_mp_eq(yh_mp_get(&infos->via.array.ptr[0], "UserID"),
                         "uid-00000001"));
    assert_null(yh_mp_get(&infos->via.array.ptr[0], "PwHash"));
    assert_int_equal(fsmtest_call(x, "DescribeUser", &x->admin, "Offset", "20",
                                  "Limit", "100", NULL),
                     0);
    assert_int_equal(yh_mp_get(&x->res.data, "Infos")->via.array.size, 6);
    assert_int_equal(
        fsmtest_call(x, "DescribeUser", &x->admin, "Limit", "101", NULL),
        YH_EINVAL);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "Limit"));
    assert_int_equal(
        fsmtest_call(x, "DescribeUser", &x->admin, "Offset", "-1", NULL),
        YH_EINVAL);
    /* UCloud list convention and filtering */
    assert_int_equal(
        fsmtest_call(x, "DescribeUser", &x->admin, "UserIDs.0", bid,
                     "UserIDs.1", aid, "UserIDs.2", "uid-99999999", NULL),
        0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
    infos = yh_mp_get(&x->res.data, "Infos");
    assert_true(yh_mp_eq(yh_mp_get(&infos->via.array.ptr[0], "UserID"), aid));
    assert_true(yh_mp_eq(yh_mp_get(&infos->via.array.ptr[0], "UserEmail"),
                         "alice@x.io"));
    assert_true(
        yh_mp_eq(yh_mp_get(&infos->via.array.ptr[0], "State"), "Normal"));
    /* tenant isolation: alice sees only herself */
    assert_int_equal(fsmtest_call(x, "DescribeUser", &alice, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_int_equal(
        fsmtest_call(x, "DescribeUser", &alice, "UserIDs.0", bid, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    /* msgpack array form */
    {
        struct yh_buf b = YH_BUF_INIT;
        msgpack_packer pk;
        msgpack_unpacked u;
        size_t off = 0;
        msgpack_packer_init(&pk, &b, yh_buf_msgpack_write);
        msgpack_pack_map(&pk, 1);
        yh_mp_pack_str(&pk, "UserIDs");
        msgpack_pack_array(&pk, 2);
        yh_mp_pack_str(&pk, aid);
        yh_mp_pack_str(&pk, bid);
        msgpack_unpacked_init(&u);
        msgpack_unpack_next(&u, (const char *)b.data, b.len, &off);
        assert_int_equal(
            fsmtest_call_obj(x, "DescribeUser", &x->admin, &u.data), 0);
        assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
        assert_int_equal(fsmtest_call_obj(x, "DescribeUser", &bob, &u.data), 0);
        assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
        msgpack_unpacked_destroy(&u);
        yh_buf_release(&b);
    }
    /* anonymous: refused */
    assert_int_equal(fsmtest_call(x, "DescribeUser", NULL, NULL), YH_EAUTH);
    assert_int_equal(fsmtest_call(x, "NoSuchRead", &x->admin, NULL),
                     YH_EACTION);
}

static void permissions(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor alice, bob;
    char aid[FSM_ID_SIZE], bid[FSM_ID_SIZE];
    char bob_key[FSM_KEY_SIZE];
    struct yh_buf b = YH_BUF_INIT;
    msgpack_packer pk;

    bootstrap(x);
    fsmtest_make_tenant(x, "alice@x.io", &alice, aid);
    fsmtest_make_tenant(x, "bob@x.io", &bob, bid);
    /* tenant cannot CreateUser: refused before proposing */
    assert_int_equal(fsmtest_call(x, "CreateUser", &alice, "UserEmail",
                                  "c@x.io", "PassWord", "long-enough", NULL),
                     YH_EPERM);
    assert_false(x->proposed);
    assert_string_equal(fsmtest_res_str(x, "Message"),
                        "permission denied: CreateUser requires admin");
    /* ... and at apply, should an envelope claim it anyway */
    msgpack_packer_init(&pk, &b, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 6);
    yh_mp_pack_str(&pk, "v");
    msgpack_pack_uint64(&pk, 1);
    yh_mp_pack_kv_str(&pk, "type", "CreateUser");
    yh_mp_pack_str(&pk, "actor");
    msgpack_pack_map(&pk, 3);
    yh_mp_pack_kv_str(&pk, "UserID", aid);
    yh_mp_pack_kv_str(&pk, "TenantID", aid);
    yh_mp_pack_str(&pk, "Admin");
    msgpack_pack_false(&pk);
    yh_mp_pack_str(&pk, "time");
    msgpack_pack_uint64(&pk, x->time);
    yh_mp_pack_str(&pk, "args");
    msgpack_pack_map(&pk, 1);
    yh_mp_pack_kv_str(&pk, "UserEmail", "c@x.io");
    yh_mp_pack_str(&pk, "stamp");
    msgpack_pack_map(&pk, 0);
    assert_int_equal(fsmtest_apply_raw(x, b.data, b.len), YH_EPERM);
    yh_buf_release(&b);
    /* a tenant cannot modify another user */
    assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &alice,
                                  "ResourceID", bid, "Name", "pwned", NULL),
                     YH_EPERM);
    assert_true(x->proposed);
    assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &alice,
                                  "ResourceID", aid, "Name", "Alice A.", NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "ModifyNameAndRemark", &x->admin, "ResourceID", bid,
                     "Remark", "set by admin", NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "ModifyNameAndRemark", &x->admin, "ResourceID",
                     "uid-77777777", "Remark", "x", NULL),
        YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &x->admin,
                                  "ResourceID", bid, NULL),
                     YH_EMISSING);
    /* keys: only for self unless admin */
    assert_int_equal(
        fsmtest_call(x, "CreateAPIKey", &alice, "UserID", bid, NULL), YH_EPERM);
    assert_int_equal(fsmtest_call(x, "CreateAPIKey", &bob, NULL), 0);
    assert_string_equal(fsmtest_res_str(x, "UserID"), bid);
    snprintf(bob_key, sizeof bob_key, "%s", fsmtest_res_str(x, "PublicKey"));
    assert_int_equal(strlen(bob_key), 40);
    assert_int_equal(strlen(fsmtest_res_str(x, "PrivateKey")), 64);
    assert_int_equal(
        fsmtest_call(x, "DeleteAPIKey", &alice, "PublicKey", bob_key, NULL),
        YH_EPERM);
    assert_int_equal(
        fsmtest_call(x, "DeleteAPIKey", &bob, "PublicKey", bob_key, NULL), 0);
    assert_int_equal(fsm_key_get(x->f, bob_key, &(struct fsm_key){0}),
                     YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "DeleteAPIKey", &bob, "PublicKey", bob_key, NULL),
        YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "DeleteAPIKey", &bob, NULL), YH_EMISSING);
    /* the administrator's last key cannot go */
    assert_int_equal(fsmtest_call(x, "DeleteAPIKey", &x->admin, "PublicKey",
                                  "adminpub", NULL),
                     YH_ESTATE);
    /* anonymous callers are refused everything but login */
    assert_int_equal(fsmtest_call(x, "CreateAPIKey", NULL, NULL), YH_EAUTH);
    assert_int_equal(fsmtest_call(x, "_Bootstrap", &x->admin, NULL),
                     YH_EACTION);
    assert_int_equal(fsmtest_call(x, "DescribeCluster", &x->admin, NULL),
                     YH_EACTION);
    assert_int_equal(
        fsmtest_call(x, "CreateAPIKey", &alice, "RequestToken",
                     "0123456789012345678901234567890123456789012345678"
                     "901234567890123456789",
                     NULL),
        YH_EINVAL);
}

static void login(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_key key;
    char uid[FSM_ID_SIZE];
    uint64_t before;

    bootstrap(x);
    assert_int_equal(
        fsmtest_call(x, "CreateUser", &x->admin, "UserEmail", "carol@x.io",
                     "PassWord", "correct horse", NULL),
        0);
    snprintf(uid, sizeof uid, "%s", fsmtest_res_str(x, "UserID"));
    before = x->index;
    assert_int_equal(
        fsmtest_call(x, "LoginByPassword", NULL, "UserEmail", "carol@x.io",
                     "PassWord", "wrong horse", NULL),
        YH_EAUTH);
    assert_string_equal(fsmtest_res_str(x, "Message"),
                        "wrong email or password");
    assert_int_equal(
        fsmtest_call(x, "LoginByPassword", NULL, "UserEmail", "nobody@x.io",
                     "PassWord", "correct horse", NULL),
        YH_EAUTH);
    assert_int_equal(fsmtest_call(x, "LoginByPassword", NULL, "UserEmail",
                                  "carol@x.io", NULL),
                     YH_EMISSING);
    assert_int_equal(x->index, before);
    assert_int_equal(
        fsmtest_call(x, "LoginByPassword", NULL, "UserEmail", "CAROL@x.io",
                     "PassWord", "correct horse", NULL),
        0);
    assert_true(x->proposed);
    assert_string_equal(fsmtest_res_str(x, "Action"),
                        "LoginByPasswordResponse");
    assert_string_equal(fsmtest_res_str(x, "UserID"), uid);
    assert_null(memmem(x->env.data, x->env.len, "correct horse", 13));
    assert_int_equal(fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"), &key),
                     0);
    assert_string_equal(key.private_key, fsmtest_res_str(x, "PrivateKey"));
    assert_string_equal(key.actor.user_id, uid);
    assert_string_equal(key.actor.tenant_id, uid);
    assert_false(key.actor.admin);
}

static void if_revision(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor alice;
    char aid[FSM_ID_SIZE];
    char rev[32], msg[64];
    uint64_t r;

    bootstrap(x);
    fsmtest_make_tenant(x, "alice@x.io", &alice, aid);
    assert_int_equal(fsmtest_call(x, "DescribeUser", &alice, NULL), 0);
    r = (uint64_t)yh_mp_get(&yh_mp_get(&x->res.data, "Infos")->via.array.ptr[0],
                            "Revision")
            ->via.u64;
    snprintf(rev, sizeof rev, "%llu", (unsigned long long)r);
    assert_int_equal(
        fsmtest_call(x, "ModifyNameAndRemark", &alice, "ResourceID", aid,
                     "Name", "A", "IfRevision", rev, NULL),
        0);
    assert_int_equal(fsmtest_res_int(x, "Revision"), x->index);
    /* the old revision is now stale */
    assert_int_equal(
        fsmtest_call(x, "ModifyNameAndRemark", &alice, "ResourceID", aid,
                     "Name", "B", "IfRevision", rev, NULL),
        YH_ECONFLICT);
    snprintf(msg, sizeof msg, "revision mismatch: have %llu",
             (unsigned long long)(x->index - 1));
    assert_string_equal(fsmtest_res_str(x, "Message"), msg);
    assert_int_equal(fsmtest_call(x, "DescribeUser", &alice, NULL), 0);
    assert_true(yh_mp_eq(
        yh_mp_get(&yh_mp_get(&x->res.data, "Infos")->via.array.ptr[0], "Name"),
        "A"));
    assert_int_equal(
        fsmtest_call(x, "ModifyNameAndRemark", &alice, "ResourceID", aid,
                     "Name", "B", "IfRevision", "x", NULL),
        YH_EINVAL);
}

static void idempotency(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor alice;
    char aid[FSM_ID_SIZE], first[FSM_KEY_SIZE];
    struct yh_buf first_res = YH_BUF_INIT;
    char *d2;

    bootstrap(x);
    fsmtest_make_tenant(x, "alice@x.io", &alice, aid);
    assert_int_equal(
        fsmtest_call(x, "CreateAPIKey", &alice, "RequestToken", "tok-1", NULL),
        0);
    snprintf(first, sizeof first, "%s", fsmtest_res_str(x, "PublicKey"));
    yh_buf_append(&first_res, x->out.data, x->out.len);
    /* retry, same body: the first result, nothing created (its stamp had
     * another key) */
    assert_int_equal(
        fsmtest_call(x, "CreateAPIKey", &alice, "RequestToken", "tok-1", NULL),
        0);
    assert_int_equal(x->out.len, first_res.len);
    assert_memory_equal(x->out.data, first_res.data, first_res.len);
    {
        /* the retry's own stamped key was not stored */
        msgpack_unpacked u;
        size_t off = 0;
        char pub[FSM_KEY_SIZE];
        msgpack_unpacked_init(&u);
        msgpack_unpack_next(&u, (const char *)x->env.data, x->env.len, &off);
        assert_int_equal(yh_mp_strcpy(yh_mp_get(&u.data, "stamp"), "PublicKey",
                                      pub, sizeof pub),
                         0);
        assert_string_not_equal(pub, first);
        assert_int_equal(fsm_key_get(x->f, pub, &(struct fsm_key){0}),
                         YH_ENOTFOUND);
        msgpack_unpacked_destroy(&u);
    }
    /* same token, another body */
    assert_int_equal(fsmtest_call(x, "CreateAPIKey", &alice, "RequestToken",
                                  "tok-1", "UserID", aid, NULL),
                     YH_ETOKEN);
    assert_int_equal(
        fsmtest_call(x, "ModifyNameAndRemark", &alice, "RequestToken", "tok-2",
                     "ResourceID", aid, "Name", "N1", NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "ModifyNameAndRemark", &alice, "RequestToken", "tok-2",
                     "Name", "N1", "ResourceID", aid, NULL),
        0); /* map order does not matter */
    assert_int_equal(fsmtest_res_int(x, "Revision"), x->index - 1);
    /* a create retried with its token creates nothing more */
    assert_int_equal(
        fsmtest_call(x, "CreateUser", &x->admin, "UserEmail", "d@x.io",
                     "PassWord", "long-enough", "RequestToken", "cu-1", NULL),
        0);
    assert_string_equal(fsmtest_res_str(x, "UserID"), "uid-00000002");
    assert_int_equal(
        fsmtest_call(x, "CreateUser", &x->admin, "RequestToken", "cu-1",
                     "UserEmail", "d@x.io", "PassWord", "other-pass", NULL),
        0);
    assert_string_equal(fsmtest_res_str(x, "UserID"), "uid-00000002");
    assert_int_equal(fsmtest_call(x, "DescribeUser", &x->admin, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 3);
    assert_int_equal(
        fsmtest_call(x, "CreateUser", &x->admin, "RequestToken", "cu-1",
                     "UserEmail", "e@x.io", "PassWord", "long-enough", NULL),
        YH_ETOKEN);
    assert_int_equal(fsmtest_call(x, "DescribeUser", &x->admin, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 3);
    /* tokens are per user: the admin may use "tok-1" freely */
    assert_int_equal(fsmtest_call(x, "CreateAPIKey", &x->admin, "RequestToken",
                                  "tok-1", NULL),
                     0);
    assert_string_not_equal(fsmtest_res_str(x, "PublicKey"), first);

    /* after the retention (log time), the token is new again */
    x->time += 2 * x->cfg.token_ttl_ns;
    assert_int_equal(
        fsmtest_call(x, "CreateAPIKey", &alice, "RequestToken", "tok-1", NULL),
        0);
    assert_string_not_equal(fsmtest_res_str(x, "PublicKey"), first);
    assert_int_equal(fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"),
                                 &(struct fsm_key){0}),
                     0);
    /* expired tokens get purged by later applies */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(fsmtest_call(x, "DescribeUser", &alice, NULL), 0);
        assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &alice,
                                      "ResourceID", aid, "Remark", "r", NULL),
                         0);
    }
    d2 = fsmtest_dump_str(x->f);
    /* (in the tokens table; the oplog keeps every RequestToken) */
    assert_null(strstr(d2, "\"uid-00000001\\x00tok-2\""));
    assert_non_null(strstr(d2, "\"uid-00000001\\x00tok-1\""));
    free(d2);
    yh_buf_release(&first_res);
}

static void skip_and_restart(void **state)
{
    struct fsmtest *x = *state;
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE];
    struct yh_buf saved = YH_BUF_INIT;
    struct yh_buf res = YH_BUF_INIT;
    uint64_t tag = 5, idx;
    char *dump1, *dump2;
    char hex[65];
    int skipped;

    bootstrap(x);
    assert_int_equal(fsmtest_call(x, "CreateUser", &x->admin, "UserEmail",
                                  "a@x.io", "PassWord", "long-enough", NULL),
                     0);
    yh_buf_append(&saved, x->env.data, x->env.len);
    idx = x->index;
    fsm_digest(x->f, d1);
    /* re-fed entries are skipped, whatever they hold */
    assert_int_equal(
        fsm_apply(x->f, idx, saved.data, saved.len, &res, NULL, &tag, &skipped),
        0);
    assert_int_equal(skipped, 1);
    assert_int_equal(tag, 0);
    assert_int_equal(fsm_apply(x->f, 1, "junk", 4, &res, NULL, &tag, &skipped),
                     0);
    assert_int_equal(skipped, 1);
    fsm_digest(x->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    assert_int_equal(fsm_applied_index(x->f), idx);

    /* gaps in the index are fine (raft barriers, configurations) */
    x->index += 5;
    assert_int_equal(fsmtest_call(x, "CreateUser", &x->admin, "UserEmail",
                                  "b@x.io", "PassWord", "long-enough", NULL),
                     0);
    idx = x->index;
    fsm_digest(x->f, d1);
    fsm_digest_hex(x->f, hex);
    assert_int_equal(strlen(hex), 64);
    dump1 = fsmtest_dump_str(x->f);

    /* an unflushed batch is committed by close; reopen keeps it all */
    assert_int_equal(fsmtest_call(x, "CreateAPIKey", &x->admin, NULL), 0);
    idx = x->index;
    fsm_digest(x->f, d1);
    free(dump1);
    dump1 = fsmtest_dump_str(x->f);
    fsm_close(x->f);
    fsmtest_open(x);
    assert_int_equal(fsm_applied_index(x->f), idx);
    fsm_digest(x->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    dump2 = fsmtest_dump_str(x->f);
    assert_string_equal(dump1, dump2);
    assert_int_equal(
        fsm_apply(x->f, idx, saved.data, saved.len, &res, NULL, &tag, &skipped),
        0);
    assert_int_equal(skipped, 1);
    free(dump1);
    free(dump2);
    yh_buf_release(&saved);
    yh_buf_release(&res);
}

/* A local failure rolls the whole batch back and leaves the fsm usable. */
static void batch_rollback(void **state)
{
    struct fsmtest *x = *state;
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE];
    struct yh_buf b = YH_BUF_INIT, res = YH_BUF_INIT;
    struct fsm_node n = {0, "", ""};
    uint64_t committed, tag;
    char *dump1, *dump2;
    int skipped, rc = 0;

    /* a tiny map: the batch will not fit */
    fsm_close(x->f);
    fsmtest_rm_rf(x->dir);
    x->cfg.map_size = 256u << 10;
    fsmtest_open(x);
    bootstrap(x);
    assert_int_equal(fsm_flush(x->f), 0);
    assert_int_equal(fsm_flush(x->f), 0); /* no batch: no-op */
    committed = fsm_applied_index(x->f);
    fsm_digest(x->f, d1);
    dump1 = fsmtest_dump_str(x->f);
    memset(n.raft_addr, 'r', sizeof n.raft_addr - 1);
    memset(n.api_addr, 'a', sizeof n.api_addr - 1);
    for (uint64_t i = 1; i < 100000; i++) {
        n.id = i + 10;
        assert_int_equal(fsm_cmd_node(&n, 0, x->time, i, &b), 0);
        rc = fsm_apply(x->f, committed + i, b.data, b.len, &res, NULL, &tag,
                       &skipped);
        if (rc != 0) {
            break;
        }
        assert_int_equal(fsm_applied_index(x->f), committed + i);
    }
    assert_int_equal(rc, YH_EIO);
    assert_int_equal(res.len, 0);
    assert_int_equal(fsm_applied_index(x->f), committed);
    fsm_digest(x->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    dump2 = fsmtest_dump_str(x->f);
    assert_string_equal(dump1, dump2);
    /* entries reported applied were lost: refuse to apply past them */
    assert_int_equal(fsm_cmd_node(&n, 1, x->time, 0, &b), 0);
    assert_int_equal(fsm_apply(x->f, committed + 100000, b.data, b.len, &res,
                               NULL, &tag, &skipped),
                     YH_EIO);
    assert_int_equal(fsm_applied_index(x->f), committed);
    /* a restart replays them from the committed index */
    fsm_close(x->f);
    fsmtest_open(x);
    assert_int_equal(fsm_applied_index(x->f), committed);
    x->index = committed;
    assert_int_equal(fsmtest_apply_raw(x, b.data, b.len), YH_ENOTFOUND);
    free(dump1);
    free(dump2);
    yh_buf_release(&b);
    yh_buf_release(&res);
}

static void bad_envelopes(void **state)
{
    struct fsmtest *x = *state;
    static const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t deep[] = {0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91,
                                   0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91,
                                   0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91,
                                   0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0xc0};
    static const uint8_t c1[] = {0x81, 0xa1, 'v', 0xc1};
    struct yh_buf b = YH_BUF_INIT;
    msgpack_packer pk;
    uint64_t before;

    bootstrap(x);
    assert_int_equal(fsmtest_apply_raw(x, "junk", 4), YH_EPROTO);
    assert_int_equal(fsmtest_apply_raw(x, huge_array, sizeof huge_array),
                     YH_EPROTO);
    assert_int_equal(fsmtest_apply_raw(x, deep, sizeof deep), YH_EPROTO);
    assert_int_equal(fsmtest_apply_raw(x, c1, sizeof c1), YH_EPROTO);
    assert_int_equal(fsmtest_apply_raw(x, "", 0), YH_EPROTO);
    /* a valid envelope, truncated */
    assert_int_equal(fsmtest_call(x, "CreateAPIKey", &x->admin, NULL), 0);
    yh_buf_append(&b, x->env.data, x->env.len);
    assert_int_equal(fsmtest_apply_raw(x, b.data, b.len - 3), YH_EPROTO);
    /* wrong version, unknown type, missing stamp */
    yh_buf_reset(&b);
    msgpack_packer_init(&pk, &b, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 2);
    yh_mp_pack_str(&pk, "v");
    msgpack_pack_uint64(&pk, 2);
    yh_mp_pack_kv_str(&pk, "type", "CreateAPIKey");
    assert_int_equal(fsmtest_apply_raw(x, b.data, b.len), YH_EPROTO);
    assert_string_equal(fsmtest_res_str(x, "Action"), "CreateAPIKeyResponse");
    yh_buf_reset(&b);
    msgpack_pack_map(&pk, 4);
    yh_mp_pack_str(&pk, "v");
    msgpack_pack_uint64(&pk, 1);
    yh_mp_pack_kv_str(&pk, "type", "Nope");
    yh_mp_pack_str(&pk, "actor");
    msgpack_pack_map(&pk, 3);
    yh_mp_pack_kv_str(&pk, "UserID", "uid-admin");
    yh_mp_pack_kv_str(&pk, "TenantID", "");
    yh_mp_pack_str(&pk, "Admin");
    msgpack_pack_true(&pk);
    yh_mp_pack_str(&pk, "time");
    msgpack_pack_uint64(&pk, x->time);
    assert_int_equal(fsmtest_apply_raw(x, b.data, b.len), YH_EACTION);
    yh_buf_reset(&b);
    msgpack_pack_map(&pk, 4);
    yh_mp_pack_str(&pk, "v");
    msgpack_pack_uint64(&pk, 1);
    yh_mp_pack_kv_str(&pk, "type", "CreateAPIKey");
    yh_mp_pack_str(&pk, "actor");
    msgpack_pack_map(&pk, 3);
    yh_mp_pack_kv_str(&pk, "UserID", "uid-admin");
    yh_mp_pack_kv_str(&pk, "TenantID", "");
    yh_mp_pack_str(&pk, "Admin");
    msgpack_pack_true(&pk);
    yh_mp_pack_str(&pk, "time");
    msgpack_pack_uint64(&pk, x->time);
    assert_int_equal(fsmtest_apply_raw(x, b.data, b.len), YH_EPROTO);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "PublicKey"));
    /* every one of them is in the oplog */
    before = x->index;
    assert_int_equal(fsmtest_call(x, "DescribeOperationLog", &x->admin,
                                  "RetCode", "100", "Limit", "100", NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 8);
    assert_int_equal(x->index, before);
    yh_buf_release(&b);
}

struct walk
{
    uint64_t idx[64]; /* indexes seen */
    unsigned n;       /* count */
    unsigned stop_at; /* stop after this many (0 = never) */
};

static int walk_cb(void *arg, uint64_t index, const uint8_t *rec, size_t len)
{
    struct walk *w = arg;
    msgpack_unpacked u;
    size_t off = 0;
    int64_t v;

    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)rec, len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(yh_mp_int(&u.data, "Index", &v), 0);
    assert_int_equal((uint64_t)v, index);
    msgpack_unpacked_destroy(&u);
    w->idx[w->n++] = index;
    return w->stop_at != 0 && w->n >= w->stop_at;
}

static void oplog(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor alice, bob;
    char aid[FSM_ID_SIZE], bid[FSM_ID_SIZE];
    const msgpack_object *infos, *r;
    struct walk w = {{0}, 0, 0};
    char t[32];

    bootstrap(x);
    fsmtest_make_tenant(x, "alice@x.io", &alice, aid);
    fsmtest_make_tenant(x, "bob@x.io", &bob, bid);
    assert_int_equal(
        fsmtest_call(x, "ModifyNameAndRemark", &alice, "ResourceID", aid,
                     "Name", "Al", "RequestToken", "rt-1", NULL),
        0);
    /* the event is the oplog record */
    {
        msgpack_unpacked u;
        size_t off = 0;
        msgpack_unpacked_init(&u);
        assert_int_equal(msgpack_unpack_next(&u, (const char *)x->event.data,
                                             x->event.len, &off),
                         MSGPACK_UNPACK_SUCCESS);
        assert_true(
            yh_mp_eq(yh_mp_get(&u.data, "Action"), "ModifyNameAndRemark"));
        assert_true(yh_mp_eq(yh_mp_get(&u.data, "UserID"), aid));
        assert_true(yh_mp_eq(yh_mp_get(&u.data, "TenantID"), aid));
        assert_true(yh_mp_eq(yh_mp_get(&u.data, "ResourceID"), aid));
        assert_true(yh_mp_eq(yh_mp_get(&u.data, "RequestToken"), "rt-1"));
        assert_true(yh_mp_eq(yh_mp_get(&u.data, "Source"), "127.0.0.1:5555"));
        assert_int_equal(yh_mp_get(&u.data, "Time")->via.u64, x->time / SEC);
        msgpack_unpacked_destroy(&u);
    }
    assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &bob, "ResourceID",
                                  aid, "Name", "x", NULL),
                     YH_EPERM);
    assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &bob, "ResourceID",
                                  bid, "Name", "Bobby", NULL),
                     0);

    /* admin: everything, newest first */
    assert_int_equal(fsmtest_call(x, "DescribeOperationLog", &x->admin, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), (int64_t)x->index);
    infos = yh_mp_get(&x->res.data, "Infos");
    assert_int_equal(yh_mp_get(&infos->via.array.ptr[0], "Index")->via.u64,
                     x->index);
    assert_int_equal(yh_mp_get(&infos->via.array.ptr[1], "Index")->via.u64,
                     x->index - 1);
    /* filters */
    assert_int_equal(
        fsmtest_call(x, "DescribeOperationLog", &x->admin, "Action",
                     "ModifyNameAndRemark", "RetCode", "0", NULL),
        0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
    assert_int_equal(fsmtest_call(x, "DescribeOperationLog", &x->admin,
                                  "ResourceID", aid, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"),
                     3); /* create, modify, EPERM */
    assert_int_equal(fsmtest_call(x, "DescribeOperationLog", &x->admin,
                                  "UserID", bid, "RetCode", "140", NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    r = &yh_mp_get(&x->res.data, "Infos")->via.array.ptr[0];
    assert_true(yh_mp_eq(yh_mp_get(r, "Message"),
                         "permission denied: '"
                         "uid-00000001"
                         "' belongs to another tenant"));
    snprintf(t, sizeof t, "%llu", (unsigned long long)(x->time / SEC + 1));
    assert_int_equal(fsmtest_call(x, "DescribeOperationLog", &x->admin,
                                  "BeginTime", t, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(fsmtest_call(x, "DescribeOperationLog", &x->admin,
                                  "EndTime", "1", NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(fsmtest_call(x, "DescribeOperationLog", &x->admin,
                                  "Offset", "1", "Limit", "2", NULL),
                     0);
    assert_int_equal(yh_mp_get(&x->res.data, "Infos")->via.array.size, 2);
    /* tenants see their own tenant's records only */
    assert_int_equal(fsmtest_call(x, "DescribeOperationLog", &bob, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
    assert_int_equal(fsmtest_call(x, "DescribeOperationLog", &alice, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);

    /* walk */
    assert_int_equal(fsm_oplog_walk(x->f, 3, 64, walk_cb, &w), 0);
    assert_int_equal(w.n, x->index - 2);
    assert_int_equal(w.idx[0], 3);
    w.n = 0;
    w.stop_at = 2;
    assert_int_equal(fsm_oplog_walk(x->f, 0, 64, walk_cb, &w), 0);
    assert_int_equal(w.n, 2);
    w.n = 0;
    w.stop_at = 0;
    assert_int_equal(fsm_oplog_walk(x->f, 1, 3, walk_cb, &w), 0);
    assert_int_equal(w.n, 3);
}

/* The operation log keeps the last oplog_keep records online: older ones
 * leave the state oldest first, Watch's floor moves with them, and a
 * reopened store keeps trimming where it stopped. */
static void oplog_retention(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor alice;
    char aid[FSM_ID_SIZE];
    struct walk w = {{0}, 0, 0};

    fsm_close(x->f);
    x->cfg.oplog_keep = 10;
    fsmtest_open(x);
    bootstrap(x);
    fsmtest_make_tenant(x, "alice@x.io", &alice, aid);
    assert_int_equal(fsm_oplog_floor(x->f), 1);
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &alice,
                                      "ResourceID", aid, "Name", name, NULL),
                         0);
    }
    assert_int_equal(fsm_oplog_floor(x->f), x->index - 9);
    assert_int_equal(fsm_oplog_walk(x->f, 1, 64, walk_cb, &w), 0);
    assert_int_equal(w.n, 10);
    assert_int_equal(w.idx[0], x->index - 9);
    assert_int_equal(w.idx[9], x->index);
    assert_int_equal(fsmtest_call(x, "DescribeOperationLog", &x->admin, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 10);
    /* the content hash still matches after the deletions */
    fsm_close(x->f);
    fsmtest_open(x);
    assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &alice,
                                  "ResourceID", aid, "Name", "again", NULL),
                     0);
    w.n = 0;
    assert_int_equal(fsm_oplog_walk(x->f, 1, 64, walk_cb, &w), 0);
    assert_int_equal(w.n, 10);
    assert_int_equal(w.idx[0], x->index - 9);
}

/* ---- determinism: a random command stream into two stores ---- */

/* Drive @x with @n random requests; record every entry applied. */
static void gen_stream(struct fsmtest *x,
                       uint64_t seed,
                       unsigned n,
                       struct fsmtest_log *st)
{
    char uids[64][FSM_ID_SIZE];
    struct fsm_actor actors[64];
    char keys[128][FSM_KEY_SIZE];
    unsigned n_users = 0, n_keys = 0;
    uint64_t s = seed;
    char a[64], b[64], c[64];

    for (unsigned i = 0; i < n; i++) {
        uint64_t r = fsmtest_rnd(&s) % 12;
        uint64_t before = x->index;
        unsigned u = n_users ? (unsigned)(fsmtest_rnd(&s) % n_users) : 0;
        const struct fsm_actor *who =
            n_users && fsmtest_rnd(&s) % 2 ? &actors[u] : &x->admin;

        /* gaps, like raft's own entries */
        if (fsmtest_rnd(&s) % 5 == 0) {
            x->index += 1 + fsmtest_rnd(&s) % 3;
        }
        switch (r) {
        case 0:
        case 1:
            snprintf(a, sizeof a, "user%llu@x.io",
                     (unsigned long long)(fsmtest_rnd(&s) % 40));
            snprintf(b, sizeof b, "name%llu",
                     (unsigned long long)(fsmtest_rnd(&s) % 1000));
            snprintf(c, sizeof c, "ct-%llu",
                     (unsigned long long)(fsmtest_rnd(&s) % 6));
            if (fsmtest_call(x, "CreateUser", &x->admin, "UserEmail", a,
                             "PassWord", "password!", "Name", b, "RequestToken",
                             c, NULL) == 0 &&
                n_users < 64) {
                struct fsm_key k;
                snprintf(uids[n_users], FSM_ID_SIZE, "%s",
                         fsmtest_res_str(x, "UserID"));
                if (x->proposed) {
                    fsmtest_log_add(st, x->index, x->env.data, x->env.len);
                }
                if (fsmtest_call(x, "CreateAPIKey", &x->admin, "UserID",
                                 uids[n_users], NULL) == 0 &&
                    fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"), &k) ==
                        0) {
                    actors[n_users++] = k.actor;
                }
            }
            break;
        case 2:
        case 3:
            if (n_users == 0) {
                break;
            }
            snprintf(a, sizeof a, "%llu",
                     (unsigned long long)(fsmtest_rnd(&s) % (x->index + 1)));
            if (fsmtest_rnd(&s) % 2 &&
                fsmtest_call(x, "DescribeUser", &x->admin, "UserIDs.0", uids[u],
                             NULL) == 0) {
                snprintf(
                    a, sizeof a, "%llu",
                    (unsigned long long)yh_mp_get(
                        &yh_mp_get(&x->res.data, "Infos")->via.array.ptr[0],
                        "Revision")
                        ->via.u64);
            }
            snprintf(b, sizeof b, "n%llu",
                     (unsigned long long)(fsmtest_rnd(&s) % 100));
            snprintf(c, sizeof c, "mt-%llu",
                     (unsigned long long)(fsmtest_rnd(&s) % 4));
            fsmtest_call(x, "ModifyNameAndRemark", who, "ResourceID", uids[u],
                         "Name", b, "IfRevision", a, "RequestToken", c, NULL);
            break;
        case 4:
            if (fsmtest_call(x, "CreateAPIKey", who, NULL) == 0 &&
                n_keys < 128) {
                snprintf(keys[n_keys++], FSM_KEY_SIZE, "%s",
                         fsmtest_res_str(x, "PublicKey"));
            }
            break;
        case 5:
            fsmtest_call(x, "DeleteAPIKey", who, "PublicKey",
                         n_keys ? keys[fsmtest_rnd(&s) % n_keys] : "nokey",
                         NULL);
            break;
        case 6:
            snprintf(a, sizeof a, "user%llu@x.io",
                     (unsigned long long)(fsmtest_rnd(&s) % 40));
            fsmtest_call(x, "LoginByPassword", NULL, "UserEmail", a, "PassWord",
                         fsmtest_rnd(&s) % 2 ? "password!" : "wrong-password",
                         NULL);
            break;
        case 7: {
            uint8_t junk[24];
            size_t len = 1 + fsmtest_rnd(&s) % sizeof junk;
            for (size_t j = 0; j < len; j++) {
                junk[j] = (uint8_t)fsmtest_rnd(&s);
            }
            fsmtest_apply_raw(x, junk, len);
            fsmtest_log_add(st, x->index, junk, len);
            break;
        }
        case 8:
            if (x->env.len > 4) {
                /* the last envelope, truncated: never valid */
                size_t len = x->env.len - 1 - fsmtest_rnd(&s) % 4;
                fsmtest_apply_raw(x, x->env.data, len);
                fsmtest_log_add(st, x->index, x->env.data, len);
            }
            break;
        case 9: {
            struct fsm_node nd = {1 + fsmtest_rnd(&s) % 5, "10.0.0.1:7500",
                                  "10.0.0.1:7400"};
            struct yh_buf bb = YH_BUF_INIT;
            assert_int_equal(
                fsm_cmd_node(&nd, (int)(fsmtest_rnd(&s) % 2), x->time, 0, &bb),
                0);
            fsmtest_apply_raw(x, bb.data, bb.len);
            fsmtest_log_add(st, x->index, bb.data, bb.len);
            yh_buf_release(&bb);
            break;
        }
        case 10:
            fsmtest_call(x, "DescribeOperationLog", who, "Limit", "5", NULL);
            break;
        default:
            /* a tenant trying an admin action: refused, never proposed */
            fsmtest_call(x, "CreateUser", who, "UserEmail", "z@x.io",
                         "PassWord", "password!", NULL);
            break;
        }
        if (x->proposed && x->index != before &&
            (st->n == 0 || st->e[st->n - 1].index != x->index)) {
            fsmtest_log_add(st, x->index, x->env.data, x->env.len);
        }
        x->proposed = 0;
        /* occasional flushes on this side */
        if (fsmtest_rnd(&s) % 7 == 0) {
            assert_int_equal(fsm_flush(x->f), 0);
        }
    }
}

static void determinism(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest *y = fsmtest_new();
    struct fsmtest_log *st = fsmtest_log_new(600);
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE];
    struct yh_buf b = YH_BUF_INIT;
    char *dump1;

    /* the bootstrap is an entry like any other */
    assert_int_equal(
        fsm_cmd_bootstrap("adminpub", "adminpriv", NULL, 0, x->time, &b), 0);
    assert_int_equal(fsmtest_apply_raw(x, b.data, b.len), 0);
    fsmtest_log_add(st, x->index, b.data, b.len);
    yh_buf_release(&b);
    {
        struct fsm_key k;
        assert_int_equal(fsm_key_get(x->f, "adminpub", &k), 0);
        x->admin = k.actor;
    }
    gen_stream(x, 0x9e3779b97f4a7c15ull, 300, st);
    assert_true(st->n > 150);

    fsmtest_replay(y->f, st, 13, 0);
    assert_int_equal(fsm_applied_index(y->f), fsm_applied_index(x->f));
    dump1 = fsmtest_assert_same(x->f, y->f);
    /* the stream did exercise the interesting paths */
    assert_non_null(strstr(dump1, "\"RetCode\": 160"));
    assert_non_null(strstr(dump1, "\"RetCode\": 180"));
    assert_non_null(strstr(dump1, "\"RetCode\": 100"));
    assert_non_null(strstr(dump1, "\"RetCode\": 161"));
    free(dump1);

    /* and a third store fed twice (restart re-feed) agrees too */
    fsm_close(y->f);
    fsmtest_open(y);
    fsmtest_replay(y->f, st, 0, 1); /* everything skipped */
    fsm_digest(x->f, d1);
    fsm_digest(y->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);

    fsmtest_log_free(st);
    fsmtest_free(y);
}

/* ---- snapshots ---- */

/* @a and @b hold the same state: one digest, one dump. */
static void assert_same_state(struct fsm *a, struct fsm *b)
{
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE];
    char *dump1 = fsmtest_dump_str(a);
    char *dump2 = fsmtest_dump_str(b);

    fsm_digest(a, d1);
    fsm_digest(b, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    assert_string_equal(dump1, dump2);
    free(dump1);
    free(dump2);
}

static void snapshot_of(struct fsmtest *x, struct yh_buf *out)
{
    struct fsm_snap *s;

    assert_int_equal(fsm_snapshot_begin(x->f, &s), 0);
    assert_int_equal(fsm_snapshot_encode(s, out), 0);
    fsm_snapshot_end(s);
}

static void populate(struct fsmtest *x)
{
    struct fsm_actor alice;
    char aid[FSM_ID_SIZE];

    bootstrap(x);
    fsmtest_make_tenant(x, "alice@x.io", &alice, aid);
    assert_int_equal(
        fsmtest_call(x, "ModifyNameAndRemark", &alice, "ResourceID", aid,
                     "Remark", "hello", "RequestToken", "s-1", NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "LoginByPassword", NULL, "UserEmail", "alice@x.io",
                     "PassWord", "secret-pass", NULL),
        0);
    fsmtest_apply_raw(x, "junk", 4);
}

static void snapshot_roundtrip(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest *y = fsmtest_new();
    struct yh_buf snap = YH_BUF_INIT;
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE];
    char *dump1, *dump2;
    int loaded = 0;

    populate(x);
    snapshot_of(x, &snap);
    assert_memory_equal(snap.data, "YHSNAP03", 8);
    assert_int_equal(fsm_restore(y->f, snap.data, snap.len, &loaded), 0);
    assert_int_equal(loaded, 1);
    assert_int_equal(fsm_applied_index(y->f), fsm_applied_index(x->f));
    fsm_digest(x->f, d1);
    fsm_digest(y->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    dump1 = fsmtest_dump_str(x->f);
    dump2 = fsmtest_dump_str(y->f);
    assert_string_equal(dump1, dump2);
    free(dump1);
    free(dump2);
    /* the restored store serves keys and tokens */
    assert_int_equal(fsm_key_get(y->f, "adminpub", &(struct fsm_key){0}), 0);

    /* both continue identically */
    y->index = x->index;
    y->time = x->time;
    y->admin = x->admin;
    assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &x->admin,
                                  "ResourceID", "uid-00000001", "Remark",
                                  "hello", "RequestToken", "s-1", NULL),
                     0);
    fsmtest_apply_raw(y, x->env.data, x->env.len);
    assert_int_equal(x->out.len, y->out.len);
    assert_memory_equal(x->out.data, y->out.data, x->out.len);
    fsm_digest(x->f, d1);
    fsm_digest(y->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);

    /* a snapshot restored into a store that is already there: kept */
    assert_int_equal(fsm_restore(y->f, snap.data, snap.len, &loaded), 0);
    assert_int_equal(loaded, 0);
    fsm_digest(y->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);

    /* persisted across reopen */
    fsm_close(y->f);
    fsmtest_open(y);
    fsm_digest(y->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    yh_buf_release(&snap);
    fsmtest_free(y);
}

static void snapshot_concurrent_apply(void **state)
{
    struct fsmtest *x = *state;
    struct yh_buf snap = YH_BUF_INIT;
    struct fsm_snap *s;
    struct fsmtest *y = fsmtest_new();
    uint8_t d1[FSM_DIGEST_SIZE];
    uint8_t d2[FSM_DIGEST_SIZE];
    uint64_t at;
    int loaded;

    populate(x);
    assert_int_equal(fsm_snapshot_begin(x->f, &s), 0);
    at = fsm_applied_index(x->f);
    fsm_digest(x->f, d1);
    /* applies go on while the snapshot is open (MVCC) */
    assert_int_equal(fsmtest_call(x, "CreateAPIKey", &x->admin, NULL), 0);
    assert_int_equal(fsm_flush(x->f), 0);
    assert_int_equal(fsm_snapshot_encode(s, &snap), 0);
    fsm_snapshot_end(s);
    assert_int_equal(fsm_restore(y->f, snap.data, snap.len, &loaded), 0);
    assert_int_equal(loaded, 1);
    assert_int_equal(fsm_applied_index(y->f), at);
    fsm_digest(y->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    yh_buf_release(&snap);
    fsmtest_free(y);
}

static void snapshot_corrupt(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest *y = fsmtest_new();
    struct yh_buf snap = YH_BUF_INIT;
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE];
    uint8_t *bad;
    char *before, *after;
    int loaded = 7;

    populate(x);
    snapshot_of(x, &snap);
    /* y has a state of its own that must survive */
    y->cfg = x->cfg;
    bootstrap(y);
    fsm_digest(y->f, d1);
    before = fsmtest_dump_str(y->f);
    bad = malloc(snap.len);

    /* truncated, at every length class */
    for (size_t cut = 0; cut < snap.len; cut += 1 + cut / 3) {
        assert_int_equal(fsm_restore(y->f, snap.data, cut, &loaded),
                         YH_ECORRUPT);
        assert_int_equal(loaded, 0);
    }
    /* magic */
    memcpy(bad, snap.data, snap.len);
    bad[3] ^= 0x01;
    assert_int_equal(fsm_restore(y->f, bad, snap.len, &loaded), YH_ECORRUPT);
    /* a bit flipped anywhere */
    for (size_t i = 8; i < snap.len; i += 1 + i / 5) {
        memcpy(bad, snap.data, snap.len);
        bad[i] ^= 0x10;
        assert_int_equal(fsm_restore(y->f, bad, snap.len, &loaded),
                         YH_ECORRUPT);
        assert_int_equal(loaded, 0);
    }
    /* trailing bytes */
    {
        uint8_t *longer = malloc(snap.len + 1);
        memcpy(longer, snap.data, snap.len);
        longer[snap.len] = 0;
        assert_int_equal(fsm_restore(y->f, longer, snap.len + 1, &loaded),
                         YH_ECORRUPT);
        free(longer);
    }
    assert_int_equal(fsm_restore(y->f, NULL, 0, &loaded), YH_ECORRUPT);
    fsm_digest(y->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    after = fsmtest_dump_str(y->f);
    assert_string_equal(before, after);
    free(before);
    free(after);
    free(bad);
    yh_buf_release(&snap);
    fsmtest_free(y);
}

/* Seal @p (@n bytes, the last 16 being the checksum) with a fresh
 * XXH3-128 sum, as a sender with bad bytes in memory would. */
static void reseal(uint8_t *p, size_t n)
{
    XXH128_canonical_t c;

    XXH128_canonicalFromHash(&c, XXH3_128bits(p, n - 16));
    memcpy(p + n - 16, c.digest, 16);
}

#define SNAP_HEAD (8 + 8 + FSM_DIGEST_SIZE)

/* YHSNAP02 (the body in clear) from a YHSNAP03 snapshot. */
static uint8_t *plain_of(const struct yh_buf *snap, size_t *len)
{
    size_t zlen = snap->len - SNAP_HEAD - 16;
    unsigned long long clear =
        ZSTD_getFrameContentSize(snap->data + SNAP_HEAD, zlen);
    size_t cap =
        clear == ZSTD_CONTENTSIZE_UNKNOWN || clear == ZSTD_CONTENTSIZE_ERROR
            ? 64u << 20
            : (size_t)clear;
    uint8_t *p = malloc(SNAP_HEAD + cap + 16);
    size_t n;

    assert_non_null(p);
    memcpy(p, snap->data, SNAP_HEAD);
    memcpy(p, "YHSNAP02", 8);
    n = ZSTD_decompress(p + SNAP_HEAD, cap, snap->data + SNAP_HEAD, zlen);
    assert_false(ZSTD_isError(n));
    *len = SNAP_HEAD + n + 16;
    reseal(p, *len);
    return p;
}

static uint64_t be_n(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* Whether byte @i of clear snapshot @p lies in the value of meta "applied"
 * or "digest": restore rewrites those from the header, so a flip there
 * changes nothing and is not refused. Everything else in meta (counters,
 * settings) is covered by the content hash (docs/disk-format.md). */
static int harmless_at(const uint8_t *p, size_t len, size_t i)
{
    size_t off = SNAP_HEAD + 4;
    uint64_t count;

    assert_int_equal(be_n(p + off, 2), 4);
    assert_memory_equal(p + off + 2, "meta", 4);
    off += 6;
    count = be_n(p + off, 8);
    off += 8;
    while (count-- > 0) {
        size_t kl = be_n(p + off, 4);
        const uint8_t *k = p + off + 4;
        size_t vl = be_n(p + off + 4 + kl, 4);
        size_t v = off + 8 + kl;
        int own = (kl == 7 && memcmp(k, "applied", 7) == 0) ||
                  (kl == 6 && memcmp(k, "digest", 6) == 0);

        if (own && i >= v && i < v + vl) {
            return 1;
        }
        off = v + vl;
        assert_true(off < len);
    }
    return 0;
}

/* A snapshot in the earlier clear form restores to the same state. */
static void snapshot_plain_format(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest *y = fsmtest_new();
    struct yh_buf snap = YH_BUF_INIT;
    uint8_t *plain;
    size_t plen;
    int loaded = 0;

    populate(x);
    snapshot_of(x, &snap);
    plain = plain_of(&snap, &plen);
    /* the records compress: the clear form is larger */
    assert_true(plen > snap.len);
    assert_int_equal(fsm_restore(y->f, plain, plen, &loaded), 0);
    assert_int_equal(loaded, 1);
    assert_same_state(x->f, y->f);
    free(plain);
    yh_buf_release(&snap);
    fsmtest_free(y);
}

/* Windows of 1..64 bytes: every record straddles refills and the window
 * grows to the largest record; the state is the same, and a snapshot cut
 * short (sealed again) is still refused at every window size. */
static void snapshot_small_window(void **state)
{
    struct fsmtest *x = *state;
    struct yh_buf snap = YH_BUF_INIT;
    size_t sizes[] = {1, 2, 7, 64};

    populate(x);
    snapshot_of(x, &snap);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct fsmtest *y = fsmtest_new();
        uint8_t *cut = malloc(snap.len);
        int loaded = 0;

        fsm__snap_window = sizes[i];
        memcpy(cut, snap.data, snap.len - 16);
        reseal(cut, snap.len - 1);
        assert_int_equal(fsm_restore(y->f, cut, snap.len - 1, &loaded),
                         YH_ECORRUPT);
        assert_int_equal(fsm_restore(y->f, snap.data, snap.len, &loaded), 0);
        assert_int_equal(loaded, 1);
        assert_same_state(x->f, y->f);
        free(cut);
        fsmtest_free(y);
    }
    fsm__snap_window = 4u << 20;
    yh_buf_release(&snap);
}

/* Bytes changed before the checksum was computed (the checksum is right):
 * a bit flipped in the compressed body or in the clear body, a record
 * changed, the compressed body cut short. Each is refused and the state
 * is untouched, or (a flip zstd cannot notice and that changes no byte of
 * the body) restores the very same state. */
static void snapshot_bad_body_good_sum(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest *y = fsmtest_new();
    struct yh_buf snap = YH_BUF_INIT;
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE], dx[FSM_DIGEST_SIZE];
    uint8_t *bad, *plain;
    size_t plen;
    char *before, *after;
    int loaded;
    int refused = 0, tried = 0;

    populate(x);
    snapshot_of(x, &snap);
    fsm_digest(x->f, dx);
    y->cfg = x->cfg;
    bootstrap(y);
    fsm_digest(y->f, d1);
    before = fsmtest_dump_str(y->f);
    bad = malloc(snap.len);
    for (size_t i = SNAP_HEAD; i < snap.len - 16; i += 1 + i / 7) {
        for (int bit = 0; bit < 8; bit += 3) {
            int rc;
            memcpy(bad, snap.data, snap.len);
            bad[i] ^= (uint8_t)(1u << bit);
            reseal(bad, snap.len);
            rc = fsm_restore(y->f, bad, snap.len, &loaded);
            tried++;
            if (rc == 0) {
                /* nothing changed in what zstd produced */
                assert_int_equal(loaded, 1);
                fsm_digest(y->f, d2);
                assert_memory_equal(d2, dx, FSM_DIGEST_SIZE);
                fsmtest_free(y);
                y = fsmtest_new();
                y->cfg = x->cfg;
                bootstrap(y);
                continue;
            }
            refused++;
            assert_int_equal(rc, YH_ECORRUPT);
            assert_int_equal(loaded, 0);
        }
    }
    /* nearly every flip is caught by zstd, the walker or the content
     * hash */
    assert_true(refused * 10 >= tried * 9);
    /* the compressed body cut short (sealed again) */
    for (size_t cut = SNAP_HEAD + 16; cut < snap.len; cut += 1 + cut / 4) {
        memcpy(bad, snap.data, cut - 16);
        reseal(bad, cut);
        assert_int_equal(fsm_restore(y->f, bad, cut, &loaded), YH_ECORRUPT);
    }
    /* the clear form: flip bits in record values, reseal */
    plain = plain_of(&snap, &plen);
    for (size_t i = SNAP_HEAD + 4; i < plen - 16; i += 1 + i / 9) {
        uint8_t *p2 = malloc(plen);
        int rc;
        if (harmless_at(plain, plen, i)) {
            free(p2);
            continue;
        }
        memcpy(p2, plain, plen);
        p2[i] ^= 0x04;
        reseal(p2, plen);
        rc = fsm_restore(y->f, p2, plen, &loaded);
        assert_int_equal(rc, YH_ECORRUPT);
        free(p2);
    }
    fsm_digest(y->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    after = fsmtest_dump_str(y->f);
    assert_string_equal(before, after);
    free(before);
    free(after);
    free(plain);
    free(bad);
    yh_buf_release(&snap);
    fsmtest_free(y);
}

static void snapshot_older_not_loaded(void **state)
{
    struct fsmtest *x = *state;
    struct yh_buf old = YH_BUF_INIT;
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE];
    int loaded = 7;

    populate(x);
    snapshot_of(x, &old);
    assert_int_equal(fsmtest_call(x, "CreateAPIKey", &x->admin, NULL), 0);
    fsm_digest(x->f, d1);
    assert_int_equal(fsm_restore(x->f, old.data, old.len, &loaded), 0);
    assert_int_equal(loaded, 0);
    fsm_digest(x->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    assert_int_equal(fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"),
                                 &(struct fsm_key){0}),
                     0);
    yh_buf_release(&old);
}

/* A newer snapshot replaces everything, including state the snapshot does
 * not have. */
static void snapshot_replaces(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest *y = fsmtest_new();
    struct yh_buf snap = YH_BUF_INIT;
    char *d1, *d2;
    int loaded;

    populate(x);
    snapshot_of(x, &snap);
    y->cfg = x->cfg;
    assert_int_equal(
        fsm_cmd_bootstrap("otherpub", "otherpriv", NULL, 0, y->time, &y->env),
        0);
    fsmtest_apply_raw(y, y->env.data, y->env.len);
    /* unflushed batch in y at restore time */
    assert_int_equal(fsm_restore(y->f, snap.data, snap.len, &loaded), 0);
    assert_int_equal(loaded, 1);
    assert_int_equal(fsm_key_get(y->f, "otherpub", &(struct fsm_key){0}),
                     YH_ENOTFOUND);
    d1 = fsmtest_dump_str(x->f);
    d2 = fsmtest_dump_str(y->f);
    assert_string_equal(d1, d2);
    free(d1);
    free(d2);
    yh_buf_release(&snap);
    fsmtest_free(y);
}

/* kB of the state file resident in this process's page tables (smaps). */
static unsigned long long state_rss_kb(const struct fsmtest *x)
{
    char line[512], path[128];
    unsigned long long kb = 0, v;
    int in_map = 0;
    FILE *in = fopen("/proc/self/smaps", "r");

    assert_non_null(in);
    snprintf(path, sizeof path, "%s/", x->dir);
    while (fgets(line, sizeof line, in) != NULL) {
        unsigned long long lo, hi;

        if (sscanf(line, "%llx-%llx ", &lo, &hi) == 2) { /* a mapping */
            in_map =
                strstr(line, path) != NULL && strstr(line, "data.mdb") != NULL;
        } else if (in_map && sscanf(line, "Rss: %llu kB", &v) == 1) {
            kb += v;
        }
    }
    fclose(in);
    return kb;
}

/* fsm_map_trim: over the budget, the state file's pages leave the page
 * tables (and come back on the next read); under it, nothing happens. */
static void map_trim(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor alice;
    char aid[FSM_ID_SIZE], token[32];
    unsigned long long before, after;
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE];

    bootstrap(x);
    fsmtest_make_tenant(x, "alice@x.io", &alice, aid);
    for (int i = 0; i < 3000; i++) {
        snprintf(token, sizeof token, "t-%d", i);
        assert_int_equal(
            fsmtest_call(x, "ModifyNameAndRemark", &alice, "ResourceID", aid,
                         "Remark", token, "RequestToken", token, NULL),
            0);
    }
    assert_int_equal(fsm_map_trim(x->f, (size_t)1 << 40), 0);
    before = state_rss_kb(x);
    assert_int_equal(fsm_map_trim(x->f, 0), 1);
    after = state_rss_kb(x);
    print_message("state file resident: %llu kB before the trim, %llu after\n",
                  before, after);
    assert_true(before > 0);
    assert_int_equal(after, 0);
    fsm_digest(x->f, d1);
    assert_int_equal(
        fsmtest_call(x, "ModifyNameAndRemark", &alice, "ResourceID", aid,
                     "Remark", "after", "RequestToken", "t-after", NULL),
        0);
    fsm_digest(x->f, d2);
    assert_memory_not_equal(d1, d2, FSM_DIGEST_SIZE);
    assert_int_equal(
        fsmtest_call(x, "DescribeUser", &alice, "UserID", aid, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(action_kinds),
        cmocka_unit_test_setup_teardown(map_trim, fsmtest_setup_bare,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(bootstrap_once, fsmtest_setup_bare,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(create_user_validation,
                                        fsmtest_setup_bare, fsmtest_teardown),
        cmocka_unit_test_setup_teardown(describe_user, fsmtest_setup_bare,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(permissions, fsmtest_setup_bare,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(login, fsmtest_setup_bare,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(if_revision, fsmtest_setup_bare,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(idempotency, fsmtest_setup_bare,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(skip_and_restart, fsmtest_setup_bare,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(batch_rollback, fsmtest_setup_bare,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(bad_envelopes, fsmtest_setup_bare,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(oplog, fsmtest_setup_bare,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(oplog_retention, fsmtest_setup_bare,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(determinism, fsmtest_setup_bare,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(snapshot_plain_format,
                                        fsmtest_setup_bare, fsmtest_teardown),
        cmocka_unit_test_setup_teardown(snapshot_small_window,
                                        fsmtest_setup_bare, fsmtest_teardown),
        cmocka_unit_test_setup_teardown(snapshot_bad_body_good_sum,
                                        fsmtest_setup_bare, fsmtest_teardown),
        cmocka_unit_test_setup_teardown(snapshot_roundtrip, fsmtest_setup_bare,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(snapshot_concurrent_apply,
                                        fsmtest_setup_bare, fsmtest_teardown),
        cmocka_unit_test_setup_teardown(snapshot_corrupt, fsmtest_setup_bare,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(snapshot_older_not_loaded,
                                        fsmtest_setup_bare, fsmtest_teardown),
        cmocka_unit_test_setup_teardown(snapshot_replaces, fsmtest_setup_bare,
                                        fsmtest_teardown),
    };

    yh_log_level = YH_LOG_ERR - 1; /* quiet: failures are asserted */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
