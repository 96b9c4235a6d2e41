/* Timers ("timer-"): an action run on a schedule for the timer's owner.
 *
 *   CreateTimer {Action, Params, ResourceIDs?, At | Interval [StartTime]}
 *
 * Action is one of the allowed list below; Params are its parameters;
 * with ResourceIDs the action runs once per resource, its target parameter
 * (DiskID, VMID) set to each. The action's own check validates every such
 * parameter set at create, as the owner (so a sub-account cannot schedule
 * what its roles do not allow).
 *
 * Schedule: NextDue (unix s) is the next unfired due time; a due row
 * "d" \0 NextDue \0 TimerID in "auto" indexes the active timers by it, so
 * the leader reads only what is due and a new leader has the whole
 * schedule from the state. The leader proposes _TimerFire {TimerID, Due}
 * for the LATEST due time <= now: firings missed while no leader ran are
 * not replayed as a burst; they are counted in MissedCount. Apply accepts
 * a Due only if it is on the schedule, not in the future and >= NextDue,
 * then moves NextDue past it: the (timer, due) key is consumed, so a
 * retry, a replay or a second leader's proposal of the same firing is a
 * harmless rejection (161) and never runs the action twice.
 *
 * The action runs as the owner with the permissions the owner has at that
 * log index (fsm__auto_run): a frozen tenant's timer runs nothing, and the
 * firing records why. Every firing is one log entry whose operation-log
 * Message says what ran and with what result; the timer keeps the last
 * FSM_AUTO_EVENTS firings in History.
 *
 * ModifyTimer changes the Name, disables (State Disabled: no due row,
 * NextDue 0) or enables a timer, or changes its schedule (Interval and
 * StartTime of a repeating timer, At of a once timer). A new schedule's
 * first due time is on the grid StartTime + k*Interval, at or after the
 * change and after LastDue: a due time that fired never fires again. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define TIMER_PREFIX "timer"
#define NAME_MAX_LEN 64
#define TARGETS_MAX 16
#define INTERVAL_MAX (10ll * 366 * 86400)
#define TIME_MAX (1ll << 40) /* unix s, far beyond any real date */
#define FIRES_PER_TICK 64

/* The actions a timer may run, and the parameter each ResourceIDs entry
 * goes into. */
static const struct
{
    const char *action;
    const char *target;
} allowed[] = {
    {"CreateSnapshot", "DiskID"},
    {"StartVMInstance", "VMID"},
    {"StopVMInstance", "VMID"},
    {"RestartVMInstance", "VMID"},
};
#define N_ALLOWED (sizeof allowed / sizeof allowed[0])

static int64_t now_s(const struct fsm_ctx *c)
{
    return (int64_t)(c->time_ns / 1000000000u);
}

static const char *target_of(const char *action)
{
    for (size_t i = 0; i < N_ALLOWED; i++) {
        if (strcmp(allowed[i].action, action) == 0) {
            return allowed[i].target;
        }
    }
    return NULL;
}

/* "d" \0 due(20 digits) \0 id */
static size_t due_key(char *out, int64_t due, const char *id)
{
    int n = snprintf(out, 24, "d%c%020" PRId64, '\0', due);

    out[n] = '\0';
    memcpy(out + n + 1, id, strlen(id));
    return (size_t)n + 1 + strlen(id);
}

struct timer_args
{
    char name[NAME_MAX_LEN + 1];
    char action[64];
    const char *target;                 /* its target parameter */
    char ids[TARGETS_MAX][FSM_ID_SIZE]; /* ResourceIDs */
    unsigned n_ids;
    int64_t at;           /* once: the time (0 = interval timer) */
    int64_t interval;     /* every Interval s */
    int64_t start;        /* from StartTime */
    int64_t next;         /* first due */
    struct yh_buf params; /* packed map */
};

/* Run @fn for every parameter set the timer runs with. */
static int each_args(struct fsm_ctx *c,
                     const char *params,
                     size_t plen,
                     const char *target,
                     char (*ids)[FSM_ID_SIZE],
                     unsigned n_ids,
                     int (*fn)(struct fsm_ctx *c,
                               const char *id,
                               const msgpack_object *args,
                               void *arg),
                     void *arg)
{
    struct yh_buf tmp = YH_BUF_INIT;
    int rc = 0;

    for (unsigned i = 0; i < (n_ids > 0 ? n_ids : 1) && rc == 0; i++) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        rc = fsm__auto_args(params, plen, n_ids > 0 ? target : NULL,
                            n_ids > 0 ? ids[i] : NULL, NULL, NULL, &tmp, &u);
        if (rc == YH_ECORRUPT) {
            snprintf(c->f->errmsg, sizeof c->f->errmsg,
                     "stored timer parameters are corrupt");
        }
        if (rc == 0) {
            rc = fn(c, n_ids > 0 ? ids[i] : "", &u.data, arg);
        }
        msgpack_unpacked_destroy(&u);
    }
    yh_buf_release(&tmp);
    return rc;
}

static int validate_one(struct fsm_ctx *c,
                        const char *id,
                        const msgpack_object *args,
                        void *arg)
{
    const char *action = arg;
    char what[96];

    snprintf(what, sizeof what, "%s%s%s", action, id[0] ? " on " : "", id);
    return fsm__auto_validate(c, what, action, c->actor, args);
}

static int timer_args(struct fsm_ctx *c, struct timer_args *a)
{
    int at_given, iv_given, st_given;

    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, a->name, NULL));
    TRY(fsm__arg_str(c, "Action", 1, sizeof a->action - 1, a->action, NULL));
    a->target = target_of(a->action);
    if (a->target == NULL) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'Action': one of "
                           "CreateSnapshot, StartVMInstance, StopVMInstance, "
                           "RestartVMInstance");
    }
    TRY(fsm__arg_list(c, "ResourceIDs", TARGETS_MAX, a->ids, &a->n_ids));
    for (unsigned i = 0; i < a->n_ids; i++) {
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(a->ids[i], a->ids[j]) == 0) {
                return fsm__reject(c, YH_EINVAL,
                                   "invalid parameter 'ResourceIDs': '%s' "
                                   "given twice",
                                   a->ids[i]);
            }
        }
    }
    TRY(fsm__arg_int(c, "At", 0, 1, TIME_MAX, &a->at, &at_given));
    TRY(fsm__arg_int(c, "Interval", 0, 1, INTERVAL_MAX, &a->interval,
                     &iv_given));
    TRY(fsm__arg_int(c, "StartTime", 0, 1, TIME_MAX, &a->start, &st_given));
    if (at_given == iv_given) {
        return fsm__reject(c, at_given ? YH_EINVAL : YH_EMISSING,
                           "%s parameter 'At' (once) or 'Interval' "
                           "(repeating)",
                           at_given ? "invalid: give only one of" : "missing");
    }
    if (at_given && st_given) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'StartTime': only with "
                           "'Interval'");
    }
    if (at_given) {
        a->interval = 0;
        a->next = a->at;
    } else {
        int64_t now = now_s(c);
        a->at = 0;
        if (!st_given) {
            a->start = now + a->interval;
        }
        a->next = a->start;
        if (a->next < now) {
            /* a start in the past: the first due time from now on */
            a->next +=
                (now - a->start + a->interval - 1) / a->interval * a->interval;
        }
    }
    TRY(fsm__auto_params(c, "Params", &a->params));
    return each_args(c, (const char *)a->params.data, a->params.len, a->target,
                     a->ids, a->n_ids, validate_one, (void *)a->action);
}

int fsm__timer_create_check(struct fsm_ctx *c)
{
    struct timer_args a;
    char tenant[FSM_ID_SIZE];
    int rc;

    memset(&a, 0, sizeof a);
    yh_buf_init(&a.params);
    rc = fsm__owner_arg(c, tenant);
    if (rc == 0) {
        rc = timer_args(c, &a);
    }
    yh_buf_release(&a.params);
    return rc;
}

int fsm__timer_create_apply(struct fsm_ctx *c)
{
    struct timer_args a;
    char tenant[FSM_ID_SIZE], id[FSM_ID_SIZE];
    char dk[24 + FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    memset(&a, 0, sizeof a);
    yh_buf_init(&a.params);
    fsm__rec_init(&r);
    rc = fsm__owner_arg(c, tenant);
    if (rc == 0) {
        rc = timer_args(c, &a);
    }
    if (rc == 0) {
        rc = fsm__new_id(c, TIMER_PREFIX, id);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_s(&r, "TimerID", id);
    fsm__auto_owner_set(&r, c->actor, tenant);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_s(&r, "Action", a.action);
    fsm__rec_set_l(&r, "ResourceIDs", a.ids, a.n_ids);
    fsm__rec_set_bin(&r, "_Params", a.params.data, a.params.len);
    fsm__rec_set_s(&r, "Type", a.interval > 0 ? "Interval" : "Once");
    fsm__rec_set_i(&r, "At", a.at);
    fsm__rec_set_i(&r, "Interval", a.interval);
    fsm__rec_set_i(&r, "StartTime", a.interval > 0 ? a.start : a.at);
    fsm__rec_set_s(&r, "State", "Active");
    fsm__rec_set_i(&r, "NextDue", a.next);
    fsm__rec_set_i(&r, "FireCount", 0);
    fsm__rec_set_i(&r, "MissedCount", 0);
    fsm__rec_set_i(&r, "LastDue", 0);
    fsm__rec_set_i(&r, "LastFireTime", 0);
    fsm__rec_set_s(&r, "LastResult", "");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
    rc = fsm__rec_save(c, FSM_TBL_AUTO, id, strlen(id), &r);
    if (rc == 0) {
        rc = fsm__cput(c, FSM_TBL_AUTO, dk, due_key(dk, a.next, id), "\x80", 1);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, "TimerID"), id);
        msgpack_pack_int64(fsm__field(c, "NextDue"), a.next);
    }
out:
    fsm__rec_free(&r);
    yh_buf_release(&a.params);
    return rc;
}

/* ---- Describe / Delete ---- */

static void timer_pack(struct fsm_ctx *c,
                       msgpack_packer *pk,
                       const struct fsm_rec *r,
                       void *arg)
{
    struct yh_buf b = YH_BUF_INIT;
    struct fsm_out o;
    msgpack_unpacked u;

    (void)arg;
    /* the public fields, then Params and History */
    fsm__out_init(&o, &b);
    fsm__rec_pack(&o.pk, r);
    msgpack_unpacked_init(&u);
    if (!o.oom && fsm__mp_decode(b.data, b.len, &u) == 0 &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        msgpack_pack_map(pk, u.data.via.map.size + 2);
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
            msgpack_pack_object(pk, u.data.via.map.ptr[i].key);
            msgpack_pack_object(pk, u.data.via.map.ptr[i].val);
        }
        yh_mp_pack_str(pk, "Params");
        fsm__auto_bin_pack(pk, r, "_Params", 1);
        yh_mp_pack_str(pk, "History");
        fsm__auto_bin_pack(pk, r, "_History", 0);
    } else {
        c->fields.oom = 1;
    }
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&b);
}

int fsm__timer_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {FSM_TBL_AUTO, TIMER_PREFIX "-", "TimerIDs", 0,
                         NULL,         timer_pack,       NULL};

    return fsm__describe(c, &d);
}

int fsm__timer_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "TimerID", 1, FSM_ID_SIZE - 1, id, NULL);
}

/* Timer @id of the actor's tenant (150 otherwise). */
static int timer_load(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    int rc = strncmp(id, TIMER_PREFIX "-", sizeof TIMER_PREFIX) == 0
                 ? fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, id, strlen(id), r)
                 : YH_ENOTFOUND;

    if (rc == 0 && !fsm__owns(c, fsm__rec_s(r, "TenantID"))) {
        rc = YH_ENOTFOUND;
    }
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "timer '%s' not found", id);
    }
    return rc;
}

int fsm__timer_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], dk[24 + FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__arg_str(c, "TimerID", 1, FSM_ID_SIZE - 1, id, NULL));
    fsm__rec_init(&r);
    rc = timer_load(c, id, &r);
    if (rc == 0 && strcmp(fsm__rec_s(&r, "State"), "Active") == 0) {
        rc = fsm__cdel(c, FSM_TBL_AUTO, dk,
                       due_key(dk, fsm__rec_i(&r, "NextDue"), id));
        if (rc == YH_ENOTFOUND) {
            rc = 0;
        }
    }
    if (rc == 0) {
        rc = fsm__cdel(c, FSM_TBL_AUTO, id, strlen(id));
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    fsm__rec_free(&r);
    return rc;
}

/* ---- ModifyTimer ---- */

struct timer_mod
{
    char id[FSM_ID_SIZE];
    char name[NAME_MAX_LEN + 1];
    char state[16];
    int64_t interval, start, at;
    int has_name, has_state, has_interval, has_start, has_at;
};

static int timer_mod_args(struct fsm_ctx *c, struct timer_mod *m)
{
    static const char *const states[] = {"Active", "Disabled", NULL};
    char word[16];

    TRY(fsm__arg_str(c, "TimerID", 1, FSM_ID_SIZE - 1, m->id, NULL));
    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, m->name, &m->has_name));
    TRY(fsm__arg_str(c, "State", 0, sizeof word - 1, word, &m->has_state));
    if (m->has_state) {
        TRY(fsm__word_arg(c, "State", states, NULL, m->state, sizeof m->state));
    }
    TRY(fsm__arg_int(c, "Interval", 0, 1, INTERVAL_MAX, &m->interval,
                     &m->has_interval));
    TRY(fsm__arg_int(c, "StartTime", 0, 1, TIME_MAX, &m->start, &m->has_start));
    TRY(fsm__arg_int(c, "At", 0, 1, TIME_MAX, &m->at, &m->has_at));
    if (m->has_at && (m->has_interval || m->has_start)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid: 'At' (once) with 'Interval' or "
                           "'StartTime' (repeating)");
    }
    if (!m->has_name && !m->has_state && !m->has_interval && !m->has_start &&
        !m->has_at) {
        return fsm__reject(c, YH_EMISSING,
                           "missing parameter: one of 'Name', 'State', "
                           "'Interval', 'StartTime', 'At'");
    }
    return 0;
}

int fsm__timer_modify_check(struct fsm_ctx *c)
{
    struct timer_mod m;

    memset(&m, 0, sizeof m);
    return timer_mod_args(c, &m);
}

/* The first due time of the grid @start + k*@interval that is >= @now and
 * after @last (the last fired due time): a firing is never repeated. */
static int64_t grid_next(int64_t start,
                         int64_t interval,
                         int64_t now,
                         int64_t last)
{
    int64_t from = now > last + 1 ? now : last + 1;
    int64_t next = start;

    if (next < from) {
        next += (from - start + interval - 1) / interval * interval;
    }
    return next;
}

int fsm__timer_modify_apply(struct fsm_ctx *c)
{
    char dk[24 + FSM_ID_SIZE];
    struct timer_mod m;
    struct fsm_rec r;
    const char *state;
    int64_t interval, start, at, next = 0, now = now_s(c);
    int was_active, active, sched;
    int rc;

    memset(&m, 0, sizeof m);
    TRY(timer_mod_args(c, &m));
    fsm__rec_init(&r);
    rc = timer_load(c, m.id, &r);
    if (rc != 0) {
        goto out;
    }
    state = fsm__rec_s(&r, "State");
    interval = fsm__rec_i(&r, "Interval");
    if ((m.has_state || m.has_interval || m.has_start || m.has_at) &&
        strcmp(state, "Done") == 0) {
        rc = fsm__reject(c, YH_ESTATE,
                         "timer '%s' has fired and is done: create a new one",
                         m.id);
        goto out;
    }
    if (interval == 0 && (m.has_interval || m.has_start)) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter '%s': timer '%s' runs once (give "
                         "'At')",
                         m.has_interval ? "Interval" : "StartTime", m.id);
        goto out;
    }
    if (interval > 0 && m.has_at) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'At': timer '%s' repeats (give "
                         "'Interval'/'StartTime')",
                         m.id);
        goto out;
    }
    was_active = strcmp(state, "Active") == 0;
    active = m.has_state ? strcmp(m.state, "Active") == 0 : was_active;
    /* the schedule is recomputed when it or the state changes */
    sched = m.has_interval || m.has_start || m.has_at || active != was_active;
    if (interval > 0) {
        interval = m.has_interval ? m.interval : interval;
        start = m.has_start ? m.start : fsm__rec_i(&r, "StartTime");
        next = grid_next(start, interval, now, fsm__rec_i(&r, "LastDue"));
        at = 0;
    } else {
        start = at = m.has_at ? m.at : fsm__rec_i(&r, "At");
        next = at;
    }
    /* every rejection is decided: the writes */
    if (was_active) {
        rc = fsm__cdel(c, FSM_TBL_AUTO, dk,
                       due_key(dk, fsm__rec_i(&r, "NextDue"), m.id));
        if (rc == YH_ENOTFOUND) {
            rc = 0;
        }
    }
    if (rc == 0 && active && sched) {
        rc = fsm__cput(c, FSM_TBL_AUTO, dk, due_key(dk, next, m.id), "\x80", 1);
    } else if (rc == 0 && active && was_active) {
        /* only the name changes: the schedule stays */
        next = fsm__rec_i(&r, "NextDue");
        rc = fsm__cput(c, FSM_TBL_AUTO, dk, due_key(dk, next, m.id), "\x80", 1);
    }
    if (rc != 0) {
        goto out;
    }
    if (m.has_name) {
        fsm__rec_set_s(&r, "Name", m.name);
    }
    if (sched) {
        fsm__rec_set_i(&r, "Interval", interval);
        fsm__rec_set_i(&r, "StartTime", start);
        fsm__rec_set_i(&r, "At", at);
        fsm__rec_set_s(&r, "State", active ? "Active" : "Disabled");
        fsm__rec_set_i(&r, "NextDue", active ? next : 0);
    }
    fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
    rc = fsm__rec_save(c, FSM_TBL_AUTO, m.id, strlen(m.id), &r);
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", m.id);
        yh_mp_pack_str(fsm__field(c, "State"), fsm__rec_s(&r, "State"));
        msgpack_pack_int64(fsm__field(c, "NextDue"), fsm__rec_i(&r, "NextDue"));
    }
out:
    fsm__rec_free(&r);
    return rc;
}

/* ---- firing (_TimerFire, proposed by the leader) ---- */

struct fire
{
    const char *action;          /* what runs */
    struct fsm_actor as;         /* as whom */
    const char *tenant;          /* for which tenant */
    struct fsm_out o;            /* Results array items */
    uint32_t n;                  /* their count */
    unsigned ok;                 /* successes */
    char first_err[160];         /* the first rejection, for the summary */
    char last_res[FSM_KEY_SIZE]; /* last resource created or changed */
};

static int fire_one(struct fsm_ctx *c,
                    const char *id,
                    const msgpack_object *args,
                    void *arg)
{
    struct fire *fi = arg;
    struct fsm_run run;

    TRY(fsm__auto_run(c, fi->action, &fi->as, fi->tenant, args, NULL, &run));
    msgpack_pack_map(&fi->o.pk, 4);
    yh_mp_pack_kv_str(&fi->o.pk, "Target", id);
    yh_mp_pack_kv_int(&fi->o.pk, "RetCode", run.code);
    yh_mp_pack_kv_str(&fi->o.pk, "Message", run.msg);
    yh_mp_pack_kv_str(&fi->o.pk, "ResourceID", run.resource_id);
    fi->n++;
    if (run.code == 0) {
        fi->ok++;
        snprintf(fi->last_res, sizeof fi->last_res, "%s", run.resource_id);
    } else if (fi->first_err[0] == '\0') {
        snprintf(fi->first_err, sizeof fi->first_err, "%s%s%d %.120s", id,
                 id[0] ? ": " : "", run.code, run.msg);
    }
    return 0;
}

int fsm__timer_fire_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], dk[24 + FSM_ID_SIZE];
    char ids[TARGETS_MAX][FSM_ID_SIZE];
    struct yh_buf items = YH_BUF_INIT, ev = YH_BUF_INIT;
    struct fire fi;
    struct fsm_rec r;
    struct fsm_out eo;
    const char *params, *target, *list;
    size_t plen;
    int64_t due, next, interval, missed = 0, now = now_s(c);
    unsigned n_ids = 0;
    int rc;

    if (fsm__arg_str(c, "TimerID", 1, FSM_ID_SIZE - 1, id, NULL) != 0 ||
        fsm__arg_int(c, "Due", 1, 1, TIME_MAX, &due, NULL) != 0) {
        return YH_EPROTO;
    }
    snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    memset(&fi, 0, sizeof fi);
    fsm__rec_init(&r);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_AUTO, id, strlen(id), &r);
    if (rc == YH_ENOTFOUND ||
        (rc == 0 && strncmp(id, TIMER_PREFIX "-", sizeof TIMER_PREFIX) != 0)) {
        rc = fsm__reject(c, YH_ENOTFOUND, "timer '%s' not found", id);
    }
    if (rc != 0) {
        goto out;
    }
    next = fsm__rec_i(&r, "NextDue");
    interval = fsm__rec_i(&r, "Interval");
    if (strcmp(fsm__rec_s(&r, "State"), "Active") != 0 || due < next) {
        rc = fsm__reject(c, YH_EEXIST,
                         "timer '%s' already fired for %" PRId64
                         " (next due %" PRId64 ", state %s)",
                         id, due, next, fsm__rec_s(&r, "State"));
        goto out;
    }
    if (due > now) {
        rc = fsm__reject(c, YH_ESTATE,
                         "timer '%s' is not due at %" PRId64 " yet", id, due);
        goto out;
    }
    if (interval > 0) {
        if ((due - next) % interval != 0) {
            rc = fsm__reject(c, YH_EINVAL,
                             "%" PRId64 " is not a due time of timer '%s'", due,
                             id);
            goto out;
        }
        missed = (due - next) / interval;
    } else if (due != next) {
        rc = fsm__reject(c, YH_EINVAL,
                         "%" PRId64 " is not the due time of timer '%s'", due,
                         id);
        goto out;
    }
    /* the firing: run the action once per target, as the owner */
    fi.action = fsm__rec_s(&r, "Action");
    fsm__auto_owner_get(&r, &fi.as);
    fi.tenant = fsm__rec_s(&r, "TenantID");
    target = target_of(fi.action);
    list = fsm__rec_s(&r, "ResourceIDs");
    while (*list != '\0' && n_ids < TARGETS_MAX) {
        const char *e = strchr(list, '\n');
        size_t l = e != NULL ? (size_t)(e - list) : strlen(list);
        snprintf(ids[n_ids++], FSM_ID_SIZE, "%.*s", (int)l, list);
        list += l + (e != NULL);
    }
    params = fsm__rec_bin(&r, "_Params", &plen);
    fsm__out_init(&fi.o, &items);
    if (target == NULL) {
        /* an action no longer allowed: recorded, nothing runs */
        msgpack_pack_map(&fi.o.pk, 4);
        yh_mp_pack_kv_str(&fi.o.pk, "Target", "");
        yh_mp_pack_kv_int(&fi.o.pk, "RetCode", YH_EACTION);
        yh_mp_pack_kv_str(&fi.o.pk, "Message", "action not allowed in timers");
        yh_mp_pack_kv_str(&fi.o.pk, "ResourceID", "");
        fi.n = 1;
        snprintf(fi.first_err, sizeof fi.first_err, "%d not allowed",
                 YH_EACTION);
    } else {
        rc = each_args(c, params, plen, target, ids, n_ids, fire_one, &fi);
        if (rc != 0) {
            goto out;
        }
    }
    if (fi.o.oom) {
        rc = YH_ENOMEM;
        goto out;
    }
    /* consume the (timer, due) key: the due row moves or goes */
    rc = fsm__cdel(c, FSM_TBL_AUTO, dk, due_key(dk, next, id));
    if (rc != 0 && rc != YH_ENOTFOUND) {
        goto out;
    }
    rc = 0;
    if (interval > 0) {
        fsm__rec_set_i(&r, "NextDue", due + interval);
        rc = fsm__cput(c, FSM_TBL_AUTO, dk, due_key(dk, due + interval, id),
                       "\x80", 1);
    } else {
        fsm__rec_set_i(&r, "NextDue", 0);
        fsm__rec_set_s(&r, "State", "Done");
    }
    if (rc != 0) {
        goto out;
    }
    snprintf(c->msg, sizeof c->msg,
             "fired %s for due %" PRId64 ": %u of %u succeeded%s%s%s",
             fi.action, due, fi.ok, fi.n,
             missed > 0 ? " (missed firings skipped)" : "",
             fi.first_err[0] ? "; first rejection: " : "", fi.first_err);
    fsm__rec_set_i(&r, "FireCount", fsm__rec_i(&r, "FireCount") + 1);
    fsm__rec_set_i(&r, "MissedCount", fsm__rec_i(&r, "MissedCount") + missed);
    fsm__rec_set_i(&r, "LastDue", due);
    fsm__rec_set_i(&r, "LastFireTime", now);
    fsm__rec_set_s(&r, "LastResult", c->msg);
    fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
    fsm__out_init(&eo, &ev);
    msgpack_pack_map(&eo.pk, 5);
    yh_mp_pack_kv_int(&eo.pk, "Due", due);
    yh_mp_pack_kv_int(&eo.pk, "Time", now);
    yh_mp_pack_kv_int(&eo.pk, "Missed", missed);
    yh_mp_pack_kv_int(&eo.pk, "Index", (int64_t)c->index);
    yh_mp_pack_str(&eo.pk, "Results");
    msgpack_pack_array(&eo.pk, fi.n);
    if (items.len > 0 && yh_buf_append(&ev, items.data, items.len) != 0) {
        eo.oom = 1;
    }
    rc = eo.oom ? YH_ENOMEM : fsm__auto_event_push(&r, "_History", &ev);
    if (rc == 0) {
        rc = fsm__rec_save(c, FSM_TBL_AUTO, id, strlen(id), &r);
    }
    if (rc == 0) {
        msgpack_pack_int64(fsm__field(c, "Due"), due);
        msgpack_pack_int64(fsm__field(c, "Missed"), missed);
        msgpack_pack_array(fsm__field(c, "Results"), fi.n);
        if (items.len > 0 &&
            yh_buf_append(&c->fields_buf, items.data, items.len) != 0) {
            c->fields.oom = 1;
        }
    }
out:
    fsm__rec_free(&r);
    yh_buf_release(&items);
    yh_buf_release(&ev);
    return rc;
}

/* ---- the leader ---- */

int fsm__timer_tick(struct fsm *f,
                    MDB_txn *txn,
                    uint64_t now_ns,
                    fsm_propose_cb *cb,
                    void *arg)
{
    int64_t now = (int64_t)(now_ns / 1000000000u);
    struct yh_buf args = YH_BUF_INIT;
    struct fsm_rec r;
    MDB_cursor *cur;
    MDB_val k, v;
    unsigned n = 0;
    int stop = 0;
    int rc;

    rc = mdb_cursor_open(txn, f->dbis[FSM_TBL_AUTO], &cur);
    if (rc != 0) {
        return fsm__mdb_err(f, rc, "open cursor on 'auto'");
    }
    fsm__rec_init(&r);
    k.mv_data = "d";
    k.mv_size = 2; /* "d" \0 */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && !stop && n < FIRES_PER_TICK;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const char *p = k.mv_data;
        char id[FSM_ID_SIZE], num[21];
        int64_t due, latest, interval;
        struct fsm_out o;
        if (k.mv_size < 24 || p[0] != 'd' || p[1] != '\0') {
            break;
        }
        memcpy(num, p + 2, 20);
        num[20] = '\0';
        due = strtoll(num, NULL, 10);
        if (due > now) {
            break; /* the index is in due order */
        }
        if (k.mv_size - 23 >= sizeof id) {
            continue;
        }
        memcpy(id, p + 23, k.mv_size - 23);
        id[k.mv_size - 23] = '\0';
        if (fsm__rec_load(f, txn, FSM_TBL_AUTO, id, strlen(id), &r) != 0) {
            continue;
        }
        interval = fsm__rec_i(&r, "Interval");
        latest = due;
        if (interval > 0) {
            latest = due + (now - due) / interval * interval;
        }
        yh_buf_reset(&args);
        fsm__out_init(&o, &args);
        msgpack_pack_map(&o.pk, 2);
        yh_mp_pack_kv_str(&o.pk, "TimerID", id);
        yh_mp_pack_kv_int(&o.pk, "Due", latest);
        stop = o.oom
                   ? YH_ENOMEM
                   : fsm__auto_propose("_TimerFire", fsm__rec_s(&r, "TenantID"),
                                       now_ns, &args, cb, arg);
        n++;
    }
    fsm__rec_free(&r);
    mdb_cursor_close(cur);
    yh_buf_release(&args);
    if (stop != 0) {
        return stop;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(f, rc, "read 'auto'");
    }
    return 0;
}
