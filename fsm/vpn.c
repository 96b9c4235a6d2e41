/* IPsec VPN: VPN gateways ("vpngw-"), remote gateways ("remotevpngw-") and
 * the connections between them ("vpnconn-").
 *
 * A VPN gateway is a VPC's IPsec endpoint (one per VPC) with an EIP given
 * at creation (bound with BindResourceType "VPNGateway"; UnBindEIP refuses
 * it while the gateway exists). It is a billed gateway resource (gw.c):
 * price spec and quota "VPNGateway". A remote gateway is the peer's public
 * address (a global unicast IPv4 or IPv6 address). A connection joins a
 * VPN gateway and a remote gateway of the same tenant (one connection per
 * pair), carrying subnets of the gateway's VPC (LocalSubnetIDs) to the
 * peer's networks (RemoteCIDRs: never overlapping the VPC's networks nor
 * each other), with its IKE and IPsec parameters and a pre-shared key.
 *
 * The key is kept in the internal field "_PreSharedKey": no Describe, oplog
 * record or agent spec shows it; DescribeVPNConnection answers
 * PreSharedKey "******". Gateways with connections cannot be deleted
 * (delete the connections first); the billing purge of a VPN gateway
 * deletes its connections. Rows: "C" \0 VPNGatewayID \0 ConnID, "C" \0
 * RemoteVPNGatewayID \0 ConnID, "w" \0 SubnetID \0 ConnID (a local subnet
 * cannot be deleted while a connection carries it). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define VPNGW_PREFIX "vpngw"
#define REMOTE_PREFIX "remotevpngw"
#define CONN_PREFIX "vpnconn"
#define SUBNETS_MAX 20
#define CIDRS_MAX 20
#define PSK_MIN 8
#define PSK_MAX 128
#define PSK_MASK "******"

static int64_t now_s(const struct fsm_ctx *c)
{
    return (int64_t)(c->time_ns / 1000000000u);
}

/* ---- VPN gateways ---- */

struct vpngw_args
{
    char vpc[FSM_ID_SIZE];
    char eip[FSM_ID_SIZE];
    char name[FSM_NAME_SIZE];
};

static int vpngw_args(struct fsm_ctx *c, struct vpngw_args *a)
{
    TRY(fsm__arg_str(c, "VPCID", 1, FSM_ID_SIZE - 1, a->vpc, NULL));
    TRY(fsm__arg_str(c, "EIPID", 1, FSM_ID_SIZE - 1, a->eip, NULL));
    return fsm__name_arg(c, a->name);
}

int fsm__vpngw_create_check(struct fsm_ctx *c)
{
    struct vpngw_args a;
    char tenant[FSM_ID_SIZE], ct[16];
    int64_t q;

    TRY(vpngw_args(c, &a));
    TRY(fsm__charge_args(c, ct, &q));
    return fsm__owner_arg(c, tenant);
}

static int vpngw_fn(void *arg, const char *id)
{
    if (strncmp(id, VPNGW_PREFIX "-", sizeof VPNGW_PREFIX) == 0) {
        snprintf(arg, FSM_ID_SIZE, "%s", id);
        return 1;
    }
    return 0;
}

int fsm__vpngw_create_apply(struct fsm_ctx *c)
{
    const struct fsm_gw_type *t = fsm__gw_type("VPNGateway");
    struct vpngw_args a;
    struct fsm_gw_new g;
    struct fsm_rec vpc, e, r;
    char id[FSM_ID_SIZE], other[FSM_ID_SIZE] = "";
    int rc;

    TRY(vpngw_args(c, &a));
    TRY(fsm__gw_prepare(c, t, &g));
    fsm__rec_init(&vpc);
    fsm__rec_init(&e);
    fsm__rec_init(&r);
    rc = fsm__vpc_of(c, a.vpc, g.tenant, &vpc);
    if (rc == 0) {
        rc = fsm__net_walk(c->f, c->txn, 'W', a.vpc, vpngw_fn, other);
        rc = rc == 1 ? 0 : rc;
    }
    if (rc == 0 && other[0] != '\0') {
        rc = fsm__reject(c, YH_EEXIST, "VPC '%s' already has VPN gateway '%s'",
                         a.vpc, other);
    }
    if (rc == 0) {
        rc = fsm__eip_usable(c, a.eip, &e);
    }
    if (rc == 0) {
        rc = fsm__eip_free_for(c, "EIPID", a.eip, &e, g.tenant,
                               "the VPN gateway");
    }
    if (rc == 0) {
        rc = fsm__gw_begin(c, t, &g, a.vpc, id, &r);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_i(&r, "ConnectionCount", 0);
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    rc = fsm__net_save(c, id, &r);
    if (rc == 0) {
        rc = fsm__eip_bind_write(c, a.eip, &e, id, t->type);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "VPNGatewayID"), id);
    }
out:
    fsm__rec_free(&vpc);
    fsm__rec_free(&e);
    fsm__rec_free(&r);
    return rc;
}

struct vpngw_desc
{
    char vpc[FSM_ID_SIZE];
    int rc;
};

static int vpngw_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    const struct vpngw_desc *q = arg;

    return fsm__gw_live(c, r, NULL) &&
           (q->vpc[0] == '\0' || strcmp(fsm__rec_s(r, "VPCID"), q->vpc) == 0);
}

static void vpngw_pack(struct fsm_ctx *c,
                       msgpack_packer *pk,
                       const struct fsm_rec *r,
                       void *arg)
{
    struct vpngw_desc *q = arg;
    int rc;

    fsm__rec_pack_more(pk, r, 2);
    rc = fsm__gw_eip_pack(c, pk, fsm__rec_s(r, "VPNGatewayID"));
    if (rc != 0 && q->rc == 0) {
        q->rc = rc;
    }
}

int fsm__vpngw_describe(struct fsm_ctx *c)
{
    struct vpngw_desc q;
    struct fsm_desc d = {FSM_TBL_RES, VPNGW_PREFIX "-", "VPNGatewayIDs",
                         0,           vpngw_keep,       vpngw_pack,
                         &q};

    memset(&q, 0, sizeof q);
    TRY(fsm__arg_str(c, "VPCID", 0, FSM_ID_SIZE - 1, q.vpc, NULL));
    TRY(fsm__describe(c, &d));
    return q.rc;
}

int fsm__vpngw_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "VPNGatewayID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__vpngw_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__vpngw_delete_check(c));
    fsm__arg_str(c, "VPNGatewayID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&r);
    rc = fsm__net_load(c, VPNGW_PREFIX, "VPN gateway", id, &r);
    if (rc == 0) {
        rc = fsm__if_revision(c, &r);
    }
    if (rc == 0) {
        rc = fsm__net_users(c, 'C', id, "VPN gateway");
    }
    if (rc == 0) {
        rc = fsm__gw_delete(c, id, &r);
    }
    fsm__rec_free(&r);
    return rc;
}

/* ---- remote gateways ---- */

/* A global unicast address: not unspecified, loopback, private, shared,
 * link-local, multicast or reserved. */
static int is_public(int fam, fsm_u128 a)
{
    static const struct
    {
        int fam;
        const char *net;
    } reserved[] = {
        {4, "0.0.0.0/8"},      {4, "10.0.0.0/8"},     {4, "100.64.0.0/10"},
        {4, "127.0.0.0/8"},    {4, "169.254.0.0/16"}, {4, "172.16.0.0/12"},
        {4, "192.168.0.0/16"}, {4, "224.0.0.0/3"},    {6, "::/8"},
        {6, "fc00::/7"},       {6, "fe80::/10"},      {6, "ff00::/8"},
    };
    char why[160];

    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        struct fsm_cidr n;
        if (reserved[i].fam == fam &&
            fsm__cidr_parse(reserved[i].net, &n, why, sizeof why) == 0 &&
            fsm__cidr_has_ip(&n, fam, a)) {
            return 0;
        }
    }
    return 1;
}

struct remote_args
{
    char name[FSM_NAME_SIZE];
    char ip[FSM_IP_STR];
};

static int remote_args(struct fsm_ctx *c, struct remote_args *a)
{
    fsm_u128 v;
    int fam;

    TRY(fsm__name_arg(c, a->name));
    TRY(fsm__arg_str(c, "IP", 1, FSM_IP_STR - 1, a->ip, NULL));
    if (fsm__ip_parse(a->ip, &fam, &v) != 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'IP': '%s' is not an address",
                           a->ip);
    }
    if (!is_public(fam, v)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'IP': %s is not a public "
                           "address",
                           a->ip);
    }
    fsm__ip_format(fam, v, a->ip);
    return 0;
}

int fsm__remote_create_check(struct fsm_ctx *c)
{
    struct remote_args a;
    char tenant[FSM_ID_SIZE];

    TRY(remote_args(c, &a));
    return fsm__owner_arg(c, tenant);
}

int fsm__remote_create_apply(struct fsm_ctx *c)
{
    struct remote_args a;
    char tenant[FSM_ID_SIZE], id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(remote_args(c, &a));
    TRY(fsm__owner_arg(c, tenant));
    TRY(fsm__new_id(c, REMOTE_PREFIX, id));
    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "RemoteVPNGatewayID", id);
    fsm__rec_set_s(&r, "ResourceType", "RemoteVPNGateway");
    fsm__rec_set_s(&r, "TenantID", tenant);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_s(&r, "IP", a.ip);
    fsm__rec_set_i(&r, "ConnectionCount", 0);
    fsm__rec_set_s(&r, "State", "Available");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    rc = fsm__net_save(c, id, &r);
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "RemoteVPNGatewayID"), id);
    }
    fsm__rec_free(&r);
    return rc;
}

int fsm__remote_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {
        FSM_TBL_RES, REMOTE_PREFIX "-", "RemoteVPNGatewayIDs", 0, NULL, NULL,
        NULL};

    return fsm__describe(c, &d);
}

int fsm__remote_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "RemoteVPNGatewayID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__remote_delete_apply(struct fsm_ctx *c)
{
    TRY(fsm__remote_delete_check(c));
    return fsm__net_delete_unused(c, "RemoteVPNGatewayID", REMOTE_PREFIX,
                                  "remote VPN gateway");
}

/* ---- connections ---- */

struct conn_args
{
    char gw[FSM_ID_SIZE], remote[FSM_ID_SIZE];
    char name[FSM_NAME_SIZE];
    char subnets[SUBNETS_MAX][FSM_ID_SIZE];
    unsigned n_subnets;
    char cidrs[CIDRS_MAX][FSM_ID_SIZE];
    struct fsm_cidr nets[CIDRS_MAX];
    unsigned n_cidrs;
    char ike_version[8], ike_enc[16], ike_auth[16], ike_dh[8];
    char ipsec_proto[8], ipsec_enc[16], ipsec_auth[16], ipsec_pfs[16];
    int64_t ike_life, ipsec_life;
    char psk[PSK_MAX + 1];
};

static int psk_arg(struct fsm_ctx *c, char out[PSK_MAX + 1])
{
    size_t n;

    TRY(fsm__arg_str(c, "PreSharedKey", 1, PSK_MAX, out, NULL));
    n = strlen(out);
    if (n < PSK_MIN) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'PreSharedKey': %d..%d "
                           "characters",
                           PSK_MIN, PSK_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)out[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            return fsm__reject(c, YH_EINVAL,
                               "invalid parameter 'PreSharedKey': printable "
                               "ASCII without spaces");
        }
    }
    return 0;
}

static int conn_args(struct fsm_ctx *c, struct conn_args *a)
{
    static const char *const versions[] = {"IKEv1", "IKEv2", NULL};
    static const char *const encs[] = {"aes128", "aes192", "aes256", "3des",
                                       NULL};
    static const char *const auths[] = {"sha1",   "sha256", "sha384",
                                        "sha512", "md5",    NULL};
    static const char *const dhs[] = {"1",  "2",  "5",  "14", "15",
                                      "16", "19", "20", "21", NULL};
    static const char *const pfss[] = {"disable", "1",  "2",  "5",  "14", "15",
                                       "16",      "19", "20", "21", NULL};
    static const char *const protos[] = {"esp", "ah", NULL};
    char why[160];

    TRY(fsm__arg_str(c, "VPNGatewayID", 1, FSM_ID_SIZE - 1, a->gw, NULL));
    TRY(fsm__arg_str(c, "RemoteVPNGatewayID", 1, FSM_ID_SIZE - 1, a->remote,
                     NULL));
    TRY(fsm__name_arg(c, a->name));
    TRY(fsm__arg_list(c, "LocalSubnetIDs", SUBNETS_MAX, a->subnets,
                      &a->n_subnets));
    if (a->n_subnets == 0) {
        return fsm__reject(c, YH_EMISSING,
                           "missing parameter 'LocalSubnetIDs'");
    }
    for (unsigned i = 0; i < a->n_subnets; i++) {
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(a->subnets[i], a->subnets[j]) == 0) {
                return fsm__reject(c, YH_EINVAL,
                                   "invalid parameter 'LocalSubnetIDs': '%s' "
                                   "given twice",
                                   a->subnets[i]);
            }
        }
    }
    TRY(fsm__arg_list(c, "RemoteCIDRs", CIDRS_MAX, a->cidrs, &a->n_cidrs));
    if (a->n_cidrs == 0) {
        return fsm__reject(c, YH_EMISSING, "missing parameter 'RemoteCIDRs'");
    }
    for (unsigned i = 0; i < a->n_cidrs; i++) {
        if (fsm__cidr_parse(a->cidrs[i], &a->nets[i], why, sizeof why) != 0) {
            return fsm__reject(c, YH_EINVAL,
                               "invalid parameter 'RemoteCIDRs': %s", why);
        }
        fsm__cidr_format(&a->nets[i], a->cidrs[i]);
        for (unsigned j = 0; j < i; j++) {
            if (fsm__cidr_overlap(&a->nets[i], &a->nets[j])) {
                return fsm__reject(c, YH_EINVAL,
                                   "invalid parameter 'RemoteCIDRs': %s "
                                   "overlaps %s",
                                   a->cidrs[i], a->cidrs[j]);
            }
        }
    }
    TRY(fsm__word_arg(c, "IKEVersion", versions, "IKEv2", a->ike_version,
                      sizeof a->ike_version));
    TRY(fsm__word_arg(c, "IKEEncryption", encs, "aes128", a->ike_enc,
                      sizeof a->ike_enc));
    TRY(fsm__word_arg(c, "IKEAuth", auths, "sha256", a->ike_auth,
                      sizeof a->ike_auth));
    TRY(fsm__word_arg(c, "IKEDHGroup", dhs, "14", a->ike_dh, sizeof a->ike_dh));
    TRY(fsm__arg_int_or(c, "IKELifetime", 600, 604800, 86400, &a->ike_life));
    TRY(fsm__word_arg(c, "IPSecProtocol", protos, "esp", a->ipsec_proto,
                      sizeof a->ipsec_proto));
    TRY(fsm__word_arg(c, "IPSecEncryption", encs, "aes128", a->ipsec_enc,
                      sizeof a->ipsec_enc));
    TRY(fsm__word_arg(c, "IPSecAuth", auths, "sha256", a->ipsec_auth,
                      sizeof a->ipsec_auth));
    TRY(fsm__word_arg(c, "IPSecPFSDHGroup", pfss, "disable", a->ipsec_pfs,
                      sizeof a->ipsec_pfs));
    TRY(fsm__arg_int_or(c, "IPSecLifetime", 1200, 604800, 3600,
                        &a->ipsec_life));
    return psk_arg(c, a->psk);
}

/* Heap copy (the arguments are large); the key is wiped on free. */
static struct conn_args *conn_new(void)
{
    return calloc(1, sizeof(struct conn_args));
}

static void conn_free(struct conn_args *a)
{
    if (a != NULL) {
        OPENSSL_cleanse(a->psk, sizeof a->psk);
        free(a);
    }
}

int fsm__conn_create_check(struct fsm_ctx *c)
{
    struct conn_args *a = conn_new();
    int rc;

    if (a == NULL) {
        return YH_ENOMEM;
    }
    rc = conn_args(c, a);
    conn_free(a);
    return rc;
}

/* 121 if @n overlaps the VPC's network of its family. */
static int outside_vpc(struct fsm_ctx *c,
                       const struct fsm_rec *vpc,
                       const char *cidr,
                       const struct fsm_cidr *n)
{
    static const char *const fields[] = {"Network", "IPv6Network"};
    char why[160];

    for (int i = 0; i < 2; i++) {
        struct fsm_cidr v;
        const char *s = fsm__rec_s(vpc, fields[i]);
        if (s[0] == '\0' || fsm__cidr_parse(s, &v, why, sizeof why) != 0) {
            continue;
        }
        if (fsm__cidr_overlap(&v, n)) {
            return fsm__reject(c, YH_EINVAL,
                               "invalid parameter 'RemoteCIDRs': %s overlaps "
                               "VPC '%s' (%s)",
                               cidr, fsm__rec_s(vpc, "VPCID"), s);
        }
    }
    return 0;
}

struct pair
{
    struct fsm_ctx *c;
    const char *remote;
    struct fsm_rec r;
    char found[FSM_ID_SIZE];
};

static int pair_fn(void *arg, const char *id)
{
    struct pair *p = arg;
    int rc =
        fsm__rec_load(p->c->f, p->c->txn, FSM_TBL_RES, id, strlen(id), &p->r);

    if (rc == YH_ENOTFOUND) {
        return 0;
    }
    TRY(rc);
    if (strcmp(fsm__rec_s(&p->r, "RemoteVPNGatewayID"), p->remote) == 0) {
        snprintf(p->found, sizeof p->found, "%s", id);
        return 1;
    }
    return 0;
}

int fsm__conn_create_apply(struct fsm_ctx *c)
{
    struct conn_args *a = conn_new();
    struct fsm_rec gw, remote, vpc, s, r;
    struct pair p;
    char id[FSM_ID_SIZE];
    const char *vpc_id;
    int rc;

    if (a == NULL) {
        return YH_ENOMEM;
    }
    memset(&p, 0, sizeof p);
    fsm__rec_init(&p.r);
    fsm__rec_init(&gw);
    fsm__rec_init(&remote);
    fsm__rec_init(&vpc);
    fsm__rec_init(&s);
    fsm__rec_init(&r);
    rc = conn_args(c, a);
    if (rc == 0) {
        rc = fsm__gw_load(c, VPNGW_PREFIX, "VPN gateway", a->gw, &gw);
    }
    if (rc == 0) {
        rc = fsm__net_load(c, REMOTE_PREFIX, "remote VPN gateway", a->remote,
                           &remote);
    }
    if (rc == 0 && strcmp(fsm__rec_s(&gw, "TenantID"),
                          fsm__rec_s(&remote, "TenantID")) != 0) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'RemoteVPNGatewayID': '%s' "
                         "belongs to another tenant than '%s'",
                         a->remote, a->gw);
    }
    vpc_id = fsm__rec_s(&gw, "VPCID");
    if (rc == 0) {
        rc = fsm__vpc_of(c, vpc_id, NULL, &vpc);
    }
    for (unsigned i = 0; rc == 0 && i < a->n_subnets; i++) {
        rc = fsm__subnet_in(c, "LocalSubnetIDs", a->subnets[i], vpc_id, &s);
    }
    for (unsigned i = 0; rc == 0 && i < a->n_cidrs; i++) {
        rc = outside_vpc(c, &vpc, a->cidrs[i], &a->nets[i]);
    }
    if (rc == 0) {
        p.c = c;
        p.remote = a->remote;
        rc = fsm__net_walk(c->f, c->txn, 'C', a->gw, pair_fn, &p);
        rc = rc == 1 ? 0 : rc;
    }
    if (rc == 0 && p.found[0] != '\0') {
        rc = fsm__reject(c, YH_EEXIST,
                         "VPN connection '%s' already joins '%s' and '%s'",
                         p.found, a->gw, a->remote);
    }
    if (rc == 0) {
        rc = fsm__new_id(c, CONN_PREFIX, id);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_s(&r, "VPNConnectionID", id);
    fsm__rec_set_s(&r, "ResourceType", "VPNConnection");
    fsm__rec_set_s(&r, "TenantID", fsm__rec_s(&gw, "TenantID"));
    fsm__rec_set_s(&r, "Name", a->name);
    fsm__rec_set_s(&r, "VPNGatewayID", a->gw);
    fsm__rec_set_s(&r, "RemoteVPNGatewayID", a->remote);
    fsm__rec_set_s(&r, "VPCID", vpc_id);
    fsm__rec_set_l(&r, "LocalSubnetIDs", a->subnets, a->n_subnets);
    fsm__rec_set_l(&r, "RemoteCIDRs", a->cidrs, a->n_cidrs);
    fsm__rec_set_s(&r, "IKEVersion", a->ike_version);
    fsm__rec_set_s(&r, "IKEEncryption", a->ike_enc);
    fsm__rec_set_s(&r, "IKEAuth", a->ike_auth);
    fsm__rec_set_s(&r, "IKEDHGroup", a->ike_dh);
    fsm__rec_set_i(&r, "IKELifetime", a->ike_life);
    fsm__rec_set_s(&r, "IPSecProtocol", a->ipsec_proto);
    fsm__rec_set_s(&r, "IPSecEncryption", a->ipsec_enc);
    fsm__rec_set_s(&r, "IPSecAuth", a->ipsec_auth);
    fsm__rec_set_s(&r, "IPSecPFSDHGroup", a->ipsec_pfs);
    fsm__rec_set_i(&r, "IPSecLifetime", a->ipsec_life);
    fsm__rec_set_s(&r, "_PreSharedKey", a->psk);
    fsm__rec_set_s(&r, "State", "Available");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    rc = fsm__net_link(c, 'C', a->gw, id);
    if (rc == 0) {
        rc = fsm__net_link(c, 'C', a->remote, id);
    }
    for (unsigned i = 0; rc == 0 && i < a->n_subnets; i++) {
        rc = fsm__net_link(c, 'w', a->subnets[i], id);
    }
    if (rc == 0) {
        rc = fsm__count_add(c, a->gw, "ConnectionCount", 1);
    }
    if (rc == 0) {
        rc = fsm__concern(c, a->gw); /* its host's spec */
    }
    if (rc == 0) {
        rc = fsm__count_add(c, a->remote, "ConnectionCount", 1);
    }
    if (rc == 0) {
        rc = fsm__net_save(c, id, &r);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "VPNConnectionID"), id);
    }
out:
    for (unsigned i = 0; i < r.n; i++) {
        if (strcmp(r.f[i].k, "_PreSharedKey") == 0 && r.f[i].s != NULL) {
            OPENSSL_cleanse(r.f[i].s, strlen(r.f[i].s));
        }
    }
    fsm__rec_free(&p.r);
    fsm__rec_free(&gw);
    fsm__rec_free(&remote);
    fsm__rec_free(&vpc);
    fsm__rec_free(&s);
    fsm__rec_free(&r);
    conn_free(a);
    return rc;
}

struct conn_desc
{
    char gw[FSM_ID_SIZE]; /* VPNGatewayID filter */
};

static int conn_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    const struct conn_desc *q = arg;

    (void)c;
    return q->gw[0] == '\0' ||
           strcmp(fsm__rec_s(r, "VPNGatewayID"), q->gw) == 0;
}

static void conn_pack(struct fsm_ctx *c,
                      msgpack_packer *pk,
                      const struct fsm_rec *r,
                      void *arg)
{
    (void)c;
    (void)arg;
    fsm__rec_pack_more(pk, r, 1);
    yh_mp_pack_kv_str(pk, "PreSharedKey", PSK_MASK);
}

int fsm__conn_describe(struct fsm_ctx *c)
{
    struct conn_desc q;
    struct fsm_desc d = {FSM_TBL_RES, CONN_PREFIX "-", "VPNConnectionIDs",
                         0,           conn_keep,       conn_pack,
                         &q};

    TRY(fsm__arg_str(c, "VPNGatewayID", 0, FSM_ID_SIZE - 1, q.gw, NULL));
    return fsm__describe(c, &d);
}

/* Delete connection @id (record @r) and its rows; @count_gw: lower the VPN
 * gateway's ConnectionCount (not when the gateway itself goes). */
static int conn_drop(struct fsm_ctx *c,
                     const char *id,
                     const struct fsm_rec *r,
                     int count_gw)
{
    char subnets[SUBNETS_MAX][FSM_ID_SIZE];
    unsigned n = fsm__rec_list(r, "LocalSubnetIDs", subnets, SUBNETS_MAX);
    const char *gw = fsm__rec_s(r, "VPNGatewayID");
    const char *remote = fsm__rec_s(r, "RemoteVPNGatewayID");

    for (unsigned i = 0; i < n; i++) {
        TRY(fsm__net_unlink(c, 'w', subnets[i], id));
    }
    TRY(fsm__net_unlink(c, 'C', gw, id));
    TRY(fsm__net_unlink(c, 'C', remote, id));
    if (count_gw) {
        TRY(fsm__count_add(c, gw, "ConnectionCount", -1));
        TRY(fsm__concern(c, gw));
    }
    TRY(fsm__count_add(c, remote, "ConnectionCount", -1));
    return fsm__res_drop(c, id);
}

int fsm__conn_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "VPNConnectionID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__conn_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__conn_delete_check(c));
    fsm__arg_str(c, "VPNConnectionID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&r);
    rc = fsm__net_load(c, CONN_PREFIX, "VPN connection", id, &r);
    if (rc == 0) {
        rc = fsm__if_revision(c, &r);
    }
    if (rc == 0) {
        rc = conn_drop(c, id, &r, 1);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    fsm__rec_free(&r);
    return rc;
}

int fsm__vpngw_release(struct fsm_ctx *c, const struct fsm_rec *r)
{
    const char *id = fsm__rec_s(r, "VPNGatewayID");
    struct fsm_ids l = {NULL, 0, 0};
    struct fsm_rec k;
    int rc;

    fsm__rec_init(&k);
    rc = fsm__net_ids(c, 'C', id, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, l.v[i], strlen(l.v[i]),
                           &k);
        if (rc == 0) {
            rc = conn_drop(c, l.v[i], &k, 0);
        } else if (rc == YH_ENOTFOUND) {
            rc = fsm__net_unlink(c, 'C', id, l.v[i]);
        }
    }
    fsm__rec_free(&k);
    fsm__ids_free(&l);
    return rc;
}
