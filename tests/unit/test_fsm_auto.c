/* Unit tests of automation: timers (exactly-once firing per (timer, due)
 * across repeated ticks and a simulated leader change, missed firings,
 * frozen owners), metric rings (bound, order, isolation), alarm templates
 * (comparisons, consecutive periods, firing/resolved events, bindings),
 * scaling groups (min/max, cooldown, keyed steps, quota rejection) and
 * determinism (the same log gives the same state). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "fsm/base/buf.h"
#include "fsm/base/err.h"
#include "fsm/base/mp.h"
#include "fsm/fsm.h"
#include "tests/lib/fsmtest.h"

#define SEC FSMTEST_SEC

/* ---- helpers ---- */

/* Envelopes a leader tick proposes, kept unapplied. */
struct props
{
    unsigned n;
    struct yh_buf env[16];
};

static int keep_cb(void *arg, const uint8_t *env, size_t len)
{
    struct props *p = arg;

    assert_true(p->n < 16);
    yh_buf_init(&p->env[p->n]);
    assert_int_equal(yh_buf_append(&p->env[p->n], env, len), 0);
    p->n++;
    return 0;
}

static void props_tick(struct fsmtest *x, struct props *p)
{
    memset(p, 0, sizeof *p);
    assert_int_equal(fsm_leader_tick(x->f, x->time, keep_cb, p), 0);
}

static int props_apply(struct fsmtest *x, struct props *p, unsigned i)
{
    return fsmtest_apply_raw(x, p->env[i].data, p->env[i].len);
}

static void props_free(struct props *p)
{
    for (unsigned i = 0; i < p->n; i++) {
        yh_buf_release(&p->env[i]);
    }
    p->n = 0;
}

/* The "type" of envelope @i. */
static const char *props_type(struct props *p, unsigned i, char *out)
{
    msgpack_unpacked u;
    size_t off = 0;

    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)p->env[i].data,
                                         p->env[i].len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(yh_mp_strcpy(&u.data, "type", out, 64), 0);
    msgpack_unpacked_destroy(&u);
    return out;
}

static int64_t count_of(struct fsmtest *x,
                        const char *action,
                        const struct fsm_actor *a)
{
    assert_int_equal(fsmtest_call(x, action, a, "Limit", "100", NULL), 0);
    return fsmtest_res_int(x, "TotalCount");
}

/* Array field @key of Infos[i] (the test fails if absent). */
static const msgpack_object *info_arr(struct fsmtest *x,
                                      unsigned i,
                                      const char *key)
{
    const msgpack_object *v = yh_mp_get(fsmtest_info(x, i), key);

    assert_non_null(v);
    assert_int_equal(v->type, MSGPACK_OBJECT_ARRAY);
    return v;
}

static int64_t obj_int(const msgpack_object *m, const char *key)
{
    int64_t v;

    assert_int_equal(yh_mp_int(m, key, &v), 0);
    return v;
}

static const char *obj_str(const msgpack_object *m, const char *key)
{
    static char buf[4][256];
    static unsigned k;
    char *out = buf[k++ % 4];

    assert_int_equal(yh_mp_strcpy(m, key, out, 256), 0);
    return out;
}

static unsigned occurrences(const char *s, const char *what)
{
    unsigned n = 0;

    for (const char *p = strstr(s, what); p != NULL; p = strstr(p + 1, what)) {
        n++;
    }
    return n;
}

/* A zone with a host (its agent in @agent), an image; hosts never expire
 * during a test. */
struct infra
{
    char zone[FSM_ID_SIZE], host[FSM_ID_SIZE], image[FSM_ID_SIZE];
    struct fsm_actor agent;
};

static void infra(struct fsmtest *x, struct infra *k)
{
    struct fsm_key key;

    assert_int_equal(fsmtest_call(x, "ModifyBillingConfig", &x->admin,
                                  "HostLease", "100000000", NULL),
                     0);
    fsmtest_storage(x, k->zone);
    assert_int_equal(
        fsmtest_call(x, "RegisterHost", &x->admin, "ZoneID", k->zone, "CPU",
                     "64", "Memory", "262144", NULL),
        0);
    snprintf(k->host, sizeof k->host, "%s", fsmtest_res_str(x, "HostID"));
    assert_int_equal(fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"), &key),
                     0);
    k->agent = key.actor;
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &k->agent, NULL), 0);
    assert_int_equal(fsmtest_call(x, "CreateImage", &x->admin, "Name", "deb",
                                  "Size", "10", NULL),
                     0);
    snprintf(k->image, sizeof k->image, "%s", fsmtest_res_str(x, "ImageID"));
}

static void make_vm(struct fsmtest *x,
                    const struct infra *k,
                    const struct fsm_actor *t,
                    char *id)
{
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", t, "ZoneID", k->zone, "ImageID",
                     k->image, "CPU", "1", "Memory", "512", NULL),
        0);
    snprintf(id, FSM_ID_SIZE, "%s", fsmtest_res_str(x, "VMID"));
}

static void make_disk(struct fsmtest *x,
                      const char *zone,
                      const struct fsm_actor *t,
                      char *id)
{
    assert_int_equal(fsmtest_call(x, "CreateDisk", t, "ZoneID", zone, "Size",
                                  "10", "SetType", "SSD", NULL),
                     0);
    snprintf(id, FSM_ID_SIZE, "%s", fsmtest_res_str(x, "DiskID"));
}

static int report(struct fsmtest *x,
                  const struct infra *k,
                  const char *res,
                  const char *metric,
                  int64_t value)
{
    char v[24];

    snprintf(v, sizeof v, "%lld", (long long)value);
    return fsmtest_call(x, "ReportMetric", &k->agent, "ResourceID", res,
                        "MetricName", metric, "Value", v, NULL);
}

/* ---- timers ---- */

static void timer_validation(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t, u;
    char zone[FSM_ID_SIZE], d[FSM_ID_SIZE], tid[FSM_ID_SIZE];

    fsmtest_storage(x, zone);
    fsmtest_make_tenant(x, "t@x.io", &t, tid);
    fsmtest_make_tenant(x, "u@x.io", &u, NULL);
    make_disk(x, zone, &t, d);
    assert_int_equal(fsmtest_call(x, "CreateTimer", &t, "Action", "DeleteDisk",
                                  "Interval", "60", "ResourceIDs.0", d, NULL),
                     YH_EINVAL); /* not an allowed action */
    assert_int_equal(fsmtest_call(x, "CreateTimer", &t, "Action",
                                  "CreateSnapshot", "ResourceIDs.0", d, NULL),
                     YH_EMISSING); /* no schedule */
    assert_int_equal(
        fsmtest_call(x, "CreateTimer", &t, "Action", "CreateSnapshot", "At",
                     "1700000100", "Interval", "60", "ResourceIDs.0", d, NULL),
        YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateTimer", &t, "Action",
                                  "CreateSnapshot", "Interval", "60", NULL),
                     YH_EMISSING); /* CreateSnapshot's own check: DiskID */
    assert_string_equal(fsmtest_res_str(x, "Message"),
                        "CreateSnapshot: missing parameter 'DiskID'");
    assert_int_equal(
        fsmtest_call(x, "CreateTimer", &t, "Action", "CreateSnapshot",
                     "Interval", "60", "ResourceIDs.0", d, "Params.Name",
                     "a-name-that-is-much-longer-than-sixty-four-"
                     "bytes-which-the-check-refuses-xxxxxxxx",
                     NULL),
        YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "CreateTimer", &t, "Action", "StartVMInstance",
                     "Interval", "60", "ResourceIDs.0", "uhost-1",
                     "Params.Password", "secret-secret", NULL),
        YH_EINVAL); /* secrets are not stored */
    assert_int_equal(
        fsmtest_call(x, "CreateTimer", &t, "Action", "CreateSnapshot",
                     "Interval", "0", "ResourceIDs.0", d, NULL),
        YH_EINVAL);
    /* a timer is its owner's */
    assert_int_equal(
        fsmtest_call(x, "CreateTimer", &t, "Name", "nightly", "Action",
                     "CreateSnapshot", "Interval", "60", "ResourceIDs.0", d,
                     "Params.Name", "auto", NULL),
        0);
    assert_string_equal(fsmtest_res_str(x, "TimerID"), "timer-00000001");
    assert_int_equal(fsmtest_call(x, "DescribeTimer", &u, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(
        fsmtest_call(x, "DeleteTimer", &u, "TimerID", "timer-00000001", NULL),
        YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "DescribeTimer", &t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "Action"), "CreateSnapshot");
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Active");
    assert_string_equal(
        obj_str(yh_mp_get(fsmtest_info(x, 0), "Params"), "Name"), "auto");
    assert_int_equal(fsmtest_call(x, "DescribeTimer", &x->admin, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    /* the admin acts for a tenant */
    assert_int_equal(
        fsmtest_call(x, "CreateTimer", &x->admin, "Action", "CreateSnapshot",
                     "Interval", "60", "ResourceIDs.0", d, NULL),
        YH_EMISSING);
    assert_int_equal(
        fsmtest_call(x, "DeleteTimer", &t, "TimerID", "timer-00000001", NULL),
        0);
    assert_int_equal(fsmtest_call(x, "DescribeTimer", &t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
}

static void timer_exactly_once(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t;
    char zone[FSM_ID_SIZE], d1[FSM_ID_SIZE], d2[FSM_ID_SIZE];
    char tid[FSM_ID_SIZE], timer[FSM_ID_SIZE], type[64];
    struct props p, q;
    struct fsmtest_tick tc;
    int64_t due;

    fsmtest_storage(x, zone);
    fsmtest_make_tenant(x, "t@x.io", &t, tid);
    make_disk(x, zone, &t, d1);
    make_disk(x, zone, &t, d2);
    assert_int_equal(
        fsmtest_call(x, "CreateTimer", &t, "Action", "CreateSnapshot",
                     "Interval", "60", "ResourceIDs.0", d1, "ResourceIDs.1", d2,
                     "Params.Name", "auto", NULL),
        0);
    snprintf(timer, sizeof timer, "%s", fsmtest_res_str(x, "TimerID"));
    due = fsmtest_res_int(x, "NextDue");
    assert_int_equal(due, (int64_t)(x->time / SEC) + 60);
    /* not due yet */
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    x->time = (uint64_t)due * SEC;
    /* two leaders (or one leader twice) propose the same firing before
     * either is applied: it runs once */
    props_tick(x, &p);
    props_tick(x, &q);
    assert_int_equal(p.n, 1);
    assert_int_equal(q.n, 1);
    assert_string_equal(props_type(&p, 0, type), "_TimerFire");
    assert_int_equal(props_apply(x, &p, 0), 0);
    assert_int_equal(fsmtest_res_int(x, "Due"), due);
    assert_int_equal(props_apply(x, &q, 0), YH_EEXIST);
    assert_int_equal(count_of(x, "DescribeSnapshot", &t), 2);
    /* repeated ticks at the same time: nothing is due any more */
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    /* a replay of the old proposal after the next firing is still a no-op */
    x->time += 60 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(tc.codes[0], 0);
    assert_int_equal(props_apply(x, &p, 0), YH_EEXIST);
    assert_int_equal(count_of(x, "DescribeSnapshot", &t), 4);
    props_free(&p);
    props_free(&q);
    /* a leader change: the new leader's schedule comes from the state */
    fsm_close(x->f);
    fsmtest_open(x);
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    /* no leader for 5 periods and a half: one firing, for the latest due */
    x->time += 330 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(tc.codes[0], 0);
    assert_int_equal(fsmtest_res_int(x, "Due"), due + 60 + 300);
    assert_int_equal(fsmtest_res_int(x, "Missed"), 4);
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    assert_int_equal(count_of(x, "DescribeSnapshot", &t), 6);
    assert_int_equal(fsmtest_call(x, "DescribeTimer", &t, NULL), 0);
    assert_int_equal(fsmtest_info_int(x, 0, "FireCount"), 3);
    assert_int_equal(fsmtest_info_int(x, 0, "MissedCount"), 4);
    assert_int_equal(fsmtest_info_int(x, 0, "NextDue"), due + 420);
    assert_int_equal(info_arr(x, 0, "History")->via.array.size, 3);
    /* the operation log has every firing with its result */
    assert_int_equal(fsmtest_call(x, "DescribeOperationLog", &t, "Action",
                                  "_TimerFire", "Limit", "100", NULL),
                     0);
    assert_true(fsmtest_res_int(x, "TotalCount") >= 3);
    /* a frozen tenant's timer fires nothing, and says why */
    assert_int_equal(
        fsmtest_call(x, "FreezeUser", &x->admin, "UserID", tid, NULL), 0);
    x->time += 60 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(tc.codes[0], 0);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "0 of 2 succeeded"));
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "frozen"));
    assert_int_equal(count_of(x, "DescribeSnapshot", &t), 6);
    assert_int_equal(fsmtest_call(x, "DescribeTimer", &t, NULL), 0);
    assert_non_null(strstr(fsmtest_info_str(x, 0, "LastResult"), "frozen"));
    assert_int_equal(
        fsmtest_call(x, "UnfreezeUser", &x->admin, "UserID", tid, NULL), 0);
    /* unfrozen, it runs again */
    x->time += 60 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "2 of 2 succeeded"));
    /* DeleteTimer stops it */
    assert_int_equal(fsmtest_call(x, "DeleteTimer", &t, "TimerID", timer, NULL),
                     0);
    x->time += 600 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 0);
}

static void timer_once(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t;
    char zone[FSM_ID_SIZE], d[FSM_ID_SIZE], at[24];
    struct fsmtest_tick tc;
    struct props p;

    fsmtest_storage(x, zone);
    fsmtest_make_tenant(x, "t@x.io", &t, NULL);
    make_disk(x, zone, &t, d);
    snprintf(at, sizeof at, "%llu", (unsigned long long)(x->time / SEC + 30));
    assert_int_equal(
        fsmtest_call(x, "CreateTimer", &t, "Action", "CreateSnapshot", "At", at,
                     "Params.DiskID", d, NULL),
        0);
    x->time += 28 * SEC; /* the call itself moved the clock 1 s */
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    x->time += 1 * SEC;
    props_tick(x, &p);
    assert_int_equal(p.n, 1);
    assert_int_equal(props_apply(x, &p, 0), 0);
    assert_int_equal(props_apply(x, &p, 0), YH_EEXIST);
    x->time += 3600 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    assert_int_equal(count_of(x, "DescribeSnapshot", &t), 1);
    assert_int_equal(fsmtest_call(x, "DescribeTimer", &t, NULL), 0);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Done");
    props_free(&p);
}

/* A timer the administrator made for a tenant runs as the administrator,
 * but still not while the tenant is frozen. */
static void timer_admin_frozen(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t;
    char zone[FSM_ID_SIZE], d[FSM_ID_SIZE], tid[FSM_ID_SIZE];
    struct fsmtest_tick tc;

    fsmtest_storage(x, zone);
    fsmtest_make_tenant(x, "t@x.io", &t, tid);
    make_disk(x, zone, &t, d);
    assert_int_equal(fsmtest_call(x, "CreateTimer", &x->admin, "TenantID", tid,
                                  "Action", "CreateSnapshot", "Interval", "10",
                                  "ResourceIDs.0", d, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "DescribeTimer", &t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1); /* the tenant's */
    x->time += 10 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "1 of 1 succeeded"));
    assert_int_equal(
        fsmtest_call(x, "FreezeUser", &x->admin, "UserID", tid, NULL), 0);
    x->time += 10 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "0 of 1 succeeded"));
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "frozen"));
    assert_int_equal(count_of(x, "DescribeSnapshot", &t), 1);
}

/* ---- metrics ---- */

static void metric_ring(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t, u;
    struct infra k;
    char vm[FSM_ID_SIZE], ts[24];
    const msgpack_object *vals;
    int64_t t0;

    infra(x, &k);
    fsmtest_make_tenant(x, "t@x.io", &t, NULL);
    fsmtest_make_tenant(x, "u@x.io", &u, NULL);
    make_vm(x, &k, &t, vm);
    /* who may report */
    assert_int_equal(
        fsmtest_call(x, "ReportMetric", &t, "ResourceID", vm, "MetricName",
                     "CPUUtilization", "Value", "5", NULL),
        YH_EPERM);
    assert_int_equal(report(x, &k, vm, "Load", 5), YH_EINVAL);
    assert_int_equal(report(x, &k, vm, "CPUUtilization", 101), YH_EINVAL);
    assert_int_equal(report(x, &k, "uhost-99999999", "CPUUtilization", 1),
                     YH_ENOTFOUND);
    /* 70 samples into a ring of 60 */
    t0 = (int64_t)(x->time / SEC) + 1;
    for (int i = 0; i < 70; i++) {
        assert_int_equal(report(x, &k, vm, "NICIn", 1000 + i), 0);
    }
    /* a resent sample is refused */
    snprintf(ts, sizeof ts, "%lld", (long long)(x->time / SEC));
    assert_int_equal(
        fsmtest_call(x, "ReportMetric", &k.agent, "ResourceID", vm,
                     "MetricName", "NICIn", "Value", "1", "Time", ts, NULL),
        YH_EEXIST);
    assert_int_equal(
        fsmtest_call(x, "DescribeMetric", &t, "ResourceID", vm, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_int_equal(fsmtest_res_int(x, "RingSize"), 60);
    assert_int_equal(fsmtest_info_int(x, 0, "SampleCount"), 70);
    vals = info_arr(x, 0, "Values");
    assert_int_equal(vals->via.array.size, 60);
    assert_int_equal(obj_int(&vals->via.array.ptr[0], "Value"), 1010);
    assert_int_equal(obj_int(&vals->via.array.ptr[0], "Timestamp"), t0 + 10);
    assert_int_equal(obj_int(&vals->via.array.ptr[59], "Value"), 1069);
    /* a time range */
    snprintf(ts, sizeof ts, "%lld", (long long)(t0 + 65));
    assert_int_equal(fsmtest_call(x, "DescribeMetric", &t, "ResourceID", vm,
                                  "MetricName", "NICIn", "BeginTime", ts, NULL),
                     0);
    assert_int_equal(info_arr(x, 0, "Values")->via.array.size, 5);
    /* isolation: another tenant sees nothing of it; the admin does */
    assert_int_equal(
        fsmtest_call(x, "DescribeMetric", &u, "ResourceID", vm, NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "DescribeMetric", &x->admin, "ResourceID", vm, NULL),
        0);
    /* the state stays bounded: more samples rewrite the one ring record
     * (the oplog grows with the entries, but never names the metric) */
    {
        char *d1 = fsmtest_dump_str(x->f), *d2;
        unsigned n1 = occurrences(d1, "\"MetricName\": \"NICIn\"");
        for (int i = 0; i < 20; i++) {
            assert_int_equal(report(x, &k, vm, "NICIn", 5000 + i), 0);
        }
        d2 = fsmtest_dump_str(x->f);
        assert_true(n1 > 0);
        assert_int_equal(occurrences(d2, "\"MetricName\": \"NICIn\""), n1);
        free(d1);
        free(d2);
    }
    /* a purge drops its rings */
    assert_int_equal(fsmtest_call(x, "DeleteVMInstance", &t, "VMID", vm, NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &t, "ResourceID", vm, NULL), 0);
    {
        char *d = fsmtest_dump_str(x->f);
        assert_int_equal(occurrences(d, "\"MetricName\": \"NICIn\""), 0);
        free(d);
    }
}

/* ---- alarms ---- */

static void alarms(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t, u;
    struct infra k;
    char vm[FSM_ID_SIZE], tpl[FSM_ID_SIZE];
    const msgpack_object *ev;

    infra(x, &k);
    fsmtest_make_tenant(x, "t@x.io", &t, NULL);
    fsmtest_make_tenant(x, "u@x.io", &u, NULL);
    make_vm(x, &k, &t, vm);
    /* validation */
    assert_int_equal(fsmtest_call(x, "CreateAlarmTemplate", &t, NULL),
                     YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "CreateAlarmTemplate", &t, "Rules.0",
                                  "CPUUtilization|EQ|80|3", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateAlarmTemplate", &t, "Rules.0",
                                  "Load|GT|80|3", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateAlarmTemplate", &t, "Rules.0",
                                  "CPUUtilization|GT|80|0", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateAlarmTemplate", &t, "Rules.0",
                                  "CPUUtilization|GT|80", NULL),
                     YH_EINVAL);
    /* GT over 3 periods, LE at once, GE and LT over 2 */
    assert_int_equal(
        fsmtest_call(x, "CreateAlarmTemplate", &t, "Name", "web", "Rules.0",
                     "CPUUtilization|GT|80|3", "Rules.1", "MemUsage|LE|10|1",
                     "Rules.2", "NICIn|GE|100|2", "Rules.3", "NICOut|LT|5|2",
                     NULL),
        0);
    snprintf(tpl, sizeof tpl, "%s", fsmtest_res_str(x, "AlarmTemplateID"));
    assert_int_equal(fsmtest_call(x, "BindAlarmTemplate", &u, "AlarmTemplateID",
                                  tpl, "ResourceIDs.0", vm, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "BindAlarmTemplate", &t, "AlarmTemplateID",
                                  tpl, "ResourceIDs.0", vm, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "BindAlarmTemplate", &t, "AlarmTemplateID",
                                  tpl, "ResourceIDs.0", vm, NULL),
                     YH_EEXIST);
    /* CPU: 90 90 (a run of 2), 80 (not GT: the run resets), 90 90 90 */
    assert_int_equal(report(x, &k, vm, "CPUUtilization", 90), 0);
    assert_int_equal(report(x, &k, vm, "CPUUtilization", 90), 0);
    assert_int_equal(report(x, &k, vm, "CPUUtilization", 80), 0);
    assert_int_equal(report(x, &k, vm, "CPUUtilization", 90), 0);
    assert_int_equal(report(x, &k, vm, "CPUUtilization", 90), 0);
    assert_string_equal(fsmtest_res_str(x, "Message"), "");
    assert_int_equal(fsmtest_call(x, "DescribeAlarm", &t, NULL), 0);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "OK");
    assert_int_equal(report(x, &k, vm, "CPUUtilization", 90), 0);
    assert_non_null(
        strstr(fsmtest_res_str(x, "Message"), "CPUUtilization|GT|80|3 Firing"));
    assert_int_equal(
        fsmtest_call(x, "DescribeAlarm", &t, "ResourceID", vm, NULL), 0);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Firing");
    ev = info_arr(x, 0, "Events");
    assert_int_equal(ev->via.array.size, 1);
    assert_string_equal(obj_str(&ev->via.array.ptr[0], "Event"), "Firing");
    assert_int_equal(obj_int(&ev->via.array.ptr[0], "Value"), 90);
    /* still breaching: no new event; then resolved at once */
    assert_int_equal(report(x, &k, vm, "CPUUtilization", 95), 0);
    assert_string_equal(fsmtest_res_str(x, "Message"), "");
    assert_int_equal(report(x, &k, vm, "CPUUtilization", 10), 0);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "Resolved"));
    /* LE 10 over 1 period: 10 fires, 11 resolves */
    assert_int_equal(report(x, &k, vm, "MemUsage", 11), 0);
    assert_string_equal(fsmtest_res_str(x, "Message"), "");
    assert_int_equal(report(x, &k, vm, "MemUsage", 10), 0);
    assert_non_null(
        strstr(fsmtest_res_str(x, "Message"), "MemUsage|LE|10|1 Firing"));
    assert_int_equal(report(x, &k, vm, "MemUsage", 11), 0);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "Resolved"));
    /* GE 100 over 2: 99 100 100 fires at the second 100 */
    assert_int_equal(report(x, &k, vm, "NICIn", 99), 0);
    assert_int_equal(report(x, &k, vm, "NICIn", 100), 0);
    assert_string_equal(fsmtest_res_str(x, "Message"), "");
    assert_int_equal(report(x, &k, vm, "NICIn", 100), 0);
    assert_non_null(
        strstr(fsmtest_res_str(x, "Message"), "NICIn|GE|100|2 Firing"));
    /* LT 5 over 2: 5 4 4 */
    assert_int_equal(report(x, &k, vm, "NICOut", 5), 0);
    assert_int_equal(report(x, &k, vm, "NICOut", 4), 0);
    assert_string_equal(fsmtest_res_str(x, "Message"), "");
    assert_int_equal(report(x, &k, vm, "NICOut", 4), 0);
    assert_non_null(
        strstr(fsmtest_res_str(x, "Message"), "NICOut|LT|5|2 Firing"));
    assert_int_equal(
        fsmtest_call(x, "DescribeAlarm", &t, "State", "Firing", NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_int_equal(info_arr(x, 0, "Events")->via.array.size, 6);
    /* alarms of one tenant are not another's */
    assert_int_equal(fsmtest_call(x, "DescribeAlarm", &u, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    /* a bound template cannot go */
    assert_int_equal(fsmtest_call(x, "DeleteAlarmTemplate", &t,
                                  "AlarmTemplateID", tpl, NULL),
                     YH_ESTATE);
    assert_int_equal(
        fsmtest_call(x, "UnBindAlarmTemplate", &t, "AlarmTemplateID", tpl,
                     "ResourceIDs.0", vm, NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "UnBindAlarmTemplate", &t, "AlarmTemplateID", tpl,
                     "ResourceIDs.0", vm, NULL),
        YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "DeleteAlarmTemplate", &t,
                                  "AlarmTemplateID", tpl, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "DescribeAlarmTemplate", &t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    /* a purge unbinds: the template can be deleted afterwards */
    assert_int_equal(fsmtest_call(x, "CreateAlarmTemplate", &t, "Rules.0",
                                  "CPUUtilization|GT|80|3", NULL),
                     0);
    snprintf(tpl, sizeof tpl, "%s", fsmtest_res_str(x, "AlarmTemplateID"));
    assert_int_equal(fsmtest_call(x, "BindAlarmTemplate", &t, "AlarmTemplateID",
                                  tpl, "ResourceIDs.0", vm, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "DeleteVMInstance", &t, "VMID", vm, NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &t, "ResourceID", vm, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DescribeAlarm", &t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(fsmtest_call(x, "DeleteAlarmTemplate", &t,
                                  "AlarmTemplateID", tpl, NULL),
                     0);
}

/* ---- autoscaling ---- */

struct group
{
    char id[FSM_ID_SIZE];
    char up[FSM_ID_SIZE], down[FSM_ID_SIZE];
};

static void make_group(struct fsmtest *x,
                       const struct infra *k,
                       const struct fsm_actor *t,
                       struct group *g)
{
    assert_int_equal(
        fsmtest_call(x, "CreateScalingGroup", t, "Name", "web", "Min", "1",
                     "Max", "3", "Desired", "1", "Cooldown", "60",
                     "Template.ZoneID", k->zone, "Template.ImageID", k->image,
                     "Template.CPU", "1", "Template.Memory", "512", NULL),
        0);
    snprintf(g->id, sizeof g->id, "%s", fsmtest_res_str(x, "ScalingGroupID"));
    assert_int_equal(
        fsmtest_call(x, "CreateScalingPolicy", t, "ScalingGroupID", g->id,
                     "MetricName", "CPUUtilization", "Comparison", "GT",
                     "Threshold", "80", "Adjustment", "1", NULL),
        0);
    snprintf(g->up, sizeof g->up, "%s", fsmtest_res_str(x, "ScalingPolicyID"));
    assert_int_equal(
        fsmtest_call(x, "CreateScalingPolicy", t, "ScalingGroupID", g->id,
                     "MetricName", "CPUUtilization", "Comparison", "LT",
                     "Threshold", "20", "Adjustment", "-1", NULL),
        0);
    snprintf(g->down, sizeof g->down, "%s",
             fsmtest_res_str(x, "ScalingPolicyID"));
}

/* The group's live machines (VMIDs) and Desired. */
static unsigned group_vms(struct fsmtest *x,
                          const struct fsm_actor *t,
                          const char *id,
                          char (*vms)[FSM_ID_SIZE],
                          int64_t *desired)
{
    const msgpack_object *l;

    assert_int_equal(fsmtest_call(x, "DescribeScalingGroup", t,
                                  "ScalingGroupIDs.0", id, NULL),
                     0);
    *desired = fsmtest_info_int(x, 0, "Desired");
    l = info_arr(x, 0, "VMIDs");
    for (uint32_t i = 0; i < l->via.array.size && vms != NULL; i++) {
        snprintf(vms[i], FSM_ID_SIZE, "%.*s",
                 (int)l->via.array.ptr[i].via.str.size,
                 l->via.array.ptr[i].via.str.ptr);
    }
    return l->via.array.size;
}

static void report_all(struct fsmtest *x,
                       const struct infra *k,
                       char (*vms)[FSM_ID_SIZE],
                       unsigned n,
                       int64_t v)
{
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(report(x, k, vms[i], "CPUUtilization", v), 0);
    }
}

static void scaling(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t, u;
    struct infra k;
    struct group g;
    struct fsmtest_tick tc;
    struct props p, q;
    char vms[8][FSM_ID_SIZE], tid[FSM_ID_SIZE], type[64];
    int64_t desired;

    infra(x, &k);
    fsmtest_make_tenant(x, "t@x.io", &t, tid);
    fsmtest_make_tenant(x, "u@x.io", &u, NULL);
    /* validation */
    assert_int_equal(
        fsmtest_call(x, "CreateScalingGroup", &t, "Min", "2", "Max", "1",
                     "Template.ZoneID", k.zone, "Template.ImageID", k.image,
                     "Template.CPU", "1", "Template.Memory", "512", NULL),
        YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "CreateScalingGroup", &t, "Min", "1", "Max", "2",
                     "Template.ZoneID", k.zone, "Template.CPU", "1",
                     "Template.Memory", "512", NULL),
        YH_EMISSING); /* the template's own check: ImageID */
    assert_int_equal(
        fsmtest_call(x, "CreateScalingGroup", &t, "Min", "1", "Max", "2",
                     "Template.ZoneID", k.zone, "Template.ImageID", k.image,
                     "Template.CPU", "1", "Template.Memory", "512",
                     "Template.Password", "secret-pass", NULL),
        YH_EINVAL);
    make_group(x, &k, &t, &g);
    assert_int_equal(
        fsmtest_call(x, "CreateScalingPolicy", &t, "ScalingGroupID", g.id,
                     "MetricName", "CPUUtilization", "Comparison", "GT",
                     "Threshold", "80", "Adjustment", "0", NULL),
        YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "CreateScalingPolicy", &u, "ScalingGroupID", g.id,
                     "MetricName", "CPUUtilization", "Comparison", "GT",
                     "Threshold", "80", "Adjustment", "1", NULL),
        YH_ENOTFOUND);
    /* the first machine: two proposals of the same step, one machine */
    props_tick(x, &p);
    props_tick(x, &q);
    assert_int_equal(p.n, 1);
    assert_string_equal(props_type(&p, 0, type), "_ScaleReconcile");
    assert_int_equal(props_apply(x, &p, 0), 0);
    assert_int_equal(fsmtest_res_int(x, "StepRetCode"), 0);
    assert_int_equal(props_apply(x, &q, 0), YH_EEXIST);
    props_free(&p);
    props_free(&q);
    assert_int_equal(group_vms(x, &t, g.id, vms, &desired), 1);
    assert_int_equal(desired, 1);
    assert_int_equal(count_of(x, "DescribeVMInstance", &t), 1);
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    /* hot: scale out only after the cooldown */
    report_all(x, &k, vms, 1, 90);
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    x->time += 60 * SEC;
    report_all(x, &k, vms, 1, 90);
    props_tick(x, &p);
    assert_int_equal(p.n, 1);
    assert_string_equal(props_type(&p, 0, type), "_ScalePolicy");
    assert_int_equal(props_apply(x, &p, 0), 0);
    assert_int_equal(fsmtest_res_int(x, "Desired"), 2);
    assert_int_equal(props_apply(x, &p, 0), YH_EEXIST); /* keyed */
    props_free(&p);
    assert_int_equal(fsmtest_tick(x, &tc), 1); /* the machine */
    assert_int_equal(tc.codes[0], 0);
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    assert_int_equal(group_vms(x, &t, g.id, vms, &desired), 2);
    /* samples older than the last step do not count */
    x->time += 61 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    report_all(x, &k, vms, 2, 95);
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(group_vms(x, &t, g.id, vms, &desired), 3);
    /* at Max: no step */
    x->time += 61 * SEC;
    report_all(x, &k, vms, 3, 99);
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    /* cold: scale in to 2 (the newest goes), then to 1, never below Min */
    report_all(x, &k, vms, 3, 5);
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(fsmtest_res_int(x, "Desired"), 2);
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(group_vms(x, &t, g.id, vms, &desired), 2);
    assert_int_equal(desired, 2);
    assert_int_equal(count_of(x, "DescribeVMInstance", &t), 2);
    x->time += 61 * SEC;
    report_all(x, &k, vms, 2, 5);
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    x->time += 61 * SEC;
    assert_int_equal(group_vms(x, &t, g.id, vms, &desired), 1);
    report_all(x, &k, vms, 1, 5);
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    /* quota: scale-out rejected, recorded, not retried before the
     * cooldown */
    assert_int_equal(fsmtest_call(x, "ModifyQuota", &x->admin, "UserID", tid,
                                  "ResourceType", "VM", "Limit", "1", NULL),
                     0);
    report_all(x, &k, vms, 1, 90);
    assert_int_equal(fsmtest_tick(x, &tc), 1); /* Desired 2 */
    assert_int_equal(tc.codes[0], 0);
    assert_int_equal(fsmtest_tick(x, &tc), 1); /* the create: rejected */
    assert_int_equal(tc.codes[0], 0);
    assert_int_equal(fsmtest_res_int(x, "StepRetCode"), YH_EQUOTA);
    for (int i = 0; i < 5; i++) {
        x->time += 10 * SEC;
        assert_int_equal(fsmtest_tick(x, &tc), 0);
    }
    assert_int_equal(group_vms(x, &t, g.id, NULL, &desired), 1);
    assert_int_equal(desired, 2);
    {
        const msgpack_object *ev = info_arr(x, 0, "Events");
        const msgpack_object *last = &ev->via.array.ptr[ev->via.array.size - 1];
        assert_string_equal(obj_str(last, "Type"), "ScaleOutRejected");
        assert_int_equal(obj_int(last, "RetCode"), YH_EQUOTA);
    }
    x->time += 11 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 1); /* one retry after it */
    assert_int_equal(fsmtest_res_int(x, "StepRetCode"), YH_EQUOTA);
    /* a frozen owner scales nothing either */
    assert_int_equal(fsmtest_call(x, "ModifyQuota", &x->admin, "UserID", tid,
                                  "ResourceType", "VM", "Limit", "10", NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "FreezeUser", &x->admin, "UserID", tid, NULL), 0);
    x->time += 61 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(fsmtest_res_int(x, "StepRetCode"), YH_EPERM);
    assert_int_equal(
        fsmtest_call(x, "UnfreezeUser", &x->admin, "UserID", tid, NULL), 0);
    x->time += 61 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(fsmtest_res_int(x, "StepRetCode"), 0);
    assert_int_equal(group_vms(x, &t, g.id, NULL, &desired), 2);
    /* deleting the group leaves its machines */
    assert_int_equal(
        fsmtest_call(x, "DeleteScalingGroup", &t, "ScalingGroupID", g.id, NULL),
        0);
    assert_int_equal(fsmtest_call(x, "DescribeScalingGroup", &t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(count_of(x, "DescribeVMInstance", &t), 2);
    x->time += 600 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 0);
}

/* ---- autoscaling behind a load balancer ---- */

/* The backends of the first vserver of load balancer @lb: count, and
 * their machines in @vms (RSID order). */
static unsigned lb_backends(struct fsmtest *x,
                            const struct fsm_actor *t,
                            const char *lb,
                            char (*vms)[FSM_ID_SIZE])
{
    const msgpack_object *vs, *rss;

    assert_int_equal(fsmtest_call(x, "DescribeLB", t, "LBIDs.0", lb, NULL), 0);
    vs = info_arr(x, 0, "VServers");
    assert_true(vs->via.array.size >= 1);
    rss = yh_mp_get(&vs->via.array.ptr[0], "RSs");
    assert_non_null(rss);
    for (uint32_t i = 0; i < rss->via.array.size && vms != NULL; i++) {
        const msgpack_object *r = &rss->via.array.ptr[i];
        snprintf(vms[i], FSM_ID_SIZE, "%s", obj_str(r, "BindResourceID"));
        assert_int_equal(obj_int(r, "Port"), 8080);
        assert_int_equal(obj_int(r, "Weight"), 5);
    }
    return rss->via.array.size;
}

static void scaling_lb(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t, u;
    struct infra k;
    struct fsmtest_tick tc;
    char tid[FSM_ID_SIZE], uid[FSM_ID_SIZE], vpc[FSM_ID_SIZE];
    char sn[FSM_ID_SIZE], lb[FSM_ID_SIZE], vs[FSM_ID_SIZE], gid[FSM_ID_SIZE];
    char vms[8][FSM_ID_SIZE], rs[8][FSM_ID_SIZE], lbu[FSM_ID_SIZE];
    char vsu[FSM_ID_SIZE];
    int64_t desired;

    infra(x, &k);
    fsmtest_make_tenant(x, "t@x.io", &t, tid);
    fsmtest_make_tenant(x, "u@x.io", &u, uid);
    assert_int_equal(fsmtest_call(x, "CreateVPC", &t, "Name", "v", "Network",
                                  "10.1.0.0/16", NULL),
                     0);
    snprintf(vpc, sizeof vpc, "%s", fsmtest_res_str(x, "VPCID"));
    assert_int_equal(fsmtest_call(x, "CreateSubnet", &t, "VPCID", vpc,
                                  "Network", "10.1.1.0/24", NULL),
                     0);
    snprintf(sn, sizeof sn, "%s", fsmtest_res_str(x, "SubnetID"));
    assert_int_equal(
        fsmtest_call(x, "CreateLB", &t, "VPCID", vpc, "SubnetID", sn, NULL), 0);
    snprintf(lb, sizeof lb, "%s", fsmtest_res_str(x, "LBID"));
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &t, "LBID", lb, "Protocol", "TCP",
                     "FrontendPort", "80", NULL),
        0);
    snprintf(vs, sizeof vs, "%s", fsmtest_res_str(x, "VServerID"));
    /* another tenant's vserver */
    assert_int_equal(fsmtest_call(x, "CreateVPC", &u, "Name", "v", "Network",
                                  "10.2.0.0/16", NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "CreateSubnet", &u, "VPCID",
                                  fsmtest_res_str(x, "VPCID"), "Network",
                                  "10.2.1.0/24", NULL),
                     0);
    {
        char uvpc[FSM_ID_SIZE];
        assert_int_equal(fsmtest_call(x, "DescribeVPC", &u, NULL), 0);
        snprintf(uvpc, sizeof uvpc, "%s", fsmtest_info_str(x, 0, "VPCID"));
        assert_int_equal(fsmtest_call(x, "DescribeSubnet", &u, NULL), 0);
        assert_int_equal(
            fsmtest_call(x, "CreateLB", &u, "VPCID", uvpc, "SubnetID",
                         fsmtest_info_str(x, 0, "SubnetID"), NULL),
            0);
    }
    snprintf(lbu, sizeof lbu, "%s", fsmtest_res_str(x, "LBID"));
    assert_int_equal(
        fsmtest_call(x, "CreateVServer", &u, "LBID", lbu, "Protocol", "TCP",
                     "FrontendPort", "80", NULL),
        0);
    snprintf(vsu, sizeof vsu, "%s", fsmtest_res_str(x, "VServerID"));
#define GROUP(actor, vsid, ...)                                            \
    fsmtest_call(x, "CreateScalingGroup", actor, "Min", "1", "Max", "3",   \
                 "Cooldown", "0", "VServerID", vsid, "Template.ZoneID",    \
                 k.zone, "Template.ImageID", k.image, "Template.CPU", "1", \
                 "Template.Memory", "512", __VA_ARGS__)
    /* validation: Port with a vserver (and only with one), the vserver
     * the owner's, its VPC the template's */
    assert_int_equal(GROUP(&t, vs, "Template.SubnetID", sn, NULL), YH_EMISSING);
    assert_int_equal(
        fsmtest_call(x, "CreateScalingGroup", &t, "Min", "1", "Max", "3",
                     "Port", "80", "Template.ZoneID", k.zone,
                     "Template.ImageID", k.image, "Template.CPU", "1",
                     "Template.Memory", "512", NULL),
        YH_EINVAL);
    assert_int_equal(
        GROUP(&t, "vserver-999", "Port", "8080", "Template.SubnetID", sn, NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        GROUP(&t, vsu, "Port", "8080", "Template.SubnetID", sn, NULL),
        YH_ENOTFOUND);
    assert_int_equal(GROUP(&t, vs, "Port", "8080", NULL), YH_EINVAL);
    assert_int_equal(GROUP(&t, vs, "Port", "8080", "Weight", "0",
                           "Template.SubnetID", sn, NULL),
                     YH_EINVAL);
    assert_int_equal(GROUP(&t, vs, "Port", "8080", "Weight", "5",
                           "Template.SubnetID", sn, NULL),
                     0);
#undef GROUP
    snprintf(gid, sizeof gid, "%s", fsmtest_res_str(x, "ScalingGroupID"));
    /* the first machine is a backend as soon as it exists */
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(fsmtest_res_int(x, "StepRetCode"), 0);
    assert_int_equal(group_vms(x, &t, gid, vms, &desired), 1);
    assert_int_equal(lb_backends(x, &t, lb, rs), 1);
    assert_string_equal(rs[0], vms[0]);
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    /* ModifyScalingGroup: validation, then Desired 3 */
    assert_int_equal(fsmtest_call(x, "ModifyScalingGroup", &t, "ScalingGroupID",
                                  gid, "Min", "4", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "ModifyScalingGroup", &t, "ScalingGroupID",
                                  gid, "Desired", "4", NULL),
                     YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "ModifyScalingGroup", &t, "ScalingGroupID", gid, NULL),
        YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "ModifyScalingGroup", &u, "ScalingGroupID",
                                  gid, "Desired", "2", NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "ModifyScalingGroup", &t, "ScalingGroupID",
                                  gid, "Desired", "3", NULL),
                     0);
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    assert_int_equal(group_vms(x, &t, gid, vms, &desired), 3);
    assert_int_equal(lb_backends(x, &t, lb, rs), 3);
    /* Max 2: Desired follows the bound, the newest machine goes and leaves
     * the vserver */
    assert_int_equal(fsmtest_call(x, "ModifyScalingGroup", &t, "ScalingGroupID",
                                  gid, "Max", "2", NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "Desired"), 2);
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(fsmtest_res_int(x, "StepRetCode"), 0);
    assert_string_equal(fsmtest_res_str(x, "VMID"), vms[2]);
    assert_int_equal(lb_backends(x, &t, lb, rs), 2);
    assert_string_equal(rs[0], vms[0]);
    assert_string_equal(rs[1], vms[1]);
    /* a machine deleted by hand is replaced; it leaves the vserver */
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &t, "VMID", vms[0], NULL), 0);
    assert_int_equal(lb_backends(x, &t, lb, NULL), 2); /* until the step */
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(group_vms(x, &t, gid, vms, &desired), 2);
    assert_int_equal(lb_backends(x, &t, lb, rs), 2);
    assert_string_equal(rs[0], vms[0]);
    assert_string_equal(rs[1], vms[1]);
    /* the vserver deleted: the machine is still made, the backend
     * rejection recorded in the event */
    assert_int_equal(
        fsmtest_call(x, "DeleteVServer", &t, "VServerID", vs, NULL), 0);
    assert_int_equal(fsmtest_call(x, "ModifyScalingGroup", &t, "ScalingGroupID",
                                  gid, "Desired", "1", "Name", "smaller", NULL),
                     0);
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(fsmtest_res_int(x, "StepRetCode"), 0);
    assert_int_equal(fsmtest_call(x, "ModifyScalingGroup", &t, "ScalingGroupID",
                                  gid, "Desired", "2", NULL),
                     0);
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(fsmtest_res_int(x, "StepRetCode"), 0);
    assert_int_equal(group_vms(x, &t, gid, NULL, &desired), 2);
    assert_string_equal(fsmtest_info_str(x, 0, "Name"), "smaller");
    {
        const msgpack_object *ev = info_arr(x, 0, "Events");
        const msgpack_object *last = &ev->via.array.ptr[ev->via.array.size - 1];
        assert_string_equal(obj_str(last, "Type"), "ScaleOut");
        assert_int_equal(obj_int(last, "RSRetCode"), YH_ENOTFOUND);
        assert_string_equal(obj_str(last, "RSID"), "");
    }
}

/* DescribeScalingPolicy, ModifyScalingPolicy, DeleteScalingPolicy. */
static void scaling_policies(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t, u;
    struct infra k;
    struct group g;
    struct fsmtest_tick tc;
    char vms[8][FSM_ID_SIZE];
    int64_t desired;

    infra(x, &k);
    fsmtest_make_tenant(x, "t@x.io", &t, NULL);
    fsmtest_make_tenant(x, "u@x.io", &u, NULL);
    make_group(x, &k, &t, &g);
    assert_int_equal(fsmtest_call(x, "DescribeScalingPolicy", &t,
                                  "ScalingGroupID", g.id, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
    assert_string_equal(fsmtest_info_str(x, 0, "ScalingPolicyID"), g.up);
    assert_int_equal(fsmtest_call(x, "DescribeScalingPolicy", &u, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(fsmtest_call(x, "DescribeScalingPolicy", &t,
                                  "ScalingPolicyIDs.0", g.down, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_int_equal(fsmtest_info_int(x, 0, "Adjustment"), -1);
    /* Modify: validated like Create, the owner's only */
    assert_int_equal(
        fsmtest_call(x, "ModifyScalingPolicy", &t, "ScalingPolicyID", g.up,
                     "Adjustment", "0", NULL),
        YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "ModifyScalingPolicy", &t, "ScalingPolicyID", g.up,
                     "Comparison", "EQ", NULL),
        YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "ModifyScalingPolicy", &t,
                                  "ScalingPolicyID", g.up, NULL),
                     YH_EMISSING);
    assert_int_equal(
        fsmtest_call(x, "ModifyScalingPolicy", &u, "ScalingPolicyID", g.up,
                     "Threshold", "50", NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "ModifyScalingPolicy", &t, "ScalingPolicyID", g.up,
                     "Threshold", "50", "Adjustment", "2", NULL),
        0);
    /* the modified policy acts: 60 > 50 now scales out by 2 */
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(group_vms(x, &t, g.id, vms, &desired), 1);
    x->time += 61 * SEC;
    report_all(x, &k, vms, 1, 60);
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(fsmtest_res_int(x, "Desired"), 3);
    /* Delete: the group forgets it; a pending step for it is refused */
    assert_int_equal(fsmtest_call(x, "DeleteScalingPolicy", &u,
                                  "ScalingPolicyID", g.down, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "DeleteScalingPolicy", &t,
                                  "ScalingPolicyID", g.down, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "DeleteScalingPolicy", &t,
                                  "ScalingPolicyID", g.down, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "DescribeScalingGroup", &t,
                                  "ScalingGroupIDs.0", g.id, NULL),
                     0);
    assert_int_equal(info_arr(x, 0, "PolicyIDs")->via.array.size, 1);
    assert_int_equal(info_arr(x, 0, "Policies")->via.array.size, 1);
    assert_int_equal(fsmtest_call(x, "DescribeScalingPolicy", &t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    /* deleting the group deletes its remaining policy */
    assert_int_equal(
        fsmtest_call(x, "DeleteScalingGroup", &t, "ScalingGroupID", g.id, NULL),
        0);
    assert_int_equal(fsmtest_call(x, "DescribeScalingPolicy", &t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
}

/* ModifyTimer: disable/enable, a new interval or start, a once timer's
 * At; never a due time fired twice. */
static void timer_modify(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t, u;
    struct fsmtest_tick tc;
    char zone[FSM_ID_SIZE], d[FSM_ID_SIZE], timer[FSM_ID_SIZE];
    char once[FSM_ID_SIZE], at[24];
    int64_t due, now;

    fsmtest_storage(x, zone);
    fsmtest_make_tenant(x, "t@x.io", &t, NULL);
    fsmtest_make_tenant(x, "u@x.io", &u, NULL);
    make_disk(x, zone, &t, d);
    assert_int_equal(
        fsmtest_call(x, "CreateTimer", &t, "Action", "CreateSnapshot",
                     "Interval", "60", "ResourceIDs.0", d, NULL),
        0);
    snprintf(timer, sizeof timer, "%s", fsmtest_res_str(x, "TimerID"));
    due = fsmtest_res_int(x, "NextDue");
    /* validation */
    assert_int_equal(fsmtest_call(x, "ModifyTimer", &t, "TimerID", timer, NULL),
                     YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "ModifyTimer", &t, "TimerID", timer,
                                  "State", "Paused", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "ModifyTimer", &t, "TimerID", timer, "At",
                                  "2000000000", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "ModifyTimer", &u, "TimerID", timer,
                                  "State", "Disabled", NULL),
                     YH_ENOTFOUND);
    /* disabled: nothing fires */
    assert_int_equal(fsmtest_call(x, "ModifyTimer", &t, "TimerID", timer,
                                  "State", "disabled", NULL),
                     0);
    assert_string_equal(fsmtest_res_str(x, "State"), "Disabled");
    assert_int_equal(fsmtest_res_int(x, "NextDue"), 0);
    x->time = (uint64_t)(due + 200) * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    /* enabled: the next due time of the grid from now */
    assert_int_equal(fsmtest_call(x, "ModifyTimer", &t, "TimerID", timer,
                                  "State", "Active", "Name", "nightly", NULL),
                     0);
    now = (int64_t)(x->time / SEC);
    assert_int_equal(fsmtest_res_int(x, "NextDue"), due + 240);
    assert_true(fsmtest_res_int(x, "NextDue") >= now);
    x->time = (uint64_t)(due + 240) * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(tc.codes[0], 0);
    /* a new start in the past and a new interval: never the fired due
     * time again */
    snprintf(at, sizeof at, "%lld", (long long)(due + 240));
    assert_int_equal(fsmtest_call(x, "ModifyTimer", &t, "TimerID", timer,
                                  "StartTime", at, "Interval", "10", NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "NextDue"), due + 250);
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    x->time += 10 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(
        fsmtest_call(x, "DescribeTimer", &t, "TimerIDs.0", timer, NULL), 0);
    assert_int_equal(fsmtest_info_int(x, 0, "FireCount"), 2);
    assert_int_equal(fsmtest_info_int(x, 0, "Interval"), 10);
    assert_string_equal(fsmtest_info_str(x, 0, "Name"), "nightly");
    /* a once timer: a new At; Interval refused; done after firing */
    snprintf(at, sizeof at, "%lld", (long long)(x->time / SEC + 100));
    assert_int_equal(
        fsmtest_call(x, "CreateTimer", &t, "Action", "CreateSnapshot", "At", at,
                     "ResourceIDs.0", d, NULL),
        0);
    snprintf(once, sizeof once, "%s", fsmtest_res_str(x, "TimerID"));
    assert_int_equal(fsmtest_call(x, "ModifyTimer", &t, "TimerID", once,
                                  "Interval", "5", NULL),
                     YH_EINVAL);
    snprintf(at, sizeof at, "%lld", (long long)(x->time / SEC + 5));
    assert_int_equal(
        fsmtest_call(x, "ModifyTimer", &t, "TimerID", once, "At", at, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "NextDue"), strtoll(at, NULL, 10));
    assert_int_equal(fsmtest_call(x, "ModifyTimer", &t, "TimerID", timer,
                                  "State", "Disabled", NULL),
                     0);
    x->time += 5 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(fsmtest_call(x, "ModifyTimer", &t, "TimerID", once,
                                  "State", "Active", NULL),
                     YH_ESTATE);
    assert_int_equal(fsmtest_call(x, "ModifyTimer", &t, "TimerID", once, "Name",
                                  "done", NULL),
                     0);
    x->time += 600 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 0);
}

/* ---- determinism ---- */

static void determinism(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest *y = fsmtest_new();
    struct fsm_actor t;
    struct infra k;
    struct group g;
    char d[FSM_ID_SIZE], vms[8][FSM_ID_SIZE], tpl[FSM_ID_SIZE];
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int64_t desired;
    char *dump;

    x->log = fsmtest_log_new(4000);
    fsmtest_bootstrap_copy(y);
    infra(x, &k);
    fsmtest_make_tenant(x, "t@x.io", &t, NULL);
    make_disk(x, k.zone, &t, d);
    assert_int_equal(
        fsmtest_call(x, "CreateTimer", &t, "Action", "CreateSnapshot",
                     "Interval", "7", "ResourceIDs.0", d, NULL),
        0);
    make_group(x, &k, &t, &g);
    assert_int_equal(fsm_leader_tick(x->f, x->time, fsmtest_tick_apply_cb, x),
                     0);
    group_vms(x, &t, g.id, vms, &desired);
    assert_int_equal(fsmtest_call(x, "CreateAlarmTemplate", &t, "Rules.0",
                                  "CPUUtilization|GE|50|2", NULL),
                     0);
    snprintf(tpl, sizeof tpl, "%s", fsmtest_res_str(x, "AlarmTemplateID"));
    assert_int_equal(fsmtest_call(x, "BindAlarmTemplate", &t, "AlarmTemplateID",
                                  tpl, "ResourceIDs.0", vms[0], NULL),
                     0);
    for (unsigned i = 0; i < 300; i++) {
        unsigned n = group_vms(x, &t, g.id, vms, &desired);
        x->time += (fsmtest_rnd(&s) % 20) * SEC;
        report_all(x, &k, vms, n, (int64_t)(fsmtest_rnd(&s) % 101));
        assert_int_equal(
            fsm_leader_tick(x->f, x->time, fsmtest_tick_apply_cb, x), 0);
        if (fsmtest_rnd(&s) % 13 == 0) {
            assert_int_equal(fsm_flush(x->f), 0);
        }
    }
    fsmtest_replay(y->f, x->log, 5, 0);
    dump = fsmtest_assert_same(x->f, y->f);
    /* the stream reached the interesting paths */
    assert_non_null(strstr(dump, "\"Action\": \"_TimerFire\""));
    assert_non_null(strstr(dump, "\"Action\": \"_ScalePolicy\""));
    assert_non_null(strstr(dump, "\"Action\": \"_ScaleReconcile\""));
    assert_non_null(strstr(dump, "Firing"));
    free(dump);
    fsmtest_free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(timer_validation, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(timer_exactly_once, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(timer_once, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(timer_admin_frozen, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(metric_ring, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(alarms, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(scaling_lb, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(scaling_policies, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(timer_modify, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(scaling, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(determinism, fsmtest_setup,
                                        fsmtest_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
