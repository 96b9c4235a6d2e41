/* Unit tests of NIC attachments and network gateways: AttachNIC/DetachNIC
 * (same VPC only, the primary NIC stays), a machine's network in its agent
 * spec (NICs, security group rules, EIPs; NetGeneration and the oplog
 * Concerns moving with every change), NAT gateways and DNAT rules (port
 * ranges, overlaps), load balancers, vservers and backends (cross-VPC
 * refused), certificates (OpenSSL-checked, the key never shown), IPsec
 * VPN (the pre-shared key never shown), tenant isolation everywhere,
 * deletes refused while in use, quotas, billing and the purge of a
 * gateway, and determinism of the whole stream. */
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
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fsm/base/buf.h"
#include "fsm/base/err.h"
#include "fsm/base/mp.h"
#include "fsm/fsm.h"
#include "tests/lib/fsmtest.h"

/* ---- helpers ---- */

static void str_of(struct fsmtest *x, const char *key, char *out)
{
    snprintf(out, FSM_ID_SIZE, "%s", fsmtest_res_str(x, key));
}

static int msg_has(struct fsmtest *x, const char *needle)
{
    const char *m = fsmtest_res_str(x, "Message");

    if (strstr(m, needle) == NULL) {
        fprintf(stderr, "message '%s' lacks '%s'\n", m, needle);
        return 0;
    }
    return 1;
}

/* Whether the bytes of the last result contain @s. */
static int out_has(struct fsmtest *x, const char *s)
{
    return memmem(x->resbuf.data, x->resbuf.len, s, strlen(s)) != NULL;
}

/* Whether the last oplog event lists @vm in Concerns. */
static int concerns(struct fsmtest *x, const char *vm)
{
    msgpack_unpacked u;
    const msgpack_object *l;
    int found = 0;

    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)x->event.data,
                                         x->event.len, NULL),
                     MSGPACK_UNPACK_SUCCESS);
    l = yh_mp_get(&u.data, "Concerns");
    for (uint32_t i = 0; l != NULL && i < l->via.array.size; i++) {
        found |= yh_mp_eq(&l->via.array.ptr[i], vm);
    }
    msgpack_unpacked_destroy(&u);
    return found;
}

struct world
{
    struct fsm_actor t, u;                   /* tenants */
    char tid[FSM_ID_SIZE], uid[FSM_ID_SIZE]; /* their IDs */
    char z[FSM_ID_SIZE], img[FSM_ID_SIZE], host[FSM_ID_SIZE];
    struct fsm_actor agent;                /* the host's executor */
    char v1[FSM_ID_SIZE], v2[FSM_ID_SIZE]; /* t's VPCs */
    char s1[FSM_ID_SIZE], s2[FSM_ID_SIZE]; /* a subnet in each */
    char s1b[FSM_ID_SIZE];                 /* a second subnet of v1 */
    char vu[FSM_ID_SIZE], su[FSM_ID_SIZE]; /* u's VPC and subnet */
    char a[FSM_ID_SIZE], a2[FSM_ID_SIZE];  /* t's machines in s1 */
    char b[FSM_ID_SIZE];                   /* t's machine in s2 */
    char bare[FSM_ID_SIZE];                /* t's machine, no network */
    char um[FSM_ID_SIZE];                  /* u's machine in su */
};

static void vpc(struct fsmtest *x,
                const struct fsm_actor *a,
                const char *net,
                char *out)
{
    assert_int_equal(
        fsmtest_call(x, "CreateVPC", a, "Name", "v", "Network", net, NULL), 0);
    str_of(x, "VPCID", out);
}

static void subnet(struct fsmtest *x,
                   const struct fsm_actor *a,
                   const char *vpc_id,
                   const char *net,
                   char *out)
{
    assert_int_equal(fsmtest_call(x, "CreateSubnet", a, "VPCID", vpc_id,
                                  "Network", net, NULL),
                     0);
    str_of(x, "SubnetID", out);
}

static void vm(struct fsmtest *x,
               struct world *w,
               const struct fsm_actor *a,
               const char *sn,
               char *out)
{
    if (sn != NULL) {
        assert_int_equal(fsmtest_call(x, "CreateVMInstance", a, "ZoneID", w->z,
                                      "ImageID", w->img, "CPU", "1", "Memory",
                                      "1024", "SubnetID", sn, NULL),
                         0);
    } else {
        assert_int_equal(
            fsmtest_call(x, "CreateVMInstance", a, "ZoneID", w->z, "ImageID",
                         w->img, "CPU", "1", "Memory", "1024", NULL),
            0);
    }
    str_of(x, "VMID", out);
}

static void world(struct fsmtest *x, struct world *w)
{
    struct fsm_key key;

    fsmtest_make_tenant(x, "t@x.io", &w->t, w->tid);
    fsmtest_make_tenant(x, "u@x.io", &w->u, w->uid);
    fsmtest_storage(x, w->z);
    assert_int_equal(fsmtest_call(x, "RegisterHost", &x->admin, "ZoneID", w->z,
                                  "CPU", "64", "Memory", "262144", NULL),
                     0);
    str_of(x, "HostID", w->host);
    assert_int_equal(fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"), &key),
                     0);
    w->agent = key.actor;
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &w->agent, NULL), 0);
    assert_int_equal(fsmtest_call(x, "CreateImage", &x->admin, "Name", "debian",
                                  "Size", "10", NULL),
                     0);
    str_of(x, "ImageID", w->img);
    vpc(x, &w->t, "10.1.0.0/16", w->v1);
    vpc(x, &w->t, "10.2.0.0/16", w->v2);
    vpc(x, &w->u, "10.1.0.0/16", w->vu);
    subnet(x, &w->t, w->v1, "10.1.1.0/24", w->s1);
    subnet(x, &w->t, w->v1, "10.1.2.0/24", w->s1b);
    subnet(x, &w->t, w->v2, "10.2.1.0/24", w->s2);
    subnet(x, &w->u, w->vu, "10.1.1.0/24", w->su);
    vm(x, w, &w->t, w->s1, w->a);
    vm(x, w, &w->t, w->s1, w->a2);
    vm(x, w, &w->t, w->s2, w->b);
    vm(x, w, &w->t, NULL, w->bare);
    vm(x, w, &w->u, w->su, w->um);
    assert_int_equal(
        fsmtest_call(x, "CreateEIPPool", &x->admin, "Name", "p", "Network",
                     "198.51.100.0/24", "OperatorName", "Bgp", NULL),
        0);
}

static void eip(struct fsmtest *x, const struct fsm_actor *a, char *out)
{
    assert_int_equal(fsmtest_call(x, "AllocateEIP", a, "OperatorName", "Bgp",
                                  "Bandwidth", "5", NULL),
                     0);
    str_of(x, "EIPID", out);
}

static void nic(struct fsmtest *x,
                const struct fsm_actor *a,
                const char *sn,
                char *out)
{
    assert_int_equal(fsmtest_call(x, "CreateNIC", a, "SubnetID", sn, NULL), 0);
    str_of(x, "NICID", out);
}

/* A decoded agent spec. */
struct spec
{
    char host[FSM_ID_SIZE];
    struct yh_buf raw;
    msgpack_unpacked u;
};

static void spec_get(struct fsmtest *x, const char *id, struct spec *s)
{
    memset(s, 0, sizeof *s);
    msgpack_unpacked_init(&s->u);
    assert_int_equal(fsm_host_spec(x->f, id, s->host, &s->raw), 0);
    assert_int_equal(
        msgpack_unpack_next(&s->u, (const char *)s->raw.data, s->raw.len, NULL),
        MSGPACK_UNPACK_SUCCESS);
}

static void spec_free(struct spec *s)
{
    msgpack_unpacked_destroy(&s->u);
    yh_buf_release(&s->raw);
}

static const msgpack_object *spec_list(struct spec *s, const char *key)
{
    const msgpack_object *l = yh_mp_get(&s->u.data, key);

    assert_non_null(l);
    assert_int_equal(l->type, MSGPACK_OBJECT_ARRAY);
    return l;
}

static int64_t spec_int(struct spec *s, const char *key)
{
    int64_t v = -1;

    assert_int_equal(yh_mp_int(&s->u.data, key, &v), 0);
    return v;
}

static int64_t info_int(struct fsmtest *x, const char *key)
{
    return fsmtest_info_int(x, 0, key);
}

/* ---- NIC attachments ---- */

static void nic_attach(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char n1[FSM_ID_SIZE], n2[FSM_ID_SIZE], n3[FSM_ID_SIZE], nu[FSM_ID_SIZE];
    char rev[24];
    struct spec s;
    int64_t gen;

    world(x, &w);
    nic(x, &w.t, w.s1, n1);
    nic(x, &w.t, w.s2, n2);
    nic(x, &w.t, w.s1b, n3);
    nic(x, &w.u, w.su, nu);
    /* parameters */
    assert_int_equal(fsmtest_call(x, "AttachNIC", &w.t, "NICID", n1, NULL),
                     YH_EMISSING);
    /* tenant isolation: u neither sees nor attaches t's NIC, nor to t's
     * machine */
    assert_int_equal(
        fsmtest_call(x, "AttachNIC", &w.u, "NICID", n1, "VMID", w.um, NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "AttachNIC", &w.u, "NICID", nu, "VMID", w.a, NULL),
        YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "DescribeNIC", &w.u, "NICIDs.0", n1, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    /* across VPCs: refused */
    assert_int_equal(
        fsmtest_call(x, "AttachNIC", &w.t, "NICID", n2, "VMID", w.a, NULL),
        YH_EINVAL);
    assert_true(msg_has(x, w.v2));
    /* the admin cannot join two tenants either */
    assert_int_equal(
        fsmtest_call(x, "AttachNIC", &x->admin, "NICID", nu, "VMID", w.a, NULL),
        YH_EINVAL);
    /* attach: in the state at once, the machine's spec shows it */
    spec_get(x, w.a, &s);
    gen = yh_mp_get(&s.u.data, "NetGeneration") != NULL
              ? spec_int(&s, "NetGeneration")
              : 0;
    assert_int_equal(spec_list(&s, "NICs")->via.array.size, 0);
    spec_free(&s);
    assert_int_equal(
        fsmtest_call(x, "AttachNIC", &w.t, "NICID", n1, "VMID", w.a, NULL), 0);
    assert_true(concerns(x, w.a));
    spec_get(x, w.a, &s);
    assert_string_equal(s.host, w.host);
    assert_true(spec_int(&s, "NetGeneration") > gen);
    assert_int_equal(spec_int(&s, "NetGeneration"), (int64_t)x->index);
    {
        const msgpack_object *l = spec_list(&s, "NICs");
        assert_int_equal(l->via.array.size, 1);
        assert_true(yh_mp_eq(yh_mp_get(&l->via.array.ptr[0], "NICID"), n1));
        assert_true(yh_mp_eq(yh_mp_get(&l->via.array.ptr[0], "Network"),
                             "10.1.1.0/24"));
        assert_non_null(yh_mp_get(&l->via.array.ptr[0], "MAC"));
    }
    spec_free(&s);
    assert_int_equal(fsmtest_call(x, "DescribeNIC", &w.t, "NICIDs.0", n1, NULL),
                     0);
    assert_string_equal(fsmtest_info_str(x, 0, "VMID"), w.a);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "InUse");
    /* twice, elsewhere, deleted while attached */
    assert_int_equal(
        fsmtest_call(x, "AttachNIC", &w.t, "NICID", n1, "VMID", w.a, NULL),
        YH_EEXIST);
    assert_int_equal(
        fsmtest_call(x, "AttachNIC", &w.t, "NICID", n1, "VMID", w.a2, NULL),
        YH_ESTATE);
    assert_int_equal(fsmtest_call(x, "DeleteNIC", &w.t, "NICID", n1, NULL),
                     YH_ESTATE);
    /* detach: another machine named is 121, a stale IfRevision 160 */
    assert_int_equal(
        fsmtest_call(x, "DetachNIC", &w.t, "NICID", n1, "VMID", w.a2, NULL),
        YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "DetachNIC", &w.t, "NICID", n1,
                                  "IfRevision", "1", NULL),
                     YH_ECONFLICT);
    assert_int_equal(fsmtest_call(x, "DetachNIC", &w.u, "NICID", n1, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "DescribeNIC", &w.t, "NICIDs.0", n1, NULL),
                     0);
    snprintf(rev, sizeof rev, "%lld", (long long)info_int(x, "Revision"));
    assert_int_equal(fsmtest_call(x, "DetachNIC", &w.t, "NICID", n1,
                                  "IfRevision", rev, NULL),
                     0);
    assert_true(concerns(x, w.a));
    assert_int_equal(fsmtest_call(x, "DetachNIC", &w.t, "NICID", n1, NULL),
                     YH_ESTATE);
    spec_get(x, w.a, &s);
    assert_int_equal(spec_list(&s, "NICs")->via.array.size, 0);
    spec_free(&s);
    /* it moves to another machine of the VPC */
    assert_int_equal(
        fsmtest_call(x, "AttachNIC", &w.t, "NICID", n1, "VMID", w.a2, NULL), 0);
    /* a machine without a network: the first NIC is its primary one and
     * gives it its VPC; it cannot be detached */
    assert_int_equal(
        fsmtest_call(x, "AttachNIC", &w.t, "NICID", n3, "VMID", w.bare, NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "DescribeVMInstance", &w.t, "VMIDs.0", w.bare, NULL),
        0);
    assert_string_equal(fsmtest_info_str(x, 0, "VPCID"), w.v1);
    assert_int_equal(fsmtest_call(x, "DetachNIC", &w.t, "NICID", n3, NULL),
                     YH_ESTATE);
    assert_true(msg_has(x, "primary"));
    /* now of VPC v1: a NIC of v2 is refused */
    assert_int_equal(
        fsmtest_call(x, "AttachNIC", &w.t, "NICID", n2, "VMID", w.bare, NULL),
        YH_EINVAL);
    /* the purge of the machine frees its NICs */
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", w.bare, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "AttachNIC", &w.t, "NICID", n2, "VMID", w.bare, NULL),
        YH_ESTATE); /* recycled */
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", w.bare, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DescribeNIC", &w.t, "NICIDs.0", n3, NULL),
                     0);
    assert_string_equal(fsmtest_info_str(x, 0, "VMID"), "");
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Available");
    assert_int_equal(fsmtest_call(x, "DeleteNIC", &w.t, "NICID", n3, NULL), 0);
}

static void nic_limit(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char n[FSM_ID_SIZE];

    world(x, &w);
    for (int i = 0; i < 8; i++) {
        nic(x, &w.t, w.s1, n);
        assert_int_equal(
            fsmtest_call(x, "AttachNIC", &w.t, "NICID", n, "VMID", w.a, NULL),
            0);
    }
    nic(x, &w.t, w.s1, n);
    assert_int_equal(
        fsmtest_call(x, "AttachNIC", &w.t, "NICID", n, "VMID", w.a, NULL),
        YH_EQUOTA);
}

/* ---- security groups and EIPs in the spec ---- */

static void spec_network(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char sg[FSM_ID_SIZE], rule[FSM_ID_SIZE], e[FSM_ID_SIZE];
    struct spec s;
    const msgpack_object *l;
    int64_t gen;

    world(x, &w);
    assert_int_equal(
        fsmtest_call(x, "CreateSecurityGroup", &w.t, "Name", "web", NULL), 0);
    str_of(x, "SecurityGroupID", sg);
    assert_int_equal(
        fsmtest_call(x, "CreateSecurityGroupRule", &w.t, "SecurityGroupID", sg,
                     "Rules.0", "tcp|22|0.0.0.0/0|accept|high", NULL),
        0);
    assert_false(concerns(x, w.a)); /* not bound yet */
    assert_int_equal(
        fsmtest_call(x, "BindSecurityGroup", &w.t, "SecurityGroupID", sg,
                     "ResourceID", w.a, NULL),
        0);
    assert_true(concerns(x, w.a));
    spec_get(x, w.a, &s);
    gen = spec_int(&s, "NetGeneration");
    assert_int_equal(gen, (int64_t)x->index);
    l = spec_list(&s, "SecurityGroups");
    assert_int_equal(l->via.array.size, 1);
    assert_true(
        yh_mp_eq(yh_mp_get(&l->via.array.ptr[0], "SecurityGroupID"), sg));
    l = yh_mp_get(&l->via.array.ptr[0], "Rules");
    assert_int_equal(l->via.array.size, 1);
    assert_true(
        yh_mp_eq(&l->via.array.ptr[0], "TCP|22|0.0.0.0/0|ACCEPT|HIGH|INGRESS"));
    spec_free(&s);
    /* a rule of a bound group: the machine's NetGeneration moves */
    assert_int_equal(
        fsmtest_call(x, "CreateSecurityGroupRule", &w.t, "SecurityGroupID", sg,
                     "Rules.0", "UDP|53|10.0.0.0/8|ACCEPT|LOW", NULL),
        0);
    assert_true(concerns(x, w.a));
    spec_get(x, w.a, &s);
    assert_true(spec_int(&s, "NetGeneration") > gen);
    gen = spec_int(&s, "NetGeneration");
    l = spec_list(&s, "SecurityGroups");
    assert_int_equal(yh_mp_get(&l->via.array.ptr[0], "Rules")->via.array.size,
                     2);
    spec_free(&s);
    assert_int_equal(fsmtest_call(x, "DescribeSecurityGroup", &w.t, NULL), 0);
    {
        const msgpack_object *rules = yh_mp_get(fsmtest_info(x, 0), "Rules");
        const msgpack_object *rid =
            yh_mp_get(&rules->via.array.ptr[1], "RuleID");
        snprintf(rule, sizeof rule, "%.*s", (int)rid->via.str.size,
                 rid->via.str.ptr);
    }
    assert_int_equal(
        fsmtest_call(x, "DeleteSecurityGroupRule", &w.t, "RuleID", rule, NULL),
        0);
    assert_true(concerns(x, w.a));
    /* EIPs */
    eip(x, &w.t, e);
    assert_int_equal(
        fsmtest_call(x, "BindEIP", &w.t, "EIPID", e, "ResourceID", w.a, NULL),
        0);
    assert_true(concerns(x, w.a));
    spec_get(x, w.a, &s);
    assert_true(spec_int(&s, "NetGeneration") > gen);
    l = spec_list(&s, "EIPs");
    assert_int_equal(l->via.array.size, 1);
    assert_true(yh_mp_eq(yh_mp_get(&l->via.array.ptr[0], "EIPID"), e));
    assert_true(
        yh_mp_eq(yh_mp_get(&l->via.array.ptr[0], "IP"), "198.51.100.2"));
    spec_free(&s);
    assert_int_equal(fsmtest_call(x, "DescribeEIP", &w.t, NULL), 0);
    assert_string_equal(fsmtest_info_str(x, 0, "BindResourceType"), "VM");
    assert_int_equal(fsmtest_call(x, "ModifyEIPBandwidth", &w.t, "EIPID", e,
                                  "Bandwidth", "7", NULL),
                     0);
    assert_true(concerns(x, w.a));
    assert_int_equal(fsmtest_call(x, "UnBindEIP", &w.t, "EIPID", e, NULL), 0);
    assert_true(concerns(x, w.a));
    spec_get(x, w.a, &s);
    assert_int_equal(spec_list(&s, "EIPs")->via.array.size, 0);
    spec_free(&s);
    assert_int_equal(
        fsmtest_call(x, "UnBindSecurityGroup", &w.t, "SecurityGroupID", sg,
                     "ResourceID", w.a, NULL),
        0);
    assert_true(concerns(x, w.a));
    spec_get(x, w.a, &s);
    assert_int_equal(spec_list(&s, "SecurityGroups")->via.array.size, 0);
    spec_free(&s);
    /* a rejected change concerns nobody */
    assert_int_equal(
        fsmtest_call(x, "BindEIP", &w.u, "EIPID", e, "ResourceID", w.a, NULL),
        YH_ENOTFOUND);
    assert_false(concerns(x, w.a));
}

/* ---- NAT gateways ---- */

static void natgw(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char e1[FSM_ID_SIZE], e2[FSM_ID_SIZE], eu[FSM_ID_SIZE];
    char gw[FSM_ID_SIZE], r1[FSM_ID_SIZE];

    world(x, &w);
    eip(x, &w.t, e1);
    eip(x, &w.t, e2);
    eip(x, &w.u, eu);
    /* parameters */
    assert_int_equal(
        fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.v1, "EIPID", e1, NULL),
        YH_EMISSING);
    assert_int_equal(
        fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.v1, "EIPID", e1,
                     "SubnetIDs.0", w.s1, "Mode", "sometimes", NULL),
        YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.v1,
                                  "EIPID", e1, "SubnetIDs.0", w.s2, NULL),
                     YH_EINVAL); /* a subnet of another VPC */
    assert_int_equal(
        fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.v1, "EIPID", e1,
                     "SubnetIDs.0", w.s1, "SubnetIDs.1", w.s1, NULL),
        YH_EINVAL);
    /* tenant isolation: u cannot use t's VPC, t cannot use u's EIP */
    assert_int_equal(fsmtest_call(x, "CreateNATGW", &w.u, "VPCID", w.v1,
                                  "EIPID", eu, "SubnetIDs.0", w.s1, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.v1,
                                  "EIPID", eu, "SubnetIDs.0", w.s1, NULL),
                     YH_ENOTFOUND);
    /* a bound EIP */
    assert_int_equal(
        fsmtest_call(x, "BindEIP", &w.t, "EIPID", e2, "ResourceID", w.a, NULL),
        0);
    assert_int_equal(fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.v1,
                                  "EIPID", e2, "SubnetIDs.0", w.s1, NULL),
                     YH_ESTATE);
    /* created: the EIP is bound to it */
    assert_int_equal(fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.v1,
                                  "EIPID", e1, "SubnetIDs.0", w.s1, "Mode",
                                  "whitelist", "Name", "gw1", NULL),
                     0);
    str_of(x, "NATGWID", gw);
    assert_non_null(strstr(gw, "natgw-"));
    assert_int_equal(fsmtest_call(x, "DescribeEIP", &w.t, "EIPIDs.0", e1, NULL),
                     0);
    assert_string_equal(fsmtest_info_str(x, 0, "BindResourceID"), gw);
    assert_string_equal(fsmtest_info_str(x, 0, "BindResourceType"), "NATGW");
    /* a subnet is served by one gateway */
    assert_int_equal(fsmtest_call(x, "UnBindEIP", &w.t, "EIPID", e2,
                                  "ResourceID", w.a, NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.v1, "EIPID", e2,
                     "SubnetIDs.0", w.s1b, "SubnetIDs.1", w.s1, NULL),
        YH_EEXIST);
    assert_true(msg_has(x, gw));
    /* the subnet cannot go while served */
    assert_int_equal(
        fsmtest_call(x, "DeleteSubnet", &w.t, "SubnetID", w.s1, NULL),
        YH_ESTATE);
    /* the VPC cannot go while it has a gateway */
    assert_int_equal(fsmtest_call(x, "DeleteVPC", &w.t, "VPCID", w.v1, NULL),
                     YH_ESTATE);
    /* rules: ports, widths, addresses */
    {
        static const char *const bad[][3] = {
            {"0", "80", "10.1.1.10"},           {"70000", "80", "10.1.1.10"},
            {"20-10", "20-10", "10.1.1.10"},    {"080", "80", "10.1.1.10"},
            {"8000-8010", "80", "10.1.1.10"},   {"80", "8080", "10.1.9.10"},
            {"80", "8080", "fd00::1"},          {"8-", "8", "10.1.1.10"},
            {"1-65536", "1-65536", "10.1.1.1"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            int rc = fsmtest_call(x, "CreateNATGWRule", &w.t, "NATGWID", gw,
                                  "Protocol", "TCP", "EIPPort", bad[i][0],
                                  "PrivatePort", bad[i][1], "PrivateIP",
                                  bad[i][2], NULL);
            if (rc != YH_EINVAL) {
                fail_msg("rule %s->%s:%s gave %d", bad[i][0], bad[i][2],
                         bad[i][1], rc);
            }
        }
    }
    assert_int_equal(
        fsmtest_call(x, "CreateNATGWRule", &w.t, "NATGWID", gw, "Protocol",
                     "ICMP", "EIPPort", "80", "PrivatePort", "80", "PrivateIP",
                     "10.1.1.10", NULL),
        YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "CreateNATGWRule", &w.t, "NATGWID", gw, "Protocol",
                     "tcp", "EIPPort", "80", "PrivatePort", "8080", "PrivateIP",
                     "10.1.1.10", NULL),
        0);
    str_of(x, "RuleID", r1);
    /* duplicate and overlapping (protocol, EIP port) */
    assert_int_equal(
        fsmtest_call(x, "CreateNATGWRule", &w.t, "NATGWID", gw, "Protocol",
                     "TCP", "EIPPort", "80", "PrivatePort", "80", "PrivateIP",
                     "10.1.1.11", NULL),
        YH_EEXIST);
    assert_true(msg_has(x, r1));
    assert_int_equal(
        fsmtest_call(x, "CreateNATGWRule", &w.t, "NATGWID", gw, "Protocol",
                     "TCP", "EIPPort", "70-90", "PrivatePort", "170-190",
                     "PrivateIP", "10.1.1.11", NULL),
        YH_EEXIST);
    assert_int_equal(
        fsmtest_call(x, "CreateNATGWRule", &w.t, "NATGWID", gw, "Protocol",
                     "UDP", "EIPPort", "70-90", "PrivatePort", "170-190",
                     "PrivateIP", "10.1.1.11", NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "CreateNATGWRule", &w.t, "NATGWID", gw, "Protocol",
                     "TCP", "EIPPort", "81-90", "PrivatePort", "81-90",
                     "PrivateIP", "10.1.1.11", NULL),
        0);
    /* u neither sees nor changes them */
    assert_int_equal(
        fsmtest_call(x, "CreateNATGWRule", &w.u, "NATGWID", gw, "Protocol",
                     "TCP", "EIPPort", "1000", "PrivatePort", "1000",
                     "PrivateIP", "10.1.1.10", NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "DeleteNATGWRule", &w.u, "RuleID", r1, NULL),
        YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "DeleteNATGW", &w.u, "NATGWID", gw, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "DescribeNATGW", &w.u, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(
        fsmtest_call(x, "DescribeNATGW", &w.u, "NATGWIDs.0", gw, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    /* Describe with its rules and EIP */
    assert_int_equal(fsmtest_call(x, "DescribeNATGW", &w.t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "Mode"), "Whitelist");
    assert_string_equal(fsmtest_info_str(x, 0, "EIPID"), e1);
    assert_string_equal(fsmtest_info_str(x, 0, "EIPAddr"), "198.51.100.2");
    assert_int_equal(info_int(x, "RuleCount"), 3);
    {
        const msgpack_object *rules = yh_mp_get(fsmtest_info(x, 0), "Rules");
        assert_int_equal(rules->via.array.size, 3);
        assert_true(
            yh_mp_eq(yh_mp_get(&rules->via.array.ptr[0], "Protocol"), "TCP"));
        assert_true(yh_mp_eq(yh_mp_get(&rules->via.array.ptr[0], "PrivatePort"),
                             "8080"));
        assert_true(
            yh_mp_eq(yh_mp_get(&rules->via.array.ptr[1], "EIPPort"), "70-90"));
    }
    assert_int_equal(fsmtest_call(x, "DescribeNATGW", &w.t, "RuleLimit", "1",
                                  "RuleOffset", "2", NULL),
                     0);
    assert_int_equal(yh_mp_get(fsmtest_info(x, 0), "Rules")->via.array.size, 1);
    assert_int_equal(
        fsmtest_call(x, "DeleteNATGWRule", &w.t, "RuleID", r1, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "DeleteNATGWRule", &w.t, "RuleID", r1, NULL),
        YH_ENOTFOUND);
    /* its EIP: unbind, bind another; a second one is refused */
    assert_int_equal(fsmtest_call(x, "UnBindEIP", &w.t, "EIPID", e1, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "BindEIP", &w.t, "EIPID", e2, "ResourceID", gw, NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "BindEIP", &w.t, "EIPID", e1, "ResourceID", gw, NULL),
        YH_ESTATE);
    assert_int_equal(
        fsmtest_call(x, "BindEIP", &w.u, "EIPID", eu, "ResourceID", gw, NULL),
        YH_ENOTFOUND);
    /* quota */
    assert_int_equal(fsmtest_call(x, "ModifyQuota", &x->admin, "UserID", w.tid,
                                  "ResourceType", "NATGW", "Limit", "1", NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.v1,
                                  "EIPID", e1, "SubnetIDs.0", w.s1b, NULL),
                     YH_EQUOTA);
    /* delete: the EIP is free, the rules gone, the subnet deletable */
    assert_int_equal(fsmtest_call(x, "DeleteNATGW", &w.t, "NATGWID", gw,
                                  "IfRevision", "1", NULL),
                     YH_ECONFLICT);
    assert_int_equal(fsmtest_call(x, "DeleteNATGW", &w.t, "NATGWID", gw, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "DescribeEIP", &w.t, "EIPIDs.0", e2, NULL),
                     0);
    assert_string_equal(fsmtest_info_str(x, 0, "BindResourceID"), "");
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Available");
    assert_int_equal(fsmtest_call(x, "DeleteNATGWRule", &w.t, "RuleID",
                                  "natrule-00000003", NULL),
                     YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "DeleteSubnet", &w.t, "SubnetID", w.s1b, NULL), 0);
    assert_int_equal(fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.v1,
                                  "EIPID", e1, "SubnetIDs.0", w.s1, NULL),
                     0);
}

/* ---- certificates ---- */

static void certificates_and_lb(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char *c1, *k1, *c2, *k2;
    char ssl[FSM_ID_SIZE], sslu[FSM_ID_SIZE], lb[FSM_ID_SIZE];
    char lbi[FSM_ID_SIZE], vs[FSM_ID_SIZE], vs2[FSM_ID_SIZE];
    char rs[FSM_ID_SIZE], e[FSM_ID_SIZE], e2[FSM_ID_SIZE];
    char key_line[64];

    world(x, &w);
    fsmtest_make_cert("www.example.com", &c1, &k1);
    fsmtest_make_cert("other.example.com", &c2, &k2);
    /* a distinctive line of the key's base64 */
    snprintf(key_line, sizeof key_line, "%.40s", strchr(k1, '\n') + 1);
    /* validation */
    assert_int_equal(
        fsmtest_call(x, "CreateCertificate", &w.t, "Name", "c", "Certificate",
                     "hello", "PrivateKey", k1, NULL),
        YH_EINVAL);
    assert_true(msg_has(x, "Certificate"));
    assert_int_equal(
        fsmtest_call(x, "CreateCertificate", &w.t, "Name", "c", "Certificate",
                     c1, "PrivateKey", "nope", NULL),
        YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateCertificate", &w.t, "Name", "c",
                                  "Certificate", c1, "PrivateKey", k2, NULL),
                     YH_EINVAL);
    assert_true(msg_has(x, "does not match"));
    assert_int_equal(fsmtest_call(x, "CreateCertificate", &w.t, "Name", "c",
                                  "Certificate", c1, NULL),
                     YH_EMISSING);
    {
        /* a key pasted with the certificate would be shown: refused */
        size_t n = strlen(k1) + strlen(c1) + 1;
        char *both = malloc(n);
        assert_non_null(both);
        snprintf(both, n, "%s%s", k1, c1);
        assert_int_equal(
            fsmtest_call(x, "CreateCertificate", &w.t, "Name", "c",
                         "Certificate", both, "PrivateKey", k1, NULL),
            YH_EINVAL);
        assert_true(msg_has(x, "contains a private key"));
        free(both);
    }
    assert_int_equal(fsmtest_call(x, "CreateCertificate", &w.t, "Name", "c",
                                  "Certificate", c1, "PrivateKey", k1, NULL),
                     0);
    str_of(x, "SSLID", ssl);
    assert_false(out_has(x, key_line));
    assert_int_equal(fsmtest_call(x, "CreateCertificate", &w.u, "Name", "c",
                                  "Certificate", c2, "PrivateKey", k2, NULL),
                     0);
    str_of(x, "SSLID", sslu);
    assert_int_equal(fsmtest_call(x, "DescribeCertificate", &w.t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "CommonName"),
                        "www.example.com");
    assert_int_equal(strlen(fsmtest_info_str(x, 0, "Fingerprint")), 64);
    assert_true(info_int(x, "NotAfter") > info_int(x, "NotBefore"));
    assert_false(out_has(x, key_line));
    assert_false(out_has(x, "PRIVATE KEY"));
    assert_true(out_has(x, "BEGIN CERTIFICATE"));
    /* load balancers */
    assert_int_equal(fsmtest_call(x, "CreateLB", &w.t, "VPCID", w.v1,
                                  "SubnetID", w.s2, NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateLB", &w.u, "VPCID", w.v1,
                                  "SubnetID", w.s1, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "CreateLB", &w.t, "VPCID", w.v1,
                                  "SubnetID", w.s1, "LBType", "outside", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateLB", &w.t, "VPCID", w.v1,
                                  "SubnetID", w.s1, "Name", "web", NULL),
                     0);
    str_of(x, "LBID", lb);
    assert_string_equal(fsmtest_res_str(x, "PrivateIP"), "10.1.1.4");
    assert_int_equal(
        fsmtest_call(x, "CreateLB", &w.t, "VPCID", w.v1, "SubnetID", w.s1,
                     "LBType", "internal", "PrivateIP", "10.1.1.100", NULL),
        0);
    str_of(x, "LBID", lbi);
    assert_int_equal(
        fsmtest_call(x, "CreateLB", &w.t, "VPCID", w.v1, "SubnetID", w.s1,
                     "PrivateIP", "10.1.1.100", NULL),
        YH_EEXIST);
    /* vservers */
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &w.t, "LBID", lb, "Protocol", "HTTPS",
                     "FrontendPort", "443", NULL),
        YH_EMISSING);
    assert_true(msg_has(x, "SSLID"));
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &w.t, "LBID", lb, "Protocol", "HTTPS",
                     "FrontendPort", "443", "SSLID", sslu, NULL),
        YH_ENOTFOUND); /* u's certificate */
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &w.t, "LBID", lb, "Protocol", "TCP",
                     "FrontendPort", "80", "SSLID", ssl, NULL),
        YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateVServer", &w.t, "LBID", lb,
                                  "Protocol", "TCP", "FrontendPort", "80",
                                  "HealthCheckType", "Path", "Path", "/", NULL),
                     YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &w.t, "LBID", lb, "Protocol", "HTTP",
                     "FrontendPort", "80", "HealthCheckType", "Path", "Path",
                     "health", NULL),
        YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &w.t, "LBID", lb, "Protocol", "TCP",
                     "FrontendPort", "70000", NULL),
        YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &w.t, "LBID", lb, "Protocol", "TCP",
                     "FrontendPort", "80", "Method", "Random", NULL),
        YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &w.t, "LBID", lb, "Protocol", "TCP",
                     "FrontendPort", "80", "HealthCheckInterval", "0", NULL),
        YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &w.t, "LBID", lb, "Protocol", "HTTPS",
                     "FrontendPort", "443", "SSLID", ssl, "Method", "leastconn",
                     "HealthCheckType", "Path", "Path", "/health",
                     "HealthCheckInterval", "10", "HealthCheckThreshold", "5",
                     NULL),
        0);
    str_of(x, "VServerID", vs);
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &w.t, "LBID", lb, "Protocol", "TCP",
                     "FrontendPort", "443", NULL),
        YH_EEXIST); /* TCP and HTTPS share the port */
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &w.t, "LBID", lb, "Protocol", "UDP",
                     "FrontendPort", "443", NULL),
        0);
    str_of(x, "VServerID", vs2);
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &w.u, "LBID", lb, "Protocol", "UDP",
                     "FrontendPort", "53", NULL),
        YH_ENOTFOUND);
    /* the certificate is in use */
    assert_int_equal(
        fsmtest_call(x, "DeleteCertificate", &w.t, "SSLID", ssl, NULL),
        YH_ESTATE);
    assert_true(msg_has(x, vs));
    assert_int_equal(
        fsmtest_call(x, "DeleteCertificate", &w.u, "SSLID", ssl, NULL),
        YH_ENOTFOUND);
    /* backends: same tenant, same VPC */
    assert_int_equal(fsmtest_call(x, "CreateRS", &w.t, "VServerID", vs,
                                  "BindResourceID", w.b, "Port", "8080", NULL),
                     YH_EINVAL);
    assert_true(msg_has(x, w.v1));
    assert_int_equal(fsmtest_call(x, "CreateRS", &w.t, "VServerID", vs,
                                  "BindResourceID", w.um, "Port", "8080", NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "CreateRS", &w.u, "VServerID", vs,
                                  "BindResourceID", w.um, "Port", "8080", NULL),
                     YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "CreateRS", &w.t, "VServerID", vs, "BindResourceID",
                     w.a, "Port", "8080", "Weight", "0", NULL),
        YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "CreateRS", &w.t, "VServerID", vs, "BindResourceID",
                     w.a, "Port", "8080", "Weight", "101", NULL),
        YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateRS", &w.t, "VServerID", vs,
                                  "BindResourceID", w.a, "Port", "0", NULL),
                     YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "CreateRS", &w.t, "VServerID", vs, "BindResourceID",
                     w.a, "Port", "8080", "Weight", "100", NULL),
        0);
    str_of(x, "RSID", rs);
    assert_int_equal(fsmtest_call(x, "CreateRS", &w.t, "VServerID", vs,
                                  "BindResourceID", w.a, "Port", "8080", NULL),
                     YH_EEXIST);
    assert_int_equal(fsmtest_call(x, "CreateRS", &w.t, "VServerID", vs,
                                  "BindResourceID", w.a2, "Port", "8080", NULL),
                     0);
    /* Describe, nested */
    assert_int_equal(fsmtest_call(x, "DescribeLB", &w.t, "LBIDs.0", lb, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "LBType"), "External");
    assert_int_equal(info_int(x, "VServerCount"), 2);
    {
        const msgpack_object *v = yh_mp_get(fsmtest_info(x, 0), "VServers");
        const msgpack_object *r;
        assert_int_equal(v->via.array.size, 2);
        assert_true(
            yh_mp_eq(yh_mp_get(&v->via.array.ptr[0], "Method"), "LeastConn"));
        assert_true(yh_mp_eq(yh_mp_get(&v->via.array.ptr[0], "SSLID"), ssl));
        r = yh_mp_get(&v->via.array.ptr[0], "RSs");
        assert_int_equal(r->via.array.size, 2);
        assert_true(
            yh_mp_eq(yh_mp_get(&r->via.array.ptr[0], "PrivateIP"), "10.1.1.2"));
    }
    assert_int_equal(fsmtest_call(x, "DescribeLB", &w.u, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(fsmtest_call(x, "DeleteRS", &w.u, "RSID", rs, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "DeleteRS", &w.t, "RSID", rs, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DeleteRS", &w.t, "RSID", rs, NULL),
                     YH_ENOTFOUND);
    /* EIPs: external only, one each */
    eip(x, &w.t, e);
    eip(x, &w.t, e2);
    assert_int_equal(
        fsmtest_call(x, "BindEIP", &w.t, "EIPID", e, "ResourceID", lbi, NULL),
        YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "BindEIP", &w.t, "EIPID", e, "ResourceID", lb, NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "BindEIP", &w.t, "EIPID", e2, "ResourceID", lb, NULL),
        YH_ESTATE);
    assert_int_equal(fsmtest_call(x, "DescribeLB", &w.t, "LBIDs.0", lb, NULL),
                     0);
    assert_string_equal(fsmtest_info_str(x, 0, "EIPID"), e);
    /* delete the vserver: the certificate is free again */
    assert_int_equal(
        fsmtest_call(x, "DeleteVServer", &w.u, "VServerID", vs, NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "DeleteVServer", &w.t, "VServerID", vs, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DescribeLB", &w.t, "LBIDs.0", lb, NULL),
                     0);
    assert_int_equal(info_int(x, "VServerCount"), 1);
    assert_int_equal(
        fsmtest_call(x, "DeleteCertificate", &w.t, "SSLID", ssl, NULL), 0);
    /* the purge of a backend's machine removes the backend */
    assert_int_equal(fsmtest_call(x, "CreateRS", &w.t, "VServerID", vs2,
                                  "BindResourceID", w.a2, "Port", "53", NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", w.a2, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", w.a2, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DescribeLB", &w.t, "LBIDs.0", lb, NULL),
                     0);
    {
        const msgpack_object *v = yh_mp_get(fsmtest_info(x, 0), "VServers");
        assert_int_equal(yh_mp_get(&v->via.array.ptr[0], "RSs")->via.array.size,
                         0);
        assert_int_equal(fsmtest_info_int(x, 0, "VServerCount"), 1);
    }
    /* delete the load balancers: addresses and EIP back */
    assert_int_equal(fsmtest_call(x, "DeleteLB", &w.u, "LBID", lb, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "DeleteLB", &w.t, "LBID", lb, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DeleteLB", &w.t, "LBID", lbi, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DescribeEIP", &w.t, "EIPIDs.0", e, NULL),
                     0);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Available");
    assert_int_equal(
        fsmtest_call(x, "DeleteVServer", &w.t, "VServerID", vs2, NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "CreateLB", &w.t, "VPCID", w.v1, "SubnetID", w.s1,
                     "PrivateIP", "10.1.1.100", NULL),
        0);
    free(c1);
    free(k1);
    free(c2);
    free(k2);
}

/* ---- VPN ---- */

static void vpn(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char e[FSM_ID_SIZE], e2[FSM_ID_SIZE], gw[FSM_ID_SIZE], rg[FSM_ID_SIZE];
    char rgu[FSM_ID_SIZE], conn[FSM_ID_SIZE];
    static const char psk[] = "s3cret-Pre-Shared-k3y";

    world(x, &w);
    eip(x, &w.t, e);
    eip(x, &w.t, e2);
    assert_int_equal(
        fsmtest_call(x, "CreateVPNGateway", &w.t, "VPCID", w.v1, NULL),
        YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "CreateVPNGateway", &w.u, "VPCID", w.v1,
                                  "EIPID", e, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "CreateVPNGateway", &w.t, "VPCID", w.v1,
                                  "EIPID", e, "Name", "vpn", NULL),
                     0);
    str_of(x, "VPNGatewayID", gw);
    assert_int_equal(fsmtest_call(x, "CreateVPNGateway", &w.t, "VPCID", w.v1,
                                  "EIPID", e2, NULL),
                     YH_EEXIST); /* one per VPC */
    assert_int_equal(fsmtest_call(x, "CreateVPNGateway", &w.t, "VPCID", w.v2,
                                  "EIPID", e, NULL),
                     YH_ESTATE); /* the EIP is taken */
    /* its EIP stays with it */
    assert_int_equal(fsmtest_call(x, "UnBindEIP", &w.t, "EIPID", e, NULL),
                     YH_ESTATE);
    assert_int_equal(
        fsmtest_call(x, "BindEIP", &w.t, "EIPID", e2, "ResourceID", gw, NULL),
        YH_EINVAL);
    /* remote gateways: public addresses only */
    {
        static const char *const bad[] = {
            "10.0.0.1", "192.168.1.1", "127.0.0.1", "0.0.0.0", "224.0.0.1",
            "fe80::1",  "fd00::1",     "203.0.113", "::1"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            if (fsmtest_call(x, "CreateRemoteVPNGateway", &w.t, "IP", bad[i],
                             NULL) != YH_EINVAL) {
                fail_msg("remote %s accepted", bad[i]);
            }
        }
    }
    assert_int_equal(fsmtest_call(x, "CreateRemoteVPNGateway", &w.t, "IP",
                                  "203.0.113.9", "Name", "hq", NULL),
                     0);
    str_of(x, "RemoteVPNGatewayID", rg);
    assert_int_equal(fsmtest_call(x, "CreateRemoteVPNGateway", &w.u, "IP",
                                  "2001:db8:1::9", NULL),
                     0);
    str_of(x, "RemoteVPNGatewayID", rgu);
    /* connections: parameters */
    {
        static const char *const bad[][4] = {
            /* RemoteCIDRs.0, RemoteCIDRs.1, PreSharedKey, IKEDHGroup */
            {"10.1.0.0/24", "", "long-enough-key", "14"}, /* inside the VPC */
            {"10.0.0.0/8", "", "long-enough-key", "14"},  /* contains it */
            {"192.168.0.0/16", "192.168.1.0/24", "long-enough-key", "14"},
            {"192.168.0.0/16", "", "short", "14"},
            {"192.168.0.0/16", "", "has space in it", "14"},
            {"192.168.0.0/16", "", "long-enough-key", "3"},
            {"192.168.0.1/16", "", "long-enough-key", "14"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            int rc = bad[i][1][0] != '\0'
                         ? fsmtest_call(
                               x, "CreateVPNConnection", &w.t, "VPNGatewayID",
                               gw, "RemoteVPNGatewayID", rg, "LocalSubnetIDs.0",
                               w.s1, "RemoteCIDRs.0", bad[i][0],
                               "RemoteCIDRs.1", bad[i][1], "PreSharedKey",
                               bad[i][2], "IKEDHGroup", bad[i][3], NULL)
                         : fsmtest_call(
                               x, "CreateVPNConnection", &w.t, "VPNGatewayID",
                               gw, "RemoteVPNGatewayID", rg, "LocalSubnetIDs.0",
                               w.s1, "RemoteCIDRs.0", bad[i][0], "PreSharedKey",
                               bad[i][2], "IKEDHGroup", bad[i][3], NULL);
            if (rc != YH_EINVAL) {
                fail_msg("connection %zu gave %d", i, rc);
            }
            /* a rejection never echoes the key */
            if (strstr(fsmtest_res_str(x, "Message"), bad[i][2]) != NULL) {
                fail_msg("connection %zu: key in message", i);
            }
        }
    }
    assert_int_equal(fsmtest_call(x, "CreateVPNConnection", &w.t,
                                  "VPNGatewayID", gw, "RemoteVPNGatewayID", rg,
                                  "LocalSubnetIDs.0", w.s2, "RemoteCIDRs.0",
                                  "192.168.0.0/16", "PreSharedKey", psk, NULL),
                     YH_EINVAL); /* a subnet of another VPC */
    assert_int_equal(fsmtest_call(x, "CreateVPNConnection", &w.t,
                                  "VPNGatewayID", gw, "RemoteVPNGatewayID", rgu,
                                  "LocalSubnetIDs.0", w.s1, "RemoteCIDRs.0",
                                  "192.168.0.0/16", "PreSharedKey", psk, NULL),
                     YH_ENOTFOUND); /* u's remote gateway */
    assert_int_equal(
        fsmtest_call(x, "CreateVPNConnection", &w.t, "VPNGatewayID", gw,
                     "RemoteVPNGatewayID", rg, "LocalSubnetIDs.0", w.s1,
                     "LocalSubnetIDs.1", w.s1b, "RemoteCIDRs.0",
                     "192.168.0.0/16", "RemoteCIDRs.1", "172.16.0.0/12",
                     "PreSharedKey", psk, "IKEVersion", "ikev1",
                     "IKEEncryption", "AES256", "IPSecPFSDHGroup", "14", NULL),
        0);
    str_of(x, "VPNConnectionID", conn);
    assert_false(out_has(x, psk));
    assert_false(out_has(x, "Pre-Shared"));
    assert_int_equal(fsmtest_call(x, "CreateVPNConnection", &w.t,
                                  "VPNGatewayID", gw, "RemoteVPNGatewayID", rg,
                                  "LocalSubnetIDs.0", w.s1, "RemoteCIDRs.0",
                                  "192.168.0.0/16", "PreSharedKey", psk, NULL),
                     YH_EEXIST);
    /* Describe masks the key */
    assert_int_equal(fsmtest_call(x, "DescribeVPNConnection", &w.t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "PreSharedKey"), "******");
    assert_string_equal(fsmtest_info_str(x, 0, "IKEVersion"), "IKEv1");
    assert_string_equal(fsmtest_info_str(x, 0, "IKEEncryption"), "aes256");
    assert_string_equal(fsmtest_info_str(x, 0, "IPSecPFSDHGroup"), "14");
    assert_false(out_has(x, psk));
    assert_int_equal(
        fsmtest_call(x, "DescribeOperationLog", &w.t, "Limit", "100", NULL), 0);
    assert_false(out_has(x, psk));
    assert_int_equal(fsmtest_call(x, "DescribeVPNConnection", &w.u, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(fsmtest_call(x, "DescribeVPNGateway", &w.t, NULL), 0);
    assert_string_equal(fsmtest_info_str(x, 0, "EIPID"), e);
    assert_int_equal(info_int(x, "ConnectionCount"), 1);
    /* in use: gateways, subnets */
    assert_int_equal(
        fsmtest_call(x, "DeleteVPNGateway", &w.t, "VPNGatewayID", gw, NULL),
        YH_ESTATE);
    assert_true(msg_has(x, conn));
    assert_int_equal(fsmtest_call(x, "DeleteRemoteVPNGateway", &w.t,
                                  "RemoteVPNGatewayID", rg, NULL),
                     YH_ESTATE);
    assert_int_equal(
        fsmtest_call(x, "DeleteSubnet", &w.t, "SubnetID", w.s1b, NULL),
        YH_ESTATE);
    assert_int_equal(fsmtest_call(x, "DeleteVPNConnection", &w.u,
                                  "VPNConnectionID", conn, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "DeleteVPNGateway", &w.u, "VPNGatewayID", gw, NULL),
        YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "DeleteVPNConnection", &w.t,
                                  "VPNConnectionID", conn, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "DeleteRemoteVPNGateway", &w.t,
                                  "RemoteVPNGatewayID", rg, NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "DeleteVPNGateway", &w.t, "VPNGatewayID", gw, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DescribeEIP", &w.t, "EIPIDs.0", e, NULL),
                     0);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Available");
    assert_int_equal(
        fsmtest_call(x, "DeleteSubnet", &w.t, "SubnetID", w.s1b, NULL), 0);
}

/* ---- billing: a gateway stopped, recycled and purged releases what it
 * holds ---- */

static int64_t used(struct fsmtest *x,
                    const struct fsm_actor *a,
                    const char *type)
{
    assert_int_equal(fsmtest_call(x, "DescribeQuota", a, "Limit", "100", NULL),
                     0);
    for (unsigned i = 0; i < fsmtest_n_infos(x); i++) {
        if (strcmp(fsmtest_info_str(x, i, "ResourceType"), type) == 0) {
            return fsmtest_info_int(x, i, "Used");
        }
    }
    fail_msg("no quota row %s", type);
    return -1;
}

static void gateway_billing(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest_tick tc = {x, 0, {0}};
    struct world w;
    char e[FSM_ID_SIZE], gw[FSM_ID_SIZE], lb[FSM_ID_SIZE];
    int gone = 0;

    world(x, &w);
    assert_int_equal(fsmtest_call(x, "ModifyBillingConfig", &x->admin, "Period",
                                  "10", "GracePeriod", "20", "RecycleAfter",
                                  "30", "Retention", "40", NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "ModifyPrice", &x->admin, "Spec", "NATGW",
                                  "ChargeType", "Dynamic", "Price", "7", NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "ModifyPrice", &x->admin, "Spec", "LB",
                                  "ChargeType", "Month", "Price", "1000", NULL),
                     0);
    eip(x, &w.t, e);
    /* no money: refused */
    assert_int_equal(fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.v1,
                                  "EIPID", e, "SubnetIDs.0", w.s1, NULL),
                     YH_EBALANCE);
    assert_int_equal(
        fsmtest_call(x, "Recharge", &x->admin, "UserID", w.tid, "Amount",
                     "1030", "FromType", "Bank", "SerialNo", "g1", NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "CreateLB", &w.t, "VPCID", w.v1, "SubnetID", w.s1,
                     "ChargeType", "Month", NULL),
        0);
    str_of(x, "LBID", lb);
    assert_true(fsmtest_res_str(x, "OrderID")[0] != '\0');
    assert_int_equal(fsmtest_call(x, "DescribeBalance", &w.t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "Balance"), 30);
    assert_int_equal(fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.v1,
                                  "EIPID", e, "SubnetIDs.0", w.s1, NULL),
                     0);
    str_of(x, "NATGWID", gw);
    assert_int_equal(
        fsmtest_call(x, "CreateNATGWRule", &w.t, "NATGWID", gw, "Protocol",
                     "TCP", "EIPPort", "22", "PrivatePort", "22", "PrivateIP",
                     "10.1.1.2", NULL),
        0);
    assert_int_equal(used(x, &w.t, "NATGW"), 1);
    assert_int_equal(used(x, &w.t, "LB"), 1);
    /* charged into arrears, stopped, recycled, purged */
    for (int i = 0; i < 60 && !gone; i++) {
        x->time += 10 * FSMTEST_SEC;
        fsmtest_tick(x, &tc);
        assert_int_equal(fsmtest_call(x, "DescribeRecycledResource", &w.t,
                                      "ResourceIDs.0", gw, NULL),
                         0);
        if (fsmtest_res_int(x, "TotalCount") == 0) {
            assert_int_equal(
                fsmtest_call(x, "DescribeNATGW", &w.t, "NATGWIDs.0", gw, NULL),
                0);
            gone = fsmtest_res_int(x, "TotalCount") == 0;
        } else {
            /* in the bin: no mutation */
            assert_int_equal(
                fsmtest_call(x, "CreateNATGWRule", &w.t, "NATGWID", gw,
                             "Protocol", "TCP", "EIPPort", "23", "PrivatePort",
                             "23", "PrivateIP", "10.1.1.2", NULL),
                YH_ESTATE);
        }
    }
    assert_true(gone);
    assert_int_equal(used(x, &w.t, "NATGW"), 0);
    /* the arrears stopped every resource of the tenant: the EIP and the
     * load balancer went the same way */
    assert_int_equal(used(x, &w.t, "LB"), 0);
    assert_int_equal(used(x, &w.t, "EIP"), 0);
    assert_int_equal(fsmtest_call(x, "DeleteNATGWRule", &w.t, "RuleID",
                                  "natrule-00000001", NULL),
                     YH_ENOTFOUND);
    /* nothing holds the subnet, the address or the EIP pool any more: the
     * same gateways can be made again (on the host, whose lease ended
     * during the minutes above: it heartbeats first) */
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &w.agent, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "Recharge", &x->admin, "UserID", w.tid, "Amount",
                     "100000", "FromType", "Bank", "SerialNo", "g2", NULL),
        0);
    eip(x, &w.t, e);
    assert_int_equal(fsmtest_call(x, "CreateNATGW", &w.t, "VPCID", w.v1,
                                  "EIPID", e, "SubnetIDs.0", w.s1, NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "CreateLB", &w.t, "VPCID", w.v1, "SubnetID", w.s1,
                     "PrivateIP", "10.1.1.4", NULL),
        0);
    (void)lb;
}

/* ---- determinism: the same log gives the same state ---- */

static void determinism(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest *y = fsmtest_new();
    char *dump;

    x->log = fsmtest_log_new(3000);
    fsmtest_bootstrap_copy(y);
    natgw(state);
    fsmtest_replay(y->f, x->log, 5, 0);
    dump = fsmtest_assert_same(x->f, y->f);
    assert_non_null(strstr(dump, "natrule-"));
    assert_non_null(strstr(dump, "\"Concerns\""));
    fsmtest_assert_restores(x->f, dump);
    free(dump);
    fsmtest_free(y);
}

static void determinism_all(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest *y = fsmtest_new();
    char *dump;

    x->log = fsmtest_log_new(3000);
    fsmtest_bootstrap_copy(y);
    certificates_and_lb(state);
    fsmtest_replay(y->f, x->log, 3, 0);
    dump = fsmtest_assert_same(x->f, y->f);
    assert_non_null(strstr(dump, "vserver-"));
    fsmtest_assert_restores(x->f, dump);
    free(dump);
    fsmtest_free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nic_attach, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(nic_limit, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(spec_network, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(natgw, fsmtest_setup, fsmtest_teardown),
        cmocka_unit_test_setup_teardown(certificates_and_lb, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(vpn, fsmtest_setup, fsmtest_teardown),
        cmocka_unit_test_setup_teardown(gateway_billing, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(determinism, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(determinism_all, fsmtest_setup,
                                        fsmtest_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
