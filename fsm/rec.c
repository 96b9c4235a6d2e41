/* Generic records and the helpers every domain table shares: IDs from
 * replicated counters, ownership, the generic Describe walk, internal
 * command envelopes and overflow-checked money arithmetic.
 *
 * Records are msgpack maps of scalars and string lists whose field order
 * is the order fields were first set: the same sequence of operations on
 * every replica gives the same bytes, which is what the state digest and
 * fsm_dump compare. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

void fsm__rec_init(struct fsm_rec *r)
{
    r->n = 0;
    r->oom = 0;
}

void fsm__rec_free(struct fsm_rec *r)
{
    for (unsigned i = 0; i < r->n; i++) {
        free(r->f[i].s);
        r->f[i].s = NULL;
    }
    r->n = 0;
    r->oom = 0;
}

static struct fsm_rf *rf_find(const struct fsm_rec *r, const char *k)
{
    for (unsigned i = 0; i < r->n; i++) {
        if (strcmp(r->f[i].k, k) == 0) {
            return (struct fsm_rf *)&r->f[i];
        }
    }
    return NULL;
}

/* The field @k, created at the end if absent, emptied. NULL (and oom) if
 * the record is full or the name too long: a programming error that
 * fsm__rec_save reports. */
static struct fsm_rf *rf_slot(struct fsm_rec *r, const char *k)
{
    struct fsm_rf *f = rf_find(r, k);

    if (f == NULL) {
        if (r->n >= FSM_REC_MAX || strlen(k) >= sizeof f->k) {
            r->oom = 1;
            return NULL;
        }
        f = &r->f[r->n++];
        snprintf(f->k, sizeof f->k, "%s", k);
        f->s = NULL;
    }
    free(f->s);
    f->s = NULL;
    f->t = FSM_RF_NIL;
    f->i = 0;
    return f;
}

static char *dupn(const char *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s != NULL) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

void fsm__rec_set_s(struct fsm_rec *r, const char *k, const char *v)
{
    struct fsm_rf *f = rf_slot(r, k);

    if (f == NULL) {
        return;
    }
    f->t = FSM_RF_STR;
    f->s = dupn(v, strlen(v));
    if (f->s == NULL) {
        r->oom = 1;
        f->t = FSM_RF_NIL;
    }
}

void fsm__rec_set_i(struct fsm_rec *r, const char *k, int64_t v)
{
    struct fsm_rf *f = rf_slot(r, k);

    if (f != NULL) {
        f->t = FSM_RF_INT;
        f->i = v;
    }
}

void fsm__rec_set_b(struct fsm_rec *r, const char *k, int v)
{
    struct fsm_rf *f = rf_slot(r, k);

    if (f != NULL) {
        f->t = FSM_RF_BOOL;
        f->i = v != 0;
    }
}

void fsm__rec_set_l(struct fsm_rec *r,
                    const char *k,
                    char (*v)[FSM_ID_SIZE],
                    unsigned n)
{
    struct fsm_rf *f = rf_slot(r, k);
    size_t len = 0, off = 0;

    if (f == NULL) {
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        len += strlen(v[i]) + 1;
    }
    f->s = malloc(len + 1);
    if (f->s == NULL) {
        r->oom = 1;
        return;
    }
    f->t = FSM_RF_LIST;
    for (unsigned i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        if (i > 0) {
            f->s[off++] = '\n';
        }
        memcpy(f->s + off, v[i], l);
        off += l;
    }
    f->s[off] = '\0';
}

void fsm__rec_set_bin(struct fsm_rec *r, const char *k, const void *p, size_t n)
{
    struct fsm_rf *f = rf_slot(r, k);

    if (f == NULL) {
        return;
    }
    f->t = FSM_RF_BIN;
    f->i = (int64_t)n;
    f->s = dupn(p, n);
    if (f->s == NULL) {
        r->oom = 1;
        f->t = FSM_RF_NIL;
        f->i = 0;
    }
}

const char *fsm__rec_bin(const struct fsm_rec *r, const char *k, size_t *n)
{
    const struct fsm_rf *f = rf_find(r, k);

    if (f == NULL || f->t != FSM_RF_BIN) {
        *n = 0;
        return NULL;
    }
    *n = (size_t)f->i;
    return f->s;
}

void fsm__rec_del(struct fsm_rec *r, const char *k)
{
    struct fsm_rf *f = rf_find(r, k);

    if (f == NULL) {
        return;
    }
    free(f->s);
    memmove(f, f + 1, (size_t)(&r->f[r->n] - (f + 1)) * sizeof *f);
    r->n--;
}

const char *fsm__rec_s(const struct fsm_rec *r, const char *k)
{
    const struct fsm_rf *f = rf_find(r, k);

    return f != NULL && (f->t == FSM_RF_STR || f->t == FSM_RF_LIST) ? f->s : "";
}

int64_t fsm__rec_i(const struct fsm_rec *r, const char *k)
{
    const struct fsm_rf *f = rf_find(r, k);

    return f != NULL && (f->t == FSM_RF_INT || f->t == FSM_RF_BOOL) ? f->i : 0;
}

int fsm__rec_has(const struct fsm_rec *r, const char *k)
{
    return rf_find(r, k) != NULL;
}

int fsm__rec_decode(const void *p, size_t n, struct fsm_rec *r)
{
    msgpack_unpacked u;
    const msgpack_object *m;
    int rc = 0;

    fsm__rec_free(r);
    msgpack_unpacked_init(&u);
    if (fsm__mp_decode(p, n, &u) != 0 || u.data.type != MSGPACK_OBJECT_MAP ||
        u.data.via.map.size > FSM_REC_MAX) {
        msgpack_unpacked_destroy(&u);
        return YH_ECORRUPT;
    }
    m = &u.data;
    for (uint32_t i = 0; i < m->via.map.size && rc == 0; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        const msgpack_object *v = &m->via.map.ptr[i].val;
        char name[32];
        struct fsm_rf *f;
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size >= sizeof name ||
            memchr(k->via.str.ptr, '\0', k->via.str.size) != NULL) {
            rc = YH_ECORRUPT;
            break;
        }
        /* Append without looking the name up: records are written by
         * fsm__rec_pack_all with unique names, and the lookup (a strcmp
         * per field already decoded, plus snprintf) was a fifth of the
         * CPU of a large Describe. */
        if (r->n >= FSM_REC_MAX) {
            rc = YH_ECORRUPT;
            break;
        }
        f = &r->f[r->n++];
        memcpy(f->k, k->via.str.ptr, k->via.str.size);
        f->k[k->via.str.size] = '\0';
        f->s = NULL;
        f->t = FSM_RF_NIL;
        f->i = 0;
        switch (v->type) {
        case MSGPACK_OBJECT_NIL:
            break;
        case MSGPACK_OBJECT_BOOLEAN:
            f->t = FSM_RF_BOOL;
            f->i = v->via.boolean;
            break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            if (v->via.u64 > INT64_MAX) {
                rc = YH_ECORRUPT;
            }
            f->t = FSM_RF_INT;
            f->i = (int64_t)v->via.u64;
            break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            f->t = FSM_RF_INT;
            f->i = v->via.i64;
            break;
        case MSGPACK_OBJECT_BIN:
            f->t = FSM_RF_BIN;
            f->i = v->via.bin.size;
            f->s = dupn(v->via.bin.ptr, v->via.bin.size);
            if (f->s == NULL) {
                rc = YH_ENOMEM;
            }
            break;
        case MSGPACK_OBJECT_STR:
            f->t = FSM_RF_STR;
            f->s = dupn(v->via.str.ptr, v->via.str.size);
            if (f->s == NULL) {
                rc = YH_ENOMEM;
            }
            break;
        case MSGPACK_OBJECT_ARRAY: {
            size_t len = 0, off = 0;
            for (uint32_t j = 0; j < v->via.array.size; j++) {
                if (v->via.array.ptr[j].type != MSGPACK_OBJECT_STR) {
                    rc = YH_ECORRUPT;
                    break;
                }
                len += v->via.array.ptr[j].via.str.size + 1;
            }
            if (rc != 0) {
                break;
            }
            f->s = malloc(len + 1);
            if (f->s == NULL) {
                rc = YH_ENOMEM;
                break;
            }
            f->t = FSM_RF_LIST;
            for (uint32_t j = 0; j < v->via.array.size; j++) {
                const msgpack_object *e = &v->via.array.ptr[j];
                if (j > 0) {
                    f->s[off++] = '\n';
                }
                memcpy(f->s + off, e->via.str.ptr, e->via.str.size);
                off += e->via.str.size;
            }
            f->s[off] = '\0';
            break;
        }
        default:
            rc = YH_ECORRUPT;
            break;
        }
    }
    msgpack_unpacked_destroy(&u);
    if (rc != 0) {
        fsm__rec_free(r);
    }
    return rc;
}

int fsm__rec_load(struct fsm *f,
                  MDB_txn *txn,
                  enum fsm_tbl t,
                  const void *k,
                  size_t kl,
                  struct fsm_rec *r)
{
    MDB_val v;
    int rc;

    fsm__rec_free(r);
    rc = fsm__get(f, txn, t, k, kl, &v);
    if (rc != 0) {
        return rc;
    }
    rc = fsm__rec_decode(v.mv_data, v.mv_size, r);
    if (rc == YH_ECORRUPT) {
        snprintf(f->errmsg, sizeof f->errmsg, "record in '%s' is corrupt",
                 fsm__tbls[t].name);
    }
    return rc;
}

static void pack_list(msgpack_packer *pk, const char *s)
{
    uint32_t n = 0;
    const char *p;

    if (s[0] != '\0') {
        n = 1;
        for (p = s; *p != '\0'; p++) {
            n += *p == '\n';
        }
    }
    msgpack_pack_array(pk, n);
    for (p = s; n > 0; n--) {
        const char *e = strchr(p, '\n');
        size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
        yh_mp_pack_strn(pk, p, l);
        p += l + 1;
    }
}

static void pack_fields(msgpack_packer *pk,
                        const struct fsm_rec *r,
                        int public_only,
                        uint32_t extra)
{
    uint32_t n = extra;

    for (unsigned i = 0; i < r->n; i++) {
        n += !public_only || (r->f[i].k[0] != '_' && r->f[i].t != FSM_RF_BIN);
    }
    msgpack_pack_map(pk, n);
    for (unsigned i = 0; i < r->n; i++) {
        const struct fsm_rf *f = &r->f[i];
        if (public_only && (f->k[0] == '_' || f->t == FSM_RF_BIN)) {
            continue;
        }
        yh_mp_pack_str(pk, f->k);
        switch (f->t) {
        case FSM_RF_NIL:
            msgpack_pack_nil(pk);
            break;
        case FSM_RF_INT:
            msgpack_pack_int64(pk, f->i);
            break;
        case FSM_RF_BOOL:
            if (f->i) {
                msgpack_pack_true(pk);
            } else {
                msgpack_pack_false(pk);
            }
            break;
        case FSM_RF_STR:
            yh_mp_pack_str(pk, f->s);
            break;
        case FSM_RF_LIST:
            pack_list(pk, f->s);
            break;
        case FSM_RF_BIN:
            msgpack_pack_bin(pk, (size_t)f->i);
            msgpack_pack_bin_body(pk, f->s, (size_t)f->i);
            break;
        }
    }
}

void fsm__rec_pack_all(msgpack_packer *pk, const struct fsm_rec *r)
{
    pack_fields(pk, r, 0, 0);
}

void fsm__rec_pack(msgpack_packer *pk, const struct fsm_rec *r)
{
    pack_fields(pk, r, 1, 0);
}

void fsm__rec_pack_more(msgpack_packer *pk,
                        const struct fsm_rec *r,
                        uint32_t extra)
{
    pack_fields(pk, r, 1, extra);
}

/* Add (@add) or drop the row TenantID "\0" resource of 'tenant_res'. A
 * row is only a hint for Describe, which still checks the record's owner;
 * adding is skipped when present (most saves update a resource). */
static int tenant_index(struct fsm_ctx *c,
                        const char *tenant,
                        const void *id,
                        size_t idl,
                        int add)
{
    uint8_t key[2 * FSM_ID_SIZE + 2];
    size_t tl = strlen(tenant);
    MDB_val v;
    int rc;

    if (tl == 0 || tl >= FSM_ID_SIZE || idl == 0 || idl >= FSM_ID_SIZE) {
        return 0; /* no owner (or not an ID): nothing to index */
    }
    memcpy(key, tenant, tl);
    key[tl] = '\0';
    memcpy(key + tl + 1, id, idl);
    rc = fsm__get(c->f, c->txn, FSM_TBL_TENANT_RES, key, tl + 1 + idl, &v);
    if (add) {
        return rc == YH_ENOTFOUND ? fsm__put(c->f, c->txn, FSM_TBL_TENANT_RES,
                                             key, tl + 1 + idl, "", 0)
                                  : rc;
    }
    return rc == 0
               ? fsm__del(c->f, c->txn, FSM_TBL_TENANT_RES, key, tl + 1 + idl)
           : rc == YH_ENOTFOUND ? 0
                                : rc;
}

int fsm__rec_save(struct fsm_ctx *c,
                  enum fsm_tbl t,
                  const void *k,
                  size_t kl,
                  const struct fsm_rec *r)
{
    struct yh_buf b = YH_BUF_INIT;
    struct fsm_out o;
    int rc;

    if (r->oom) {
        snprintf(c->f->errmsg, sizeof c->f->errmsg,
                 "record for '%s' could not be built", fsm__tbls[t].name);
        return YH_ENOMEM;
    }
    fsm__out_init(&o, &b);
    fsm__rec_pack_all(&o.pk, r);
    rc = o.oom ? YH_ENOMEM : fsm__cput(c, t, k, kl, b.data, b.len);
    yh_buf_release(&b);
    if (rc == 0 && t == FSM_TBL_RES) {
        rc = tenant_index(c, fsm__rec_s(r, "TenantID"), k, kl, 1);
    }
    return rc;
}

int fsm__cput(struct fsm_ctx *c,
              enum fsm_tbl t,
              const void *k,
              size_t kl,
              const void *v,
              size_t vl)
{
    c->wrote = 1;
    return fsm__put(c->f, c->txn, t, k, kl, v, vl);
}

int fsm__cdel(struct fsm_ctx *c, enum fsm_tbl t, const void *k, size_t kl)
{
    c->wrote = 1;
    if (t == FSM_TBL_RES) {
        struct fsm_rec r;
        int rc;
        fsm__rec_init(&r);
        rc = fsm__rec_load(c->f, c->txn, t, k, kl, &r);
        if (rc == 0) {
            rc = tenant_index(c, fsm__rec_s(&r, "TenantID"), k, kl, 0);
        }
        fsm__rec_free(&r);
        if (rc != 0 && rc != YH_ENOTFOUND) {
            return rc;
        }
    }
    return fsm__del(c->f, c->txn, t, k, kl);
}

size_t fsm__key2(char *out, const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);

    memcpy(out, a, la);
    out[la] = '\0';
    memcpy(out + la + 1, b, lb);
    out[la + 1 + lb] = '\0';
    return la + 1 + lb;
}

int fsm__new_id(struct fsm_ctx *c, const char *prefix, char out[FSM_ID_SIZE])
{
    char ctr[40];
    uint64_t n;
    int rc;

    snprintf(ctr, sizeof ctr, "ctr.%s", prefix);
    c->wrote = 1;
    rc = fsm__counter_next(c->f, c->txn, ctr, &n);
    if (rc != 0) {
        return rc;
    }
    snprintf(out, FSM_ID_SIZE, "%s-%08" PRIu64, prefix, n);
    return 0;
}

int fsm__owns(const struct fsm_ctx *c, const char *tenant)
{
    if (c->actor->admin) {
        return 1;
    }
    return c->actor->tenant_id[0] != '\0' &&
           strcmp(c->actor->tenant_id, tenant) == 0;
}

int fsm__owner_arg(struct fsm_ctx *c, char tenant[FSM_ID_SIZE])
{
    struct fsm_rec u;
    int given;
    int rc;

    rc = fsm__arg_str(c, "TenantID", 0, FSM_ID_SIZE - 1, tenant, &given);
    if (rc != 0) {
        return rc;
    }
    if (!c->actor->admin) {
        if (given && strcmp(tenant, c->actor->tenant_id) != 0) {
            return fsm__reject(c, YH_EPERM,
                               "permission denied: cannot act for tenant "
                               "'%s'",
                               tenant);
        }
        snprintf(tenant, FSM_ID_SIZE, "%s", c->actor->tenant_id);
        return 0;
    }
    if (!given) {
        return fsm__reject(c, YH_EMISSING,
                           "missing parameter 'TenantID' (the administrator "
                           "acts for a tenant)");
    }
    fsm__rec_init(&u);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_USERS, tenant, strlen(tenant), &u);
    if (rc == 0 && (fsm__rec_i(&u, "Admin") != 0 ||
                    strcmp(fsm__rec_s(&u, "TenantID"), tenant) != 0)) {
        rc = YH_ENOTFOUND;
    }
    fsm__rec_free(&u);
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "tenant '%s' not found", tenant);
    }
    return rc;
}

/* ---- generic Describe ---- */

static int id_cmp(const void *x, const void *y)
{
    return strcmp(x, y);
}

struct visit
{
    struct fsm_ctx *c;        /* context */
    const struct fsm_desc *d; /* what */
    struct fsm_out o;         /* items */
    uint64_t offset, limit;   /* page */
    uint64_t total, n;        /* counts */
};

static int visit(struct visit *vs, const struct fsm_rec *r)
{
    struct fsm_ctx *c = vs->c;
    const struct fsm_desc *d = vs->d;

    if (!d->no_tenant && !fsm__owns(c, fsm__rec_s(r, "TenantID"))) {
        return 0;
    }
    if (d->keep != NULL && !d->keep(c, r, d->arg)) {
        return 0;
    }
    if (vs->total >= vs->offset && vs->n < vs->limit) {
        if (d->pack != NULL) {
            d->pack(c, &vs->o.pk, r, d->arg);
        } else {
            fsm__rec_pack(&vs->o.pk, r);
        }
        vs->n++;
    }
    vs->total++;
    return 0;
}

int fsm__describe(struct fsm_ctx *c, const struct fsm_desc *d)
{
    char ids[100][FSM_ID_SIZE];
    struct yh_buf items = YH_BUF_INIT;
    size_t plen = strlen(d->prefix);
    MDB_cursor *cur = NULL;
    struct visit vs;
    struct fsm_rec r;
    unsigned n_ids = 0;
    MDB_val k, v;
    int rc;

    memset(&vs, 0, sizeof vs);
    vs.c = c;
    vs.d = d;
    if (d->ids_key != NULL) {
        rc = fsm__arg_list(c, d->ids_key, 100, ids, &n_ids);
        if (rc != 0) {
            return rc;
        }
    }
    rc = fsm__arg_page(c, &vs.offset, &vs.limit);
    if (rc != 0) {
        return rc;
    }
    fsm__out_init(&vs.o, &items);
    fsm__rec_init(&r);
    if (n_ids > 0) {
        qsort(ids, n_ids, sizeof ids[0], id_cmp);
        for (unsigned i = 0; i < n_ids; i++) {
            if (i > 0 && strcmp(ids[i], ids[i - 1]) == 0) {
                continue;
            }
            if (strncmp(ids[i], d->prefix, plen) != 0) {
                continue;
            }
            rc =
                fsm__rec_load(c->f, c->txn, d->tbl, ids[i], strlen(ids[i]), &r);
            if (rc == YH_ENOTFOUND) {
                continue;
            }
            if (rc != 0) {
                goto out;
            }
            visit(&vs, &r);
        }
        rc = 0;
    } else if (d->tbl == FSM_TBL_RES && !d->no_tenant && !c->actor->admin) {
        /* a tenant's own resources only, through its index rows */
        char pre[2 * FSM_ID_SIZE + 2];
        size_t tl = strlen(c->actor->tenant_id);
        size_t pl;
        if (tl == 0 || tl + 1 + plen >= sizeof pre) {
            goto done; /* no tenant: owns nothing */
        }
        memcpy(pre, c->actor->tenant_id, tl);
        pre[tl] = '\0';
        memcpy(pre + tl + 1, d->prefix, plen);
        pl = tl + 1 + plen;
        rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_TENANT_RES], &cur);
        if (rc != 0) {
            rc = fsm__mdb_err(c->f, rc, "open cursor on 'tenant_res'");
            goto out;
        }
        k.mv_data = pre;
        k.mv_size = pl;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            int lr;
            if (k.mv_size < pl || memcmp(k.mv_data, pre, pl) != 0) {
                break;
            }
            lr = fsm__rec_load(c->f, c->txn, FSM_TBL_RES,
                               (const uint8_t *)k.mv_data + tl + 1,
                               k.mv_size - tl - 1, &r);
            if (lr == YH_ENOTFOUND) {
                continue;
            }
            if (lr != 0) {
                rc = lr;
                goto out;
            }
            visit(&vs, &r);
        }
        if (rc != 0 && rc != MDB_NOTFOUND) {
            rc = fsm__mdb_err(c->f, rc, "read 'tenant_res'");
            goto out;
        }
        rc = 0;
    } else {
        rc = mdb_cursor_open(c->txn, c->f->dbis[d->tbl], &cur);
        if (rc != 0) {
            rc = fsm__mdb_err(c->f, rc, "open cursor on '%s'",
                              fsm__tbls[d->tbl].name);
            goto out;
        }
        k.mv_data = (void *)d->prefix;
        k.mv_size = plen;
        rc = mdb_cursor_get(cur, &k, &v, plen > 0 ? MDB_SET_RANGE : MDB_FIRST);
        for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size < plen || memcmp(k.mv_data, d->prefix, plen) != 0) {
                break;
            }
            rc = fsm__rec_decode(v.mv_data, v.mv_size, &r);
            if (rc != 0) {
                snprintf(c->f->errmsg, sizeof c->f->errmsg,
                         "record in '%s' is corrupt", fsm__tbls[d->tbl].name);
                goto out;
            }
            visit(&vs, &r);
        }
        if (rc != 0 && rc != MDB_NOTFOUND) {
            rc = fsm__mdb_err(c->f, rc, "read '%s'", fsm__tbls[d->tbl].name);
            goto out;
        }
        rc = 0;
    }
done:
    if (vs.o.oom) {
        rc = YH_ENOMEM;
        goto out;
    }
    msgpack_pack_array(fsm__field(c, "Infos"), (uint32_t)vs.n);
    if (items.len > 0 &&
        yh_buf_append(&c->fields_buf, items.data, items.len) != 0) {
        c->fields.oom = 1;
    }
    msgpack_pack_uint64(fsm__field(c, "TotalCount"), vs.total);
out:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    fsm__rec_free(&r);
    yh_buf_release(&items);
    return rc;
}

/* ---- arithmetic ---- */

int fsm__mul(int64_t a, int64_t b, int64_t *out)
{
    return __builtin_mul_overflow(a, b, out) ? YH_EINVAL : 0;
}

int fsm__add(int64_t a, int64_t b, int64_t *out)
{
    return __builtin_add_overflow(a, b, out) ? YH_EINVAL : 0;
}
