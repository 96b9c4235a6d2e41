/* Metrics and alarms.
 *
 * ReportMetric (executor credentials): one sample {ResourceID, MetricName,
 * Value, Time} of a machine or disk placed on the reporting host. Samples
 * go into a fixed ring per (resource, metric): "m" \0 ResourceID \0
 * MetricName in "auto", FSM_METRIC_RING samples of 16 bytes (be64 time,
 * be64 value), so the state held for metrics is bounded by the number of
 * resources; a purge of the resource drops its rings. A sample not newer
 * than the newest one kept is refused (161): a resent report is a no-op.
 * Values are integers in the metric's unit (percent, bytes/s, ...).
 *
 * Alarm templates ("alarmtpl-") hold up to 8 rules "METRIC|CMP|THRESHOLD|
 * PERIODS" (CMP one of GT GE LT LE): a rule fires when PERIODS
 * consecutive samples of METRIC compare true against THRESHOLD, and
 * resolves at the first sample that does not. BindAlarmTemplate binds a
 * template to machines or disks: "b" \0 ResourceID \0 AlarmTemplateID
 * keeps, per rule, the run length and whether it fires, and the last
 * FSM_AUTO_EVENTS events. Rules are evaluated inside the apply of
 * ReportMetric, a pure function of the state and the sample, so every
 * replica agrees; a firing or resolving event is also written into that
 * entry's operation-log Message. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define TPL_PREFIX "alarmtpl"
#define NAME_MAX_LEN 64
#define RULES_MAX 8
#define RULE_LEN 128
#define PERIODS_MAX 100
#define VALUE_MAX (1ll << 53)
#define TIME_MAX (1ll << 40)
#define FUTURE_SLACK 300 /* s a sample may be ahead of the leader */
#define SLOT 16          /* bytes of a ring slot */

static const struct
{
    const char *name;
    int percent; /* 0..100 */
    int disk;    /* reported for disks too */
} metrics[] = {
    {"CPUUtilization", 1, 0}, {"MemUsage", 1, 0}, {"NICIn", 0, 0},
    {"NICOut", 0, 0},         {"IORead", 0, 1},   {"IOWrite", 0, 1},
    {"DiskUsage", 1, 1},
};
#define N_METRICS (sizeof metrics / sizeof metrics[0])

static int64_t now_s(const struct fsm_ctx *c)
{
    return (int64_t)(c->time_ns / 1000000000u);
}

static int metric_index(const char *name)
{
    for (size_t i = 0; i < N_METRICS; i++) {
        if (strcmp(metrics[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int fsm__metric_known(const char *name)
{
    return metric_index(name) >= 0;
}

/* "m" \0 res \0 metric, or "b" \0 res \0 template */
static size_t key3(char *out, char kind, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    out[0] = kind;
    out[1] = '\0';
    memcpy(out + 2, a, la);
    out[2 + la] = '\0';
    memcpy(out + 3 + la, b, lb);
    return 3 + la + lb;
}

int fsm__metric_last(struct fsm *f,
                     MDB_txn *txn,
                     const char *res,
                     const char *metric,
                     int64_t *time,
                     int64_t *value,
                     int *found)
{
    char k[2 * FSM_ID_SIZE + 4];
    struct fsm_rec r;
    int rc;

    *found = 0;
    if (strlen(res) >= FSM_ID_SIZE || strlen(metric) >= FSM_ID_SIZE) {
        return 0;
    }
    fsm__rec_init(&r);
    rc = fsm__rec_load(f, txn, FSM_TBL_AUTO, k, key3(k, 'm', res, metric), &r);
    if (rc == 0 && fsm__rec_i(&r, "Count") > 0) {
        *found = 1;
        *time = fsm__rec_i(&r, "LastTime");
        *value = fsm__rec_i(&r, "LastValue");
    }
    fsm__rec_free(&r);
    return rc == YH_ENOTFOUND ? 0 : rc;
}

/* ---- rules ---- */

struct rule
{
    char metric[32];
    int cmp;
    int64_t threshold;
    int64_t periods;
    char canon[RULE_LEN];
};

static int rule_parse(const char *s, struct rule *r, char *why, size_t wn)
{
    char buf[RULE_LEN], *f[5], *save = NULL, *end;
    unsigned n = 0;

    snprintf(buf, sizeof buf, "%s", s);
    for (char *p = strtok_r(buf, "|", &save); p != NULL && n < 5;
         p = strtok_r(NULL, "|", &save)) {
        f[n++] = p;
    }
    if (n != 4) {
        snprintf(why, wn, "'%s': METRIC|CMP|THRESHOLD|PERIODS", s);
        return YH_EINVAL;
    }
    if (metric_index(f[0]) < 0) {
        snprintf(why, wn,
                 "'%s': metric one of CPUUtilization, MemUsage, NICIn, "
                 "NICOut, IORead, IOWrite, DiskUsage",
                 s);
        return YH_EINVAL;
    }
    snprintf(r->metric, sizeof r->metric, "%s", f[0]);
    r->cmp = fsm__cmp_parse(f[1]);
    if (r->cmp < 0) {
        snprintf(why, wn, "'%s': comparison GT, GE, LT or LE", s);
        return YH_EINVAL;
    }
    r->threshold = strtoll(f[2], &end, 10);
    if (*end != '\0' || f[2][0] == '\0' || r->threshold < 0 ||
        r->threshold > VALUE_MAX) {
        snprintf(why, wn, "'%s': threshold an integer 0..2^53", s);
        return YH_EINVAL;
    }
    r->periods = strtoll(f[3], &end, 10);
    if (*end != '\0' || r->periods < 1 || r->periods > PERIODS_MAX) {
        snprintf(why, wn, "'%s': periods 1..%d", s, PERIODS_MAX);
        return YH_EINVAL;
    }
    snprintf(r->canon, sizeof r->canon, "%s|%s|%" PRId64 "|%" PRId64, r->metric,
             fsm__cmp_name(r->cmp), r->threshold, r->periods);
    return 0;
}

/* The rules of template record @t. */
static unsigned rules_of(const struct fsm_rec *t, struct rule *out)
{
    const char *p = fsm__rec_s(t, "Rules");
    unsigned n = 0;

    while (*p != '\0' && n < RULES_MAX) {
        char one[RULE_LEN], why[8];
        const char *e = strchr(p, '\n');
        size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
        snprintf(one, sizeof one, "%.*s", (int)(l < RULE_LEN ? l : 0), p);
        if (rule_parse(one, &out[n], why, sizeof why) == 0) {
            n++;
        }
        p += l + (e != NULL);
    }
    return n;
}

/* ---- ReportMetric ---- */

struct sample
{
    char res[FSM_ID_SIZE];
    char metric[32];
    int64_t value;
    int64_t time;
    int time_given;
};

static int sample_args(struct fsm_ctx *c, struct sample *s)
{
    int i;

    TRY(fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, s->res, NULL));
    TRY(fsm__arg_str(c, "MetricName", 1, sizeof s->metric - 1, s->metric,
                     NULL));
    i = metric_index(s->metric);
    if (i < 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'MetricName': one of "
                           "CPUUtilization, MemUsage, NICIn, NICOut, IORead, "
                           "IOWrite, DiskUsage");
    }
    TRY(fsm__arg_int(c, "Value", 1, 0, metrics[i].percent ? 100 : VALUE_MAX,
                     &s->value, NULL));
    return fsm__arg_int(c, "Time", 0, 1, TIME_MAX, &s->time, &s->time_given);
}

int fsm__metric_report_check(struct fsm_ctx *c)
{
    struct sample s;

    return sample_args(c, &s);
}

/* One rule's step on a sample: events packed into @ev (count in *n_ev),
 * a summary appended to @sum. */
static void rule_step(struct fsm_rec *b,
                      unsigned i,
                      const struct rule *r,
                      const struct sample *s,
                      int64_t now,
                      struct fsm_out *ev,
                      unsigned *n_ev,
                      char *sum,
                      size_t sum_size)
{
    char kc[8], kf[8];
    int64_t count;
    int firing, breach;
    const char *event = NULL;

    snprintf(kc, sizeof kc, "_C%u", i);
    snprintf(kf, sizeof kf, "_F%u", i);
    count = fsm__rec_i(b, kc);
    firing = fsm__rec_i(b, kf) != 0;
    breach = fsm__cmp_eval(r->cmp, s->value, r->threshold);
    if (breach) {
        count = count + 1 > r->periods ? r->periods : count + 1;
        if (!firing && count >= r->periods) {
            firing = 1;
            event = "Firing";
        }
    } else {
        count = 0;
        if (firing) {
            firing = 0;
            event = "Resolved";
        }
    }
    fsm__rec_set_i(b, kc, count);
    fsm__rec_set_b(b, kf, firing);
    if (event == NULL) {
        return;
    }
    msgpack_pack_map(&ev->pk, 7);
    yh_mp_pack_kv_int(&ev->pk, "Time", now);
    yh_mp_pack_kv_int(&ev->pk, "SampleTime", s->time);
    yh_mp_pack_kv_str(&ev->pk, "Event", event);
    yh_mp_pack_kv_int(&ev->pk, "RuleIndex", i);
    yh_mp_pack_kv_str(&ev->pk, "Rule", r->canon);
    yh_mp_pack_kv_str(&ev->pk, "MetricName", r->metric);
    yh_mp_pack_kv_int(&ev->pk, "Value", s->value);
    (*n_ev)++;
    {
        size_t l = strlen(sum);
        snprintf(sum + l, sum_size - l, "%salarm %s on %s: %s %s",
                 l > 0 ? "; " : "", fsm__rec_s(b, "AlarmTemplateID"), s->res,
                 r->canon, event);
    }
}

/* Evaluate every template bound to the sample's resource; saves the
 * bindings; the events go to their lists and the summary to @sum. */
static int alarms_eval(struct fsm_ctx *c,
                       const struct sample *s,
                       char *sum,
                       size_t sum_size)
{
    char keys[FSM_ALARM_BINDS_MAX][2 * FSM_ID_SIZE + 4];
    size_t lens[FSM_ALARM_BINDS_MAX];
    char prefix[FSM_ID_SIZE + 4];
    size_t pl = key3(prefix, 'b', s->res, "");
    unsigned n = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_AUTO], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on 'auto'");
    }
    k.mv_data = prefix;
    k.mv_size = pl;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && n < FSM_ALARM_BINDS_MAX;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < pl || memcmp(k.mv_data, prefix, pl) != 0) {
            break;
        }
        if (k.mv_size < sizeof keys[0]) {
            memcpy(keys[n], k.mv_data, k.mv_size);
            lens[n++] = k.mv_size;
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(c->f, rc, "read 'auto'");
    }
    rc = 0;
    for (unsigned i = 0; i < n && rc == 0; i++) {
        struct rule rules[RULES_MAX];
        struct fsm_rec b, t;
        struct yh_buf evb = YH_BUF_INIT;
        struct fsm_out ev;
        unsigned nr, n_ev = 0, any = 0;
        const char *tpl = keys[i] + pl;
        fsm__rec_init(&b);
        fsm__rec_init(&t);
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, keys[i], lens[i], &b);
        if (rc == 0) {
            rc = fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, tpl, lens[i] - pl,
                               &t);
        }
        if (rc == YH_ENOTFOUND) {
            rc = 0; /* a binding whose template is gone evaluates nothing */
            goto next;
        }
        if (rc != 0) {
            goto next;
        }
        nr = rules_of(&t, rules);
        fsm__out_init(&ev, &evb);
        for (unsigned j = 0; j < nr; j++) {
            if (strcmp(rules[j].metric, s->metric) == 0) {
                rule_step(&b, j, &rules[j], s, now_s(c), &ev, &n_ev, sum,
                          sum_size);
                any = 1;
            }
        }
        if (!any) {
            goto next;
        }
        {
            int firing = 0;
            for (unsigned j = 0; j < nr; j++) {
                char kf[8];
                snprintf(kf, sizeof kf, "_F%u", j);
                firing |= fsm__rec_i(&b, kf) != 0;
            }
            fsm__rec_set_s(&b, "State", firing ? "Firing" : "OK");
        }
        if (ev.oom) {
            rc = YH_ENOMEM;
            goto next;
        }
        /* each event is one packed map in evb: push them in order */
        if (n_ev > 0) {
            msgpack_unpacked u;
            size_t off = 0;
            msgpack_unpacked_init(&u);
            while (rc == 0 &&
                   msgpack_unpack_next(&u, (const char *)evb.data, evb.len,
                                       &off) == MSGPACK_UNPACK_SUCCESS) {
                struct yh_buf one = YH_BUF_INIT;
                struct fsm_out o;
                fsm__out_init(&o, &one);
                msgpack_pack_object(&o.pk, u.data);
                rc = o.oom ? YH_ENOMEM
                           : fsm__auto_event_push(&b, "_Events", &one);
                yh_buf_release(&one);
            }
            msgpack_unpacked_destroy(&u);
        }
        if (rc == 0) {
            fsm__rec_set_i(&b, "Revision", (int64_t)c->index);
            rc = fsm__rec_save(c, FSM_TBL_AUTO, keys[i], lens[i], &b);
        }
    next:
        yh_buf_release(&evb);
        fsm__rec_free(&b);
        fsm__rec_free(&t);
    }
    return rc;
}

int fsm__metric_report_apply(struct fsm_ctx *c)
{
    struct sample s;
    char host[FSM_ID_SIZE], k[2 * FSM_ID_SIZE + 4];
    char sum[YH_ERRMSG_SIZE] = "";
    uint8_t ring[FSM_METRIC_RING * SLOT];
    struct fsm_rec r, m;
    const char *type, *p;
    size_t kl, n;
    int64_t count;
    int disk;
    int rc;

    TRY(sample_args(c, &s));
    if (!s.time_given) {
        s.time = now_s(c);
    }
    snprintf(c->resource_id, sizeof c->resource_id, "%s", s.res);
    fsm__rec_init(&r);
    fsm__rec_init(&m);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, s.res, strlen(s.res), &r);
    type = fsm__rec_s(&r, "ResourceType");
    disk = strcmp(type, "Disk") == 0;
    if (rc == 0 && !disk && strcmp(type, "VM") != 0) {
        rc = YH_ENOTFOUND;
    }
    if (rc == YH_ENOTFOUND) {
        rc = fsm__reject(c, YH_ENOTFOUND, "resource '%s' not found", s.res);
    }
    if (rc != 0) {
        goto out;
    }
    if (disk) {
        rc = fsm__disk_host(c, &r, host);
        if (rc != 0) {
            goto out;
        }
    } else {
        snprintf(host, sizeof host, "%s", fsm__rec_s(&r, "HostID"));
    }
    if (strcmp(host, c->actor->user_id) != 0) {
        rc = fsm__reject(c, YH_EPERM,
                         "permission denied: '%s' is not placed on '%s'", s.res,
                         c->actor->user_id);
        goto out;
    }
    if (strcmp(fsm__rec_s(&r, "State"), "Recycled") == 0) {
        rc = fsm__reject(c, YH_ESTATE, "'%s' is in the recycle bin", s.res);
        goto out;
    }
    if (disk && !metrics[metric_index(s.metric)].disk) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'MetricName': a disk reports "
                         "IORead, IOWrite, DiskUsage");
        goto out;
    }
    if (s.time > now_s(c) + FUTURE_SLACK) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'Time': more than %d s ahead of "
                         "the cluster",
                         FUTURE_SLACK);
        goto out;
    }
    kl = key3(k, 'm', s.res, s.metric);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, k, kl, &m);
    if (rc == YH_ENOTFOUND) {
        fsm__rec_set_s(&m, "ResourceID", s.res);
        fsm__rec_set_s(&m, "MetricName", s.metric);
        fsm__rec_set_s(&m, "TenantID", fsm__rec_s(&r, "TenantID"));
        fsm__rec_set_i(&m, "Count", 0);
        fsm__rec_set_i(&m, "LastTime", 0);
        fsm__rec_set_i(&m, "LastValue", 0);
        rc = 0;
    }
    if (rc != 0) {
        goto out;
    }
    count = fsm__rec_i(&m, "Count");
    if (count > 0 && s.time <= fsm__rec_i(&m, "LastTime")) {
        rc = fsm__reject(c, YH_EEXIST,
                         "a sample of %s for '%s' at or after %" PRId64
                         " is already reported",
                         s.metric, s.res, s.time);
        goto out;
    }
    /* no rejection from here on */
    memset(ring, 0, sizeof ring);
    p = fsm__rec_bin(&m, "_Ring", &n);
    if (p != NULL && n == sizeof ring) {
        memcpy(ring, p, n);
    }
    fsm__be64_put(ring + (count % FSM_METRIC_RING) * SLOT, (uint64_t)s.time);
    fsm__be64_put(ring + (count % FSM_METRIC_RING) * SLOT + 8,
                  (uint64_t)s.value);
    fsm__rec_set_i(&m, "Count", count + 1);
    fsm__rec_set_i(&m, "LastTime", s.time);
    fsm__rec_set_i(&m, "LastValue", s.value);
    fsm__rec_set_bin(&m, "_Ring", ring, sizeof ring);
    rc = fsm__rec_save(c, FSM_TBL_AUTO, k, kl, &m);
    if (rc == 0) {
        rc = alarms_eval(c, &s, sum, sizeof sum);
    }
    if (rc == 0 && sum[0] != '\0') {
        snprintf(c->msg, sizeof c->msg, "%s", sum);
    }
out:
    fsm__rec_free(&r);
    fsm__rec_free(&m);
    return rc;
}

/* ---- DescribeMetric ---- */

static void ring_pack(msgpack_packer *pk,
                      const struct fsm_rec *m,
                      int64_t from,
                      int64_t to)
{
    int64_t count = fsm__rec_i(m, "Count");
    int64_t have = count < FSM_METRIC_RING ? count : FSM_METRIC_RING;
    size_t n;
    const uint8_t *p = (const uint8_t *)fsm__rec_bin(m, "_Ring", &n);
    uint32_t k = 0;

    if (p == NULL || n != FSM_METRIC_RING * SLOT) {
        have = 0;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            msgpack_pack_array(pk, k);
        }
        for (int64_t i = count - have; i < count; i++) {
            const uint8_t *s = p + (i % FSM_METRIC_RING) * SLOT;
            int64_t t = (int64_t)fsm__be64_get(s);
            if (t < from || t > to) {
                continue;
            }
            if (pass == 0) {
                k++;
                continue;
            }
            msgpack_pack_map(pk, 2);
            yh_mp_pack_kv_int(pk, "Timestamp", t);
            yh_mp_pack_kv_int(pk, "Value", (int64_t)fsm__be64_get(s + 8));
        }
    }
}

int fsm__metric_describe(struct fsm_ctx *c)
{
    char res[FSM_ID_SIZE], metric[32], k[2 * FSM_ID_SIZE + 4];
    struct yh_buf items = YH_BUF_INIT;
    struct fsm_out o;
    struct fsm_rec r;
    int64_t from, to;
    int given;
    uint32_t n = 0;
    int rc;

    TRY(fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, res, NULL));
    TRY(fsm__arg_str(c, "MetricName", 0, sizeof metric - 1, metric, &given));
    if (given && metric_index(metric) < 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'MetricName': one of "
                           "CPUUtilization, MemUsage, NICIn, NICOut, IORead, "
                           "IOWrite, DiskUsage");
    }
    TRY(fsm__arg_int_or(c, "BeginTime", 0, TIME_MAX, 0, &from));
    TRY(fsm__arg_int_or(c, "EndTime", 0, TIME_MAX, TIME_MAX, &to));
    fsm__rec_init(&r);
    /* tenant isolation: only the owner (or the administrator) of the
     * resource sees its metrics */
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, res, strlen(res), &r);
    if (rc == 0 && !fsm__owns(c, fsm__rec_s(&r, "TenantID"))) {
        rc = YH_ENOTFOUND;
    }
    if (rc == YH_ENOTFOUND) {
        rc = fsm__reject(c, YH_ENOTFOUND, "resource '%s' not found", res);
    }
    fsm__out_init(&o, &items);
    for (size_t i = 0; i < N_METRICS && rc == 0; i++) {
        if (given && strcmp(metric, metrics[i].name) != 0) {
            continue;
        }
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, k,
                           key3(k, 'm', res, metrics[i].name), &r);
        if (rc == YH_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc != 0) {
            break;
        }
        msgpack_pack_map(&o.pk, 4);
        yh_mp_pack_kv_str(&o.pk, "ResourceID", res);
        yh_mp_pack_kv_str(&o.pk, "MetricName", metrics[i].name);
        yh_mp_pack_kv_int(&o.pk, "SampleCount", fsm__rec_i(&r, "Count"));
        yh_mp_pack_str(&o.pk, "Values");
        ring_pack(&o.pk, &r, from, to);
        n++;
    }
    if (rc == 0) {
        msgpack_pack_array(fsm__field(c, "Infos"), n);
        if (o.oom || (items.len > 0 && yh_buf_append(&c->fields_buf, items.data,
                                                     items.len) != 0)) {
            c->fields.oom = 1;
        }
        msgpack_pack_uint64(fsm__field(c, "TotalCount"), n);
        msgpack_pack_int64(fsm__field(c, "RingSize"), FSM_METRIC_RING);
    }
    fsm__rec_free(&r);
    yh_buf_release(&items);
    return rc;
}

/* ---- alarm templates ---- */

struct tpl_args
{
    char name[NAME_MAX_LEN + 1];
    char rules[RULES_MAX][FSM_ID_SIZE]; /* canonical (fit: < 48 bytes) */
    unsigned n;
};

static int tpl_args(struct fsm_ctx *c, struct tpl_args *a)
{
    char raw[RULES_MAX][RULE_LEN];
    unsigned n;

    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, a->name, NULL));
    TRY(fsm__arg_list_long(c, "Rules", RULES_MAX, RULE_LEN, (char *)raw, &n));
    if (n == 0) {
        return fsm__reject(c, YH_EMISSING, "missing parameter 'Rules'");
    }
    for (unsigned i = 0; i < n; i++) {
        struct rule r;
        char why[160];
        if (rule_parse(raw[i], &r, why, sizeof why) != 0) {
            return fsm__reject(c, YH_EINVAL, "invalid parameter 'Rules': %s",
                               why);
        }
        if (strlen(r.canon) >= FSM_ID_SIZE) {
            return fsm__reject(c, YH_EINVAL,
                               "invalid parameter 'Rules': '%s' too long",
                               raw[i]);
        }
        snprintf(a->rules[i], FSM_ID_SIZE, "%s", r.canon);
    }
    a->n = n;
    return 0;
}

int fsm__alarmtpl_create_check(struct fsm_ctx *c)
{
    struct tpl_args a;
    char tenant[FSM_ID_SIZE];

    TRY(fsm__owner_arg(c, tenant));
    return tpl_args(c, &a);
}

int fsm__alarmtpl_create_apply(struct fsm_ctx *c)
{
    struct tpl_args a;
    char tenant[FSM_ID_SIZE], id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__owner_arg(c, tenant));
    TRY(tpl_args(c, &a));
    TRY(fsm__new_id(c, TPL_PREFIX, id));
    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "AlarmTemplateID", id);
    fsm__rec_set_s(&r, "TenantID", tenant);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_l(&r, "Rules", a.rules, a.n);
    fsm__rec_set_i(&r, "BindCount", 0);
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
    rc = fsm__rec_save(c, FSM_TBL_AUTO, id, strlen(id), &r);
    fsm__rec_free(&r);
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, "AlarmTemplateID"), id);
    }
    return rc;
}

int fsm__alarmtpl_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {
        FSM_TBL_AUTO, TPL_PREFIX "-", "AlarmTemplateIDs", 0, NULL, NULL, NULL};

    return fsm__describe(c, &d);
}

/* Template @id of the actor's tenant (150 otherwise). */
static int tpl_load(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    int rc = strncmp(id, TPL_PREFIX "-", sizeof TPL_PREFIX) == 0
                 ? fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, id, strlen(id), r)
                 : YH_ENOTFOUND;

    if (rc == 0 && !fsm__owns(c, fsm__rec_s(r, "TenantID"))) {
        rc = YH_ENOTFOUND;
    }
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "alarm template '%s' not found",
                           id);
    }
    return rc;
}

int fsm__alarmtpl_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "AlarmTemplateID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__alarmtpl_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__arg_str(c, "AlarmTemplateID", 1, FSM_ID_SIZE - 1, id, NULL));
    fsm__rec_init(&r);
    rc = tpl_load(c, id, &r);
    if (rc == 0 && fsm__rec_i(&r, "BindCount") > 0) {
        rc = fsm__reject(c, YH_ESTATE,
                         "alarm template '%s' is bound to %" PRId64
                         " resources: unbind it first",
                         id, fsm__rec_i(&r, "BindCount"));
    }
    if (rc == 0) {
        rc = fsm__cdel(c, FSM_TBL_AUTO, id, strlen(id));
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    fsm__rec_free(&r);
    return rc;
}

/* ---- bindings ---- */

#define BIND_IDS_MAX 16

int fsm__alarm_bind_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], ids[BIND_IDS_MAX][FSM_ID_SIZE];
    unsigned n;

    TRY(fsm__arg_str(c, "AlarmTemplateID", 1, FSM_ID_SIZE - 1, id, NULL));
    TRY(fsm__arg_list(c, "ResourceIDs", BIND_IDS_MAX, ids, &n));
    if (n == 0) {
        return fsm__reject(c, YH_EMISSING, "missing parameter 'ResourceIDs'");
    }
    for (unsigned i = 0; i < n; i++) {
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(ids[i], ids[j]) == 0) {
                return fsm__reject(c, YH_EINVAL,
                                   "invalid parameter 'ResourceIDs': '%s' "
                                   "given twice",
                                   ids[i]);
            }
        }
    }
    return 0;
}

/* Bindings of resource @res (count). */
static int binds_of(struct fsm_ctx *c, const char *res, unsigned *n)
{
    char prefix[FSM_ID_SIZE + 4];
    size_t pl = key3(prefix, 'b', res, "");
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    *n = 0;
    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_AUTO], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on 'auto'");
    }
    k.mv_data = prefix;
    k.mv_size = pl;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < pl || memcmp(k.mv_data, prefix, pl) != 0) {
            break;
        }
        (*n)++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(c->f, rc, "read 'auto'");
    }
    return 0;
}

static int bind_common(struct fsm_ctx *c, int bind)
{
    char id[FSM_ID_SIZE], ids[BIND_IDS_MAX][FSM_ID_SIZE];
    char k[2 * FSM_ID_SIZE + 4];
    struct fsm_rec t, r;
    MDB_val v;
    unsigned n;
    int rc;

    TRY(fsm__alarm_bind_check(c));
    fsm__arg_str(c, "AlarmTemplateID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__arg_list(c, "ResourceIDs", BIND_IDS_MAX, ids, &n);
    fsm__rec_init(&t);
    fsm__rec_init(&r);
    rc = tpl_load(c, id, &t);
    /* every check first */
    for (unsigned i = 0; i < n && rc == 0; i++) {
        const char *type;
        unsigned have;
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, ids[i], strlen(ids[i]),
                           &r);
        type = fsm__rec_s(&r, "ResourceType");
        if (rc == 0 &&
            (!fsm__owns(c, fsm__rec_s(&r, "TenantID")) ||
             (strcmp(type, "VM") != 0 && strcmp(type, "Disk") != 0))) {
            rc = YH_ENOTFOUND;
        }
        if (rc == YH_ENOTFOUND) {
            rc = fsm__reject(c, YH_ENOTFOUND,
                             "resource '%s' not found (a machine or disk)",
                             ids[i]);
            break;
        }
        if (rc != 0) {
            break;
        }
        if (bind && strcmp(fsm__rec_s(&r, "State"), "Recycled") == 0) {
            rc =
                fsm__reject(c, YH_ESTATE, "'%s' is in the recycle bin", ids[i]);
            break;
        }
        rc = fsm__get(c->f, c->txn, FSM_TBL_AUTO, k, key3(k, 'b', ids[i], id),
                      &v);
        if (rc == 0 && bind) {
            rc = fsm__reject(c, YH_EEXIST,
                             "alarm template '%s' is already bound to '%s'", id,
                             ids[i]);
        } else if (rc == YH_ENOTFOUND && !bind) {
            rc = fsm__reject(c, YH_ENOTFOUND,
                             "alarm template '%s' is not bound to '%s'", id,
                             ids[i]);
        } else if (rc == YH_ENOTFOUND || rc == 0) {
            rc = 0;
        }
        if (rc == 0 && bind) {
            rc = binds_of(c, ids[i], &have);
            if (rc == 0 && have >= FSM_ALARM_BINDS_MAX) {
                rc = fsm__reject(c, YH_EQUOTA,
                                 "'%s' has %d alarm templates bound already",
                                 ids[i], FSM_ALARM_BINDS_MAX);
            }
        }
    }
    for (unsigned i = 0; i < n && rc == 0; i++) {
        size_t kl = key3(k, 'b', ids[i], id);
        if (!bind) {
            rc = fsm__cdel(c, FSM_TBL_AUTO, k, kl);
            continue;
        }
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, ids[i], strlen(ids[i]),
                           &r);
        if (rc != 0) {
            break;
        }
        {
            struct fsm_rec b;
            fsm__rec_init(&b);
            fsm__rec_set_s(&b, "ResourceID", ids[i]);
            fsm__rec_set_s(&b, "AlarmTemplateID", id);
            fsm__rec_set_s(&b, "TenantID", fsm__rec_s(&r, "TenantID"));
            fsm__rec_set_s(&b, "State", "OK");
            fsm__rec_set_i(&b, "BindTime", now_s(c));
            fsm__rec_set_i(&b, "Revision", (int64_t)c->index);
            rc = fsm__rec_save(c, FSM_TBL_AUTO, k, kl, &b);
            fsm__rec_free(&b);
        }
    }
    if (rc == 0) {
        fsm__rec_set_i(
            &t, "BindCount",
            fsm__rec_i(&t, "BindCount") + (bind ? 1 : -1) * (int64_t)n);
        fsm__rec_set_i(&t, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_AUTO, id, strlen(id), &t);
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    fsm__rec_free(&t);
    fsm__rec_free(&r);
    return rc;
}

int fsm__alarm_bind_apply(struct fsm_ctx *c)
{
    return bind_common(c, 1);
}

int fsm__alarm_unbind_apply(struct fsm_ctx *c)
{
    return bind_common(c, 0);
}

/* ---- DescribeAlarm ---- */

struct alarm_filter
{
    char res[FSM_ID_SIZE];
    char tpl[FSM_ID_SIZE];
    char state[16];
};

static int alarm_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    const struct alarm_filter *q = arg;

    (void)c;
    return (q->res[0] == '\0' ||
            strcmp(fsm__rec_s(r, "ResourceID"), q->res) == 0) &&
           (q->tpl[0] == '\0' ||
            strcmp(fsm__rec_s(r, "AlarmTemplateID"), q->tpl) == 0) &&
           (q->state[0] == '\0' ||
            strcmp(fsm__rec_s(r, "State"), q->state) == 0);
}

static void alarm_pack(struct fsm_ctx *c,
                       msgpack_packer *pk,
                       const struct fsm_rec *b,
                       void *arg)
{
    const char *tpl = fsm__rec_s(b, "AlarmTemplateID");
    struct rule rules[RULES_MAX];
    struct fsm_rec t;
    unsigned nr = 0;

    (void)arg;
    fsm__rec_init(&t);
    if (fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, tpl, strlen(tpl), &t) == 0) {
        nr = rules_of(&t, rules);
    }
    msgpack_pack_map(pk, 7);
    yh_mp_pack_kv_str(pk, "ResourceID", fsm__rec_s(b, "ResourceID"));
    yh_mp_pack_kv_str(pk, "AlarmTemplateID", tpl);
    yh_mp_pack_kv_str(pk, "TenantID", fsm__rec_s(b, "TenantID"));
    yh_mp_pack_kv_str(pk, "State", fsm__rec_s(b, "State"));
    yh_mp_pack_kv_int(pk, "BindTime", fsm__rec_i(b, "BindTime"));
    yh_mp_pack_str(pk, "Rules");
    msgpack_pack_array(pk, nr);
    for (unsigned i = 0; i < nr; i++) {
        char kc[8], kf[8];
        snprintf(kc, sizeof kc, "_C%u", i);
        snprintf(kf, sizeof kf, "_F%u", i);
        msgpack_pack_map(pk, 3);
        yh_mp_pack_kv_str(pk, "Rule", rules[i].canon);
        yh_mp_pack_kv_int(pk, "Consecutive", fsm__rec_i(b, kc));
        yh_mp_pack_str(pk, "Firing");
        if (fsm__rec_i(b, kf)) {
            msgpack_pack_true(pk);
        } else {
            msgpack_pack_false(pk);
        }
    }
    yh_mp_pack_str(pk, "Events");
    fsm__auto_bin_pack(pk, b, "_Events", 0);
    fsm__rec_free(&t);
}

int fsm__alarm_describe(struct fsm_ctx *c)
{
    struct alarm_filter q;
    /* binding keys are the only "auto" keys that start with 'b' */
    struct fsm_desc d = {FSM_TBL_AUTO, "b",        NULL, 0,
                         alarm_keep,   alarm_pack, &q};

    TRY(fsm__arg_str(c, "ResourceID", 0, FSM_ID_SIZE - 1, q.res, NULL));
    TRY(fsm__arg_str(c, "AlarmTemplateID", 0, FSM_ID_SIZE - 1, q.tpl, NULL));
    TRY(fsm__arg_str(c, "State", 0, sizeof q.state - 1, q.state, NULL));
    return fsm__describe(c, &d);
}
