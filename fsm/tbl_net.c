/* VPCs ("uvnet-"), subnets ("subnet-") and NICs ("nic-"), plus the small
 * helpers the network files share.
 *
 * A VPC is a tenant's IPv4 network (and optionally an IPv6 one); its
 * subnets lie inside it and never overlap each other. A subnet is an IPAM
 * address space (ipam.c) for each of its families; a NIC holds one address
 * of each family of its subnet. Records live in the resources table (they
 * are not billed: no ChargeType, so the billing tick ignores them); the
 * subnets of a VPC are indexed in "net" as "S" \0 VPCID \0 SubnetID so that
 * the overlap check and DeleteVPC look at that VPC's subnets only. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define VPC_PREFIX "uvnet"
#define SUBNET_PREFIX "subnet"
#define NIC_PREFIX "nic"
#define NAME_MAX_LEN 64
#define KEY_MAX (2 * FSM_ID_SIZE + 4)

/* ---- shared helpers ---- */

int fsm__net_load(struct fsm_ctx *c,
                  const char *prefix,
                  const char *what,
                  const char *id,
                  struct fsm_rec *r)
{
    size_t pl = strlen(prefix);
    int rc = YH_ENOTFOUND;

    if (strncmp(id, prefix, pl) == 0 && id[pl] == '-') {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), r);
    }
    if (rc == 0 && !fsm__owns(c, fsm__rec_s(r, "TenantID"))) {
        rc = YH_ENOTFOUND;
    }
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "%s '%s' not found", what, id);
    }
    return rc;
}

int fsm__net_save(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    fsm__rec_set_i(r, "Revision", (int64_t)c->index);
    TRY(fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), r));
    snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    return 0;
}

int fsm__net_any(struct fsm_ctx *c, const void *prefix, size_t pl, int *any)
{
    MDB_cursor *cur;
    MDB_val k = {pl, (void *)prefix}, v;
    int rc;

    *any = 0;
    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_NET], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on 'net'");
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0) {
        *any = k.mv_size > pl && memcmp(k.mv_data, prefix, pl) == 0;
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0
                                         : fsm__mdb_err(c->f, rc, "read 'net'");
}

int fsm__net_mark(struct fsm_ctx *c, const void *key, size_t kl)
{
    static const uint8_t empty_map = 0x80;

    return fsm__cput(c, FSM_TBL_NET, key, kl, &empty_map, 1);
}

size_t fsm__net_key(char *out, char kind, const char *a, const char *b)
{
    out[0] = kind;
    out[1] = '\0';
    return 2 + fsm__key2(out + 2, a, b);
}

int fsm__net_vm_exists(struct fsm_ctx *c, const char *vm, int *exists)
{
    MDB_val v;
    int rc = fsm__get(c->f, c->txn, FSM_TBL_RES, vm, strlen(vm), &v);

    *exists = rc == 0;
    return rc == YH_ENOTFOUND ? 0 : rc;
}

/* A CIDR parameter of family @fam with a prefix length in lo..hi. */
static int cidr_arg(struct fsm_ctx *c,
                    const char *key,
                    int required,
                    int fam,
                    unsigned lo,
                    unsigned hi,
                    struct fsm_cidr *out,
                    int *present)
{
    char s[FSM_CIDR_STR], why[160];
    int given;

    TRY(fsm__arg_str(c, key, required, sizeof s - 1, s, &given));
    if (present != NULL) {
        *present = given;
    }
    if (!given) {
        memset(out, 0, sizeof *out);
        return 0;
    }
    if (fsm__cidr_parse(s, out, why, sizeof why) != 0) {
        return fsm__reject(c, YH_EINVAL, "invalid parameter '%s': %s", key,
                           why);
    }
    if (out->fam != fam) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': '%s' is not an IPv%d "
                           "network",
                           key, s, fam);
    }
    if (out->plen < lo || out->plen > hi) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': prefix length of '%s' "
                           "must be %u..%u",
                           key, s, lo, hi);
    }
    return 0;
}

/* A stored CIDR field (validated when written). */
static int cidr_field(struct fsm_ctx *c,
                      const struct fsm_rec *r,
                      const char *k,
                      struct fsm_cidr *out)
{
    char why[160];

    if (fsm__cidr_parse(fsm__rec_s(r, k), out, why, sizeof why) != 0) {
        snprintf(c->f->errmsg, sizeof c->f->errmsg,
                 "record field '%s' is corrupt: %s", k, why);
        return YH_ECORRUPT;
    }
    return 0;
}

static int64_t now_s(const struct fsm_ctx *c)
{
    return (int64_t)(c->time_ns / 1000000000u);
}

/* ---- VPC ---- */

struct vpc_args
{
    char name[NAME_MAX_LEN + 1];
    struct fsm_cidr v4, v6;
    int has_v6;
};

static int vpc_args(struct fsm_ctx *c, struct vpc_args *a)
{
    TRY(fsm__arg_str(c, "Name", 1, NAME_MAX_LEN, a->name, NULL));
    TRY(cidr_arg(c, "Network", 1, 4, 8, 29, &a->v4, NULL));
    return cidr_arg(c, "IPv6Network", 0, 6, 8, 64, &a->v6, &a->has_v6);
}

int fsm__vpc_create_check(struct fsm_ctx *c)
{
    struct vpc_args a;
    char tenant[FSM_ID_SIZE];

    TRY(vpc_args(c, &a));
    return fsm__owner_arg(c, tenant);
}

int fsm__vpc_create_apply(struct fsm_ctx *c)
{
    static const char *const types[1] = {"VPC"};
    static const int64_t one[1] = {1};
    char tenant[FSM_ID_SIZE], id[FSM_ID_SIZE], s[FSM_CIDR_STR];
    struct vpc_args a;
    struct fsm_rec r;
    int rc;

    TRY(vpc_args(c, &a));
    TRY(fsm__owner_arg(c, tenant));
    TRY(fsm__quota_check(c, tenant, 1, types, one));
    TRY(fsm__new_id(c, VPC_PREFIX, id));
    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "VPCID", id);
    fsm__rec_set_s(&r, "ResourceType", "VPC");
    fsm__rec_set_s(&r, "TenantID", tenant);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__cidr_format(&a.v4, s);
    fsm__rec_set_s(&r, "Network", s);
    if (a.has_v6) {
        fsm__cidr_format(&a.v6, s);
    }
    fsm__rec_set_s(&r, "IPv6Network", a.has_v6 ? s : "");
    fsm__rec_set_s(&r, "State", "Available");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    rc = fsm__usage_add(c, tenant, 1, types, one);
    if (rc == 0) {
        rc = fsm__net_save(c, id, &r);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "VPCID"), id);
    }
    fsm__rec_free(&r);
    return rc;
}

int fsm__vpc_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {FSM_TBL_RES, VPC_PREFIX "-", "VPCIDs", 0,
                         NULL,        NULL,           NULL};

    return fsm__describe(c, &d);
}

int fsm__vpc_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "VPCID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__vpc_delete_apply(struct fsm_ctx *c)
{
    static const char *const types[1] = {"VPC"};
    static const int64_t minus[1] = {-1};
    char id[FSM_ID_SIZE], key[KEY_MAX];
    struct fsm_rec r;
    size_t kl;
    int any, rc;

    TRY(fsm__vpc_delete_check(c));
    fsm__arg_str(c, "VPCID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&r);
    rc = fsm__net_load(c, VPC_PREFIX, "VPC", id, &r);
    if (rc == 0) {
        kl = fsm__net_key(key, 'S', id, "");
        rc = fsm__net_any(c, key, kl, &any);
    }
    if (rc == 0 && any) {
        rc = fsm__reject(c, YH_ESTATE,
                         "VPC '%s' has subnets: delete them first", id);
    }
    if (rc == 0) {
        rc = fsm__net_users(c, 'W', id, "VPC"); /* gateways (gw.c) */
    }
    if (rc == 0) {
        rc = fsm__usage_add(c, fsm__rec_s(&r, "TenantID"), 1, types, minus);
    }
    if (rc == 0) {
        rc = fsm__cdel(c, FSM_TBL_RES, id, strlen(id));
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    fsm__rec_free(&r);
    return rc;
}

/* ---- subnets ---- */

struct subnet_args
{
    char vpc[FSM_ID_SIZE];
    char name[NAME_MAX_LEN + 1];
    struct fsm_cidr v4, v6;
    int has_v6;
};

static int subnet_args(struct fsm_ctx *c, struct subnet_args *a)
{
    TRY(fsm__arg_str(c, "VPCID", 1, FSM_ID_SIZE - 1, a->vpc, NULL));
    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, a->name, NULL));
    TRY(cidr_arg(c, "Network", 1, 4, 8, 29, &a->v4, NULL));
    return cidr_arg(c, "IPv6Network", 0, 6, 8, 120, &a->v6, &a->has_v6);
}

int fsm__subnet_create_check(struct fsm_ctx *c)
{
    struct subnet_args a;

    return subnet_args(c, &a);
}

/* 161 if @net overlaps a subnet of @vpc (field @field). */
static int no_overlap(struct fsm_ctx *c,
                      const char *vpc,
                      const char *field,
                      const struct fsm_cidr *net)
{
    char key[KEY_MAX];
    size_t pl = fsm__net_key(key, 'S', vpc, "");
    MDB_cursor *cur;
    MDB_val k = {pl, key}, v;
    struct fsm_rec s;
    int mrc, rc = 0;

    mrc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_NET], &cur);
    if (mrc != 0) {
        return fsm__mdb_err(c->f, mrc, "open cursor on 'net'");
    }
    fsm__rec_init(&s);
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0 && rc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char sid[FSM_ID_SIZE];
        struct fsm_cidr o;
        if (k.mv_size <= pl || memcmp(k.mv_data, key, pl) != 0) {
            break;
        }
        if (k.mv_size - pl >= sizeof sid) {
            continue;
        }
        memcpy(sid, (const char *)k.mv_data + pl, k.mv_size - pl);
        sid[k.mv_size - pl] = '\0';
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, sid, strlen(sid), &s);
        if (rc == YH_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc != 0 || fsm__rec_s(&s, field)[0] == '\0') {
            continue;
        }
        rc = cidr_field(c, &s, field, &o);
        if (rc == 0 && fsm__cidr_overlap(&o, net)) {
            char mine[FSM_CIDR_STR];
            fsm__cidr_format(net, mine);
            rc = fsm__reject(c, YH_EEXIST, "%s %s overlaps subnet '%s' (%s)",
                             field, mine, sid, fsm__rec_s(&s, field));
        }
    }
    mdb_cursor_close(cur);
    fsm__rec_free(&s);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = fsm__mdb_err(c->f, mrc, "read 'net'");
    }
    return rc;
}

/* @inner lies in the VPC's @field. */
static int inside(struct fsm_ctx *c,
                  const struct fsm_rec *vpc,
                  const char *field,
                  const struct fsm_cidr *inner)
{
    char s[FSM_CIDR_STR];
    struct fsm_cidr outer;

    fsm__cidr_format(inner, s);
    if (fsm__rec_s(vpc, field)[0] == '\0') {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': VPC '%s' has no %s", field,
                           fsm__rec_s(vpc, "VPCID"), field);
    }
    TRY(cidr_field(c, vpc, field, &outer));
    if (!fsm__cidr_contains(&outer, inner)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': %s is not inside VPC "
                           "'%s' (%s)",
                           field, s, fsm__rec_s(vpc, "VPCID"),
                           fsm__rec_s(vpc, field));
    }
    return 0;
}

int fsm__subnet_create_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], key[KEY_MAX], s[FSM_CIDR_STR], ip[FSM_IP_STR];
    struct subnet_args a;
    struct fsm_rec vpc, r;
    int rc;

    TRY(subnet_args(c, &a));
    fsm__rec_init(&vpc);
    fsm__rec_init(&r);
    rc = fsm__net_load(c, VPC_PREFIX, "VPC", a.vpc, &vpc);
    if (rc == 0) {
        rc = inside(c, &vpc, "Network", &a.v4);
    }
    if (rc == 0 && a.has_v6) {
        rc = inside(c, &vpc, "IPv6Network", &a.v6);
    }
    if (rc == 0) {
        rc = no_overlap(c, a.vpc, "Network", &a.v4);
    }
    if (rc == 0 && a.has_v6) {
        rc = no_overlap(c, a.vpc, "IPv6Network", &a.v6);
    }
    if (rc == 0) {
        rc = fsm__new_id(c, SUBNET_PREFIX, id);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_s(&r, "SubnetID", id);
    fsm__rec_set_s(&r, "ResourceType", "Subnet");
    fsm__rec_set_s(&r, "TenantID", fsm__rec_s(&vpc, "TenantID"));
    fsm__rec_set_s(&r, "VPCID", a.vpc);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__cidr_format(&a.v4, s);
    fsm__rec_set_s(&r, "Network", s);
    fsm__ip_format(4, a.v4.net + 1, ip);
    fsm__rec_set_s(&r, "Gateway", ip);
    if (a.has_v6) {
        fsm__cidr_format(&a.v6, s);
        fsm__ip_format(6, a.v6.net + 1, ip);
    }
    fsm__rec_set_s(&r, "IPv6Network", a.has_v6 ? s : "");
    fsm__rec_set_s(&r, "IPv6Gateway", a.has_v6 ? ip : "");
    fsm__rec_set_s(&r, "State", "Available");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    rc = fsm__ipam_init(c, id, &a.v4);
    if (rc == 0 && a.has_v6) {
        rc = fsm__ipam_init(c, id, &a.v6);
    }
    if (rc == 0) {
        rc = fsm__net_mark(c, key, fsm__net_key(key, 'S', a.vpc, id));
    }
    if (rc == 0) {
        rc = fsm__net_save(c, id, &r);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "SubnetID"), id);
    }
out:
    fsm__rec_free(&vpc);
    fsm__rec_free(&r);
    return rc;
}

static int vpc_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    const char *vpc = arg;

    (void)c;
    return vpc[0] == '\0' || strcmp(fsm__rec_s(r, "VPCID"), vpc) == 0;
}

int fsm__subnet_describe(struct fsm_ctx *c)
{
    char vpc[FSM_ID_SIZE];
    struct fsm_desc d = {
        FSM_TBL_RES, SUBNET_PREFIX "-", "SubnetIDs", 0, vpc_keep, NULL, vpc};

    TRY(fsm__arg_str(c, "VPCID", 0, FSM_ID_SIZE - 1, vpc, NULL));
    return fsm__describe(c, &d);
}

int fsm__subnet_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "SubnetID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__subnet_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], key[KEY_MAX];
    struct fsm_rec r;
    int any, rc;

    TRY(fsm__subnet_delete_check(c));
    fsm__arg_str(c, "SubnetID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&r);
    rc = fsm__net_load(c, SUBNET_PREFIX, "subnet", id, &r);
    if (rc == 0) {
        rc = fsm__net_users(c, 'w', id, "subnet"); /* gateways (gw.c) */
    }
    if (rc == 0) {
        rc = fsm__ipam_in_use(c, id, &any);
    }
    if (rc == 0 && any) {
        rc = fsm__reject(c, YH_ESTATE,
                         "subnet '%s' has allocated addresses: delete its "
                         "NICs first",
                         id);
    }
    if (rc == 0) {
        rc = fsm__ipam_drop(c, id);
    }
    if (rc == 0) {
        rc = fsm__cdel(c, FSM_TBL_NET, key,
                       fsm__net_key(key, 'S', fsm__rec_s(&r, "VPCID"), id));
        rc = rc == YH_ENOTFOUND ? 0 : rc;
    }
    if (rc == 0) {
        rc = fsm__cdel(c, FSM_TBL_RES, id, strlen(id));
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    fsm__rec_free(&r);
    return rc;
}

/* ---- NICs: an address of each family of a subnet ---- */

struct nic_args
{
    char subnet[FSM_ID_SIZE];
    char name[NAME_MAX_LEN + 1];
    char ip[FSM_IP_STR];
    char ip6[FSM_IP_STR];
};

static int nic_args(struct fsm_ctx *c, struct nic_args *a)
{
    TRY(fsm__arg_str(c, "SubnetID", 1, FSM_ID_SIZE - 1, a->subnet, NULL));
    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, a->name, NULL));
    TRY(fsm__arg_str(c, "IP", 0, FSM_IP_STR - 1, a->ip, NULL));
    return fsm__arg_str(c, "IPv6", 0, FSM_IP_STR - 1, a->ip6, NULL);
}

int fsm__nic_create_check(struct fsm_ctx *c)
{
    struct nic_args a;

    return nic_args(c, &a);
}

int fsm__nic_create_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], vpc[FSM_ID_SIZE], ip[FSM_IP_STR], ip6[FSM_IP_STR];
    struct fsm_cidr n4, n6;
    fsm_u128 a4 = 0, a6 = 0;
    struct nic_args a;
    struct fsm_rec s, r;
    int v6 = 0, given;
    int rc;

    TRY(nic_args(c, &a));
    TRY(fsm__arg_str(c, "VPCID", 0, FSM_ID_SIZE - 1, vpc, &given));
    fsm__rec_init(&s);
    fsm__rec_init(&r);
    rc = fsm__net_load(c, SUBNET_PREFIX, "subnet", a.subnet, &s);
    if (rc == 0 && given && strcmp(vpc, fsm__rec_s(&s, "VPCID")) != 0) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'VPCID': subnet '%s' is in VPC "
                         "'%s'",
                         a.subnet, fsm__rec_s(&s, "VPCID"));
    }
    if (rc == 0) {
        rc = cidr_field(c, &s, "Network", &n4);
    }
    if (rc == 0) {
        v6 = fsm__rec_s(&s, "IPv6Network")[0] != '\0';
        if (v6) {
            rc = cidr_field(c, &s, "IPv6Network", &n6);
        } else if (a.ip6[0] != '\0') {
            rc = fsm__reject(c, YH_EINVAL,
                             "invalid parameter 'IPv6': subnet '%s' has no "
                             "IPv6 network",
                             a.subnet);
        }
    }
    /* both addresses chosen before anything is written */
    if (rc == 0) {
        rc = fsm__ipam_pick(c, a.subnet, &n4, a.ip, &a4);
    }
    if (rc == 0 && v6) {
        rc = fsm__ipam_pick(c, a.subnet, &n6, a.ip6, &a6);
    }
    if (rc == 0) {
        rc = fsm__new_id(c, NIC_PREFIX, id);
    }
    if (rc == 0) {
        rc = fsm__ipam_take(c, a.subnet, 4, a4, id);
    }
    if (rc == 0 && v6) {
        rc = fsm__ipam_take(c, a.subnet, 6, a6, id);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__ip_format(4, a4, ip);
    ip6[0] = '\0';
    if (v6) {
        fsm__ip_format(6, a6, ip6);
    }
    fsm__rec_set_s(&r, "NICID", id);
    fsm__rec_set_s(&r, "ResourceType", "NIC");
    fsm__rec_set_s(&r, "TenantID", fsm__rec_s(&s, "TenantID"));
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_s(&r, "VPCID", fsm__rec_s(&s, "VPCID"));
    fsm__rec_set_s(&r, "SubnetID", a.subnet);
    fsm__rec_set_s(&r, "IP", ip);
    fsm__rec_set_s(&r, "IPv6", ip6);
    fsm__rec_set_s(&r, "State", "Available");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    rc = fsm__net_save(c, id, &r);
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "NICID"), id);
        yh_mp_pack_str(fsm__field(c, "IP"), ip);
        yh_mp_pack_str(fsm__field(c, "IPv6"), ip6);
    }
out:
    fsm__rec_free(&s);
    fsm__rec_free(&r);
    return rc;
}

struct nic_filter
{
    char vpc[FSM_ID_SIZE];
    char subnet[FSM_ID_SIZE];
};

static int nic_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    const struct nic_filter *q = arg;

    (void)c;
    return (q->vpc[0] == '\0' || strcmp(fsm__rec_s(r, "VPCID"), q->vpc) == 0) &&
           (q->subnet[0] == '\0' ||
            strcmp(fsm__rec_s(r, "SubnetID"), q->subnet) == 0);
}

int fsm__nic_describe(struct fsm_ctx *c)
{
    struct nic_filter q;
    struct fsm_desc d = {FSM_TBL_RES, NIC_PREFIX "-", "NICIDs", 0,
                         nic_keep,    NULL,           &q};

    TRY(fsm__arg_str(c, "VPCID", 0, FSM_ID_SIZE - 1, q.vpc, NULL));
    TRY(fsm__arg_str(c, "SubnetID", 0, FSM_ID_SIZE - 1, q.subnet, NULL));
    return fsm__describe(c, &d);
}

int fsm__nic_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "NICID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__nic_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], subnet[FSM_ID_SIZE], vm[FSM_ID_SIZE];
    struct fsm_rec r;
    fsm_u128 a;
    int fam, rc;

    TRY(fsm__nic_delete_check(c));
    fsm__arg_str(c, "NICID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&r);
    rc = fsm__net_load(c, NIC_PREFIX, "NIC", id, &r);
    if (rc == 0) {
        rc = fsm__nic_vm(c, &r, vm); /* nic.c */
    }
    if (rc == 0 && vm[0] != '\0') {
        rc = fsm__reject(c, YH_ESTATE,
                         "NIC '%s' is attached to '%s': detach it first", id,
                         vm);
    }
    if (rc == 0 && fsm__rec_s(&r, "VMID")[0] != '\0') {
        /* attached to a machine purged since */
        rc = fsm__net_unlink(c, 'N', fsm__rec_s(&r, "VMID"), id);
    }
    if (rc != 0) {
        goto out;
    }
    snprintf(subnet, sizeof subnet, "%s", fsm__rec_s(&r, "SubnetID"));
    if (fsm__ip_parse(fsm__rec_s(&r, "IP"), &fam, &a) == 0) {
        rc = fsm__ipam_release(c, subnet, fam, a);
    }
    if (rc == 0 && fsm__ip_parse(fsm__rec_s(&r, "IPv6"), &fam, &a) == 0) {
        rc = fsm__ipam_release(c, subnet, fam, a);
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

/* ---- a machine's primary address (for CreateVMInstance) ---- */

int fsm__vm_ip_pick(struct fsm_ctx *c,
                    const char *tenant,
                    struct fsm_vm_ip *out)
{
    char vpc[FSM_ID_SIZE], want[FSM_IP_STR];
    struct fsm_cidr n4, n6;
    struct fsm_rec s;
    int has_vpc, rc;

    memset(out, 0, sizeof *out);
    TRY(fsm__arg_str(c, "SubnetID", 0, FSM_ID_SIZE - 1, out->subnet, NULL));
    TRY(fsm__arg_str(c, "VPCID", 0, FSM_ID_SIZE - 1, vpc, &has_vpc));
    TRY(fsm__arg_str(c, "InternalIP", 0, FSM_IP_STR - 1, want, NULL));
    if (out->subnet[0] == '\0') {
        if (has_vpc || want[0] != '\0') {
            return fsm__reject(c, YH_EMISSING,
                               "missing parameter 'SubnetID' (with VPCID or "
                               "InternalIP)");
        }
        return 0; /* no network asked for */
    }
    fsm__rec_init(&s);
    rc = fsm__net_load(c, SUBNET_PREFIX, "subnet", out->subnet, &s);
    if (rc == 0 && strcmp(fsm__rec_s(&s, "TenantID"), tenant) != 0) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'SubnetID': '%s' belongs to "
                         "another tenant",
                         out->subnet);
    }
    if (rc == 0 && has_vpc && strcmp(vpc, fsm__rec_s(&s, "VPCID")) != 0) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'VPCID': subnet '%s' is in VPC "
                         "'%s'",
                         out->subnet, fsm__rec_s(&s, "VPCID"));
    }
    if (rc == 0) {
        snprintf(out->vpc, sizeof out->vpc, "%s", fsm__rec_s(&s, "VPCID"));
        rc = cidr_field(c, &s, "Network", &n4);
    }
    if (rc == 0) {
        rc = fsm__ipam_pick(c, out->subnet, &n4, want, &out->a4);
    }
    if (rc == 0 && fsm__rec_s(&s, "IPv6Network")[0] != '\0') {
        out->v6 = 1;
        rc = cidr_field(c, &s, "IPv6Network", &n6);
        if (rc == 0) {
            rc = fsm__ipam_pick(c, out->subnet, &n6, NULL, &out->a6);
        }
    }
    fsm__rec_free(&s);
    if (rc == 0) {
        out->set = 1;
    }
    return rc;
}

int fsm__vm_ip_take(struct fsm_ctx *c,
                    const struct fsm_vm_ip *ip,
                    const char *vm,
                    struct fsm_rec *r)
{
    char a[FSM_IP_STR];

    if (!ip->set) {
        return 0;
    }
    TRY(fsm__ipam_take(c, ip->subnet, 4, ip->a4, vm));
    if (ip->v6) {
        TRY(fsm__ipam_take(c, ip->subnet, 6, ip->a6, vm));
    }
    fsm__rec_set_s(r, "VPCID", ip->vpc);
    fsm__rec_set_s(r, "SubnetID", ip->subnet);
    fsm__ip_format(4, ip->a4, a);
    fsm__rec_set_s(r, "InternalIP", a);
    a[0] = '\0';
    if (ip->v6) {
        fsm__ip_format(6, ip->a6, a);
    }
    fsm__rec_set_s(r, "InternalIPv6", a);
    return 0;
}

int fsm__vm_ip_release(struct fsm_ctx *c, const struct fsm_rec *r)
{
    const char *subnet = fsm__rec_s(r, "SubnetID");
    fsm_u128 a;
    int fam;

    if (subnet[0] == '\0') {
        return 0;
    }
    if (fsm__ip_parse(fsm__rec_s(r, "InternalIP"), &fam, &a) == 0) {
        TRY(fsm__ipam_release(c, subnet, fam, a));
    }
    if (fsm__ip_parse(fsm__rec_s(r, "InternalIPv6"), &fam, &a) == 0) {
        TRY(fsm__ipam_release(c, subnet, fam, a));
    }
    return 0;
}
