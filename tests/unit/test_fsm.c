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

#include "fsm/base/buf.h"
#include "fsm/base/err.h"
#include "fsm/base/log.h"
#include "fsm/base/mp.h"
#include "fsm/fsm.h"

#define SEC 1000000000ull
#define T0 (1700000000ull * SEC)

/* ---- fixture ---- */

struct fx
{
    char dir[64];           /* temp dir holding the store */
    struct fsm *f;          /* store under test */
    struct fsm_config cfg;  /* its config */
    uint64_t index;         /* last log index fed */
    uint64_t time;          /* leader clock (ns) */
    struct fsm_actor admin; /* bootstrap administrator */
    msgpack_unpacked res;   /* last result */
    struct yh_buf env;      /* last envelope */
    struct yh_buf out;      /* last result bytes */
    struct yh_buf event;    /* last oplog event */
    struct yh_buf resbuf;   /* bytes x->res points into */
    int proposed;           /* last call produced an entry */
    uint64_t tag;           /* tag returned by the last apply */
};

static int rm_entry(const char *path,
                    const struct stat *st,
                    int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void fx_open(struct fx *x)
{
    char err[YH_ERRMSG_SIZE];

    assert_int_equal(fsm_open(&x->f, x->dir, &x->cfg, err), 0);
}

static struct fx *fx_new(void)
{
    struct fx *x = calloc(1, sizeof *x);

    assert_non_null(x);
    snprintf(x->dir, sizeof x->dir, "/tmp/yh-test-fsm-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    x->cfg.nosync = 1;
    x->cfg.map_size = 64u << 20;
    x->cfg.token_ttl_ns = 3600 * SEC;
    x->time = T0;
    msgpack_unpacked_init(&x->res);
    fx_open(x);
    return x;
}

static void fx_free(struct fx *x)
{
    fsm_close(x->f);
    rm_rf(x->dir);
    msgpack_unpacked_destroy(&x->res);
    yh_buf_release(&x->env);
    yh_buf_release(&x->out);
    yh_buf_release(&x->event);
    yh_buf_release(&x->resbuf);
    free(x);
}

static int setup(void **state)
{
    *state = fx_new();
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

/* ---- helpers ---- */

/* x->res borrows strings from the bytes it was unpacked from: keep a
 * copy. */
static void set_result(struct fx *x, const struct yh_buf *b)
{
    size_t off = 0;

    msgpack_unpacked_destroy(&x->res);
    msgpack_unpacked_init(&x->res);
    if (b != &x->resbuf) {
        yh_buf_reset(&x->resbuf);
        assert_int_equal(yh_buf_append(&x->resbuf, b->data, b->len), 0);
    }
    assert_int_equal(msgpack_unpack_next(&x->res, (const char *)x->resbuf.data,
                                         x->resbuf.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, b->len);
    assert_int_equal(x->res.data.type, MSGPACK_OBJECT_MAP);
}

static int64_t res_int(struct fx *x, const char *key)
{
    int64_t v = -1;

    if (yh_mp_int(&x->res.data, key, &v) != 0) {
        fprintf(stderr, "no integer '%s' in ", key);
        msgpack_object_print(stderr, x->res.data);
        fprintf(stderr, "\n");
        fail();
    }
    return v;
}

static const char *res_str(struct fx *x, const char *key)
{
    static char buf[4][256];
    static int i;
    char *out = buf[i++ & 3];

    if (yh_mp_strcpy(&x->res.data, key, out, 256) != 0) {
        out[0] = '\0';
    }
    return out;
}

/* Feed raw command bytes at the next index. */
static int apply_raw(struct fx *x, const void *cmd, size_t len)
{
    int skipped = 1;
    int rc;

    x->index++;
    rc = fsm_apply(x->f, x->index, cmd, len, &x->out, &x->event, &x->tag,
                   &skipped);
    assert_int_equal(rc, 0);
    assert_int_equal(skipped, 0);
    assert_int_equal(fsm_applied_index(x->f), x->index);
    set_result(x, &x->out);
    return (int)res_int(x, "RetCode");
}

/* Build a request map from key/value string pairs ending with NULL. */
static void req_vbuild(struct yh_buf *b, const char *k, va_list ap)
{
    const char *keys[32];
    const char *vals[32];
    msgpack_packer pk;
    unsigned n = 0;

    while (k != NULL) {
        assert_true(n < 32);
        keys[n] = k;
        vals[n] = va_arg(ap, const char *);
        n++;
        k = va_arg(ap, const char *);
    }
    msgpack_packer_init(&pk, b, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, n);
    for (unsigned i = 0; i < n; i++) {
        yh_mp_pack_str(&pk, keys[i]);
        yh_mp_pack_str(&pk, vals[i]);
    }
}

/* Run a request the way the cluster layer would: prepare + apply for
 * writes, query for reads. Returns the RetCode; x->res holds the result. */
static int call_obj(struct fx *x,
                    const char *action,
                    const struct fsm_actor *actor,
                    const msgpack_object *req)
{
    enum fsm_action_kind kind = fsm_action_kind(action, NULL);
    struct yh_buf result = YH_BUF_INIT;
    int rc;

    x->time += SEC;
    x->proposed = 0;
    if (kind == FSM_ACT_READ) {
        assert_int_equal(fsm_query(x->f, action, req, actor, &result), 0);
        set_result(x, &result);
        yh_buf_release(&result);
        return (int)res_int(x, "RetCode");
    }
    assert_int_equal(fsm_cmd_prepare(x->f, action, req, actor, "127.0.0.1:5555",
                                     x->time, 77, &x->env, &result),
                     0);
    if (x->env.len == 0) {
        assert_true(result.len > 0);
        set_result(x, &result);
        yh_buf_release(&result);
        rc = (int)res_int(x, "RetCode");
        assert_int_not_equal(rc, 0);
        return rc;
    }
    assert_int_equal(result.len, 0);
    yh_buf_release(&result);
    x->proposed = 1;
    rc = apply_raw(x, x->env.data, x->env.len);
    assert_int_equal(x->tag, 77);
    return rc;
}

static int call(struct fx *x,
                const char *action,
                const struct fsm_actor *actor,
                const char *k,
                ...)
{
    struct yh_buf b = YH_BUF_INIT;
    msgpack_unpacked u;
    size_t off = 0;
    va_list ap;
    int rc;

    va_start(ap, k);
    req_vbuild(&b, k, ap);
    va_end(ap);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)b.data, b.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    rc = call_obj(x, action, actor, &u.data);
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&b);
    return rc;
}

static void bootstrap(struct fx *x)
{
    struct fsm_node nodes[2] = {{1, "127.0.0.1:7501", "127.0.0.1:7401"},
                                {2, "127.0.0.1:7502", "127.0.0.1:7402"}};
    struct fsm_key key;
    struct yh_buf b = YH_BUF_INIT;

    assert_int_equal(
        fsm_cmd_bootstrap("adminpub", "adminpriv", nodes, 2, x->time, &b), 0);
    assert_int_equal(apply_raw(x, b.data, b.len), 0);
    yh_buf_release(&b);
    assert_int_equal(fsm_key_get(x->f, "adminpub", &key), 0);
    assert_string_equal(key.private_key, "adminpriv");
    assert_true(key.actor.admin);
    x->admin = key.actor;
}

/* Create a user; returns its actor (via a new API key) in @a. */
static void make_user(struct fx *x,
                      const char *email,
                      struct fsm_actor *a,
                      char *uid_out)
{
    struct fsm_key key;
    char uid[FSM_ID_SIZE];

    assert_int_equal(call(x, "CreateUser", &x->admin, "UserEmail", email,
                          "PassWord", "secret-pass", NULL),
                     0);
    snprintf(uid, sizeof uid, "%s", res_str(x, "UserID"));
    assert_int_equal(call(x, "CreateAPIKey", &x->admin, "UserID", uid, NULL),
                     0);
    assert_int_equal(fsm_key_get(x->f, res_str(x, "PublicKey"), &key), 0);
    assert_string_equal(key.actor.user_id, uid);
    *a = key.actor;
    if (uid_out != NULL) {
        snprintf(uid_out, FSM_ID_SIZE, "%s", uid);
    }
}

static char *dump_str(struct fsm *f)
{
    char *p = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&p, &n);

    assert_non_null(m);
    assert_int_equal(fsm_dump(f, m), 0);
    fclose(m);
    return p;
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
    struct fx *x = *state;
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
    assert_int_equal(apply_raw(x, b.data, b.len), YH_EEXIST);
    yh_buf_release(&b);
    assert_int_equal(fsm_key_get(x->f, "otherpub", &(struct fsm_key){0}),
                     YH_ENOTFOUND);
    /* node commands */
    nodes[0] = (struct fsm_node){3, "127.0.0.1:7503", "127.0.0.1:7403"};
    assert_int_equal(fsm_cmd_node(&nodes[0], 0, x->time, 9, &b), 0);
    assert_int_equal(apply_raw(x, b.data, b.len), 0);
    assert_int_equal(x->tag, 9);
    nodes[0].id = 1;
    assert_int_equal(fsm_cmd_node(&nodes[0], 1, x->time, 0, &b), 0);
    assert_int_equal(apply_raw(x, b.data, b.len), 0);
    assert_int_equal(apply_raw(x, b.data, b.len), YH_ENOTFOUND);
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
    struct fx *x = *state;
    uint64_t before;

    bootstrap(x);
    before = x->index;
    assert_int_equal(
        call(x, "CreateUser", &x->admin, "PassWord", "long-enough", NULL),
        YH_EMISSING);
    assert_non_null(strstr(res_str(x, "Message"), "UserEmail"));
    assert_string_equal(res_str(x, "Action"), "CreateUserResponse");
    assert_int_equal(call(x, "CreateUser", &x->admin, "UserEmail", "nope",
                          "PassWord", "long-enough", NULL),
                     YH_EINVAL);
    assert_non_null(strstr(res_str(x, "Message"), "UserEmail"));
    assert_int_equal(
        call(x, "CreateUser", &x->admin, "UserEmail", "a@b.io", NULL),
        YH_EMISSING);
    assert_non_null(strstr(res_str(x, "Message"), "PassWord"));
    assert_int_equal(call(x, "CreateUser", &x->admin, "UserEmail", "a@b.io",
                          "PassWord", "short", NULL),
                     YH_EINVAL);
    assert_non_null(strstr(res_str(x, "Message"), "PassWord"));
    assert_int_equal(
        call(x, "CreateUser", &x->admin, "UserEmail", "a@b.io", "PassWord",
             "long-enough", "Name",
             "01234567890123456789012345678901234567890123456789012345678901"
             "234",
             NULL),
        YH_EINVAL);
    assert_non_null(strstr(res_str(x, "Message"), "Name"));
    /* none of these were proposed */
    assert_int_equal(x->index, before);
    assert_int_equal(fsm_applied_index(x->f), before);

    assert_int_equal(
        call(x, "CreateUser", &x->admin, "UserEmail", "Alice@Example.com",
             "PassWord", "long-enough", "Name", "Alice", NULL),
        0);
    assert_string_equal(res_str(x, "UserID"), "uid-00000001");
    assert_string_equal(res_str(x, "Action"), "CreateUserResponse");
    assert_null(yh_mp_get(&x->res.data, "PassWord"));
    /* unique email, case-insensitively: rejected at apply */
    assert_int_equal(call(x, "CreateUser", &x->admin, "UserEmail",
                          "alice@example.COM", "PassWord", "long-enough", NULL),
                     YH_EEXIST);
    assert_true(x->proposed);
    assert_int_equal(call(x, "CreateUser", &x->admin, "UserEmail",
                          "bob@example.com", "PassWord", "long-enough", NULL),
                     0);
    assert_string_equal(res_str(x, "UserID"), "uid-00000002");
    /* the password never enters the log */
    assert_null(memmem(x->env.data, x->env.len, "long-enough", 11));
    assert_null(yh_mp_get(&x->res.data, "PwHash"));
}

static void describe_user(void **state)
{
    struct fx *x = *state;
    struct fsm_actor alice, bob;
    char aid[FSM_ID_SIZE], bid[FSM_ID_SIZE];
    const msgpack_object *infos;
    char email[32];

    bootstrap(x);
    make_user(x, "alice@x.io", &alice, aid);
    make_user(x, "bob@x.io", &bob, bid);
    for (int i = 0; i < 23; i++) {
        snprintf(email, sizeof email, "user%d@x.io", i);
        assert_int_equal(call(x, "CreateUser", &x->admin, "UserEmail", email,
                              "PassWord", "long-enough", NULL),
                         0);
    }
    /* admin: everyone (25 + admin), default page of 20 */
    assert_int_equal(call(x, "DescribeUser", &x->admin, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 26);
    infos = yh_mp_get(&x->res.data, "Infos");
    assert_int_equal(infos->via.array.size, 20);
    assert_true(yh_mp_eq(yh_mp_get(&infos->via.array.ptr[0], "UserID"),
                         "uid-00000001"));
    assert_null(yh_mp_get(&infos->via.array.ptr[0], "PwHash"));
    assert_int_equal(call(x, "DescribeUser", &x->admin, "Offset", "20", "Limit",
                          "100", NULL),
                     0);
    assert_int_equal(yh_mp_get(&x->res.data, "Infos")->via.array.size, 6);
    assert_int_equal(call(x, "DescribeUser", &x->admin, "Limit", "101", NULL),
                     YH_EINVAL);
    assert_non_null(strstr(res_str(x, "Message"), "Limit"));
    assert_int_equal(call(x, "DescribeUser", &x->admin, "Offset", "-1", NULL),
                     YH_EINVAL);
    /* UCloud list convention and filtering */
    assert_int_equal(call(x, "DescribeUser", &x->admin, "UserIDs.0", bid,
                          "UserIDs.1", aid, "UserIDs.2", "uid-99999999", NULL),
                     0);
    assert_int_equal(res_int(x, "TotalCount"), 2);
    infos = yh_mp_get(&x->res.data, "Infos");
    assert_true(yh_mp_eq(yh_mp_get(&infos->via.array.ptr[0], "UserID"), aid));
    assert_true(yh_mp_eq(yh_mp_get(&infos->via.array.ptr[0], "UserEmail"),
                         "alice@x.io"));
    assert_true(
        yh_mp_eq(yh_mp_get(&infos->via.array.ptr[0], "State"), "Normal"));
    /* tenant isolation: alice sees only herself */
    assert_int_equal(call(x, "DescribeUser", &alice, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 1);
    assert_int_equal(call(x, "DescribeUser", &alice, "UserIDs.0", bid, NULL),
                     0);
    assert_int_equal(res_int(x, "TotalCount"), 0);
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
        assert_int_equal(call_obj(x, "DescribeUser", &x->admin, &u.data), 0);
        assert_int_equal(res_int(x, "TotalCount"), 2);
        assert_int_equal(call_obj(x, "DescribeUser", &bob, &u.data), 0);
        assert_int_equal(res_int(x, "TotalCount"), 1);
        msgpack_unpacked_destroy(&u);
        yh_buf_release(&b);
    }
    /* anonymous: refused */
    assert_int_equal(call(x, "DescribeUser", NULL, NULL), YH_EAUTH);
    assert_int_equal(call(x, "NoSuchRead", &x->admin, NULL), YH_EACTION);
}

static void permissions(void **state)
{
    struct fx *x = *state;
    struct fsm_actor alice, bob;
    char aid[FSM_ID_SIZE], bid[FSM_ID_SIZE];
    char bob_key[FSM_KEY_SIZE];
    struct yh_buf b = YH_BUF_INIT;
    msgpack_packer pk;

    bootstrap(x);
    make_user(x, "alice@x.io", &alice, aid);
    make_user(x, "bob@x.io", &bob, bid);
    /* tenant cannot CreateUser: refused before proposing */
    assert_int_equal(call(x, "CreateUser", &alice, "UserEmail", "c@x.io",
                          "PassWord", "long-enough", NULL),
                     YH_EPERM);
    assert_false(x->proposed);
    assert_string_equal(res_str(x, "Message"),
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
    assert_int_equal(apply_raw(x, b.data, b.len), YH_EPERM);
    yh_buf_release(&b);
    /* a tenant cannot modify another user */
    assert_int_equal(call(x, "ModifyNameAndRemark", &alice, "ResourceID", bid,
                          "Name", "pwned", NULL),
                     YH_EPERM);
    assert_true(x->proposed);
    assert_int_equal(call(x, "ModifyNameAndRemark", &alice, "ResourceID", aid,
                          "Name", "Alice A.", NULL),
                     0);
    assert_int_equal(call(x, "ModifyNameAndRemark", &x->admin, "ResourceID",
                          bid, "Remark", "set by admin", NULL),
                     0);
    assert_int_equal(call(x, "ModifyNameAndRemark", &x->admin, "ResourceID",
                          "uid-77777777", "Remark", "x", NULL),
                     YH_ENOTFOUND);
    assert_int_equal(
        call(x, "ModifyNameAndRemark", &x->admin, "ResourceID", bid, NULL),
        YH_EMISSING);
    /* keys: only for self unless admin */
    assert_int_equal(call(x, "CreateAPIKey", &alice, "UserID", bid, NULL),
                     YH_EPERM);
    assert_int_equal(call(x, "CreateAPIKey", &bob, NULL), 0);
    assert_string_equal(res_str(x, "UserID"), bid);
    snprintf(bob_key, sizeof bob_key, "%s", res_str(x, "PublicKey"));
    assert_int_equal(strlen(bob_key), 40);
    assert_int_equal(strlen(res_str(x, "PrivateKey")), 64);
    assert_int_equal(
        call(x, "DeleteAPIKey", &alice, "PublicKey", bob_key, NULL), YH_EPERM);
    assert_int_equal(call(x, "DeleteAPIKey", &bob, "PublicKey", bob_key, NULL),
                     0);
    assert_int_equal(fsm_key_get(x->f, bob_key, &(struct fsm_key){0}),
                     YH_ENOTFOUND);
    assert_int_equal(call(x, "DeleteAPIKey", &bob, "PublicKey", bob_key, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(call(x, "DeleteAPIKey", &bob, NULL), YH_EMISSING);
    /* the administrator's last key cannot go */
    assert_int_equal(
        call(x, "DeleteAPIKey", &x->admin, "PublicKey", "adminpub", NULL),
        YH_ESTATE);
    /* anonymous callers are refused everything but login */
    assert_int_equal(call(x, "CreateAPIKey", NULL, NULL), YH_EAUTH);
    assert_int_equal(call(x, "_Bootstrap", &x->admin, NULL), YH_EACTION);
    assert_int_equal(call(x, "DescribeCluster", &x->admin, NULL), YH_EACTION);
    assert_int_equal(call(x, "CreateAPIKey", &alice, "RequestToken",
                          "0123456789012345678901234567890123456789012345678"
                          "901234567890123456789",
                          NULL),
                     YH_EINVAL);
}

static void login(void **state)
{
    struct fx *x = *state;
    struct fsm_key key;
    char uid[FSM_ID_SIZE];
    uint64_t before;

    bootstrap(x);
    assert_int_equal(call(x, "CreateUser", &x->admin, "UserEmail", "carol@x.io",
                          "PassWord", "correct horse", NULL),
                     0);
    snprintf(uid, sizeof uid, "%s", res_str(x, "UserID"));
    before = x->index;
    assert_int_equal(call(x, "LoginByPassword", NULL, "UserEmail", "carol@x.io",
                          "PassWord", "wrong horse", NULL),
                     YH_EAUTH);
    assert_string_equal(res_str(x, "Message"), "wrong email or password");
    assert_int_equal(call(x, "LoginByPassword", NULL, "UserEmail",
                          "nobody@x.io", "PassWord", "correct horse", NULL),
                     YH_EAUTH);
    assert_int_equal(
        call(x, "LoginByPassword", NULL, "UserEmail", "carol@x.io", NULL),
        YH_EMISSING);
    assert_int_equal(x->index, before);
    assert_int_equal(call(x, "LoginByPassword", NULL, "UserEmail", "CAROL@x.io",
                          "PassWord", "correct horse", NULL),
                     0);
    assert_true(x->proposed);
    assert_string_equal(res_str(x, "Action"), "LoginByPasswordResponse");
    assert_string_equal(res_str(x, "UserID"), uid);
    assert_null(memmem(x->env.data, x->env.len, "correct horse", 13));
    assert_int_equal(fsm_key_get(x->f, res_str(x, "PublicKey"), &key), 0);
    assert_string_equal(key.private_key, res_str(x, "PrivateKey"));
    assert_string_equal(key.actor.user_id, uid);
    assert_string_equal(key.actor.tenant_id, uid);
    assert_false(key.actor.admin);
}

static void if_revision(void **state)
{
    struct fx *x = *state;
    struct fsm_actor alice;
    char aid[FSM_ID_SIZE];
    char rev[32], msg[64];
    uint64_t r;

    bootstrap(x);
    make_user(x, "alice@x.io", &alice, aid);
    assert_int_equal(call(x, "DescribeUser", &alice, NULL), 0);
    r = (uint64_t)yh_mp_get(&yh_mp_get(&x->res.data, "Infos")->via.array.ptr[0],
                            "Revision")
            ->via.u64;
    snprintf(rev, sizeof rev, "%llu", (unsigned long long)r);
    assert_int_equal(call(x, "ModifyNameAndRemark", &alice, "ResourceID", aid,
                          "Name", "A", "IfRevision", rev, NULL),
                     0);
    assert_int_equal(res_int(x, "Revision"), x->index);
    /* the old revision is now stale */
    assert_int_equal(call(x, "ModifyNameAndRemark", &alice, "ResourceID", aid,
                          "Name", "B", "IfRevision", rev, NULL),
                     YH_ECONFLICT);
    snprintf(msg, sizeof msg, "revision mismatch: have %llu",
             (unsigned long long)(x->index - 1));
    assert_string_equal(res_str(x, "Message"), msg);
    assert_int_equal(call(x, "DescribeUser", &alice, NULL), 0);
    assert_true(yh_mp_eq(
        yh_mp_get(&yh_mp_get(&x->res.data, "Infos")->via.array.ptr[0], "Name"),
        "A"));
    assert_int_equal(call(x, "ModifyNameAndRemark", &alice, "ResourceID", aid,
                          "Name", "B", "IfRevision", "x", NULL),
                     YH_EINVAL);
}

static void idempotency(void **state)
{
    struct fx *x = *state;
    struct fsm_actor alice;
    char aid[FSM_ID_SIZE], first[FSM_KEY_SIZE];
    struct yh_buf first_res = YH_BUF_INIT;
    char *d2;

    bootstrap(x);
    make_user(x, "alice@x.io", &alice, aid);
    assert_int_equal(
        call(x, "CreateAPIKey", &alice, "RequestToken", "tok-1", NULL), 0);
    snprintf(first, sizeof first, "%s", res_str(x, "PublicKey"));
    yh_buf_append(&first_res, x->out.data, x->out.len);
    /* retry, same body: the first result, nothing created (its stamp had
     * another key) */
    assert_int_equal(
        call(x, "CreateAPIKey", &alice, "RequestToken", "tok-1", NULL), 0);
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
    assert_int_equal(call(x, "CreateAPIKey", &alice, "RequestToken", "tok-1",
                          "UserID", aid, NULL),
                     YH_ETOKEN);
    assert_int_equal(call(x, "ModifyNameAndRemark", &alice, "RequestToken",
                          "tok-2", "ResourceID", aid, "Name", "N1", NULL),
                     0);
    assert_int_equal(call(x, "ModifyNameAndRemark", &alice, "RequestToken",
                          "tok-2", "Name", "N1", "ResourceID", aid, NULL),
                     0); /* map order does not matter */
    assert_int_equal(res_int(x, "Revision"), x->index - 1);
    /* a create retried with its token creates nothing more */
    assert_int_equal(
        call(x, "CreateUser", &x->admin, "UserEmail", "d@x.io", "PassWord",
             "long-enough", "RequestToken", "cu-1", NULL),
        0);
    assert_string_equal(res_str(x, "UserID"), "uid-00000002");
    assert_int_equal(
        call(x, "CreateUser", &x->admin, "RequestToken", "cu-1", "UserEmail",
             "d@x.io", "PassWord", "other-pass", NULL),
        0);
    assert_string_equal(res_str(x, "UserID"), "uid-00000002");
    assert_int_equal(call(x, "DescribeUser", &x->admin, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 3);
    assert_int_equal(
        call(x, "CreateUser", &x->admin, "RequestToken", "cu-1", "UserEmail",
             "e@x.io", "PassWord", "long-enough", NULL),
        YH_ETOKEN);
    assert_int_equal(call(x, "DescribeUser", &x->admin, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 3);
    /* tokens are per user: the admin may use "tok-1" freely */
    assert_int_equal(
        call(x, "CreateAPIKey", &x->admin, "RequestToken", "tok-1", NULL), 0);
    assert_string_not_equal(res_str(x, "PublicKey"), first);

    /* after the retention (log time), the token is new again */
    x->time += 2 * x->cfg.token_ttl_ns;
    assert_int_equal(
        call(x, "CreateAPIKey", &alice, "RequestToken", "tok-1", NULL), 0);
    assert_string_not_equal(res_str(x, "PublicKey"), first);
    assert_int_equal(
        fsm_key_get(x->f, res_str(x, "PublicKey"), &(struct fsm_key){0}), 0);
    /* expired tokens get purged by later applies */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(call(x, "DescribeUser", &alice, NULL), 0);
        assert_int_equal(call(x, "ModifyNameAndRemark", &alice, "ResourceID",
                              aid, "Remark", "r", NULL),
                         0);
    }
    d2 = dump_str(x->f);
    /* (in the tokens table; the oplog keeps every RequestToken) */
    assert_null(strstr(d2, "\"uid-00000001\\x00tok-2\""));
    assert_non_null(strstr(d2, "\"uid-00000001\\x00tok-1\""));
    free(d2);
    yh_buf_release(&first_res);
}

static void skip_and_restart(void **state)
{
    struct fx *x = *state;
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE];
    struct yh_buf saved = YH_BUF_INIT;
    struct yh_buf res = YH_BUF_INIT;
    uint64_t tag = 5, idx;
    char *dump1, *dump2;
    char hex[65];
    int skipped;

    bootstrap(x);
    assert_int_equal(call(x, "CreateUser", &x->admin, "UserEmail", "a@x.io",
                          "PassWord", "long-enough", NULL),
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
    assert_int_equal(call(x, "CreateUser", &x->admin, "UserEmail", "b@x.io",
                          "PassWord", "long-enough", NULL),
                     0);
    idx = x->index;
    fsm_digest(x->f, d1);
    fsm_digest_hex(x->f, hex);
    assert_int_equal(strlen(hex), 64);
    dump1 = dump_str(x->f);

    /* an unflushed batch is committed by close; reopen keeps it all */
    assert_int_equal(call(x, "CreateAPIKey", &x->admin, NULL), 0);
    idx = x->index;
    fsm_digest(x->f, d1);
    free(dump1);
    dump1 = dump_str(x->f);
    fsm_close(x->f);
    fx_open(x);
    assert_int_equal(fsm_applied_index(x->f), idx);
    fsm_digest(x->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    dump2 = dump_str(x->f);
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
    struct fx *x = *state;
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE];
    struct yh_buf b = YH_BUF_INIT, res = YH_BUF_INIT;
    struct fsm_node n = {0, "", ""};
    uint64_t committed, tag;
    char *dump1, *dump2;
    int skipped, rc = 0;

    /* a tiny map: the batch will not fit */
    fsm_close(x->f);
    rm_rf(x->dir);
    x->cfg.map_size = 256u << 10;
    fx_open(x);
    bootstrap(x);
    assert_int_equal(fsm_flush(x->f), 0);
    assert_int_equal(fsm_flush(x->f), 0); /* no batch: no-op */
    committed = fsm_applied_index(x->f);
    fsm_digest(x->f, d1);
    dump1 = dump_str(x->f);
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
    dump2 = dump_str(x->f);
    assert_string_equal(dump1, dump2);
    /* entries reported applied were lost: refuse to apply past them */
    assert_int_equal(fsm_cmd_node(&n, 1, x->time, 0, &b), 0);
    assert_int_equal(fsm_apply(x->f, committed + 100000, b.data, b.len, &res,
                               NULL, &tag, &skipped),
                     YH_EIO);
    assert_int_equal(fsm_applied_index(x->f), committed);
    /* a restart replays them from the committed index */
    fsm_close(x->f);
    fx_open(x);
    assert_int_equal(fsm_applied_index(x->f), committed);
    x->index = committed;
    assert_int_equal(apply_raw(x, b.data, b.len), YH_ENOTFOUND);
    free(dump1);
    free(dump2);
    yh_buf_release(&b);
    yh_buf_release(&res);
}

static void bad_envelopes(void **state)
{
    struct fx *x = *state;
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
    assert_int_equal(apply_raw(x, "junk", 4), YH_EPROTO);
    assert_int_equal(apply_raw(x, huge_array, sizeof huge_array), YH_EPROTO);
    assert_int_equal(apply_raw(x, deep, sizeof deep), YH_EPROTO);
    assert_int_equal(apply_raw(x, c1, sizeof c1), YH_EPROTO);
    assert_int_equal(apply_raw(x, "", 0), YH_EPROTO);
    /* a valid envelope, truncated */
    assert_int_equal(call(x, "CreateAPIKey", &x->admin, NULL), 0);
    yh_buf_append(&b, x->env.data, x->env.len);
    assert_int_equal(apply_raw(x, b.data, b.len - 3), YH_EPROTO);
    /* wrong version, unknown type, missing stamp */
    yh_buf_reset(&b);
    msgpack_packer_init(&pk, &b, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 2);
    yh_mp_pack_str(&pk, "v");
    msgpack_pack_uint64(&pk, 2);
    yh_mp_pack_kv_str(&pk, "type", "CreateAPIKey");
    assert_int_equal(apply_raw(x, b.data, b.len), YH_EPROTO);
    assert_string_equal(res_str(x, "Action"), "CreateAPIKeyResponse");
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
    assert_int_equal(apply_raw(x, b.data, b.len), YH_EACTION);
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
    assert_int_equal(apply_raw(x, b.data, b.len), YH_EPROTO);
    assert_non_null(strstr(res_str(x, "Message"), "PublicKey"));
    /* every one of them is in the oplog */
    before = x->index;
    assert_int_equal(call(x, "DescribeOperationLog", &x->admin, "RetCode",
                          "100", "Limit", "100", NULL),
                     0);
    assert_int_equal(res_int(x, "TotalCount"), 8);
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
    struct fx *x = *state;
    struct fsm_actor alice, bob;
    char aid[FSM_ID_SIZE], bid[FSM_ID_SIZE];
    const msgpack_object *infos, *r;
    struct walk w = {{0}, 0, 0};
    char t[32];

    bootstrap(x);
    make_user(x, "alice@x.io", &alice, aid);
    make_user(x, "bob@x.io", &bob, bid);
    assert_int_equal(call(x, "ModifyNameAndRemark", &alice, "ResourceID", aid,
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
    assert_int_equal(call(x, "ModifyNameAndRemark", &bob, "ResourceID", aid,
                          "Name", "x", NULL),
                     YH_EPERM);
    assert_int_equal(call(x, "ModifyNameAndRemark", &bob, "ResourceID", bid,
                          "Name", "Bobby", NULL),
                     0);

    /* admin: everything, newest first */
    assert_int_equal(call(x, "DescribeOperationLog", &x->admin, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), (int64_t)x->index);
    infos = yh_mp_get(&x->res.data, "Infos");
    assert_int_equal(yh_mp_get(&infos->via.array.ptr[0], "Index")->via.u64,
                     x->index);
    assert_int_equal(yh_mp_get(&infos->via.array.ptr[1], "Index")->via.u64,
                     x->index - 1);
    /* filters */
    assert_int_equal(call(x, "DescribeOperationLog", &x->admin, "Action",
                          "ModifyNameAndRemark", "RetCode", "0", NULL),
                     0);
    assert_int_equal(res_int(x, "TotalCount"), 2);
    assert_int_equal(
        call(x, "DescribeOperationLog", &x->admin, "ResourceID", aid, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 3); /* create, modify, EPERM */
    assert_int_equal(call(x, "DescribeOperationLog", &x->admin, "UserID", bid,
                          "RetCode", "140", NULL),
                     0);
    assert_int_equal(res_int(x, "TotalCount"), 1);
    r = &yh_mp_get(&x->res.data, "Infos")->via.array.ptr[0];
    assert_true(yh_mp_eq(yh_mp_get(r, "Message"),
                         "permission denied: '"
                         "uid-00000001"
                         "' belongs to another tenant"));
    snprintf(t, sizeof t, "%llu", (unsigned long long)(x->time / SEC + 1));
    assert_int_equal(
        call(x, "DescribeOperationLog", &x->admin, "BeginTime", t, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 0);
    assert_int_equal(
        call(x, "DescribeOperationLog", &x->admin, "EndTime", "1", NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 0);
    assert_int_equal(call(x, "DescribeOperationLog", &x->admin, "Offset", "1",
                          "Limit", "2", NULL),
                     0);
    assert_int_equal(yh_mp_get(&x->res.data, "Infos")->via.array.size, 2);
    /* tenants see their own tenant's records only */
    assert_int_equal(call(x, "DescribeOperationLog", &bob, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 2);
    assert_int_equal(call(x, "DescribeOperationLog", &alice, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 1);

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

/* ---- determinism: a random command stream into two stores ---- */

struct entry
{
    uint64_t index; /* log index */
    uint8_t *cmd;   /* command bytes */
    size_t len;     /* size */
};

struct stream
{
    struct entry e[600]; /* entries */
    unsigned n;          /* count */
};

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void stream_add(struct stream *st,
                       uint64_t index,
                       const void *cmd,
                       size_t len)
{
    struct entry *e = &st->e[st->n++];

    assert_true(st->n <= 600);
    e->index = index;
    e->cmd = malloc(len ? len : 1);
    memcpy(e->cmd, cmd, len);
    e->len = len;
}

/* Drive @x with @n random requests; record every entry applied. */
static void gen_stream(struct fx *x,
                       uint64_t seed,
                       unsigned n,
                       struct stream *st)
{
    char uids[64][FSM_ID_SIZE];
    struct fsm_actor actors[64];
    char keys[128][FSM_KEY_SIZE];
    unsigned n_users = 0, n_keys = 0;
    uint64_t s = seed;
    char a[64], b[64], c[64];

    for (unsigned i = 0; i < n; i++) {
        uint64_t r = rnd(&s) % 12;
        uint64_t before = x->index;
        unsigned u = n_users ? (unsigned)(rnd(&s) % n_users) : 0;
        const struct fsm_actor *who =
            n_users && rnd(&s) % 2 ? &actors[u] : &x->admin;

        /* gaps, like raft's own entries */
        if (rnd(&s) % 5 == 0) {
            x->index += 1 + rnd(&s) % 3;
        }
        switch (r) {
        case 0:
        case 1:
            snprintf(a, sizeof a, "user%llu@x.io",
                     (unsigned long long)(rnd(&s) % 40));
            snprintf(b, sizeof b, "name%llu",
                     (unsigned long long)(rnd(&s) % 1000));
            snprintf(c, sizeof c, "ct-%llu", (unsigned long long)(rnd(&s) % 6));
            if (call(x, "CreateUser", &x->admin, "UserEmail", a, "PassWord",
                     "password!", "Name", b, "RequestToken", c, NULL) == 0 &&
                n_users < 64) {
                struct fsm_key k;
                snprintf(uids[n_users], FSM_ID_SIZE, "%s",
                         res_str(x, "UserID"));
                if (x->proposed) {
                    stream_add(st, x->index, x->env.data, x->env.len);
                }
                if (call(x, "CreateAPIKey", &x->admin, "UserID", uids[n_users],
                         NULL) == 0 &&
                    fsm_key_get(x->f, res_str(x, "PublicKey"), &k) == 0) {
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
                     (unsigned long long)(rnd(&s) % (x->index + 1)));
            if (rnd(&s) % 2 && call(x, "DescribeUser", &x->admin, "UserIDs.0",
                                    uids[u], NULL) == 0) {
                snprintf(
                    a, sizeof a, "%llu",
                    (unsigned long long)yh_mp_get(
                        &yh_mp_get(&x->res.data, "Infos")->via.array.ptr[0],
                        "Revision")
                        ->via.u64);
            }
            snprintf(b, sizeof b, "n%llu", (unsigned long long)(rnd(&s) % 100));
            snprintf(c, sizeof c, "mt-%llu", (unsigned long long)(rnd(&s) % 4));
            call(x, "ModifyNameAndRemark", who, "ResourceID", uids[u], "Name",
                 b, "IfRevision", a, "RequestToken", c, NULL);
            break;
        case 4:
            if (call(x, "CreateAPIKey", who, NULL) == 0 && n_keys < 128) {
                snprintf(keys[n_keys++], FSM_KEY_SIZE, "%s",
                         res_str(x, "PublicKey"));
            }
            break;
        case 5:
            call(x, "DeleteAPIKey", who, "PublicKey",
                 n_keys ? keys[rnd(&s) % n_keys] : "nokey", NULL);
            break;
        case 6:
            snprintf(a, sizeof a, "user%llu@x.io",
                     (unsigned long long)(rnd(&s) % 40));
            call(x, "LoginByPassword", NULL, "UserEmail", a, "PassWord",
                 rnd(&s) % 2 ? "password!" : "wrong-password", NULL);
            break;
        case 7: {
            uint8_t junk[24];
            size_t len = 1 + rnd(&s) % sizeof junk;
            for (size_t j = 0; j < len; j++) {
                junk[j] = (uint8_t)rnd(&s);
            }
            apply_raw(x, junk, len);
            stream_add(st, x->index, junk, len);
            break;
        }
        case 8:
            if (x->env.len > 4) {
                /* the last envelope, truncated: never valid */
                size_t len = x->env.len - 1 - rnd(&s) % 4;
                apply_raw(x, x->env.data, len);
                stream_add(st, x->index, x->env.data, len);
            }
            break;
        case 9: {
            struct fsm_node nd = {1 + rnd(&s) % 5, "10.0.0.1:7500",
                                  "10.0.0.1:7400"};
            struct yh_buf bb = YH_BUF_INIT;
            assert_int_equal(
                fsm_cmd_node(&nd, (int)(rnd(&s) % 2), x->time, 0, &bb), 0);
            apply_raw(x, bb.data, bb.len);
            stream_add(st, x->index, bb.data, bb.len);
            yh_buf_release(&bb);
            break;
        }
        case 10:
            call(x, "DescribeOperationLog", who, "Limit", "5", NULL);
            break;
        default:
            /* a tenant trying an admin action: refused, never proposed */
            call(x, "CreateUser", who, "UserEmail", "z@x.io", "PassWord",
                 "password!", NULL);
            break;
        }
        if (x->proposed && x->index != before &&
            (st->n == 0 || st->e[st->n - 1].index != x->index)) {
            stream_add(st, x->index, x->env.data, x->env.len);
        }
        x->proposed = 0;
        /* occasional flushes on this side */
        if (rnd(&s) % 7 == 0) {
            assert_int_equal(fsm_flush(x->f), 0);
        }
    }
}

static void stream_free(struct stream *st)
{
    for (unsigned i = 0; i < st->n; i++) {
        free(st->e[i].cmd);
    }
    st->n = 0;
}

static void replay(struct fsm *f,
                   const struct stream *st,
                   unsigned flush_every,
                   int want_skipped)
{
    struct yh_buf res = YH_BUF_INIT;
    uint64_t tag;
    int skipped;

    for (unsigned i = 0; i < st->n; i++) {
        assert_int_equal(fsm_apply(f, st->e[i].index, st->e[i].cmd,
                                   st->e[i].len, &res, NULL, &tag, &skipped),
                         0);
        assert_int_equal(skipped, want_skipped);
        if (flush_every && i % flush_every == 0) {
            assert_int_equal(fsm_flush(f), 0);
        }
    }
    yh_buf_release(&res);
}

static void determinism(void **state)
{
    struct fx *x = *state;
    struct fx *y = fx_new();
    struct stream *st = calloc(1, sizeof *st);
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE];
    struct yh_buf b = YH_BUF_INIT;
    char *dump1, *dump2;

    /* the bootstrap is an entry like any other */
    assert_int_equal(
        fsm_cmd_bootstrap("adminpub", "adminpriv", NULL, 0, x->time, &b), 0);
    assert_int_equal(apply_raw(x, b.data, b.len), 0);
    stream_add(st, x->index, b.data, b.len);
    yh_buf_release(&b);
    {
        struct fsm_key k;
        assert_int_equal(fsm_key_get(x->f, "adminpub", &k), 0);
        x->admin = k.actor;
    }
    gen_stream(x, 0x9e3779b97f4a7c15ull, 300, st);
    assert_true(st->n > 150);

    replay(y->f, st, 13, 0);
    assert_int_equal(fsm_applied_index(y->f), fsm_applied_index(x->f));
    fsm_digest(x->f, d1);
    fsm_digest(y->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    dump1 = dump_str(x->f);
    dump2 = dump_str(y->f);
    assert_string_equal(dump1, dump2);
    /* the stream did exercise the interesting paths */
    assert_non_null(strstr(dump1, "\"RetCode\": 160"));
    assert_non_null(strstr(dump1, "\"RetCode\": 180"));
    assert_non_null(strstr(dump1, "\"RetCode\": 100"));
    assert_non_null(strstr(dump1, "\"RetCode\": 161"));
    free(dump1);
    free(dump2);

    /* and a third store fed twice (restart re-feed) agrees too */
    fsm_close(y->f);
    fx_open(y);
    replay(y->f, st, 0, 1); /* everything skipped */
    fsm_digest(y->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);

    stream_free(st);
    free(st);
    fx_free(y);
}

/* ---- snapshots ---- */

static void snapshot_of(struct fx *x, struct yh_buf *out)
{
    struct fsm_snap *s;

    assert_int_equal(fsm_snapshot_begin(x->f, &s), 0);
    assert_int_equal(fsm_snapshot_encode(s, out), 0);
    fsm_snapshot_end(s);
}

static void populate(struct fx *x)
{
    struct fsm_actor alice;
    char aid[FSM_ID_SIZE];

    bootstrap(x);
    make_user(x, "alice@x.io", &alice, aid);
    assert_int_equal(call(x, "ModifyNameAndRemark", &alice, "ResourceID", aid,
                          "Remark", "hello", "RequestToken", "s-1", NULL),
                     0);
    assert_int_equal(call(x, "LoginByPassword", NULL, "UserEmail", "alice@x.io",
                          "PassWord", "secret-pass", NULL),
                     0);
    apply_raw(x, "junk", 4);
}

static void snapshot_roundtrip(void **state)
{
    struct fx *x = *state;
    struct fx *y = fx_new();
    struct yh_buf snap = YH_BUF_INIT;
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE];
    char *dump1, *dump2;
    int loaded = 0;

    populate(x);
    snapshot_of(x, &snap);
    assert_memory_equal(snap.data, "YHSNAP01", 8);
    assert_int_equal(fsm_restore(y->f, snap.data, snap.len, &loaded), 0);
    assert_int_equal(loaded, 1);
    assert_int_equal(fsm_applied_index(y->f), fsm_applied_index(x->f));
    fsm_digest(x->f, d1);
    fsm_digest(y->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    dump1 = dump_str(x->f);
    dump2 = dump_str(y->f);
    assert_string_equal(dump1, dump2);
    free(dump1);
    free(dump2);
    /* the restored store serves keys and tokens */
    assert_int_equal(fsm_key_get(y->f, "adminpub", &(struct fsm_key){0}), 0);

    /* both continue identically */
    y->index = x->index;
    y->time = x->time;
    y->admin = x->admin;
    assert_int_equal(
        call(x, "ModifyNameAndRemark", &x->admin, "ResourceID", "uid-00000001",
             "Remark", "hello", "RequestToken", "s-1", NULL),
        0);
    apply_raw(y, x->env.data, x->env.len);
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
    fx_open(y);
    fsm_digest(y->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    yh_buf_release(&snap);
    fx_free(y);
}

static void snapshot_concurrent_apply(void **state)
{
    struct fx *x = *state;
    struct yh_buf snap = YH_BUF_INIT;
    struct fsm_snap *s;
    struct fx *y = fx_new();
    uint8_t d1[FSM_DIGEST_SIZE];
    uint8_t d2[FSM_DIGEST_SIZE];
    uint64_t at;
    int loaded;

    populate(x);
    assert_int_equal(fsm_snapshot_begin(x->f, &s), 0);
    at = fsm_applied_index(x->f);
    fsm_digest(x->f, d1);
    /* applies go on while the snapshot is open (MVCC) */
    assert_int_equal(call(x, "CreateAPIKey", &x->admin, NULL), 0);
    assert_int_equal(fsm_flush(x->f), 0);
    assert_int_equal(fsm_snapshot_encode(s, &snap), 0);
    fsm_snapshot_end(s);
    assert_int_equal(fsm_restore(y->f, snap.data, snap.len, &loaded), 0);
    assert_int_equal(loaded, 1);
    assert_int_equal(fsm_applied_index(y->f), at);
    fsm_digest(y->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    yh_buf_release(&snap);
    fx_free(y);
}

static void snapshot_corrupt(void **state)
{
    struct fx *x = *state;
    struct fx *y = fx_new();
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
    before = dump_str(y->f);
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
    after = dump_str(y->f);
    assert_string_equal(before, after);
    free(before);
    free(after);
    free(bad);
    yh_buf_release(&snap);
    fx_free(y);
}

static void snapshot_older_not_loaded(void **state)
{
    struct fx *x = *state;
    struct yh_buf old = YH_BUF_INIT;
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE];
    int loaded = 7;

    populate(x);
    snapshot_of(x, &old);
    assert_int_equal(call(x, "CreateAPIKey", &x->admin, NULL), 0);
    fsm_digest(x->f, d1);
    assert_int_equal(fsm_restore(x->f, old.data, old.len, &loaded), 0);
    assert_int_equal(loaded, 0);
    fsm_digest(x->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    assert_int_equal(
        fsm_key_get(x->f, res_str(x, "PublicKey"), &(struct fsm_key){0}), 0);
    yh_buf_release(&old);
}

/* A newer snapshot replaces everything, including state the snapshot does
 * not have. */
static void snapshot_replaces(void **state)
{
    struct fx *x = *state;
    struct fx *y = fx_new();
    struct yh_buf snap = YH_BUF_INIT;
    char *d1, *d2;
    int loaded;

    populate(x);
    snapshot_of(x, &snap);
    y->cfg = x->cfg;
    assert_int_equal(
        fsm_cmd_bootstrap("otherpub", "otherpriv", NULL, 0, y->time, &y->env),
        0);
    apply_raw(y, y->env.data, y->env.len);
    /* unflushed batch in y at restore time */
    assert_int_equal(fsm_restore(y->f, snap.data, snap.len, &loaded), 0);
    assert_int_equal(loaded, 1);
    assert_int_equal(fsm_key_get(y->f, "otherpub", &(struct fsm_key){0}),
                     YH_ENOTFOUND);
    d1 = dump_str(x->f);
    d2 = dump_str(y->f);
    assert_string_equal(d1, d2);
    free(d1);
    free(d2);
    yh_buf_release(&snap);
    fx_free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(action_kinds),
        cmocka_unit_test_setup_teardown(bootstrap_once, setup, teardown),
        cmocka_unit_test_setup_teardown(create_user_validation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(describe_user, setup, teardown),
        cmocka_unit_test_setup_teardown(permissions, setup, teardown),
        cmocka_unit_test_setup_teardown(login, setup, teardown),
        cmocka_unit_test_setup_teardown(if_revision, setup, teardown),
        cmocka_unit_test_setup_teardown(idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(skip_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(batch_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_envelopes, setup, teardown),
        cmocka_unit_test_setup_teardown(oplog, setup, teardown),
        cmocka_unit_test_setup_teardown(determinism, setup, teardown),
        cmocka_unit_test_setup_teardown(snapshot_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(snapshot_concurrent_apply, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(snapshot_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(snapshot_older_not_loaded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(snapshot_replaces, setup, teardown),
    };

    yh_log_level = YH_LOG_ERR - 1; /* quiet: failures are asserted */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
