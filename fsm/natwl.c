/* The SNAT whitelist of a NAT gateway (natgw.c): which machines of the
 * served subnets get outbound access through the gateway's EIP when its
 * Mode is Whitelist.
 *
 *   AddWhiteListResource    {NATGWID, ResourceIDs}  machines in
 *   DeleteWhiteListResource {NATGWID, ResourceIDs}  machines out
 *   DescribeWhiteListResource {NATGWID, Offset, Limit}
 *   EnableWhiteList         {NATGWID, IfOpen 1|0}   Mode Whitelist |
 *                                                   Automatic
 *
 * An entry is a machine of the gateway's tenant and VPC with at least one
 * IPv4 address in a served subnet (its primary address or an attached
 * NIC's) when it is added. The list is kept whatever the Mode (switching
 * to Automatic and back keeps it) and is in the gateway's agent spec
 * ("WhiteList": each machine with its addresses in the served subnets,
 * computed from the state when the spec is built). Adding, deleting,
 * switching the Mode, and attaching or detaching a NIC of a listed machine
 * change the gateway's spec (fsm__concern: Generation, Concerns). The
 * purge of a machine drops its entries; a machine in the recycle bin stays
 * listed (it is stopped). At most WL_MAX entries per gateway.
 *
 * Rows in "net": "L" \0 NATGWID \0 VMID (the list, in VMID order) and
 * "M" \0 VMID \0 NATGWID (the gateways listing a machine, for the purge).
 * The gateway record counts them in WhiteListCount. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define NATGW_PREFIX "natgw"
#define SUBNETS_MAX 20
#define IDS_MAX 100 /* ResourceIDs per request */
#define WL_MAX 1000 /* entries per gateway */
#define IPS_MAX 9   /* a primary address and 8 NICs */

/* ---- a machine's addresses in the served subnets ---- */

struct ips
{
    char v[IPS_MAX][FSM_IP_STR];
    unsigned n;
};

static int served(const struct fsm_rec *gw, const char *subnet)
{
    char subnets[SUBNETS_MAX][FSM_ID_SIZE];
    unsigned n = fsm__rec_list(gw, "SubnetIDs", subnets, SUBNETS_MAX);

    for (unsigned i = 0; i < n && subnet[0] != '\0'; i++) {
        if (strcmp(subnets[i], subnet) == 0) {
            return 1;
        }
    }
    return 0;
}

static void ips_add(struct ips *out, const char *ip)
{
    if (ip[0] == '\0' || out->n >= IPS_MAX) {
        return;
    }
    for (unsigned i = 0; i < out->n; i++) {
        if (strcmp(out->v[i], ip) == 0) {
            return;
        }
    }
    snprintf(out->v[out->n++], FSM_IP_STR, "%s", ip);
}

/* The IPv4 addresses of machine @vm (record @m) in subnets served by
 * @gw: its primary address, then its NICs' in NICID order. */
static int vm_ips(struct fsm *f,
                  MDB_txn *txn,
                  const char *vm,
                  const struct fsm_rec *m,
                  const struct fsm_rec *gw,
                  struct ips *out)
{
    struct fsm_ids l = {NULL, 0, 0};
    struct fsm_rec n;
    int rc;

    out->n = 0;
    if (served(gw, fsm__rec_s(m, "SubnetID"))) {
        ips_add(out, fsm__rec_s(m, "InternalIP"));
    }
    fsm__rec_init(&n);
    rc = fsm__net_walk(f, txn, 'N', vm, fsm__ids_add, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        rc = fsm__rec_load(f, txn, FSM_TBL_RES, l.v[i], strlen(l.v[i]), &n);
        if (rc == YH_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc == 0 && strcmp(fsm__rec_s(&n, "VMID"), vm) == 0 &&
            served(gw, fsm__rec_s(&n, "SubnetID"))) {
            ips_add(out, fsm__rec_s(&n, "IP"));
        }
    }
    fsm__rec_free(&n);
    fsm__ids_free(&l);
    return rc;
}

static void pack_ips(msgpack_packer *pk, const struct ips *ips)
{
    msgpack_pack_array(pk, ips->n);
    for (unsigned i = 0; i < ips->n; i++) {
        yh_mp_pack_str(pk, ips->v[i]);
    }
}

/* ---- Add / Delete ---- */

struct wl_args
{
    char gw[FSM_ID_SIZE];
    char ids[IDS_MAX][FSM_ID_SIZE];
    unsigned n;
};

static int wl_args(struct fsm_ctx *c, struct wl_args *a)
{
    TRY(fsm__arg_str(c, "NATGWID", 1, FSM_ID_SIZE - 1, a->gw, NULL));
    TRY(fsm__arg_list(c, "ResourceIDs", IDS_MAX, a->ids, &a->n));
    if (a->n == 0) {
        return fsm__reject(c, YH_EMISSING, "missing parameter 'ResourceIDs'");
    }
    for (unsigned i = 0; i < a->n; i++) {
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(a->ids[i], a->ids[j]) == 0) {
                return fsm__reject(c, YH_EINVAL,
                                   "invalid parameter 'ResourceIDs': '%s' "
                                   "given twice",
                                   a->ids[i]);
            }
        }
    }
    return 0;
}

int fsm__natwl_check(struct fsm_ctx *c)
{
    struct wl_args a;

    return wl_args(c, &a);
}

/* Whether row @kind \0 @a \0 @b exists. */
struct row_find
{
    const char *want;
    int found;
};

static int row_fn(void *arg, const char *id)
{
    struct row_find *r = arg;

    if (strcmp(id, r->want) == 0) {
        r->found = 1;
        return 1;
    }
    return 0;
}

static int row_has(struct fsm_ctx *c,
                   char kind,
                   const char *a,
                   const char *b,
                   int *found)
{
    struct row_find r = {b, 0};
    int rc = fsm__net_walk(c->f, c->txn, kind, a, row_fn, &r);

    *found = r.found;
    return rc == 1 ? 0 : rc;
}

int fsm__natwl_add_apply(struct fsm_ctx *c)
{
    struct wl_args a;
    struct fsm_rec gw, m;
    struct ips ips;
    int rc, found;

    TRY(wl_args(c, &a));
    fsm__rec_init(&gw);
    fsm__rec_init(&m);
    rc = fsm__gw_load(c, NATGW_PREFIX, "NAT gateway", a.gw, &gw);
    for (unsigned i = 0; rc == 0 && i < a.n; i++) {
        const char *vm = a.ids[i];
        rc = fsm__vm_load(c, vm, &m);
        if (rc == 0 && strcmp(fsm__rec_s(&m, "TenantID"),
                              fsm__rec_s(&gw, "TenantID")) != 0) {
            rc = fsm__reject(c, YH_EINVAL,
                             "invalid parameter 'ResourceIDs': '%s' belongs "
                             "to another tenant than '%s'",
                             vm, a.gw);
        }
        if (rc == 0 &&
            strcmp(fsm__rec_s(&m, "VPCID"), fsm__rec_s(&gw, "VPCID")) != 0) {
            rc = fsm__reject(c, YH_EINVAL,
                             "invalid parameter 'ResourceIDs': '%s' is not in "
                             "VPC '%s' of NAT gateway '%s'",
                             vm, fsm__rec_s(&gw, "VPCID"), a.gw);
        }
        if (rc == 0) {
            rc = vm_ips(c->f, c->txn, vm, &m, &gw, &ips);
        }
        if (rc == 0 && ips.n == 0) {
            rc = fsm__reject(c, YH_EINVAL,
                             "invalid parameter 'ResourceIDs': '%s' has no "
                             "address in a subnet served by '%s'",
                             vm, a.gw);
        }
        if (rc == 0) {
            rc = row_has(c, 'L', a.gw, vm, &found);
        }
        if (rc == 0 && found) {
            rc = fsm__reject(c, YH_EEXIST,
                             "'%s' is already in the whitelist of '%s'", vm,
                             a.gw);
        }
    }
    if (rc == 0 && fsm__rec_i(&gw, "WhiteListCount") + a.n > WL_MAX) {
        rc = fsm__reject(c, YH_EQUOTA,
                         "quota exceeded: the whitelist of NAT gateway '%s' "
                         "holds at most %d machines",
                         a.gw, WL_MAX);
    }
    /* every rejection is decided: the writes */
    for (unsigned i = 0; rc == 0 && i < a.n; i++) {
        rc = fsm__net_link(c, 'L', a.gw, a.ids[i]);
        if (rc == 0) {
            rc = fsm__net_link(c, 'M', a.ids[i], a.gw);
        }
    }
    if (rc == 0) {
        rc = fsm__count_add(c, a.gw, "WhiteListCount", (int64_t)a.n);
    }
    if (rc == 0) {
        rc = fsm__concern(c, a.gw); /* its host gets the list */
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", a.gw);
        msgpack_pack_int64(fsm__field(c, "WhiteListCount"),
                           fsm__rec_i(&gw, "WhiteListCount") + a.n);
    }
    fsm__rec_free(&gw);
    fsm__rec_free(&m);
    return rc;
}

int fsm__natwl_del_apply(struct fsm_ctx *c)
{
    struct wl_args a;
    struct fsm_rec gw;
    int rc, found;

    TRY(wl_args(c, &a));
    fsm__rec_init(&gw);
    rc = fsm__gw_load(c, NATGW_PREFIX, "NAT gateway", a.gw, &gw);
    for (unsigned i = 0; rc == 0 && i < a.n; i++) {
        rc = row_has(c, 'L', a.gw, a.ids[i], &found);
        if (rc == 0 && !found) {
            rc = fsm__reject(c, YH_ENOTFOUND,
                             "'%s' is not in the whitelist of '%s'", a.ids[i],
                             a.gw);
        }
    }
    for (unsigned i = 0; rc == 0 && i < a.n; i++) {
        rc = fsm__net_unlink(c, 'L', a.gw, a.ids[i]);
        if (rc == 0) {
            rc = fsm__net_unlink(c, 'M', a.ids[i], a.gw);
        }
    }
    if (rc == 0) {
        rc = fsm__count_add(c, a.gw, "WhiteListCount", -(int64_t)a.n);
    }
    if (rc == 0) {
        rc = fsm__concern(c, a.gw);
    }
    if (rc == 0) {
        int64_t left = fsm__rec_i(&gw, "WhiteListCount") - a.n;
        snprintf(c->resource_id, sizeof c->resource_id, "%s", a.gw);
        msgpack_pack_int64(fsm__field(c, "WhiteListCount"),
                           left < 0 ? 0 : left);
    }
    fsm__rec_free(&gw);
    return rc;
}

/* ---- EnableWhiteList ---- */

/* IfOpen: 1/0, true/false (bool or string). */
static int if_open_arg(struct fsm_ctx *c, int *open)
{
    const msgpack_object *v = yh_mp_get(c->args, "IfOpen");

    if (v == NULL) {
        return fsm__reject(c, YH_EMISSING, "missing parameter 'IfOpen'");
    }
    if (v->type == MSGPACK_OBJECT_BOOLEAN) {
        *open = v->via.boolean;
        return 0;
    }
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= 1) {
        *open = (int)v->via.u64;
        return 0;
    }
    if (v->type == MSGPACK_OBJECT_STR) {
        static const char *const yes[] = {"1", "true", NULL};
        static const char *const no[] = {"0", "false", NULL};
        for (unsigned i = 0; yes[i] != NULL; i++) {
            if (v->via.str.size == strlen(yes[i]) &&
                strncasecmp(v->via.str.ptr, yes[i], v->via.str.size) == 0) {
                *open = 1;
                return 0;
            }
            if (v->via.str.size == strlen(no[i]) &&
                strncasecmp(v->via.str.ptr, no[i], v->via.str.size) == 0) {
                *open = 0;
                return 0;
            }
        }
    }
    return fsm__reject(c, YH_EINVAL,
                       "invalid parameter 'IfOpen': 1 (Whitelist) or 0 "
                       "(Automatic)");
}

int fsm__natwl_mode_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    int open;

    TRY(fsm__arg_str(c, "NATGWID", 1, FSM_ID_SIZE - 1, id, NULL));
    return if_open_arg(c, &open);
}

int fsm__natwl_mode_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    const char *mode;
    struct fsm_rec gw;
    int open, rc;

    TRY(fsm__arg_str(c, "NATGWID", 1, FSM_ID_SIZE - 1, id, NULL));
    TRY(if_open_arg(c, &open));
    mode = open ? "Whitelist" : "Automatic";
    fsm__rec_init(&gw);
    rc = fsm__gw_load(c, NATGW_PREFIX, "NAT gateway", id, &gw);
    if (rc == 0) {
        rc = fsm__if_revision(c, &gw);
    }
    if (rc == 0 && strcmp(fsm__rec_s(&gw, "Mode"), mode) == 0) {
        rc = fsm__reject(c, YH_EEXIST, "NAT gateway '%s' is already in %s mode",
                         id, mode);
    }
    if (rc == 0) {
        fsm__rec_set_s(&gw, "Mode", mode);
        rc = fsm__net_save(c, id, &gw);
    }
    if (rc == 0) {
        rc = fsm__concern(c, id);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "Mode"), mode);
    }
    fsm__rec_free(&gw);
    return rc;
}

/* ---- DescribeWhiteListResource ---- */

int fsm__natwl_describe(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_ids l = {NULL, 0, 0};
    struct yh_buf b = YH_BUF_INIT;
    struct fsm_rec gw, m;
    struct fsm_out o;
    struct ips ips;
    uint64_t offset, limit;
    uint32_t n = 0;
    int rc;

    TRY(fsm__arg_str(c, "NATGWID", 1, FSM_ID_SIZE - 1, id, NULL));
    TRY(fsm__arg_page(c, &offset, &limit));
    fsm__rec_init(&gw);
    fsm__rec_init(&m);
    fsm__out_init(&o, &b);
    rc = fsm__gw_load(c, NATGW_PREFIX, "NAT gateway", id, &gw);
    if (rc == 0) {
        rc = fsm__net_ids(c, 'L', id, &l);
    }
    for (size_t i = offset; rc == 0 && i < l.n && n < limit; i++) {
        const char *vm = l.v[i];
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, vm, strlen(vm), &m);
        if (rc == YH_ENOTFOUND) {
            fsm__rec_free(&m);
            fsm__rec_init(&m);
            rc = 0;
        }
        if (rc == 0) {
            rc = vm_ips(c->f, c->txn, vm, &m, &gw, &ips);
        }
        if (rc != 0) {
            break;
        }
        msgpack_pack_map(&o.pk, 6);
        yh_mp_pack_kv_str(&o.pk, "ResourceID", vm);
        yh_mp_pack_kv_str(&o.pk, "ResourceType", "VM");
        yh_mp_pack_kv_str(&o.pk, "NATGWID", id);
        yh_mp_pack_kv_str(&o.pk, "Name", fsm__rec_s(&m, "Name"));
        yh_mp_pack_kv_str(&o.pk, "State", fsm__rec_s(&m, "State"));
        yh_mp_pack_str(&o.pk, "IPs");
        pack_ips(&o.pk, &ips);
        n++;
    }
    if (rc == 0 && o.oom) {
        rc = YH_ENOMEM;
    }
    if (rc == 0) {
        msgpack_packer *pk = fsm__field(c, "Infos");
        msgpack_pack_array(pk, n);
        if (b.len > 0) {
            msgpack_pack_str_body(pk, b.data, b.len); /* raw append */
        }
        msgpack_pack_uint64(fsm__field(c, "TotalCount"), l.n);
        yh_mp_pack_str(fsm__field(c, "Mode"), fsm__rec_s(&gw, "Mode"));
    }
    yh_buf_release(&b);
    fsm__ids_free(&l);
    fsm__rec_free(&gw);
    fsm__rec_free(&m);
    return rc;
}

/* ---- the life cycle of the rows ---- */

int fsm__natwl_gw_release(struct fsm_ctx *c, const char *gw)
{
    struct fsm_ids l = {NULL, 0, 0};
    int rc = fsm__net_ids(c, 'L', gw, &l);

    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        rc = fsm__net_unlink(c, 'L', gw, l.v[i]);
        if (rc == 0) {
            rc = fsm__net_unlink(c, 'M', l.v[i], gw);
        }
    }
    fsm__ids_free(&l);
    return rc;
}

int fsm__natwl_vm_release(struct fsm_ctx *c, const char *vm)
{
    struct fsm_ids l = {NULL, 0, 0};
    int rc = fsm__net_ids(c, 'M', vm, &l);

    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        rc = fsm__net_unlink(c, 'M', vm, l.v[i]);
        if (rc == 0) {
            rc = fsm__net_unlink(c, 'L', l.v[i], vm);
        }
        if (rc == 0) {
            rc = fsm__count_add(c, l.v[i], "WhiteListCount", -1);
        }
        if (rc == 0) {
            rc = fsm__concern(c, l.v[i]);
        }
    }
    fsm__ids_free(&l);
    return rc;
}

int fsm__natwl_vm_touch(struct fsm_ctx *c, const char *vm)
{
    struct fsm_ids l = {NULL, 0, 0};
    int rc = fsm__net_ids(c, 'M', vm, &l);

    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        rc = fsm__concern(c, l.v[i]);
    }
    fsm__ids_free(&l);
    return rc;
}

/* ---- the agent's spec ---- */

int fsm__natwl_spec_pack(struct fsm *f,
                         MDB_txn *txn,
                         msgpack_packer *pk,
                         const char *gw,
                         const struct fsm_rec *r)
{
    struct fsm_ids l = {NULL, 0, 0};
    struct yh_buf b = YH_BUF_INIT;
    struct fsm_rec m;
    struct fsm_out o;
    struct ips ips;
    uint32_t n = 0;
    int rc;

    fsm__rec_init(&m);
    fsm__out_init(&o, &b);
    rc = fsm__net_walk(f, txn, 'L', gw, fsm__ids_add, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        rc = fsm__rec_load(f, txn, FSM_TBL_RES, l.v[i], strlen(l.v[i]), &m);
        if (rc == YH_ENOTFOUND) {
            rc = 0; /* purged: its rows go with it */
            continue;
        }
        if (rc == 0) {
            rc = vm_ips(f, txn, l.v[i], &m, r, &ips);
        }
        if (rc == 0) {
            msgpack_pack_map(&o.pk, 2);
            yh_mp_pack_kv_str(&o.pk, "ResourceID", l.v[i]);
            yh_mp_pack_str(&o.pk, "IPs");
            pack_ips(&o.pk, &ips);
            n++;
        }
    }
    if (rc == 0 && o.oom) {
        rc = YH_ENOMEM;
    }
    yh_mp_pack_str(pk, "WhiteList");
    msgpack_pack_array(pk, rc == 0 ? n : 0);
    if (rc == 0 && b.len > 0) {
        msgpack_pack_str_body(pk, b.data, b.len);
    }
    yh_buf_release(&b);
    fsm__rec_free(&m);
    fsm__ids_free(&l);
    return rc;
}
