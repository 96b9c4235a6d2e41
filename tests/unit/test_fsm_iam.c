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
#include "tests/lib/fsmtest.h"

#define SEC FSMTEST_SEC
#define T0 FSMTEST_T0

/* ---- tests ---- */

static void pattern_match(void **state)
{
    (void)state;
    /* through the role path below; here the matcher's corners */
    struct fsmtest *x = *state;
    struct fsm_actor t, s;
    char tid[FSM_ID_SIZE], sid[FSM_ID_SIZE], rid[FSM_ID_SIZE];

    fsmtest_make_tenant(x, "t@x.io", &t, tid);
    assert_int_equal(fsmtest_call(x, "CreateSubAccount", &t, "UserEmail",
                                  "s@x.io", "PassWord", "secret-pass", NULL),
                     0);
    snprintf(sid, sizeof sid, "%s", fsmtest_res_str(x, "SubAccountID"));
    fsmtest_key_for(x, &t, sid, &s);
    assert_int_equal(
        fsmtest_call(x, "CreateRole", &t, "RoleName", "r", "Permissions.0",
                     "*Role", "Permissions.1", "DescribeSub*", "Permissions.2",
                     "*Balan*", NULL),
        0);
    snprintf(rid, sizeof rid, "%s", fsmtest_res_str(x, "RoleID"));
    assert_int_equal(fsmtest_call(x, "AttachRole", &t, "RoleID", rid,
                                  "SubAccountID", sid, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "DescribeRole", &s, NULL), 0); /* *Role */
    assert_int_equal(fsmtest_call(x, "DescribeSubAccount", &s, NULL),
                     0); /* pre */
    assert_int_equal(fsmtest_call(x, "DescribeUser", &s, NULL),
                     YH_EPERM); /* none */
    assert_int_equal(fsmtest_call(x, "DescribeRoles", &s, NULL), YH_EACTION);
    /* invalid patterns */
    assert_int_equal(fsmtest_call(x, "CreateRole", &t, "RoleName", "bad",
                                  "Permissions.0", "Describe*Disk", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateRole", &t, "RoleName", "bad",
                                  "Permissions.0", "Create-Disk", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateRole", &t, "RoleName", "bad",
                                  "Permissions.0", "**", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateRole", &t, "RoleName", "bad", NULL),
                     YH_EMISSING);
    assert_int_equal(
        fsmtest_call(x, "CreateRole", &t, "Permissions.0", "*", NULL),
        YH_EMISSING);
    assert_false(x->proposed);
}

static void freeze(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t, s, t2;
    char tid[FSM_ID_SIZE], sid[FSM_ID_SIZE], rid[FSM_ID_SIZE];

    fsmtest_make_tenant(x, "t@x.io", &t, tid);
    fsmtest_make_tenant(x, "u@x.io", &t2, NULL);
    assert_int_equal(fsmtest_call(x, "CreateSubAccount", &t, "UserEmail",
                                  "s@x.io", "PassWord", "secret-pass", NULL),
                     0);
    snprintf(sid, sizeof sid, "%s", fsmtest_res_str(x, "SubAccountID"));
    fsmtest_key_for(x, &t, sid, &s);
    assert_int_equal(fsmtest_call(x, "CreateRole", &t, "RoleName", "all",
                                  "Permissions.0", "*", NULL),
                     0);
    snprintf(rid, sizeof rid, "%s", fsmtest_res_str(x, "RoleID"));
    assert_int_equal(fsmtest_call(x, "AttachRole", &t, "RoleID", rid,
                                  "SubAccountID", sid, NULL),
                     0);

    /* only the admin freezes */
    assert_int_equal(fsmtest_call(x, "FreezeUser", &t, "UserID", tid, NULL),
                     YH_EPERM);
    assert_false(x->proposed);
    assert_int_equal(fsmtest_call(x, "FreezeUser", &x->admin, NULL),
                     YH_EMISSING);
    assert_int_equal(
        fsmtest_call(x, "FreezeUser", &x->admin, "UserID", "uid-99", NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "FreezeUser", &x->admin, "UserID", "uid-admin", NULL),
        YH_EPERM);
    assert_int_equal(
        fsmtest_call(x, "FreezeUser", &x->admin, "UserID", tid, NULL), 0);
    assert_string_equal(fsmtest_res_str(x, "State"), "Frozen");
    /* idempotent */
    assert_int_equal(
        fsmtest_call(x, "FreezeUser", &x->admin, "UserID", tid, NULL), 0);

    /* reads still work with the existing keys, writes are refused: at
     * prepare ... */
    assert_int_equal(fsmtest_call(x, "DescribeUser", &t, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DescribeSubAccount", &s, NULL), 0);
    assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &t, "ResourceID",
                                  tid, "Name", "n", NULL),
                     YH_EPERM);
    assert_false(x->proposed);
    assert_string_equal(fsmtest_res_str(x, "Message"),
                        "permission denied: account '"
                        "uid-00000001"
                        "' is frozen (read-only)");
    assert_int_equal(fsmtest_call(x, "CreateAPIKey", &t, NULL), YH_EPERM);
    /* ... the sub-account too (its tenant is frozen) */
    assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &s, "ResourceID",
                                  sid, "Name", "n", NULL),
                     YH_EPERM);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"),
                           "tenant 'uid-00000001' is "
                           "frozen"));
    /* other tenants are unaffected */
    assert_int_equal(fsmtest_call(x, "CreateAPIKey", &t2, NULL), 0);
    /* a frozen user can still log in (to read) */
    assert_int_equal(fsmtest_call(x, "LoginByPassword", NULL, "UserEmail",
                                  "t@x.io", "PassWord", "secret-pass", NULL),
                     0);

    /* at apply: an envelope prepared before the freeze is refused */
    assert_int_equal(
        fsmtest_call(x, "UnfreezeUser", &x->admin, "UserID", tid, NULL), 0);
    assert_string_equal(fsmtest_res_str(x, "State"), "Normal");
    {
        struct yh_buf held = YH_BUF_INIT;
        assert_int_equal(fsmtest_call(x, "CreateAPIKey", &t, NULL), 0);
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
        assert_int_equal(
            fsmtest_call(x, "FreezeUser", &x->admin, "UserID", tid, NULL), 0);
        assert_int_equal(fsmtest_apply_raw(x, held.data, held.len), YH_EPERM);
        msgpack_unpacked_destroy(&u);
        yh_buf_release(&req);
        yh_buf_release(&result);
        yh_buf_release(&held);
    }
    /* freezing a sub-account alone */
    assert_int_equal(
        fsmtest_call(x, "UnfreezeUser", &x->admin, "UserID", tid, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "FreezeUser", &x->admin, "UserID", sid, NULL), 0);
    assert_int_equal(fsmtest_call(x, "CreateAPIKey", &s, NULL), YH_EPERM);
    assert_int_equal(fsmtest_call(x, "CreateAPIKey", &t, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DescribeSubAccount", &t, NULL), 0);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Frozen");
}

static void sub_accounts(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t, t2, s, s2;
    char tid[FSM_ID_SIZE], t2id[FSM_ID_SIZE], sid[FSM_ID_SIZE];
    char s2id[FSM_ID_SIZE], pub[128];

    fsmtest_make_tenant(x, "t@x.io", &t, tid);
    fsmtest_make_tenant(x, "u@x.io", &t2, t2id);
    /* validation */
    assert_int_equal(fsmtest_call(x, "CreateSubAccount", &t, "PassWord",
                                  "secret-pass", NULL),
                     YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "CreateSubAccount", &t, "UserEmail",
                                  "nope", "PassWord", "secret-pass", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateSubAccount", &t, "UserEmail",
                                  "s@x.io", "PassWord", "short", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateSubAccount", &t, "UserEmail",
                                  "t@x.io", "PassWord", "secret-pass", NULL),
                     YH_EEXIST);
    assert_int_equal(
        fsmtest_call(x, "CreateSubAccount", &t, "UserEmail", "s@x.io",
                     "PassWord", "secret-pass", "TenantID", t2id, NULL),
        YH_EPERM);
    /* the admin must say for which tenant */
    assert_int_equal(fsmtest_call(x, "CreateSubAccount", &x->admin, "UserEmail",
                                  "s@x.io", "PassWord", "secret-pass", NULL),
                     YH_EMISSING);
    assert_int_equal(
        fsmtest_call(x, "CreateSubAccount", &x->admin, "UserEmail", "s@x.io",
                     "PassWord", "secret-pass", "TenantID", "uid-404", NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "CreateSubAccount", &t, "UserEmail", "s@x.io",
                     "PassWord", "secret-pass", "Name", "Sam", NULL),
        0);
    snprintf(sid, sizeof sid, "%s", fsmtest_res_str(x, "SubAccountID"));
    assert_string_equal(sid, "sub-00000001");
    assert_int_equal(
        fsmtest_call(x, "CreateSubAccount", &x->admin, "UserEmail", "s2@x.io",
                     "PassWord", "secret-pass", "TenantID", t2id, NULL),
        0);
    snprintf(s2id, sizeof s2id, "%s", fsmtest_res_str(x, "SubAccountID"));
    /* a tenant creates keys for its own sub-accounts only */
    fsmtest_key_for(x, &t, sid, &s);
    assert_string_equal(s.user_id, sid);
    assert_string_equal(s.tenant_id, tid);
    assert_false(s.admin);
    assert_int_equal(fsmtest_call(x, "CreateAPIKey", &t, "UserID", s2id, NULL),
                     YH_EPERM);
    fsmtest_key_for(x, &t2, s2id, &s2);
    /* a sub-account cannot create keys for its tenant, nor sub-accounts */
    assert_int_equal(fsmtest_call(x, "CreateAPIKey", &s, "UserID", tid, NULL),
                     YH_EPERM);
    assert_int_equal(fsmtest_call(x, "CreateSubAccount", &s, "UserEmail",
                                  "s3@x.io", "PassWord", "secret-pass", NULL),
                     YH_EPERM);
    /* sub-account login */
    assert_int_equal(fsmtest_call(x, "LoginByPassword", NULL, "UserEmail",
                                  "S@x.io", "PassWord", "secret-pass", NULL),
                     0);
    assert_string_equal(fsmtest_res_str(x, "UserID"), sid);
    snprintf(pub, sizeof pub, "%s", fsmtest_res_str(x, "PublicKey"));

    /* describe: each tenant sees its own */
    assert_int_equal(fsmtest_call(x, "DescribeSubAccount", &t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "SubAccountID"), sid);
    assert_string_equal(fsmtest_info_str(x, 0, "TenantID"), tid);
    assert_string_equal(fsmtest_info_str(x, 0, "Name"), "Sam");
    assert_null(yh_mp_get(fsmtest_info(x, 0), "PwHash"));
    assert_int_equal(fsmtest_call(x, "DescribeSubAccount", &t,
                                  "SubAccountIDs.0", s2id, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(fsmtest_call(x, "DescribeSubAccount", &x->admin, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
    assert_int_equal(fsmtest_call(x, "DescribeSubAccount", &x->admin,
                                  "TenantID", t2id, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "SubAccountID"), s2id);
    assert_int_equal(fsmtest_call(x, "DescribeSubAccount", &x->admin, "Limit",
                                  "1", "Offset", "1", NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
    assert_int_equal(fsmtest_n_infos(x), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "SubAccountID"), s2id);
    assert_int_equal(
        fsmtest_call(x, "DescribeSubAccount", &x->admin, "Limit", "101", NULL),
        YH_EINVAL);
    /* DescribeUser of the tenant lists the sub-account too, in UserID order
     * ("sub-" before "uid-"), from the tenant's index rows */
    assert_int_equal(fsmtest_call(x, "DescribeUser", &t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
    assert_int_equal(fsmtest_n_infos(x), 2);
    assert_string_equal(fsmtest_info_str(x, 0, "UserID"), sid);
    assert_string_equal(fsmtest_info_str(x, 1, "UserID"), tid);
    assert_int_equal(
        fsmtest_call(x, "DescribeUser", &t, "Offset", "1", "Limit", "1", NULL),
        0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
    assert_int_equal(fsmtest_n_infos(x), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "UserID"), tid);
    /* a sub-account without a role may not list; the other tenant sees
     * only its own two */
    assert_int_equal(fsmtest_call(x, "DescribeUser", &s, NULL), YH_EPERM);
    assert_int_equal(fsmtest_call(x, "DescribeUser", &t2, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
    assert_string_equal(fsmtest_info_str(x, 0, "UserID"), s2id);
    assert_string_equal(fsmtest_info_str(x, 1, "UserID"), t2id);
    assert_int_equal(fsmtest_call(x, "DescribeUser", &x->admin, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 5); /* + admin */

    /* delete: not another tenant's, not the tenant itself */
    assert_int_equal(
        fsmtest_call(x, "DeleteSubAccount", &t, "SubAccountID", s2id, NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "DeleteSubAccount", &t, "SubAccountID", tid, NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "DeleteSubAccount", &s, "SubAccountID", sid, NULL),
        YH_EPERM);
    assert_int_equal(fsmtest_call(x, "DeleteSubAccount", &t, NULL),
                     YH_EMISSING);
    assert_int_equal(
        fsmtest_call(x, "DeleteSubAccount", &t, "SubAccountID", sid, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DescribeUser", &t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "UserID"), tid);
    /* its keys are gone, its email is free again */
    assert_int_equal(fsm_key_get(x->f, pub, &(struct fsm_key){0}),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "LoginByPassword", NULL, "UserEmail",
                                  "s@x.io", "PassWord", "secret-pass", NULL),
                     YH_EAUTH);
    /* a held actor of the deleted account is refused */
    assert_int_equal(fsmtest_call(x, "DescribeRole", &s, NULL), YH_EAUTH);
    assert_int_equal(fsmtest_call(x, "CreateSubAccount", &t, "UserEmail",
                                  "s@x.io", "PassWord", "secret-pass", NULL),
                     0);
    assert_string_equal(fsmtest_res_str(x, "SubAccountID"), "sub-00000003");
    assert_int_equal(fsmtest_call(x, "DeleteSubAccount", &x->admin,
                                  "SubAccountID", s2id, NULL),
                     0);
}

static void roles(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t, t2, s;
    char tid[FSM_ID_SIZE], t2id[FSM_ID_SIZE], sid[FSM_ID_SIZE];
    char r1[FSM_ID_SIZE], r2[FSM_ID_SIZE], r3[FSM_ID_SIZE];

    fsmtest_make_tenant(x, "t@x.io", &t, tid);
    fsmtest_make_tenant(x, "u@x.io", &t2, t2id);
    assert_int_equal(fsmtest_call(x, "CreateSubAccount", &t, "UserEmail",
                                  "s@x.io", "PassWord", "secret-pass", NULL),
                     0);
    snprintf(sid, sizeof sid, "%s", fsmtest_res_str(x, "SubAccountID"));
    fsmtest_key_for(x, &t, sid, &s);

    /* no role: nothing allowed, not even reads */
    assert_int_equal(fsmtest_call(x, "DescribeUser", &s, NULL), YH_EPERM);
    assert_string_equal(fsmtest_res_str(x, "Message"),
                        "permission denied: no role of sub-account "
                        "'sub-00000001' allows DescribeUser");
    assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &s, "ResourceID",
                                  sid, "Name", "x", NULL),
                     YH_EPERM);
    assert_false(x->proposed);

    assert_int_equal(fsmtest_call(x, "CreateRole", &t, "RoleName", "readers",
                                  "Permissions.0", "Describe*", NULL),
                     0);
    snprintf(r1, sizeof r1, "%s", fsmtest_res_str(x, "RoleID"));
    assert_string_equal(r1, "role-00000001");
    assert_int_equal(fsmtest_call(x, "CreateRole", &t, "RoleName", "readers",
                                  "Permissions.0", "*", NULL),
                     YH_EEXIST);
    /* the same name in another tenant is fine; the admin names a tenant */
    assert_int_equal(fsmtest_call(x, "CreateRole", &x->admin, "RoleName",
                                  "readers", "Permissions.0", "*", NULL),
                     YH_EMISSING);
    assert_int_equal(
        fsmtest_call(x, "CreateRole", &x->admin, "RoleName", "readers",
                     "Permissions.0", "*", "TenantID", t2id, NULL),
        0);
    snprintf(r2, sizeof r2, "%s", fsmtest_res_str(x, "RoleID"));
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
        assert_int_equal(fsmtest_call_obj(x, "CreateRole", &t, &u.data), 0);
        snprintf(r3, sizeof r3, "%s", fsmtest_res_str(x, "RoleID"));
        msgpack_unpacked_destroy(&u);
        yh_buf_release(&b);
    }
    /* describe is tenant-scoped */
    assert_int_equal(fsmtest_call(x, "DescribeRole", &t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
    assert_string_equal(fsmtest_info_str(x, 0, "RoleName"), "readers");
    {
        const msgpack_object *p = yh_mp_get(fsmtest_info(x, 1), "Permissions");
        assert_non_null(p);
        assert_int_equal(p->type, MSGPACK_OBJECT_ARRAY);
        assert_int_equal(p->via.array.size, 2);
        assert_true(yh_mp_eq(&p->via.array.ptr[1], "*APIKey"));
    }
    assert_int_equal(fsmtest_call(x, "DescribeRole", &t2, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_int_equal(
        fsmtest_call(x, "DescribeRole", &t2, "RoleIDs.0", r1, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(fsmtest_call(x, "DescribeRole", &x->admin, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 3);

    /* attach: validation and scoping */
    assert_int_equal(fsmtest_call(x, "AttachRole", &t, "RoleID", r1, NULL),
                     YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "AttachRole", &t, "RoleID", r2,
                                  "SubAccountID", sid, NULL),
                     YH_ENOTFOUND); /* another tenant's role */
    assert_int_equal(fsmtest_call(x, "AttachRole", &t2, "RoleID", r2,
                                  "SubAccountID", sid, NULL),
                     YH_ENOTFOUND); /* another tenant's sub-account */
    assert_int_equal(fsmtest_call(x, "AttachRole", &x->admin, "RoleID", r2,
                                  "SubAccountID", sid, NULL),
                     YH_EPERM); /* role and sub-account of different tenants */
    assert_int_equal(fsmtest_call(x, "AttachRole", &t, "RoleID", r1,
                                  "SubAccountID", tid, NULL),
                     YH_ENOTFOUND); /* not a sub-account */
    assert_int_equal(fsmtest_call(x, "AttachRole", &s, "RoleID", r1,
                                  "SubAccountID", sid, NULL),
                     YH_EPERM); /* sub-accounts do not grant themselves */
    assert_int_equal(fsmtest_call(x, "AttachRole", &t, "RoleID", r1,
                                  "SubAccountID", sid, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "AttachRole", &t, "RoleID", r1,
                                  "SubAccountID", sid, NULL),
                     YH_EEXIST);

    /* now reads work, writes do not */
    assert_int_equal(fsmtest_call(x, "DescribeUser", &s, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"),
                     2); /* its tenant's users */
    assert_int_equal(fsmtest_call(x, "DescribeOperationLog", &s, NULL), 0);
    assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &s, "ResourceID",
                                  sid, "Name", "x", NULL),
                     YH_EPERM);
    assert_int_equal(fsmtest_call(x, "AttachRole", &t, "RoleID", r3,
                                  "SubAccountID", sid, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &s, "ResourceID",
                                  sid, "Name", "x", NULL),
                     0);
    /* still only within the tenant */
    assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &s, "ResourceID",
                                  t2id, "Name", "x", NULL),
                     YH_EPERM);
    assert_int_equal(fsmtest_call(x, "CreateAPIKey", &s, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DescribeSubAccount", &t, NULL), 0);
    {
        const msgpack_object *p = yh_mp_get(fsmtest_info(x, 0), "Roles");
        assert_int_equal(p->via.array.size, 2);
    }

    /* detach: checked at apply against the state then */
    assert_int_equal(fsmtest_call(x, "DetachRole", &t, "RoleID", r3,
                                  "SubAccountID", sid, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "DetachRole", &t, "RoleID", r3,
                                  "SubAccountID", sid, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &s, "ResourceID",
                                  sid, "Name", "y", NULL),
                     YH_EPERM);
    {
        /* prepared while allowed, applied after the detach */
        struct yh_buf held = YH_BUF_INIT, result = YH_BUF_INIT,
                      req = YH_BUF_INIT;
        msgpack_packer pk;
        msgpack_unpacked u;
        size_t off = 0;
        assert_int_equal(fsmtest_call(x, "AttachRole", &t, "RoleID", r3,
                                      "SubAccountID", sid, NULL),
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
        assert_int_equal(fsmtest_call(x, "DetachRole", &t, "RoleID", r3,
                                      "SubAccountID", sid, NULL),
                         0);
        assert_int_equal(fsmtest_apply_raw(x, held.data, held.len), YH_EPERM);
        msgpack_unpacked_destroy(&u);
        yh_buf_release(&req);
        yh_buf_release(&result);
        yh_buf_release(&held);
    }
    /* deleting a role unbinds it */
    assert_int_equal(fsmtest_call(x, "DeleteRole", &t2, "RoleID", r1, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "DeleteRole", &s, "RoleID", r1, NULL),
                     YH_EPERM);
    assert_int_equal(fsmtest_call(x, "DeleteRole", &t, "RoleID", r1, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DescribeUser", &s, NULL), YH_EPERM);
    assert_int_equal(fsmtest_call(x, "DescribeSubAccount", &t, NULL), 0);
    assert_int_equal(yh_mp_get(fsmtest_info(x, 0), "Roles")->via.array.size, 0);
    {
        char *d = fsmtest_dump_str(x->f);
        assert_non_null(strstr(d, "[roles] 2"));
        assert_non_null(strstr(d, "[rolebind] 0"));
        free(d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(pattern_match, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(freeze, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(sub_accounts, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(roles, fsmtest_setup, fsmtest_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
