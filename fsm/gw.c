/* What the gateway files (natgw.c, lb.c, cert.c, vpn.c) and the NIC
 * attachments (nic.c) share: index rows in "net", the list of machines a
 * change concerns, and the life cycle of a gateway resource.
 *
 * Index rows in "net" (kind \0 a \0 b -> {}), besides those of ipam.c,
 * tbl_net.c, sg.c and eip.c:
 *   "N" \0 VMID \0 NICID      NICs attached to a machine (nic.c)
 *   "W" \0 VPCID \0 ID        gateways in a VPC (DeleteVPC waits for them)
 *   "w" \0 SubnetID \0 ID     gateways and VPN connections using a subnet
 *                             (DeleteSubnet waits for them)
 *   "C" \0 ParentID \0 ID     children: a NAT gateway's rules, a load
 *                             balancer's vservers, a vserver's backends,
 *                             a VPN gateway's (and a remote gateway's)
 *                             connections, a certificate's vservers
 *   "Q" \0 VMID \0 RSID       backends on a machine (purged with it)
 * A gateway's EIP is bound the way a machine's is: BindResourceID in the
 * EIP record and "E" \0 GatewayID \0 EIPID (eip.c).
 *
 * Gateways (NAT gateways "natgw-", load balancers "lb-", VPN gateways
 * "vpngw-") are billed resources like disks and EIPs: one unit of the
 * price spec of their type per period ("NATGW", "LB", "VPNGateway"),
 * counted against the quota of the same name. Deleting one deletes it at
 * once (as ReleaseEIP); the billing life cycle may suspend, recycle and
 * purge it, and the purge releases what it holds (fsm__gw_release).
 *
 * Each gateway is placed on a host whose agent realises it (gwhost.c):
 * every change of what its spec holds goes through fsm__concern. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define KEY_MAX (2 * FSM_ID_SIZE + 4)

/* ---- index rows ---- */

int fsm__net_walk(struct fsm *f,
                  MDB_txn *txn,
                  char kind,
                  const char *a,
                  fsm_net_row_fn *fn,
                  void *arg)
{
    char key[KEY_MAX];
    size_t pl;
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc, rc = 0;

    if (strlen(a) >= FSM_ID_SIZE) {
        return 0;
    }
    pl = fsm__net_key(key, kind, a, "");
    k.mv_size = pl;
    k.mv_data = key;
    mrc = mdb_cursor_open(txn, f->dbis[FSM_TBL_NET], &cur);
    if (mrc != 0) {
        return fsm__mdb_err(f, mrc, "open cursor on 'net'");
    }
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char rest[FSM_ID_SIZE];
        if (k.mv_size <= pl || memcmp(k.mv_data, key, pl) != 0) {
            break;
        }
        if (k.mv_size - pl >= sizeof rest) {
            continue;
        }
        memcpy(rest, (const char *)k.mv_data + pl, k.mv_size - pl);
        rest[k.mv_size - pl] = '\0';
        rc = fn(arg, rest);
        if (rc != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = fsm__mdb_err(f, mrc, "read 'net'");
    }
    return rc;
}

int fsm__ids_add(void *arg, const char *id)
{
    struct fsm_ids *l = arg;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->v, cap * sizeof l->v[0]);
        if (p == NULL) {
            return YH_ENOMEM;
        }
        l->v = p;
        l->cap = cap;
    }
    snprintf(l->v[l->n++], FSM_ID_SIZE, "%s", id);
    return 0;
}

void fsm__ids_free(struct fsm_ids *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

int fsm__net_ids(struct fsm_ctx *c,
                 char kind,
                 const char *a,
                 struct fsm_ids *out)
{
    return fsm__net_walk(c->f, c->txn, kind, a, fsm__ids_add, out);
}

int fsm__net_link(struct fsm_ctx *c, char kind, const char *a, const char *b)
{
    char key[KEY_MAX];

    return fsm__net_mark(c, key, fsm__net_key(key, kind, a, b));
}

int fsm__net_unlink(struct fsm_ctx *c, char kind, const char *a, const char *b)
{
    char key[KEY_MAX];
    int rc = fsm__cdel(c, FSM_TBL_NET, key, fsm__net_key(key, kind, a, b));

    return rc == YH_ENOTFOUND ? 0 : rc;
}

/* ---- machines a change concerns ---- */

int fsm__concern(struct fsm_ctx *c, const char *vm)
{
    struct fsm_rec r;
    int rc;

    if (strncmp(vm, "natgw-", 6) == 0 || strncmp(vm, "lb-", 3) == 0 ||
        strncmp(vm, "vpngw-", 6) == 0) {
        return fsm__gw_touch(c, vm); /* a gateway's spec (gwhost.c) */
    }
    if (strncmp(vm, "uhost-", 6) != 0) {
        return 0;
    }
    fsm__rec_init(&r);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, vm, strlen(vm), &r);
    if (rc == 0) {
        rc = fsm__concern_rec(c, vm, &r);
    }
    fsm__rec_free(&r);
    return rc == YH_ENOTFOUND ? 0 : rc;
}

int fsm__concern_rec(struct fsm_ctx *c, const char *vm, struct fsm_rec *r)
{
    fsm__rec_set_i(r, "NetGeneration", (int64_t)c->index);
    fsm__rec_set_i(r, "Revision", (int64_t)c->index);
    TRY(fsm__rec_save(c, FSM_TBL_RES, vm, strlen(vm), r));
    yh_mp_pack_str(&c->concerns.pk, vm);
    c->n_concerns++;
    return c->concerns.oom ? YH_ENOMEM : 0;
}

/* ---- common parameters and checks ---- */

int fsm__if_revision(struct fsm_ctx *c, const struct fsm_rec *r)
{
    int64_t want;
    int given;

    TRY(fsm__arg_int(c, "IfRevision", 0, 0, INT64_MAX, &want, &given));
    if (given && want != fsm__rec_i(r, "Revision")) {
        return fsm__reject(c, YH_ECONFLICT, "revision mismatch: have %" PRId64,
                           fsm__rec_i(r, "Revision"));
    }
    return 0;
}

int fsm__gw_load(struct fsm_ctx *c,
                 const char *prefix,
                 const char *what,
                 const char *id,
                 struct fsm_rec *r)
{
    TRY(fsm__net_load(c, prefix, what, id, r));
    if (strcmp(fsm__rec_s(r, "State"), "Recycled") == 0) {
        return fsm__reject(c, YH_ESTATE, "%s '%s' is in the recycle bin", what,
                           id);
    }
    return 0;
}

int fsm__gw_live(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    (void)c;
    (void)arg;
    return strcmp(fsm__rec_s(r, "State"), "Recycled") != 0;
}

int fsm__name_arg(struct fsm_ctx *c, char name[FSM_NAME_SIZE])
{
    return fsm__arg_str(c, "Name", 0, FSM_NAME_SIZE - 1, name, NULL);
}

int fsm__word_arg(struct fsm_ctx *c,
                  const char *key,
                  const char *const *words,
                  const char *def,
                  char *out,
                  size_t size)
{
    char v[32];
    int given;

    TRY(fsm__arg_str(c, key, def == NULL, sizeof v - 1, v, &given));
    if (!given) {
        snprintf(out, size, "%s", def);
        return 0;
    }
    for (const char *const *w = words; *w != NULL; w++) {
        if (strcasecmp(v, *w) == 0) {
            snprintf(out, size, "%s", *w);
            return 0;
        }
    }
    {
        char list[160];
        size_t off = 0;
        list[0] = '\0';
        for (const char *const *w = words; *w != NULL && off < sizeof list;
             w++) {
            off += (size_t)snprintf(list + off, sizeof list - off, "%s%s",
                                    w == words ? "" : ", ", *w);
        }
        return fsm__reject(c, YH_EINVAL, "invalid parameter '%s': %s", key,
                           list);
    }
}

int fsm__port_range(const char *s, unsigned *lo, unsigned *hi)
{
    const char *dash = strchr(s, '-');
    unsigned v[2] = {0, 0};
    const char *p = s;

    for (int i = 0; i < (dash != NULL ? 2 : 1); i++) {
        const char *e = i == 0 && dash != NULL ? dash : s + strlen(s);
        size_t n = (size_t)(e - p);
        if (n == 0 || n > 5 || p[0] == '0') {
            return YH_EINVAL;
        }
        for (const char *q = p; q < e; q++) {
            if (*q < '0' || *q > '9') {
                return YH_EINVAL;
            }
            v[i] = v[i] * 10 + (unsigned)(*q - '0');
        }
        if (v[i] < 1 || v[i] > 65535) {
            return YH_EINVAL;
        }
        p = e + 1;
    }
    *lo = v[0];
    *hi = dash != NULL ? v[1] : v[0];
    return *lo <= *hi ? 0 : YH_EINVAL;
}

int fsm__vpc_of(struct fsm_ctx *c,
                const char *vpc,
                const char *tenant,
                struct fsm_rec *r)
{
    TRY(fsm__net_load(c, "uvnet", "VPC", vpc, r));
    if (tenant != NULL && strcmp(fsm__rec_s(r, "TenantID"), tenant) != 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'VPCID': '%s' belongs to "
                           "another tenant",
                           vpc);
    }
    return 0;
}

int fsm__subnet_in(struct fsm_ctx *c,
                   const char *key,
                   const char *subnet,
                   const char *vpc,
                   struct fsm_rec *r)
{
    TRY(fsm__net_load(c, "subnet", "subnet", subnet, r));
    if (strcmp(fsm__rec_s(r, "VPCID"), vpc) != 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': subnet '%s' is not in "
                           "VPC '%s'",
                           key, subnet, vpc);
    }
    return 0;
}

int fsm__net_users(struct fsm_ctx *c,
                   char kind,
                   const char *id,
                   const char *what)
{
    struct fsm_ids l = {NULL, 0, 0};
    int rc = fsm__net_ids(c, kind, id, &l);

    if (rc == 0 && l.n > 0) {
        rc = fsm__reject(c, YH_ESTATE,
                         "%s '%s' is used by '%s'%s: delete %s "
                         "first",
                         what, id, l.v[0], l.n > 1 ? " and others" : "",
                         l.n > 1 ? "them" : "it");
    }
    fsm__ids_free(&l);
    return rc;
}

/* ---- gateway resources: create, usage, delete, purge ---- */

static const struct fsm_gw_type gw_types[] = {
    {"natgw", "NATGW", "NATGWID", "NAT gateway"},
    {"lb", "LB", "LBID", "load balancer"},
    {"vpngw", "VPNGateway", "VPNGatewayID", "VPN gateway"},
};
#define N_GW_TYPES (sizeof gw_types / sizeof gw_types[0])

const struct fsm_gw_type *fsm__gw_type(const char *resource_type)
{
    for (size_t i = 0; i < N_GW_TYPES; i++) {
        if (strcmp(gw_types[i].type, resource_type) == 0) {
            return &gw_types[i];
        }
    }
    return NULL;
}

int fsm__gw_prepare(struct fsm_ctx *c,
                    const struct fsm_gw_type *t,
                    struct fsm_gw_new *g)
{
    const char *types[1] = {t->type};
    int64_t one[1] = {1};
    struct fsm_rec probe;
    int rc;

    TRY(fsm__owner_arg(c, g->tenant));
    TRY(fsm__charge_args(c, g->ct, &g->quantity));
    TRY(fsm__quota_check(c, g->tenant, 1, types, one));
    TRY(fsm__price_of(c, t->type, g->ct, 1, &g->price));
    fsm__rec_init(&probe);
    fsm__rec_set_s(&probe, "ResourceType", t->type);
    rc =
        fsm__bill_create(c, g->tenant, &probe, g->ct, g->quantity, g->price, 1);
    fsm__rec_free(&probe);
    TRY(rc);
    return fsm__gw_place_get(c, g->zone, g->host); /* gwhost.c */
}

int fsm__gw_begin(struct fsm_ctx *c,
                  const struct fsm_gw_type *t,
                  const struct fsm_gw_new *g,
                  const char *vpc,
                  char id[FSM_ID_SIZE],
                  struct fsm_rec *r)
{
    const char *types[1] = {t->type};
    int64_t one[1] = {1};

    TRY(fsm__new_id(c, t->prefix, id));
    fsm__rec_set_s(r, t->id_field, id);
    fsm__rec_set_s(r, "_IDField", t->id_field);
    fsm__rec_set_s(r, "ResourceType", t->type);
    fsm__rec_set_s(r, "TenantID", g->tenant);
    fsm__rec_set_s(r, "VPCID", vpc);
    TRY(fsm__bill_create(c, g->tenant, r, g->ct, g->quantity, g->price, 0));
    TRY(fsm__usage_add(c, g->tenant, 1, types, one));
    TRY(fsm__net_link(c, 'W', vpc, id));
    return fsm__gw_host_begin(c, id, r, g->zone, g->host);
}

unsigned fsm__gw_usage(const struct fsm_rec *r,
                       const char **types,
                       int64_t *delta)
{
    const struct fsm_gw_type *t = fsm__gw_type(fsm__rec_s(r, "ResourceType"));

    if (t == NULL) {
        return 0;
    }
    types[0] = t->type;
    delta[0] = 1;
    return 1;
}

/* Unbind every EIP bound to @id (the EIPs stay allocated). */
static int eips_release(struct fsm_ctx *c, const char *id)
{
    struct fsm_ids l = {NULL, 0, 0};
    int rc = fsm__net_ids(c, 'E', id, &l);

    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        rc = fsm__eip_unbind_from(c, l.v[i], id);
    }
    fsm__ids_free(&l);
    return rc;
}

int fsm__gw_release(struct fsm_ctx *c, const struct fsm_rec *r)
{
    const struct fsm_gw_type *t = fsm__gw_type(fsm__rec_s(r, "ResourceType"));
    const char *id;

    if (t == NULL) {
        return 0;
    }
    id = fsm__rec_s(r, t->id_field);
    TRY(eips_release(c, id));
    TRY(fsm__net_unlink(c, 'W', fsm__rec_s(r, "VPCID"), id));
    TRY(fsm__gw_host_release(c, id, r)); /* its host is told (gwhost.c) */
    if (strcmp(t->type, "NATGW") == 0) {
        return fsm__natgw_release(c, r);
    }
    if (strcmp(t->type, "LB") == 0) {
        return fsm__lb_release(c, r);
    }
    return fsm__vpngw_release(c, r);
}

int fsm__gw_delete(struct fsm_ctx *c, const char *id, const struct fsm_rec *r)
{
    const char *types[1];
    int64_t delta[1];
    unsigned n = fsm__gw_usage(r, types, delta);

    delta[0] = -delta[0];
    TRY(fsm__gw_release(c, r));
    TRY(fsm__usage_add(c, fsm__rec_s(r, "TenantID"), n, types, delta));
    TRY(fsm__cdel(c, FSM_TBL_RES, id, strlen(id)));
    snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    return 0;
}

int fsm__gw_eip_pack(struct fsm_ctx *c, msgpack_packer *pk, const char *id)
{
    struct fsm_ids l = {NULL, 0, 0};
    struct fsm_rec e;
    char eip[FSM_ID_SIZE] = "", ip[FSM_IP_STR] = "";
    int rc = fsm__net_ids(c, 'E', id, &l);

    fsm__rec_init(&e);
    for (size_t i = 0; rc == 0 && i < l.n && eip[0] == '\0'; i++) {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, l.v[i], strlen(l.v[i]),
                           &e);
        if (rc == YH_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc == 0 && strcmp(fsm__rec_s(&e, "BindResourceID"), id) == 0) {
            snprintf(eip, sizeof eip, "%s", l.v[i]);
            snprintf(ip, sizeof ip, "%s", fsm__rec_s(&e, "IP"));
        }
    }
    fsm__rec_free(&e);
    fsm__ids_free(&l);
    yh_mp_pack_kv_str(pk, "EIPID", eip);
    yh_mp_pack_kv_str(pk, "EIPAddr", ip);
    return rc;
}

unsigned fsm__rec_list(const struct fsm_rec *r,
                       const char *k,
                       char (*out)[FSM_ID_SIZE],
                       unsigned max)
{
    unsigned n = 0;

    for (unsigned i = 0; i < r->n; i++) {
        const char *p;
        if (strcmp(r->f[i].k, k) != 0 || r->f[i].t != FSM_RF_LIST) {
            continue;
        }
        p = r->f[i].s;
        while (p != NULL && *p != '\0' && n < max) {
            const char *e = strchr(p, '\n');
            size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
            snprintf(out[n++], FSM_ID_SIZE, "%.*s", (int)l, p);
            p = e != NULL ? e + 1 : NULL;
        }
        break;
    }
    return n;
}

int fsm__gw_eip(struct fsm_ctx *c, const char *id, char eip[FSM_ID_SIZE])
{
    struct fsm_ids l = {NULL, 0, 0};
    struct fsm_rec e;
    int rc = fsm__net_ids(c, 'E', id, &l);

    eip[0] = '\0';
    fsm__rec_init(&e);
    for (size_t i = 0; rc == 0 && i < l.n && eip[0] == '\0'; i++) {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, l.v[i], strlen(l.v[i]),
                           &e);
        if (rc == 0 && strcmp(fsm__rec_s(&e, "BindResourceID"), id) == 0) {
            snprintf(eip, FSM_ID_SIZE, "%s", l.v[i]);
        }
        rc = rc == YH_ENOTFOUND ? 0 : rc;
    }
    fsm__rec_free(&e);
    fsm__ids_free(&l);
    return rc;
}

int fsm__eip_target(struct fsm_ctx *c,
                    const char *target,
                    char type[16],
                    char tenant[FSM_ID_SIZE])
{
    struct fsm_rec r;
    char eip[FSM_ID_SIZE];
    int rc;

    fsm__rec_init(&r);
    if (strncmp(target, "natgw-", 6) == 0) {
        snprintf(type, 16, "NATGW");
        rc = fsm__gw_load(c, "natgw", "NAT gateway", target, &r);
    } else if (strncmp(target, "lb-", 3) == 0) {
        snprintf(type, 16, "LB");
        rc = fsm__gw_load(c, "lb", "load balancer", target, &r);
        if (rc == 0 && strcmp(fsm__rec_s(&r, "LBType"), "External") != 0) {
            rc = fsm__reject(c, YH_EINVAL,
                             "invalid parameter 'ResourceID': load balancer "
                             "'%s' is internal (no EIP)",
                             target);
        }
    } else if (strncmp(target, "vpngw-", 6) == 0) {
        rc = fsm__gw_load(c, "vpngw", "VPN gateway", target, &r);
        if (rc == 0) {
            rc = fsm__reject(c, YH_EINVAL,
                             "invalid parameter 'ResourceID': a VPN "
                             "gateway's EIP is given at CreateVPNGateway");
        }
    } else {
        snprintf(type, 16, "VM");
        rc = fsm__vm_load(c, target, &r); /* 150 for anything else */
    }
    if (rc == 0 && strcmp(type, "VM") != 0) {
        /* a gateway has one EIP */
        rc = fsm__gw_eip(c, target, eip);
        if (rc == 0 && eip[0] != '\0') {
            rc = fsm__reject(c, YH_ESTATE,
                             "'%s' already has EIP '%s': unbind it first",
                             target, eip);
        }
    }
    if (rc == 0) {
        snprintf(tenant, FSM_ID_SIZE, "%s", fsm__rec_s(&r, "TenantID"));
    }
    fsm__rec_free(&r);
    return rc;
}

int fsm__count_add(struct fsm_ctx *c,
                   const char *id,
                   const char *field,
                   int64_t delta)
{
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), &r);
    if (rc == 0) {
        int64_t v = fsm__rec_i(&r, field) + delta;
        fsm__rec_set_i(&r, field, v < 0 ? 0 : v);
        fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), &r);
    }
    fsm__rec_free(&r);
    return rc == YH_ENOTFOUND ? 0 : rc;
}

int fsm__res_drop(struct fsm_ctx *c, const char *id)
{
    int rc = fsm__cdel(c, FSM_TBL_RES, id, strlen(id));

    return rc == YH_ENOTFOUND ? 0 : rc;
}

int fsm__children_pack(struct fsm_ctx *c,
                       msgpack_packer *pk,
                       const char *key,
                       const char *parent,
                       uint64_t offset,
                       uint64_t limit,
                       fsm_child_pack_fn *fn,
                       void *arg)
{
    struct fsm_ids l = {NULL, 0, 0};
    struct yh_buf b = YH_BUF_INIT;
    struct fsm_out o;
    struct fsm_rec r;
    uint32_t n = 0;
    int rc;

    fsm__out_init(&o, &b);
    fsm__rec_init(&r);
    rc = fsm__net_ids(c, 'C', parent, &l);
    for (size_t i = offset; rc == 0 && i < l.n && n < limit; i++) {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, l.v[i], strlen(l.v[i]),
                           &r);
        if (rc == YH_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc == 0 && fn != NULL) {
            rc = fn(c, &o.pk, &r, arg);
        } else if (rc == 0) {
            fsm__rec_pack(&o.pk, &r);
        }
        n++;
    }
    if (rc == 0 && o.oom) {
        rc = YH_ENOMEM;
    }
    yh_mp_pack_str(pk, key);
    msgpack_pack_array(pk, rc == 0 ? n : 0);
    if (rc == 0 && b.len > 0) {
        msgpack_pack_str_body(pk, b.data, b.len); /* raw append */
    }
    yh_buf_release(&b);
    fsm__rec_free(&r);
    fsm__ids_free(&l);
    return rc;
}

int fsm__net_delete_unused(struct fsm_ctx *c,
                           const char *param,
                           const char *prefix,
                           const char *what)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__arg_str(c, param, 1, FSM_ID_SIZE - 1, id, NULL));
    fsm__rec_init(&r);
    rc = fsm__net_load(c, prefix, what, id, &r);
    if (rc == 0) {
        rc = fsm__if_revision(c, &r);
    }
    if (rc == 0) {
        rc = fsm__net_users(c, 'C', id, what);
    }
    if (rc == 0) {
        rc = fsm__res_drop(c, id);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    fsm__rec_free(&r);
    return rc;
}
