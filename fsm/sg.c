/* Security groups ("sg-"), their rules ("sgrule-") and their bindings to
 * machines.
 *
 * A rule is the string PROTO|PORTS|CIDR|ACTION|PRIORITY|DIRECTION:
 *   PROTO     TCP, UDP, ICMP or ALL (any case, stored upper-case)
 *   PORTS     TCP/UDP: "22" or "1000-2000" (1..65535, low <= high);
 *             ICMP/ALL: empty (every port)
 *   CIDR      the peer network, IPv4 or IPv6, host bits zero
 *   ACTION    ACCEPT or DROP
 *   PRIORITY  HIGH, MEDIUM or LOW (the UCloud levels)
 *   DIRECTION INGRESS or EGRESS; may be left out (5 fields, the UCloud
 *             form): INGRESS
 * and is stored in that canonical form. A group holds at most 10,000 rules
 * and never the same canonical rule twice.
 *
 * Rows in "net" (the group record itself is in resources):
 *   "R" \0 SGID \0 RuleID  -> rule record (a group's rules in ID order,
 *                             so DescribeSecurityGroup pages over them)
 *   "r" \0 RuleID \0       -> {SecurityGroupID} (DeleteSecurityGroupRule)
 *   "D" \0 SGID \0 rule    -> {RuleID} (no duplicates)
 *   "B" \0 SGID \0 VMID    -> {} and "V" \0 VMID \0 SGID -> {} (bindings)
 * A binding to a machine that was purged since is dead: it neither blocks
 * DeleteSecurityGroup nor shows.
 *
 * A bound machine's agent spec carries its groups' rules (nic.c): binding,
 * unbinding and a rule change of a bound group move the NetGeneration of
 * the machines concerned (gw.c fsm__concern). */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define SG_PREFIX "sg"
#define RULE_PREFIX "sgrule"
#define NAME_MAX_LEN 64
#define RULES_PER_CALL 100
#define RULES_PER_SG 10000
#define SGS_PER_VM 8
#define KEY_MAX (2 * FSM_ID_SIZE + FSM_SG_RULE_MAX + 4)

/* ---- rule parsing ---- */

static int upper_in(const char *f,
                    size_t n,
                    const char *const *words,
                    char *out,
                    size_t size)
{
    char up[16];

    if (n == 0 || n >= sizeof up) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        up[i] = (char)toupper((unsigned char)f[i]);
    }
    up[n] = '\0';
    for (; *words != NULL; words++) {
        if (strcmp(up, *words) == 0) {
            snprintf(out, size, "%s", up);
            return 1;
        }
    }
    return 0;
}

/* A port 1..65535 in decimal without sign or leading zeros. */
static int port_of(const char *p, size_t n, unsigned *out)
{
    unsigned v = 0;

    if (n == 0 || n > 5 || (p[0] == '0')) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    *out = v;
    return v >= 1 && v <= 65535;
}

int fsm__sg_rule_parse(const char *s,
                       struct fsm_sg_rule *out,
                       char *why,
                       size_t why_size)
{
    static const char *const protos[] = {"TCP", "UDP", "ICMP", "ALL", NULL};
    static const char *const actions[] = {"ACCEPT", "DROP", NULL};
    static const char *const prios[] = {"HIGH", "MEDIUM", "LOW", NULL};
    static const char *const dirs[] = {"INGRESS", "EGRESS", NULL};
    const char *f[7];
    size_t fl[7];
    unsigned n = 0;
    char cidr[FSM_CIDR_STR], ports[16], sub[160];
    const char *p = s;

    memset(out, 0, sizeof *out);
    for (;;) {
        const char *e = strchr(p, '|');
        size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
        if (n == 7) {
            break;
        }
        f[n] = p;
        fl[n++] = l;
        if (e == NULL) {
            break;
        }
        p = e + 1;
    }
#define BAD(...)                                                     \
    do {                                                             \
        char d_[160];                                                \
        snprintf(d_, sizeof d_, __VA_ARGS__);                        \
        snprintf(why, why_size, "invalid rule '%.100s': %s", s, d_); \
        return YH_EINVAL;                                            \
    } while (0)
    if (n != 5 && n != 6) {
        BAD("%u fields, want PROTO|PORTS|CIDR|ACTION|PRIORITY[|DIRECTION]", n);
    }
    if (!upper_in(f[0], fl[0], protos, out->proto, sizeof out->proto)) {
        BAD("PROTO '%.*s' is not TCP, UDP, ICMP or ALL", (int)fl[0], f[0]);
    }
    if (strcmp(out->proto, "TCP") == 0 || strcmp(out->proto, "UDP") == 0) {
        const char *dash = memchr(f[1], '-', fl[1]);
        size_t ll = dash != NULL ? (size_t)(dash - f[1]) : fl[1];
        if (fl[1] == 0) {
            BAD("PORTS missing (%s needs a port or a range)", out->proto);
        }
        if (!port_of(f[1], ll, &out->lo) ||
            (dash != NULL && !port_of(dash + 1, fl[1] - ll - 1, &out->hi))) {
            BAD("PORTS '%.*s' out of range (1..65535, or LOW-HIGH)", (int)fl[1],
                f[1]);
        }
        if (dash == NULL) {
            out->hi = out->lo;
        }
        if (out->lo > out->hi) {
            BAD("PORTS '%.*s': low port above high port", (int)fl[1], f[1]);
        }
    } else if (fl[1] != 0) {
        BAD("PORTS '%.*s' given for %s (leave it empty)", (int)fl[1], f[1],
            out->proto);
    }
    if (fl[2] == 0 || fl[2] >= sizeof cidr) {
        BAD("CIDR '%.*s' is not a network", (int)(fl[2] > 60 ? 60 : fl[2]),
            f[2]);
    }
    memcpy(cidr, f[2], fl[2]);
    cidr[fl[2]] = '\0';
    if (fsm__cidr_parse(cidr, &out->cidr, sub, sizeof sub) != 0) {
        BAD("CIDR %s", sub);
    }
    if (!upper_in(f[3], fl[3], actions, out->action, sizeof out->action)) {
        BAD("ACTION '%.*s' is not ACCEPT or DROP", (int)fl[3], f[3]);
    }
    if (!upper_in(f[4], fl[4], prios, out->priority, sizeof out->priority)) {
        BAD("PRIORITY '%.*s' is not HIGH, MEDIUM or LOW", (int)fl[4], f[4]);
    }
    if (n == 6) {
        if (!upper_in(f[5], fl[5], dirs, out->direction,
                      sizeof out->direction)) {
            BAD("DIRECTION '%.*s' is not INGRESS or EGRESS", (int)fl[5], f[5]);
        }
    } else {
        snprintf(out->direction, sizeof out->direction, "INGRESS");
    }
#undef BAD
    ports[0] = '\0';
    if (out->lo != 0 && out->lo == out->hi) {
        snprintf(ports, sizeof ports, "%u", out->lo);
    } else if (out->lo != 0) {
        snprintf(ports, sizeof ports, "%u-%u", out->lo, out->hi);
    }
    fsm__cidr_format(&out->cidr, cidr);
    snprintf(out->canon, sizeof out->canon, "%s|%s|%s|%s|%s|%s", out->proto,
             ports, cidr, out->action, out->priority, out->direction);
    return 0;
}

/* ---- groups ---- */

static int64_t now_s(const struct fsm_ctx *c)
{
    return (int64_t)(c->time_ns / 1000000000u);
}

static int sg_args(struct fsm_ctx *c, char name[NAME_MAX_LEN + 1])
{
    return fsm__arg_str(c, "Name", 1, NAME_MAX_LEN, name, NULL);
}

int fsm__sg_create_check(struct fsm_ctx *c)
{
    char name[NAME_MAX_LEN + 1], tenant[FSM_ID_SIZE];

    TRY(sg_args(c, name));
    return fsm__owner_arg(c, tenant);
}

int fsm__sg_create_apply(struct fsm_ctx *c)
{
    char name[NAME_MAX_LEN + 1], tenant[FSM_ID_SIZE], id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(sg_args(c, name));
    TRY(fsm__owner_arg(c, tenant));
    TRY(fsm__new_id(c, SG_PREFIX, id));
    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "SecurityGroupID", id);
    fsm__rec_set_s(&r, "ResourceType", "SecurityGroup");
    fsm__rec_set_s(&r, "TenantID", tenant);
    fsm__rec_set_s(&r, "Name", name);
    fsm__rec_set_i(&r, "RuleCount", 0);
    fsm__rec_set_s(&r, "State", "Available");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    rc = fsm__net_save(c, id, &r);
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "SecurityGroupID"), id);
    }
    fsm__rec_free(&r);
    return rc;
}

/* Walk the "net" rows starting with @prefix: @fn gets the rest of each
 * key; non-zero from it stops (and is returned). */
typedef int row_fn(struct fsm_ctx *c,
                   const char *rest,
                   const MDB_val *v,
                   void *arg);

static int rows(struct fsm_ctx *c,
                const char *prefix,
                size_t pl,
                row_fn *fn,
                void *arg)
{
    MDB_cursor *cur;
    MDB_val k = {pl, (void *)prefix}, v;
    int mrc, rc = 0;

    mrc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_NET], &cur);
    if (mrc != 0) {
        return fsm__mdb_err(c->f, mrc, "open cursor on 'net'");
    }
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char rest[KEY_MAX];
        if (k.mv_size <= pl || memcmp(k.mv_data, prefix, pl) != 0) {
            break;
        }
        if (k.mv_size - pl >= sizeof rest) {
            continue;
        }
        memcpy(rest, (const char *)k.mv_data + pl, k.mv_size - pl);
        rest[k.mv_size - pl] = '\0';
        rc = fn(c, rest, &v, arg);
        if (rc != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = fsm__mdb_err(c->f, mrc, "read 'net'");
    }
    return rc;
}

/* Collect the rest of each row (IDs) into a growing array. */
struct idlist
{
    char (*ids)[FSM_ID_SIZE];
    size_t n, cap;
};

static int collect(struct fsm_ctx *c,
                   const char *rest,
                   const MDB_val *v,
                   void *arg)
{
    struct idlist *l = arg;

    (void)v;
    if (strlen(rest) >= FSM_ID_SIZE) {
        return 0;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->ids, cap * sizeof l->ids[0]);
        if (p == NULL) {
            snprintf(c->f->errmsg, sizeof c->f->errmsg, "out of memory");
            return YH_ENOMEM;
        }
        l->ids = p;
        l->cap = cap;
    }
    snprintf(l->ids[l->n++], FSM_ID_SIZE, "%s", rest);
    return 0;
}

/* Machines bound to @sg that still exist. */
static int live_bindings(struct fsm_ctx *c, const char *sg, struct idlist *l)
{
    char key[KEY_MAX];
    size_t pl = fsm__net_key(key, 'B', sg, "");
    struct idlist all = {NULL, 0, 0};
    int rc;

    rc = rows(c, key, pl, collect, &all);
    for (size_t i = 0; rc == 0 && i < all.n; i++) {
        int exists;
        rc = fsm__net_vm_exists(c, all.ids[i], &exists);
        if (rc == 0 && exists) {
            rc = collect(c, all.ids[i], NULL, l);
        }
    }
    free(all.ids);
    return rc;
}

/* The group's rules changed: every machine bound to it (nic.c shows the
 * rules in their agents' specs). */
static int concern_bound(struct fsm_ctx *c, const char *sg)
{
    struct idlist bound = {NULL, 0, 0};
    int rc = live_bindings(c, sg, &bound);

    for (size_t i = 0; rc == 0 && i < bound.n; i++) {
        rc = fsm__concern(c, bound.ids[i]);
    }
    free(bound.ids);
    return rc;
}

/* Rules of a group for DescribeSecurityGroup. */
struct sg_page
{
    uint64_t offset, limit; /* RuleOffset, RuleLimit */
    uint64_t seen, packed;
    msgpack_packer *pk;
    struct fsm_rec rule;
    int rc; /* first failure of the pack callback */
};

static int rule_pack(struct fsm_ctx *c,
                     const char *rest,
                     const MDB_val *v,
                     void *arg)
{
    struct sg_page *pg = arg;

    (void)rest;
    if (pg->seen++ < pg->offset) {
        return 0;
    }
    if (pg->packed >= pg->limit) {
        return 1; /* enough */
    }
    if (fsm__rec_decode(v->mv_data, v->mv_size, &pg->rule) != 0) {
        snprintf(c->f->errmsg, sizeof c->f->errmsg,
                 "rule record in 'net' is corrupt");
        return YH_ECORRUPT;
    }
    fsm__rec_pack(pg->pk, &pg->rule);
    pg->packed++;
    return 0;
}

static void pack_public(msgpack_packer *pk,
                        const struct fsm_rec *r,
                        uint32_t extra)
{
    uint32_t n = 0;

    for (unsigned i = 0; i < r->n; i++) {
        n += r->f[i].k[0] != '_' &&
             (r->f[i].t == FSM_RF_STR || r->f[i].t == FSM_RF_INT);
    }
    msgpack_pack_map(pk, n + extra);
    for (unsigned i = 0; i < r->n; i++) {
        const struct fsm_rf *f = &r->f[i];
        if (f->k[0] == '_') {
            continue;
        }
        if (f->t == FSM_RF_STR) {
            yh_mp_pack_kv_str(pk, f->k, f->s);
        } else if (f->t == FSM_RF_INT) {
            yh_mp_pack_kv_int(pk, f->k, f->i);
        }
    }
}

static void sg_pack(struct fsm_ctx *c,
                    msgpack_packer *pk,
                    const struct fsm_rec *r,
                    void *arg)
{
    struct sg_page *pg = arg;
    const char *sg = fsm__rec_s(r, "SecurityGroupID");
    char key[KEY_MAX];
    struct yh_buf rb = YH_BUF_INIT;
    struct fsm_out o;
    struct idlist bound = {NULL, 0, 0};
    int rc;

    pack_public(pk, r, 2);
    /* the page of rules, packed aside to count them first */
    fsm__out_init(&o, &rb);
    pg->pk = &o.pk;
    pg->seen = pg->packed = 0;
    rc = rows(c, key, fsm__net_key(key, 'R', sg, ""), rule_pack, pg);
    if (rc == 1) {
        rc = 0;
    }
    if (rc == 0) {
        rc = live_bindings(c, sg, &bound);
    }
    if (rc == 0 && o.oom) {
        rc = YH_ENOMEM;
    }
    if (rc != 0 && pg->rc == 0) {
        pg->rc = rc;
    }
    yh_mp_pack_str(pk, "Rules");
    msgpack_pack_array(pk, rc == 0 ? (uint32_t)pg->packed : 0);
    if (rc == 0 && rb.len > 0) {
        msgpack_pack_str_body(pk, rb.data, rb.len); /* raw append */
    }
    yh_mp_pack_str(pk, "ResourceIDs");
    msgpack_pack_array(pk, rc == 0 ? (uint32_t)bound.n : 0);
    for (size_t i = 0; rc == 0 && i < bound.n; i++) {
        yh_mp_pack_str(pk, bound.ids[i]);
    }
    free(bound.ids);
    yh_buf_release(&rb);
}

int fsm__sg_describe(struct fsm_ctx *c)
{
    struct sg_page pg;
    struct fsm_desc d = {
        FSM_TBL_RES, SG_PREFIX "-", "SecurityGroupIDs", 0, NULL, sg_pack, &pg};
    int64_t v;
    int rc;

    memset(&pg, 0, sizeof pg);
    TRY(fsm__arg_int_or(c, "RuleOffset", 0, INT64_MAX, 0, &v));
    pg.offset = (uint64_t)v;
    TRY(fsm__arg_int_or(c, "RuleLimit", 0, 100, 20, &v));
    pg.limit = (uint64_t)v;
    fsm__rec_init(&pg.rule);
    rc = fsm__describe(c, &d);
    fsm__rec_free(&pg.rule);
    return rc != 0 ? rc : pg.rc;
}

static int sg_id_arg(struct fsm_ctx *c, char id[FSM_ID_SIZE])
{
    return fsm__arg_str(c, "SecurityGroupID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__sg_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return sg_id_arg(c, id);
}

/* Delete every "net" row of @kind under @sg, and with @rules the rule
 * index rows too. */
static int drop_rows(struct fsm_ctx *c, char kind, const char *sg)
{
    char key[KEY_MAX];
    size_t pl = fsm__net_key(key, kind, sg, "");
    struct idlist l = {NULL, 0, 0};
    int rc;

    rc = rows(c, key, pl, collect, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        char k2[KEY_MAX];
        if (kind == 'R') {
            rc = fsm__cdel(c, FSM_TBL_NET, k2,
                           fsm__net_key(k2, 'r', l.ids[i], ""));
            rc = rc == YH_ENOTFOUND ? 0 : rc;
        } else if (kind == 'B') {
            rc = fsm__cdel(c, FSM_TBL_NET, k2,
                           fsm__net_key(k2, 'V', l.ids[i], sg));
            rc = rc == YH_ENOTFOUND ? 0 : rc;
        }
        if (rc == 0) {
            rc = fsm__cdel(c, FSM_TBL_NET, k2,
                           fsm__net_key(k2, kind, sg, l.ids[i]));
        }
    }
    free(l.ids);
    return rc;
}

/* The "D" rows hold rule strings, not IDs: delete them by walking. */
static int drop_dedup(struct fsm_ctx *c, const char *sg)
{
    char key[KEY_MAX];
    size_t pl = fsm__net_key(key, 'D', sg, "");

    for (;;) {
        MDB_cursor *cur;
        MDB_val k = {pl, key}, v;
        char found[KEY_MAX];
        size_t fl = 0;
        int mrc;
        mrc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_NET], &cur);
        if (mrc != 0) {
            return fsm__mdb_err(c->f, mrc, "open cursor on 'net'");
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (mrc == 0 && k.mv_size > pl && k.mv_size <= sizeof found &&
            memcmp(k.mv_data, key, pl) == 0) {
            fl = k.mv_size;
            memcpy(found, k.mv_data, fl);
        }
        mdb_cursor_close(cur);
        if (mrc != 0 && mrc != MDB_NOTFOUND) {
            return fsm__mdb_err(c->f, mrc, "read 'net'");
        }
        if (fl == 0) {
            return 0;
        }
        TRY(fsm__cdel(c, FSM_TBL_NET, found, fl));
    }
}

int fsm__sg_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct idlist bound = {NULL, 0, 0};
    struct fsm_rec r;
    int rc;

    TRY(sg_id_arg(c, id));
    fsm__rec_init(&r);
    rc = fsm__net_load(c, SG_PREFIX, "security group", id, &r);
    if (rc == 0) {
        rc = live_bindings(c, id, &bound);
    }
    if (rc == 0 && bound.n > 0) {
        rc = fsm__reject(c, YH_ESTATE,
                         "security group '%s' is bound to '%s'%s: unbind "
                         "it first",
                         id, bound.ids[0], bound.n > 1 ? " and others" : "");
    }
    if (rc == 0) {
        rc = drop_rows(c, 'B', id); /* dead bindings */
    }
    if (rc == 0) {
        rc = drop_rows(c, 'R', id);
    }
    if (rc == 0) {
        rc = drop_dedup(c, id);
    }
    if (rc == 0) {
        rc = fsm__cdel(c, FSM_TBL_RES, id, strlen(id));
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    free(bound.ids);
    fsm__rec_free(&r);
    return rc;
}

/* ---- rules ---- */

/* The parsed parameters of CreateSecurityGroupRule (on the heap: ~40 KB). */
struct rules_in
{
    char raw[RULES_PER_CALL][FSM_SG_RULE_MAX];
    struct fsm_sg_rule rules[RULES_PER_CALL];
    char ids[RULES_PER_CALL][FSM_ID_SIZE];
    unsigned n;
};

static int rules_args(struct fsm_ctx *c,
                      char id[FSM_ID_SIZE],
                      struct rules_in *in)
{
    char why[YH_ERRMSG_SIZE];

    TRY(sg_id_arg(c, id));
    TRY(fsm__arg_list_long(c, "Rules", RULES_PER_CALL, FSM_SG_RULE_MAX,
                           &in->raw[0][0], &in->n));
    if (in->n == 0) {
        return fsm__reject(c, YH_EMISSING, "missing parameter 'Rules'");
    }
    for (unsigned i = 0; i < in->n; i++) {
        if (fsm__sg_rule_parse(in->raw[i], &in->rules[i], why, sizeof why) !=
            0) {
            return fsm__reject(c, YH_EINVAL, "%s", why);
        }
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(in->rules[j].canon, in->rules[i].canon) == 0) {
                return fsm__reject(c, YH_EINVAL,
                                   "invalid parameter 'Rules': rule '%s' "
                                   "given twice",
                                   in->rules[i].canon);
            }
        }
    }
    return 0;
}

int fsm__sg_rule_create_check(struct fsm_ctx *c)
{
    struct rules_in *in = malloc(sizeof *in);
    char id[FSM_ID_SIZE];
    int rc;

    if (in == NULL) {
        return YH_ENOMEM;
    }
    rc = rules_args(c, id, in);
    free(in);
    return rc;
}

int fsm__sg_rule_create_apply(struct fsm_ctx *c)
{
    char sg[FSM_ID_SIZE], key[KEY_MAX], cidr[FSM_CIDR_STR], ports[16];
    struct rules_in *in = malloc(sizeof *in);
    struct fsm_sg_rule *rules;
    char(*ids)[FSM_ID_SIZE];
    struct fsm_rec r, g;
    unsigned n;
    int64_t count;
    MDB_val v;
    int rc;

    if (in == NULL) {
        return YH_ENOMEM;
    }
    rules = in->rules;
    ids = in->ids;
    fsm__rec_init(&g);
    fsm__rec_init(&r);
    rc = rules_args(c, sg, in);
    if (rc != 0) {
        goto out;
    }
    n = in->n;
    rc = fsm__net_load(c, SG_PREFIX, "security group", sg, &g);
    if (rc != 0) {
        goto out;
    }
    count = fsm__rec_i(&g, "RuleCount");
    if (count + n > RULES_PER_SG) {
        rc = fsm__reject(c, YH_EQUOTA,
                         "quota exceeded: security group '%s' would have "
                         "%" PRId64 " rules, at most %d",
                         sg, count + n, RULES_PER_SG);
        goto out;
    }
    for (unsigned i = 0; i < n; i++) {
        rc = fsm__get(c->f, c->txn, FSM_TBL_NET, key,
                      fsm__net_key(key, 'D', sg, rules[i].canon), &v);
        if (rc == 0) {
            rc = fsm__reject(c, YH_EEXIST, "rule '%s' already exists in '%s'",
                             rules[i].canon, sg);
        }
        if (rc != YH_ENOTFOUND) {
            goto out;
        }
        rc = 0;
    }
    for (unsigned i = 0; i < n && rc == 0; i++) {
        const struct fsm_sg_rule *u = &rules[i];
        rc = fsm__new_id(c, RULE_PREFIX, ids[i]);
        if (rc != 0) {
            break;
        }
        fsm__cidr_format(&u->cidr, cidr);
        ports[0] = '\0';
        if (u->lo != 0) {
            snprintf(ports, sizeof ports, u->lo == u->hi ? "%u" : "%u-%u",
                     u->lo, u->hi);
        }
        fsm__rec_free(&r);
        fsm__rec_set_s(&r, "RuleID", ids[i]);
        fsm__rec_set_s(&r, "SecurityGroupID", sg);
        fsm__rec_set_s(&r, "Rule", u->canon);
        fsm__rec_set_s(&r, "Proto", u->proto);
        fsm__rec_set_s(&r, "Ports", ports);
        fsm__rec_set_s(&r, "CIDR", cidr);
        fsm__rec_set_s(&r, "Action", u->action);
        fsm__rec_set_s(&r, "Priority", u->priority);
        fsm__rec_set_s(&r, "Direction", u->direction);
        fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_NET, key,
                           fsm__net_key(key, 'R', sg, ids[i]), &r);
        if (rc == 0) {
            fsm__rec_free(&r);
            fsm__rec_set_s(&r, "SecurityGroupID", sg);
            rc = fsm__rec_save(c, FSM_TBL_NET, key,
                               fsm__net_key(key, 'r', ids[i], ""), &r);
        }
        if (rc == 0) {
            fsm__rec_free(&r);
            fsm__rec_set_s(&r, "RuleID", ids[i]);
            rc = fsm__rec_save(c, FSM_TBL_NET, key,
                               fsm__net_key(key, 'D', sg, u->canon), &r);
        }
    }
    if (rc == 0) {
        fsm__rec_set_i(&g, "RuleCount", count + n);
        rc = fsm__net_save(c, sg, &g);
    }
    if (rc == 0) {
        rc = concern_bound(c, sg);
    }
    if (rc == 0) {
        msgpack_packer *pk = fsm__field(c, "RuleIDs");
        msgpack_pack_array(pk, n);
        for (unsigned i = 0; i < n; i++) {
            yh_mp_pack_str(pk, ids[i]);
        }
    }
out:
    fsm__rec_free(&g);
    fsm__rec_free(&r);
    free(in);
    return rc;
}

int fsm__sg_rule_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "RuleID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__sg_rule_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], sg[FSM_ID_SIZE], key[KEY_MAX];
    struct fsm_rec r, g;
    int rc;

    TRY(fsm__sg_rule_delete_check(c));
    fsm__arg_str(c, "RuleID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&r);
    fsm__rec_init(&g);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_NET, key,
                       fsm__net_key(key, 'r', id, ""), &r);
    if (rc == YH_ENOTFOUND) {
        rc = fsm__reject(c, YH_ENOTFOUND, "rule '%s' not found", id);
    }
    if (rc == 0) {
        snprintf(sg, sizeof sg, "%s", fsm__rec_s(&r, "SecurityGroupID"));
        rc = fsm__net_load(c, SG_PREFIX, "security group", sg, &g);
        if (rc == YH_ENOTFOUND) {
            /* another tenant's: the rule does not exist for the actor */
            rc = fsm__reject(c, YH_ENOTFOUND, "rule '%s' not found", id);
        }
    }
    if (rc == 0) {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_NET, key,
                           fsm__net_key(key, 'R', sg, id), &r);
    }
    if (rc == 0) {
        rc = fsm__cdel(c, FSM_TBL_NET, key,
                       fsm__net_key(key, 'D', sg, fsm__rec_s(&r, "Rule")));
        rc = rc == YH_ENOTFOUND ? 0 : rc;
    }
    if (rc == 0) {
        rc = fsm__cdel(c, FSM_TBL_NET, key, fsm__net_key(key, 'R', sg, id));
    }
    if (rc == 0) {
        rc = fsm__cdel(c, FSM_TBL_NET, key, fsm__net_key(key, 'r', id, ""));
    }
    if (rc == 0) {
        fsm__rec_set_i(&g, "RuleCount", fsm__rec_i(&g, "RuleCount") - 1);
        rc = fsm__net_save(c, sg, &g);
    }
    if (rc == 0) {
        rc = concern_bound(c, sg);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    fsm__rec_free(&r);
    fsm__rec_free(&g);
    return rc;
}

/* ---- bindings ---- */

int fsm__sg_bind_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], vm[FSM_ID_SIZE];

    TRY(sg_id_arg(c, id));
    return fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, vm, NULL);
}

static int count_row(struct fsm_ctx *c,
                     const char *rest,
                     const MDB_val *v,
                     void *arg)
{
    int exists;

    (void)v;
    TRY(fsm__net_vm_exists(c, rest, &exists));
    *(unsigned *)arg += exists != 0;
    return 0;
}

int fsm__sg_bind_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], vm[FSM_ID_SIZE], key[KEY_MAX];
    struct fsm_rec g, m;
    unsigned n = 0;
    MDB_val v;
    int rc;

    TRY(fsm__sg_bind_check(c));
    sg_id_arg(c, id);
    fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, vm, NULL);
    fsm__rec_init(&g);
    fsm__rec_init(&m);
    rc = fsm__net_load(c, SG_PREFIX, "security group", id, &g);
    if (rc == 0) {
        rc = fsm__vm_load(c, vm, &m);
    }
    if (rc == 0 &&
        strcmp(fsm__rec_s(&g, "TenantID"), fsm__rec_s(&m, "TenantID")) != 0) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'ResourceID': '%s' belongs to "
                         "another tenant than '%s'",
                         vm, id);
    }
    if (rc == 0) {
        rc = fsm__get(c->f, c->txn, FSM_TBL_NET, key,
                      fsm__net_key(key, 'B', id, vm), &v);
        if (rc == 0) {
            rc = fsm__reject(c, YH_EEXIST, "'%s' is already bound to '%s'", id,
                             vm);
        } else if (rc == YH_ENOTFOUND) {
            rc = 0;
        }
    }
    if (rc == 0) {
        rc = rows(c, key, fsm__net_key(key, 'V', vm, ""), count_row, &n);
    }
    if (rc == 0 && n >= SGS_PER_VM) {
        rc = fsm__reject(c, YH_EQUOTA,
                         "quota exceeded: '%s' already has %d security "
                         "groups",
                         vm, SGS_PER_VM);
    }
    if (rc == 0) {
        rc = fsm__net_mark(c, key, fsm__net_key(key, 'B', id, vm));
    }
    if (rc == 0) {
        rc = fsm__net_mark(c, key, fsm__net_key(key, 'V', vm, id));
    }
    if (rc == 0) {
        rc = fsm__concern_rec(c, vm, &m);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    fsm__rec_free(&g);
    fsm__rec_free(&m);
    return rc;
}

int fsm__sg_unbind_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], vm[FSM_ID_SIZE], key[KEY_MAX];
    struct fsm_rec g;
    MDB_val v;
    int rc;

    TRY(fsm__sg_bind_check(c));
    sg_id_arg(c, id);
    fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, vm, NULL);
    fsm__rec_init(&g);
    rc = fsm__net_load(c, SG_PREFIX, "security group", id, &g);
    fsm__rec_free(&g);
    TRY(rc);
    /* the machine itself may be gone: the binding can still be removed */
    rc = fsm__get(c->f, c->txn, FSM_TBL_NET, key,
                  fsm__net_key(key, 'B', id, vm), &v);
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "'%s' is not bound to '%s'", id,
                           vm);
    }
    TRY(rc);
    TRY(fsm__cdel(c, FSM_TBL_NET, key, fsm__net_key(key, 'B', id, vm)));
    rc = fsm__cdel(c, FSM_TBL_NET, key, fsm__net_key(key, 'V', vm, id));
    TRY(rc == YH_ENOTFOUND ? 0 : rc);
    TRY(fsm__concern(c, vm));
    snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    return 0;
}
