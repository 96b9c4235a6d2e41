/* Automation, the shared parts (see the block in fsm_int.h): acting for
 * the owner of a timer or scaling group, stored parameter maps, bounded
 * event lists, the leader tick and the purge hook.
 *
 * An automation step is an internal command proposed by the leader
 * (_TimerFire, _ScalePolicy, _ScaleReconcile) under the system actor of
 * the owner's tenant, like the billing ticks. Its apply runs the real
 * action (CreateSnapshot, CreateVMInstance, ...) with fsm__auto_run as the
 * object's owner: the permission check runs against the state at that log
 * index, so a frozen tenant, a deleted user or a detached role makes the
 * step a recorded rejection, never a write. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define PARAMS_MAX 32      /* entries of a parameter map */
#define PARAM_KEY_MAX 64   /* bytes of a parameter name */
#define PARAM_STR_MAX 1024 /* bytes of a string value */
#define PARAM_LIST_MAX 100 /* entries of a list value */
#define PARAMS_BYTES 16384 /* packed size of a parameter map */

/* ---- running an action for an owner ---- */

static const struct fsm_action *runnable(const char *action,
                                         const struct fsm_actor *as,
                                         struct fsm_run *out)
{
    const struct fsm_action *a = NULL;

    if (action[0] != '_') {
        a = fsm__action_find(action);
    }
    if (a == NULL || a->kind != FSM_ACT_WRITE || a->apply == NULL ||
        (a->flags & (FSM_ACT_F_AGENT | FSM_ACT_F_ANON))) {
        out->code = YH_EACTION;
        snprintf(out->msg, sizeof out->msg,
                 "action '%.64s' cannot be run for an owner", action);
        return NULL;
    }
    if ((a->flags & FSM_ACT_F_ADMIN) && !as->admin) {
        out->code = YH_EPERM;
        snprintf(out->msg, sizeof out->msg,
                 "permission denied: %s requires admin", action);
        return NULL;
    }
    return a;
}

static void run_result(struct fsm_ctx *s, struct fsm_run *out)
{
    out->code = s->code;
    snprintf(out->msg, sizeof out->msg, "%s", s->msg);
    snprintf(out->resource_id, sizeof out->resource_id, "%s", s->resource_id);
}

/* Whether tenant @tenant is frozen (FreezeUser). */
static int tenant_frozen(struct fsm_ctx *c, const char *tenant, int *frozen)
{
    struct fsm_rec u;
    int rc;

    *frozen = 0;
    if (tenant[0] == '\0') {
        return 0;
    }
    fsm__rec_init(&u);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_USERS, tenant, strlen(tenant), &u);
    if (rc == 0) {
        *frozen = strcmp(fsm__rec_s(&u, "State"), "Frozen") == 0;
    }
    fsm__rec_free(&u);
    return rc == YH_ENOTFOUND ? 0 : rc;
}

/* Whether @id is listed in @c's Concerns already. */
static int concern_listed(const struct fsm_ctx *c, const char *id)
{
    size_t off = 0, n = strlen(id);
    msgpack_unpacked u;
    int found = 0;

    msgpack_unpacked_init(&u);
    while (!found && msgpack_unpack_next(&u, (const char *)c->concerns_buf.data,
                                         c->concerns_buf.len,
                                         &off) == MSGPACK_UNPACK_SUCCESS) {
        found = u.data.type == MSGPACK_OBJECT_STR && u.data.via.str.size == n &&
                memcmp(u.data.via.str.ptr, id, n) == 0;
    }
    msgpack_unpacked_destroy(&u);
    return found;
}

/* What a successful run @s changed for hosts goes into @c's oplog record:
 * the resources its apply listed in Concerns (machines whose network
 * changed, gateways whose spec changed) and the resource it created or
 * changed if an agent realises it (a machine, a gateway), so that
 * WatchCommands sends their specs to their hosts although the entry's
 * ResourceID names the timer or the scaling group. */
static int concerns_merge(struct fsm_ctx *c, const struct fsm_ctx *s)
{
    size_t off = 0;
    msgpack_unpacked u;
    int rc = 0;

    msgpack_unpacked_init(&u);
    while (rc == 0 &&
           msgpack_unpack_next(&u, (const char *)s->concerns_buf.data,
                               s->concerns_buf.len,
                               &off) == MSGPACK_UNPACK_SUCCESS) {
        char id[FSM_KEY_SIZE];
        if (u.data.type != MSGPACK_OBJECT_STR ||
            u.data.via.str.size >= sizeof id) {
            continue;
        }
        memcpy(id, u.data.via.str.ptr, u.data.via.str.size);
        id[u.data.via.str.size] = '\0';
        if (!concern_listed(c, id)) {
            yh_mp_pack_str(&c->concerns.pk, id);
            c->n_concerns++;
        }
    }
    msgpack_unpacked_destroy(&u);
    if (s->resource_id[0] != '\0' &&
        fsm_host_resource_type(s->resource_id)[0] != '\0' &&
        !concern_listed(c, s->resource_id)) {
        yh_mp_pack_str(&c->concerns.pk, s->resource_id);
        c->n_concerns++;
    }
    return c->concerns.oom ? YH_ENOMEM : rc;
}

int fsm__auto_run(struct fsm_ctx *c,
                  const char *action,
                  const struct fsm_actor *as,
                  const char *tenant,
                  const msgpack_object *args,
                  const msgpack_object *stamp,
                  struct fsm_run *out)
{
    const struct fsm_action *a;
    struct fsm_ctx s;
    int frozen;
    int rc;

    memset(out, 0, sizeof *out);
    a = runnable(action, as, out);
    if (a == NULL) {
        return 0;
    }
    TRY(tenant_frozen(c, tenant, &frozen));
    if (frozen) {
        /* the owner's own check says so too, but not for an object the
         * administrator made for the tenant */
        out->code = YH_EPERM;
        snprintf(out->msg, sizeof out->msg,
                 "permission denied: tenant '%s' is frozen (read-only)",
                 tenant);
        return 0;
    }
    fsm__ctx_init(&s, c->f, c->txn, a->name, as, args);
    s.index = c->index;
    s.time_ns = c->time_ns;
    s.stamp = stamp;
    rc = fsm__authorize(&s, a);
    if (rc == 0 && a->check != NULL) {
        rc = a->check(&s);
    }
    if (rc == 0) {
        rc = a->apply(&s);
    }
    if (s.wrote) {
        c->wrote = 1;
    }
    if (rc >= 500) {
        goto out;
    }
    if (rc != 0 && s.code == 0) {
        fsm__reject(&s, rc, "%s", yh_strerror(rc));
    }
    if (s.code != 0 && s.wrote) {
        YH_ERR("%s (for %s) rejected after writing at index %llu: a bug",
               a->name, as->user_id, (unsigned long long)c->index);
        snprintf(c->f->errmsg, sizeof c->f->errmsg, "%s rejected after writing",
                 a->name);
        rc = YH_EINTERNAL;
        goto out;
    }
    rc = s.fields.oom ? YH_ENOMEM : 0;
    if (rc == 0 && s.code == 0) {
        rc = concerns_merge(c, &s);
    }
    run_result(&s, out);
out:
    fsm__ctx_release(&s);
    return rc;
}

int fsm__auto_stamp(struct fsm *f,
                    MDB_txn *txn,
                    uint64_t now_ns,
                    const char *action,
                    const struct fsm_actor *as,
                    const msgpack_object *args,
                    struct yh_buf *stamp,
                    struct fsm_run *out)
{
    const struct fsm_action *a;
    struct fsm_out o;
    struct fsm_ctx s;
    int rc;

    memset(out, 0, sizeof *out);
    yh_buf_reset(stamp);
    a = runnable(action, as, out);
    if (a == NULL) {
        return 0;
    }
    fsm__ctx_init(&s, f, txn, a->name, as, args);
    s.time_ns = now_ns;
    s.prep_actor = *as;
    rc = fsm__authorize(&s, a);
    if (rc == 0 && a->check != NULL) {
        rc = a->check(&s);
    }
    if (rc == 0 && a->stamp != NULL) {
        rc = a->stamp(&s);
    }
    if (rc >= 500) {
        goto out;
    }
    if (rc != 0) {
        if (s.code == 0) {
            fsm__reject(&s, rc, "%s", yh_strerror(rc));
        }
        run_result(&s, out);
        rc = 0;
        goto out;
    }
    fsm__out_init(&o, stamp);
    msgpack_pack_map(&o.pk, s.n_stamp);
    if (s.stamp_out.oom ||
        (s.stamp_buf.len > 0 &&
         yh_buf_append(stamp, s.stamp_buf.data, s.stamp_buf.len) != 0)) {
        o.oom = 1;
    }
    rc = o.oom ? YH_ENOMEM : 0;
out:
    fsm__ctx_release(&s);
    return rc;
}

int fsm__auto_validate(struct fsm_ctx *c,
                       const char *what,
                       const char *action,
                       const struct fsm_actor *as,
                       const msgpack_object *args)
{
    const struct fsm_action *a;
    struct fsm_run r;
    struct fsm_ctx s;
    int rc;

    memset(&r, 0, sizeof r);
    a = runnable(action, as, &r);
    if (a == NULL) {
        return fsm__reject(c, r.code, "%s: %s", what, r.msg);
    }
    fsm__ctx_init(&s, c->f, c->txn, a->name, as, args);
    s.index = c->index;
    s.time_ns = c->time_ns;
    rc = fsm__authorize(&s, a);
    if (rc == 0 && a->check != NULL) {
        rc = a->check(&s);
    }
    if (rc != 0 && rc < 500) {
        rc = fsm__reject(c, s.code != 0 ? s.code : rc, "%s: %s", what,
                         s.code != 0 ? s.msg : yh_strerror(rc));
    }
    fsm__ctx_release(&s);
    return rc;
}

/* ---- stored parameter maps ---- */

/* Keys a stored map may not hold: per-request ones, secrets (they would
 * sit in the state in clear), and the tenant (implied by the owner). */
static const char *const refused[] = {"RequestToken", "Consistency", "Password",
                                      "PassWord", "TenantID"};

static int param_value_ok(const msgpack_object *v)
{
    switch (v->type) {
    case MSGPACK_OBJECT_BOOLEAN:
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return 1;
    case MSGPACK_OBJECT_STR:
        return v->via.str.size <= PARAM_STR_MAX &&
               memchr(v->via.str.ptr, '\0', v->via.str.size) == NULL;
    case MSGPACK_OBJECT_ARRAY:
        if (v->via.array.size > PARAM_LIST_MAX) {
            return 0;
        }
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            const msgpack_object *e = &v->via.array.ptr[i];
            if (e->type != MSGPACK_OBJECT_STR || e->via.str.size == 0 ||
                e->via.str.size > PARAM_STR_MAX ||
                memchr(e->via.str.ptr, '\0', e->via.str.size) != NULL) {
                return 0;
            }
        }
        return 1;
    default:
        return 0;
    }
}

struct pentry
{
    const char *k;           /* name (not NUL-terminated) */
    size_t kl;               /* its length */
    const msgpack_object *v; /* value */
};

static int param_add(struct fsm_ctx *c,
                     const char *key,
                     const char *k,
                     size_t kl,
                     const msgpack_object *v,
                     struct pentry *e,
                     unsigned *n)
{
    if (kl == 0 || kl > PARAM_KEY_MAX) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': names of 1..%d bytes", key,
                           PARAM_KEY_MAX);
    }
    for (size_t i = 0; i < kl; i++) {
        unsigned char ch = (unsigned char)k[i];
        if (ch <= 0x20 || ch == 0x7f) {
            return fsm__reject(c, YH_EINVAL, "invalid parameter '%s': bad name",
                               key);
        }
    }
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (strlen(refused[i]) == kl && memcmp(refused[i], k, kl) == 0) {
            return fsm__reject(c, YH_EINVAL,
                               "invalid parameter '%s.%s': not accepted here "
                               "(it would be stored, or it is implied)",
                               key, refused[i]);
        }
    }
    if (!param_value_ok(v)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s.%.*s': a string, integer, "
                           "boolean or list of strings",
                           key, (int)kl, k);
    }
    for (unsigned i = 0; i < *n; i++) {
        if (e[i].kl == kl && memcmp(e[i].k, k, kl) == 0) {
            return fsm__reject(c, YH_EINVAL,
                               "invalid parameter '%s.%.*s': given twice", key,
                               (int)kl, k);
        }
    }
    if (*n >= PARAMS_MAX) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': more than %d entries", key,
                           PARAMS_MAX);
    }
    e[*n].k = k;
    e[*n].kl = kl;
    e[*n].v = v;
    (*n)++;
    return 0;
}

int fsm__auto_params(struct fsm_ctx *c, const char *key, struct yh_buf *out)
{
    const msgpack_object *m = c->args;
    const msgpack_object *v = yh_mp_get(m, key);
    size_t klen = strlen(key);
    struct pentry e[PARAMS_MAX];
    struct fsm_out o;
    unsigned n = 0;

    yh_buf_reset(out);
    if (v != NULL && v->type != MSGPACK_OBJECT_NIL) {
        if (v->type != MSGPACK_OBJECT_MAP) {
            return fsm__reject(c, YH_EINVAL,
                               "invalid parameter '%s': not a map", key);
        }
        for (uint32_t i = 0; i < v->via.map.size; i++) {
            const msgpack_object *k = &v->via.map.ptr[i].key;
            if (k->type != MSGPACK_OBJECT_STR) {
                return fsm__reject(c, YH_EINVAL,
                                   "invalid parameter '%s': names are strings",
                                   key);
            }
            TRY(param_add(c, key, k->via.str.ptr, k->via.str.size,
                          &v->via.map.ptr[i].val, e, &n));
        }
    }
    for (uint32_t i = 0;
         m != NULL && m->type == MSGPACK_OBJECT_MAP && i < m->via.map.size;
         i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size <= klen + 1 ||
            memcmp(k->via.str.ptr, key, klen) != 0 ||
            k->via.str.ptr[klen] != '.') {
            continue;
        }
        TRY(param_add(c, key, k->via.str.ptr + klen + 1,
                      k->via.str.size - klen - 1, &m->via.map.ptr[i].val, e,
                      &n));
    }
    fsm__out_init(&o, out);
    msgpack_pack_map(&o.pk, n);
    for (unsigned i = 0; i < n; i++) {
        yh_mp_pack_strn(&o.pk, e[i].k, e[i].kl);
        msgpack_pack_object(&o.pk, *e[i].v);
    }
    if (o.oom) {
        return YH_ENOMEM;
    }
    if (out->len > PARAMS_BYTES) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': more than %d bytes", key,
                           PARAMS_BYTES);
    }
    return 0;
}

int fsm__auto_args(const char *p,
                   size_t n,
                   const char *k1,
                   const char *v1,
                   const char *k2,
                   const char *v2,
                   struct yh_buf *tmp,
                   msgpack_unpacked *u)
{
    msgpack_unpacked src;
    const msgpack_object *m;
    struct fsm_out o;
    uint32_t keep = 0;
    int rc;

    msgpack_unpacked_init(&src);
    if (p == NULL || fsm__mp_decode(p, n, &src) != 0 ||
        src.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&src);
        return YH_ECORRUPT;
    }
    m = &src.data;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        keep += !((k1 != NULL && yh_mp_eq(k, k1)) ||
                  (k2 != NULL && yh_mp_eq(k, k2)));
    }
    yh_buf_reset(tmp);
    fsm__out_init(&o, tmp);
    msgpack_pack_map(&o.pk, keep + (k1 != NULL) + (k2 != NULL));
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if ((k1 != NULL && yh_mp_eq(&kv->key, k1)) ||
            (k2 != NULL && yh_mp_eq(&kv->key, k2))) {
            continue;
        }
        msgpack_pack_object(&o.pk, kv->key);
        msgpack_pack_object(&o.pk, kv->val);
    }
    if (k1 != NULL) {
        yh_mp_pack_kv_str(&o.pk, k1, v1);
    }
    if (k2 != NULL) {
        yh_mp_pack_kv_str(&o.pk, k2, v2);
    }
    msgpack_unpacked_destroy(&src);
    if (o.oom) {
        return YH_ENOMEM;
    }
    rc = fsm__mp_decode(tmp->data, tmp->len, u);
    return rc != 0 ? YH_ECORRUPT : 0;
}

/* ---- owners ---- */

void fsm__auto_owner_set(struct fsm_rec *r,
                         const struct fsm_actor *a,
                         const char *tenant)
{
    fsm__rec_set_s(r, "TenantID", tenant);
    fsm__rec_set_s(r, "UserID", a->user_id);
    fsm__rec_set_s(r, "_ActorTenant", a->tenant_id);
    fsm__rec_set_b(r, "_Admin", a->admin);
}

void fsm__auto_owner_get(const struct fsm_rec *r, struct fsm_actor *a)
{
    memset(a, 0, sizeof *a);
    snprintf(a->user_id, sizeof a->user_id, "%s", fsm__rec_s(r, "UserID"));
    snprintf(a->tenant_id, sizeof a->tenant_id, "%s",
             fsm__rec_s(r, "_ActorTenant"));
    a->admin = fsm__rec_i(r, "_Admin") != 0;
}

/* ---- bounded event lists ---- */

int fsm__auto_event_push(struct fsm_rec *r,
                         const char *field,
                         const struct yh_buf *ev)
{
    struct yh_buf b = YH_BUF_INIT;
    msgpack_unpacked u;
    struct fsm_out o;
    size_t n;
    const char *p = fsm__rec_bin(r, field, &n);
    uint32_t have = 0, skip = 0;

    msgpack_unpacked_init(&u);
    if (p != NULL) {
        if (fsm__mp_decode(p, n, &u) != 0 ||
            u.data.type != MSGPACK_OBJECT_ARRAY) {
            msgpack_unpacked_destroy(&u);
            return YH_ECORRUPT;
        }
        have = u.data.via.array.size;
        skip = have >= FSM_AUTO_EVENTS ? have - FSM_AUTO_EVENTS + 1 : 0;
    }
    fsm__out_init(&o, &b);
    msgpack_pack_array(&o.pk, have - skip + 1);
    for (uint32_t i = skip; i < have; i++) {
        msgpack_pack_object(&o.pk, u.data.via.array.ptr[i]);
    }
    if (yh_buf_append(&b, ev->data, ev->len) != 0) {
        o.oom = 1;
    }
    msgpack_unpacked_destroy(&u);
    if (!o.oom) {
        fsm__rec_set_bin(r, field, b.data, b.len);
    }
    yh_buf_release(&b);
    return o.oom || r->oom ? YH_ENOMEM : 0;
}

void fsm__auto_bin_pack(msgpack_packer *pk,
                        const struct fsm_rec *r,
                        const char *field,
                        int empty_map)
{
    msgpack_unpacked u;
    size_t n;
    const char *p = fsm__rec_bin(r, field, &n);

    msgpack_unpacked_init(&u);
    if (p != NULL && fsm__mp_decode(p, n, &u) == 0) {
        msgpack_pack_object(pk, u.data);
    } else if (empty_map) {
        msgpack_pack_map(pk, 0);
    } else {
        msgpack_pack_array(pk, 0);
    }
    msgpack_unpacked_destroy(&u);
}

/* ---- comparisons ---- */

static const char *const cmps[] = {"GT", "GE", "LT", "LE"};

int fsm__cmp_parse(const char *s)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, cmps[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *fsm__cmp_name(int cmp)
{
    return cmp >= 0 && cmp < 4 ? cmps[cmp] : "";
}

int fsm__cmp_eval(int cmp, __int128 a, __int128 b)
{
    switch (cmp) {
    case 0:
        return a > b;
    case 1:
        return a >= b;
    case 2:
        return a < b;
    case 3:
        return a <= b;
    default:
        return 0;
    }
}

/* ---- the leader ---- */

int fsm__auto_propose(const char *type,
                      const char *tenant,
                      uint64_t now_ns,
                      const struct yh_buf *args,
                      fsm_propose_cb *cb,
                      void *arg)
{
    /* The system acts for the tenant (as the billing ticks do), so the
     * tenant sees each step in its operation log; the step itself acts as
     * the object's owner. */
    struct fsm_actor sys;
    struct yh_buf env = YH_BUF_INIT;
    int rc;

    memset(&sys, 0, sizeof sys);
    snprintf(sys.tenant_id, sizeof sys.tenant_id, "%s", tenant);
    sys.admin = 1;
    rc = fsm__cmd_internal(type, &sys, now_ns, args, &env);
    if (rc == 0) {
        rc = cb(arg, env.data, env.len) != 0 ? 1 : 0;
    }
    yh_buf_release(&env);
    return rc;
}

int fsm__auto_tick(struct fsm *f,
                   MDB_txn *txn,
                   uint64_t now_ns,
                   fsm_propose_cb *cb,
                   void *arg)
{
    int rc = fsm__timer_tick(f, txn, now_ns, cb, arg);

    if (rc == 0) {
        rc = fsm__scale_tick(f, txn, now_ns, cb, arg);
    }
    return rc == 1 ? 0 : rc;
}

/* ---- purge ---- */

/* Rows under one resource: 7 metric rings and at most
 * FSM_ALARM_BINDS_MAX bindings. */
#define PURGE_MAX 64

/* Delete every "auto" row under @prefix; for bindings, the template's
 * BindCount goes down. */
static int drop_prefix(struct fsm_ctx *c, const char *prefix, size_t pl)
{
    char keys[PURGE_MAX][2 * FSM_ID_SIZE + 4];
    size_t lens[PURGE_MAX];
    unsigned n = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_AUTO], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on 'auto'");
    }
    k.mv_data = (void *)prefix;
    k.mv_size = pl;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && n < PURGE_MAX; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < pl || memcmp(k.mv_data, prefix, pl) != 0) {
            break;
        }
        if (k.mv_size < sizeof keys[0]) {
            memcpy(keys[n], k.mv_data, k.mv_size);
            lens[n++] = k.mv_size;
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(c->f, rc, "read 'auto'");
    }
    for (unsigned i = 0; i < n; i++) {
        if (prefix[0] == 'b' && lens[i] > pl) {
            /* binding: "b" \0 resource \0 template */
            char tpl[FSM_ID_SIZE];
            size_t tl = lens[i] - pl;
            struct fsm_rec t;
            if (tl < sizeof tpl) {
                memcpy(tpl, keys[i] + pl, tl);
                tpl[tl] = '\0';
                fsm__rec_init(&t);
                rc = fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, tpl, tl, &t);
                if (rc == 0) {
                    fsm__rec_set_i(&t, "BindCount",
                                   fsm__rec_i(&t, "BindCount") - 1);
                    rc = fsm__rec_save(c, FSM_TBL_AUTO, tpl, tl, &t);
                }
                fsm__rec_free(&t);
                if (rc != 0 && rc != YH_ENOTFOUND) {
                    return rc;
                }
            }
        }
        TRY(fsm__cdel(c, FSM_TBL_AUTO, keys[i], lens[i]));
    }
    return 0;
}

int fsm__auto_purge(struct fsm_ctx *c, const char *id)
{
    char prefix[FSM_ID_SIZE + 4];
    size_t n = strlen(id);

    if (n == 0 || n >= FSM_ID_SIZE) {
        return 0;
    }
    prefix[0] = 'm';
    prefix[1] = '\0';
    memcpy(prefix + 2, id, n);
    prefix[2 + n] = '\0';
    TRY(drop_prefix(c, prefix, n + 3));
    prefix[0] = 'b';
    return drop_prefix(c, prefix, n + 3);
}
