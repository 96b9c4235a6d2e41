/* EIP pools ("eippool-", administrator) and elastic IPs ("eip-").
 *
 * A pool is a public network of one operator (OperatorName: "Bgp",
 * "Telecom", ...), IPv4 or IPv6, never overlapping another pool; it is an
 * IPAM address space (ipam.c: network address, the operator's gateway and
 * the IPv4 broadcast address are never handed out). AllocateEIP takes the
 * lowest free address of the first pool (in ID order) of the operator and
 * family that has one.
 *
 * An EIP is billed like the other resources (fsm__bill_create): per period
 * price = price of spec "EIP" (per address) + Bandwidth x price of spec
 * "Bandwidth" (per Mbps), the GetEIPPrice formula, and counted against the
 * "EIP" and "Bandwidth" quotas. It is bound to machines of its tenant
 * (several EIPs per machine; "E" \0 VMID \0 EIPID rows in "net" list a
 * machine's EIPs) or to one of its gateways (one EIP each: a NAT gateway,
 * an external load balancer, a VPN gateway at its creation; gw.c), and
 * records the kind of what it is bound to in BindResourceType. ReleaseEIP
 * gives the address back to its pool at once; a binding to a resource that
 * has been purged since is dead and does not block it. A bound machine's
 * agent spec lists its EIPs (nic.c), a gateway's spec its EIP (gwhost.c):
 * binding, unbinding, a bandwidth change and the purge move the machine's
 * NetGeneration or the gateway's Generation (gw.c fsm__concern). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define POOL_PREFIX "eippool"
#define EIP_PREFIX "eip"
#define NAME_MAX_LEN 64
#define OPERATOR_MAX 32
#define BW_MAX 100000 /* Mbps, as GetEIPPrice */
#define KEY_MAX (2 * FSM_ID_SIZE + 4)

static int64_t now_s(const struct fsm_ctx *c)
{
    return (int64_t)(c->time_ns / 1000000000u);
}

static int operator_arg(struct fsm_ctx *c, char out[OPERATOR_MAX + 1])
{
    TRY(fsm__arg_str(c, "OperatorName", 1, OPERATOR_MAX, out, NULL));
    for (const char *p = out; *p != '\0'; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')) {
            return fsm__reject(c, YH_EINVAL,
                               "invalid parameter 'OperatorName': letters, "
                               "digits, '-' and '_'");
        }
    }
    return 0;
}

/* ---- pools ---- */

struct pool_args
{
    char name[NAME_MAX_LEN + 1];
    char op[OPERATOR_MAX + 1];
    struct fsm_cidr net;
};

static int pool_args(struct fsm_ctx *c, struct pool_args *a)
{
    char s[FSM_CIDR_STR], why[160];

    TRY(fsm__arg_str(c, "Name", 1, NAME_MAX_LEN, a->name, NULL));
    TRY(operator_arg(c, a->op));
    TRY(fsm__arg_str(c, "Network", 1, sizeof s - 1, s, NULL));
    if (fsm__cidr_parse(s, &a->net, why, sizeof why) != 0) {
        return fsm__reject(c, YH_EINVAL, "invalid parameter 'Network': %s",
                           why);
    }
    if ((a->net.fam == 4 && (a->net.plen < 8 || a->net.plen > 30)) ||
        (a->net.fam == 6 && (a->net.plen < 48 || a->net.plen > 126))) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'Network': prefix length must "
                           "be 8..30 (IPv4) or 48..126 (IPv6)");
    }
    return 0;
}

int fsm__eip_pool_create_check(struct fsm_ctx *c)
{
    struct pool_args a;

    return pool_args(c, &a);
}

/* Each pool record (ID order) to @fn until it returns non-zero. */
typedef int pool_fn(struct fsm_ctx *c, const struct fsm_rec *p, void *arg);

static int pools(struct fsm_ctx *c, pool_fn *fn, void *arg)
{
    static const char prefix[] = POOL_PREFIX "-";
    size_t pl = sizeof prefix - 1;
    MDB_cursor *cur;
    MDB_val k = {pl, (void *)prefix}, v;
    struct fsm_rec r;
    int mrc, rc = 0;

    mrc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_INFRA], &cur);
    if (mrc != 0) {
        return fsm__mdb_err(c->f, mrc, "open cursor on 'infra'");
    }
    fsm__rec_init(&r);
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < pl || memcmp(k.mv_data, prefix, pl) != 0) {
            break;
        }
        rc = fsm__rec_decode(v.mv_data, v.mv_size, &r);
        if (rc != 0) {
            snprintf(c->f->errmsg, sizeof c->f->errmsg,
                     "pool record in 'infra' is corrupt");
            break;
        }
        rc = fn(c, &r, arg);
        if (rc != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    fsm__rec_free(&r);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = fsm__mdb_err(c->f, mrc, "read 'infra'");
    }
    return rc;
}

static int pool_net(struct fsm_ctx *c,
                    const struct fsm_rec *p,
                    struct fsm_cidr *net)
{
    char why[160];

    if (fsm__cidr_parse(fsm__rec_s(p, "Network"), net, why, sizeof why) != 0) {
        snprintf(c->f->errmsg, sizeof c->f->errmsg, "pool '%s' is corrupt: %s",
                 fsm__rec_s(p, "EIPPoolID"), why);
        return YH_ECORRUPT;
    }
    return 0;
}

static int overlap_fn(struct fsm_ctx *c, const struct fsm_rec *p, void *arg)
{
    const struct fsm_cidr *mine = arg;
    struct fsm_cidr o;

    TRY(pool_net(c, p, &o));
    if (fsm__cidr_overlap(&o, mine)) {
        return fsm__reject(c, YH_EEXIST, "Network overlaps EIP pool '%s' (%s)",
                           fsm__rec_s(p, "EIPPoolID"),
                           fsm__rec_s(p, "Network"));
    }
    return 0;
}

int fsm__eip_pool_create_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], s[FSM_CIDR_STR];
    struct pool_args a;
    struct fsm_rec r;
    int rc;

    TRY(pool_args(c, &a));
    TRY(pools(c, overlap_fn, &a.net));
    TRY(fsm__new_id(c, POOL_PREFIX, id));
    fsm__cidr_format(&a.net, s);
    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "EIPPoolID", id);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_s(&r, "OperatorName", a.op);
    fsm__rec_set_s(&r, "Network", s);
    fsm__rec_set_s(&r, "IPVersion", a.net.fam == 4 ? "IPv4" : "IPv6");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
    rc = fsm__ipam_init(c, id, &a.net);
    if (rc == 0) {
        rc = fsm__rec_save(c, FSM_TBL_INFRA, id, strlen(id), &r);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, "EIPPoolID"), id);
    }
    fsm__rec_free(&r);
    return rc;
}

int fsm__eip_pool_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {
        FSM_TBL_INFRA, POOL_PREFIX "-", "EIPPoolIDs", 1, NULL, NULL, NULL};

    return fsm__describe(c, &d);
}

/* ---- AllocateEIP ---- */

struct eip_args
{
    char name[NAME_MAX_LEN + 1];
    char op[OPERATOR_MAX + 1];
    char ct[16];
    int64_t quantity, bw;
    int fam;
};

static int eip_args(struct fsm_ctx *c, struct eip_args *a)
{
    char ver[8];

    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, a->name, NULL));
    TRY(operator_arg(c, a->op));
    TRY(fsm__arg_int(c, "Bandwidth", 1, 1, BW_MAX, &a->bw, NULL));
    TRY(fsm__arg_str_or(c, "IPVersion", sizeof ver - 1, "IPv4", ver));
    if (strcmp(ver, "IPv4") != 0 && strcmp(ver, "IPv6") != 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'IPVersion': IPv4 or IPv6");
    }
    a->fam = ver[3] == '4' ? 4 : 6;
    return fsm__charge_args(c, a->ct, &a->quantity);
}

int fsm__eip_alloc_check(struct fsm_ctx *c)
{
    struct eip_args a;
    char tenant[FSM_ID_SIZE];

    TRY(eip_args(c, &a));
    return fsm__owner_arg(c, tenant);
}

static int eip_price(struct fsm_ctx *c,
                     const char *ct,
                     int64_t bw,
                     int64_t *out)
{
    int64_t v, w;

    TRY(fsm__price_of(c, "EIP", ct, 1, &v));
    TRY(fsm__price_of(c, "Bandwidth", ct, bw, &w));
    if (fsm__add(v, w, out) != 0) {
        return fsm__reject(c, YH_EINVAL, "price overflows");
    }
    return 0;
}

/* The first pool of the operator and family with a free address. */
struct pick
{
    const struct eip_args *a;
    char pool[FSM_ID_SIZE];
    fsm_u128 addr;
    unsigned matching;
};

static int pick_fn(struct fsm_ctx *c, const struct fsm_rec *p, void *arg)
{
    struct pick *k = arg;
    struct fsm_cidr net;
    int rc;

    if (strcmp(fsm__rec_s(p, "OperatorName"), k->a->op) != 0) {
        return 0;
    }
    TRY(pool_net(c, p, &net));
    if (net.fam != k->a->fam) {
        return 0;
    }
    k->matching++;
    rc = fsm__ipam_pick(c, fsm__rec_s(p, "EIPPoolID"), &net, NULL, &k->addr);
    if (rc == YH_ECAPACITY) {
        /* full: try the next pool (the rejection is not the answer yet) */
        c->code = 0;
        c->msg[0] = '\0';
        return 0;
    }
    TRY(rc);
    snprintf(k->pool, sizeof k->pool, "%s", fsm__rec_s(p, "EIPPoolID"));
    return 1;
}

static unsigned eip_usage(const char *bw_type,
                          int64_t bw,
                          const char **types,
                          int64_t *delta)
{
    types[0] = "EIP";
    delta[0] = 1;
    types[1] = bw_type;
    delta[1] = bw;
    return 2;
}

unsigned fsm__eip_usage(const struct fsm_rec *r,
                        const char **types,
                        int64_t *delta)
{
    if (strcmp(fsm__rec_s(r, "ResourceType"), "EIP") != 0) {
        return 0;
    }
    return eip_usage("Bandwidth", fsm__rec_i(r, "Bandwidth"), types, delta);
}

int fsm__eip_alloc_apply(struct fsm_ctx *c)
{
    char tenant[FSM_ID_SIZE], id[FSM_ID_SIZE], ip[FSM_IP_STR];
    const char *types[2];
    int64_t delta[2], price;
    struct eip_args a;
    struct pick k;
    struct fsm_rec r;
    unsigned n;
    int rc;

    TRY(eip_args(c, &a));
    TRY(fsm__owner_arg(c, tenant));
    n = eip_usage("Bandwidth", a.bw, types, delta);
    TRY(fsm__quota_check(c, tenant, n, types, delta));
    TRY(eip_price(c, a.ct, a.bw, &price));
    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "ResourceType", "EIP");
    rc = fsm__bill_create(c, tenant, &r, a.ct, a.quantity, price, 1);
    memset(&k, 0, sizeof k);
    k.a = &a;
    if (rc == 0) {
        rc = pools(c, pick_fn, &k);
        rc = rc == 1 ? 0 : rc;
    }
    if (rc == 0 && k.pool[0] == '\0') {
        rc = k.matching == 0
                 ? fsm__reject(c, YH_EINVAL,
                               "invalid parameter 'OperatorName': no IPv%d "
                               "EIP pool of operator '%s'",
                               a.fam, a.op)
                 : fsm__reject(c, YH_ECAPACITY,
                               "no free IPv%d address in the EIP pools of "
                               "operator '%s'",
                               a.fam, a.op);
    }
    if (rc == 0) {
        rc = fsm__new_id(c, EIP_PREFIX, id);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__ip_format(a.fam, k.addr, ip);
    fsm__rec_free(&r);
    fsm__rec_set_s(&r, "EIPID", id);
    fsm__rec_set_s(&r, "_IDField", "EIPID");
    fsm__rec_set_s(&r, "ResourceType", "EIP");
    fsm__rec_set_s(&r, "TenantID", tenant);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_s(&r, "IP", ip);
    fsm__rec_set_s(&r, "IPVersion", a.fam == 4 ? "IPv4" : "IPv6");
    fsm__rec_set_s(&r, "EIPPoolID", k.pool);
    fsm__rec_set_s(&r, "OperatorName", a.op);
    fsm__rec_set_i(&r, "Bandwidth", a.bw);
    fsm__rec_set_s(&r, "BindResourceID", "");
    fsm__rec_set_s(&r, "State", "Available");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    rc = fsm__ipam_take(c, k.pool, a.fam, k.addr, id);
    if (rc == 0) {
        rc = fsm__bill_create(c, tenant, &r, a.ct, a.quantity, price, 0);
    }
    if (rc == 0) {
        rc = fsm__usage_add(c, tenant, n, types, delta);
    }
    if (rc == 0) {
        rc = fsm__net_save(c, id, &r);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "EIPID"), id);
        yh_mp_pack_str(fsm__field(c, "IP"), ip);
    }
out:
    fsm__rec_free(&r);
    return rc;
}

int fsm__eip_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {FSM_TBL_RES,    EIP_PREFIX "-", "EIPIDs", 0,
                         fsm__keep_live, NULL,           NULL};

    return fsm__describe(c, &d);
}

/* A live EIP of the actor's tenant named by parameter EIPID. */
static int eip_get(struct fsm_ctx *c, char id[FSM_ID_SIZE], struct fsm_rec *r)
{
    TRY(fsm__arg_str(c, "EIPID", 1, FSM_ID_SIZE - 1, id, NULL));
    TRY(fsm__net_load(c, EIP_PREFIX, "EIP", id, r));
    if (strcmp(fsm__rec_s(r, "State"), "Recycled") == 0) {
        return fsm__reject(c, YH_ESTATE, "EIP '%s' is in the recycle bin", id);
    }
    return 0;
}

/* The machine @r is bound to, if it still exists ("" otherwise). */
static int bound_vm(struct fsm_ctx *c,
                    const struct fsm_rec *r,
                    char vm[FSM_ID_SIZE])
{
    int exists = 0;

    snprintf(vm, FSM_ID_SIZE, "%s", fsm__rec_s(r, "BindResourceID"));
    if (vm[0] != '\0') {
        TRY(fsm__net_vm_exists(c, vm, &exists));
    }
    if (!exists) {
        vm[0] = '\0';
    }
    return 0;
}

/* ---- BindEIP / UnBindEIP ---- */

int fsm__eip_bind_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], vm[FSM_ID_SIZE];

    TRY(fsm__arg_str(c, "EIPID", 1, FSM_ID_SIZE - 1, id, NULL));
    return fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, vm, NULL);
}

/* Clear @r's binding (to @old) and its index row. */
static int unbind(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    char key[KEY_MAX];
    const char *old = fsm__rec_s(r, "BindResourceID");
    int rc = 0;

    if (old[0] != '\0') {
        rc = fsm__cdel(c, FSM_TBL_NET, key, fsm__net_key(key, 'E', old, id));
        rc = rc == YH_ENOTFOUND ? 0 : rc;
    }
    fsm__rec_set_s(r, "BindResourceID", "");
    if (fsm__rec_has(r, "BindResourceType")) {
        fsm__rec_set_s(r, "BindResourceType", "");
    }
    fsm__rec_set_s(r, "State", "Available");
    return rc;
}

int fsm__eip_usable(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    TRY(fsm__net_load(c, EIP_PREFIX, "EIP", id, r));
    if (strcmp(fsm__rec_s(r, "State"), "Recycled") == 0) {
        return fsm__reject(c, YH_ESTATE, "EIP '%s' is in the recycle bin", id);
    }
    if (fsm__rec_i(r, "Suspended")) {
        return fsm__reject(c, YH_ESTATE, "EIP '%s' is suspended (%s)", id,
                           fsm__rec_s(r, "SuspendReason"));
    }
    return 0;
}

int fsm__eip_free_for(struct fsm_ctx *c,
                      const char *key,
                      const char *id,
                      const struct fsm_rec *r,
                      const char *tenant,
                      const char *target)
{
    char cur[FSM_ID_SIZE];

    if (strcmp(fsm__rec_s(r, "TenantID"), tenant) != 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': '%s' belongs to another "
                           "tenant than '%s'",
                           key, target, id);
    }
    TRY(bound_vm(c, r, cur));
    if (cur[0] != '\0') {
        return strcmp(cur, target) == 0
                   ? fsm__reject(c, YH_EEXIST,
                                 "EIP '%s' is already bound to '%s'", id,
                                 target)
                   : fsm__reject(c, YH_ESTATE,
                                 "EIP '%s' is bound to '%s': unbind it first",
                                 id, cur);
    }
    return 0;
}

int fsm__eip_bind_write(struct fsm_ctx *c,
                        const char *id,
                        struct fsm_rec *r,
                        const char *target,
                        const char *type)
{
    char key[KEY_MAX];

    TRY(unbind(c, id, r)); /* a dead binding */
    TRY(fsm__net_mark(c, key, fsm__net_key(key, 'E', target, id)));
    fsm__rec_set_s(r, "BindResourceID", target);
    fsm__rec_set_s(r, "BindResourceType", type);
    fsm__rec_set_s(r, "State", "Bound");
    fsm__rec_set_i(r, "Revision", (int64_t)c->index);
    TRY(fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), r));
    return fsm__concern(c, target);
}

int fsm__eip_unbind_from(struct fsm_ctx *c, const char *id, const char *target)
{
    char key[KEY_MAX];
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), &r);
    if (rc == 0 && strcmp(fsm__rec_s(&r, "BindResourceID"), target) == 0) {
        rc = unbind(c, id, &r);
        if (rc == 0) {
            fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
            rc = fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), &r);
        }
    } else if (rc == 0 || rc == YH_ENOTFOUND) {
        rc = fsm__cdel(c, FSM_TBL_NET, key, fsm__net_key(key, 'E', target, id));
        rc = rc == YH_ENOTFOUND ? 0 : rc;
    }
    fsm__rec_free(&r);
    /* only a gateway being deleted or purged releases its EIP this way:
     * no new spec for it (its host is told it is gone) */
    return rc;
}

int fsm__eip_bind_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], target[FSM_ID_SIZE], tenant[FSM_ID_SIZE];
    char type[16];
    struct fsm_rec r;
    int rc;

    TRY(fsm__eip_bind_check(c));
    fsm__arg_str(c, "EIPID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, target, NULL);
    fsm__rec_init(&r);
    rc = fsm__eip_usable(c, id, &r);
    if (rc == 0) {
        rc = fsm__eip_target(c, target, type, tenant);
    }
    if (rc == 0) {
        rc = fsm__eip_free_for(c, "ResourceID", id, &r, tenant, target);
    }
    if (rc == 0) {
        rc = fsm__if_revision(c, &r);
    }
    if (rc == 0) {
        rc = fsm__eip_bind_write(c, id, &r, target, type);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    fsm__rec_free(&r);
    return rc;
}

int fsm__eip_unbind_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], vm[FSM_ID_SIZE];

    TRY(fsm__arg_str(c, "EIPID", 1, FSM_ID_SIZE - 1, id, NULL));
    return fsm__arg_str(c, "ResourceID", 0, FSM_ID_SIZE - 1, vm, NULL);
}

int fsm__eip_unbind_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], vm[FSM_ID_SIZE], old[FSM_ID_SIZE];
    struct fsm_rec r;
    int given, rc;

    TRY(fsm__eip_unbind_check(c));
    fsm__arg_str(c, "ResourceID", 0, FSM_ID_SIZE - 1, vm, &given);
    fsm__rec_init(&r);
    rc = eip_get(c, id, &r);
    if (rc == 0) {
        rc = fsm__if_revision(c, &r);
    }
    if (rc == 0 && fsm__rec_s(&r, "BindResourceID")[0] == '\0') {
        rc = fsm__reject(c, YH_ESTATE, "EIP '%s' is not bound", id);
    }
    if (rc == 0 && given && strcmp(fsm__rec_s(&r, "BindResourceID"), vm) != 0) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'ResourceID': EIP '%s' is bound "
                         "to '%s'",
                         id, fsm__rec_s(&r, "BindResourceID"));
    }
    if (rc == 0 &&
        strncmp(fsm__rec_s(&r, "BindResourceID"), "vpngw-", 6) == 0) {
        int exists;
        rc = fsm__net_vm_exists(c, fsm__rec_s(&r, "BindResourceID"), &exists);
        if (rc == 0 && exists) {
            rc = fsm__reject(c, YH_ESTATE,
                             "EIP '%s' is the address of VPN gateway '%s': "
                             "delete the gateway to free it",
                             id, fsm__rec_s(&r, "BindResourceID"));
        }
    }
    if (rc == 0) {
        snprintf(old, sizeof old, "%s", fsm__rec_s(&r, "BindResourceID"));
        rc = unbind(c, id, &r);
    }
    if (rc == 0) {
        rc = fsm__net_save(c, id, &r);
    }
    if (rc == 0) {
        rc = fsm__concern(c, old);
    }
    fsm__rec_free(&r);
    return rc;
}

/* ---- ModifyEIPBandwidth ---- */

int fsm__eip_bw_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    int64_t bw;

    TRY(fsm__arg_str(c, "EIPID", 1, FSM_ID_SIZE - 1, id, NULL));
    return fsm__arg_int(c, "Bandwidth", 1, 1, BW_MAX, &bw, NULL);
}

int fsm__eip_bw_apply(struct fsm_ctx *c)
{
    static const char *const types[1] = {"Bandwidth"};
    char id[FSM_ID_SIZE], tenant[FSM_ID_SIZE];
    int64_t bw, delta[1], price;
    struct fsm_rec r;
    int rc;

    TRY(fsm__eip_bw_check(c));
    fsm__arg_int(c, "Bandwidth", 1, 1, BW_MAX, &bw, NULL);
    fsm__rec_init(&r);
    rc = eip_get(c, id, &r);
    if (rc == 0 && fsm__rec_i(&r, "Suspended")) {
        rc = fsm__reject(c, YH_ESTATE, "EIP '%s' is suspended (%s)", id,
                         fsm__rec_s(&r, "SuspendReason"));
    }
    if (rc != 0) {
        goto out;
    }
    snprintf(tenant, sizeof tenant, "%s", fsm__rec_s(&r, "TenantID"));
    delta[0] = bw - fsm__rec_i(&r, "Bandwidth");
    rc = fsm__quota_check(c, tenant, 1, types, delta);
    if (rc == 0) {
        rc = eip_price(c, fsm__rec_s(&r, "ChargeType"), bw, &price);
    }
    if (rc == 0) {
        rc = fsm__bill_resize(c, tenant, &r, price, 1);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_i(&r, "Bandwidth", bw);
    rc = fsm__bill_resize(c, tenant, &r, price, 0);
    if (rc == 0) {
        rc = fsm__usage_add(c, tenant, 1, types, delta);
    }
    if (rc == 0) {
        rc = fsm__net_save(c, id, &r);
    }
    if (rc == 0) {
        rc = fsm__concern(c, fsm__rec_s(&r, "BindResourceID"));
    }
    if (rc == 0) {
        msgpack_pack_int64(fsm__field(c, "Bandwidth"), bw);
    }
out:
    fsm__rec_free(&r);
    return rc;
}

/* ---- ReleaseEIP ---- */

int fsm__eip_release_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "EIPID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__eip_purge_release(struct fsm_ctx *c, const struct fsm_rec *r)
{
    char key[KEY_MAX];
    const char *vm = fsm__rec_s(r, "BindResourceID");
    fsm_u128 a;
    int fam, rc;

    if (strcmp(fsm__rec_s(r, "ResourceType"), "EIP") != 0) {
        return 0;
    }
    if (vm[0] != '\0') {
        rc = fsm__cdel(c, FSM_TBL_NET, key,
                       fsm__net_key(key, 'E', vm, fsm__rec_s(r, "EIPID")));
        TRY(rc == YH_ENOTFOUND ? 0 : rc);
        TRY(fsm__concern(c, vm)); /* the machine loses the address */
    }
    if (fsm__ip_parse(fsm__rec_s(r, "IP"), &fam, &a) != 0) {
        snprintf(c->f->errmsg, sizeof c->f->errmsg, "EIP '%s' has a corrupt IP",
                 fsm__rec_s(r, "EIPID"));
        return YH_ECORRUPT;
    }
    return fsm__ipam_release(c, fsm__rec_s(r, "EIPPoolID"), fam, a);
}

int fsm__eip_release_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], vm[FSM_ID_SIZE];
    const char *types[2];
    int64_t delta[2];
    struct fsm_rec r;
    unsigned n;
    int rc;

    TRY(fsm__eip_release_check(c));
    fsm__rec_init(&r);
    rc = eip_get(c, id, &r);
    if (rc == 0) {
        rc = bound_vm(c, &r, vm);
    }
    if (rc == 0 && vm[0] != '\0') {
        rc = fsm__reject(c, YH_ESTATE,
                         "EIP '%s' is bound to '%s': unbind it first", id, vm);
    }
    if (rc != 0) {
        goto out;
    }
    n = fsm__eip_usage(&r, types, delta);
    for (unsigned i = 0; i < n; i++) {
        delta[i] = -delta[i];
    }
    rc = fsm__eip_purge_release(c, &r);
    if (rc == 0) {
        rc = fsm__usage_add(c, fsm__rec_s(&r, "TenantID"), n, types, delta);
    }
    if (rc == 0) {
        rc = fsm__cdel(c, FSM_TBL_RES, id, strlen(id));
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
out:
    fsm__rec_free(&r);
    return rc;
}
