/* Operation log: one record per applied entry, rejections and malformed
 * commands included, keyed by log index. It is what `yunhan audit`,
 * DescribeOperationLog and the Watch stream show: who did what, when, from
 * where, and with what result. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

/* Drop up to two of the oldest records at or below @upto: two per apply
 * outpace the one each apply adds, so the table stays at oplog_keep
 * records even when some log indexes carry no record (raft
 * configuration entries). */
static int oplog_trim(struct fsm *f, MDB_txn *txn, uint64_t upto)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int owned;
    int rc = fsm__wcursor(f, txn, FSM_TBL_OPLOG, &cur, &owned);

    if (rc != 0) {
        return rc;
    }
    for (int i = 0; i < 2; i++) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (rc != 0) {
            rc = rc == MDB_NOTFOUND ? 0 : fsm__mdb_err(f, rc, "trim 'oplog'");
            break;
        }
        if (k.mv_size != 8 || fsm__be64_get(k.mv_data) > upto) {
            break;
        }
        rc = fsm__cursor_del(f, FSM_TBL_OPLOG, cur);
        if (rc != 0) {
            break;
        }
    }
    if (owned) {
        mdb_cursor_close(cur);
    }
    return rc;
}

int fsm__oplog_put(struct fsm_ctx *c,
                   const struct fsm_env *env,
                   const char *type,
                   uint64_t index,
                   int code,
                   const char *msg,
                   const char *resource_id,
                   struct yh_buf *rec)
{
    char rid[FSM_KEY_SIZE];
    struct fsm_out o;
    uint8_t key[8];
    int rc;
    int concerns;
    int purged;
    int gone;

    yh_strlcpy(rid, resource_id, sizeof rid);
    if (rid[0] == '\0' && env->args != NULL) {
        /* A rejected modification still names what it was about. */
        const msgpack_object *v = yh_mp_get(env->args, "ResourceID");
        if (v != NULL && v->type == MSGPACK_OBJECT_STR &&
            v->via.str.size < sizeof rid &&
            memchr(v->via.str.ptr, '\0', v->via.str.size) == NULL) {
            memcpy(rid, v->via.str.ptr, v->via.str.size);
            rid[v->via.str.size] = '\0';
        }
    }
    concerns = code == 0 && c->n_concerns > 0;
    purged = code == 0 && c->n_purged > 0;
    gone = code == 0 && c->gone_host[0] != '\0';
    yh_buf_reset(rec);
    fsm__out_init(&o, rec);
    msgpack_pack_map(
        &o.pk, 10 + (concerns ? 1 : 0) + (purged ? 1 : 0) + (gone ? 1 : 0));
    yh_mp_pack_str(&o.pk, "Index");
    msgpack_pack_uint64(&o.pk, index);
    yh_mp_pack_str(&o.pk, "Time");
    msgpack_pack_uint64(&o.pk, env->time_ns / 1000000000u);
    yh_mp_pack_kv_str(&o.pk, "Action", type);
    yh_mp_pack_kv_str(&o.pk, "UserID", env->actor.user_id);
    yh_mp_pack_kv_str(&o.pk, "TenantID", env->actor.tenant_id);
    yh_mp_pack_kv_str(&o.pk, "Source", env->src);
    yh_mp_pack_kv_str(&o.pk, "ResourceID", rid);
    yh_mp_pack_kv_str(&o.pk, "RequestToken", env->token);
    yh_mp_pack_kv_int(&o.pk, "RetCode", code);
    yh_mp_pack_kv_str(&o.pk, "Message", msg);
    if (concerns) {
        /* machines whose agents' spec changed too (gw.c fsm__concern) */
        yh_mp_pack_str(&o.pk, "Concerns");
        msgpack_pack_array(&o.pk, c->n_concerns);
        if (c->concerns.oom || yh_buf_append(rec, c->concerns_buf.data,
                                             c->concerns_buf.len) != 0) {
            return YH_ENOMEM;
        }
    }
    if (purged) {
        /* deleted with ResourceID (a disk's snapshots, a machine's boot
         * disk): DescribeOperationLog finds the record by these too, and
         * the hosts in Gone get a tombstone for each */
        yh_mp_pack_str(&o.pk, "Purged");
        msgpack_pack_array(&o.pk, c->n_purged);
        if (c->purged.oom ||
            yh_buf_append(rec, c->purged_buf.data, c->purged_buf.len) != 0) {
            return YH_ENOMEM;
        }
    }
    if (gone) {
        /* the hosts of a purged machine: its record is gone, they are
         * told from this list (WatchCommands) */
        yh_mp_pack_str(&o.pk, "Gone");
        msgpack_pack_array(&o.pk, c->gone_host2[0] != '\0' ? 2 : 1);
        yh_mp_pack_str(&o.pk, c->gone_host);
        if (c->gone_host2[0] != '\0') {
            yh_mp_pack_str(&o.pk, c->gone_host2);
        }
    }
    if (o.oom) {
        return YH_ENOMEM;
    }
    fsm__be64_put(key, index);
    rc = fsm__put(c->f, c->txn, FSM_TBL_OPLOG, key, 8, rec->data, rec->len);
    if (rc == 0 && index > c->f->oplog_keep) {
        rc = oplog_trim(c->f, c->txn, index - c->f->oplog_keep);
    }
    return rc;
}

uint64_t fsm_oplog_floor(struct fsm *f)
{
    uint64_t applied = f->applied;

    return applied > f->oplog_keep ? applied - f->oplog_keep + 1 : 1;
}

int fsm_oplog_walk(struct fsm *f,
                   uint64_t from_index,
                   unsigned max,
                   fsm_oplog_cb *cb,
                   void *arg)
{
    MDB_cursor *cur;
    MDB_txn *txn;
    MDB_val k, v;
    uint8_t key[8];
    unsigned n = 0;
    int rc;

    rc = fsm__rtxn_begin(f, &txn);
    if (rc != 0) {
        return rc;
    }
    rc = mdb_cursor_open(txn, f->dbis[FSM_TBL_OPLOG], &cur);
    if (rc != 0) {
        rc = fsm__mdb_err(f, rc, "open cursor on 'oplog'");
        goto out;
    }
    fsm__be64_put(key, from_index);
    k.mv_data = key;
    k.mv_size = 8;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && n < max;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8) {
            continue;
        }
        n++;
        if (cb(arg, fsm__be64_get(k.mv_data), v.mv_data, v.mv_size) != 0) {
            break;
        }
    }
    if (rc == MDB_NOTFOUND || rc == 0) {
        rc = 0;
    } else {
        rc = fsm__mdb_err(f, rc, "read 'oplog'");
    }
    mdb_cursor_close(cur);
out:
    fsm__rtxn_end(f, txn);
    return rc;
}

struct oplog_filter
{
    int64_t begin, end;          /* unix s, inclusive */
    int has_begin, has_end;      /* given */
    char user[FSM_ID_SIZE];      /* UserID ("" = any) */
    char resource[FSM_KEY_SIZE]; /* ResourceID ("" = any) */
    char action[64];             /* Action ("" = any) */
    int64_t retcode;             /* RetCode */
    int has_retcode;             /* given */
};

static int str_is(const msgpack_object *m, const char *key, const char *want)
{
    const msgpack_object *v = yh_mp_get(m, key);

    return v != NULL && yh_mp_eq(v, want);
}

/* Whether string array @key of @m holds @want. */
static int list_has(const msgpack_object *m, const char *key, const char *want)
{
    const msgpack_object *l = yh_mp_get(m, key);

    if (l == NULL || l->type != MSGPACK_OBJECT_ARRAY) {
        return 0;
    }
    for (uint32_t i = 0; i < l->via.array.size; i++) {
        if (yh_mp_eq(&l->via.array.ptr[i], want)) {
            return 1;
        }
    }
    return 0;
}

static int oplog_match(const struct fsm_ctx *c,
                       const struct oplog_filter *q,
                       const msgpack_object *r)
{
    uint64_t t = fsm__rec_u64(r, "Time");
    const msgpack_object *rc;

    if (!c->actor->admin && (c->actor->tenant_id[0] == '\0' ||
                             !str_is(r, "TenantID", c->actor->tenant_id))) {
        return 0;
    }
    if (q->has_begin && t < (uint64_t)q->begin) {
        return 0;
    }
    if (q->has_end && t > (uint64_t)q->end) {
        return 0;
    }
    if (q->user[0] != '\0' && !str_is(r, "UserID", q->user)) {
        return 0;
    }
    if (q->resource[0] != '\0' && !str_is(r, "ResourceID", q->resource) &&
        !list_has(r, "Purged", q->resource)) {
        return 0;
    }
    if (q->action[0] != '\0' && !str_is(r, "Action", q->action)) {
        return 0;
    }
    if (q->has_retcode) {
        rc = yh_mp_get(r, "RetCode");
        if (rc == NULL || rc->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            rc->via.u64 != (uint64_t)q->retcode) {
            return 0;
        }
    }
    return 1;
}

int fsm__oplog_describe(struct fsm_ctx *c)
{
    struct yh_buf items = YH_BUF_INIT;
    uint64_t offset, limit, total = 0, n_items = 0;
    struct oplog_filter q;
    int unfiltered;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    memset(&q, 0, sizeof q);
    if ((rc = fsm__arg_int(c, "BeginTime", 0, 0, INT64_MAX, &q.begin,
                           &q.has_begin)) != 0 ||
        (rc = fsm__arg_int(c, "EndTime", 0, 0, INT64_MAX, &q.end,
                           &q.has_end)) != 0 ||
        (rc = fsm__arg_str(c, "UserID", 0, sizeof q.user - 1, q.user, NULL)) !=
            0 ||
        (rc = fsm__arg_str(c, "ResourceID", 0, sizeof q.resource - 1,
                           q.resource, NULL)) != 0 ||
        (rc = fsm__arg_str(c, "Action", 0, sizeof q.action - 1, q.action,
                           NULL)) != 0 ||
        (rc = fsm__arg_int(c, "RetCode", 0, 0, 100000, &q.retcode,
                           &q.has_retcode)) != 0 ||
        (rc = fsm__arg_page(c, &offset, &limit)) != 0) {
        return rc;
    }

    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_OPLOG], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on 'oplog'");
    }
    unfiltered = c->actor->admin && !q.has_begin && !q.has_end &&
                 !q.has_retcode && q.user[0] == '\0' && q.resource[0] == '\0' &&
                 q.action[0] == '\0';
    if (unfiltered) {
        /* The administrator paging through everything: count from the
         * table's stats and read only the page, not the whole log. */
        MDB_stat st;
        rc = mdb_stat(c->txn, c->f->dbis[FSM_TBL_OPLOG], &st);
        if (rc != 0) {
            mdb_cursor_close(cur);
            return fsm__mdb_err(c->f, rc, "stat 'oplog'");
        }
        total = st.ms_entries;
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        for (uint64_t i = 0; rc == 0 && i < offset; i++) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
        }
        for (; rc == 0 && n_items < limit;
             rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
            if (yh_buf_append(&items, v.mv_data, v.mv_size) != 0) {
                rc = YH_ENOMEM;
                break;
            }
            n_items++;
        }
        if (rc == 0) {
            rc = MDB_NOTFOUND; /* page full: done */
        }
    }
    /* Newest first. */
    for (rc = unfiltered ? rc : mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        msgpack_unpacked u;
        int match;
        msgpack_unpacked_init(&u);
        if (fsm__mp_decode(v.mv_data, v.mv_size, &u) != 0) {
            msgpack_unpacked_destroy(&u);
            snprintf(c->f->errmsg, sizeof c->f->errmsg,
                     "'oplog' record is corrupt");
            rc = YH_ECORRUPT;
            break;
        }
        match = oplog_match(c, &q, &u.data);
        msgpack_unpacked_destroy(&u);
        if (!match) {
            continue;
        }
        if (total >= offset && n_items < limit) {
            if (yh_buf_append(&items, v.mv_data, v.mv_size) != 0) {
                rc = YH_ENOMEM;
                break;
            }
            n_items++;
        }
        total++;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) {
        rc = 0;
    } else if (rc != YH_ECORRUPT && rc != YH_ENOMEM) {
        rc = fsm__mdb_err(c->f, rc, "read 'oplog'");
    }
    if (rc == 0) {
        msgpack_pack_array(fsm__field(c, "Infos"), (uint32_t)n_items);
        if (items.len > 0 &&
            yh_buf_append(&c->fields_buf, items.data, items.len) != 0) {
            c->fields.oom = 1;
        }
        msgpack_pack_uint64(fsm__field(c, "TotalCount"), total);
    }
    yh_buf_release(&items);
    return rc;
}
