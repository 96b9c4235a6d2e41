/* Load balancers ("lb-"), their vservers ("vserver-") and backends
 * ("rs-").
 *
 * A load balancer lives in a subnet of a VPC and holds a private address
 * of it (PrivateIP, from IPAM like a NIC); an External one may have an EIP
 * (BindEIP), an Internal one never. It is a billed gateway resource
 * (gw.c): price spec and quota "LB". A vserver listens on a FrontendPort
 * with a Protocol (TCP, UDP, HTTP, HTTPS; TCP, HTTP and HTTPS share the
 * TCP ports) and spreads connections over its backends by Method
 * (RoundRobin, LeastConn, SourceHash), checking them by HealthCheckType
 * (Port: connect; Path: an HTTP GET of Path, HTTP/HTTPS only) every
 * HealthCheckInterval seconds, HealthCheckThreshold failures marking one
 * down. HTTPS needs a certificate (SSLID, cert.c). A backend (RS) is a
 * machine of the load balancer's VPC and tenant with a Port and a Weight
 * (1..100); a machine and port appear once per vserver.
 *
 * At most 20 vservers per load balancer and 100 backends per vserver.
 * Rows: "C" \0 LBID \0 VServerID, "C" \0 VServerID \0 RSID, "C" \0 SSLID \0
 * VServerID (the certificate is in use), "Q" \0 VMID \0 RSID (a purged
 * machine's backends go with it). Deleting a vserver deletes its
 * backends; deleting a load balancer deletes its vservers, gives its
 * address back and unbinds its EIP. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define LB_PREFIX "lb"
#define VS_PREFIX "vserver"
#define RS_PREFIX "rs"
#define VS_PER_LB 20
#define RS_PER_VS 100
#define PATH_MAX_LEN 255

static int64_t now_s(const struct fsm_ctx *c)
{
    return (int64_t)(c->time_ns / 1000000000u);
}

/* ---- CreateLB ---- */

struct lb_args
{
    char vpc[FSM_ID_SIZE];
    char subnet[FSM_ID_SIZE];
    char name[FSM_NAME_SIZE];
    char type[16];
    char ip[FSM_IP_STR];
};

static int lb_args(struct fsm_ctx *c, struct lb_args *a)
{
    static const char *const types[] = {"External", "Internal", NULL};

    TRY(fsm__arg_str(c, "VPCID", 1, FSM_ID_SIZE - 1, a->vpc, NULL));
    TRY(fsm__arg_str(c, "SubnetID", 1, FSM_ID_SIZE - 1, a->subnet, NULL));
    TRY(fsm__name_arg(c, a->name));
    TRY(fsm__word_arg(c, "LBType", types, "External", a->type, sizeof a->type));
    return fsm__arg_str(c, "PrivateIP", 0, FSM_IP_STR - 1, a->ip, NULL);
}

int fsm__lb_create_check(struct fsm_ctx *c)
{
    struct lb_args a;
    char tenant[FSM_ID_SIZE], ct[16];
    int64_t q;

    TRY(lb_args(c, &a));
    TRY(fsm__charge_args(c, ct, &q));
    return fsm__owner_arg(c, tenant);
}

int fsm__lb_create_apply(struct fsm_ctx *c)
{
    const struct fsm_gw_type *t = fsm__gw_type("LB");
    struct lb_args a;
    struct fsm_gw_new g;
    struct fsm_rec vpc, s, r;
    struct fsm_cidr net;
    char id[FSM_ID_SIZE], ip[FSM_IP_STR], why[160];
    fsm_u128 addr = 0;
    int rc;

    TRY(lb_args(c, &a));
    TRY(fsm__gw_prepare(c, t, &g));
    fsm__rec_init(&vpc);
    fsm__rec_init(&s);
    fsm__rec_init(&r);
    rc = fsm__vpc_of(c, a.vpc, g.tenant, &vpc);
    if (rc == 0) {
        rc = fsm__subnet_in(c, "SubnetID", a.subnet, a.vpc, &s);
    }
    if (rc == 0 && fsm__cidr_parse(fsm__rec_s(&s, "Network"), &net, why,
                                   sizeof why) != 0) {
        snprintf(c->f->errmsg, sizeof c->f->errmsg, "subnet '%s' is corrupt",
                 a.subnet);
        rc = YH_ECORRUPT;
    }
    if (rc == 0) {
        rc = fsm__ipam_pick(c, a.subnet, &net, a.ip, &addr);
    }
    if (rc == 0) {
        rc = fsm__gw_begin(c, t, &g, a.vpc, id, &r);
    }
    if (rc == 0) {
        rc = fsm__ipam_take(c, a.subnet, 4, addr, id);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__ip_format(4, addr, ip);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_s(&r, "SubnetID", a.subnet);
    fsm__rec_set_s(&r, "LBType", a.type);
    fsm__rec_set_s(&r, "PrivateIP", ip);
    fsm__rec_set_i(&r, "VServerCount", 0);
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    rc = fsm__net_link(c, 'w', a.subnet, id);
    if (rc == 0) {
        rc = fsm__net_save(c, id, &r);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "LBID"), id);
        yh_mp_pack_str(fsm__field(c, "PrivateIP"), ip);
    }
out:
    fsm__rec_free(&vpc);
    fsm__rec_free(&s);
    fsm__rec_free(&r);
    return rc;
}

/* ---- DescribeLB ---- */

struct lb_desc
{
    char vpc[FSM_ID_SIZE]; /* VPCID filter */
    int rc;                /* first failure of a pack */
};

static int lb_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    const struct lb_desc *q = arg;

    return fsm__gw_live(c, r, NULL) &&
           (q->vpc[0] == '\0' || strcmp(fsm__rec_s(r, "VPCID"), q->vpc) == 0);
}

static int vs_pack(struct fsm_ctx *c,
                   msgpack_packer *pk,
                   const struct fsm_rec *r,
                   void *arg)
{
    (void)arg;
    fsm__rec_pack_more(pk, r, 1);
    return fsm__children_pack(c, pk, "RSs", fsm__rec_s(r, "VServerID"), 0,
                              RS_PER_VS, NULL, NULL);
}

static void lb_pack(struct fsm_ctx *c,
                    msgpack_packer *pk,
                    const struct fsm_rec *r,
                    void *arg)
{
    struct lb_desc *q = arg;
    const char *id = fsm__rec_s(r, "LBID");
    int rc;

    fsm__rec_pack_more(pk, r, 3);
    rc = fsm__gw_eip_pack(c, pk, id);
    if (rc == 0) {
        rc = fsm__children_pack(c, pk, "VServers", id, 0, VS_PER_LB, vs_pack,
                                NULL);
    } else {
        fsm__children_pack(c, pk, "VServers", id, 0, 0, NULL, NULL);
    }
    if (rc != 0 && q->rc == 0) {
        q->rc = rc;
    }
}

int fsm__lb_describe(struct fsm_ctx *c)
{
    struct lb_desc q;
    struct fsm_desc d = {FSM_TBL_RES, LB_PREFIX "-", "LBIDs", 0,
                         lb_keep,     lb_pack,       &q};

    memset(&q, 0, sizeof q);
    TRY(fsm__arg_str(c, "VPCID", 0, FSM_ID_SIZE - 1, q.vpc, NULL));
    TRY(fsm__describe(c, &d));
    return q.rc;
}

/* ---- deletes ---- */

/* Delete backend @rs (record @r) and its rows; @count: lower its
 * vserver's RSCount. */
static int rs_drop(struct fsm_ctx *c,
                   const char *rs,
                   const struct fsm_rec *r,
                   int count)
{
    const char *vs = fsm__rec_s(r, "VServerID");

    TRY(fsm__net_unlink(c, 'C', vs, rs));
    TRY(fsm__net_unlink(c, 'Q', fsm__rec_s(r, "BindResourceID"), rs));
    if (count) {
        TRY(fsm__count_add(c, vs, "RSCount", -1));
        TRY(fsm__concern(c, fsm__rec_s(r, "LBID"))); /* its host's spec */
    }
    return fsm__res_drop(c, rs);
}

/* Delete vserver @vs (record @r), its backends and rows; @count: lower its
 * load balancer's VServerCount. */
static int vs_drop(struct fsm_ctx *c,
                   const char *vs,
                   const struct fsm_rec *r,
                   int count)
{
    struct fsm_ids l = {NULL, 0, 0};
    struct fsm_rec b;
    const char *ssl = fsm__rec_s(r, "SSLID");
    int rc;

    fsm__rec_init(&b);
    rc = fsm__net_ids(c, 'C', vs, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, l.v[i], strlen(l.v[i]),
                           &b);
        if (rc == 0) {
            rc = rs_drop(c, l.v[i], &b, 0);
        } else if (rc == YH_ENOTFOUND) {
            rc = fsm__net_unlink(c, 'C', vs, l.v[i]);
        }
    }
    fsm__rec_free(&b);
    fsm__ids_free(&l);
    if (rc == 0 && ssl[0] != '\0') {
        rc = fsm__net_unlink(c, 'C', ssl, vs);
        if (rc == 0) {
            rc = fsm__count_add(c, ssl, "VServerCount", -1);
        }
    }
    if (rc == 0) {
        rc = fsm__net_unlink(c, 'C', fsm__rec_s(r, "LBID"), vs);
    }
    if (rc == 0 && count) {
        rc = fsm__count_add(c, fsm__rec_s(r, "LBID"), "VServerCount", -1);
    }
    if (rc == 0 && count) {
        rc = fsm__concern(c, fsm__rec_s(r, "LBID"));
    }
    if (rc == 0) {
        rc = fsm__res_drop(c, vs);
    }
    return rc;
}

int fsm__lb_release(struct fsm_ctx *c, const struct fsm_rec *r)
{
    const char *id = fsm__rec_s(r, "LBID");
    const char *subnet = fsm__rec_s(r, "SubnetID");
    struct fsm_ids l = {NULL, 0, 0};
    struct fsm_rec v;
    fsm_u128 a;
    int fam, rc;

    fsm__rec_init(&v);
    rc = fsm__net_ids(c, 'C', id, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, l.v[i], strlen(l.v[i]),
                           &v);
        if (rc == 0) {
            rc = vs_drop(c, l.v[i], &v, 0);
        } else if (rc == YH_ENOTFOUND) {
            rc = fsm__net_unlink(c, 'C', id, l.v[i]);
        }
    }
    fsm__rec_free(&v);
    fsm__ids_free(&l);
    if (rc == 0 && fsm__ip_parse(fsm__rec_s(r, "PrivateIP"), &fam, &a) == 0) {
        rc = fsm__ipam_release(c, subnet, fam, a);
    }
    if (rc == 0) {
        rc = fsm__net_unlink(c, 'w', subnet, id);
    }
    return rc;
}

int fsm__lb_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "LBID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__lb_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__lb_delete_check(c));
    fsm__arg_str(c, "LBID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&r);
    rc = fsm__net_load(c, LB_PREFIX, "load balancer", id, &r);
    if (rc == 0) {
        rc = fsm__if_revision(c, &r);
    }
    if (rc == 0) {
        rc = fsm__gw_delete(c, id, &r);
    }
    fsm__rec_free(&r);
    return rc;
}

/* ---- vservers ---- */

struct vs_args
{
    char lb[FSM_ID_SIZE];
    char name[FSM_NAME_SIZE];
    char proto[8];
    char method[16];
    char hc[8];
    char path[PATH_MAX_LEN + 1];
    char ssl[FSM_ID_SIZE];
    int64_t port, interval, threshold;
};

static int vs_args(struct fsm_ctx *c, struct vs_args *a)
{
    static const char *const protos[] = {"TCP", "UDP", "HTTP", "HTTPS", NULL};
    static const char *const methods[] = {"RoundRobin", "LeastConn",
                                          "SourceHash", NULL};
    static const char *const hcs[] = {"Port", "Path", NULL};
    int http, has_path;

    TRY(fsm__arg_str(c, "LBID", 1, FSM_ID_SIZE - 1, a->lb, NULL));
    TRY(fsm__name_arg(c, a->name));
    TRY(fsm__word_arg(c, "Protocol", protos, NULL, a->proto, sizeof a->proto));
    TRY(fsm__arg_int(c, "FrontendPort", 1, 1, 65535, &a->port, NULL));
    TRY(fsm__word_arg(c, "Method", methods, "RoundRobin", a->method,
                      sizeof a->method));
    TRY(fsm__word_arg(c, "HealthCheckType", hcs, "Port", a->hc, sizeof a->hc));
    TRY(fsm__arg_str(c, "Path", 0, PATH_MAX_LEN, a->path, &has_path));
    TRY(fsm__arg_int_or(c, "HealthCheckInterval", 1, 3600, 5, &a->interval));
    TRY(fsm__arg_int_or(c, "HealthCheckThreshold", 1, 10, 3, &a->threshold));
    TRY(fsm__arg_str(c, "SSLID", 0, FSM_ID_SIZE - 1, a->ssl, NULL));
    http = a->proto[0] == 'H';
    if (strcmp(a->hc, "Path") == 0) {
        if (!http) {
            return fsm__reject(c, YH_EINVAL,
                               "invalid parameter 'HealthCheckType': Path "
                               "checks are for HTTP and HTTPS vservers");
        }
        if (!has_path || a->path[0] != '/') {
            return fsm__reject(c, YH_EINVAL,
                               "invalid parameter 'Path': an absolute path "
                               "('/...') for a Path check");
        }
    } else if (has_path) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'Path': only with "
                           "HealthCheckType Path");
    }
    if (strcmp(a->proto, "HTTPS") == 0 && a->ssl[0] == '\0') {
        return fsm__reject(c, YH_EMISSING,
                           "missing parameter 'SSLID' (HTTPS needs a "
                           "certificate)");
    }
    if (strcmp(a->proto, "HTTPS") != 0 && a->ssl[0] != '\0') {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'SSLID': only for HTTPS");
    }
    return 0;
}

int fsm__vs_create_check(struct fsm_ctx *c)
{
    struct vs_args a;

    return vs_args(c, &a);
}

/* 161 if a vserver of the load balancer has the port in the same port
 * space (UDP, or TCP for TCP/HTTP/HTTPS); counts them. */
struct port_use
{
    struct fsm_ctx *c;
    const struct vs_args *a;
    struct fsm_rec r;
    unsigned n;
};

static int port_fn(void *arg, const char *id)
{
    struct port_use *u = arg;
    struct fsm_ctx *c = u->c;
    int udp_a, udp_b, rc;

    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), &u->r);
    if (rc == YH_ENOTFOUND) {
        return 0;
    }
    TRY(rc);
    u->n++;
    udp_a = strcmp(u->a->proto, "UDP") == 0;
    udp_b = strcmp(fsm__rec_s(&u->r, "Protocol"), "UDP") == 0;
    if (udp_a == udp_b && fsm__rec_i(&u->r, "FrontendPort") == u->a->port) {
        return fsm__reject(c, YH_EEXIST,
                           "%s port %" PRId64 " is used by vserver '%s' (%s)",
                           udp_a ? "UDP" : "TCP", u->a->port, id,
                           fsm__rec_s(&u->r, "Protocol"));
    }
    return 0;
}

int fsm__vs_create_apply(struct fsm_ctx *c)
{
    struct vs_args a;
    struct port_use u;
    struct fsm_rec lb, ssl, r;
    char id[FSM_ID_SIZE];
    int rc;

    TRY(vs_args(c, &a));
    memset(&u, 0, sizeof u);
    u.c = c;
    u.a = &a;
    fsm__rec_init(&u.r);
    fsm__rec_init(&lb);
    fsm__rec_init(&ssl);
    fsm__rec_init(&r);
    rc = fsm__gw_load(c, LB_PREFIX, "load balancer", a.lb, &lb);
    if (rc == 0 && a.ssl[0] != '\0') {
        rc = fsm__net_load(c, "ssl", "certificate", a.ssl, &ssl);
        if (rc == 0 && strcmp(fsm__rec_s(&ssl, "TenantID"),
                              fsm__rec_s(&lb, "TenantID")) != 0) {
            rc = fsm__reject(c, YH_EINVAL,
                             "invalid parameter 'SSLID': '%s' belongs to "
                             "another tenant than '%s'",
                             a.ssl, a.lb);
        }
    }
    if (rc == 0) {
        rc = fsm__net_walk(c->f, c->txn, 'C', a.lb, port_fn, &u);
    }
    if (rc == 0 && u.n >= VS_PER_LB) {
        rc = fsm__reject(c, YH_EQUOTA,
                         "quota exceeded: load balancer '%s' has %d vservers",
                         a.lb, VS_PER_LB);
    }
    if (rc == 0) {
        rc = fsm__new_id(c, VS_PREFIX, id);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_s(&r, "VServerID", id);
    fsm__rec_set_s(&r, "ResourceType", "VServer");
    fsm__rec_set_s(&r, "TenantID", fsm__rec_s(&lb, "TenantID"));
    fsm__rec_set_s(&r, "LBID", a.lb);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_s(&r, "Protocol", a.proto);
    fsm__rec_set_i(&r, "FrontendPort", a.port);
    fsm__rec_set_s(&r, "Method", a.method);
    fsm__rec_set_s(&r, "HealthCheckType", a.hc);
    fsm__rec_set_s(&r, "Path", a.path);
    fsm__rec_set_i(&r, "HealthCheckInterval", a.interval);
    fsm__rec_set_i(&r, "HealthCheckThreshold", a.threshold);
    fsm__rec_set_s(&r, "SSLID", a.ssl);
    fsm__rec_set_i(&r, "RSCount", 0);
    fsm__rec_set_s(&r, "State", "Available");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    rc = fsm__net_link(c, 'C', a.lb, id);
    if (rc == 0 && a.ssl[0] != '\0') {
        rc = fsm__net_link(c, 'C', a.ssl, id);
        if (rc == 0) {
            rc = fsm__count_add(c, a.ssl, "VServerCount", 1);
        }
    }
    if (rc == 0) {
        rc = fsm__count_add(c, a.lb, "VServerCount", 1);
    }
    if (rc == 0) {
        rc = fsm__concern(c, a.lb); /* its host's spec */
    }
    if (rc == 0) {
        rc = fsm__net_save(c, id, &r);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "VServerID"), id);
    }
out:
    fsm__rec_free(&u.r);
    fsm__rec_free(&lb);
    fsm__rec_free(&ssl);
    fsm__rec_free(&r);
    return rc;
}

int fsm__vs_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "VServerID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__vs_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__vs_delete_check(c));
    fsm__arg_str(c, "VServerID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&r);
    rc = fsm__net_load(c, VS_PREFIX, "vserver", id, &r);
    if (rc == 0) {
        rc = fsm__if_revision(c, &r);
    }
    if (rc == 0) {
        rc = vs_drop(c, id, &r, 1);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    fsm__rec_free(&r);
    return rc;
}

/* ---- backends ---- */

struct rs_args
{
    char vs[FSM_ID_SIZE];
    char vm[FSM_ID_SIZE];
    char name[FSM_NAME_SIZE];
    int64_t port, weight;
};

static int rs_args(struct fsm_ctx *c, struct rs_args *a)
{
    TRY(fsm__arg_str(c, "VServerID", 1, FSM_ID_SIZE - 1, a->vs, NULL));
    TRY(fsm__arg_str(c, "BindResourceID", 1, FSM_ID_SIZE - 1, a->vm, NULL));
    TRY(fsm__name_arg(c, a->name));
    TRY(fsm__arg_int(c, "Port", 1, 1, 65535, &a->port, NULL));
    return fsm__arg_int_or(c, "Weight", 1, 100, 1, &a->weight);
}

int fsm__rs_create_check(struct fsm_ctx *c)
{
    struct rs_args a;

    return rs_args(c, &a);
}

struct rs_use
{
    struct fsm_ctx *c;
    const struct rs_args *a;
    struct fsm_rec r;
    unsigned n;
};

static int rs_fn(void *arg, const char *id)
{
    struct rs_use *u = arg;
    struct fsm_ctx *c = u->c;
    int rc;

    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), &u->r);
    if (rc == YH_ENOTFOUND) {
        return 0;
    }
    TRY(rc);
    u->n++;
    if (strcmp(fsm__rec_s(&u->r, "BindResourceID"), u->a->vm) == 0 &&
        fsm__rec_i(&u->r, "Port") == u->a->port) {
        return fsm__reject(c, YH_EEXIST,
                           "'%s' port %" PRId64 " is already backend '%s'",
                           u->a->vm, u->a->port, id);
    }
    return 0;
}

int fsm__rs_create_apply(struct fsm_ctx *c)
{
    struct rs_args a;
    struct rs_use u;
    struct fsm_rec vs, lb, m, r;
    char id[FSM_ID_SIZE];
    int rc;

    TRY(rs_args(c, &a));
    memset(&u, 0, sizeof u);
    u.c = c;
    u.a = &a;
    fsm__rec_init(&u.r);
    fsm__rec_init(&vs);
    fsm__rec_init(&lb);
    fsm__rec_init(&m);
    fsm__rec_init(&r);
    rc = fsm__net_load(c, VS_PREFIX, "vserver", a.vs, &vs);
    if (rc == 0) {
        rc = fsm__gw_load(c, LB_PREFIX, "load balancer",
                          fsm__rec_s(&vs, "LBID"), &lb);
    }
    if (rc == 0) {
        rc = fsm__vm_load(c, a.vm, &m);
    }
    if (rc == 0 &&
        strcmp(fsm__rec_s(&m, "TenantID"), fsm__rec_s(&lb, "TenantID")) != 0) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'BindResourceID': '%s' belongs to "
                         "another tenant than '%s'",
                         a.vm, a.vs);
    }
    if (rc == 0 &&
        strcmp(fsm__rec_s(&m, "VPCID"), fsm__rec_s(&lb, "VPCID")) != 0) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'BindResourceID': '%s' is not in "
                         "VPC '%s' of load balancer '%s'",
                         a.vm, fsm__rec_s(&lb, "VPCID"),
                         fsm__rec_s(&lb, "LBID"));
    }
    if (rc == 0) {
        rc = fsm__net_walk(c->f, c->txn, 'C', a.vs, rs_fn, &u);
    }
    if (rc == 0 && u.n >= RS_PER_VS) {
        rc = fsm__reject(c, YH_EQUOTA,
                         "quota exceeded: vserver '%s' has %d backends", a.vs,
                         RS_PER_VS);
    }
    if (rc == 0) {
        rc = fsm__new_id(c, RS_PREFIX, id);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_s(&r, "RSID", id);
    fsm__rec_set_s(&r, "ResourceType", "RS");
    fsm__rec_set_s(&r, "TenantID", fsm__rec_s(&lb, "TenantID"));
    fsm__rec_set_s(&r, "LBID", fsm__rec_s(&lb, "LBID"));
    fsm__rec_set_s(&r, "VServerID", a.vs);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_s(&r, "BindResourceID", a.vm);
    fsm__rec_set_s(&r, "PrivateIP", fsm__rec_s(&m, "InternalIP"));
    fsm__rec_set_i(&r, "Port", a.port);
    fsm__rec_set_i(&r, "Weight", a.weight);
    fsm__rec_set_s(&r, "State", "Available");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    rc = fsm__net_link(c, 'C', a.vs, id);
    if (rc == 0) {
        rc = fsm__net_link(c, 'Q', a.vm, id);
    }
    if (rc == 0) {
        rc = fsm__count_add(c, a.vs, "RSCount", 1);
    }
    if (rc == 0) {
        rc = fsm__concern(c, fsm__rec_s(&lb, "LBID"));
    }
    if (rc == 0) {
        rc = fsm__net_save(c, id, &r);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "RSID"), id);
    }
out:
    fsm__rec_free(&u.r);
    fsm__rec_free(&vs);
    fsm__rec_free(&lb);
    fsm__rec_free(&m);
    fsm__rec_free(&r);
    return rc;
}

int fsm__rs_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "RSID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__rs_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__rs_delete_check(c));
    fsm__arg_str(c, "RSID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&r);
    rc = fsm__net_load(c, RS_PREFIX, "backend", id, &r);
    if (rc == 0) {
        rc = fsm__if_revision(c, &r);
    }
    if (rc == 0) {
        rc = rs_drop(c, id, &r, 1);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    fsm__rec_free(&r);
    return rc;
}

int fsm__rs_vm_release(struct fsm_ctx *c, const char *vm)
{
    struct fsm_ids l = {NULL, 0, 0};
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = fsm__net_ids(c, 'Q', vm, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, l.v[i], strlen(l.v[i]),
                           &r);
        if (rc == 0) {
            rc = rs_drop(c, l.v[i], &r, 1);
        } else if (rc == YH_ENOTFOUND) {
            rc = fsm__net_unlink(c, 'Q', vm, l.v[i]);
        }
    }
    fsm__rec_free(&r);
    fsm__ids_free(&l);
    return rc;
}

/* ---- for scaling groups (tbl_scale.c) ---- */

int fsm__vs_owner(struct fsm_ctx *c,
                  const char *vs,
                  char lb[FSM_ID_SIZE],
                  char vpc[FSM_ID_SIZE],
                  char tenant[FSM_ID_SIZE])
{
    struct fsm_rec v, l;
    int rc;

    fsm__rec_init(&v);
    fsm__rec_init(&l);
    rc = fsm__net_load(c, VS_PREFIX, "vserver", vs, &v);
    if (rc == 0) {
        rc = fsm__gw_load(c, LB_PREFIX, "load balancer", fsm__rec_s(&v, "LBID"),
                          &l);
    }
    if (rc == 0) {
        snprintf(lb, FSM_ID_SIZE, "%s", fsm__rec_s(&l, "LBID"));
        snprintf(vpc, FSM_ID_SIZE, "%s", fsm__rec_s(&l, "VPCID"));
        snprintf(tenant, FSM_ID_SIZE, "%s", fsm__rec_s(&l, "TenantID"));
    }
    fsm__rec_free(&v);
    fsm__rec_free(&l);
    return rc;
}

int fsm__rs_vm_vs_release(struct fsm_ctx *c,
                          const char *vm,
                          const char *vs,
                          int64_t port)
{
    struct fsm_ids l = {NULL, 0, 0};
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = fsm__net_ids(c, 'Q', vm, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, l.v[i], strlen(l.v[i]),
                           &r);
        if (rc == YH_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc == 0 && strcmp(fsm__rec_s(&r, "VServerID"), vs) == 0 &&
            (port == 0 || fsm__rec_i(&r, "Port") == port)) {
            rc = rs_drop(c, l.v[i], &r, 1);
        }
    }
    fsm__rec_free(&r);
    fsm__ids_free(&l);
    return rc;
}
