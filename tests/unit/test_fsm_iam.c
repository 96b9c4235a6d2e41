/* Unit tests of identity and access: FreezeUser/UnfreezeUser, sub-accounts,
 * roles and the central permission check (fsm__authorize). */
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
#include "fsm/base/mp.h"
#include "fsm/fsm.h"

#define SEC 1000000000ull
#define T0 (1700000000ull * SEC)

/* ---- fixture (as in test_fsm.c) ---- */

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
    struct yh_buf resbuf;   /* bytes x->res points into */
    int proposed;           /* last call produced an entry */
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

static struct fx *fx_new(void)
{
    struct fx *x = calloc(1, sizeof *x);
    char err[YH_ERRMSG_SIZE];

    assert_non_null(x);
    snprintf(x->dir, sizeof x->dir, "/tmp/yh-test-fsmx-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    x->cfg.nosync = 1;
    x->cfg.map_size = 64u << 20;
    x->cfg.token_ttl_ns = 3600 * SEC;
    x->time = T0;
    msgpack_unpacked_init(&x->res);
    assert_int_equal(fsm_open(&x->f, x->dir, &x->cfg, err), 0);
    return x;
}

static void fx_free(struct fx *x)
{
    fsm_close(x->f);
    nftw(x->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    msgpack_unpacked_destroy(&x->res);
    yh_buf_release(&x->env);
    yh_buf_release(&x->out);
    yh_buf_release(&x->resbuf);
    free(x);
}

static void bootstrap(struct fx *x);

static int setup(void **state)
{
    struct fx *x = fx_new();

    bootstrap(x);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

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

/* Infos[i] of the last result. */
static const msgpack_object *info(struct fx *x, unsigned i)
{
    const msgpack_object *v = yh_mp_get(&x->res.data, "Infos");

    assert_non_null(v);
    assert_int_equal(v->type, MSGPACK_OBJECT_ARRAY);
    assert_true(i < v->via.array.size);
    return &v->via.array.ptr[i];
}

static unsigned n_infos(struct fx *x)
{
    const msgpack_object *v = yh_mp_get(&x->res.data, "Infos");

    assert_non_null(v);
    return v->via.array.size;
}

static const char *info_str(struct fx *x, unsigned i, const char *key)
{
    static char buf[4][256];
    static int j;
    char *out = buf[j++ & 3];

    if (yh_mp_strcpy(info(x, i), key, out, 256) != 0) {
        out[0] = '\0';
    }
    return out;
}

static __attribute__((unused)) int64_t info_int(struct fx *x,
                                                unsigned i,
                                                const char *key)
{
    const msgpack_object *o = yh_mp_get(info(x, i), key);
    int64_t v = -999999;

    if (o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN) {
        return o->via.boolean;
    }
    assert_int_equal(yh_mp_int(info(x, i), key, &v), 0);
    return v;
}

static int apply_raw(struct fx *x, const void *cmd, size_t len)
{
    int skipped = 1;
    uint64_t tag;

    x->index++;
    assert_int_equal(
        fsm_apply(x->f, x->index, cmd, len, &x->out, NULL, &tag, &skipped), 0);
    assert_int_equal(skipped, 0);
    set_result(x, &x->out);
    return (int)res_int(x, "RetCode");
}

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
        set_result(x, &result);
        yh_buf_release(&result);
        rc = (int)res_int(x, "RetCode");
        assert_int_not_equal(rc, 0);
        return rc;
    }
    yh_buf_release(&result);
    x->proposed = 1;
    return apply_raw(x, x->env.data, x->env.len);
}

/* call(x, action, actor, "Key", "value", ..., NULL) */
static int call(struct fx *x,
                const char *action,
                const struct fsm_actor *actor,
                const char *k,
                ...)
{
    struct yh_buf b = YH_BUF_INIT;
    const char *keys[32], *vals[32];
    msgpack_unpacked u;
    msgpack_packer pk;
    unsigned n = 0;
    size_t off = 0;
    va_list ap;
    int rc;

    va_start(ap, k);
    while (k != NULL) {
        assert_true(n < 32);
        keys[n] = k;
        vals[n++] = va_arg(ap, const char *);
        k = va_arg(ap, const char *);
    }
    va_end(ap);
    msgpack_packer_init(&pk, &b, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, n);
    for (unsigned i = 0; i < n; i++) {
        yh_mp_pack_str(&pk, keys[i]);
        yh_mp_pack_str(&pk, vals[i]);
    }
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)b.data, b.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    rc = call_obj(x, action, actor, &u.data);
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&b);
    return rc;
}

/* Tick the leader at @now and apply whatever it proposes; returns the
 * number of envelopes. */
struct tick_ctx
{
    struct fx *x;  /* fixture */
    unsigned n;    /* proposals */
    int codes[64]; /* their RetCodes */
};

static int tick_cb(void *arg, const uint8_t *env, size_t len)
{
    struct tick_ctx *t = arg;

    if (t->n < 64) {
        t->codes[t->n] = apply_raw(t->x, env, len);
    }
    t->n++;
    return 0;
}

static __attribute__((unused)) unsigned tick(struct fx *x, struct tick_ctx *t)
{
    memset(t, 0, sizeof *t);
    t->x = x;
    assert_int_equal(fsm_leader_tick(x->f, x->time, tick_cb, t), 0);
    return t->n;
}

static void bootstrap(struct fx *x)
{
    struct fsm_key key;
    struct yh_buf b = YH_BUF_INIT;

    assert_int_equal(
        fsm_cmd_bootstrap("adminpub", "adminpriv", NULL, 0, x->time, &b), 0);
    assert_int_equal(apply_raw(x, b.data, b.len), 0);
    yh_buf_release(&b);
    assert_int_equal(fsm_key_get(x->f, "adminpub", &key), 0);
    x->admin = key.actor;
}

/* Actor of a new API key of @uid, created by @by. */
static void key_for(struct fx *x,
                    const struct fsm_actor *by,
                    const char *uid,
                    struct fsm_actor *a)
{
    struct fsm_key key;

    assert_int_equal(call(x, "CreateAPIKey", by, "UserID", uid, NULL), 0);
    assert_int_equal(fsm_key_get(x->f, res_str(x, "PublicKey"), &key), 0);
    *a = key.actor;
}

static void make_tenant(struct fx *x,
                        const char *email,
                        struct fsm_actor *a,
                        char *uid_out)
{
    char uid[FSM_ID_SIZE];

    assert_int_equal(call(x, "CreateUser", &x->admin, "UserEmail", email,
                          "PassWord", "secret-pass", NULL),
                     0);
    snprintf(uid, sizeof uid, "%s", res_str(x, "UserID"));
    key_for(x, &x->admin, uid, a);
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

/* ---- tests ---- */

static void pattern_match(void **state)
{
    (void)state;
    /* through the role path below; here the matcher's corners */
    struct fx *x = *state;
    struct fsm_actor t, s;
    char tid[FSM_ID_SIZE], sid[FSM_ID_SIZE], rid[FSM_ID_SIZE];

    make_tenant(x, "t@x.io", &t, tid);
    assert_int_equal(call(x, "CreateSubAccount", &t, "UserEmail", "s@x.io",
                          "PassWord", "secret-pass", NULL),
                     0);
    snprintf(sid, sizeof sid, "%s", res_str(x, "SubAccountID"));
    key_for(x, &t, sid, &s);
    assert_int_equal(
        call(x, "CreateRole", &t, "RoleName", "r", "Permissions.0", "*Role",
             "Permissions.1", "DescribeSub*", "Permissions.2", "*Balan*", NULL),
        0);
    snprintf(rid, sizeof rid, "%s", res_str(x, "RoleID"));
    assert_int_equal(
        call(x, "AttachRole", &t, "RoleID", rid, "SubAccountID", sid, NULL), 0);
    assert_int_equal(call(x, "DescribeRole", &s, NULL), 0);        /* *Role */
    assert_int_equal(call(x, "DescribeSubAccount", &s, NULL), 0);  /* pre */
    assert_int_equal(call(x, "DescribeUser", &s, NULL), YH_EPERM); /* none */
    assert_int_equal(call(x, "DescribeRoles", &s, NULL), YH_EACTION);
    /* invalid patterns */
    assert_int_equal(call(x, "CreateRole", &t, "RoleName", "bad",
                          "Permissions.0", "Describe*Disk", NULL),
                     YH_EINVAL);
    assert_int_equal(call(x, "CreateRole", &t, "RoleName", "bad",
                          "Permissions.0", "Create-Disk", NULL),
                     YH_EINVAL);
    assert_int_equal(call(x, "CreateRole", &t, "RoleName", "bad",
                          "Permissions.0", "**", NULL),
                     YH_EINVAL);
    assert_int_equal(call(x, "CreateRole", &t, "RoleName", "bad", NULL),
                     YH_EMISSING);
    assert_int_equal(call(x, "CreateRole", &t, "Permissions.0", "*", NULL),
                     YH_EMISSING);
    assert_false(x->proposed);
}

static void freeze(void **state)
{
    struct fx *x = *state;
    struct fsm_actor t, s, t2;
    char tid[FSM_ID_SIZE], sid[FSM_ID_SIZE], rid[FSM_ID_SIZE];

    make_tenant(x, "t@x.io", &t, tid);
    make_tenant(x, "u@x.io", &t2, NULL);
    assert_int_equal(call(x, "CreateSubAccount", &t, "UserEmail", "s@x.io",
                          "PassWord", "secret-pass", NULL),
                     0);
    snprintf(sid, sizeof sid, "%s", res_str(x, "SubAccountID"));
    key_for(x, &t, sid, &s);
    assert_int_equal(call(x, "CreateRole", &t, "RoleName", "all",
                          "Permissions.0", "*", NULL),
                     0);
    snprintf(rid, sizeof rid, "%s", res_str(x, "RoleID"));
    assert_int_equal(
        call(x, "AttachRole", &t, "RoleID", rid, "SubAccountID", sid, NULL), 0);

    /* only the admin freezes */
    assert_int_equal(call(x, "FreezeUser", &t, "UserID", tid, NULL), YH_EPERM);
    assert_false(x->proposed);
    assert_int_equal(call(x, "FreezeUser", &x->admin, NULL), YH_EMISSING);
    assert_int_equal(call(x, "FreezeUser", &x->admin, "UserID", "uid-99", NULL),
                     YH_ENOTFOUND);
    assert_int_equal(
        call(x, "FreezeUser", &x->admin, "UserID", "uid-admin", NULL),
        YH_EPERM);
    assert_int_equal(call(x, "FreezeUser", &x->admin, "UserID", tid, NULL), 0);
    assert_string_equal(res_str(x, "State"), "Frozen");
    /* idempotent */
    assert_int_equal(call(x, "FreezeUser", &x->admin, "UserID", tid, NULL), 0);

    /* reads still work with the existing keys, writes are refused: at
     * prepare ... */
    assert_int_equal(call(x, "DescribeUser", &t, NULL), 0);
    assert_int_equal(call(x, "DescribeSubAccount", &s, NULL), 0);
    assert_int_equal(call(x, "ModifyNameAndRemark", &t, "ResourceID", tid,
                          "Name", "n", NULL),
                     YH_EPERM);
    assert_false(x->proposed);
    assert_string_equal(res_str(x, "Message"),
                        "permission denied: account '"
                        "uid-00000001"
                        "' is frozen (read-only)");
    assert_int_equal(call(x, "CreateAPIKey", &t, NULL), YH_EPERM);
    /* ... the sub-account too (its tenant is frozen) */
    assert_int_equal(call(x, "ModifyNameAndRemark", &s, "ResourceID", sid,
                          "Name", "n", NULL),
                     YH_EPERM);
    assert_non_null(strstr(res_str(x, "Message"),
                           "tenant 'uid-00000001' is "
                           "frozen"));
    /* other tenants are unaffected */
    assert_int_equal(call(x, "CreateAPIKey", &t2, NULL), 0);
    /* a frozen user can still log in (to read) */
    assert_int_equal(call(x, "LoginByPassword", NULL, "UserEmail", "t@x.io",
                          "PassWord", "secret-pass", NULL),
                     0);

    /* at apply: an envelope prepared before the freeze is refused */
    assert_int_equal(call(x, "UnfreezeUser", &x->admin, "UserID", tid, NULL),
                     0);
    assert_string_equal(res_str(x, "State"), "Normal");
    {
        struct yh_buf held = YH_BUF_INIT;
        assert_int_equal(call(x, "CreateAPIKey", &t, NULL), 0);
        /* prepare another one but hold it */
        struct yh_buf result = YH_BUF_INIT;
        msgpack_unpacked u;
        msgpack_packer pk;
        struct yh_buf req = YH_BUF_INIT;
        size_t off = 0;
        msgpack_packer_init(&pk, &req, yh_buf_msgpack_write);
        msgpack_pack_map(&pk, 0);
        msgpack_unpacked_init(&u);
        msgpack_unpack_next(&u, (const char *)req.data, req.len, &off);
        assert_int_equal(fsm_cmd_prepare(x->f, "CreateAPIKey", &u.data, &t, "",
                                         x->time, 1, &held, &result),
                         0);
        assert_true(held.len > 0);
        assert_int_equal(call(x, "FreezeUser", &x->admin, "UserID", tid, NULL),
                         0);
        assert_int_equal(apply_raw(x, held.data, held.len), YH_EPERM);
        msgpack_unpacked_destroy(&u);
        yh_buf_release(&req);
        yh_buf_release(&result);
        yh_buf_release(&held);
    }
    /* freezing a sub-account alone */
    assert_int_equal(call(x, "UnfreezeUser", &x->admin, "UserID", tid, NULL),
                     0);
    assert_int_equal(call(x, "FreezeUser", &x->admin, "UserID", sid, NULL), 0);
    assert_int_equal(call(x, "CreateAPIKey", &s, NULL), YH_EPERM);
    assert_int_equal(call(x, "CreateAPIKey", &t, NULL), 0);
    assert_int_equal(call(x, "DescribeSubAccount", &t, NULL), 0);
    assert_string_equal(info_str(x, 0, "State"), "Frozen");
}

static void sub_accounts(void **state)
{
    struct fx *x = *state;
    struct fsm_actor t, t2, s, s2;
    char tid[FSM_ID_SIZE], t2id[FSM_ID_SIZE], sid[FSM_ID_SIZE];
    char s2id[FSM_ID_SIZE], pub[128];

    make_tenant(x, "t@x.io", &t, tid);
    make_tenant(x, "u@x.io", &t2, t2id);
    /* validation */
    assert_int_equal(
        call(x, "CreateSubAccount", &t, "PassWord", "secret-pass", NULL),
        YH_EMISSING);
    assert_int_equal(call(x, "CreateSubAccount", &t, "UserEmail", "nope",
                          "PassWord", "secret-pass", NULL),
                     YH_EINVAL);
    assert_int_equal(call(x, "CreateSubAccount", &t, "UserEmail", "s@x.io",
                          "PassWord", "short", NULL),
                     YH_EINVAL);
    assert_int_equal(call(x, "CreateSubAccount", &t, "UserEmail", "t@x.io",
                          "PassWord", "secret-pass", NULL),
                     YH_EEXIST);
    assert_int_equal(call(x, "CreateSubAccount", &t, "UserEmail", "s@x.io",
                          "PassWord", "secret-pass", "TenantID", t2id, NULL),
                     YH_EPERM);
    /* the admin must say for which tenant */
    assert_int_equal(call(x, "CreateSubAccount", &x->admin, "UserEmail",
                          "s@x.io", "PassWord", "secret-pass", NULL),
                     YH_EMISSING);
    assert_int_equal(
        call(x, "CreateSubAccount", &x->admin, "UserEmail", "s@x.io",
             "PassWord", "secret-pass", "TenantID", "uid-404", NULL),
        YH_ENOTFOUND);
    assert_int_equal(call(x, "CreateSubAccount", &t, "UserEmail", "s@x.io",
                          "PassWord", "secret-pass", "Name", "Sam", NULL),
                     0);
    snprintf(sid, sizeof sid, "%s", res_str(x, "SubAccountID"));
    assert_string_equal(sid, "sub-00000001");
    assert_int_equal(
        call(x, "CreateSubAccount", &x->admin, "UserEmail", "s2@x.io",
             "PassWord", "secret-pass", "TenantID", t2id, NULL),
        0);
    snprintf(s2id, sizeof s2id, "%s", res_str(x, "SubAccountID"));
    /* a tenant creates keys for its own sub-accounts only */
    key_for(x, &t, sid, &s);
    assert_string_equal(s.user_id, sid);
    assert_string_equal(s.tenant_id, tid);
    assert_false(s.admin);
    assert_int_equal(call(x, "CreateAPIKey", &t, "UserID", s2id, NULL),
                     YH_EPERM);
    key_for(x, &t2, s2id, &s2);
    /* a sub-account cannot create keys for its tenant, nor sub-accounts */
    assert_int_equal(call(x, "CreateAPIKey", &s, "UserID", tid, NULL),
                     YH_EPERM);
    assert_int_equal(call(x, "CreateSubAccount", &s, "UserEmail", "s3@x.io",
                          "PassWord", "secret-pass", NULL),
                     YH_EPERM);
    /* sub-account login */
    assert_int_equal(call(x, "LoginByPassword", NULL, "UserEmail", "S@x.io",
                          "PassWord", "secret-pass", NULL),
                     0);
    assert_string_equal(res_str(x, "UserID"), sid);
    snprintf(pub, sizeof pub, "%s", res_str(x, "PublicKey"));

    /* describe: each tenant sees its own */
    assert_int_equal(call(x, "DescribeSubAccount", &t, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 1);
    assert_string_equal(info_str(x, 0, "SubAccountID"), sid);
    assert_string_equal(info_str(x, 0, "TenantID"), tid);
    assert_string_equal(info_str(x, 0, "Name"), "Sam");
    assert_null(yh_mp_get(info(x, 0), "PwHash"));
    assert_int_equal(
        call(x, "DescribeSubAccount", &t, "SubAccountIDs.0", s2id, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 0);
    assert_int_equal(call(x, "DescribeSubAccount", &x->admin, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 2);
    assert_int_equal(
        call(x, "DescribeSubAccount", &x->admin, "TenantID", t2id, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 1);
    assert_string_equal(info_str(x, 0, "SubAccountID"), s2id);
    assert_int_equal(call(x, "DescribeSubAccount", &x->admin, "Limit", "1",
                          "Offset", "1", NULL),
                     0);
    assert_int_equal(res_int(x, "TotalCount"), 2);
    assert_int_equal(n_infos(x), 1);
    assert_string_equal(info_str(x, 0, "SubAccountID"), s2id);
    assert_int_equal(
        call(x, "DescribeSubAccount", &x->admin, "Limit", "101", NULL),
        YH_EINVAL);
    /* DescribeUser of the tenant lists the sub-account too */
    assert_int_equal(call(x, "DescribeUser", &t, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 2);

    /* delete: not another tenant's, not the tenant itself */
    assert_int_equal(
        call(x, "DeleteSubAccount", &t, "SubAccountID", s2id, NULL),
        YH_ENOTFOUND);
    assert_int_equal(call(x, "DeleteSubAccount", &t, "SubAccountID", tid, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(call(x, "DeleteSubAccount", &s, "SubAccountID", sid, NULL),
                     YH_EPERM);
    assert_int_equal(call(x, "DeleteSubAccount", &t, NULL), YH_EMISSING);
    assert_int_equal(call(x, "DeleteSubAccount", &t, "SubAccountID", sid, NULL),
                     0);
    /* its keys are gone, its email is free again */
    assert_int_equal(fsm_key_get(x->f, pub, &(struct fsm_key){0}),
                     YH_ENOTFOUND);
    assert_int_equal(call(x, "LoginByPassword", NULL, "UserEmail", "s@x.io",
                          "PassWord", "secret-pass", NULL),
                     YH_EAUTH);
    /* a held actor of the deleted account is refused */
    assert_int_equal(call(x, "DescribeRole", &s, NULL), YH_EAUTH);
    assert_int_equal(call(x, "CreateSubAccount", &t, "UserEmail", "s@x.io",
                          "PassWord", "secret-pass", NULL),
                     0);
    assert_string_equal(res_str(x, "SubAccountID"), "sub-00000003");
    assert_int_equal(
        call(x, "DeleteSubAccount", &x->admin, "SubAccountID", s2id, NULL), 0);
}

static void roles(void **state)
{
    struct fx *x = *state;
    struct fsm_actor t, t2, s;
    char tid[FSM_ID_SIZE], t2id[FSM_ID_SIZE], sid[FSM_ID_SIZE];
    char r1[FSM_ID_SIZE], r2[FSM_ID_SIZE], r3[FSM_ID_SIZE];

    make_tenant(x, "t@x.io", &t, tid);
    make_tenant(x, "u@x.io", &t2, t2id);
    assert_int_equal(call(x, "CreateSubAccount", &t, "UserEmail", "s@x.io",
                          "PassWord", "secret-pass", NULL),
                     0);
    snprintf(sid, sizeof sid, "%s", res_str(x, "SubAccountID"));
    key_for(x, &t, sid, &s);

    /* no role: nothing allowed, not even reads */
    assert_int_equal(call(x, "DescribeUser", &s, NULL), YH_EPERM);
    assert_string_equal(res_str(x, "Message"),
                        "permission denied: no role of sub-account "
                        "'sub-00000001' allows DescribeUser");
    assert_int_equal(call(x, "ModifyNameAndRemark", &s, "ResourceID", sid,
                          "Name", "x", NULL),
                     YH_EPERM);
    assert_false(x->proposed);

    assert_int_equal(call(x, "CreateRole", &t, "RoleName", "readers",
                          "Permissions.0", "Describe*", NULL),
                     0);
    snprintf(r1, sizeof r1, "%s", res_str(x, "RoleID"));
    assert_string_equal(r1, "role-00000001");
    assert_int_equal(call(x, "CreateRole", &t, "RoleName", "readers",
                          "Permissions.0", "*", NULL),
                     YH_EEXIST);
    /* the same name in another tenant is fine; the admin names a tenant */
    assert_int_equal(call(x, "CreateRole", &x->admin, "RoleName", "readers",
                          "Permissions.0", "*", NULL),
                     YH_EMISSING);
    assert_int_equal(call(x, "CreateRole", &x->admin, "RoleName", "readers",
                          "Permissions.0", "*", "TenantID", t2id, NULL),
                     0);
    snprintf(r2, sizeof r2, "%s", res_str(x, "RoleID"));
    {
        /* an array works as well as Key.N */
        struct yh_buf b = YH_BUF_INIT;
        msgpack_packer pk;
        msgpack_unpacked u;
        size_t off = 0;
        msgpack_packer_init(&pk, &b, yh_buf_msgpack_write);
        msgpack_pack_map(&pk, 2);
        yh_mp_pack_kv_str(&pk, "RoleName", "editors");
        yh_mp_pack_str(&pk, "Permissions");
        msgpack_pack_array(&pk, 2);
        yh_mp_pack_str(&pk, "ModifyNameAndRemark");
        yh_mp_pack_str(&pk, "*APIKey");
        msgpack_unpacked_init(&u);
        msgpack_unpack_next(&u, (const char *)b.data, b.len, &off);
        assert_int_equal(call_obj(x, "CreateRole", &t, &u.data), 0);
        snprintf(r3, sizeof r3, "%s", res_str(x, "RoleID"));
        msgpack_unpacked_destroy(&u);
        yh_buf_release(&b);
    }
    /* describe is tenant-scoped */
    assert_int_equal(call(x, "DescribeRole", &t, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 2);
    assert_string_equal(info_str(x, 0, "RoleName"), "readers");
    {
        const msgpack_object *p = yh_mp_get(info(x, 1), "Permissions");
        assert_non_null(p);
        assert_int_equal(p->type, MSGPACK_OBJECT_ARRAY);
        assert_int_equal(p->via.array.size, 2);
        assert_true(yh_mp_eq(&p->via.array.ptr[1], "*APIKey"));
    }
    assert_int_equal(call(x, "DescribeRole", &t2, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 1);
    assert_int_equal(call(x, "DescribeRole", &t2, "RoleIDs.0", r1, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 0);
    assert_int_equal(call(x, "DescribeRole", &x->admin, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 3);

    /* attach: validation and scoping */
    assert_int_equal(call(x, "AttachRole", &t, "RoleID", r1, NULL),
                     YH_EMISSING);
    assert_int_equal(
        call(x, "AttachRole", &t, "RoleID", r2, "SubAccountID", sid, NULL),
        YH_ENOTFOUND); /* another tenant's role */
    assert_int_equal(
        call(x, "AttachRole", &t2, "RoleID", r2, "SubAccountID", sid, NULL),
        YH_ENOTFOUND); /* another tenant's sub-account */
    assert_int_equal(call(x, "AttachRole", &x->admin, "RoleID", r2,
                          "SubAccountID", sid, NULL),
                     YH_EPERM); /* role and sub-account of different tenants */
    assert_int_equal(
        call(x, "AttachRole", &t, "RoleID", r1, "SubAccountID", tid, NULL),
        YH_ENOTFOUND); /* not a sub-account */
    assert_int_equal(
        call(x, "AttachRole", &s, "RoleID", r1, "SubAccountID", sid, NULL),
        YH_EPERM); /* sub-accounts do not grant themselves */
    assert_int_equal(
        call(x, "AttachRole", &t, "RoleID", r1, "SubAccountID", sid, NULL), 0);
    assert_int_equal(
        call(x, "AttachRole", &t, "RoleID", r1, "SubAccountID", sid, NULL),
        YH_EEXIST);

    /* now reads work, writes do not */
    assert_int_equal(call(x, "DescribeUser", &s, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 2); /* its tenant's users */
    assert_int_equal(call(x, "DescribeOperationLog", &s, NULL), 0);
    assert_int_equal(call(x, "ModifyNameAndRemark", &s, "ResourceID", sid,
                          "Name", "x", NULL),
                     YH_EPERM);
    assert_int_equal(
        call(x, "AttachRole", &t, "RoleID", r3, "SubAccountID", sid, NULL), 0);
    assert_int_equal(call(x, "ModifyNameAndRemark", &s, "ResourceID", sid,
                          "Name", "x", NULL),
                     0);
    /* still only within the tenant */
    assert_int_equal(call(x, "ModifyNameAndRemark", &s, "ResourceID", t2id,
                          "Name", "x", NULL),
                     YH_EPERM);
    assert_int_equal(call(x, "CreateAPIKey", &s, NULL), 0);
    assert_int_equal(call(x, "DescribeSubAccount", &t, NULL), 0);
    {
        const msgpack_object *p = yh_mp_get(info(x, 0), "Roles");
        assert_int_equal(p->via.array.size, 2);
    }

    /* detach: checked at apply against the state then */
    assert_int_equal(
        call(x, "DetachRole", &t, "RoleID", r3, "SubAccountID", sid, NULL), 0);
    assert_int_equal(
        call(x, "DetachRole", &t, "RoleID", r3, "SubAccountID", sid, NULL),
        YH_ENOTFOUND);
    assert_int_equal(call(x, "ModifyNameAndRemark", &s, "ResourceID", sid,
                          "Name", "y", NULL),
                     YH_EPERM);
    {
        /* prepared while allowed, applied after the detach */
        struct yh_buf held = YH_BUF_INIT, result = YH_BUF_INIT,
                      req = YH_BUF_INIT;
        msgpack_packer pk;
        msgpack_unpacked u;
        size_t off = 0;
        assert_int_equal(
            call(x, "AttachRole", &t, "RoleID", r3, "SubAccountID", sid, NULL),
            0);
        msgpack_packer_init(&pk, &req, yh_buf_msgpack_write);
        msgpack_pack_map(&pk, 2);
        yh_mp_pack_kv_str(&pk, "ResourceID", sid);
        yh_mp_pack_kv_str(&pk, "Name", "z");
        msgpack_unpacked_init(&u);
        msgpack_unpack_next(&u, (const char *)req.data, req.len, &off);
        assert_int_equal(fsm_cmd_prepare(x->f, "ModifyNameAndRemark", &u.data,
                                         &s, "", x->time, 1, &held, &result),
                         0);
        assert_true(held.len > 0);
        assert_int_equal(
            call(x, "DetachRole", &t, "RoleID", r3, "SubAccountID", sid, NULL),
            0);
        assert_int_equal(apply_raw(x, held.data, held.len), YH_EPERM);
        msgpack_unpacked_destroy(&u);
        yh_buf_release(&req);
        yh_buf_release(&result);
        yh_buf_release(&held);
    }
    /* deleting a role unbinds it */
    assert_int_equal(call(x, "DeleteRole", &t2, "RoleID", r1, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(call(x, "DeleteRole", &s, "RoleID", r1, NULL), YH_EPERM);
    assert_int_equal(call(x, "DeleteRole", &t, "RoleID", r1, NULL), 0);
    assert_int_equal(call(x, "DescribeUser", &s, NULL), YH_EPERM);
    assert_int_equal(call(x, "DescribeSubAccount", &t, NULL), 0);
    assert_int_equal(yh_mp_get(info(x, 0), "Roles")->via.array.size, 0);
    {
        char *d = dump_str(x->f);
        assert_non_null(strstr(d, "[roles] 2"));
        assert_non_null(strstr(d, "[rolebind] 0"));
        free(d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(pattern_match, setup, teardown),
        cmocka_unit_test_setup_teardown(freeze, setup, teardown),
        cmocka_unit_test_setup_teardown(sub_accounts, setup, teardown),
        cmocka_unit_test_setup_teardown(roles, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
