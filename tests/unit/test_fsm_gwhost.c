/* Unit tests of gateways on hosts (fsm/gwhost.c): the leader's placement
 * (zone, health, spreading by GatewayCount, no CPU taken), a stale
 * placement refused at apply (172), the agents' spec of a NAT gateway, a
 * load balancer and a VPN gateway (full desired configuration), Generation
 * and the oplog Concerns moving with every change of what the spec holds,
 * ReportState ordering (an older generation never overwrites a newer
 * one), Unknown hosts, the pre-shared key sealed to the host (never in
 * clear in a spec, a Describe or the oplog), a certificate's private key
 * only sealed to the host in a spec, the NAT whitelist (validation, spec,
 * NIC and purge hooks), the host told when a gateway is deleted or purged
 * (oplog Gone), suspension and recovery, and determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fsm/base/buf.h"
#include "fsm/base/err.h"
#include "fsm/base/mp.h"
#include "fsm/fsm.h"
#include "tests/lib/fsmtest.h"

#define SEC FSMTEST_SEC
#define PSK "Tr0ub4dor-and-3-horses"

/* Two hosts in zone z, one in zone z2; a tenant with a VPC, a subnet, a
 * machine in it and EIPs. */
struct world
{
    char z[FSM_ID_SIZE], z2[FSM_ID_SIZE];   /* zones */
    char h[3][FSM_ID_SIZE];                 /* h[0], h[1] in z; h[2] in z2 */
    char hpub[3][FSM_KEY_SIZE];             /* their PublicKeys */
    char hpriv[3][FSM_KEY_SIZE];            /* their PrivateKeys */
    struct fsm_actor agent[3];              /* their executors */
    char img[FSM_ID_SIZE];                  /* an image */
    struct fsm_actor t;                     /* the tenant */
    char tid[FSM_ID_SIZE];                  /* its ID */
    char vpc[FSM_ID_SIZE], sn[FSM_ID_SIZE]; /* 10.1.0.0/16, 10.1.1.0/24 */
    char vm[FSM_ID_SIZE];                   /* a machine in sn */
};

static void str_of(struct fsmtest *x, const char *key, char *out)
{
    snprintf(out, FSM_ID_SIZE, "%s", fsmtest_res_str(x, key));
}

static void host(struct fsmtest *x, struct world *w, int i, const char *zone)
{
    struct fsm_key k;

    assert_int_equal(fsmtest_call(x, "RegisterHost", &x->admin, "ZoneID", zone,
                                  "CPU", "16", "Memory", "65536", NULL),
                     0);
    str_of(x, "HostID", w->h[i]);
    snprintf(w->hpub[i], FSM_KEY_SIZE, "%s", fsmtest_res_str(x, "PublicKey"));
    snprintf(w->hpriv[i], FSM_KEY_SIZE, "%s", fsmtest_res_str(x, "PrivateKey"));
    assert_int_equal(fsm_key_get(x->f, w->hpub[i], &k), 0);
    w->agent[i] = k.actor;
}

static void beat(struct fsmtest *x, struct world *w)
{
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fsmtest_call(x, "HostHeartbeat", &w->agent[i], NULL),
                         0);
    }
}

static void world(struct fsmtest *x, struct world *w)
{
    memset(w, 0, sizeof *w);
    fsmtest_storage(x, w->z);
    assert_int_equal(
        fsmtest_call(x, "CreateZone", &x->admin, "Name", "z2", NULL), 0);
    str_of(x, "ZoneID", w->z2);
    host(x, w, 0, w->z);
    host(x, w, 1, w->z);
    host(x, w, 2, w->z2);
    beat(x, w);
    assert_int_equal(fsmtest_call(x, "CreateImage", &x->admin, "Name", "debian",
                                  "Size", "10", NULL),
                     0);
    str_of(x, "ImageID", w->img);
    fsmtest_make_tenant(x, "t@x.io", &w->t, w->tid);
    assert_int_equal(fsmtest_call(x, "CreateVPC", &w->t, "Name", "v", "Network",
                                  "10.1.0.0/16", NULL),
                     0);
    str_of(x, "VPCID", w->vpc);
    assert_int_equal(fsmtest_call(x, "CreateSubnet", &w->t, "VPCID", w->vpc,
                                  "Network", "10.1.1.0/24", NULL),
                     0);
    str_of(x, "SubnetID", w->sn);
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w->t, "ZoneID", w->z,
                                  "ImageID", w->img, "CPU", "2", "Memory",
                                  "1024", "SubnetID", w->sn, NULL),
                     0);
    str_of(x, "VMID", w->vm);
    assert_int_equal(
        fsmtest_call(x, "CreateEIPPool", &x->admin, "Name", "p", "Network",
                     "198.51.100.0/24", "OperatorName", "Bgp", NULL),
        0);
}

static void eip(struct fsmtest *x, struct world *w, char *out)
{
    assert_int_equal(fsmtest_call(x, "AllocateEIP", &w->t, "OperatorName",
                                  "Bgp", "Bandwidth", "5", NULL),
                     0);
    str_of(x, "EIPID", out);
}

static void natgw(struct fsmtest *x,
                  struct world *w,
                  const char *zone,
                  char *out)
{
    char e[FSM_ID_SIZE];

    eip(x, w, e);
    if (zone != NULL) {
        assert_int_equal(
            fsmtest_call(x, "CreateNATGW", &w->t, "VPCID", w->vpc, "EIPID", e,
                         "SubnetIDs.0", w->sn, "ZoneID", zone, NULL),
            0);
    } else {
        assert_int_equal(fsmtest_call(x, "CreateNATGW", &w->t, "VPCID", w->vpc,
                                      "EIPID", e, "SubnetIDs.0", w->sn, NULL),
                         0);
    }
    str_of(x, "NATGWID", out);
}

/* Infos[0] of Describe@what of @id (by the administrator). */
static void info(struct fsmtest *x,
                 const char *action,
                 const char *key,
                 const char *id)
{
    assert_int_equal(fsmtest_call(x, action, &x->admin, key, id, NULL), 0);
    assert_int_equal(fsmtest_n_infos(x), 1);
}

static int64_t host_int(struct fsmtest *x, const char *h, const char *k)
{
    info(x, "DescribeHost", "HostIDs.0", h);
    return fsmtest_info_int(x, 0, k);
}

/* A gateway's Describe record (the action from its ID). */
static void gw_info(struct fsmtest *x, const char *id)
{
    if (strncmp(id, "natgw-", 6) == 0) {
        info(x, "DescribeNATGW", "NATGWIDs.0", id);
    } else if (strncmp(id, "lb-", 3) == 0) {
        info(x, "DescribeLB", "LBIDs.0", id);
    } else {
        info(x, "DescribeVPNGateway", "VPNGatewayIDs.0", id);
    }
}

static const char *gw_str(struct fsmtest *x, const char *id, const char *k)
{
    gw_info(x, id);
    return fsmtest_info_str(x, 0, k);
}

static int64_t gw_int(struct fsmtest *x, const char *id, const char *k)
{
    gw_info(x, id);
    return fsmtest_info_int(x, 0, k);
}

/* Whether the last oplog event lists @id in @key (Concerns, Gone). */
static int event_lists(struct fsmtest *x, const char *key, const char *id)
{
    msgpack_unpacked u;
    const msgpack_object *l;
    int found = 0;

    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)x->event.data,
                                         x->event.len, NULL),
                     MSGPACK_UNPACK_SUCCESS);
    l = yh_mp_get(&u.data, key);
    for (uint32_t i = 0; l != NULL && i < l->via.array.size; i++) {
        found += yh_mp_eq(&l->via.array.ptr[i], id);
    }
    msgpack_unpacked_destroy(&u);
    return found;
}

/* A decoded agent spec. */
struct spec
{
    char host[FSM_ID_SIZE];
    struct yh_buf raw;
    msgpack_unpacked u;
};

static int spec_get(struct fsmtest *x, const char *id, struct spec *s)
{
    int rc;

    memset(s, 0, sizeof *s);
    msgpack_unpacked_init(&s->u);
    rc = fsm_host_spec(x->f, id, s->host, &s->raw);
    if (rc == 0) {
        assert_int_equal(msgpack_unpack_next(&s->u, (const char *)s->raw.data,
                                             s->raw.len, NULL),
                         MSGPACK_UNPACK_SUCCESS);
    }
    return rc;
}

static void spec_free(struct spec *s)
{
    msgpack_unpacked_destroy(&s->u);
    yh_buf_release(&s->raw);
}

static const char *ostr(const msgpack_object *m, const char *k)
{
    static char buf[8][512];
    static unsigned next;
    char *out = buf[next++ % 8];

    assert_int_equal(yh_mp_strcpy(m, k, out, 512), 0);
    return out;
}

static int64_t oint(const msgpack_object *m, const char *k)
{
    int64_t v = -1;

    assert_int_equal(yh_mp_int(m, k, &v), 0);
    return v;
}

static const msgpack_object *olist(const msgpack_object *m, const char *k)
{
    const msgpack_object *l = yh_mp_get(m, k);

    assert_non_null(l);
    assert_int_equal(l->type, MSGPACK_OBJECT_ARRAY);
    return l;
}

/* No key of a spec (nor of its nested maps) is internal, names a secret
 * or appears twice. */
static void keys_ok(const msgpack_object *m)
{
    static const char *const bad[] = {"Password", "PwHash", "Salt", "Secret",
                                      "PrivateKey"};

    assert_int_equal(m->type, MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        const msgpack_object *v = &m->via.map.ptr[i].val;
        char name[64];
        assert_int_equal(k->type, MSGPACK_OBJECT_STR);
        assert_true(k->via.str.size < sizeof name);
        memcpy(name, k->via.str.ptr, k->via.str.size);
        name[k->via.str.size] = '\0';
        assert_true(name[0] != '_');
        for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
            assert_null(strstr(name, bad[j]));
        }
        assert_string_not_equal(name, "PreSharedKey");
        for (uint32_t j = 0; j < i; j++) {
            const msgpack_object *k2 = &m->via.map.ptr[j].key;
            assert_false(
                k2->via.str.size == k->via.str.size &&
                memcmp(k2->via.str.ptr, k->via.str.ptr, k->via.str.size) == 0);
        }
        assert_true(v->type != MSGPACK_OBJECT_BIN);
        if (v->type == MSGPACK_OBJECT_MAP) {
            keys_ok(v);
        }
        for (uint32_t j = 0;
             v->type == MSGPACK_OBJECT_ARRAY && j < v->via.array.size; j++) {
            if (v->via.array.ptr[j].type == MSGPACK_OBJECT_MAP) {
                keys_ok(&v->via.array.ptr[j]);
            }
        }
    }
}

static int raw_has(const struct yh_buf *b, const char *s)
{
    return memmem(b->data, b->len, s, strlen(s)) != NULL;
}

/* ---- placement ---- */

static void placement(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char g1[FSM_ID_SIZE], g2[FSM_ID_SIZE], g3[FSM_ID_SIZE], e[FSM_ID_SIZE];
    int64_t cpu0;

    world(x, &w);
    eip(x, &w, e);
    /* an unknown zone */
    assert_int_equal(
        fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.vpc, "EIPID", e,
                     "SubnetIDs.0", w.sn, "ZoneID", "zone-nope", NULL),
        YH_ENOTFOUND);
    assert_false(x->proposed); /* refused by the leader's stamp */
    cpu0 = host_int(x, w.h[0], "UsedCPU") + host_int(x, w.h[1], "UsedCPU");
    /* two gateways in z: one per host (the fewest gateways first) */
    natgw(x, &w, w.z, g1);
    assert_string_equal(gw_str(x, g1, "ZoneID"), w.z);
    assert_string_equal(gw_str(x, g1, "DesiredState"), "Available");
    assert_string_equal(gw_str(x, g1, "State"), "Creating");
    assert_string_equal(gw_str(x, g1, "ObservedState"), "");
    assert_int_equal(gw_int(x, g1, "ObservedGeneration"), 0);
    assert_int_equal(gw_int(x, g1, "Generation"), gw_int(x, g1, "Revision"));
    {
        /* the machine's host has CPU in use: the other one first */
        char mh[FSM_ID_SIZE];
        info(x, "DescribeVMInstance", "VMIDs.0", w.vm);
        snprintf(mh, sizeof mh, "%s", fsmtest_info_str(x, 0, "HostID"));
        assert_string_not_equal(gw_str(x, g1, "HostID"), mh);
    }
    {
        /* LB in the same zone goes to the other host; the result names
         * it */
        char rh[FSM_ID_SIZE];
        assert_int_equal(fsmtest_call(x, "CreateLB", &w.t, "VPCID", w.vpc,
                                      "SubnetID", w.sn, "ZoneID", w.z, NULL),
                         0);
        str_of(x, "LBID", g2);
        str_of(x, "HostID", rh);
        assert_string_equal(rh, gw_str(x, g2, "HostID"));
    }
    assert_string_not_equal(gw_str(x, g1, "HostID"), gw_str(x, g2, "HostID"));
    assert_int_equal(host_int(x, w.h[0], "GatewayCount"), 1);
    assert_int_equal(host_int(x, w.h[1], "GatewayCount"), 1);
    assert_int_equal(host_int(x, w.h[2], "GatewayCount"), 0);
    /* no CPU from the machines' pool */
    assert_int_equal(
        host_int(x, w.h[0], "UsedCPU") + host_int(x, w.h[1], "UsedCPU"), cpu0);
    /* no zone named: any zone, the host's zone recorded (h[2] has none) */
    assert_int_equal(fsmtest_call(x, "CreateVPNGateway", &w.t, "VPCID", w.vpc,
                                  "EIPID", e, NULL),
                     0);
    str_of(x, "VPNGatewayID", g3);
    assert_string_equal(gw_str(x, g3, "HostID"), w.h[2]);
    assert_string_equal(gw_str(x, g3, "ZoneID"), w.z2);
    /* a disabled host takes none; none left in z2: 172 */
    assert_int_equal(
        fsmtest_call(x, "DisableHost", &x->admin, "HostID", w.h[2], NULL), 0);
    eip(x, &w, e);
    assert_int_equal(
        fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.vpc, "EIPID", e,
                     "SubnetIDs.0", w.sn, "ZoneID", w.z2, NULL),
        YH_ECAPACITY);
    assert_non_null(
        strstr(fsmtest_res_str(x, "Message"), "no healthy host in zone"));
    /* nothing was written: the EIP is still free */
    info(x, "DescribeEIP", "EIPIDs.0", e);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Available");
}

/* ---- a stale placement is refused at apply ---- */

/* The envelope of CreateNATGW prepared now (the stamp picks a host). */
static void prepare_natgw(struct fsmtest *x,
                          struct world *w,
                          const char *e,
                          struct yh_buf *env)
{
    struct yh_buf req = YH_BUF_INIT, res = YH_BUF_INIT;
    msgpack_packer pk;
    msgpack_unpacked u;

    msgpack_packer_init(&pk, &req, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 4);
    yh_mp_pack_kv_str(&pk, "VPCID", w->vpc);
    yh_mp_pack_kv_str(&pk, "EIPID", e);
    yh_mp_pack_kv_str(&pk, "SubnetIDs.0", w->sn);
    yh_mp_pack_kv_str(&pk, "ZoneID", w->z);
    msgpack_unpacked_init(&u);
    assert_int_equal(
        msgpack_unpack_next(&u, (const char *)req.data, req.len, NULL),
        MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(fsm_cmd_prepare(x->f, "CreateNATGW", &u.data, &w->t, "",
                                     x->time, 1, env, &res),
                     0);
    assert_true(env->len > 0);
    assert_int_equal(res.len, 0);
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&req);
    yh_buf_release(&res);
}

static void stale(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest_tick tc;
    struct world w;
    struct yh_buf env = YH_BUF_INIT;
    char e[FSM_ID_SIZE], g[FSM_ID_SIZE];
    int i;

    world(x, &w);
    eip(x, &w, e);
    /* stamped for the host without the machine (h[0] or h[1]), which is
     * disabled before the command is applied */
    prepare_natgw(x, &w, e, &env);
    assert_true(memmem(env.data, env.len, w.h[0], strlen(w.h[0])) != NULL ||
                memmem(env.data, env.len, w.h[1], strlen(w.h[1])) != NULL);
    i = memmem(env.data, env.len, w.h[0], strlen(w.h[0])) != NULL ? 0 : 1;
    assert_int_equal(
        fsmtest_call(x, "DisableHost", &x->admin, "HostID", w.h[i], NULL), 0);
    assert_int_equal(fsmtest_apply_raw(x, env.data, env.len), YH_ECAPACITY);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "stale placement"));
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "not healthy"));
    /* nothing written */
    assert_int_equal(host_int(x, w.h[i], "GatewayCount"), 0);
    info(x, "DescribeEIP", "EIPIDs.0", e);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Available");
    assert_int_equal(fsmtest_call(x, "DescribeNATGW", &w.t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(
        fsmtest_call(x, "EnableHost", &x->admin, "HostID", w.h[i], NULL), 0);
    /* a host whose lease ended between the stamp and the apply */
    yh_buf_reset(&env);
    prepare_natgw(x, &w, e, &env);
    x->time += 31 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 3); /* every lease ended */
    assert_int_equal(fsmtest_apply_raw(x, env.data, env.len), YH_ECAPACITY);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "stale placement"));
    /* no Online host: refused by the stamp itself */
    assert_int_equal(fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.vpc,
                                  "EIPID", e, "SubnetIDs.0", w.sn, NULL),
                     YH_ECAPACITY);
    assert_false(x->proposed);
    /* back online: placed */
    beat(x, &w);
    natgw(x, &w, w.z, g);
    yh_buf_release(&env);
}

/* ---- NAT gateway: spec, generations, reports ---- */

static int report(struct fsmtest *x,
                  const struct fsm_actor *agent,
                  const char *id,
                  const char *st,
                  int64_t gen)
{
    char g[24];

    snprintf(g, sizeof g, "%lld", (long long)gen);
    return fsmtest_call(x, "ReportState", agent, "ResourceID", id, "State", st,
                        "Generation", g, NULL);
}

/* The agent of the host gateway @id is on. */
static const struct fsm_actor *agent_of(struct fsmtest *x,
                                        struct world *w,
                                        const char *id)
{
    const char *h = gw_str(x, id, "HostID");

    for (int i = 0; i < 3; i++) {
        if (strcmp(h, w->h[i]) == 0) {
            return &w->agent[i];
        }
    }
    fail();
    return NULL;
}

/* Generation of @id in its spec and Describe, which are equal. */
static int64_t gen_of(struct fsmtest *x, const char *id)
{
    struct spec s;
    int64_t g;

    assert_int_equal(spec_get(x, id, &s), 0);
    g = oint(&s.u.data, "Generation");
    spec_free(&s);
    assert_int_equal(gw_int(x, id, "Generation"), g);
    return g;
}

static void nat_body(struct fsmtest *x, struct world *wp)
{
    struct world w = *wp;
    const struct fsm_actor *ag, *other;
    char g[FSM_ID_SIZE], rule[FSM_ID_SIZE], e[FSM_ID_SIZE], e2[FSM_ID_SIZE];
    int64_t g0, g1, g2;
    struct spec s;
    const msgpack_object *l;

    natgw(x, &w, w.z, g);
    ag = agent_of(x, &w, g);
    other = ag == &w.agent[0] ? &w.agent[1] : &w.agent[0];
    info(x, "DescribeNATGW", "NATGWIDs.0", g);
    snprintf(e, sizeof e, "%s", fsmtest_info_str(x, 0, "EIPID"));
    g0 = gen_of(x, g);
    /* the spec: head, the record, the EIP, the subnets, the rules */
    assert_int_equal(spec_get(x, g, &s), 0);
    assert_string_equal(s.host, gw_str(x, g, "HostID"));
    assert_string_equal(ostr(&s.u.data, "ResourceID"), g);
    assert_string_equal(ostr(&s.u.data, "ResourceType"), "NATGW");
    assert_string_equal(ostr(&s.u.data, "HostID"), s.host);
    assert_string_equal(ostr(&s.u.data, "DesiredState"), "Available");
    assert_string_equal(ostr(&s.u.data, "State"), "Creating");
    assert_string_equal(ostr(&s.u.data, "Mode"), "Automatic");
    assert_string_equal(ostr(&s.u.data, "EIPID"), e);
    assert_true(strncmp(ostr(&s.u.data, "EIPAddr"), "198.51.100.", 11) == 0);
    assert_int_equal(oint(&s.u.data, "Bandwidth"), 5);
    l = olist(&s.u.data, "Subnets");
    assert_int_equal(l->via.array.size, 1);
    assert_string_equal(ostr(&l->via.array.ptr[0], "SubnetID"), w.sn);
    assert_string_equal(ostr(&l->via.array.ptr[0], "Network"), "10.1.1.0/24");
    assert_string_equal(ostr(&l->via.array.ptr[0], "Gateway"), "10.1.1.1");
    assert_int_equal(olist(&s.u.data, "Rules")->via.array.size, 0);
    keys_ok(&s.u.data);
    spec_free(&s);
    /* the host reports it Available: settled */
    assert_int_equal(report(x, ag, g, "Available", g0), 0);
    assert_string_equal(fsmtest_res_str(x, "State"), "Available");
    assert_string_equal(gw_str(x, g, "ObservedState"), "Available");
    assert_int_equal(gw_int(x, g, "Generation"), g0); /* a report is no
                                                          change to act on */
    /* a rule: a new generation, the gateway in the oplog's Concerns */
    assert_int_equal(
        fsmtest_call(x, "CreateNATGWRule", &w.t, "NATGWID", g, "Protocol",
                     "tcp", "EIPPort", "8000-8010", "PrivateIP", "10.1.1.9",
                     "PrivatePort", "9000-9010", NULL),
        0);
    str_of(x, "RuleID", rule);
    assert_int_equal(event_lists(x, "Concerns", g), 1);
    g1 = gen_of(x, g);
    assert_int_equal(g1, (int64_t)x->index); /* the rule's index */
    assert_true(g1 > g0);
    assert_string_equal(gw_str(x, g, "State"), "Updating");
    assert_int_equal(spec_get(x, g, &s), 0);
    l = olist(&s.u.data, "Rules");
    assert_int_equal(l->via.array.size, 1);
    assert_string_equal(ostr(&l->via.array.ptr[0], "RuleID"), rule);
    assert_string_equal(ostr(&l->via.array.ptr[0], "Protocol"), "TCP");
    assert_string_equal(ostr(&l->via.array.ptr[0], "EIPPort"), "8000-8010");
    assert_string_equal(ostr(&l->via.array.ptr[0], "PrivateIP"), "10.1.1.9");
    assert_string_equal(ostr(&l->via.array.ptr[0], "PrivatePort"), "9000-9010");
    spec_free(&s);
    /* reports: another host 140, a generation never issued 121, a
     * machine's state 121 */
    assert_int_equal(report(x, other, g, "Available", g1), YH_EPERM);
    assert_int_equal(report(x, ag, g, "Available", g1 + 1000), YH_EINVAL);
    assert_int_equal(report(x, ag, g, "Running", g1), YH_EINVAL);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "gateway"));
    /* the rule's generation reported; then a late report of the older one
     * is refused (160) and changes nothing */
    assert_int_equal(report(x, ag, g, "Available", g1), 0);
    assert_string_equal(gw_str(x, g, "State"), "Available");
    assert_int_equal(report(x, ag, g, "Error", g0), YH_ECONFLICT);
    assert_string_equal(gw_str(x, g, "ObservedState"), "Available");
    assert_int_equal(gw_int(x, g, "ObservedGeneration"), g1);
    /* an older (but not yet observed) generation is recorded, the shown
     * state stays transitional until the current one is reported */
    assert_int_equal(
        fsmtest_call(x, "DeleteNATGWRule", &w.t, "RuleID", rule, NULL), 0);
    assert_int_equal(event_lists(x, "Concerns", g), 1);
    g2 = gen_of(x, g);
    assert_true(g2 > g1);
    assert_int_equal(spec_get(x, g, &s), 0);
    assert_int_equal(olist(&s.u.data, "Rules")->via.array.size, 0);
    assert_string_equal(ostr(&s.u.data, "State"), "Updating");
    spec_free(&s);
    assert_int_equal(report(x, ag, g, "Available", g1), 0);
    assert_string_equal(gw_str(x, g, "State"), "Updating");
    assert_int_equal(report(x, ag, g, "Error", g2), 0);
    assert_string_equal(gw_str(x, g, "State"), "Error");
    /* the EIP: bandwidth, unbind, bind move the generation too */
    assert_int_equal(fsmtest_call(x, "ModifyEIPBandwidth", &w.t, "EIPID", e,
                                  "Bandwidth", "20", NULL),
                     0);
    assert_int_equal(event_lists(x, "Concerns", g), 1);
    assert_int_equal(spec_get(x, g, &s), 0);
    assert_int_equal(oint(&s.u.data, "Bandwidth"), 20);
    assert_true(oint(&s.u.data, "Generation") > g2);
    spec_free(&s);
    assert_int_equal(
        fsmtest_call(x, "UnBindEIP", &w.t, "EIPID", e, "ResourceID", g, NULL),
        0);
    assert_int_equal(event_lists(x, "Concerns", g), 1);
    assert_int_equal(spec_get(x, g, &s), 0);
    assert_string_equal(ostr(&s.u.data, "EIPID"), "");
    assert_string_equal(ostr(&s.u.data, "EIPAddr"), "");
    spec_free(&s);
    eip(x, &w, e2);
    assert_int_equal(
        fsmtest_call(x, "BindEIP", &w.t, "EIPID", e2, "ResourceID", g, NULL),
        0);
    assert_int_equal(event_lists(x, "Concerns", g), 1);
    assert_int_equal(spec_get(x, g, &s), 0);
    assert_string_equal(ostr(&s.u.data, "EIPID"), e2);
    assert_int_equal(oint(&s.u.data, "Generation"), (int64_t)x->index);
    spec_free(&s);
    /* delete: gone from the specs, its host in the oplog's Gone */
    {
        char h[FSM_ID_SIZE];
        int hi;
        snprintf(h, sizeof h, "%s", gw_str(x, g, "HostID"));
        hi = strcmp(h, w.h[0]) == 0 ? 0 : 1;
        assert_int_equal(host_int(x, h, "GatewayCount"), 1);
        assert_int_equal(
            fsmtest_call(x, "DeleteNATGW", &w.t, "NATGWID", g, NULL), 0);
        assert_int_equal(event_lists(x, "Gone", h), 1);
        assert_int_equal(event_lists(x, "Concerns", g), 0);
        assert_int_equal(spec_get(x, g, &s), YH_ENOTFOUND);
        spec_free(&s);
        assert_int_equal(host_int(x, w.h[hi], "GatewayCount"), 0);
        assert_string_equal(fsm_host_resource_type(g), "NATGW");
        /* a report on it now: 150 */
        assert_int_equal(report(x, ag, g, "Available", g2), YH_ENOTFOUND);
    }
}

static void nat_spec(void **state)
{
    struct fsmtest *x = *state;
    struct world w;

    world(x, &w);
    nat_body(x, &w);
}

/* ---- load balancer: vservers and backends; the certificate's key ---- */

static void lb_spec(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char lb[FSM_ID_SIZE], vs[FSM_ID_SIZE], vs2[FSM_ID_SIZE];
    char rs[FSM_ID_SIZE], ssl[FSM_ID_SIZE], ip[64], line[64];
    char *cert, *key;
    const msgpack_object *l, *b;
    int64_t g;
    struct spec s;

    world(x, &w);
    fsmtest_make_cert("lb.example", &cert, &key);
    snprintf(line, sizeof line, "%.40s", strchr(key, '\n') + 1);
    assert_int_equal(fsmtest_call(x, "CreateLB", &w.t, "VPCID", w.vpc,
                                  "SubnetID", w.sn, NULL),
                     0);
    str_of(x, "LBID", lb);
    snprintf(ip, sizeof ip, "%s", fsmtest_res_str(x, "PrivateIP"));
    g = gen_of(x, lb);
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &w.t, "LBID", lb, "Protocol", "HTTP",
                     "FrontendPort", "80", "Method", "LeastConn",
                     "HealthCheckType", "Path", "Path", "/healthz",
                     "HealthCheckInterval", "7", NULL),
        0);
    str_of(x, "VServerID", vs);
    assert_int_equal(event_lists(x, "Concerns", lb), 1);
    assert_true(gen_of(x, lb) > g);
    g = gen_of(x, lb);
    assert_int_equal(
        fsmtest_call(x, "CreateRS", &w.t, "VServerID", vs, "BindResourceID",
                     w.vm, "Port", "8080", "Weight", "30", NULL),
        0);
    str_of(x, "RSID", rs);
    assert_int_equal(event_lists(x, "Concerns", lb), 1);
    assert_true(gen_of(x, lb) > g);
    assert_int_equal(fsmtest_call(x, "CreateCertificate", &w.t, "Certificate",
                                  cert, "PrivateKey", key, NULL),
                     0);
    str_of(x, "SSLID", ssl);
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &w.t, "LBID", lb, "Protocol", "HTTPS",
                     "FrontendPort", "443", "SSLID", ssl, NULL),
        0);
    str_of(x, "VServerID", vs2);
    assert_int_equal(spec_get(x, lb, &s), 0);
    assert_string_equal(ostr(&s.u.data, "ResourceType"), "LB");
    assert_string_equal(ostr(&s.u.data, "PrivateIP"), ip);
    assert_string_equal(ostr(&s.u.data, "LBType"), "External");
    l = olist(&s.u.data, "Subnets");
    assert_int_equal(l->via.array.size, 1);
    assert_string_equal(ostr(&l->via.array.ptr[0], "Network"), "10.1.1.0/24");
    l = olist(&s.u.data, "VServers");
    assert_int_equal(l->via.array.size, 2);
    assert_string_equal(ostr(&l->via.array.ptr[0], "VServerID"), vs);
    assert_string_equal(ostr(&l->via.array.ptr[0], "Protocol"), "HTTP");
    assert_int_equal(oint(&l->via.array.ptr[0], "FrontendPort"), 80);
    assert_string_equal(ostr(&l->via.array.ptr[0], "Method"), "LeastConn");
    assert_string_equal(ostr(&l->via.array.ptr[0], "HealthCheckType"), "Path");
    assert_string_equal(ostr(&l->via.array.ptr[0], "Path"), "/healthz");
    assert_int_equal(oint(&l->via.array.ptr[0], "HealthCheckInterval"), 7);
    assert_int_equal(oint(&l->via.array.ptr[0], "HealthCheckThreshold"), 3);
    b = olist(&l->via.array.ptr[0], "Backends");
    assert_int_equal(b->via.array.size, 1);
    assert_string_equal(ostr(&b->via.array.ptr[0], "RSID"), rs);
    assert_string_equal(ostr(&b->via.array.ptr[0], "BindResourceID"), w.vm);
    assert_string_equal(ostr(&b->via.array.ptr[0], "PrivateIP"), "10.1.1.2");
    assert_int_equal(oint(&b->via.array.ptr[0], "Port"), 8080);
    assert_int_equal(oint(&b->via.array.ptr[0], "Weight"), 30);
    /* HTTPS: the certificate by reference, never its key */
    assert_string_equal(ostr(&l->via.array.ptr[1], "SSLID"), ssl);
    assert_int_equal(olist(&l->via.array.ptr[1], "Backends")->via.array.size,
                     0);
    assert_false(raw_has(&s.raw, line));
    assert_false(raw_has(&s.raw, "PRIVATE KEY"));
    keys_ok(&s.u.data);
    spec_free(&s);
    /* deletes move the generation */
    g = gen_of(x, lb);
    assert_int_equal(fsmtest_call(x, "DeleteRS", &w.t, "RSID", rs, NULL), 0);
    assert_int_equal(event_lists(x, "Concerns", lb), 1);
    assert_true(gen_of(x, lb) > g);
    g = gen_of(x, lb);
    assert_int_equal(
        fsmtest_call(x, "DeleteVServer", &w.t, "VServerID", vs, NULL), 0);
    assert_int_equal(event_lists(x, "Concerns", lb), 1);
    assert_true(gen_of(x, lb) > g);
    assert_int_equal(spec_get(x, lb, &s), 0);
    assert_int_equal(olist(&s.u.data, "VServers")->via.array.size, 1);
    spec_free(&s);
    /* a purged machine's backends go, and the load balancer's host hears */
    assert_int_equal(fsmtest_call(x, "CreateRS", &w.t, "VServerID", vs2,
                                  "BindResourceID", w.vm, "Port", "8443", NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", w.vm, NULL), 0);
    g = gen_of(x, lb);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", w.vm, NULL), 0);
    assert_int_equal(event_lists(x, "Concerns", lb), 1);
    assert_true(gen_of(x, lb) > g);
    assert_int_equal(spec_get(x, lb, &s), 0);
    l = olist(&s.u.data, "VServers");
    assert_int_equal(olist(&l->via.array.ptr[0], "Backends")->via.array.size,
                     0);
    spec_free(&s);
    free(cert);
    free(key);
}

/* ---- VPN: the pre-shared key sealed to the host ---- */

static void hmac(const void *k,
                 size_t kl,
                 const void *a,
                 size_t al,
                 const void *b,
                 size_t bl,
                 uint8_t out[32])
{
    uint8_t buf[512];
    unsigned n = 0;

    assert_true(al + bl <= sizeof buf);
    memcpy(buf, a, al);
    memcpy(buf + al, b, bl);
    assert_non_null(HMAC(EVP_sha256(), k, (int)kl, buf, al + bl, out, &n));
    assert_int_equal(n, 32);
}

static int unhex(const char *s, uint8_t *out, size_t max)
{
    size_t n = strlen(s) / 2;

    assert_true(n <= max);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return (int)n;
}

/* Open a sealed key as docs/api.md tells an agent to. */
static void unseal(const char *priv,
                   const char *conn,
                   const msgpack_object *sealed,
                   char *out)
{
    static const char label[] = "yunhan-psk-seal-v1";
    uint8_t k[32], blk[32], mac[32], want[32], ct[256];
    int n;

    hmac(priv, strlen(priv), label, sizeof label, conn, strlen(conn), k);
    n = unhex(ostr(sealed, "Ciphertext"), ct, sizeof ct);
    unhex(ostr(sealed, "MAC"), want, sizeof want);
    hmac(k, 32, "mac", 3, ct, (size_t)n, mac);
    assert_memory_equal(mac, want, 32);
    for (int off = 0; off < n; off += 32) {
        uint8_t ctr[4] = {0, 0, 0, (uint8_t)(off / 32)};
        hmac(k, 32, "enc", 3, ctr, 4, blk);
        for (int j = 0; j < 32 && off + j < n; j++) {
            out[off + j] = (char)(ct[off + j] ^ blk[j]);
        }
    }
    out[n] = '\0';
}

/* Whether any oplog record holds @s. */
struct scan
{
    const char *s;
    int found;
};

static int scan_cb(void *arg, uint64_t index, const uint8_t *rec, size_t len)
{
    struct scan *q = arg;

    (void)index;
    q->found |= memmem(rec, len, q->s, strlen(q->s)) != NULL;
    return 0;
}

static int oplog_has(struct fsmtest *x, const char *s)
{
    struct scan q = {s, 0};

    assert_int_equal(fsm_oplog_walk(x->f, 1, 100000, scan_cb, &q), 0);
    return q.found;
}

static void vpn_body(struct fsmtest *x, struct world *wp)
{
    struct world w = *wp;
    char g[FSM_ID_SIZE], rg[FSM_ID_SIZE], conn[FSM_ID_SIZE], e[FSM_ID_SIZE];
    char psk[256];
    const msgpack_object *l, *c0, *sealed;
    int hi = -1;
    int64_t g0;
    struct spec s;

    eip(x, &w, e);
    assert_int_equal(fsmtest_call(x, "CreateVPNGateway", &w.t, "VPCID", w.vpc,
                                  "EIPID", e, "ZoneID", w.z, NULL),
                     0);
    str_of(x, "VPNGatewayID", g);
    for (int i = 0; i < 3; i++) {
        if (strcmp(gw_str(x, g, "HostID"), w.h[i]) == 0) {
            hi = i;
        }
    }
    assert_true(hi >= 0);
    assert_int_equal(fsmtest_call(x, "CreateRemoteVPNGateway", &w.t, "IP",
                                  "203.0.113.7", NULL),
                     0);
    str_of(x, "RemoteVPNGatewayID", rg);
    g0 = gen_of(x, g);
    assert_int_equal(
        fsmtest_call(x, "CreateVPNConnection", &w.t, "VPNGatewayID", g,
                     "RemoteVPNGatewayID", rg, "LocalSubnetIDs.0", w.sn,
                     "RemoteCIDRs.0", "192.168.0.0/16", "RemoteCIDRs.1",
                     "172.16.0.0/12", "PreSharedKey", PSK, "IKEVersion",
                     "ikev1", "IPSecEncryption", "aes256", NULL),
        0);
    str_of(x, "VPNConnectionID", conn);
    assert_int_equal(event_lists(x, "Concerns", g), 1);
    assert_true(gen_of(x, g) > g0);
    assert_int_equal(spec_get(x, g, &s), 0);
    assert_string_equal(ostr(&s.u.data, "ResourceType"), "VPNGateway");
    assert_true(strncmp(ostr(&s.u.data, "EIPAddr"), "198.51.100.", 11) == 0);
    l = olist(&s.u.data, "Connections");
    assert_int_equal(l->via.array.size, 1);
    c0 = &l->via.array.ptr[0];
    assert_string_equal(ostr(c0, "VPNConnectionID"), conn);
    assert_string_equal(ostr(c0, "RemoteVPNGatewayID"), rg);
    assert_string_equal(ostr(c0, "RemoteIP"), "203.0.113.7");
    assert_int_equal(olist(c0, "RemoteCIDRs")->via.array.size, 2);
    assert_string_equal(ostr(c0, "IKEVersion"), "IKEv1");
    assert_string_equal(ostr(c0, "IKEEncryption"), "aes128");
    assert_string_equal(ostr(c0, "IPSecEncryption"), "aes256");
    assert_int_equal(oint(c0, "IKELifetime"), 86400);
    assert_int_equal(oint(c0, "IPSecLifetime"), 3600);
    assert_string_equal(ostr(c0, "IPSecPFSDHGroup"), "disable");
    assert_string_equal(
        ostr(&olist(c0, "LocalSubnets")->via.array.ptr[0], "Network"),
        "10.1.1.0/24");
    /* the key: sealed to the host's key, never in clear */
    sealed = yh_mp_get(c0, "PreSharedKeySealed");
    assert_non_null(sealed);
    assert_int_equal(sealed->type, MSGPACK_OBJECT_MAP);
    assert_string_equal(ostr(sealed, "PublicKey"), w.hpub[hi]);
    assert_int_equal(strlen(ostr(sealed, "Ciphertext")), 2 * strlen(PSK));
    assert_false(raw_has(&s.raw, PSK));
    assert_null(yh_mp_get(c0, "PreSharedKey"));
    unseal(w.hpriv[hi], conn, sealed, psk);
    assert_string_equal(psk, PSK);
    keys_ok(&s.u.data);
    /* another host's key does not open it (the MAC fails) */
    {
        static const char label[] = "yunhan-psk-seal-v1";
        uint8_t k[32], mac[32], want[32], ct[256];
        int n;
        hmac(w.hpriv[(hi + 1) % 3], strlen(w.hpriv[(hi + 1) % 3]), label,
             sizeof label, conn, strlen(conn), k);
        n = unhex(ostr(sealed, "Ciphertext"), ct, sizeof ct);
        unhex(ostr(sealed, "MAC"), want, sizeof want);
        hmac(k, 32, "mac", 3, ct, (size_t)n, mac);
        assert_true(memcmp(mac, want, 32) != 0);
    }
    spec_free(&s);
    /* nor in a Describe or the operation log */
    assert_int_equal(fsmtest_call(x, "DescribeVPNConnection", &w.t, NULL), 0);
    assert_string_equal(fsmtest_info_str(x, 0, "PreSharedKey"), "******");
    assert_false(memmem(x->resbuf.data, x->resbuf.len, PSK, strlen(PSK)));
    assert_int_equal(fsmtest_call(x, "DescribeVPNGateway", &w.t, NULL), 0);
    assert_false(memmem(x->resbuf.data, x->resbuf.len, PSK, strlen(PSK)));
    assert_int_equal(fsmtest_call(x, "DescribeOperationLog", &x->admin, "Limit",
                                  "100", NULL),
                     0);
    assert_false(memmem(x->resbuf.data, x->resbuf.len, PSK, strlen(PSK)));
    assert_false(oplog_has(x, PSK));
    /* the same state gives the same bytes */
    {
        struct spec s2;
        assert_int_equal(spec_get(x, g, &s), 0);
        assert_int_equal(spec_get(x, g, &s2), 0);
        assert_int_equal(s.raw.len, s2.raw.len);
        assert_memory_equal(s.raw.data, s2.raw.data, s.raw.len);
        spec_free(&s);
        spec_free(&s2);
    }
    /* the connection deleted: a new generation without it */
    g0 = gen_of(x, g);
    assert_int_equal(fsmtest_call(x, "DeleteVPNConnection", &w.t,
                                  "VPNConnectionID", conn, NULL),
                     0);
    assert_int_equal(event_lists(x, "Concerns", g), 1);
    assert_true(gen_of(x, g) > g0);
    assert_int_equal(spec_get(x, g, &s), 0);
    assert_int_equal(olist(&s.u.data, "Connections")->via.array.size, 0);
    spec_free(&s);
}

static void vpn_spec(void **state)
{
    struct fsmtest *x = *state;
    struct world w;

    world(x, &w);
    vpn_body(x, &w);
}

/* ---- hosts going Unknown ---- */

/* ---- the NAT whitelist ---- */

static const msgpack_object *oarr_at(const msgpack_object *l, uint32_t i)
{
    assert_true(i < l->via.array.size);
    return &l->via.array.ptr[i];
}

static void nat_whitelist(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    struct fsm_actor u;
    char g[FSM_ID_SIZE], sn2[FSM_ID_SIZE], vm2[FSM_ID_SIZE], vm3[FSM_ID_SIZE];
    char uvm[FSM_ID_SIZE], nic[FSM_ID_SIZE], ip[64], nip[64];
    const msgpack_object *l, *ips;
    int64_t g0;
    struct spec s;

    world(x, &w);
    natgw(x, &w, NULL, g);
    fsmtest_make_tenant(x, "u@x.io", &u, NULL);
    assert_int_equal(fsmtest_call(x, "CreateSubnet", &w.t, "VPCID", w.vpc,
                                  "Network", "10.1.2.0/24", NULL),
                     0);
    str_of(x, "SubnetID", sn2);
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     w.img, "CPU", "1", "Memory", "512", "SubnetID", sn2, NULL),
        0);
    str_of(x, "VMID", vm2); /* not in a served subnet */
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z,
                                  "ImageID", w.img, "CPU", "1", "Memory", "512",
                                  "SubnetID", w.sn, NULL),
                     0);
    str_of(x, "VMID", vm3);
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &u, "ZoneID", w.z, "ImageID", w.img,
                     "CPU", "1", "Memory", "512", NULL),
        0);
    str_of(x, "VMID", uvm);
    info(x, "DescribeVMInstance", "VMIDs.0", w.vm);
    snprintf(ip, sizeof ip, "%s", fsmtest_info_str(x, 0, "InternalIP"));
    /* validation: decided before any write */
    assert_int_equal(
        fsmtest_call(x, "AddWhiteListResource", &w.t, "NATGWID", g, NULL),
        YH_EMISSING);
    assert_int_equal(
        fsmtest_call(x, "AddWhiteListResource", &w.t, "NATGWID", g,
                     "ResourceIDs.0", w.vm, "ResourceIDs.1", w.vm, NULL),
        YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "AddWhiteListResource", &w.t, "NATGWID", g,
                     "ResourceIDs.0", w.vm, "ResourceIDs.1", vm2, NULL),
        YH_EINVAL);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "no address"));
    assert_int_equal(fsmtest_call(x, "AddWhiteListResource", &w.t, "NATGWID", g,
                                  "ResourceIDs.0", uvm, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "AddWhiteListResource", &u, "NATGWID", g,
                                  "ResourceIDs.0", uvm, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "AddWhiteListResource", &x->admin,
                                  "NATGWID", g, "ResourceIDs.0", uvm, NULL),
                     YH_EINVAL); /* another tenant's machine */
    assert_int_equal(
        fsmtest_call(x, "DescribeWhiteListResource", &w.t, "NATGWID", g, NULL),
        0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    /* add: the gateway's spec changes */
    g0 = gen_of(x, g);
    assert_int_equal(
        fsmtest_call(x, "AddWhiteListResource", &w.t, "NATGWID", g,
                     "ResourceIDs.0", w.vm, "ResourceIDs.1", vm3, NULL),
        0);
    assert_int_equal(fsmtest_res_int(x, "WhiteListCount"), 2);
    assert_int_equal(event_lists(x, "Concerns", g), 1);
    assert_true(gen_of(x, g) > g0);
    assert_int_equal(fsmtest_call(x, "AddWhiteListResource", &w.t, "NATGWID", g,
                                  "ResourceIDs.0", w.vm, NULL),
                     YH_EEXIST);
    assert_int_equal(gw_int(x, g, "WhiteListCount"), 2);
    assert_int_equal(fsmtest_call(x, "DescribeWhiteListResource", &w.t,
                                  "NATGWID", g, "Limit", "1", NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
    assert_int_equal(fsmtest_n_infos(x), 1);
    assert_string_equal(fsmtest_res_str(x, "Mode"), "Automatic");
    assert_string_equal(fsmtest_info_str(x, 0, "ResourceID"), w.vm);
    assert_int_equal(
        fsmtest_call(x, "DescribeWhiteListResource", &u, "NATGWID", g, NULL),
        YH_ENOTFOUND);
    /* the mode */
    assert_int_equal(fsmtest_call(x, "EnableWhiteList", &w.t, "NATGWID", g,
                                  "IfOpen", "2", NULL),
                     YH_EINVAL);
    g0 = gen_of(x, g);
    assert_int_equal(fsmtest_call(x, "EnableWhiteList", &w.t, "NATGWID", g,
                                  "IfOpen", "1", NULL),
                     0);
    assert_string_equal(fsmtest_res_str(x, "Mode"), "Whitelist");
    assert_int_equal(event_lists(x, "Concerns", g), 1);
    assert_true(gen_of(x, g) > g0);
    assert_int_equal(fsmtest_call(x, "EnableWhiteList", &w.t, "NATGWID", g,
                                  "IfOpen", "true", NULL),
                     YH_EEXIST);
    assert_string_equal(gw_str(x, g, "Mode"), "Whitelist");
    /* a NIC of a listed machine in a served subnet: its address too */
    assert_int_equal(fsmtest_call(x, "CreateNIC", &w.t, "SubnetID", w.sn, NULL),
                     0);
    str_of(x, "NICID", nic);
    info(x, "DescribeNIC", "NICIDs.0", nic);
    snprintf(nip, sizeof nip, "%s", fsmtest_info_str(x, 0, "IP"));
    g0 = gen_of(x, g);
    assert_int_equal(
        fsmtest_call(x, "AttachNIC", &w.t, "NICID", nic, "VMID", w.vm, NULL),
        0);
    assert_int_equal(event_lists(x, "Concerns", g), 1);
    assert_true(gen_of(x, g) > g0);
    assert_int_equal(spec_get(x, g, &s), 0);
    assert_string_equal(ostr(&s.u.data, "Mode"), "Whitelist");
    l = olist(&s.u.data, "WhiteList");
    assert_int_equal(l->via.array.size, 2);
    assert_string_equal(ostr(oarr_at(l, 0), "ResourceID"), w.vm);
    ips = olist(oarr_at(l, 0), "IPs");
    assert_int_equal(ips->via.array.size, 2);
    assert_true(yh_mp_eq(&ips->via.array.ptr[0], ip));
    assert_true(yh_mp_eq(&ips->via.array.ptr[1], nip));
    assert_string_equal(ostr(oarr_at(l, 1), "ResourceID"), vm3);
    keys_ok(&s.u.data);
    spec_free(&s);
    /* delete */
    assert_int_equal(fsmtest_call(x, "DeleteWhiteListResource", &w.t, "NATGWID",
                                  g, "ResourceIDs.0", vm2, NULL),
                     YH_ENOTFOUND);
    g0 = gen_of(x, g);
    assert_int_equal(fsmtest_call(x, "DeleteWhiteListResource", &w.t, "NATGWID",
                                  g, "ResourceIDs.0", vm3, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "WhiteListCount"), 1);
    assert_true(gen_of(x, g) > g0);
    /* the purge of a listed machine takes it out; the host hears */
    assert_int_equal(fsmtest_call(x, "DetachNIC", &w.t, "NICID", nic, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", w.vm, NULL), 0);
    assert_int_equal(gw_int(x, g, "WhiteListCount"), 1); /* recycled: kept */
    g0 = gen_of(x, g);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", w.vm, NULL), 0);
    assert_int_equal(event_lists(x, "Concerns", g), 1);
    assert_true(gen_of(x, g) > g0);
    assert_int_equal(gw_int(x, g, "WhiteListCount"), 0);
    assert_int_equal(
        fsmtest_call(x, "DescribeWhiteListResource", &w.t, "NATGWID", g, NULL),
        0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    /* back to Automatic keeps the (empty) list; deleting the gateway with
     * entries drops its rows */
    assert_int_equal(fsmtest_call(x, "AddWhiteListResource", &w.t, "NATGWID", g,
                                  "ResourceIDs.0", vm3, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "EnableWhiteList", &w.t, "NATGWID", g,
                                  "IfOpen", "0", NULL),
                     0);
    assert_string_equal(fsmtest_res_str(x, "Mode"), "Automatic");
    assert_int_equal(fsmtest_call(x, "DeleteNATGW", &w.t, "NATGWID", g, NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", vm3, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", vm3, NULL), 0);
    assert_int_equal(event_lists(x, "Concerns", g), 0);
}

/* ---- an HTTPS vserver's certificate and its key sealed to the host ---- */

static void unseal_big(const char *priv,
                       const char *subject,
                       const msgpack_object *sealed,
                       char **out)
{
    static const char label[] = "yunhan-psk-seal-v1";
    const msgpack_object *v = yh_mp_get(sealed, "Ciphertext");
    size_t cap = v->via.str.size / 2 + 1;
    uint8_t k[32], blk[32], mac[32], want[32];
    uint8_t *ct = malloc(cap);
    char *hex = malloc(v->via.str.size + 1);
    int n;

    assert_non_null(ct);
    assert_non_null(hex);
    memcpy(hex, v->via.str.ptr, v->via.str.size);
    hex[v->via.str.size] = '\0';
    hmac(priv, strlen(priv), label, sizeof label, subject, strlen(subject), k);
    n = unhex(hex, ct, cap);
    unhex(ostr(sealed, "MAC"), want, sizeof want);
    {
        /* HMAC over "mac" || ciphertext, which can exceed hmac()'s buffer */
        uint8_t *buf = malloc((size_t)n + 3);
        unsigned ml = 0;
        assert_non_null(buf);
        memcpy(buf, "mac", 3);
        memcpy(buf + 3, ct, (size_t)n);
        assert_non_null(
            HMAC(EVP_sha256(), k, 32, buf, (size_t)n + 3, mac, &ml));
        free(buf);
    }
    assert_memory_equal(mac, want, 32);
    *out = malloc((size_t)n + 1);
    assert_non_null(*out);
    for (int off = 0; off < n; off += 32) {
        uint32_t i = (uint32_t)(off / 32);
        uint8_t ctr[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16),
                          (uint8_t)(i >> 8), (uint8_t)i};
        hmac(k, 32, "enc", 3, ctr, 4, blk);
        for (int j = 0; j < 32 && off + j < n; j++) {
            (*out)[off + j] = (char)(ct[off + j] ^ blk[j]);
        }
    }
    (*out)[n] = '\0';
    free(ct);
    free(hex);
}

static void lb_cert_sealed(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char lb[FSM_ID_SIZE], ssl[FSM_ID_SIZE], line[64];
    char *cert, *key, *opened = NULL;
    const msgpack_object *l, *v;
    int hi = -1;
    struct spec s;

    world(x, &w);
    fsmtest_make_cert("lb.example", &cert, &key);
    snprintf(line, sizeof line, "%.40s", strchr(key, '\n') + 1);
    assert_int_equal(fsmtest_call(x, "CreateLB", &w.t, "VPCID", w.vpc,
                                  "SubnetID", w.sn, NULL),
                     0);
    str_of(x, "LBID", lb);
    for (int i = 0; i < 3; i++) {
        if (strcmp(gw_str(x, lb, "HostID"), w.h[i]) == 0) {
            hi = i;
        }
    }
    assert_true(hi >= 0);
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &w.t, "LBID", lb, "Protocol", "TCP",
                     "FrontendPort", "22", NULL),
        0);
    assert_int_equal(fsmtest_call(x, "CreateCertificate", &w.t, "Certificate",
                                  cert, "PrivateKey", key, NULL),
                     0);
    str_of(x, "SSLID", ssl);
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &w.t, "LBID", lb, "Protocol", "HTTPS",
                     "FrontendPort", "443", "SSLID", ssl, NULL),
        0);
    assert_int_equal(spec_get(x, lb, &s), 0);
    l = olist(&s.u.data, "VServers");
    assert_int_equal(l->via.array.size, 2);
    /* TCP: no certificate */
    assert_string_equal(ostr(oarr_at(l, 0), "Certificate"), "");
    v = yh_mp_get(oarr_at(l, 0), "CertificateKeySealed");
    assert_non_null(v);
    assert_int_equal(v->type, MSGPACK_OBJECT_NIL);
    /* HTTPS: the PEM certificate and the key sealed to the host */
    v = yh_mp_get(oarr_at(l, 1), "Certificate");
    assert_non_null(v);
    assert_int_equal(v->via.str.size, strlen(cert));
    assert_memory_equal(v->via.str.ptr, cert, strlen(cert));
    v = yh_mp_get(oarr_at(l, 1), "CertificateKeySealed");
    assert_non_null(v);
    assert_int_equal(v->type, MSGPACK_OBJECT_MAP);
    assert_string_equal(ostr(v, "PublicKey"), w.hpub[hi]);
    unseal_big(w.hpriv[hi], ssl, v, &opened);
    assert_string_equal(opened, key);
    /* another host's key does not open it */
    {
        static const char label[] = "yunhan-psk-seal-v1";
        uint8_t k[32], mac[32], want[32];
        hmac(w.hpriv[(hi + 1) % 3], strlen(w.hpriv[(hi + 1) % 3]), label,
             sizeof label, ssl, strlen(ssl), k);
        unhex(ostr(v, "MAC"), want, sizeof want);
        hmac(k, 32, "mac", 3, "", 0, mac);
        assert_memory_not_equal(mac, want, 32);
    }
    /* never in clear: not in the spec, a Describe or the oplog */
    assert_false(raw_has(&s.raw, line));
    assert_false(raw_has(&s.raw, "PRIVATE KEY"));
    keys_ok(&s.u.data);
    spec_free(&s);
    assert_int_equal(
        fsmtest_call(x, "DescribeCertificate", &w.t, "SSLIDs.0", ssl, NULL), 0);
    assert_null(yh_mp_get(fsmtest_info(x, 0), "PrivateKey"));
    assert_false(oplog_has(x, line));
    /* the same state, the same bytes */
    {
        struct spec s2;
        assert_int_equal(spec_get(x, lb, &s), 0);
        assert_int_equal(spec_get(x, lb, &s2), 0);
        assert_int_equal(s.raw.len, s2.raw.len);
        assert_memory_equal(s.raw.data, s2.raw.data, s.raw.len);
        spec_free(&s);
        spec_free(&s2);
    }
    free(opened);
    free(cert);
    free(key);
}

static void unknown(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest_tick tc;
    struct world w;
    const struct fsm_actor *ag;
    char g[FSM_ID_SIZE], g2[FSM_ID_SIZE];
    int64_t gen;

    world(x, &w);
    natgw(x, &w, w.z, g);
    ag = agent_of(x, &w, g);
    gen = gen_of(x, g);
    assert_int_equal(report(x, ag, g, "Available", gen), 0);
    /* a load balancer never reported: Creating */
    assert_int_equal(fsmtest_call(x, "CreateLB", &w.t, "VPCID", w.vpc,
                                  "SubnetID", w.sn, NULL),
                     0);
    str_of(x, "LBID", g2);
    /* every lease ends */
    x->time += 31 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 3);
    assert_string_equal(gw_str(x, g, "State"), "Unknown");
    assert_string_equal(gw_str(x, g, "ObservedState"), "Unknown");
    assert_string_equal(gw_str(x, g, "DesiredState"), "Available");
    assert_string_equal(gw_str(x, g2, "State"), "Unknown");
    /* a change meanwhile stays Unknown, Updating kept aside */
    assert_int_equal(
        fsmtest_call(x, "CreateNATGWRule", &w.t, "NATGWID", g, "Protocol",
                     "UDP", "EIPPort", "53", "PrivateIP", "10.1.1.9",
                     "PrivatePort", "53", NULL),
        0);
    assert_string_equal(gw_str(x, g, "State"), "Unknown");
    /* the heartbeat: the previous values back (the rule still pending) */
    beat(x, &w);
    assert_string_equal(gw_str(x, g, "State"), "Updating");
    assert_string_equal(gw_str(x, g, "ObservedState"), "Available");
    assert_string_equal(gw_str(x, g2, "State"), "Creating");
    assert_string_equal(gw_str(x, g2, "ObservedState"), "");
    /* Unknown again; the executor reporting the current generation ends
     * the marks with its state */
    x->time += 31 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 3);
    assert_string_equal(gw_str(x, g2, "State"), "Unknown");
    assert_int_equal(
        report(x, agent_of(x, &w, g2), g2, "Available", gen_of(x, g2)), 0);
    assert_string_equal(gw_str(x, g2, "State"), "Available");
    assert_string_equal(gw_str(x, g2, "ObservedState"), "Available");
}

/* ---- billing: suspended, recovered, recycled, purged ---- */

struct find_purge
{
    const char *id;
    char gone[FSM_ID_SIZE];
    int found;
};

static int purge_cb(void *arg, uint64_t index, const uint8_t *rec, size_t len)
{
    struct find_purge *q = arg;
    msgpack_unpacked u;
    const msgpack_object *l;

    (void)index;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)rec, len, NULL),
                     MSGPACK_UNPACK_SUCCESS);
    if (yh_mp_eq(yh_mp_get(&u.data, "Action"), "_Purge") &&
        yh_mp_eq(yh_mp_get(&u.data, "ResourceID"), q->id) &&
        (l = yh_mp_get(&u.data, "Gone")) != NULL) {
        assert_int_equal(l->via.array.size, 1);
        assert_int_equal(l->via.array.ptr[0].type, MSGPACK_OBJECT_STR);
        snprintf(q->gone, sizeof q->gone, "%.*s",
                 (int)l->via.array.ptr[0].via.str.size,
                 l->via.array.ptr[0].via.str.ptr);
        q->found++;
    }
    msgpack_unpacked_destroy(&u);
    return 0;
}

static void billing(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest_tick tc;
    struct world w;
    struct find_purge q;
    char g[FSM_ID_SIZE], h[FSM_ID_SIZE];
    int64_t gen;
    int stopped = 0, gone = 0;

    world(x, &w);
    assert_int_equal(
        fsmtest_call(x, "ModifyBillingConfig", &x->admin, "Period", "10",
                     "GracePeriod", "20", "RecycleAfter", "30", "Retention",
                     "40", "HostLease", "100000", NULL),
        0);
    beat(x, &w);
    assert_int_equal(fsmtest_call(x, "ModifyPrice", &x->admin, "Spec", "NATGW",
                                  "ChargeType", "Dynamic", "Price", "7", NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "Recharge", &x->admin, "UserID", w.tid, "Amount", "20",
                     "FromType", "Bank", "SerialNo", "s1", NULL),
        0);
    natgw(x, &w, w.z, g);
    snprintf(h, sizeof h, "%s", gw_str(x, g, "HostID"));
    assert_int_equal(
        report(x, agent_of(x, &w, g), g, "Available", gen_of(x, g)), 0);
    /* into arrears: suspended, the executor told to stop it */
    for (int i = 0; i < 30 && !stopped; i++) {
        x->time += 10 * SEC;
        fsmtest_tick(x, &tc);
        stopped = strcmp(gw_str(x, g, "DesiredState"), "Stopped") == 0;
    }
    assert_true(stopped);
    assert_string_equal(gw_str(x, g, "State"), "Stopping");
    gen = gen_of(x, g);
    assert_int_equal(report(x, agent_of(x, &w, g), g, "Stopped", gen), 0);
    assert_string_equal(gw_str(x, g, "State"), "Stopped");
    /* recharged and recovered: Available again, at a new generation */
    assert_int_equal(
        fsmtest_call(x, "Recharge", &x->admin, "UserID", w.tid, "Amount", "100",
                     "FromType", "Bank", "SerialNo", "s2", NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "RecoverResource", &w.t, "ResourceID", g, NULL), 0);
    assert_string_equal(gw_str(x, g, "DesiredState"), "Available");
    assert_string_equal(gw_str(x, g, "State"), "Updating");
    assert_true(gen_of(x, g) > gen);
    /* arrears again, never recovered: recycled, then purged; the purge
     * names the host in Gone */
    for (int i = 0; i < 200 && !gone; i++) {
        x->time += 10 * SEC;
        fsmtest_tick(x, &tc);
        assert_int_equal(
            fsmtest_call(x, "DescribeNATGW", &x->admin, "NATGWIDs.0", g, NULL),
            0);
        if (fsmtest_res_int(x, "TotalCount") == 0) {
            assert_int_equal(fsmtest_call(x, "DescribeRecycledResource",
                                          &x->admin, "ResourceIDs.0", g, NULL),
                             0);
            gone = fsmtest_res_int(x, "TotalCount") == 0;
        }
    }
    assert_true(gone);
    memset(&q, 0, sizeof q);
    q.id = g;
    assert_int_equal(fsm_oplog_walk(x->f, 1, 100000, purge_cb, &q), 0);
    assert_int_equal(q.found, 1);
    assert_string_equal(q.gone, h);
    assert_int_equal(host_int(x, h, "GatewayCount"), 0);
}

/* ---- determinism ---- */

static void determinism(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest *y = fsmtest_new();
    struct world w;
    char *dump;

    x->log = fsmtest_log_new(3000);
    fsmtest_bootstrap_copy(y);
    world(x, &w);
    vpn_body(x, &w);
    nat_body(x, &w);
    fsmtest_replay(y->f, x->log, 7, 0);
    dump = fsmtest_assert_same(x->f, y->f);
    assert_non_null(strstr(dump, "\"GatewayCount\""));
    fsmtest_assert_restores(x->f, dump);
    {
        /* the specs, sealed key included, are the same bytes */
        struct yh_buf a = YH_BUF_INIT, b = YH_BUF_INIT;
        char ha[FSM_ID_SIZE], hb[FSM_ID_SIZE];
        assert_int_equal(fsm_host_spec(x->f, "vpngw-00000001", ha, &a), 0);
        assert_int_equal(fsm_host_spec(y->f, "vpngw-00000001", hb, &b), 0);
        assert_string_equal(ha, hb);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        yh_buf_release(&a);
        yh_buf_release(&b);
    }
    free(dump);
    fsmtest_free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(placement, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(stale, fsmtest_setup, fsmtest_teardown),
        cmocka_unit_test_setup_teardown(nat_spec, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(lb_spec, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(vpn_spec, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(nat_whitelist, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(lb_cert_sealed, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(unknown, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(billing, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(determinism, fsmtest_setup,
                                        fsmtest_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
