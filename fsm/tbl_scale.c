/* Autoscaling: scaling groups ("asg-") and their policies ("asp-").
 *
 * A group holds a machine template (the CreateVMInstance parameters),
 * Min <= Desired <= Max, a Cooldown (s) and the machines it created
 * (VMIDs). With a VServerID (a load-balancer virtual server of the
 * owner, in the VPC of the template's machines), every machine the group
 * creates becomes a backend of it (CreateRS as the owner, with the group's
 * Port and Weight) in the same step, and leaves it when the group scales
 * it in or when it leaves the group (deleted by hand: at the next step).
 * A policy moves Desired by Adjustment (clamped to Min..Max) when
 * the average of MetricName over the group's machines compares true
 * against Threshold; the average uses each live machine's newest sample
 * taken after the second of the group's last scaling step and at most
 * METRIC_WINDOW s old (machines without one do not count; with none, the
 * policy does not apply).
 *
 * The leader drives the group (fsm__scale_tick) with two internal
 * commands, each keyed by the group's step counter Seq, which every
 * applied step increments: a proposal for a Seq that is no longer current
 * (a retry, a replay, a second leader) is a harmless rejection, so a leader
 * change never scales twice.
 *   _ScalePolicy {ScalingGroupID, Seq, ScalingPolicyID}: re-evaluates the
 *     policy at apply (a pure function of the state), respects Cooldown
 *     since the last step, sets Desired.
 *   _ScaleReconcile {ScalingGroupID, Seq, Op ScaleOut|ScaleIn, Stamp |
 *     PrepCode/PrepMessage}: creates one machine (CreateVMInstance with the
 *     template; the leader's placement in Stamp) or deletes the newest one
 *     (DeleteVMInstance), as the group's owner, so quota, balance,
 *     capacity and permissions apply exactly as for the owner's own call.
 *     A rejection is recorded as an event and starts a Cooldown before the
 *     next attempt: no retry storm.
 * The group keeps its last FSM_AUTO_EVENTS events. Deleting a group
 * leaves its machines alone (and their backends).
 *
 * ModifyScalingGroup changes Name, Min, Max, Desired (an unnamed Desired
 * is clamped into the new bounds) and Cooldown; the leader's next steps
 * follow. Policies are listed (DescribeScalingPolicy), changed
 * (ModifyScalingPolicy, checked as at create) and deleted
 * (DeleteScalingPolicy: the group's PolicyIDs forget it, and a pending
 * _ScalePolicy for it is refused). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define ASG_PREFIX "asg"
#define ASP_PREFIX "asp"
#define NAME_MAX_LEN 64
#define SIZE_MAX_VMS 50
#define POLICIES_MAX 8
#define ADJ_MAX 10
#define COOLDOWN_MAX 86400
#define METRIC_WINDOW 300
#define VALUE_MAX (1ll << 53)

static int64_t now_s(const struct fsm_ctx *c)
{
    return (int64_t)(c->time_ns / 1000000000u);
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Split list field @k of @r into @out (at most @max). */
static unsigned list_of(const struct fsm_rec *r,
                        const char *k,
                        char (*out)[FSM_ID_SIZE],
                        unsigned max)
{
    const char *p = fsm__rec_s(r, k);
    unsigned n = 0;

    while (*p != '\0' && n < max) {
        const char *e = strchr(p, '\n');
        size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
        snprintf(out[n++], FSM_ID_SIZE, "%.*s", (int)l, p);
        p += l + (e != NULL);
    }
    return n;
}

/* The group's machines that exist and are not in the recycle bin. */
static int live_vms(struct fsm *f,
                    MDB_txn *txn,
                    const struct fsm_rec *g,
                    char (*live)[FSM_ID_SIZE],
                    unsigned *n_live,
                    unsigned *n_all)
{
    char all[SIZE_MAX_VMS + 1][FSM_ID_SIZE];
    struct fsm_rec v;
    int rc = 0;

    *n_all = list_of(g, "VMIDs", all, SIZE_MAX_VMS + 1);
    *n_live = 0;
    fsm__rec_init(&v);
    for (unsigned i = 0; i < *n_all; i++) {
        rc = fsm__rec_load(f, txn, FSM_TBL_RES, all[i], strlen(all[i]), &v);
        if (rc == YH_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc != 0) {
            break;
        }
        if (strcmp(fsm__rec_s(&v, "State"), "Recycled") != 0) {
            snprintf(live[(*n_live)++], FSM_ID_SIZE, "%s", all[i]);
        }
    }
    fsm__rec_free(&v);
    return rc;
}

/* Policy @p over group @g at @now: *hit if it applies; the average (floor)
 * and the number of machines that had a sample. */
static int policy_eval(struct fsm *f,
                       MDB_txn *txn,
                       const struct fsm_rec *g,
                       const struct fsm_rec *p,
                       int64_t now,
                       char (*live)[FSM_ID_SIZE],
                       unsigned n_live,
                       int *hit,
                       int64_t *avg,
                       unsigned *samples)
{
    const char *metric = fsm__rec_s(p, "MetricName");
    int64_t since = now - METRIC_WINDOW;
    __int128 sum = 0;
    int cmp = fsm__cmp_parse(fsm__rec_s(p, "Comparison"));

    if (fsm__rec_i(g, "LastScaleTime") + 1 > since) {
        since = fsm__rec_i(g, "LastScaleTime") + 1; /* taken after it */
    }
    *samples = 0;
    *hit = 0;
    *avg = 0;
    for (unsigned i = 0; i < n_live; i++) {
        int64_t t, v;
        int found;
        TRY(fsm__metric_last(f, txn, live[i], metric, &t, &v, &found));
        if (found && t >= since) {
            sum += v;
            (*samples)++;
        }
    }
    if (*samples == 0) {
        return 0;
    }
    *avg = (int64_t)(sum / *samples);
    *hit = fsm__cmp_eval(cmp, sum,
                         (__int128)fsm__rec_i(p, "Threshold") * *samples);
    return 0;
}

/* ---- CreateScalingGroup ---- */

struct asg_args
{
    char name[NAME_MAX_LEN + 1];
    char vserver[FSM_ID_SIZE];
    int64_t port, weight; /* of the backends in vserver */
    int64_t min, max, desired, cooldown;
    struct yh_buf tpl; /* packed map */
};

static int asg_args(struct fsm_ctx *c, const char *tenant, struct asg_args *a)
{
    struct yh_buf tmp = YH_BUF_INIT;
    msgpack_unpacked u;
    int rc;

    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, a->name, NULL));
    TRY(fsm__arg_str(c, "VServerID", 0, FSM_ID_SIZE - 1, a->vserver, NULL));
    if (a->vserver[0] != '\0') {
        TRY(fsm__arg_int(c, "Port", 1, 1, 65535, &a->port, NULL));
        TRY(fsm__arg_int_or(c, "Weight", 1, 100, 1, &a->weight));
    } else {
        int pp, wp;
        TRY(fsm__arg_int(c, "Port", 0, 1, 65535, &a->port, &pp));
        TRY(fsm__arg_int(c, "Weight", 0, 1, 100, &a->weight, &wp));
        if (pp || wp) {
            return fsm__reject(c, YH_EINVAL,
                               "invalid parameter '%s': only with 'VServerID'",
                               pp ? "Port" : "Weight");
        }
        a->port = 0;
        a->weight = 0;
    }
    TRY(fsm__arg_int(c, "Min", 1, 0, SIZE_MAX_VMS, &a->min, NULL));
    TRY(fsm__arg_int(c, "Max", 1, 1, SIZE_MAX_VMS, &a->max, NULL));
    if (a->max < a->min) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'Max': at least 'Min'");
    }
    TRY(fsm__arg_int_or(c, "Desired", a->min, a->max, a->min, &a->desired));
    TRY(fsm__arg_int_or(c, "Cooldown", 0, COOLDOWN_MAX, 300, &a->cooldown));
    TRY(fsm__auto_params(c, "Template", &a->tpl));
    msgpack_unpacked_init(&u);
    rc = fsm__auto_args((const char *)a->tpl.data, a->tpl.len, "TenantID",
                        tenant, NULL, NULL, &tmp, &u);
    if (rc == 0) {
        rc = fsm__auto_validate(c, "Template", "CreateVMInstance", c->actor,
                                &u.data);
    }
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&tmp);
    return rc;
}

int fsm__asg_create_check(struct fsm_ctx *c)
{
    struct asg_args a;
    char tenant[FSM_ID_SIZE];
    int rc;

    memset(&a, 0, sizeof a);
    TRY(fsm__owner_arg(c, tenant));
    rc = asg_args(c, tenant, &a);
    yh_buf_release(&a.tpl);
    return rc;
}

/* The template's VPC: VPCID, or SubnetID's ("" if neither). */
static int template_vpc(struct fsm_ctx *c,
                        const struct yh_buf *tpl,
                        char vpc[FSM_ID_SIZE])
{
    msgpack_unpacked u;
    char subnet[FSM_ID_SIZE] = "";
    struct fsm_rec s;
    int rc = 0;

    vpc[0] = '\0';
    msgpack_unpacked_init(&u);
    if (fsm__mp_decode(tpl->data, tpl->len, &u) == 0 &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        fsm__rec_str(&u.data, "VPCID", vpc, FSM_ID_SIZE);
        fsm__rec_str(&u.data, "SubnetID", subnet, sizeof subnet);
    }
    msgpack_unpacked_destroy(&u);
    if (vpc[0] != '\0' || subnet[0] == '\0') {
        return 0;
    }
    fsm__rec_init(&s);
    if (strncmp(subnet, "subnet-", 7) == 0) {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, subnet, strlen(subnet),
                           &s);
    }
    if (rc == 0) {
        snprintf(vpc, FSM_ID_SIZE, "%s", fsm__rec_s(&s, "VPCID"));
    }
    fsm__rec_free(&s);
    return rc == YH_ENOTFOUND ? 0 : rc;
}

/* VServerID: the actor's vserver (150), its load balancer live (162), of
 * the group's tenant and of the VPC of the template's machines (121). */
static int vserver_ok(struct fsm_ctx *c,
                      const struct asg_args *a,
                      const char *tenant)
{
    char lb[FSM_ID_SIZE], vpc[FSM_ID_SIZE], owner[FSM_ID_SIZE];
    char tvpc[FSM_ID_SIZE];

    TRY(fsm__vs_owner(c, a->vserver, lb, vpc, owner));
    if (strcmp(owner, tenant) != 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'VServerID': '%s' belongs to "
                           "another tenant",
                           a->vserver);
    }
    TRY(template_vpc(c, &a->tpl, tvpc));
    if (strcmp(tvpc, vpc) != 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'VServerID': load balancer "
                           "'%s' is in VPC '%s', the template's machines in "
                           "%s%s%s",
                           lb, vpc, tvpc[0] ? "'" : "no VPC", tvpc,
                           tvpc[0] ? "'" : "");
    }
    return 0;
}

int fsm__asg_create_apply(struct fsm_ctx *c)
{
    struct asg_args a;
    char tenant[FSM_ID_SIZE], id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    memset(&a, 0, sizeof a);
    fsm__rec_init(&r);
    rc = fsm__owner_arg(c, tenant);
    if (rc == 0) {
        rc = asg_args(c, tenant, &a);
    }
    if (rc == 0 && a.vserver[0] != '\0') {
        rc = vserver_ok(c, &a, tenant);
    }
    if (rc == 0) {
        rc = fsm__new_id(c, ASG_PREFIX, id);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_s(&r, "ScalingGroupID", id);
    fsm__auto_owner_set(&r, c->actor, tenant);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_i(&r, "Min", a.min);
    fsm__rec_set_i(&r, "Max", a.max);
    fsm__rec_set_i(&r, "Desired", a.desired);
    fsm__rec_set_i(&r, "Cooldown", a.cooldown);
    fsm__rec_set_s(&r, "VServerID", a.vserver);
    fsm__rec_set_i(&r, "Port", a.port);
    fsm__rec_set_i(&r, "Weight", a.weight);
    fsm__rec_set_bin(&r, "_Template", a.tpl.data, a.tpl.len);
    fsm__rec_set_l(&r, "VMIDs", NULL, 0);
    fsm__rec_set_l(&r, "PolicyIDs", NULL, 0);
    fsm__rec_set_i(&r, "Seq", 0);
    fsm__rec_set_i(&r, "LastScaleTime", 0);
    fsm__rec_set_i(&r, "LastFailTime", 0);
    fsm__rec_set_s(&r, "State", "Active");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
    rc = fsm__rec_save(c, FSM_TBL_AUTO, id, strlen(id), &r);
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, "ScalingGroupID"), id);
    }
out:
    fsm__rec_free(&r);
    yh_buf_release(&a.tpl);
    return rc;
}

/* Group @id of the actor's tenant (150 otherwise). */
static int asg_load(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    int rc = strncmp(id, ASG_PREFIX "-", sizeof ASG_PREFIX) == 0
                 ? fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, id, strlen(id), r)
                 : YH_ENOTFOUND;

    if (rc == 0 && !fsm__owns(c, fsm__rec_s(r, "TenantID"))) {
        rc = YH_ENOTFOUND;
    }
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "scaling group '%s' not found", id);
    }
    return rc;
}

/* ---- policies ---- */

int fsm__asp_create_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], name[NAME_MAX_LEN + 1], metric[32], cmp[8];
    int64_t v;

    TRY(fsm__arg_str(c, "ScalingGroupID", 1, FSM_ID_SIZE - 1, id, NULL));
    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, name, NULL));
    TRY(fsm__arg_str(c, "MetricName", 1, sizeof metric - 1, metric, NULL));
    if (!fsm__metric_known(metric)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'MetricName': one of "
                           "CPUUtilization, MemUsage, NICIn, NICOut, IORead, "
                           "IOWrite, DiskUsage");
    }
    TRY(fsm__arg_str(c, "Comparison", 1, sizeof cmp - 1, cmp, NULL));
    if (fsm__cmp_parse(cmp) < 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'Comparison': GT, GE, LT or LE");
    }
    TRY(fsm__arg_int(c, "Threshold", 1, 0, VALUE_MAX, &v, NULL));
    TRY(fsm__arg_int(c, "Adjustment", 1, -ADJ_MAX, ADJ_MAX, &v, NULL));
    if (v == 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'Adjustment': +N or -N, not 0");
    }
    return 0;
}

int fsm__asp_create_apply(struct fsm_ctx *c)
{
    char gid[FSM_ID_SIZE], id[FSM_ID_SIZE], name[NAME_MAX_LEN + 1];
    char metric[32], cmp[8];
    char pols[POLICIES_MAX + 1][FSM_ID_SIZE];
    int64_t threshold, adj;
    struct fsm_rec g, p;
    unsigned n;
    int rc;

    TRY(fsm__asp_create_check(c));
    fsm__arg_str(c, "ScalingGroupID", 1, FSM_ID_SIZE - 1, gid, NULL);
    fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, name, NULL);
    fsm__arg_str(c, "MetricName", 1, sizeof metric - 1, metric, NULL);
    fsm__arg_str(c, "Comparison", 1, sizeof cmp - 1, cmp, NULL);
    fsm__arg_int(c, "Threshold", 1, 0, VALUE_MAX, &threshold, NULL);
    fsm__arg_int(c, "Adjustment", 1, -ADJ_MAX, ADJ_MAX, &adj, NULL);
    fsm__rec_init(&g);
    fsm__rec_init(&p);
    rc = asg_load(c, gid, &g);
    if (rc != 0) {
        goto out;
    }
    n = list_of(&g, "PolicyIDs", pols, POLICIES_MAX + 1);
    if (n >= POLICIES_MAX) {
        rc = fsm__reject(c, YH_EQUOTA, "scaling group '%s' has %d policies",
                         gid, POLICIES_MAX);
        goto out;
    }
    rc = fsm__new_id(c, ASP_PREFIX, id);
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_s(&p, "ScalingPolicyID", id);
    fsm__rec_set_s(&p, "ScalingGroupID", gid);
    fsm__rec_set_s(&p, "TenantID", fsm__rec_s(&g, "TenantID"));
    fsm__rec_set_s(&p, "Name", name);
    fsm__rec_set_s(&p, "MetricName", metric);
    fsm__rec_set_s(&p, "Comparison", cmp);
    fsm__rec_set_i(&p, "Threshold", threshold);
    fsm__rec_set_i(&p, "Adjustment", adj);
    fsm__rec_set_i(&p, "CreateTime", now_s(c));
    fsm__rec_set_i(&p, "Revision", (int64_t)c->index);
    rc = fsm__rec_save(c, FSM_TBL_AUTO, id, strlen(id), &p);
    if (rc == 0) {
        snprintf(pols[n++], FSM_ID_SIZE, "%s", id);
        fsm__rec_set_l(&g, "PolicyIDs", pols, n);
        fsm__rec_set_i(&g, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_AUTO, gid, strlen(gid), &g);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, "ScalingPolicyID"), id);
    }
out:
    fsm__rec_free(&g);
    fsm__rec_free(&p);
    return rc;
}

/* ---- Describe / Delete ---- */

static void asg_pack(struct fsm_ctx *c,
                     msgpack_packer *pk,
                     const struct fsm_rec *r,
                     void *arg)
{
    char pols[POLICIES_MAX][FSM_ID_SIZE];
    struct yh_buf b = YH_BUF_INIT;
    struct fsm_out o;
    msgpack_unpacked u;
    struct fsm_rec p;
    unsigned n = list_of(r, "PolicyIDs", pols, POLICIES_MAX), np = 0;

    (void)arg;
    fsm__out_init(&o, &b);
    fsm__rec_pack(&o.pk, r);
    msgpack_unpacked_init(&u);
    fsm__rec_init(&p);
    if (o.oom || fsm__mp_decode(b.data, b.len, &u) != 0 ||
        u.data.type != MSGPACK_OBJECT_MAP) {
        c->fields.oom = 1;
        goto out;
    }
    msgpack_pack_map(pk, u.data.via.map.size + 3);
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        msgpack_pack_object(pk, u.data.via.map.ptr[i].key);
        msgpack_pack_object(pk, u.data.via.map.ptr[i].val);
    }
    yh_mp_pack_str(pk, "Template");
    fsm__auto_bin_pack(pk, r, "_Template", 1);
    yh_mp_pack_str(pk, "Events");
    fsm__auto_bin_pack(pk, r, "_Events", 0);
    for (unsigned i = 0; i < n; i++) {
        np += fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, pols[i],
                            strlen(pols[i]), &p) == 0;
    }
    yh_mp_pack_str(pk, "Policies");
    msgpack_pack_array(pk, np);
    for (unsigned i = 0; i < n; i++) {
        if (fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, pols[i], strlen(pols[i]),
                          &p) == 0) {
            fsm__rec_pack(pk, &p);
        }
    }
out:
    fsm__rec_free(&p);
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&b);
}

int fsm__asg_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {
        FSM_TBL_AUTO, ASG_PREFIX "-", "ScalingGroupIDs", 0, NULL, asg_pack,
        NULL};

    return fsm__describe(c, &d);
}

int fsm__asg_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "ScalingGroupID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__asg_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], pols[POLICIES_MAX][FSM_ID_SIZE];
    struct fsm_rec g;
    unsigned n;
    int rc;

    TRY(fsm__asg_delete_check(c));
    fsm__arg_str(c, "ScalingGroupID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&g);
    rc = asg_load(c, id, &g);
    if (rc == 0) {
        n = list_of(&g, "PolicyIDs", pols, POLICIES_MAX);
        for (unsigned i = 0; i < n && rc == 0; i++) {
            rc = fsm__cdel(c, FSM_TBL_AUTO, pols[i], strlen(pols[i]));
            if (rc == YH_ENOTFOUND) {
                rc = 0;
            }
        }
    }
    if (rc == 0) {
        rc = fsm__cdel(c, FSM_TBL_AUTO, id, strlen(id));
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    fsm__rec_free(&g);
    return rc;
}

/* ---- policies: Delete, Describe, Modify ---- */

/* Policy @id of the actor's tenant (150 otherwise). */
static int asp_load(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    int rc = strncmp(id, ASP_PREFIX "-", sizeof ASP_PREFIX) == 0
                 ? fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, id, strlen(id), r)
                 : YH_ENOTFOUND;

    if (rc == 0 && !fsm__owns(c, fsm__rec_s(r, "TenantID"))) {
        rc = YH_ENOTFOUND;
    }
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "scaling policy '%s' not found",
                           id);
    }
    return rc;
}

int fsm__asp_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "ScalingPolicyID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__asp_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], gid[FSM_ID_SIZE];
    char pols[POLICIES_MAX][FSM_ID_SIZE], keep[POLICIES_MAX][FSM_ID_SIZE];
    struct fsm_rec p, g;
    unsigned n, k = 0;
    int rc;

    TRY(fsm__arg_str(c, "ScalingPolicyID", 1, FSM_ID_SIZE - 1, id, NULL));
    fsm__rec_init(&p);
    fsm__rec_init(&g);
    rc = asp_load(c, id, &p);
    if (rc == 0) {
        snprintf(gid, sizeof gid, "%s", fsm__rec_s(&p, "ScalingGroupID"));
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, gid, strlen(gid), &g);
        if (rc == 0) {
            n = list_of(&g, "PolicyIDs", pols, POLICIES_MAX);
            for (unsigned i = 0; i < n; i++) {
                if (strcmp(pols[i], id) != 0) {
                    snprintf(keep[k++], FSM_ID_SIZE, "%s", pols[i]);
                }
            }
            fsm__rec_set_l(&g, "PolicyIDs", keep, k);
            fsm__rec_set_i(&g, "Revision", (int64_t)c->index);
            rc = fsm__rec_save(c, FSM_TBL_AUTO, gid, strlen(gid), &g);
        } else if (rc == YH_ENOTFOUND) {
            rc = 0; /* its group is gone already */
        }
    }
    if (rc == 0) {
        rc = fsm__cdel(c, FSM_TBL_AUTO, id, strlen(id));
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    fsm__rec_free(&p);
    fsm__rec_free(&g);
    return rc;
}

static int asp_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    const char *group = arg;

    (void)c;
    return group[0] == '\0' ||
           strcmp(fsm__rec_s(r, "ScalingGroupID"), group) == 0;
}

int fsm__asp_describe(struct fsm_ctx *c)
{
    char group[FSM_ID_SIZE];
    struct fsm_desc d = {
        FSM_TBL_AUTO, ASP_PREFIX "-", "ScalingPolicyIDs", 0, asp_keep,
        NULL,         group};

    TRY(fsm__arg_str(c, "ScalingGroupID", 0, FSM_ID_SIZE - 1, group, NULL));
    return fsm__describe(c, &d);
}

/* ModifyScalingPolicy: the given fields, each checked as at create. */
struct asp_mod
{
    char id[FSM_ID_SIZE];
    char name[NAME_MAX_LEN + 1], metric[32], cmp[8];
    int64_t threshold, adj;
    int has_name, has_metric, has_cmp, has_threshold, has_adj;
};

static int asp_mod_args(struct fsm_ctx *c, struct asp_mod *m)
{
    TRY(fsm__arg_str(c, "ScalingPolicyID", 1, FSM_ID_SIZE - 1, m->id, NULL));
    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, m->name, &m->has_name));
    TRY(fsm__arg_str(c, "MetricName", 0, sizeof m->metric - 1, m->metric,
                     &m->has_metric));
    if (m->has_metric && !fsm__metric_known(m->metric)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'MetricName': one of "
                           "CPUUtilization, MemUsage, NICIn, NICOut, IORead, "
                           "IOWrite, DiskUsage");
    }
    TRY(fsm__arg_str(c, "Comparison", 0, sizeof m->cmp - 1, m->cmp,
                     &m->has_cmp));
    if (m->has_cmp && fsm__cmp_parse(m->cmp) < 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'Comparison': GT, GE, LT or LE");
    }
    TRY(fsm__arg_int(c, "Threshold", 0, 0, VALUE_MAX, &m->threshold,
                     &m->has_threshold));
    TRY(fsm__arg_int(c, "Adjustment", 0, -ADJ_MAX, ADJ_MAX, &m->adj,
                     &m->has_adj));
    if (m->has_adj && m->adj == 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'Adjustment': +N or -N, not 0");
    }
    if (!m->has_name && !m->has_metric && !m->has_cmp && !m->has_threshold &&
        !m->has_adj) {
        return fsm__reject(c, YH_EMISSING,
                           "missing parameter: one of 'Name', 'MetricName', "
                           "'Comparison', 'Threshold', 'Adjustment'");
    }
    return 0;
}

int fsm__asp_modify_check(struct fsm_ctx *c)
{
    struct asp_mod m;

    memset(&m, 0, sizeof m);
    return asp_mod_args(c, &m);
}

int fsm__asp_modify_apply(struct fsm_ctx *c)
{
    struct asp_mod m;
    struct fsm_rec p;
    int rc;

    memset(&m, 0, sizeof m);
    TRY(asp_mod_args(c, &m));
    fsm__rec_init(&p);
    rc = asp_load(c, m.id, &p);
    if (rc == 0) {
        if (m.has_name) {
            fsm__rec_set_s(&p, "Name", m.name);
        }
        if (m.has_metric) {
            fsm__rec_set_s(&p, "MetricName", m.metric);
        }
        if (m.has_cmp) {
            fsm__rec_set_s(&p, "Comparison", m.cmp);
        }
        if (m.has_threshold) {
            fsm__rec_set_i(&p, "Threshold", m.threshold);
        }
        if (m.has_adj) {
            fsm__rec_set_i(&p, "Adjustment", m.adj);
        }
        fsm__rec_set_i(&p, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_AUTO, m.id, strlen(m.id), &p);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", m.id);
    }
    fsm__rec_free(&p);
    return rc;
}

/* ---- ModifyScalingGroup ---- */

struct asg_mod
{
    char id[FSM_ID_SIZE];
    char name[NAME_MAX_LEN + 1];
    int64_t min, max, desired, cooldown;
    int has_name, has_min, has_max, has_desired, has_cooldown;
};

static int asg_mod_args(struct fsm_ctx *c, struct asg_mod *m)
{
    TRY(fsm__arg_str(c, "ScalingGroupID", 1, FSM_ID_SIZE - 1, m->id, NULL));
    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, m->name, &m->has_name));
    TRY(fsm__arg_int(c, "Min", 0, 0, SIZE_MAX_VMS, &m->min, &m->has_min));
    TRY(fsm__arg_int(c, "Max", 0, 1, SIZE_MAX_VMS, &m->max, &m->has_max));
    TRY(fsm__arg_int(c, "Desired", 0, 0, SIZE_MAX_VMS, &m->desired,
                     &m->has_desired));
    TRY(fsm__arg_int(c, "Cooldown", 0, 0, COOLDOWN_MAX, &m->cooldown,
                     &m->has_cooldown));
    if (!m->has_name && !m->has_min && !m->has_max && !m->has_desired &&
        !m->has_cooldown) {
        return fsm__reject(c, YH_EMISSING,
                           "missing parameter: one of 'Name', 'Min', 'Max', "
                           "'Desired', 'Cooldown'");
    }
    return 0;
}

int fsm__asg_modify_check(struct fsm_ctx *c)
{
    struct asg_mod m;

    memset(&m, 0, sizeof m);
    return asg_mod_args(c, &m);
}

int fsm__asg_modify_apply(struct fsm_ctx *c)
{
    struct asg_mod m;
    struct fsm_rec g;
    int64_t min, max, desired;
    int rc;

    memset(&m, 0, sizeof m);
    TRY(asg_mod_args(c, &m));
    fsm__rec_init(&g);
    rc = asg_load(c, m.id, &g);
    if (rc != 0) {
        goto out;
    }
    min = m.has_min ? m.min : fsm__rec_i(&g, "Min");
    max = m.has_max ? m.max : fsm__rec_i(&g, "Max");
    if (max < min) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter '%s': Max %" PRId64
                         " below Min %" PRId64,
                         m.has_max ? "Max" : "Min", max, min);
        goto out;
    }
    /* an unnamed Desired follows the new bounds */
    desired =
        m.has_desired ? m.desired : clamp(fsm__rec_i(&g, "Desired"), min, max);
    if (desired < min || desired > max) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'Desired': %" PRId64
                         " outside Min..Max %" PRId64 "..%" PRId64,
                         desired, min, max);
        goto out;
    }
    if (m.has_name) {
        fsm__rec_set_s(&g, "Name", m.name);
    }
    if (m.has_cooldown) {
        fsm__rec_set_i(&g, "Cooldown", m.cooldown);
    }
    fsm__rec_set_i(&g, "Min", min);
    fsm__rec_set_i(&g, "Max", max);
    fsm__rec_set_i(&g, "Desired", desired);
    fsm__rec_set_i(&g, "Revision", (int64_t)c->index);
    rc = fsm__rec_save(c, FSM_TBL_AUTO, m.id, strlen(m.id), &g);
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", m.id);
        msgpack_pack_int64(fsm__field(c, "Desired"), desired);
    }
out:
    fsm__rec_free(&g);
    return rc;
}

/* ---- steps (proposed by the leader) ---- */

/* The group of a step, at the step's Seq (161 otherwise). */
static int step_group(struct fsm_ctx *c,
                      char id[FSM_ID_SIZE],
                      struct fsm_rec *g)
{
    int64_t seq;
    int rc;

    if (fsm__arg_str(c, "ScalingGroupID", 1, FSM_ID_SIZE - 1, id, NULL) != 0 ||
        fsm__arg_int(c, "Seq", 1, 0, INT64_MAX, &seq, NULL) != 0) {
        return YH_EPROTO;
    }
    snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    rc = strncmp(id, ASG_PREFIX "-", sizeof ASG_PREFIX) == 0
             ? fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, id, strlen(id), g)
             : YH_ENOTFOUND;
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "scaling group '%s' not found", id);
    }
    TRY(rc);
    if (seq != fsm__rec_i(g, "Seq")) {
        return fsm__reject(c, YH_EEXIST,
                           "step %" PRId64
                           " of scaling group '%s' is taken "
                           "(now at %" PRId64 ")",
                           seq, id, fsm__rec_i(g, "Seq"));
    }
    return 0;
}

/* Record a step: Seq moves on, the event is kept. */
static int step_done(struct fsm_ctx *c,
                     const char *id,
                     struct fsm_rec *g,
                     const struct yh_buf *ev)
{
    fsm__rec_set_i(g, "Seq", fsm__rec_i(g, "Seq") + 1);
    fsm__rec_set_i(g, "LastScaleTime", now_s(c));
    fsm__rec_set_i(g, "Revision", (int64_t)c->index);
    TRY(fsm__auto_event_push(g, "_Events", ev));
    return fsm__rec_save(c, FSM_TBL_AUTO, id, strlen(id), g);
}

int fsm__scale_policy_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], pid[FSM_ID_SIZE];
    char live[SIZE_MAX_VMS + 1][FSM_ID_SIZE];
    struct yh_buf ev = YH_BUF_INIT;
    struct fsm_rec g, p;
    struct fsm_out o;
    unsigned n_live, n_all, samples;
    int64_t avg, from, to, now = now_s(c);
    int hit;
    int rc;

    fsm__rec_init(&g);
    fsm__rec_init(&p);
    rc = step_group(c, id, &g);
    if (rc == 0 && fsm__arg_str(c, "ScalingPolicyID", 1, FSM_ID_SIZE - 1, pid,
                                NULL) != 0) {
        rc = YH_EPROTO;
    }
    if (rc != 0) {
        goto out;
    }
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, pid, strlen(pid), &p);
    if (rc == 0 && strcmp(fsm__rec_s(&p, "ScalingGroupID"), id) != 0) {
        rc = YH_ENOTFOUND;
    }
    if (rc == YH_ENOTFOUND) {
        rc = fsm__reject(c, YH_ENOTFOUND, "policy '%s' of '%s' not found", pid,
                         id);
    }
    if (rc != 0) {
        goto out;
    }
    if (now < fsm__rec_i(&g, "LastScaleTime") + fsm__rec_i(&g, "Cooldown")) {
        rc =
            fsm__reject(c, YH_ESTATE, "scaling group '%s' is cooling down", id);
        goto out;
    }
    rc = live_vms(c->f, c->txn, &g, live, &n_live, &n_all);
    if (rc == 0 && (int64_t)n_live != fsm__rec_i(&g, "Desired")) {
        rc = fsm__reject(c, YH_ESTATE,
                         "scaling group '%s' has %u machines, not the %" PRId64
                         " desired",
                         id, n_live, fsm__rec_i(&g, "Desired"));
    }
    if (rc == 0) {
        rc = policy_eval(c->f, c->txn, &g, &p, now, live, n_live, &hit, &avg,
                         &samples);
    }
    if (rc != 0) {
        goto out;
    }
    from = fsm__rec_i(&g, "Desired");
    to = clamp(from + fsm__rec_i(&p, "Adjustment"), fsm__rec_i(&g, "Min"),
               fsm__rec_i(&g, "Max"));
    if (!hit || to == from) {
        rc = fsm__reject(c, YH_ESTATE, "policy '%s' does not apply now%s", pid,
                         hit ? " (at the size bound)" : "");
        goto out;
    }
    fsm__rec_set_i(&g, "Desired", to);
    snprintf(c->msg, sizeof c->msg,
             "policy %s: %s average %" PRId64 " over %u machines %s %" PRId64
             ": Desired %" PRId64 " -> %" PRId64,
             pid, fsm__rec_s(&p, "MetricName"), avg, samples,
             fsm__rec_s(&p, "Comparison"), fsm__rec_i(&p, "Threshold"), from,
             to);
    fsm__out_init(&o, &ev);
    msgpack_pack_map(&o.pk, 7);
    yh_mp_pack_kv_int(&o.pk, "Time", now);
    yh_mp_pack_kv_str(&o.pk, "Type", "Policy");
    yh_mp_pack_kv_str(&o.pk, "ScalingPolicyID", pid);
    yh_mp_pack_kv_int(&o.pk, "Average", avg);
    yh_mp_pack_kv_int(&o.pk, "From", from);
    yh_mp_pack_kv_int(&o.pk, "To", to);
    yh_mp_pack_kv_str(&o.pk, "Message", c->msg);
    rc = o.oom ? YH_ENOMEM : step_done(c, id, &g, &ev);
    if (rc == 0) {
        msgpack_pack_int64(fsm__field(c, "Desired"), to);
    }
out:
    fsm__rec_free(&g);
    fsm__rec_free(&p);
    yh_buf_release(&ev);
    return rc;
}

/* The group's machine @vm becomes a backend of its vserver: CreateRS as
 * the owner (a rejection writes nothing and is reported in @rs). */
static int rs_register(struct fsm_ctx *c,
                       const struct fsm_rec *g,
                       const struct fsm_actor *owner,
                       const char *vm,
                       struct fsm_run *rs)
{
    struct yh_buf b = YH_BUF_INIT;
    struct fsm_out o;
    msgpack_unpacked u;
    int rc;

    fsm__out_init(&o, &b);
    msgpack_pack_map(&o.pk, 4);
    yh_mp_pack_kv_str(&o.pk, "VServerID", fsm__rec_s(g, "VServerID"));
    yh_mp_pack_kv_str(&o.pk, "BindResourceID", vm);
    yh_mp_pack_kv_int(&o.pk, "Port", fsm__rec_i(g, "Port"));
    yh_mp_pack_kv_int(&o.pk, "Weight", fsm__rec_i(g, "Weight"));
    msgpack_unpacked_init(&u);
    rc = o.oom ? YH_ENOMEM : fsm__mp_decode(b.data, b.len, &u);
    if (rc == 0) {
        rc = fsm__auto_run(c, "CreateRS", owner, fsm__rec_s(g, "TenantID"),
                           &u.data, NULL, rs);
    }
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&b);
    return rc;
}

/* Whether the group has a vserver to register its machines with (groups
 * made before Port existed have none). */
static int has_vserver(const struct fsm_rec *g)
{
    return fsm__rec_s(g, "VServerID")[0] != '\0' && fsm__rec_i(g, "Port") > 0;
}

/* Machines of the list that are no longer live (deleted by hand, still in
 * the recycle bin) leave the group's vserver. */
static int dead_release(struct fsm_ctx *c,
                        const struct fsm_rec *g,
                        char (*live)[FSM_ID_SIZE],
                        unsigned n_live)
{
    char all[SIZE_MAX_VMS + 1][FSM_ID_SIZE];
    unsigned n_all = list_of(g, "VMIDs", all, SIZE_MAX_VMS + 1);

    if (!has_vserver(g)) {
        return 0;
    }
    for (unsigned i = 0; i < n_all; i++) {
        int alive = 0;
        for (unsigned j = 0; j < n_live && !alive; j++) {
            alive = strcmp(all[i], live[j]) == 0;
        }
        if (!alive) {
            TRY(fsm__rs_vm_vs_release(c, all[i], fsm__rec_s(g, "VServerID"),
                                      fsm__rec_i(g, "Port")));
        }
    }
    return 0;
}

int fsm__scale_reconcile_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], op[16], vm[FSM_ID_SIZE] = "";
    char live[SIZE_MAX_VMS + 1][FSM_ID_SIZE];
    struct yh_buf tmp = YH_BUF_INIT, ev = YH_BUF_INIT;
    const msgpack_object *stamp = NULL;
    struct fsm_actor owner;
    struct fsm_run run, rs;
    struct fsm_rec g;
    struct fsm_out o;
    msgpack_unpacked u;
    unsigned n_live, n_all;
    int64_t desired, prep = 0, now = now_s(c);
    int out_op, rs_tried = 0;
    int rc;

    fsm__rec_init(&g);
    msgpack_unpacked_init(&u);
    memset(&run, 0, sizeof run);
    memset(&rs, 0, sizeof rs);
    rc = step_group(c, id, &g);
    if (rc == 0 && fsm__arg_str(c, "Op", 1, sizeof op - 1, op, NULL) != 0) {
        rc = YH_EPROTO;
    }
    if (rc != 0) {
        goto out;
    }
    out_op = strcmp(op, "ScaleOut") == 0;
    if (!out_op && strcmp(op, "ScaleIn") != 0) {
        rc = YH_EPROTO;
        goto out;
    }
    if (now < fsm__rec_i(&g, "LastFailTime") + fsm__rec_i(&g, "Cooldown")) {
        rc = fsm__reject(c, YH_ESTATE,
                         "scaling group '%s' is cooling down after a "
                         "rejection",
                         id);
        goto out;
    }
    rc = live_vms(c->f, c->txn, &g, live, &n_live, &n_all);
    if (rc != 0) {
        goto out;
    }
    desired = fsm__rec_i(&g, "Desired");
    if (out_op ? (int64_t)n_live >= desired : (int64_t)n_live <= desired) {
        rc = fsm__reject(c, YH_ESTATE,
                         "scaling group '%s' has %u machines for %" PRId64
                         " desired: no %s",
                         id, n_live, desired, op);
        goto out;
    }
    /* the step: one machine, as the owner */
    fsm__auto_owner_get(&g, &owner);
    if (out_op) {
        size_t tl;
        const char *tpl = fsm__rec_bin(&g, "_Template", &tl);
        if (fsm__arg_int_or(c, "PrepCode", 0, 999, 0, &prep) != 0) {
            rc = YH_EPROTO;
            goto out;
        }
        if (prep != 0) {
            /* the leader could not place it (capacity, ...): recorded */
            run.code = (int)prep;
            if (fsm__arg_str(c, "PrepMessage", 0, sizeof run.msg - 1, run.msg,
                             NULL) != 0) {
                rc = YH_EPROTO;
                goto out;
            }
        } else {
            stamp = yh_mp_get(c->args, "Stamp");
            if (stamp == NULL || stamp->type != MSGPACK_OBJECT_MAP) {
                rc = YH_EPROTO;
                goto out;
            }
            rc = fsm__auto_args(tpl, tl, "TenantID", fsm__rec_s(&g, "TenantID"),
                                NULL, NULL, &tmp, &u);
            if (rc == YH_ECORRUPT) {
                snprintf(c->f->errmsg, sizeof c->f->errmsg,
                         "stored scaling template is corrupt");
            }
            if (rc == 0) {
                rc = fsm__auto_run(c, "CreateVMInstance", &owner,
                                   fsm__rec_s(&g, "TenantID"), &u.data, stamp,
                                   &run);
            }
            if (rc != 0) {
                goto out;
            }
        }
        if (run.code == 0) {
            snprintf(vm, sizeof vm, "%s", run.resource_id);
            snprintf(live[n_live++], FSM_ID_SIZE, "%s", vm);
        }
        if (run.code == 0 && has_vserver(&g)) {
            rc = rs_register(c, &g, &owner, vm, &rs);
            rs_tried = 1;
            if (rc != 0) {
                goto out;
            }
        }
    } else {
        snprintf(vm, sizeof vm, "%s", live[n_live - 1]); /* the newest */
        rc = fsm__auto_args("\x80", 1, "VMID", vm, NULL, NULL, &tmp, &u);
        if (rc == 0) {
            rc = fsm__auto_run(c, "DeleteVMInstance", &owner,
                               fsm__rec_s(&g, "TenantID"), &u.data, NULL, &run);
        }
        if (rc != 0) {
            goto out;
        }
        if (run.code == 0) {
            n_live--;
        }
        if (run.code == 0 && has_vserver(&g)) {
            rc = fsm__rs_vm_vs_release(c, vm, fsm__rec_s(&g, "VServerID"),
                                       fsm__rec_i(&g, "Port"));
            if (rc != 0) {
                goto out;
            }
        }
    }
    /* dead machines (deleted by hand) leave the list and the vserver */
    rc = dead_release(c, &g, live, n_live);
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_l(&g, "VMIDs", live, n_live);
    if (run.code != 0) {
        fsm__rec_set_i(&g, "LastFailTime", now);
    }
    if (run.code == 0 && rs_tried && rs.code == 0) {
        snprintf(c->msg, sizeof c->msg,
                 "%s %s (desired %" PRId64 "), backend %s of %s", op, vm,
                 desired, rs.resource_id, fsm__rec_s(&g, "VServerID"));
    } else if (run.code == 0 && rs_tried) {
        snprintf(c->msg, sizeof c->msg,
                 "%s %s (desired %" PRId64 "); not a backend of %s: %d %.160s",
                 op, vm, desired, fsm__rec_s(&g, "VServerID"), rs.code, rs.msg);
    } else if (run.code == 0) {
        snprintf(c->msg, sizeof c->msg, "%s %s (desired %" PRId64 ")", op, vm,
                 desired);
    } else {
        snprintf(c->msg, sizeof c->msg,
                 "%s rejected (%d %.160s): next attempt after the cooldown", op,
                 run.code, run.msg);
    }
    fsm__out_init(&o, &ev);
    msgpack_pack_map(&o.pk, 6 + 3 * rs_tried);
    yh_mp_pack_kv_int(&o.pk, "Time", now);
    yh_mp_pack_kv_str(&o.pk, "Type",
                      run.code == 0 ? op
                      : out_op      ? "ScaleOutRejected"
                                    : "ScaleInRejected");
    yh_mp_pack_kv_str(&o.pk, "VMID", vm);
    yh_mp_pack_kv_int(&o.pk, "RetCode", run.code);
    yh_mp_pack_kv_str(&o.pk, "Message", run.msg);
    yh_mp_pack_kv_int(&o.pk, "Desired", desired);
    if (rs_tried) {
        yh_mp_pack_kv_str(&o.pk, "RSID", rs.code == 0 ? rs.resource_id : "");
        yh_mp_pack_kv_int(&o.pk, "RSRetCode", rs.code);
        yh_mp_pack_kv_str(&o.pk, "RSMessage", rs.msg);
    }
    rc = o.oom ? YH_ENOMEM : step_done(c, id, &g, &ev);
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "VMID"), vm);
        msgpack_pack_int64(fsm__field(c, "StepRetCode"), run.code);
    }
out:
    msgpack_unpacked_destroy(&u);
    fsm__rec_free(&g);
    yh_buf_release(&tmp);
    yh_buf_release(&ev);
    return rc;
}

/* ---- the leader ---- */

static int propose_step(const struct fsm_rec *g,
                        const char *type,
                        const char *op,
                        const char *policy,
                        const struct yh_buf *stamp,
                        const struct fsm_run *prep,
                        uint64_t now_ns,
                        fsm_propose_cb *cb,
                        void *arg)
{
    struct yh_buf args = YH_BUF_INIT;
    struct fsm_out o;
    int rc;

    fsm__out_init(&o, &args);
    msgpack_pack_map(&o.pk, 2 + (policy != NULL) + (op != NULL) +
                                (stamp != NULL) + 2 * (prep != NULL));
    yh_mp_pack_kv_str(&o.pk, "ScalingGroupID", fsm__rec_s(g, "ScalingGroupID"));
    yh_mp_pack_kv_int(&o.pk, "Seq", fsm__rec_i(g, "Seq"));
    if (policy != NULL) {
        yh_mp_pack_kv_str(&o.pk, "ScalingPolicyID", policy);
    }
    if (op != NULL) {
        yh_mp_pack_kv_str(&o.pk, "Op", op);
    }
    if (stamp != NULL) {
        yh_mp_pack_str(&o.pk, "Stamp");
        if (yh_buf_append(&args, stamp->data, stamp->len) != 0) {
            o.oom = 1;
        }
    }
    if (prep != NULL) {
        yh_mp_pack_kv_int(&o.pk, "PrepCode", prep->code);
        yh_mp_pack_kv_str(&o.pk, "PrepMessage", prep->msg);
    }
    rc = o.oom ? YH_ENOMEM
               : fsm__auto_propose(type, fsm__rec_s(g, "TenantID"), now_ns,
                                   &args, cb, arg);
    yh_buf_release(&args);
    return rc;
}

/* What group @g needs now, proposed. */
static int group_tick(struct fsm *f,
                      MDB_txn *txn,
                      const struct fsm_rec *g,
                      uint64_t now_ns,
                      fsm_propose_cb *cb,
                      void *arg)
{
    char live[SIZE_MAX_VMS + 1][FSM_ID_SIZE];
    char pols[POLICIES_MAX][FSM_ID_SIZE];
    int64_t now = (int64_t)(now_ns / 1000000000u);
    int64_t desired = fsm__rec_i(g, "Desired");
    int64_t cooldown = fsm__rec_i(g, "Cooldown");
    unsigned n_live, n_all, n;
    struct fsm_rec p;
    int rc;

    TRY(live_vms(f, txn, g, live, &n_live, &n_all));
    if ((int64_t)n_live != desired) {
        if (now < fsm__rec_i(g, "LastFailTime") + cooldown) {
            return 0; /* a rejected step waits for the cooldown */
        }
        if ((int64_t)n_live > desired) {
            return propose_step(g, "_ScaleReconcile", "ScaleIn", NULL, NULL,
                                NULL, now_ns, cb, arg);
        }
        {
            struct yh_buf tmp = YH_BUF_INIT, stamp = YH_BUF_INIT;
            struct fsm_actor owner;
            struct fsm_run run;
            msgpack_unpacked u;
            size_t tl;
            const char *tpl = fsm__rec_bin(g, "_Template", &tl);
            msgpack_unpacked_init(&u);
            fsm__auto_owner_get(g, &owner);
            rc = fsm__auto_args(tpl, tl, "TenantID", fsm__rec_s(g, "TenantID"),
                                NULL, NULL, &tmp, &u);
            if (rc == 0) {
                rc = fsm__auto_stamp(f, txn, now_ns, "CreateVMInstance", &owner,
                                     &u.data, &stamp, &run);
            }
            if (rc == 0) {
                rc = propose_step(g, "_ScaleReconcile", "ScaleOut", NULL,
                                  run.code == 0 ? &stamp : NULL,
                                  run.code != 0 ? &run : NULL, now_ns, cb, arg);
            }
            msgpack_unpacked_destroy(&u);
            yh_buf_release(&tmp);
            yh_buf_release(&stamp);
            return rc == YH_ECORRUPT ? 0 : rc;
        }
    }
    if (now < fsm__rec_i(g, "LastScaleTime") + cooldown) {
        return 0;
    }
    n = list_of(g, "PolicyIDs", pols, POLICIES_MAX);
    fsm__rec_init(&p);
    rc = 0;
    for (unsigned i = 0; i < n && rc == 0; i++) {
        int64_t avg, to;
        unsigned samples;
        int hit;
        if (fsm__rec_load(f, txn, FSM_TBL_AUTO, pols[i], strlen(pols[i]), &p) !=
            0) {
            continue;
        }
        rc =
            policy_eval(f, txn, g, &p, now, live, n_live, &hit, &avg, &samples);
        to = clamp(desired + fsm__rec_i(&p, "Adjustment"), fsm__rec_i(g, "Min"),
                   fsm__rec_i(g, "Max"));
        if (rc == 0 && hit && to != desired) {
            rc = propose_step(g, "_ScalePolicy", NULL, pols[i], NULL, NULL,
                              now_ns, cb, arg);
            break; /* one step per group and tick */
        }
    }
    fsm__rec_free(&p);
    return rc;
}

int fsm__scale_tick(struct fsm *f,
                    MDB_txn *txn,
                    uint64_t now_ns,
                    fsm_propose_cb *cb,
                    void *arg)
{
    static const char prefix[] = ASG_PREFIX "-";
    struct fsm_rec g;
    MDB_cursor *cur;
    MDB_val k, v;
    int stop = 0;
    int rc;

    rc = mdb_cursor_open(txn, f->dbis[FSM_TBL_AUTO], &cur);
    if (rc != 0) {
        return fsm__mdb_err(f, rc, "open cursor on 'auto'");
    }
    fsm__rec_init(&g);
    k.mv_data = (void *)prefix;
    k.mv_size = sizeof prefix - 1;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && !stop;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < sizeof prefix - 1 ||
            memcmp(k.mv_data, prefix, sizeof prefix - 1) != 0) {
            break;
        }
        if (fsm__rec_decode(v.mv_data, v.mv_size, &g) != 0) {
            continue;
        }
        stop = group_tick(f, txn, &g, now_ns, cb, arg);
    }
    fsm__rec_free(&g);
    mdb_cursor_close(cur);
    if (stop != 0) {
        return stop;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(f, rc, "read 'auto'");
    }
    return 0;
}
