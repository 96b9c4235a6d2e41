/* Elastic NICs on machines (AttachNIC, DetachNIC) and a machine's network
 * as its host's agent sees it.
 *
 * A NIC (tbl_net.c) is attached to at most one machine at a time, of its
 * tenant and of its VPC: the machine's VPCID (from its primary address,
 * CreateVMInstance with SubnetID) must be the NIC's. A machine created
 * without a network has no VPC: the first NIC attached to it becomes its
 * primary NIC (Primary true) and gives it its VPC (the machine record's
 * VPCID); a primary NIC cannot be detached, it is released when the
 * machine is purged. A machine holds at most 8 elastic NICs. The NIC
 * record gets VMID and State "InUse" while attached ("Available" and ""
 * otherwise); "N" \0 VMID \0 NICID rows list a machine's NICs.
 *
 * Hot-plug is level-triggered like the rest of the agents' contract: the
 * attach is effective in the state at once, the machine's NetGeneration
 * moves, and its spec (fsm_host_spec) lists the NIC for the host's agent to
 * plug; there is no job and no report for a NIC.
 *
 * The network part of a machine's spec (fsm__vm_net_pack): its elastic
 * NICs, its security groups with their rules, and its EIPs. Every change
 * to one of them moves the machine's NetGeneration and names the machine
 * in the oplog record's Concerns (gw.c fsm__concern), which is how
 * WatchCommands sends the machine's spec to its host. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define NICS_PER_VM 8

/* The live machine a NIC record is attached to ("" if none, or if that
 * machine has been purged since). */
int fsm__nic_vm(struct fsm_ctx *c,
                const struct fsm_rec *nic,
                char vm[FSM_ID_SIZE])
{
    int exists = 0;

    snprintf(vm, FSM_ID_SIZE, "%s", fsm__rec_s(nic, "VMID"));
    if (vm[0] != '\0') {
        TRY(fsm__net_vm_exists(c, vm, &exists));
    }
    if (!exists) {
        vm[0] = '\0';
    }
    return 0;
}

struct attach_args
{
    char nic[FSM_ID_SIZE]; /* NICID */
    char vm[FSM_ID_SIZE];  /* VMID */
    int has_vm;            /* VMID given (DetachNIC) */
};

static int attach_args(struct fsm_ctx *c, struct attach_args *a, int detach)
{
    TRY(fsm__arg_str(c, "NICID", 1, FSM_ID_SIZE - 1, a->nic, NULL));
    return fsm__arg_str(c, "VMID", !detach, FSM_ID_SIZE - 1, a->vm, &a->has_vm);
}

int fsm__nic_attach_check(struct fsm_ctx *c)
{
    struct attach_args a;

    return attach_args(c, &a, 0);
}

int fsm__nic_detach_check(struct fsm_ctx *c)
{
    struct attach_args a;

    return attach_args(c, &a, 1);
}

static int count_live(void *arg, const char *nic)
{
    (void)nic;
    (*(unsigned *)arg)++;
    return 0;
}

int fsm__nic_attach_apply(struct fsm_ctx *c)
{
    struct attach_args a;
    struct fsm_rec n, m;
    char cur[FSM_ID_SIZE];
    unsigned count = 0;
    int primary = 0;
    int rc;

    TRY(attach_args(c, &a, 0));
    fsm__rec_init(&n);
    fsm__rec_init(&m);
    rc = fsm__net_load(c, "nic", "NIC", a.nic, &n);
    if (rc == 0) {
        rc = fsm__vm_load(c, a.vm, &m);
    }
    if (rc == 0) {
        rc = fsm__if_revision(c, &n);
    }
    if (rc == 0 &&
        strcmp(fsm__rec_s(&n, "TenantID"), fsm__rec_s(&m, "TenantID")) != 0) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'VMID': '%s' belongs to another "
                         "tenant than '%s'",
                         a.vm, a.nic);
    }
    if (rc == 0) {
        const char *vpc = fsm__rec_s(&m, "VPCID");
        primary = vpc[0] == '\0';
        if (!primary && strcmp(vpc, fsm__rec_s(&n, "VPCID")) != 0) {
            rc = fsm__reject(c, YH_EINVAL,
                             "invalid parameter 'VMID': '%s' is in VPC '%s', "
                             "NIC '%s' in VPC '%s'",
                             a.vm, vpc, a.nic, fsm__rec_s(&n, "VPCID"));
        }
    }
    if (rc == 0) {
        rc = fsm__nic_vm(c, &n, cur);
    }
    if (rc == 0 && cur[0] != '\0') {
        rc = strcmp(cur, a.vm) == 0
                 ? fsm__reject(c, YH_EEXIST,
                               "NIC '%s' is already attached to '%s'", a.nic,
                               a.vm)
                 : fsm__reject(c, YH_ESTATE,
                               "NIC '%s' is attached to '%s': detach it first",
                               a.nic, cur);
    }
    if (rc == 0) {
        rc = fsm__net_walk(c->f, c->txn, 'N', a.vm, count_live, &count);
    }
    if (rc == 0 && count >= NICS_PER_VM) {
        rc = fsm__reject(c, YH_EQUOTA,
                         "quota exceeded: '%s' already has %d NICs", a.vm,
                         NICS_PER_VM);
    }
    if (rc != 0) {
        goto out;
    }
    /* a dead attachment (machine purged) is replaced */
    if (fsm__rec_s(&n, "VMID")[0] != '\0') {
        rc = fsm__net_unlink(c, 'N', fsm__rec_s(&n, "VMID"), a.nic);
    }
    if (rc == 0) {
        rc = fsm__net_link(c, 'N', a.vm, a.nic);
    }
    if (rc == 0) {
        fsm__rec_set_s(&n, "VMID", a.vm);
        fsm__rec_set_b(&n, "Primary", primary);
        fsm__rec_set_s(&n, "State", "InUse");
        rc = fsm__net_save(c, a.nic, &n);
    }
    if (rc == 0 && primary) {
        fsm__rec_set_s(&m, "VPCID", fsm__rec_s(&n, "VPCID"));
    }
    if (rc == 0) {
        rc = fsm__concern_rec(c, a.vm, &m);
    }
    if (rc == 0) {
        rc = fsm__natwl_vm_touch(c, a.vm); /* whitelisting NAT gateways */
    }
    if (rc == 0) {
        msgpack_pack_int64(fsm__field(c, "Revision"), (int64_t)c->index);
    }
out:
    fsm__rec_free(&n);
    fsm__rec_free(&m);
    return rc;
}

/* Clear @n's attachment (to @vm) and its row. */
static int nic_detach(struct fsm_ctx *c,
                      const char *nic,
                      struct fsm_rec *n,
                      const char *vm)
{
    TRY(fsm__net_unlink(c, 'N', vm, nic));
    fsm__rec_set_s(n, "VMID", "");
    fsm__rec_set_b(n, "Primary", 0);
    fsm__rec_set_s(n, "State", "Available");
    return fsm__net_save(c, nic, n);
}

int fsm__nic_detach_apply(struct fsm_ctx *c)
{
    struct attach_args a;
    struct fsm_rec n;
    char vm[FSM_ID_SIZE];
    int rc;

    TRY(attach_args(c, &a, 1));
    fsm__rec_init(&n);
    rc = fsm__net_load(c, "nic", "NIC", a.nic, &n);
    if (rc == 0) {
        rc = fsm__if_revision(c, &n);
    }
    if (rc == 0) {
        snprintf(vm, sizeof vm, "%s", fsm__rec_s(&n, "VMID"));
        if (vm[0] == '\0') {
            rc = fsm__reject(c, YH_ESTATE, "NIC '%s' is not attached", a.nic);
        }
    }
    if (rc == 0 && a.has_vm && strcmp(vm, a.vm) != 0) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'VMID': NIC '%s' is attached to "
                         "'%s'",
                         a.nic, vm);
    }
    if (rc == 0 && fsm__rec_i(&n, "Primary")) {
        int exists;
        rc = fsm__net_vm_exists(c, vm, &exists);
        if (rc == 0 && exists) {
            rc = fsm__reject(c, YH_ESTATE,
                             "NIC '%s' is the primary NIC of '%s': it cannot "
                             "be detached",
                             a.nic, vm);
        }
    }
    if (rc == 0) {
        rc = nic_detach(c, a.nic, &n, vm);
    }
    if (rc == 0) {
        rc = fsm__concern(c, vm);
    }
    if (rc == 0) {
        rc = fsm__natwl_vm_touch(c, vm); /* whitelisting NAT gateways */
    }
    if (rc == 0) {
        msgpack_pack_int64(fsm__field(c, "Revision"), (int64_t)c->index);
    }
    fsm__rec_free(&n);
    return rc;
}

/* ---- purge of a machine ---- */

int fsm__vm_net_release(struct fsm_ctx *c, const char *vm)
{
    struct fsm_ids l = {NULL, 0, 0};
    struct fsm_rec n;
    int rc;

    fsm__rec_init(&n);
    rc = fsm__net_ids(c, 'N', vm, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, l.v[i], strlen(l.v[i]),
                           &n);
        if (rc == 0 && strcmp(fsm__rec_s(&n, "VMID"), vm) == 0) {
            rc = nic_detach(c, l.v[i], &n, vm);
        } else if (rc == 0 || rc == YH_ENOTFOUND) {
            rc = fsm__net_unlink(c, 'N', vm, l.v[i]);
        }
    }
    fsm__rec_free(&n);
    fsm__ids_free(&l);
    if (rc == 0) {
        rc = fsm__rs_vm_release(c, vm);
    }
    if (rc == 0) {
        rc = fsm__natwl_vm_release(c, vm); /* natwl.c */
    }
    return rc;
}

/* ---- the network part of a machine's spec ---- */

struct netpack
{
    struct fsm *f;
    MDB_txn *txn;
    msgpack_packer *pk; /* into @buf */
    struct fsm_rec r, s;
    uint32_t n;
};

/* "02:00:" and the 32 low bits of the NIC's number: unique in a cluster
 * for 2^32 NICs, the same on every replica. */
static void nic_mac(const char *nic, char out[18])
{
    const char *d = strrchr(nic, '-');
    uint64_t v = d != NULL ? strtoull(d + 1, NULL, 10) : 0;

    snprintf(out, 18, "02:00:%02x:%02x:%02x:%02x", (unsigned)(v >> 24) & 0xff,
             (unsigned)(v >> 16) & 0xff, (unsigned)(v >> 8) & 0xff,
             (unsigned)v & 0xff);
}

static int pack_nic(void *arg, const char *nic)
{
    struct netpack *p = arg;
    const char *subnet;
    char mac[18];
    int rc;

    rc = fsm__rec_load(p->f, p->txn, FSM_TBL_RES, nic, strlen(nic), &p->r);
    if (rc == YH_ENOTFOUND) {
        return 0;
    }
    TRY(rc);
    subnet = fsm__rec_s(&p->r, "SubnetID");
    rc =
        fsm__rec_load(p->f, p->txn, FSM_TBL_RES, subnet, strlen(subnet), &p->s);
    if (rc == YH_ENOTFOUND) {
        rc = 0; /* @s is empty */
    }
    TRY(rc);
    nic_mac(nic, mac);
    msgpack_pack_map(p->pk, 10);
    yh_mp_pack_kv_str(p->pk, "NICID", nic);
    yh_mp_pack_str(p->pk, "Primary");
    if (fsm__rec_i(&p->r, "Primary")) {
        msgpack_pack_true(p->pk);
    } else {
        msgpack_pack_false(p->pk);
    }
    yh_mp_pack_kv_str(p->pk, "MAC", mac);
    yh_mp_pack_kv_str(p->pk, "VPCID", fsm__rec_s(&p->r, "VPCID"));
    yh_mp_pack_kv_str(p->pk, "SubnetID", subnet);
    yh_mp_pack_kv_str(p->pk, "IP", fsm__rec_s(&p->r, "IP"));
    yh_mp_pack_kv_str(p->pk, "IPv6", fsm__rec_s(&p->r, "IPv6"));
    yh_mp_pack_kv_str(p->pk, "Network", fsm__rec_s(&p->s, "Network"));
    yh_mp_pack_kv_str(p->pk, "Gateway", fsm__rec_s(&p->s, "Gateway"));
    yh_mp_pack_kv_str(p->pk, "IPv6Network", fsm__rec_s(&p->s, "IPv6Network"));
    p->n++;
    return 0;
}

/* The rule strings of a group, in RuleID order. */
struct rules_pack
{
    struct netpack *p;
    const char *sg;
    struct yh_buf b;
    struct fsm_out o;
    uint32_t n;
};

static int pack_rule(void *arg, const char *rule)
{
    struct rules_pack *q = arg;
    char key[2 * FSM_ID_SIZE + 4];
    MDB_val v;
    int rc;

    rc = fsm__get(q->p->f, q->p->txn, FSM_TBL_NET, key,
                  fsm__net_key(key, 'R', q->sg, rule), &v);
    if (rc == YH_ENOTFOUND) {
        return 0;
    }
    TRY(rc);
    TRY(fsm__rec_decode(v.mv_data, v.mv_size, &q->p->s));
    yh_mp_pack_str(&q->o.pk, fsm__rec_s(&q->p->s, "Rule"));
    q->n++;
    return 0;
}

static int pack_sg(void *arg, const char *sg)
{
    struct netpack *p = arg;
    struct rules_pack q;
    int rc;

    rc = fsm__rec_load(p->f, p->txn, FSM_TBL_RES, sg, strlen(sg), &p->r);
    if (rc == YH_ENOTFOUND) {
        return 0;
    }
    TRY(rc);
    memset(&q, 0, sizeof q);
    q.p = p;
    q.sg = sg;
    yh_buf_init(&q.b);
    fsm__out_init(&q.o, &q.b);
    rc = fsm__net_walk(p->f, p->txn, 'R', sg, pack_rule, &q);
    if (rc == 0 && q.o.oom) {
        rc = YH_ENOMEM;
    }
    if (rc == 0) {
        msgpack_pack_map(p->pk, 3);
        yh_mp_pack_kv_str(p->pk, "SecurityGroupID", sg);
        yh_mp_pack_kv_int(p->pk, "Revision", fsm__rec_i(&p->r, "Revision"));
        yh_mp_pack_str(p->pk, "Rules");
        msgpack_pack_array(p->pk, q.n);
        if (q.b.len > 0) {
            msgpack_pack_str_body(p->pk, q.b.data, q.b.len); /* raw append */
        }
        p->n++;
    }
    yh_buf_release(&q.b);
    return rc;
}

struct eip_pack
{
    struct netpack *p;
    const char *vm;
};

static int pack_eip(void *arg, const char *eip)
{
    struct eip_pack *e = arg;
    struct netpack *p = e->p;
    int rc;

    rc = fsm__rec_load(p->f, p->txn, FSM_TBL_RES, eip, strlen(eip), &p->r);
    if (rc == YH_ENOTFOUND) {
        return 0;
    }
    TRY(rc);
    if (strcmp(fsm__rec_s(&p->r, "BindResourceID"), e->vm) != 0) {
        return 0;
    }
    msgpack_pack_map(p->pk, 4);
    yh_mp_pack_kv_str(p->pk, "EIPID", eip);
    yh_mp_pack_kv_str(p->pk, "IP", fsm__rec_s(&p->r, "IP"));
    yh_mp_pack_kv_str(p->pk, "IPVersion", fsm__rec_s(&p->r, "IPVersion"));
    yh_mp_pack_kv_int(p->pk, "Bandwidth", fsm__rec_i(&p->r, "Bandwidth"));
    p->n++;
    return 0;
}

/* One "Key": [items] pair, the items packed aside to count them. */
static int pack_section(struct netpack *p,
                        msgpack_packer *out,
                        const char *key,
                        char kind,
                        const char *vm,
                        fsm_net_row_fn *fn,
                        void *arg)
{
    struct yh_buf b = YH_BUF_INIT;
    struct fsm_out o;
    int rc;

    fsm__out_init(&o, &b);
    p->pk = &o.pk;
    p->n = 0;
    rc = fsm__net_walk(p->f, p->txn, kind, vm, fn, arg);
    if (rc == 0 && o.oom) {
        rc = YH_ENOMEM;
    }
    if (rc == 0) {
        yh_mp_pack_str(out, key);
        msgpack_pack_array(out, p->n);
        if (b.len > 0) {
            msgpack_pack_str_body(out, b.data, b.len); /* raw append */
        }
    }
    yh_buf_release(&b);
    return rc;
}

int fsm__vm_net_pack(struct fsm *f,
                     MDB_txn *txn,
                     msgpack_packer *pk,
                     const char *vm)
{
    struct netpack p;
    struct eip_pack e;
    int rc;

    memset(&p, 0, sizeof p);
    p.f = f;
    p.txn = txn;
    fsm__rec_init(&p.r);
    fsm__rec_init(&p.s);
    e.p = &p;
    e.vm = vm;
    rc = pack_section(&p, pk, "NICs", 'N', vm, pack_nic, &p);
    if (rc == 0) {
        rc = pack_section(&p, pk, "SecurityGroups", 'V', vm, pack_sg, &p);
    }
    if (rc == 0) {
        rc = pack_section(&p, pk, "EIPs", 'E', vm, pack_eip, &e);
    }
    fsm__rec_free(&p.r);
    fsm__rec_free(&p.s);
    return rc;
}
