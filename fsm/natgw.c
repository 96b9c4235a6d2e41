/* NAT gateways ("natgw-") and their DNAT rules ("natrule-").
 *
 * A NAT gateway serves subnets of one VPC (SNAT for their machines; each
 * subnet is served by at most one gateway) through its EIP, in Mode
 * Automatic (every machine of the served subnets) or Whitelist. It is a
 * billed gateway resource (gw.c): price spec and quota "NATGW".
 *
 * A DNAT rule forwards a port (or a range) of the gateway's EIP to a
 * private address of a served subnet: Protocol TCP or UDP, EIPPort "80" or
 * "8000-8010", PrivatePort of the same width. Two rules of a gateway never
 * share a (Protocol, EIP port): overlapping ranges are refused. The rules
 * belong to the gateway, not to one EIP: unbinding the EIP and binding
 * another keeps them. A gateway holds at most 1,000 rules; rule records
 * live in resources with their gateway's TenantID, indexed by "C" \0
 * NATGWID \0 RuleID rows (in RuleID order). The whitelist of Whitelist
 * mode is natwl.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define NATGW_PREFIX "natgw"
#define RULE_PREFIX "natrule"
#define SUBNETS_MAX 20
#define RULES_PER_GW 1000

static int64_t now_s(const struct fsm_ctx *c)
{
    return (int64_t)(c->time_ns / 1000000000u);
}

static const struct fsm_gw_type *natgw_type(void)
{
    return fsm__gw_type("NATGW");
}

/* ---- CreateNATGW ---- */

struct natgw_args
{
    char vpc[FSM_ID_SIZE];
    char eip[FSM_ID_SIZE];
    char name[FSM_NAME_SIZE];
    char mode[16];
    char subnets[SUBNETS_MAX][FSM_ID_SIZE];
    unsigned n_subnets;
};

static int natgw_args(struct fsm_ctx *c, struct natgw_args *a)
{
    static const char *const modes[] = {"Automatic", "Whitelist", NULL};

    TRY(fsm__arg_str(c, "VPCID", 1, FSM_ID_SIZE - 1, a->vpc, NULL));
    TRY(fsm__arg_str(c, "EIPID", 1, FSM_ID_SIZE - 1, a->eip, NULL));
    TRY(fsm__name_arg(c, a->name));
    TRY(fsm__word_arg(c, "Mode", modes, "Automatic", a->mode, sizeof a->mode));
    TRY(fsm__arg_list(c, "SubnetIDs", SUBNETS_MAX, a->subnets, &a->n_subnets));
    if (a->n_subnets == 0) {
        return fsm__reject(c, YH_EMISSING, "missing parameter 'SubnetIDs'");
    }
    for (unsigned i = 0; i < a->n_subnets; i++) {
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(a->subnets[i], a->subnets[j]) == 0) {
                return fsm__reject(c, YH_EINVAL,
                                   "invalid parameter 'SubnetIDs': '%s' given "
                                   "twice",
                                   a->subnets[i]);
            }
        }
    }
    return 0;
}

int fsm__natgw_create_check(struct fsm_ctx *c)
{
    struct natgw_args a;
    char tenant[FSM_ID_SIZE], ct[16];
    int64_t q;

    TRY(natgw_args(c, &a));
    TRY(fsm__charge_args(c, ct, &q));
    return fsm__owner_arg(c, tenant);
}

/* The NAT gateway serving @subnet ("" if none). */
struct served
{
    char gw[FSM_ID_SIZE];
};

static int served_fn(void *arg, const char *id)
{
    struct served *s = arg;

    if (strncmp(id, NATGW_PREFIX "-", sizeof NATGW_PREFIX) == 0) {
        snprintf(s->gw, sizeof s->gw, "%s", id);
        return 1;
    }
    return 0;
}

int fsm__natgw_create_apply(struct fsm_ctx *c)
{
    const struct fsm_gw_type *t = natgw_type();
    struct natgw_args a;
    struct fsm_gw_new g;
    struct fsm_rec vpc, s, e, r;
    char id[FSM_ID_SIZE];
    int rc;

    TRY(natgw_args(c, &a));
    TRY(fsm__gw_prepare(c, t, &g));
    fsm__rec_init(&vpc);
    fsm__rec_init(&s);
    fsm__rec_init(&e);
    fsm__rec_init(&r);
    rc = fsm__vpc_of(c, a.vpc, g.tenant, &vpc);
    for (unsigned i = 0; rc == 0 && i < a.n_subnets; i++) {
        struct served sv = {""};
        rc = fsm__subnet_in(c, "SubnetIDs", a.subnets[i], a.vpc, &s);
        if (rc == 0) {
            rc = fsm__net_walk(c->f, c->txn, 'w', a.subnets[i], served_fn, &sv);
            rc = rc == 1 ? 0 : rc;
        }
        if (rc == 0 && sv.gw[0] != '\0') {
            rc = fsm__reject(c, YH_EEXIST,
                             "subnet '%s' is already served by NAT gateway "
                             "'%s'",
                             a.subnets[i], sv.gw);
        }
    }
    if (rc == 0) {
        rc = fsm__eip_usable(c, a.eip, &e);
    }
    if (rc == 0) {
        rc = fsm__eip_free_for(c, "EIPID", a.eip, &e, g.tenant,
                               "the NAT gateway");
    }
    /* every rejection is decided: the writes */
    if (rc == 0) {
        rc = fsm__gw_begin(c, t, &g, a.vpc, id, &r);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_s(&r, "Mode", a.mode);
    fsm__rec_set_l(&r, "SubnetIDs", a.subnets, a.n_subnets);
    fsm__rec_set_i(&r, "RuleCount", 0);
    fsm__rec_set_i(&r, "WhiteListCount", 0);
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    for (unsigned i = 0; rc == 0 && i < a.n_subnets; i++) {
        rc = fsm__net_link(c, 'w', a.subnets[i], id);
    }
    if (rc == 0) {
        rc = fsm__net_save(c, id, &r);
    }
    if (rc == 0) {
        rc = fsm__eip_bind_write(c, a.eip, &e, id, t->type);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "NATGWID"), id);
    }
out:
    fsm__rec_free(&vpc);
    fsm__rec_free(&s);
    fsm__rec_free(&e);
    fsm__rec_free(&r);
    return rc;
}

/* ---- DescribeNATGW ---- */

struct natgw_desc
{
    char vpc[FSM_ID_SIZE];  /* VPCID filter */
    uint64_t offset, limit; /* RuleOffset, RuleLimit */
    int rc;                 /* first failure of a pack */
};

static int natgw_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    const struct natgw_desc *q = arg;

    return fsm__gw_live(c, r, NULL) &&
           (q->vpc[0] == '\0' || strcmp(fsm__rec_s(r, "VPCID"), q->vpc) == 0);
}

static void natgw_pack(struct fsm_ctx *c,
                       msgpack_packer *pk,
                       const struct fsm_rec *r,
                       void *arg)
{
    struct natgw_desc *q = arg;
    const char *id = fsm__rec_s(r, "NATGWID");
    int rc;

    fsm__rec_pack_more(pk, r, 3);
    rc = fsm__gw_eip_pack(c, pk, id);
    if (rc != 0) {
        fsm__children_pack(c, pk, "Rules", id, 0, 0, NULL, NULL);
    } else {
        rc = fsm__children_pack(c, pk, "Rules", id, q->offset, q->limit, NULL,
                                NULL);
    }
    if (rc != 0 && q->rc == 0) {
        q->rc = rc;
    }
}

int fsm__natgw_describe(struct fsm_ctx *c)
{
    struct natgw_desc q;
    struct fsm_desc d = {FSM_TBL_RES, NATGW_PREFIX "-", "NATGWIDs", 0,
                         natgw_keep,  natgw_pack,       &q};
    int64_t v;

    memset(&q, 0, sizeof q);
    TRY(fsm__arg_str(c, "VPCID", 0, FSM_ID_SIZE - 1, q.vpc, NULL));
    TRY(fsm__arg_int_or(c, "RuleOffset", 0, INT64_MAX, 0, &v));
    q.offset = (uint64_t)v;
    TRY(fsm__arg_int_or(c, "RuleLimit", 0, 1000, 100, &v));
    q.limit = (uint64_t)v;
    TRY(fsm__describe(c, &d));
    return q.rc;
}

/* ---- DeleteNATGW ---- */

static int natgw_id_arg(struct fsm_ctx *c, char id[FSM_ID_SIZE])
{
    return fsm__arg_str(c, "NATGWID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__natgw_id_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return natgw_id_arg(c, id);
}

int fsm__natgw_release(struct fsm_ctx *c, const struct fsm_rec *r)
{
    char subnets[SUBNETS_MAX][FSM_ID_SIZE];
    const char *id = fsm__rec_s(r, "NATGWID");
    unsigned n = fsm__rec_list(r, "SubnetIDs", subnets, SUBNETS_MAX);
    struct fsm_ids l = {NULL, 0, 0};
    int rc = 0;

    for (unsigned i = 0; rc == 0 && i < n; i++) {
        rc = fsm__net_unlink(c, 'w', subnets[i], id);
    }
    if (rc == 0) {
        rc = fsm__net_ids(c, 'C', id, &l);
    }
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        rc = fsm__res_drop(c, l.v[i]);
        if (rc == 0) {
            rc = fsm__net_unlink(c, 'C', id, l.v[i]);
        }
    }
    fsm__ids_free(&l);
    if (rc == 0) {
        rc = fsm__natwl_gw_release(c, id); /* natwl.c */
    }
    return rc;
}

int fsm__natgw_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(natgw_id_arg(c, id));
    fsm__rec_init(&r);
    rc = fsm__net_load(c, NATGW_PREFIX, "NAT gateway", id, &r);
    if (rc == 0) {
        rc = fsm__if_revision(c, &r);
    }
    if (rc == 0) {
        rc = fsm__gw_delete(c, id, &r);
    }
    fsm__rec_free(&r);
    return rc;
}

/* ---- rules ---- */

struct rule_args
{
    char gw[FSM_ID_SIZE];
    char name[FSM_NAME_SIZE];
    char proto[8];
    char eip_port[16], priv_port[16];
    char ip[FSM_IP_STR];
    unsigned lo, hi, plo, phi;
    fsm_u128 addr;
};

static int port_arg(struct fsm_ctx *c,
                    const char *key,
                    char *s,
                    unsigned *lo,
                    unsigned *hi)
{
    TRY(fsm__arg_str(c, key, 1, 15, s, NULL));
    if (fsm__port_range(s, lo, hi) != 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': '%s' is not a port "
                           "(1..65535) or a range LOW-HIGH",
                           key, s);
    }
    /* canonical: "80", "8000-8010" */
    if (*lo == *hi) {
        snprintf(s, 16, "%u", *lo);
    } else {
        snprintf(s, 16, "%u-%u", *lo, *hi);
    }
    return 0;
}

static int rule_args(struct fsm_ctx *c, struct rule_args *a)
{
    static const char *const protos[] = {"TCP", "UDP", NULL};
    int fam;

    TRY(fsm__arg_str(c, "NATGWID", 1, FSM_ID_SIZE - 1, a->gw, NULL));
    TRY(fsm__name_arg(c, a->name));
    TRY(fsm__word_arg(c, "Protocol", protos, NULL, a->proto, sizeof a->proto));
    TRY(port_arg(c, "EIPPort", a->eip_port, &a->lo, &a->hi));
    TRY(port_arg(c, "PrivatePort", a->priv_port, &a->plo, &a->phi));
    if (a->phi - a->plo != a->hi - a->lo) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'PrivatePort': '%s' is not as "
                           "wide as EIPPort '%s'",
                           a->priv_port, a->eip_port);
    }
    TRY(fsm__arg_str(c, "PrivateIP", 1, FSM_IP_STR - 1, a->ip, NULL));
    if (fsm__ip_parse(a->ip, &fam, &a->addr) != 0 || fam != 4) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'PrivateIP': '%s' is not an "
                           "IPv4 address",
                           a->ip);
    }
    fsm__ip_format(4, a->addr, a->ip);
    return 0;
}

int fsm__natrule_create_check(struct fsm_ctx *c)
{
    struct rule_args a;

    return rule_args(c, &a);
}

/* 161 if a rule of the gateway overlaps (@a's protocol, EIP ports). */
struct overlap
{
    struct fsm_ctx *c;
    const struct rule_args *a;
    struct fsm_rec r;
    unsigned n;
};

static int overlap_fn(void *arg, const char *id)
{
    struct overlap *o = arg;
    struct fsm_ctx *c = o->c;
    unsigned lo, hi;
    int rc;

    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), &o->r);
    if (rc == YH_ENOTFOUND) {
        return 0;
    }
    TRY(rc);
    o->n++;
    if (strcmp(fsm__rec_s(&o->r, "Protocol"), o->a->proto) != 0 ||
        fsm__port_range(fsm__rec_s(&o->r, "EIPPort"), &lo, &hi) != 0) {
        return 0;
    }
    if (lo <= o->a->hi && o->a->lo <= hi) {
        return fsm__reject(c, YH_EEXIST,
                           "%s EIP port %s overlaps rule '%s' (%s %s)",
                           o->a->proto, o->a->eip_port, id, o->a->proto,
                           fsm__rec_s(&o->r, "EIPPort"));
    }
    return 0;
}

/* 121 unless @addr is inside one of the gateway's subnets. */
static int in_served(struct fsm_ctx *c,
                     const struct fsm_rec *gw,
                     const struct rule_args *a)
{
    char subnets[SUBNETS_MAX][FSM_ID_SIZE], why[160];
    unsigned n = fsm__rec_list(gw, "SubnetIDs", subnets, SUBNETS_MAX);
    struct fsm_rec s;
    int rc = 0, found = 0;

    fsm__rec_init(&s);
    for (unsigned i = 0; rc == 0 && i < n && !found; i++) {
        struct fsm_cidr net;
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, subnets[i],
                           strlen(subnets[i]), &s);
        if (rc == YH_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc == 0 && fsm__cidr_parse(fsm__rec_s(&s, "Network"), &net, why,
                                       sizeof why) == 0) {
            found = fsm__cidr_has_ip(&net, 4, a->addr);
        }
    }
    fsm__rec_free(&s);
    if (rc == 0 && !found) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'PrivateIP': %s is in no subnet "
                         "served by '%s'",
                         a->ip, a->gw);
    }
    return rc;
}

int fsm__natrule_create_apply(struct fsm_ctx *c)
{
    struct rule_args a;
    struct overlap o;
    struct fsm_rec gw, r;
    char id[FSM_ID_SIZE];
    int rc;

    TRY(rule_args(c, &a));
    memset(&o, 0, sizeof o);
    o.c = c;
    o.a = &a;
    fsm__rec_init(&o.r);
    fsm__rec_init(&gw);
    fsm__rec_init(&r);
    rc = fsm__gw_load(c, NATGW_PREFIX, "NAT gateway", a.gw, &gw);
    if (rc == 0) {
        rc = in_served(c, &gw, &a);
    }
    if (rc == 0) {
        rc = fsm__net_walk(c->f, c->txn, 'C', a.gw, overlap_fn, &o);
    }
    if (rc == 0 && o.n >= RULES_PER_GW) {
        rc = fsm__reject(c, YH_EQUOTA,
                         "quota exceeded: NAT gateway '%s' has %d rules", a.gw,
                         RULES_PER_GW);
    }
    if (rc == 0) {
        rc = fsm__new_id(c, RULE_PREFIX, id);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_s(&r, "RuleID", id);
    fsm__rec_set_s(&r, "ResourceType", "NATGWRule");
    fsm__rec_set_s(&r, "TenantID", fsm__rec_s(&gw, "TenantID"));
    fsm__rec_set_s(&r, "NATGWID", a.gw);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_s(&r, "Protocol", a.proto);
    fsm__rec_set_s(&r, "EIPPort", a.eip_port);
    fsm__rec_set_s(&r, "PrivateIP", a.ip);
    fsm__rec_set_s(&r, "PrivatePort", a.priv_port);
    fsm__rec_set_s(&r, "State", "Available");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    rc = fsm__net_link(c, 'C', a.gw, id);
    if (rc == 0) {
        fsm__rec_set_i(&gw, "RuleCount", fsm__rec_i(&gw, "RuleCount") + 1);
        fsm__rec_set_i(&gw, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_RES, a.gw, strlen(a.gw), &gw);
    }
    if (rc == 0) {
        rc = fsm__concern(c, a.gw); /* its host gets the rule */
    }
    if (rc == 0) {
        rc = fsm__net_save(c, id, &r);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "RuleID"), id);
    }
out:
    fsm__rec_free(&o.r);
    fsm__rec_free(&gw);
    fsm__rec_free(&r);
    return rc;
}

int fsm__natrule_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "RuleID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__natrule_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], gw[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__natrule_delete_check(c));
    fsm__arg_str(c, "RuleID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&r);
    rc = fsm__net_load(c, RULE_PREFIX, "NAT rule", id, &r);
    if (rc == 0) {
        rc = fsm__if_revision(c, &r);
    }
    if (rc == 0) {
        snprintf(gw, sizeof gw, "%s", fsm__rec_s(&r, "NATGWID"));
        rc = fsm__net_unlink(c, 'C', gw, id);
    }
    if (rc == 0) {
        rc = fsm__count_add(c, gw, "RuleCount", -1);
    }
    if (rc == 0) {
        rc = fsm__concern(c, gw);
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
