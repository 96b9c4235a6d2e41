/* Quotas, usage counters and prices.
 *
 * A quota is a limit per tenant and resource type ("VM", "CPU", "Memory"
 * (MB), "GPU", "Disk" (count), "DiskGB:<SetType>", "Snapshot", "Image",
 * "VPC", "EIP", "Bandwidth" (Mbps), "NATGW", "LB", "VPNGateway"). The
 * tenant's own limit wins over the cluster default (scope "*"); with neither
 * the type is unlimited; a Limit of -1 means unlimited explicitly.
 *
 * Usage is counted in the state: every create adds to the tenant's usage
 * counters in the same apply that creates the resource, after checking the
 * limits against the same counters, so two concurrent creates are ordered
 * by the log and the second sees the first. Purges subtract.
 *
 * Prices are integers in 1/1000 of the currency unit, per unit of a spec
 * ("CPU" per core, "Memory" per GB, "GPU[:Model]" per card, "Disk[:Set]"
 * per GB, "EIP" per address, "Bandwidth" per Mbps, "Snapshot" per
 * snapshot, "Image" per image, "NATGW", "LB" and "VPNGateway" per gateway)
 * and ChargeType: Dynamic per billing period (one hour), Month per month,
 * Year per year. A spec "Base:Sub" without a price of its own costs what
 * "Base" costs; a spec without any price is free. No floating point
 * anywhere: products are overflow-checked. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define TYPE_MAX 48
#define DEFAULT_SCOPE "*"

static const char *const quota_types[] = {
    "VM",    "CPU", "Memory", "GPU",       "Disk",  "DiskGB", "Snapshot",
    "Image", "VPC", "EIP",    "Bandwidth", "NATGW", "LB",     "VPNGateway",
};
#define N_QUOTA_TYPES (sizeof quota_types / sizeof quota_types[0])

static const char *const price_specs[] = {
    "CPU",      "Memory", "GPU",   "Disk", "EIP",        "Bandwidth",
    "Snapshot", "Image",  "NATGW", "LB",   "VPNGateway",
};
#define N_PRICE_SPECS (sizeof price_specs / sizeof price_specs[0])

/* "Base" or "Base:Sub" with Base in @bases and Sub (letters, digits, '-',
 * '_', at most 32) only where @sub_ok names it. */
static int spec_ok(const char *s,
                   const char *const *bases,
                   size_t n,
                   const char *const *subs,
                   size_t n_subs)
{
    const char *colon = strchr(s, ':');
    size_t bl = colon != NULL ? (size_t)(colon - s) : strlen(s);
    int base = -1;

    for (size_t i = 0; i < n; i++) {
        if (strlen(bases[i]) == bl && strncmp(bases[i], s, bl) == 0) {
            base = (int)i;
        }
    }
    if (base < 0) {
        return 0;
    }
    if (colon == NULL) {
        return 1;
    }
    {
        int sub_ok = 0;
        size_t sl = strlen(colon + 1);
        for (size_t i = 0; i < n_subs; i++) {
            sub_ok |= strcmp(subs[i], bases[base]) == 0;
        }
        if (!sub_ok || sl == 0 || sl > 32) {
            return 0;
        }
        for (const char *p = colon + 1; *p != '\0'; p++) {
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')) {
                return 0;
            }
        }
    }
    return 1;
}

static int quota_type_ok(const char *t)
{
    static const char *const subs[] = {"DiskGB"};

    /* DiskGB is per set type: "DiskGB:<SetType>" only */
    return strcmp(t, "DiskGB") != 0 &&
           spec_ok(t, quota_types, N_QUOTA_TYPES, subs, 1);
}

/* ---- usage and limits: rows of type -> integer ----
 *
 * Since format 13 both tables hold one row per tenant (usage) or scope
 * (quotas: a tenant, or "*" for the cluster default): a msgpack map of
 * resource type -> integer, the types in byte order. Usage: Used, a
 * positive integer (a type at 0 is dropped, the row when none is left).
 * Quotas: Limit (-1 unlimited). A create reads one usage row and at most
 * two limit rows and writes one usage row however many types it counts (a
 * machine: VM, CPU, Memory, Disk, DiskGB:<Set>; each type was a row). */
struct tmap_ent
{
    char t[TYPE_MAX + 1];
    int64_t v;
};

struct tmap
{
    unsigned n, cap;
    int found; /* the row exists */
    struct tmap_ent *e;
    struct tmap_ent fixed[16];
};

static void tmap_init(struct tmap *u)
{
    u->n = 0;
    u->cap = sizeof u->fixed / sizeof u->fixed[0];
    u->found = 0;
    u->e = u->fixed;
}

static void tmap_free(struct tmap *u)
{
    if (u->e != u->fixed) {
        free(u->e);
    }
    tmap_init(u);
}

/* The entry of @t (NULL if none); *at: where it is or would go. */
static struct tmap_ent *tmap_find(const struct tmap *u,
                                  const char *t,
                                  unsigned *at)
{
    unsigned lo = 0, hi = u->n;

    if (hi > 0 && strcmp(u->e[hi - 1].t, t) < 0) {
        *at = hi; /* after the last (a stored row is read in order) */
        return NULL;
    }

    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        int d = strcmp(u->e[mid].t, t);
        if (d == 0) {
            *at = mid;
            return &u->e[mid];
        }
        if (d < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *at = lo;
    return NULL;
}

/* The value of @t (0 if none; *found whether there is one). */
static int64_t tmap_get(const struct tmap *u, const char *t, int *found)
{
    unsigned at;
    const struct tmap_ent *e = tmap_find(u, t, &at);

    if (found != NULL) {
        *found = e != NULL;
    }
    return e != NULL ? e->v : 0;
}

/* Set @t to @v; with @drop a value <= 0 removes it instead (usage). */
static int tmap_set(struct tmap *u, const char *t, int64_t v, int drop)
{
    size_t tl;
    unsigned at;
    struct tmap_ent *e = tmap_find(u, t, &at);

    if (e != NULL) {
        if (!drop || v > 0) {
            e->v = v;
        } else {
            memmove(&u->e[at], &u->e[at + 1], (u->n - at - 1) * sizeof u->e[0]);
            u->n--;
        }
        return 0;
    }
    if (drop && v <= 0) {
        return 0;
    }
    tl = strlen(t);
    if (tl > TYPE_MAX) {
        return YH_EINVAL;
    }
    if (u->n == u->cap) {
        unsigned cap = u->cap * 2;
        struct tmap_ent *ne = malloc(cap * sizeof *ne);
        if (ne == NULL) {
            return YH_ENOMEM;
        }
        memcpy(ne, u->e, u->n * sizeof *ne);
        if (u->e != u->fixed) {
            free(u->e);
        }
        u->e = ne;
        u->cap = cap;
    }
    memmove(&u->e[at + 1], &u->e[at], (u->n - at) * sizeof u->e[0]);
    memcpy(u->e[at].t, t, tl + 1);
    u->e[at].v = v;
    u->n++;
    return 0;
}

/* Big-endian unsigned of @n bytes at @p. */
static uint64_t be_n(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* Parse the stored row (a map of str -> int). */
static int tmap_parse(struct tmap *u, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    uint64_t n;

    if (p == end) {
        return YH_ECORRUPT;
    }
    if ((*p & 0xf0) == 0x80) {
        n = *p++ & 0x0f;
    } else if (*p == 0xde && end - p >= 3) {
        n = be_n(p + 1, 2);
        p += 3;
    } else if (*p == 0xdf && end - p >= 5) {
        n = be_n(p + 1, 4);
        p += 5;
    } else {
        return YH_ECORRUPT;
    }
    for (; n > 0; n--) {
        char t[TYPE_MAX + 1];
        uint64_t sl;
        int64_t v;
        unsigned w;
        if (p == end) {
            return YH_ECORRUPT;
        }
        if ((*p & 0xe0) == 0xa0) {
            sl = *p++ & 0x1f;
        } else if (*p == 0xd9 && end - p >= 2) {
            sl = p[1];
            p += 2;
        } else {
            return YH_ECORRUPT;
        }
        if (sl > TYPE_MAX || (uint64_t)(end - p) < sl) {
            return YH_ECORRUPT;
        }
        memcpy(t, p, sl);
        t[sl] = '\0';
        p += sl;
        if (p == end) {
            return YH_ECORRUPT;
        }
        if (*p <= 0x7f) {
            v = *p++;
        } else if (*p >= 0xe0) {
            v = (int8_t)*p++;
        } else if (*p >= 0xcc && *p <= 0xd3) {
            w = 1u << ((*p - 0xcc) & 3);
            if ((size_t)(end - p) < 1 + w) {
                return YH_ECORRUPT;
            }
            if (*p <= 0xcf) {
                uint64_t x = be_n(p + 1, w);
                if (x > INT64_MAX) {
                    return YH_ECORRUPT;
                }
                v = (int64_t)x;
            } else {
                uint64_t x = be_n(p + 1, w);
                unsigned sh = 64 - 8 * w;
                v = sh > 0 ? (int64_t)(x << sh) >> sh : (int64_t)x;
            }
            p += 1 + w;
        } else {
            return YH_ECORRUPT;
        }
        if (tmap_set(u, t, v, 0) != 0) {
            return YH_ECORRUPT;
        }
    }
    return p == end ? 0 : YH_ECORRUPT;
}

/* The key of the row of tenant or scope @key: its bytes (the NUL byte for
 * "", which no ID starts with). */
static size_t row_key_len(const char *key)
{
    return key[0] != '\0' ? strlen(key) : 1;
}

/* Row @key of @t (usage or quotas) into @u (empty if absent). */
static int tmap_load(struct fsm_ctx *c,
                     enum fsm_tbl t,
                     const char *key,
                     struct tmap *u)
{
    MDB_val v;
    int rc;

    tmap_init(u);
    rc = fsm__get(c->f, c->txn, t, key, row_key_len(key), &v);
    if (rc == YH_ENOTFOUND) {
        return 0;
    }
    if (rc == 0) {
        u->found = 1;
        rc = tmap_parse(u, v.mv_data, v.mv_size);
        if (rc == YH_ECORRUPT) {
            snprintf(c->f->errmsg, sizeof c->f->errmsg,
                     "record in '%s' is corrupt", fsm__tbls[t].name);
        }
    }
    return rc;
}

static uint8_t *put_be(uint8_t *o, uint64_t v, unsigned n)
{
    for (unsigned i = n; i > 0; i--) {
        o[i - 1] = (uint8_t)v;
        v >>= 8;
    }
    return o + n;
}

/* Store row @key of @t (deleted when empty). */
static int tmap_save(struct fsm_ctx *c,
                     enum fsm_tbl t,
                     const char *key,
                     const struct tmap *u)
{
    struct yh_buf b = YH_BUF_INIT;
    uint8_t *o;
    int rc;

    if (u->n == 0) {
        return u->found ? fsm__cdel(c, t, key, row_key_len(key)) : 0;
    }
    if (yh_buf_reserve(&b, 5 + (size_t)u->n * (2 + TYPE_MAX + 9)) != 0) {
        return YH_ENOMEM;
    }
    o = b.data;
    if (u->n < 16) {
        *o++ = (uint8_t)(0x80 | u->n);
    } else if (u->n <= 0xffff) {
        *o++ = 0xde;
        o = put_be(o, u->n, 2);
    } else {
        *o++ = 0xdf;
        o = put_be(o, u->n, 4);
    }
    for (unsigned i = 0; i < u->n; i++) {
        size_t sl = strlen(u->e[i].t);
        int64_t sv = u->e[i].v;
        uint64_t v = (uint64_t)sv;
        if (sl < 32) {
            *o++ = (uint8_t)(0xa0 | sl);
        } else {
            *o++ = 0xd9;
            *o++ = (uint8_t)sl;
        }
        memcpy(o, u->e[i].t, sl);
        o += sl;
        if (sv < 0) {
            /* a limit of -1 (unlimited); any negative, as int64 */
            if (sv >= -32) {
                *o++ = (uint8_t)sv;
            } else {
                *o++ = 0xd3;
                o = put_be(o, v, 8);
            }
        } else if (v < 0x80) {
            *o++ = (uint8_t)v;
        } else if (v <= 0xff) {
            *o++ = 0xcc;
            o = put_be(o, v, 1);
        } else if (v <= 0xffff) {
            *o++ = 0xcd;
            o = put_be(o, v, 2);
        } else if (v <= 0xffffffffu) {
            *o++ = 0xce;
            o = put_be(o, v, 4);
        } else {
            *o++ = 0xcf;
            o = put_be(o, v, 8);
        }
    }
    b.len = (size_t)(o - b.data);
    rc = fsm__cput(c, t, key, row_key_len(key), b.data, b.len);
    yh_buf_release(&b);
    return rc;
}

/* A tenant's limit rows: its own and the cluster default. */
struct limits
{
    struct tmap own, def;
};

static int limits_load(struct fsm_ctx *c, const char *tenant, struct limits *l)
{
    int rc = tmap_load(c, FSM_TBL_QUOTAS, tenant, &l->own);

    tmap_init(&l->def);
    if (rc == 0) {
        rc = tmap_load(c, FSM_TBL_QUOTAS, DEFAULT_SCOPE, &l->def);
    }
    return rc;
}

static void limits_free(struct limits *l)
{
    tmap_free(&l->own);
    tmap_free(&l->def);
}

/* Effective limit of @type: *limit -1 when unlimited; *source "user",
 * "default" or "none". */
static void limit_of(const struct limits *l,
                     const char *type,
                     int64_t *limit,
                     const char **source)
{
    int found;

    *limit = tmap_get(&l->own, type, &found);
    *source = "user";
    if (!found) {
        *limit = tmap_get(&l->def, type, &found);
        *source = "default";
    }
    if (!found) {
        *limit = -1;
        *source = "none";
    }
}

int fsm__quota_check(struct fsm_ctx *c,
                     const char *tenant,
                     unsigned n,
                     const char *const *types,
                     const int64_t *delta)
{
    struct limits l;
    struct tmap u;
    int loaded = 0;
    int rc = 0;

    tmap_init(&l.own);
    tmap_init(&l.def);
    tmap_init(&u);
    for (unsigned i = 0; i < n && rc == 0; i++) {
        const char *source;
        int64_t limit, used, want;
        if (delta[i] <= 0) {
            continue;
        }
        if (!loaded) {
            rc = limits_load(c, tenant, &l);
            if (rc == 0) {
                rc = tmap_load(c, FSM_TBL_USAGE, tenant, &u);
            }
            loaded = 1;
            if (rc != 0) {
                break;
            }
        }
        limit_of(&l, types[i], &limit, &source);
        if (limit < 0) {
            continue;
        }
        used = tmap_get(&u, types[i], NULL);
        if (fsm__add(used, delta[i], &want) != 0 || want > limit) {
            rc = fsm__reject(c, YH_EQUOTA,
                             "quota exceeded: %s of tenant '%s' would be "
                             "%" PRId64 ", limit %" PRId64,
                             types[i], tenant, used + delta[i], limit);
        }
    }
    limits_free(&l);
    tmap_free(&u);
    return rc;
}

int fsm__usage_add(struct fsm_ctx *c,
                   const char *tenant,
                   unsigned n,
                   const char *const *types,
                   const int64_t *delta)
{
    struct tmap u;
    int changed = 0;
    int rc;

    rc = tmap_load(c, FSM_TBL_USAGE, tenant, &u);
    for (unsigned i = 0; i < n && rc == 0; i++) {
        if (delta[i] == 0) {
            continue;
        }
        rc = tmap_set(&u, types[i], tmap_get(&u, types[i], NULL) + delta[i], 1);
        changed = 1;
    }
    if (rc == 0 && changed) {
        rc = tmap_save(c, FSM_TBL_USAGE, tenant, &u);
    }
    tmap_free(&u);
    return rc;
}

/* ---- ModifyQuota ---- */

struct quota_args
{
    char scope[FSM_ID_SIZE]; /* UserID or "*" */
    char type[TYPE_MAX + 1]; /* ResourceType */
    int64_t limit;           /* Limit */
};

static int quota_args(struct fsm_ctx *c, struct quota_args *a)
{
    int given;

    TRY(fsm__arg_str(c, "UserID", 0, FSM_ID_SIZE - 1, a->scope, &given));
    if (!given) {
        snprintf(a->scope, sizeof a->scope, "%s", DEFAULT_SCOPE);
    }
    TRY(fsm__arg_str(c, "ResourceType", 1, TYPE_MAX, a->type, NULL));
    if (!quota_type_ok(a->type)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'ResourceType': '%s' (VM, CPU, "
                           "Memory, GPU, Disk, DiskGB:<SetType>, Snapshot, "
                           "Image, VPC, EIP, Bandwidth, NATGW, LB, "
                           "VPNGateway)",
                           a->type);
    }
    return fsm__arg_int(c, "Limit", 1, -1, INT64_MAX / 4, &a->limit, NULL);
}

/* The tenant @id exists (a main account). */
static int tenant_exists(struct fsm_ctx *c, const char *id)
{
    struct fsm_rec u;
    int rc;

    fsm__rec_init(&u);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_USERS, id, strlen(id), &u);
    if (rc == 0 && (fsm__rec_i(&u, "Admin") != 0 ||
                    strcmp(fsm__rec_s(&u, "TenantID"), id) != 0)) {
        rc = YH_ENOTFOUND;
    }
    fsm__rec_free(&u);
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "tenant '%s' not found", id);
    }
    return rc;
}

int fsm__quota_modify_check(struct fsm_ctx *c)
{
    struct quota_args a;

    return quota_args(c, &a);
}

int fsm__quota_modify_apply(struct fsm_ctx *c)
{
    struct quota_args a;
    struct tmap q;
    int rc;

    TRY(quota_args(c, &a));
    if (strcmp(a.scope, DEFAULT_SCOPE) != 0) {
        TRY(tenant_exists(c, a.scope));
    }
    rc = tmap_load(c, FSM_TBL_QUOTAS, a.scope, &q);
    if (rc == 0) {
        rc = tmap_set(&q, a.type, a.limit, 0);
    }
    if (rc == 0) {
        rc = tmap_save(c, FSM_TBL_QUOTAS, a.scope, &q);
    }
    tmap_free(&q);
    snprintf(c->resource_id, sizeof c->resource_id, "%s", a.scope);
    return rc;
}

/* ---- DescribeQuota ---- */

/* Add @type to @types if new. */
static void type_add(char (*types)[TYPE_MAX + 1], unsigned *n, const char *t)
{
    for (unsigned i = 0; i < *n; i++) {
        if (strcmp(types[i], t) == 0) {
            return;
        }
    }
    if (*n < 64 && strlen(t) <= TYPE_MAX) {
        snprintf(types[(*n)++], TYPE_MAX + 1, "%s", t);
    }
}

/* The DiskGB:<Set> types in row @key of @t. */
static int set_types(struct fsm_ctx *c,
                     enum fsm_tbl t,
                     const char *key,
                     char (*types)[TYPE_MAX + 1],
                     unsigned *n)
{
    struct tmap u;
    int rc = tmap_load(c, t, key, &u);

    for (unsigned i = 0; rc == 0 && i < u.n; i++) {
        if (strncmp(u.e[i].t, "DiskGB:", 7) == 0) {
            type_add(types, n, u.e[i].t);
        }
    }
    tmap_free(&u);
    return rc;
}

int fsm__quota_describe(struct fsm_ctx *c)
{
    char types[64][TYPE_MAX + 1];
    char tenant[FSM_ID_SIZE];
    uint64_t offset, limit;
    unsigned n = 0, shown = 0;
    msgpack_packer *pk;
    struct yh_buf items = YH_BUF_INIT;
    struct limits l;
    struct tmap u;
    struct fsm_out o;
    int given;
    int rc = 0;

    TRY(fsm__arg_str(c, "UserID", 0, FSM_ID_SIZE - 1, tenant, &given));
    TRY(fsm__arg_page(c, &offset, &limit));
    if (!c->actor->admin) {
        if (given && strcmp(tenant, c->actor->tenant_id) != 0 &&
            strcmp(tenant, c->actor->user_id) != 0) {
            return fsm__reject(c, YH_EPERM,
                               "permission denied: quota of another tenant");
        }
        snprintf(tenant, sizeof tenant, "%s", c->actor->tenant_id);
    } else if (!given) {
        snprintf(tenant, sizeof tenant, "%s", DEFAULT_SCOPE);
    } else if (strcmp(tenant, DEFAULT_SCOPE) != 0) {
        TRY(tenant_exists(c, tenant));
    }
    for (size_t i = 0; i < N_QUOTA_TYPES; i++) {
        if (strcmp(quota_types[i], "DiskGB") != 0) {
            type_add(types, &n, quota_types[i]);
        }
    }
    TRY(set_types(c, FSM_TBL_QUOTAS, DEFAULT_SCOPE, types, &n));
    TRY(set_types(c, FSM_TBL_QUOTAS, tenant, types, &n));
    TRY(set_types(c, FSM_TBL_USAGE, tenant, types, &n));
    rc = limits_load(c, tenant, &l);
    tmap_init(&u);
    if (rc == 0 && strcmp(tenant, DEFAULT_SCOPE) != 0) {
        rc = tmap_load(c, FSM_TBL_USAGE, tenant, &u);
    }
    fsm__out_init(&o, &items);
    for (unsigned i = 0; i < n && rc == 0; i++) {
        const char *source;
        int64_t lim, used;
        if (i < offset || shown >= limit) {
            continue;
        }
        limit_of(&l, types[i], &lim, &source);
        used = tmap_get(&u, types[i], NULL);
        msgpack_pack_map(&o.pk, 4);
        yh_mp_pack_kv_str(&o.pk, "ResourceType", types[i]);
        yh_mp_pack_kv_int(&o.pk, "Limit", lim);
        yh_mp_pack_kv_int(&o.pk, "Used", used);
        yh_mp_pack_kv_str(&o.pk, "Source", source);
        shown++;
    }
    if (rc == 0 && o.oom) {
        rc = YH_ENOMEM;
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "UserID"), tenant);
        pk = fsm__field(c, "Infos");
        msgpack_pack_array(pk, shown);
        if (items.len > 0 &&
            yh_buf_append(&c->fields_buf, items.data, items.len) != 0) {
            c->fields.oom = 1;
        }
        msgpack_pack_uint64(fsm__field(c, "TotalCount"), n);
    }
    yh_buf_release(&items);
    limits_free(&l);
    tmap_free(&u);
    return rc;
}

/* ---- prices ---- */

static int ct_ok(const char *ct)
{
    return strcmp(ct, "Dynamic") == 0 || strcmp(ct, "Month") == 0 ||
           strcmp(ct, "Year") == 0;
}

static int price_spec_ok(const char *s)
{
    static const char *const subs[] = {"GPU", "Disk"};

    return spec_ok(s, price_specs, N_PRICE_SPECS, subs, 2);
}

struct price_args
{
    char spec[TYPE_MAX + 1]; /* Spec */
    char ct[16];             /* ChargeType */
    int64_t price;           /* Price */
};

static int price_args(struct fsm_ctx *c, struct price_args *a)
{
    TRY(fsm__arg_str(c, "Spec", 1, TYPE_MAX, a->spec, NULL));
    if (!price_spec_ok(a->spec)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'Spec': '%s' (CPU, Memory, "
                           "GPU[:Model], Disk[:SetType], EIP, Bandwidth, "
                           "Snapshot, Image, NATGW, LB, VPNGateway)",
                           a->spec);
    }
    TRY(fsm__arg_str(c, "ChargeType", 1, sizeof a->ct - 1, a->ct, NULL));
    if (!ct_ok(a->ct)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'ChargeType': Dynamic, Month "
                           "or Year");
    }
    return fsm__arg_int(c, "Price", 1, 0, INT64_MAX / 1024, &a->price, NULL);
}

int fsm__price_modify_check(struct fsm_ctx *c)
{
    struct price_args a;

    return price_args(c, &a);
}

int fsm__price_modify_apply(struct fsm_ctx *c)
{
    char key[TYPE_MAX + 18];
    struct price_args a;
    struct fsm_rec r;
    int rc;

    TRY(price_args(c, &a));
    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "Spec", a.spec);
    fsm__rec_set_s(&r, "ChargeType", a.ct);
    fsm__rec_set_i(&r, "Price", a.price);
    fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
    rc =
        fsm__rec_save(c, FSM_TBL_PRICES, key, fsm__key2(key, a.spec, a.ct), &r);
    fsm__rec_free(&r);
    snprintf(c->resource_id, sizeof c->resource_id, "%s", a.spec);
    return rc;
}

static int price_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    const char *spec = arg;

    (void)c;
    return spec[0] == '\0' || strcmp(fsm__rec_s(r, "Spec"), spec) == 0;
}

int fsm__price_describe(struct fsm_ctx *c)
{
    char spec[TYPE_MAX + 1];
    struct fsm_desc d = {FSM_TBL_PRICES, "", NULL, 1, price_keep, NULL, spec};

    TRY(fsm__arg_str(c, "Spec", 0, TYPE_MAX, spec, NULL));
    return fsm__describe(c, &d);
}

int fsm__price_of(struct fsm_ctx *c,
                  const char *spec,
                  const char *ct,
                  int64_t units,
                  int64_t *out)
{
    char key[2 * TYPE_MAX + 20];
    char base[TYPE_MAX + 1];
    struct fsm_rec r;
    int64_t price = 0;
    const char *colon;
    int rc;

    *out = 0;
    if (units == 0) {
        return 0;
    }
    fsm__rec_init(&r);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_PRICES, key,
                       fsm__key2(key, spec, ct), &r);
    colon = strchr(spec, ':');
    if (rc == YH_ENOTFOUND && colon != NULL &&
        (size_t)(colon - spec) <= TYPE_MAX) {
        memcpy(base, spec, (size_t)(colon - spec));
        base[colon - spec] = '\0';
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_PRICES, key,
                           fsm__key2(key, base, ct), &r);
    }
    if (rc == 0) {
        price = fsm__rec_i(&r, "Price");
    }
    fsm__rec_free(&r);
    if (rc != 0 && rc != YH_ENOTFOUND) {
        return rc;
    }
    if (fsm__mul(price, units, out) != 0) {
        return fsm__reject(c, YH_EINVAL, "price of %s overflows", spec);
    }
    return 0;
}

int fsm__charge_args(struct fsm_ctx *c, char ct[16], int64_t *quantity)
{
    int given;

    TRY(fsm__arg_str(c, "ChargeType", 0, 15, ct, &given));
    if (!given) {
        snprintf(ct, 16, "Dynamic");
    }
    if (!ct_ok(ct)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'ChargeType': Dynamic, Month "
                           "or Year");
    }
    if (strcmp(ct, "Dynamic") == 0) {
        *quantity = 1;
        return 0;
    }
    TRY(fsm__arg_int(c, "Quantity", 0, 1, strcmp(ct, "Month") == 0 ? 11 : 5,
                     quantity, &given));
    if (!given) {
        *quantity = 1;
    }
    return 0;
}

/* Sum with overflow check, as a rejection. */
static int sum(struct fsm_ctx *c, int64_t *acc, int64_t v)
{
    if (fsm__add(*acc, v, acc) != 0) {
        return fsm__reject(c, YH_EINVAL, "price overflows");
    }
    return 0;
}

static int set_arg(struct fsm_ctx *c, const char *key, char out[33])
{
    int given;

    TRY(fsm__arg_str(c, key, 0, 32, out, &given));
    if (!given) {
        snprintf(out, 33, "Standard");
    }
    for (const char *p = out; *p != '\0'; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')) {
            return fsm__reject(c, YH_EINVAL, "invalid parameter '%s'", key);
        }
    }
    return 0;
}

int fsm__disk_price(struct fsm_ctx *c,
                    const char *set,
                    int64_t gb,
                    const char *ct,
                    int64_t *out)
{
    char spec[48];

    snprintf(spec, sizeof spec, "Disk:%s", set);
    return fsm__price_of(c, spec, ct, gb, out);
}

/* Result of a price query: one period's price and the total. */
static int price_result(struct fsm_ctx *c,
                        const char *ct,
                        int64_t quantity,
                        int64_t unit)
{
    int64_t total;

    if (fsm__mul(unit, quantity, &total) != 0) {
        return fsm__reject(c, YH_EINVAL, "price overflows");
    }
    yh_mp_pack_str(fsm__field(c, "ChargeType"), ct);
    msgpack_pack_int64(fsm__field(c, "Quantity"), quantity);
    msgpack_pack_int64(fsm__field(c, "UnitPrice"), unit);
    msgpack_pack_int64(fsm__field(c, "Price"), total);
    return 0;
}

int fsm__vm_price(struct fsm_ctx *c,
                  const struct fsm_vm_spec *s,
                  const char *ct,
                  int64_t *out)
{
    char spec[48];
    int64_t v;

    *out = 0;
    TRY(fsm__price_of(c, "CPU", ct, s->cpu, &v));
    TRY(sum(c, out, v));
    /* Memory is priced per GB and given in MB */
    TRY(fsm__price_of(c, "Memory", ct, s->mem, &v));
    TRY(sum(c, out, v / 1024));
    snprintf(spec, sizeof spec, "GPU:%s", s->gpu_type);
    TRY(fsm__price_of(c, s->gpu_type[0] != '\0' ? spec : "GPU", ct, s->gpu,
                      &v));
    TRY(sum(c, out, v));
    TRY(fsm__disk_price(c, s->boot_set, s->boot_gb, ct, &v));
    TRY(sum(c, out, v));
    TRY(fsm__disk_price(c, s->data_set, s->data_gb, ct, &v));
    return sum(c, out, v);
}

int fsm__price_vm(struct fsm_ctx *c)
{
    struct fsm_vm_spec s;
    char ct[16];
    int64_t q, unit;
    int given;

    memset(&s, 0, sizeof s);
    TRY(fsm__arg_int(c, "CPU", 1, 1, 1024, &s.cpu, NULL));
    TRY(fsm__arg_int(c, "Memory", 1, 128, 16 << 20, &s.mem, NULL));
    TRY(fsm__arg_int(c, "GPU", 0, 0, 64, &s.gpu, &given));
    TRY(set_arg(c, "GPUType", s.gpu_type));
    if (yh_mp_get(c->args, "GPUType") == NULL) {
        s.gpu_type[0] = '\0';
    }
    TRY(set_arg(c, "BootDiskSetType", s.boot_set));
    TRY(fsm__arg_int(c, "BootDiskSpace", 0, 0, 65536, &s.boot_gb, &given));
    TRY(set_arg(c, "DataDiskSetType", s.data_set));
    TRY(fsm__arg_int(c, "DataDiskSpace", 0, 0, 65536, &s.data_gb, &given));
    TRY(fsm__charge_args(c, ct, &q));
    TRY(fsm__vm_price(c, &s, ct, &unit));
    return price_result(c, ct, q, unit);
}

int fsm__price_disk(struct fsm_ctx *c)
{
    char ct[16], set[33];
    int64_t q, size, unit;

    TRY(set_arg(c, "SetType", set));
    TRY(fsm__arg_int(c, "Size", 1, 1, 65536, &size, NULL));
    TRY(fsm__charge_args(c, ct, &q));
    TRY(fsm__disk_price(c, set, size, ct, &unit));
    return price_result(c, ct, q, unit);
}

int fsm__price_eip(struct fsm_ctx *c)
{
    char ct[16];
    int64_t q, bw, unit = 0, v;

    TRY(fsm__arg_int(c, "Bandwidth", 1, 1, 100000, &bw, NULL));
    TRY(fsm__charge_args(c, ct, &q));
    TRY(fsm__price_of(c, "EIP", ct, 1, &v));
    TRY(sum(c, &unit, v));
    TRY(fsm__price_of(c, "Bandwidth", ct, bw, &v));
    TRY(sum(c, &unit, v));
    return price_result(c, ct, q, unit);
}
