/* Authorization and roles.
 *
 * fsm__authorize is the one permission check. The drivers run it for every
 * action after the table flags (admin-only, anonymous) are checked: in
 * fsm_cmd_prepare on the leader, in fsm_apply (against the state at that
 * log index, so a role detached or a tenant frozen between prepare and
 * apply takes effect deterministically) and in fsm_query. It decides:
 *
 *   administrator            everything
 *   main account (tenant)    everything not admin-only; each action then
 *                            checks the resource belongs to the tenant
 *   sub-account              only actions matched by a pattern of one of
 *                            its roles (same tenant checks)
 *   frozen tenant, or any    reads only: every write is refused with 140
 *   account of it
 *
 * Roles are tenant-scoped: {RoleID, RoleName, TenantID, Permissions: [
 * pattern...]}, a pattern being an action name with an optional '*' at
 * either end ("*", "Describe*", "*Disk", "CreateDisk"). Bindings live in
 * rolebind as SubAccountID "\0" RoleID. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define STATE_FROZEN "Frozen"
#define ROLE_NAME_MAX 64
#define PATTERN_MAX 64
#define PATTERNS_MAX 32
#define ROLES_PER_SUB 32

int fsm__pattern_match(const char *pattern, const char *action)
{
    size_t pl = strlen(pattern);
    size_t al = strlen(action);
    int head = pl > 0 && pattern[0] == '*';
    int tail = pl > 1 && pattern[pl - 1] == '*';
    char core[PATTERN_MAX + 1];
    size_t cl;

    if (strcmp(pattern, "*") == 0) {
        return 1;
    }
    if (pl > PATTERN_MAX) {
        return 0;
    }
    cl = pl - (size_t)head - (size_t)tail;
    memcpy(core, pattern + head, cl);
    core[cl] = '\0';
    if (head && tail) {
        return strstr(action, core) != NULL;
    }
    if (head) {
        return al >= cl && strcmp(action + al - cl, core) == 0;
    }
    if (tail) {
        return strncmp(action, core, cl) == 0;
    }
    return strcmp(action, core) == 0;
}

static int pattern_ok(const char *p)
{
    size_t n = strlen(p);

    if (n == 0 || n > PATTERN_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '*') {
            if (i != 0 && i != n - 1) {
                return 0;
            }
        } else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                     (ch >= '0' && ch <= '9'))) {
            return 0;
        }
    }
    return strcmp(p, "**") != 0;
}

int fsm__is_main(const struct fsm_ctx *c)
{
    return c->actor->admin ||
           (c->actor->user_id[0] != '\0' &&
            strcmp(c->actor->user_id, c->actor->tenant_id) == 0);
}

/* Whether a role of @sub has a pattern matching @action. */
static int sub_allowed(struct fsm_ctx *c,
                       const char *sub,
                       const char *action,
                       int *allowed)
{
    char ids[ROLES_PER_SUB][FSM_ID_SIZE];
    struct fsm_rec r;
    unsigned n;
    int rc;

    *allowed = 0;
    TRY(fsm__rolebind_list(c->f, c->txn, sub, ids, ROLES_PER_SUB, &n));
    fsm__rec_init(&r);
    for (unsigned i = 0; i < n && !*allowed; i++) {
        const char *p;
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_ROLES, ids[i], strlen(ids[i]),
                           &r);
        if (rc == YH_ENOTFOUND) {
            continue;
        }
        if (rc != 0) {
            fsm__rec_free(&r);
            return rc;
        }
        p = fsm__rec_s(&r, "Permissions");
        while (*p != '\0') {
            char pat[PATTERN_MAX + 1];
            const char *e = strchr(p, '\n');
            size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
            if (l <= PATTERN_MAX) {
                memcpy(pat, p, l);
                pat[l] = '\0';
                if (fsm__pattern_match(pat, action)) {
                    *allowed = 1;
                    break;
                }
            }
            p += l + (e != NULL);
        }
    }
    fsm__rec_free(&r);
    return 0;
}

int fsm__authorize(struct fsm_ctx *c, const struct fsm_action *a)
{
    const struct fsm_actor *ac = c->actor;
    char tenant[FSM_ID_SIZE];
    struct fsm_rec u;
    int allowed;
    int rc;

    /* Executor credentials call agent actions and nothing else. */
    if (a->flags & FSM_ACT_F_AGENT) {
        if (ac->admin || !fsm__is_host_id(ac->user_id)) {
            return fsm__reject(c, YH_EPERM,
                               "permission denied: %s is for executor (host) "
                               "credentials",
                               c->type);
        }
    } else if (!ac->admin && fsm__is_host_id(ac->user_id)) {
        return fsm__reject(c, YH_EPERM,
                           "permission denied: host credentials may only "
                           "call agent actions");
    }
    if (ac->admin || ac->user_id[0] == '\0') {
        return 0;
    }
    fsm__rec_init(&u);
    if (fsm__is_host_id(ac->user_id)) {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, ac->user_id,
                           strlen(ac->user_id), &u);
        fsm__rec_free(&u);
        if (rc == YH_ENOTFOUND) {
            return fsm__reject(c, YH_EAUTH, "host '%s' no longer exists",
                               ac->user_id);
        }
        return rc;
    }
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_USERS, ac->user_id,
                       strlen(ac->user_id), &u);
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_EAUTH, "user '%s' no longer exists",
                           ac->user_id);
    }
    if (rc != 0) {
        return rc;
    }
    snprintf(tenant, sizeof tenant, "%s", fsm__rec_s(&u, "TenantID"));
    if (strcmp(tenant, ac->tenant_id) != 0) {
        fsm__rec_free(&u);
        return fsm__reject(c, YH_EPERM,
                           "permission denied: '%s' does not belong to "
                           "tenant '%s'",
                           ac->user_id, ac->tenant_id);
    }
    if (a->flags & FSM_ACT_F_ANON) {
        /* LoginByPassword: how a frozen account gets read credentials */
        fsm__rec_free(&u);
        return 0;
    }
    if (a->kind == FSM_ACT_WRITE) {
        if (strcmp(fsm__rec_s(&u, "State"), STATE_FROZEN) == 0) {
            fsm__rec_free(&u);
            return fsm__reject(c, YH_EPERM,
                               "permission denied: account '%s' is frozen "
                               "(read-only)",
                               ac->user_id);
        }
        if (strcmp(tenant, ac->user_id) != 0) {
            rc = fsm__rec_load(c->f, c->txn, FSM_TBL_USERS, tenant,
                               strlen(tenant), &u);
            if (rc != 0 && rc != YH_ENOTFOUND) {
                return rc;
            }
            if (rc == 0 && strcmp(fsm__rec_s(&u, "State"), STATE_FROZEN) == 0) {
                fsm__rec_free(&u);
                return fsm__reject(c, YH_EPERM,
                                   "permission denied: tenant '%s' is frozen "
                                   "(read-only)",
                                   tenant);
            }
        }
    }
    fsm__rec_free(&u);
    if (strcmp(tenant, ac->user_id) == 0) {
        return 0; /* main account */
    }
    TRY(sub_allowed(c, ac->user_id, c->type, &allowed));
    if (!allowed) {
        return fsm__reject(c, YH_EPERM,
                           "permission denied: no role of sub-account '%s' "
                           "allows %s",
                           ac->user_id, c->type);
    }
    return 0;
}

/* ---- role bindings ---- */

int fsm__rolebind_list(struct fsm *f,
                       MDB_txn *txn,
                       const char *sub,
                       char (*out)[FSM_ID_SIZE],
                       unsigned max,
                       unsigned *n)
{
    char key[FSM_ID_SIZE + 1];
    size_t kl = strlen(sub) + 1;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    *n = 0;
    memcpy(key, sub, kl); /* with its NUL: the prefix "sub\0" */
    rc = mdb_cursor_open(txn, f->dbis[FSM_TBL_ROLEBIND], &cur);
    if (rc != 0) {
        return fsm__mdb_err(f, rc, "open cursor on 'rolebind'");
    }
    k.mv_data = key;
    k.mv_size = kl;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && *n < max;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t rl;
        if (k.mv_size <= kl || memcmp(k.mv_data, key, kl) != 0) {
            break;
        }
        rl = k.mv_size - kl;
        if (rl >= FSM_ID_SIZE) {
            continue;
        }
        memcpy(out[*n], (char *)k.mv_data + kl, rl);
        out[*n][rl] = '\0';
        (*n)++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(f, rc, "read 'rolebind'");
    }
    return 0;
}

int fsm__rolebind_drop(struct fsm_ctx *c, const char *sub)
{
    char ids[ROLES_PER_SUB][FSM_ID_SIZE];
    char key[2 * FSM_ID_SIZE + 2];
    unsigned n;

    TRY(fsm__rolebind_list(c->f, c->txn, sub, ids, ROLES_PER_SUB, &n));
    for (unsigned i = 0; i < n; i++) {
        TRY(fsm__cdel(c, FSM_TBL_ROLEBIND, key, fsm__key2(key, sub, ids[i])));
    }
    return 0;
}

/* ---- CreateRole ---- */

struct role_args
{
    char name[ROLE_NAME_MAX + 1];          /* RoleName */
    char perms[PATTERNS_MAX][FSM_ID_SIZE]; /* Permissions */
    unsigned n_perms;                      /* count */
};

static int role_args(struct fsm_ctx *c, struct role_args *a)
{
    TRY(fsm__arg_str(c, "RoleName", 1, ROLE_NAME_MAX, a->name, NULL));
    TRY(fsm__arg_list(c, "Permissions", PATTERNS_MAX, a->perms, &a->n_perms));
    if (a->n_perms == 0) {
        return fsm__reject(c, YH_EMISSING, "missing parameter 'Permissions'");
    }
    for (unsigned i = 0; i < a->n_perms; i++) {
        if (!pattern_ok(a->perms[i])) {
            return fsm__reject(c, YH_EINVAL,
                               "invalid parameter 'Permissions': '%s' is not "
                               "an action pattern (letters and digits, '*' "
                               "only at either end)",
                               a->perms[i]);
        }
    }
    if (!fsm__is_main(c)) {
        return fsm__reject(c, YH_EPERM,
                           "permission denied: only the main account "
                           "manages roles");
    }
    return 0;
}

int fsm__role_create_check(struct fsm_ctx *c)
{
    struct role_args a;
    char tenant[FSM_ID_SIZE];

    TRY(role_args(c, &a));
    if (c->actor->admin) {
        return fsm__owner_arg(c, tenant);
    }
    return 0;
}

/* Whether @tenant already has a role named @name. */
static int role_name_taken(struct fsm_ctx *c,
                           const char *tenant,
                           const char *name,
                           int *taken)
{
    struct fsm_rec r;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    *taken = 0;
    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_ROLES], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on 'roles'");
    }
    fsm__rec_init(&r);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !*taken;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (fsm__rec_decode(v.mv_data, v.mv_size, &r) != 0) {
            continue;
        }
        *taken = strcmp(fsm__rec_s(&r, "TenantID"), tenant) == 0 &&
                 strcmp(fsm__rec_s(&r, "RoleName"), name) == 0;
    }
    fsm__rec_free(&r);
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(c->f, rc, "read 'roles'");
    }
    return 0;
}

int fsm__role_create_apply(struct fsm_ctx *c)
{
    struct role_args a;
    char tenant[FSM_ID_SIZE];
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int taken;
    int rc;

    TRY(role_args(c, &a));
    TRY(fsm__owner_arg(c, tenant));
    TRY(role_name_taken(c, tenant, a.name, &taken));
    if (taken) {
        return fsm__reject(c, YH_EEXIST, "role '%s' already exists", a.name);
    }
    TRY(fsm__new_id(c, "role", id));
    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "RoleID", id);
    fsm__rec_set_s(&r, "RoleName", a.name);
    fsm__rec_set_s(&r, "TenantID", tenant);
    fsm__rec_set_l(&r, "Permissions", a.perms, a.n_perms);
    fsm__rec_set_i(&r, "CreateTime", (int64_t)(c->time_ns / 1000000000u));
    fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
    rc = fsm__rec_save(c, FSM_TBL_ROLES, id, strlen(id), &r);
    fsm__rec_free(&r);
    if (rc != 0) {
        return rc;
    }
    snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    yh_mp_pack_str(fsm__field(c, "RoleID"), id);
    return 0;
}

int fsm__role_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {FSM_TBL_ROLES, "role-", "RoleIDs", 0,
                         NULL,          NULL,    NULL};

    return fsm__describe(c, &d);
}

/* ---- DeleteRole ---- */

/* Load role @id for a mutation by the actor. */
static int role_get(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    int rc = fsm__rec_load(c->f, c->txn, FSM_TBL_ROLES, id, strlen(id), r);

    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "role '%s' not found", id);
    }
    if (rc != 0) {
        return rc;
    }
    if (!fsm__owns(c, fsm__rec_s(r, "TenantID"))) {
        return fsm__reject(c, YH_ENOTFOUND, "role '%s' not found", id);
    }
    return 0;
}

int fsm__role_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    TRY(fsm__arg_str(c, "RoleID", 1, FSM_ID_SIZE - 1, id, NULL));
    if (!fsm__is_main(c)) {
        return fsm__reject(c, YH_EPERM,
                           "permission denied: only the main account "
                           "manages roles");
    }
    return 0;
}

int fsm__role_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    char key[2 * FSM_ID_SIZE + 2];
    struct fsm_rec r;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    TRY(fsm__role_delete_check(c));
    fsm__arg_str(c, "RoleID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&r);
    rc = role_get(c, id, &r);
    fsm__rec_free(&r);
    TRY(rc);
    /* Unbind everywhere: the table is small, keyed by sub-account. */
    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_ROLEBIND], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on 'rolebind'");
    }
    c->wrote = 1;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const char *p = k.mv_data;
        const char *z = memchr(p, '\0', k.mv_size);
        size_t rl;
        if (z == NULL) {
            continue;
        }
        rl = k.mv_size - (size_t)(z + 1 - p);
        if (rl == strlen(id) && memcmp(z + 1, id, rl) == 0) {
            rc = fsm__cursor_del(c->f, FSM_TBL_ROLEBIND, cur);
            if (rc != 0) {
                break;
            }
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(c->f, rc, "unbind role");
    }
    (void)key;
    TRY(fsm__cdel(c, FSM_TBL_ROLES, id, strlen(id)));
    snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    return 0;
}

/* ---- AttachRole / DetachRole ---- */

struct attach_args
{
    char role[FSM_ID_SIZE]; /* RoleID */
    char sub[FSM_ID_SIZE];  /* SubAccountID */
};

static int attach_args(struct fsm_ctx *c, struct attach_args *a)
{
    TRY(fsm__arg_str(c, "RoleID", 1, FSM_ID_SIZE - 1, a->role, NULL));
    TRY(fsm__arg_str(c, "SubAccountID", 1, FSM_ID_SIZE - 1, a->sub, NULL));
    if (!fsm__is_main(c)) {
        return fsm__reject(c, YH_EPERM,
                           "permission denied: only the main account "
                           "manages roles");
    }
    return 0;
}

int fsm__role_attach_check(struct fsm_ctx *c)
{
    struct attach_args a;

    return attach_args(c, &a);
}

/* Validate role and sub-account (same tenant, visible to the actor). */
static int attach_load(struct fsm_ctx *c, const struct attach_args *a)
{
    struct fsm_rec r, u;
    int rc;

    fsm__rec_init(&r);
    fsm__rec_init(&u);
    rc = role_get(c, a->role, &r);
    if (rc != 0) {
        goto out;
    }
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_USERS, a->sub, strlen(a->sub), &u);
    if (rc == YH_ENOTFOUND ||
        (rc == 0 && (!fsm__owns(c, fsm__rec_s(&u, "TenantID")) ||
                     strcmp(fsm__rec_s(&u, "TenantID"), a->sub) == 0 ||
                     fsm__rec_i(&u, "Admin") != 0))) {
        rc = fsm__reject(c, YH_ENOTFOUND, "sub-account '%s' not found", a->sub);
        goto out;
    }
    if (rc != 0) {
        goto out;
    }
    if (strcmp(fsm__rec_s(&u, "TenantID"), fsm__rec_s(&r, "TenantID")) != 0) {
        rc = fsm__reject(c, YH_EPERM,
                         "permission denied: role '%s' belongs to another "
                         "tenant than '%s'",
                         a->role, a->sub);
    }
out:
    fsm__rec_free(&r);
    fsm__rec_free(&u);
    return rc;
}

int fsm__role_attach_apply(struct fsm_ctx *c)
{
    char ids[ROLES_PER_SUB][FSM_ID_SIZE];
    char key[2 * FSM_ID_SIZE + 2];
    struct attach_args a;
    size_t kl;
    unsigned n;
    MDB_val v;
    int rc;

    TRY(attach_args(c, &a));
    TRY(attach_load(c, &a));
    kl = fsm__key2(key, a.sub, a.role);
    rc = fsm__get(c->f, c->txn, FSM_TBL_ROLEBIND, key, kl, &v);
    if (rc == 0) {
        return fsm__reject(c, YH_EEXIST,
                           "role '%s' is already attached to '%s'", a.role,
                           a.sub);
    }
    if (rc != YH_ENOTFOUND) {
        return rc;
    }
    TRY(fsm__rolebind_list(c->f, c->txn, a.sub, ids, ROLES_PER_SUB, &n));
    if (n >= ROLES_PER_SUB) {
        return fsm__reject(c, YH_EQUOTA,
                           "sub-account '%s' already has %d roles", a.sub,
                           ROLES_PER_SUB);
    }
    TRY(fsm__cput(c, FSM_TBL_ROLEBIND, key, kl, "", 0));
    snprintf(c->resource_id, sizeof c->resource_id, "%s", a.sub);
    return 0;
}

int fsm__role_detach_apply(struct fsm_ctx *c)
{
    char key[2 * FSM_ID_SIZE + 2];
    struct attach_args a;
    size_t kl;
    MDB_val v;
    int rc;

    TRY(attach_args(c, &a));
    TRY(attach_load(c, &a));
    kl = fsm__key2(key, a.sub, a.role);
    rc = fsm__get(c->f, c->txn, FSM_TBL_ROLEBIND, key, kl, &v);
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "role '%s' is not attached to '%s'",
                           a.role, a.sub);
    }
    if (rc != 0) {
        return rc;
    }
    TRY(fsm__cdel(c, FSM_TBL_ROLEBIND, key, kl));
    snprintf(c->resource_id, sizeof c->resource_id, "%s", a.sub);
    return 0;
}
