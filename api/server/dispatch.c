/* Request routing.
 *
 *   decode -> (auth: HMAC over the raw request, key from the fsm) ->
 *   admin check -> by kind:
 *     CLUSTER  DescribeCluster / Watch served here; TransferLeader,
 *              AddNode, RemoveNode on the leader (forwarded otherwise)
 *     READ     "stale": fsm_query now; else barrier on the leader, then
 *              fsm_query (forwarded from followers)
 *     WRITE    leader: fsm_cmd_prepare stamps time/IDs/secrets into an
 *              envelope, cluster_submit batches it into raft; the entry's
 *              result is the answer (forwarded from followers)
 *
 * A forwarded request ("_Forward") carries the actor the follower
 * authenticated, under an HMAC with the cluster secret; the leader trusts
 * it and never forwards again. */
#include "server_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "api/wire/auth.h"
#include "api/wire/prescan.h"
#include "fsm/base/log.h"
#include "fsm/base/mp.h"

YH_LOG_MODULE("dispatch");

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- calls ------------------------------------------------------------- */

static struct api_call *call_new(struct api_conn *conn,
                                 uint32_t msgid,
                                 const char *method,
                                 const struct fsm_actor *actor)
{
    struct api_call *call = calloc(1, sizeof *call);

    if (call == NULL) {
        return NULL;
    }
    call->s = conn->s;
    call->conn = conn;
    call->msgid = msgid;
    snprintf(call->method, sizeof call->method, "%s", method);
    call->actor = *actor;
    yh_buf_init(&call->raw);
    yh_buf_init(&call->auth);
    conn->refs++;
    return call;
}

void api__call_free(struct api_call *call)
{
    if (call->conn != NULL) {
        api__conn_unref(call->conn);
    }
    yh_buf_release(&call->raw);
    yh_buf_release(&call->auth);
    free(call);
}

void api__call_result(struct api_call *call, const uint8_t *res, size_t len)
{
    if (call->conn != NULL) {
        api__conn_result(call->conn, call->msgid, res, len);
    }
    api__call_free(call);
}

void api__call_error(struct api_call *call, int code, const char *msg)
{
    if (call->conn != NULL) {
        api__conn_error(call->conn, call->msgid, code,
                        msg != NULL ? msg : yh_strerror(code), call->method);
    }
    api__call_free(call);
}

/* ---- result helpers ---------------------------------------------------- */

/* Append one string pair to an encoded map (rewrites its header). */
static int map_add_str(struct yh_buf *out,
                       const uint8_t *map,
                       size_t len,
                       const char *key,
                       const char *val)
{
    msgpack_packer pk;
    uint32_t n;
    size_t hdr;

    if (len == 0) {
        return YH_EPROTO;
    }
    if ((map[0] & 0xf0) == 0x80) {
        n = map[0] & 0x0f;
        hdr = 1;
    } else if (map[0] == 0xde && len >= 3) {
        n = (uint32_t)map[1] << 8 | map[2];
        hdr = 3;
    } else if (map[0] == 0xdf && len >= 5) {
        n = (uint32_t)map[1] << 24 | (uint32_t)map[2] << 16 |
            (uint32_t)map[3] << 8 | map[4];
        hdr = 5;
    } else {
        return YH_EPROTO;
    }
    msgpack_packer_init(&pk, out, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, n + 1);
    if (yh_buf_append(out, map + hdr, len - hdr) != 0) {
        return YH_ENOMEM;
    }
    yh_mp_pack_kv_str(&pk, key, val);
    return 0;
}

static void serve_query(struct api_call *call,
                        const msgpack_object *request,
                        int stale)
{
    struct api_server *s = call->s;
    struct yh_buf res = YH_BUF_INIT;
    struct yh_buf out = YH_BUF_INIT;
    int rc;

    rc = fsm_query(cluster_fsm(s->cluster), call->method, request, &call->actor,
                   &res);
    if (rc != 0) {
        api__call_error(call, rc, NULL);
    } else if (stale && map_add_str(&out, res.data, res.len, "Consistency",
                                    "stale") == 0) {
        api__call_result(call, out.data, out.len);
    } else {
        api__call_result(call, res.data, res.len);
    }
    yh_buf_release(&res);
    yh_buf_release(&out);
}

/* Decode call->raw (a request map pre-scanned when it arrived). */
static int decode_raw(struct api_call *call,
                      msgpack_zone *zone,
                      msgpack_object *obj)
{
    size_t off = 0;

    if (msgpack_unpack((const char *)call->raw.data, call->raw.len, &off, zone,
                       obj) != MSGPACK_UNPACK_SUCCESS) {
        return YH_EPROTO;
    }
    return 0;
}

static void read_barrier_cb(void *arg, int status)
{
    struct api_call *call = arg;
    msgpack_zone zone;
    msgpack_object obj;

    if (status != 0) {
        api__call_error(call, status, NULL);
        return;
    }
    msgpack_zone_init(&zone, 2048);
    if (decode_raw(call, &zone, &obj) != 0) {
        api__call_error(call, YH_EPROTO, NULL);
    } else {
        serve_query(call, &obj, 0);
    }
    msgpack_zone_destroy(&zone);
}

static void write_cb(void *arg, int status, const uint8_t *result, size_t len)
{
    struct api_call *call = arg;

    if (status != 0) {
        api__call_error(call, status, NULL);
        return;
    }
    api__call_result(call, result, len);
}

static void admin_cb(void *arg, int status, const char *message)
{
    struct api_call *call = arg;
    struct yh_buf res = YH_BUF_INIT;
    msgpack_packer pk;
    char action[API_METHOD_SIZE + 16];

    if (status != 0) {
        api__call_error(call, status, message);
        return;
    }
    snprintf(action, sizeof action, "%sResponse", call->method);
    msgpack_packer_init(&pk, &res, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 3);
    yh_mp_pack_kv_int(&pk, "RetCode", 0);
    yh_mp_pack_kv_str(&pk, "Action", action);
    yh_mp_pack_kv_str(&pk, "Message", message != NULL ? message : "");
    api__call_result(call, res.data, res.len);
    yh_buf_release(&res);
}

/* ---- the request path -------------------------------------------------- */

struct req_ctx
{
    struct api_conn *conn;
    uint32_t msgid;
    const char *method;
    const msgpack_object *request;
    const uint8_t *raw;
    size_t raw_len;
    const char *src;
    struct fsm_actor actor;
    int forwarded; /* came from a follower: never forward again */
};

static void reply_error(struct req_ctx *r, int code, const char *msg)
{
    api__conn_error(r->conn, r->msgid, code, msg, r->method);
}

static struct api_call *ctx_call(struct req_ctx *r, int copy_raw)
{
    struct api_call *call = call_new(r->conn, r->msgid, r->method, &r->actor);

    if (call == NULL) {
        reply_error(r, YH_ENOMEM, NULL);
        return NULL;
    }
    if (copy_raw && yh_buf_append(&call->raw, r->raw, r->raw_len) != 0) {
        api__call_free(call);
        reply_error(r, YH_ENOMEM, NULL);
        return NULL;
    }
    return call;
}

/* Forward to the leader, or answer "no leader". */
static void route_to_leader(struct req_ctx *r, int is_write)
{
    struct api_call *call;
    int rc;

    if (r->forwarded) {
        reply_error(r, YH_EUNAVAIL, "not the leader any more, retry");
        return;
    }
    call = ctx_call(r, 1);
    if (call == NULL) {
        return;
    }
    call->is_write = is_write;
    rc = api__forward(r->conn->s, call, r->src);
    if (rc != 0) {
        api__call_error(call, rc,
                        rc == YH_EUNAVAIL ? "no leader known, retry" : NULL);
    }
}

/* A write whose stamp hashes a password: prepared on the libuv thread
 * pool, proposed back on the loop. */
struct slow_prep
{
    uv_work_t req;
    struct slow_prep *next; /* waiting list */
    struct api_call *call;  /* owns the request bytes (call->raw) */
    struct fsm *f;
    char src[64];
    uint64_t time_ns;
    uint64_t tag;
    struct yh_buf env;
    struct yh_buf res;
    int rc;
};

static void slow_prep_work(uv_work_t *req)
{
    struct slow_prep *w = req->data;
    msgpack_unpacked u;

    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)w->call->raw.data,
                            w->call->raw.len, NULL) != MSGPACK_UNPACK_SUCCESS) {
        w->rc = YH_EPROTO;
    } else {
        w->rc = fsm_cmd_prepare_off_loop(w->f, w->call->method, &u.data,
                                         &w->call->actor, w->src, w->time_ns,
                                         w->tag, &w->env, &w->res);
    }
    msgpack_unpacked_destroy(&u);
}

static void slow_prep_done(uv_work_t *req, int status);

/* Start waiting password writes while workers are free. */
static void slow_prep_pump(struct api_server *s)
{
    while (s->slow_head != NULL && s->slow_running < API_SLOW_MAX) {
        struct slow_prep *w = s->slow_head;
        s->slow_head = w->next;
        if (s->slow_head == NULL) {
            s->slow_tail = NULL;
        }
        if (uv_queue_work(s->loop, &w->req, slow_prep_work, slow_prep_done) !=
            0) {
            api__call_error(w->call, YH_EINTERNAL, NULL);
            free(w);
            continue;
        }
        s->slow_running++;
    }
}

static void slow_prep_done(uv_work_t *req, int status)
{
    struct slow_prep *w = req->data;
    struct api_call *call = w->call;
    struct api_server *s = call->s;
    int rc = status != 0 ? YH_EINTERNAL : w->rc;

    s->slow_running--;

    if (rc != 0) {
        api__call_error(call, rc, NULL);
    } else if (w->env.len == 0) {
        api__call_result(call, w->res.data, w->res.len);
    } else if (s->closing || !cluster_is_leader(s->cluster)) {
        /* nothing was proposed: a plain retry is safe */
        api__call_error(call, YH_EUNAVAIL, "not the leader any more, retry");
    } else {
        rc = cluster_submit(s->cluster, w->env.data, w->env.len, w->tag,
                            write_cb, call);
        if (rc != 0) {
            api__call_error(call, rc, NULL);
        }
    }
    if (w->res.data != NULL) {
        OPENSSL_cleanse(w->res.data, w->res.cap);
    }
    yh_buf_release(&w->env);
    yh_buf_release(&w->res);
    free(w);
    if (s->closing) {
        api__server_unref(s); /* may free s */
        return;
    }
    slow_prep_pump(s);
}

void api__slow_fail_waiting(struct api_server *s)
{
    while (s->slow_head != NULL) {
        struct slow_prep *w = s->slow_head;
        s->slow_head = w->next;
        api__call_error(w->call, YH_EUNAVAIL, "server closing");
        free(w);
    }
    s->slow_tail = NULL;
}

static void do_write_slow(struct req_ctx *r)
{
    struct api_server *s = r->conn->s;
    struct slow_prep *w = calloc(1, sizeof *w);

    if (w == NULL) {
        reply_error(r, YH_ENOMEM, NULL);
        return;
    }
    w->call = ctx_call(r, 1);
    if (w->call == NULL) {
        free(w);
        return;
    }
    w->call->is_write = 1;
    w->f = cluster_fsm(s->cluster);
    snprintf(w->src, sizeof w->src, "%s", r->src != NULL ? r->src : "");
    w->time_ns = now_ns();
    w->tag = cluster_next_tag(s->cluster);
    w->req.data = w;
    if (s->slow_tail != NULL) {
        s->slow_tail->next = w;
    } else {
        s->slow_head = w;
    }
    s->slow_tail = w;
    slow_prep_pump(s);
}

static void do_write(struct req_ctx *r)
{
    struct api_server *s = r->conn->s;
    struct yh_buf env = YH_BUF_INIT;
    struct yh_buf res = YH_BUF_INIT;
    struct api_call *call;
    uint64_t tag;
    int rc;

    if (!cluster_is_leader(s->cluster)) {
        route_to_leader(r, 1);
        return;
    }
    if (fsm_cmd_uses_kdf(r->request)) {
        do_write_slow(r);
        return;
    }
    tag = cluster_next_tag(s->cluster);
    rc = fsm_cmd_prepare(cluster_fsm(s->cluster), r->method, r->request,
                         &r->actor, r->src, now_ns(), tag, &env, &res);
    if (rc != 0) {
        reply_error(r, rc, NULL);
        goto out;
    }
    if (env.len == 0) {
        /* Rejected before proposing (bad parameter, wrong password). */
        api__conn_result(r->conn, r->msgid, res.data, res.len);
        goto out;
    }
    call = ctx_call(r, 0);
    if (call == NULL) {
        goto out;
    }
    call->is_write = 1;
    rc = cluster_submit(s->cluster, env.data, env.len, tag, write_cb, call);
    if (rc != 0) {
        api__call_error(call, rc, NULL);
    }
out:
    yh_buf_release(&env);
    yh_buf_release(&res);
}

static void do_read(struct req_ctx *r, int stale)
{
    struct api_server *s = r->conn->s;
    struct api_call *call;
    int rc;

#ifdef YH_UNSAFE_STALE_READS
    /* Positive control for jepsen; never build production with it: every
     * read is served from this node's local state, without a barrier and
     * without forwarding, and without the "Consistency: stale" marker, so
     * a read on a lagging or partitioned node returns stale data as if it
     * were linearizable (`make yunhand-unsafe`). */
    call = ctx_call(r, 0);
    if (call != NULL) {
        serve_query(call, r->request, 0);
    }
    return;
#endif
    if (stale) {
        call = ctx_call(r, 0);
        if (call != NULL) {
            serve_query(call, r->request, 1);
        }
        return;
    }
    if (!cluster_is_leader(s->cluster)) {
        route_to_leader(r, 0);
        return;
    }
    call = ctx_call(r, 1);
    if (call == NULL) {
        return;
    }
    rc = cluster_barrier(s->cluster, read_barrier_cb, call);
    if (rc != 0) {
        api__call_error(call, rc, NULL);
    }
}

static void describe_cluster(struct req_ctx *r)
{
    struct api_server *s = r->conn->s;
    struct yh_buf res = YH_BUF_INIT;
    struct yh_buf body = YH_BUF_INIT;
    msgpack_packer pk;
    unsigned n;

    msgpack_packer_init(&pk, &body, yh_buf_msgpack_write);
    n = cluster_describe_pack(s->cluster, &pk);
    msgpack_packer_init(&pk, &res, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, n + 3);
    yh_mp_pack_kv_int(&pk, "RetCode", 0);
    yh_mp_pack_kv_str(&pk, "Action", "DescribeClusterResponse");
    yh_mp_pack_kv_str(&pk, "Message", "");
    if (yh_buf_append(&res, body.data, body.len) != 0) {
        reply_error(r, YH_ENOMEM, NULL);
    } else {
        api__conn_result(r->conn, r->msgid, res.data, res.len);
    }
    yh_buf_release(&res);
    yh_buf_release(&body);
}

/* Watch: answer, then stream the operation log from FromIndex (backfill
 * from the fsm, then live events from api__watch_event). */
struct watch_walk
{
    struct api_conn *conn;
    uint64_t last;
};

static int watch_walk_cb(void *arg,
                         uint64_t index,
                         const uint8_t *rec,
                         size_t len)
{
    struct watch_walk *w = arg;
    struct yh_buf out = YH_BUF_INIT;

    if (api_frame_pack_notify(&out, "Watch", rec, len) == 0) {
        api__conn_send(w->conn, out.data, out.len);
    }
    yh_buf_release(&out);
    w->last = index;
    return w->conn->closing;
}

/* Start a notification stream on this connection: check it has none,
 * read FromIndex (default: the next index) and answer. Returns 0 with
 * *from set, or -1 after answering an error. @host: the HostID to echo
 * (WatchCommands) or NULL. */
static int stream_begin(struct req_ctx *r,
                        const char *action,
                        const char *what,
                        const char *host,
                        int64_t *from)
{
    struct fsm *f = cluster_fsm(r->conn->s->cluster);
    struct yh_buf res = YH_BUF_INIT;
    msgpack_packer pk;
    char text[64];
    int rc;

    if (r->conn->watching) {
        reply_error(r, YH_ESTATE, "this connection already streams");
        return -1;
    }
    *from = 1;
    rc = yh_mp_int(r->request, "FromIndex", from);
    if (rc == YH_EMISSING) {
        *from = (int64_t)fsm_applied_index(f) + 1;
    } else if (rc != 0 || *from < 1) {
        reply_error(r, YH_EINVAL, "FromIndex must be a positive integer");
        return -1;
    } else if ((uint64_t)*from < fsm_oplog_floor(f)) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "FromIndex %" PRId64
                 " is older than the operation log kept "
                 "online (from index %" PRIu64
                 "); older history is in the "
                 "command-log archive (yunhan audit)",
                 *from, fsm_oplog_floor(f));
        reply_error(r, YH_EINVAL, msg);
        return -1;
    }
    snprintf(text, sizeof text, "streaming %s notifications", what);
    msgpack_packer_init(&pk, &res, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, host != NULL ? 5 : 4);
    yh_mp_pack_kv_int(&pk, "RetCode", 0);
    yh_mp_pack_kv_str(&pk, "Action", action);
    yh_mp_pack_kv_str(&pk, "Message", text);
    yh_mp_pack_kv_int(&pk, "FromIndex", *from);
    if (host != NULL) {
        yh_mp_pack_kv_str(&pk, "HostID", host);
    }
    api__conn_result(r->conn, r->msgid, res.data, res.len);
    yh_buf_release(&res);
    return 0;
}

static void do_watch(struct req_ctx *r)
{
    struct api_server *s = r->conn->s;
    struct fsm *f = cluster_fsm(s->cluster);
    struct watch_walk w;
    int64_t from;
    int rc;

    if (stream_begin(r, "WatchResponse", "Watch", NULL, &from) != 0) {
        return;
    }
    fsm_flush(f);
    w.conn = r->conn;
    w.last = (uint64_t)from - 1;
    api__watch_add(r->conn);
    /* Backfill in bounded steps; the stream closes if the client cannot
     * keep up (see api__conn_send). */
    for (;;) {
        uint64_t before = w.last;
        rc = fsm_oplog_walk(f, w.last + 1, 4096, watch_walk_cb, &w);
        if (rc != 0 || w.last == before || r->conn->closing) {
            break;
        }
    }
    r->conn->watch_next = w.last + 1;
}

/* The resources an oplog record names for the agents: its ResourceID, then
 * the machines listed in its Concerns (their network changed with it, see
 * fsm/gw.c). @fn gets each; non-zero from it stops. */
typedef int agent_res_fn(void *arg, const char *resource);

static int agent_resources(const msgpack_object *rec,
                           agent_res_fn *fn,
                           void *arg)
{
    const msgpack_object *l = yh_mp_get(rec, "Concerns");
    char resource[FSM_ID_SIZE];
    int rc = 0;

    if (yh_mp_strcpy(rec, "ResourceID", resource, sizeof resource) == 0 &&
        resource[0] != '\0') {
        rc = fn(arg, resource);
    }
    if (l == NULL || l->type != MSGPACK_OBJECT_ARRAY) {
        return rc;
    }
    for (uint32_t i = 0; rc == 0 && i < l->via.array.size; i++) {
        const msgpack_object *v = &l->via.array.ptr[i];
        if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 ||
            v->via.str.size >= sizeof resource) {
            continue;
        }
        memcpy(resource, v->via.str.ptr, v->via.str.size);
        resource[v->via.str.size] = '\0';
        rc = fn(arg, resource);
    }
    return rc;
}

struct agent_queue_arg
{
    struct api_server *s;
    uint64_t index;
    char action[API_METHOD_SIZE];
    char resource[FSM_ID_SIZE]; /* the record's ResourceID (for Gone) */
    char gone[FSM_ID_SIZE];     /* "" but while queueing a Gone host */
};

static int agent_queue_one(void *arg, const char *resource)
{
    struct agent_queue_arg *q = arg;
    struct api_server *s = q->s;
    struct api_agent_ev *ev;

    if (s->n_agent_evs == s->cap_agent_evs) {
        unsigned cap = s->cap_agent_evs ? 2 * s->cap_agent_evs : 256;
        struct api_agent_ev *p = realloc(s->agent_evs, cap * sizeof *p);
        if (p == NULL) {
            return 1; /* agents reconcile level-triggered from Generation */
        }
        s->agent_evs = p;
        s->cap_agent_evs = cap;
    }
    ev = &s->agent_evs[s->n_agent_evs++];
    ev->index = q->index;
    memcpy(ev->action, q->action, sizeof ev->action);
    snprintf(ev->resource, sizeof ev->resource, "%s", resource);
    snprintf(ev->gone, sizeof ev->gone, "%s", q->gone);
    return 0;
}

/* Each ID string in the list @key of an oplog record (others skipped):
 * "Gone", the hosts that lost a machine (the record was purged), and
 * "Purged", the records deleted with its ResourceID (a disk's snapshots, a
 * machine's boot disk). Non-zero from @fn stops. */
static int agent_list(const msgpack_object *rec,
                      const char *key,
                      agent_res_fn *fn,
                      void *arg)
{
    const msgpack_object *l = yh_mp_get(rec, key);
    char id[FSM_ID_SIZE];
    int rc = 0;

    if (l == NULL || l->type != MSGPACK_OBJECT_ARRAY) {
        return 0;
    }
    for (uint32_t i = 0; rc == 0 && i < l->via.array.size; i++) {
        const msgpack_object *v = &l->via.array.ptr[i];
        if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 ||
            v->via.str.size >= sizeof id) {
            continue;
        }
        memcpy(id, v->via.str.ptr, v->via.str.size);
        id[v->via.str.size] = '\0';
        rc = fn(arg, id);
    }
    return rc;
}

static int agent_gone(const msgpack_object *rec, agent_res_fn *fn, void *arg)
{
    return agent_list(rec, "Gone", fn, arg);
}

static int agent_purged(const msgpack_object *rec, agent_res_fn *fn, void *arg)
{
    return agent_list(rec, "Purged", fn, arg);
}

/* ResourceType of a tombstone: the agent-realised kinds, and the disks and
 * snapshots deleted with a purge. */
static const char *tombstone_type(const char *resource)
{
    const char *t = fsm_host_resource_type(resource);

    if (t[0] != '\0') {
        return t;
    }
    if (strncmp(resource, "bsi-", 4) == 0) {
        return "Disk";
    }
    if (strncmp(resource, "snap-", 5) == 0) {
        return "Snapshot";
    }
    return "";
}

/* The notification that a purged machine or a deleted or purged gateway is
 * gone, or a disk or snapshot deleted with a purge (its "Purged" list):
 * its spec is a tombstone ({ResourceID, ResourceType ("VM", "NATGW",
 * "LB", "VPNGateway", "Disk", "Snapshot"), HostID, DesiredState and State
 * "Deleted", Generation = the index of the delete or purge}): the host
 * destroys what realised it and its local state. */
static int agent_tombstone(uint64_t index,
                           const char *action,
                           const char *resource,
                           const char *host,
                           struct yh_buf *out)
{
    struct yh_buf ev = YH_BUF_INIT;
    msgpack_packer pk;
    int rc;

    msgpack_packer_init(&pk, &ev, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 4);
    yh_mp_pack_kv_int(&pk, "Index", (int64_t)index);
    yh_mp_pack_kv_str(&pk, "Action", action);
    yh_mp_pack_kv_str(&pk, "ResourceID", resource);
    yh_mp_pack_str(&pk, "Spec");
    msgpack_pack_map(&pk, 6);
    yh_mp_pack_kv_str(&pk, "ResourceID", resource);
    yh_mp_pack_kv_str(&pk, "ResourceType", tombstone_type(resource));
    yh_mp_pack_kv_str(&pk, "HostID", host);
    yh_mp_pack_kv_str(&pk, "DesiredState", "Deleted");
    yh_mp_pack_kv_str(&pk, "State", "Deleted");
    yh_mp_pack_kv_int(&pk, "Generation", (int64_t)index);
    rc = api_frame_pack_notify(out, "WatchCommands", ev.data, ev.len);
    yh_buf_release(&ev);
    return rc;
}

static int agent_queue_gone(void *arg, const char *host)
{
    struct agent_queue_arg *q = arg;

    snprintf(q->gone, sizeof q->gone, "%s", host);
    return agent_queue_one(arg, q->resource);
}

/* A record deleted with the purge: a tombstone to each host in Gone. */
struct agent_queue_purged
{
    struct agent_queue_arg *q;
    const msgpack_object *rec;
};

static int agent_queue_purged_one(void *arg, const char *id)
{
    struct agent_queue_purged *p = arg;

    snprintf(p->q->resource, sizeof p->q->resource, "%s", id);
    return agent_gone(p->rec, agent_queue_gone, p->q);
}

/* Queue an applied change for the WatchCommands streams (one entry per
 * resource it names); resolved against committed state in
 * api__agent_flush at the end of the iteration. */
static void agent_queue(struct api_server *s,
                        uint64_t index,
                        const uint8_t *event,
                        size_t len)
{
    struct agent_queue_arg q;
    msgpack_unpacked u;

    q.s = s;
    q.index = index;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)event, len, NULL) ==
        MSGPACK_UNPACK_SUCCESS) {
        if (yh_mp_strcpy(&u.data, "Action", q.action, sizeof q.action) != 0) {
            q.action[0] = '\0';
        }
        q.gone[0] = '\0';
        agent_resources(&u.data, agent_queue_one, &q);
        if (yh_mp_strcpy(&u.data, "ResourceID", q.resource,
                         sizeof q.resource) == 0 &&
            q.resource[0] != '\0') {
            struct agent_queue_purged p = {&q, &u.data};
            agent_gone(&u.data, agent_queue_gone, &q);
            agent_purged(&u.data, agent_queue_purged_one, &p);
        }
    }
    msgpack_unpacked_destroy(&u);
}

/* Notification for one resource's change if it concerns a host: 0 with
 * @host, @also (a second host, "" if none: a machine being migrated) and
 * @out filled, or YH_ENOTFOUND. */
static int agent_notify(struct api_server *s,
                        uint64_t index,
                        const char *action,
                        const char *resource,
                        char host[FSM_ID_SIZE],
                        char also[FSM_ID_SIZE],
                        struct yh_buf *out)
{
    struct yh_buf spec = YH_BUF_INIT;
    struct yh_buf ev = YH_BUF_INIT;
    msgpack_packer pk;
    int rc =
        fsm_host_spec2(cluster_fsm(s->cluster), resource, host, also, &spec);

    if (rc == 0) {
        msgpack_packer_init(&pk, &ev, yh_buf_msgpack_write);
        msgpack_pack_map(&pk, 4);
        yh_mp_pack_kv_int(&pk, "Index", (int64_t)index);
        yh_mp_pack_kv_str(&pk, "Action", action);
        yh_mp_pack_kv_str(&pk, "ResourceID", resource);
        yh_mp_pack_str(&pk, "Spec");
        rc = yh_buf_append(&ev, spec.data, spec.len);
        if (rc == 0) {
            rc = api_frame_pack_notify(out, "WatchCommands", ev.data, ev.len);
        }
    }
    yh_buf_release(&spec);
    yh_buf_release(&ev);
    return rc;
}

void api__agent_flush(struct api_server *s)
{
    struct yh_buf out = YH_BUF_INIT;
    char host[FSM_ID_SIZE], also[FSM_ID_SIZE];
    unsigned i = 0;

    while (i < s->n_agent_evs && s->n_agent_watchers > 0) {
        /* the entries of one index (a change and the machines it
         * concerns) all go out before the streams move past it */
        uint64_t index = s->agent_evs[i].index;
        for (; i < s->n_agent_evs && s->agent_evs[i].index == index; i++) {
            struct api_agent_ev *ev = &s->agent_evs[i];
            yh_buf_reset(&out);
            if (ev->gone[0] != '\0') {
                if (agent_tombstone(ev->index, ev->action, ev->resource,
                                    ev->gone, &out) != 0) {
                    continue;
                }
                snprintf(host, sizeof host, "%s", ev->gone);
                also[0] = '\0';
            } else if (agent_notify(s, ev->index, ev->action, ev->resource,
                                    host, also, &out) != 0) {
                continue;
            }
            for (struct api_conn *c = s->watchers; c != NULL;) {
                struct api_conn *next = c->watch_next_conn;
                if (c->watch_agent && index >= c->watch_next &&
                    (strcmp(c->watch_host, host) == 0 ||
                     (also[0] != '\0' && strcmp(c->watch_host, also) == 0))) {
                    api__conn_send(c, out.data, out.len);
                }
                c = next;
            }
        }
        for (struct api_conn *c = s->watchers; c != NULL;
             c = c->watch_next_conn) {
            if (c->watch_agent && index >= c->watch_next) {
                c->watch_next = index + 1;
            }
        }
    }
    s->n_agent_evs = 0;
    yh_buf_release(&out);
}

void api__watch_event(void *arg,
                      uint64_t index,
                      const uint8_t *event,
                      size_t len)
{
    struct api_server *s = arg;
    struct yh_buf out = YH_BUF_INIT;

    if (s->n_agent_watchers > 0) {
        agent_queue(s, index, event, len);
    }
    for (struct api_conn *c = s->watchers; c != NULL;) {
        struct api_conn *next = c->watch_next_conn;
        if (!c->watch_agent && index >= c->watch_next) {
            if (out.len == 0 &&
                api_frame_pack_notify(&out, "Watch", event, len) != 0) {
                break;
            }
            c->watch_next = index + 1;
            api__conn_send(c, out.data, out.len);
        }
        c = next;
    }
    yh_buf_release(&out);
}

/* WatchCommands: like Watch, for one host, each change carrying the
 * resource's full desired spec. */
struct agent_walk
{
    struct api_conn *conn;
    uint64_t last;
};

struct agent_walk_one
{
    struct agent_walk *w;
    uint64_t index;
    const char *action;
    char resource[FSM_ID_SIZE]; /* the record's ResourceID (for Gone) */
};

static int agent_walk_gone(void *arg, const char *host)
{
    struct agent_walk_one *o = arg;
    struct api_conn *conn = o->w->conn;
    struct yh_buf out = YH_BUF_INIT;

    if (strcmp(host, conn->watch_host) == 0 &&
        agent_tombstone(o->index, o->action, o->resource, host, &out) == 0) {
        api__conn_send(conn, out.data, out.len);
    }
    yh_buf_release(&out);
    return conn->closing;
}

/* A record deleted with the purge: its tombstone if the stream's host is
 * in Gone. */
struct agent_walk_purged
{
    struct agent_walk_one *o;
    const msgpack_object *rec;
};

static int agent_walk_purged_one(void *arg, const char *id)
{
    struct agent_walk_purged *p = arg;

    snprintf(p->o->resource, sizeof p->o->resource, "%s", id);
    return agent_gone(p->rec, agent_walk_gone, p->o);
}

static int agent_walk_one(void *arg, const char *resource)
{
    struct agent_walk_one *o = arg;
    struct api_conn *conn = o->w->conn;
    struct yh_buf out = YH_BUF_INIT;
    char host[FSM_ID_SIZE], also[FSM_ID_SIZE];

    if (agent_notify(conn->s, o->index, o->action, resource, host, also,
                     &out) == 0 &&
        (strcmp(host, conn->watch_host) == 0 ||
         (also[0] != '\0' && strcmp(also, conn->watch_host) == 0))) {
        api__conn_send(conn, out.data, out.len);
    }
    yh_buf_release(&out);
    return conn->closing;
}

static int agent_walk_cb(void *arg,
                         uint64_t index,
                         const uint8_t *rec,
                         size_t len)
{
    struct agent_walk *w = arg;
    char action[API_METHOD_SIZE];
    struct agent_walk_one o = {w, index, action, ""};
    msgpack_unpacked u;

    w->last = index;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)rec, len, NULL) ==
        MSGPACK_UNPACK_SUCCESS) {
        if (yh_mp_strcpy(&u.data, "Action", action, sizeof action) != 0) {
            action[0] = '\0';
        }
        agent_resources(&u.data, agent_walk_one, &o);
        if (yh_mp_strcpy(&u.data, "ResourceID", o.resource,
                         sizeof o.resource) == 0 &&
            o.resource[0] != '\0') {
            struct agent_walk_purged p = {&o, &u.data};
            agent_gone(&u.data, agent_walk_gone, &o);
            agent_purged(&u.data, agent_walk_purged_one, &p);
        }
    }
    msgpack_unpacked_destroy(&u);
    return w->conn->closing;
}

static void do_watch_commands(struct req_ctx *r)
{
    struct api_server *s = r->conn->s;
    struct fsm *f = cluster_fsm(s->cluster);
    struct agent_walk w;
    int64_t from;
    int rc;

    if (!fsm_actor_is_host(&r->actor)) {
        reply_error(r, YH_EPERM,
                    "permission denied: WatchCommands is for executor (host) "
                    "credentials");
        return;
    }
    if (stream_begin(r, "WatchCommandsResponse", "WatchCommands",
                     r->actor.user_id, &from) != 0) {
        return;
    }
    snprintf(r->conn->watch_host, sizeof r->conn->watch_host, "%s",
             r->actor.user_id);
    fsm_flush(f);
    w.conn = r->conn;
    w.last = (uint64_t)from - 1;
    for (;;) {
        uint64_t before = w.last;
        rc = fsm_oplog_walk(f, w.last + 1, 4096, agent_walk_cb, &w);
        if (rc != 0 || w.last == before || r->conn->closing) {
            break;
        }
    }
    if (r->conn->closing) {
        return;
    }
    api__watch_add(r->conn);
    r->conn->watch_agent = 1;
    s->n_agent_watchers++;
    r->conn->watch_next = w.last + 1;
}

/* WaitJob: on the leader, after a barrier, poll the job every 50 ms until
 * it leaves "Running" or the timeout passes. */
#define WAIT_JOB_POLL_MS 50
#define WAIT_JOB_MAX_S 300

struct wait_job
{
    struct api_call *call; /* NULL once answered */
    uv_timer_t timer;
    uint64_t deadline; /* uv_now ms */
};

static void wait_job_closed(uv_handle_t *h)
{
    free(h->data);
}

static void wait_job_finish(struct wait_job *w)
{
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, wait_job_closed);
}

/* 1 when the wait is over (call answered or dropped), 0 to keep waiting. */
static int wait_job_poll(struct wait_job *w)
{
    struct api_call *call = w->call;
    struct api_server *s = call->s;
    struct yh_buf req = YH_BUF_INIT;
    struct yh_buf res = YH_BUF_INIT;
    struct yh_buf out = YH_BUF_INIT;
    msgpack_packer pk;
    msgpack_unpacked u;
    const msgpack_object *infos;
    const msgpack_object *state;
    int done = 1;
    int timed_out = uv_now(s->loop) >= w->deadline;

    msgpack_unpacked_init(&u);
    if (call->conn == NULL || call->conn->closing || s->closing) {
        api__call_free(call);
        goto out;
    }
    msgpack_packer_init(&pk, &req, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 1);
    yh_mp_pack_kv_str(&pk, "JobIDs.0", (const char *)call->raw.data);
    if (msgpack_unpack_next(&u, (const char *)req.data, req.len, NULL) !=
            MSGPACK_UNPACK_SUCCESS ||
        fsm_query(cluster_fsm(s->cluster), "DescribeJob", &u.data, &call->actor,
                  &res) != 0) {
        api__call_error(call, YH_EINTERNAL, NULL);
        goto out;
    }
    if (api_frame_result_retcode(res.data, res.len) != 0) {
        api__call_result(call, res.data, res.len);
        goto out;
    }
    msgpack_unpacked_destroy(&u);
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)res.data, res.len, NULL) !=
        MSGPACK_UNPACK_SUCCESS) {
        api__call_error(call, YH_EINTERNAL, NULL);
        goto out;
    }
    infos = yh_mp_get(&u.data, "Infos");
    if (infos == NULL || infos->type != MSGPACK_OBJECT_ARRAY ||
        infos->via.array.size == 0) {
        api__call_error(call, YH_ENOTFOUND, "no such job");
        goto out;
    }
    state = yh_mp_get(&infos->via.array.ptr[0], "State");
    if (state != NULL && yh_mp_eq(state, "Running") && !timed_out) {
        done = 0;
        goto out;
    }
    msgpack_packer_init(&pk, &out, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 5);
    yh_mp_pack_kv_int(&pk, "RetCode", 0);
    yh_mp_pack_kv_str(&pk, "Action", "WaitJobResponse");
    yh_mp_pack_kv_str(&pk, "Message", timed_out ? "timed out" : "");
    yh_mp_pack_str(&pk, "Info");
    msgpack_pack_object(&pk, infos->via.array.ptr[0]);
    yh_mp_pack_str(&pk, "TimedOut");
    if (timed_out) {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
    }
    api__call_result(call, out.data, out.len);
out:
    if (done) {
        w->call = NULL;
    }
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&req);
    yh_buf_release(&res);
    yh_buf_release(&out);
    return done;
}

static void wait_job_tick(uv_timer_t *t)
{
    struct wait_job *w = t->data;

    if (wait_job_poll(w)) {
        wait_job_finish(w);
    }
}

static void wait_job_barrier_cb(void *arg, int status)
{
    struct wait_job *w = arg;

    if (status != 0) {
        api__call_error(w->call, status, NULL);
        w->call = NULL;
        wait_job_finish(w);
        return;
    }
    if (wait_job_poll(w)) {
        wait_job_finish(w);
        return;
    }
    uv_timer_start(&w->timer, wait_job_tick, WAIT_JOB_POLL_MS,
                   WAIT_JOB_POLL_MS);
}

static void do_wait_job(struct req_ctx *r)
{
    struct api_server *s = r->conn->s;
    char job[FSM_ID_SIZE];
    int64_t timeout = 30;
    struct wait_job *w;
    int rc;

    if (!cluster_is_leader(s->cluster)) {
        route_to_leader(r, 0);
        return;
    }
    rc = yh_mp_strcpy(r->request, "JobID", job, sizeof job);
    if (rc != 0) {
        reply_error(r, rc,
                    rc == YH_EMISSING ? "missing parameter 'JobID'"
                                      : "invalid parameter 'JobID'");
        return;
    }
    rc = yh_mp_int(r->request, "Timeout", &timeout);
    if ((rc != 0 && rc != YH_EMISSING) || timeout < 0 ||
        timeout > WAIT_JOB_MAX_S) {
        reply_error(r, YH_EINVAL,
                    "invalid parameter 'Timeout': 0..300 seconds");
        return;
    }
    w = calloc(1, sizeof *w);
    if (w == NULL) {
        reply_error(r, YH_ENOMEM, NULL);
        return;
    }
    w->call = ctx_call(r, 0);
    if (w->call == NULL) {
        free(w);
        return;
    }
    /* call->raw holds the job ID (NUL-terminated) for the polls. */
    if (yh_buf_append(&w->call->raw, job, strlen(job) + 1) != 0) {
        api__call_error(w->call, YH_ENOMEM, NULL);
        free(w);
        return;
    }
    uv_timer_init(s->loop, &w->timer);
    w->timer.data = w;
    w->deadline = uv_now(s->loop) + (uint64_t)timeout * 1000u;
    rc = cluster_barrier(s->cluster, wait_job_barrier_cb, w);
    if (rc != 0) {
        api__call_error(w->call, rc, NULL);
        w->call = NULL;
        wait_job_finish(w);
    }
}

static int parse_node(struct req_ctx *r, struct fsm_node *node)
{
    int64_t id;
    int rc = yh_mp_int(r->request, "NodeID", &id);

    memset(node, 0, sizeof *node);
    if (rc != 0 || id < 1 || id > 65535) {
        reply_error(r, rc == YH_EMISSING ? YH_EMISSING : YH_EINVAL,
                    "NodeID must be an integer 1..65535");
        return -1;
    }
    node->id = (uint64_t)id;
    return 0;
}

static void do_cluster(struct req_ctx *r)
{
    struct api_server *s = r->conn->s;
    struct api_call *call;
    struct fsm_node node;
    int64_t id = 0;
    int rc;

    if (strcmp(r->method, "DescribeCluster") == 0) {
        describe_cluster(r);
        return;
    }
    if (strcmp(r->method, "Watch") == 0 ||
        strcmp(r->method, "WatchCommands") == 0) {
        if (r->forwarded) {
            /* A stream must stay on the client's own connection; this one
             * was forwarded because its key is not applied there yet. */
            reply_error(r, YH_EUNAVAIL,
                        "the node you called does not know this key yet, "
                        "retry the stream in a moment");
        } else if (r->method[5] == '\0') {
            do_watch(r);
        } else {
            do_watch_commands(r);
        }
        return;
    }
    if (strcmp(r->method, "WaitJob") == 0) {
        do_wait_job(r);
        return;
    }
    if (!cluster_is_leader(s->cluster)) {
        route_to_leader(r, 1);
        return;
    }
    if (strcmp(r->method, "TransferLeader") == 0) {
        rc = yh_mp_int(r->request, "NodeID", &id);
        if ((rc != 0 && rc != YH_EMISSING) || id < 0 || id > 65535) {
            reply_error(r, YH_EINVAL, "NodeID must be an integer 1..65535");
            return;
        }
    } else if (parse_node(r, &node) != 0) {
        return;
    }
    if (strcmp(r->method, "AddNode") == 0) {
        rc = yh_mp_strcpy(r->request, "RaftAddress", node.raft_addr,
                          sizeof node.raft_addr);
        if (rc == 0) {
            rc = yh_mp_strcpy(r->request, "APIAddress", node.api_addr,
                              sizeof node.api_addr);
        }
        if (rc != 0) {
            reply_error(r, rc,
                        "RaftAddress and APIAddress (host:port) are required");
            return;
        }
    }
    call = ctx_call(r, 0);
    if (call == NULL) {
        return;
    }
    if (strcmp(r->method, "TransferLeader") == 0) {
        rc = cluster_transfer(s->cluster, (uint64_t)id, admin_cb, call);
    } else if (strcmp(r->method, "AddNode") == 0) {
        rc = cluster_add_node(s->cluster, &node, admin_cb, call);
    } else if (strcmp(r->method, "RemoveNode") == 0) {
        rc = cluster_remove_node(s->cluster, node.id, admin_cb, call);
    } else {
        rc = YH_EACTION;
    }
    if (rc != 0) {
        api__call_error(call, rc,
                        rc == YH_EBUSY ? "another membership change or "
                                         "transfer is in progress"
                                       : NULL);
    }
}

static void handle(struct req_ctx *r, unsigned flags, enum fsm_action_kind kind)
{
    const msgpack_object *v;
    int stale = 0;

    if ((flags & FSM_ACT_F_ADMIN) && !r->actor.admin) {
        char msg[128];
        snprintf(msg, sizeof msg, "permission denied: %s requires admin",
                 r->method);
        reply_error(r, YH_EPERM, msg);
        return;
    }
    v = yh_mp_get(r->request, "Consistency");
    if (v != NULL && v->type != MSGPACK_OBJECT_NIL) {
        if (yh_mp_eq(v, "stale")) {
            stale = 1;
        } else if (!yh_mp_eq(v, "linearizable")) {
            reply_error(r, YH_EINVAL,
                        "Consistency must be \"linearizable\" or \"stale\"");
            return;
        }
    }
    v = yh_mp_get(r->request, "RequestToken");
    if (v != NULL && v->type != MSGPACK_OBJECT_NIL &&
        (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 ||
         v->via.str.size > 64)) {
        reply_error(r, YH_EINVAL,
                    "RequestToken must be a string of 1..64 "
                    "bytes");
        return;
    }
    switch (kind) {
    case FSM_ACT_WRITE:
        do_write(r);
        break;
    case FSM_ACT_READ:
        do_read(r, stale);
        break;
    case FSM_ACT_CLUSTER:
        do_cluster(r);
        break;
    default:
        reply_error(r, YH_EACTION, NULL);
    }
}

/* Forward a request whose key this node does not know, with the client's
 * auth map: the leader authenticates it. */
static void forward_unauthenticated(struct req_ctx *r,
                                    const msgpack_object *auth)
{
    struct api_call *call = ctx_call(r, 1);
    msgpack_packer pk;
    int rc;

    if (call == NULL) {
        return;
    }
    call->is_write = fsm_action_kind(r->method, NULL) != FSM_ACT_READ;
    msgpack_packer_init(&pk, &call->auth, yh_buf_msgpack_write);
    msgpack_pack_object(&pk, *auth);
    rc = api__forward(r->conn->s, call, r->src);
    if (rc != 0) {
        /* No leader to ask (an election, or a node that joined and holds
         * no state yet): the key may well exist, so this is no definite
         * authentication failure. */
        api__call_error(call, YH_EUNAVAIL,
                        "this node does not know the PublicKey and no "
                        "leader is known to check it; retry");
    }
}

/* Authenticate and handle a request from a client. */
static void client_request(struct api_conn *conn,
                           const struct api_msg *m,
                           const char *method)
{
    struct api_server *s = conn->s;
    struct req_ctx r;
    unsigned flags = 0;
    enum fsm_action_kind kind = fsm_action_kind(method, &flags);
    char errmsg[YH_ERRMSG_SIZE];
    char msg[160];

    memset(&r, 0, sizeof r);
    r.conn = conn;
    r.msgid = m->msgid;
    r.method = method;
    r.request = m->request;
    r.raw = m->request_raw;
    r.raw_len = m->request_raw_len;
    r.src = conn->peer;

    if (kind == FSM_ACT_UNKNOWN) {
        snprintf(msg, sizeof msg, "unknown action '%s'", method);
        reply_error(&r, YH_EACTION, msg);
        return;
    }
    if (m->auth != NULL && m->auth->type != MSGPACK_OBJECT_NIL) {
        char pub[FSM_KEY_SIZE];
        char sig[API_SIG_HEX_SIZE];
        struct fsm_key key;
        int64_t ts;
        int rc;

        rc = api_auth_parse(m->auth, pub, sizeof pub, &ts, sig, errmsg,
                            sizeof errmsg);
        if (rc == 0) {
            rc = fsm_key_get(cluster_fsm(s->cluster), pub, &key);
            if (rc != 0 && !cluster_is_leader(s->cluster)) {
                /* A key created a moment ago may not be applied here yet:
                 * let the leader, which holds every committed key,
                 * authenticate the request. */
                forward_unauthenticated(&r, m->auth);
                return;
            }
            if (rc != 0) {
                snprintf(errmsg, sizeof errmsg, "unknown PublicKey");
                rc = YH_EAUTH;
            }
        }
        if (rc == 0) {
            rc = api_auth_verify(key.private_key, m->method, m->method_len, ts,
                                 m->request_raw, m->request_raw_len, sig,
                                 (int64_t)(now_ns() / 1000000000u),
                                 s->cfg.auth_skew_s, errmsg, sizeof errmsg);
        }
        if (rc != 0) {
            snprintf(msg, sizeof msg, "authentication failed: %s", errmsg);
            reply_error(&r, YH_EAUTH, msg);
            return;
        }
        r.actor = key.actor;
    } else if (!(flags & FSM_ACT_F_ANON)) {
        snprintf(msg, sizeof msg,
                 "authentication required: %s needs a signed request", method);
        reply_error(&r, YH_EAUTH, msg);
        return;
    }
    handle(&r, flags, kind);
}

/* A request forwarded by a follower: check the MAC, then handle it as the
 * actor the follower authenticated. */
static void forwarded_request(struct api_conn *conn, const struct api_msg *m)
{
    struct api_server *s = conn->s;
    const msgpack_object *req = m->request;
    char method[API_METHOD_SIZE];
    char src[64];
    char mac[65];
    char want[65];
    const msgpack_object *raw;
    const msgpack_object *admin;
    const msgpack_object *fauth;
    msgpack_object inner;
    struct req_ctx r;
    unsigned flags = 0;
    enum fsm_action_kind kind;
    char errmsg[YH_ERRMSG_SIZE];
    size_t msg_len = 0;
    size_t off = 0;

    memset(&r, 0, sizeof r);
    r.conn = conn;
    r.msgid = m->msgid;
    r.method = "_Forward";
    raw = yh_mp_get(req, "Request");
    admin = yh_mp_get(req, "Admin");
    if (s->cfg.cluster_secret[0] == '\0' ||
        yh_mp_strcpy(req, "Method", method, sizeof method) != 0 ||
        yh_mp_strcpy(req, "Source", src, sizeof src) != 0 ||
        yh_mp_strcpy(req, "UserID", r.actor.user_id, sizeof r.actor.user_id) !=
            0 ||
        yh_mp_strcpy(req, "TenantID", r.actor.tenant_id,
                     sizeof r.actor.tenant_id) != 0 ||
        yh_mp_strcpy(req, "Mac", mac, sizeof mac) != 0 || raw == NULL ||
        raw->type != MSGPACK_OBJECT_BIN || admin == NULL ||
        admin->type != MSGPACK_OBJECT_BOOLEAN) {
        reply_error(&r, YH_EAUTH, "bad forward");
        return;
    }
    r.actor.admin = admin->via.boolean;
    fauth = yh_mp_get(req, "Auth");
    if (fauth != NULL && fauth->type != MSGPACK_OBJECT_MAP) {
        fauth = NULL;
    }
    if (api__forward_mac(s->cfg.cluster_secret, method, src, &r.actor,
                         (const uint8_t *)raw->via.bin.ptr, raw->via.bin.size,
                         want) != 0 ||
        strlen(mac) != 64 || CRYPTO_memcmp(mac, want, 64) != 0) {
        reply_error(&r, YH_EAUTH, "bad forward signature");
        return;
    }
    if (api_prescan((const uint8_t *)raw->via.bin.ptr, raw->via.bin.size,
                    s->cfg.max_message, API_MAX_DEPTH, &msg_len, errmsg,
                    sizeof errmsg) != 0 ||
        msg_len != raw->via.bin.size ||
        msgpack_unpack(raw->via.bin.ptr, raw->via.bin.size, &off, &s->zone,
                       &inner) != MSGPACK_UNPACK_SUCCESS ||
        inner.type != MSGPACK_OBJECT_MAP) {
        reply_error(&r, YH_EPROTO, "bad forwarded request");
        return;
    }
    kind = fsm_action_kind(method, &flags);
    if (kind == FSM_ACT_UNKNOWN) {
        reply_error(&r, YH_EACTION, NULL);
        return;
    }
    r.method = method;
    r.request = &inner;
    r.raw = (const uint8_t *)raw->via.bin.ptr;
    r.raw_len = raw->via.bin.size;
    r.src = src;
    r.forwarded = 1;
    if (fauth != NULL) {
        /* The follower did not know the key: authenticate here. */
        char pub[FSM_KEY_SIZE];
        char sig[API_SIG_HEX_SIZE];
        char msg[160];
        struct fsm_key key;
        int64_t ts;
        int rc = api_auth_parse(fauth, pub, sizeof pub, &ts, sig, errmsg,
                                sizeof errmsg);
        if (rc == 0 && fsm_key_get(cluster_fsm(s->cluster), pub, &key) != 0) {
            snprintf(errmsg, sizeof errmsg, "unknown PublicKey");
            rc = YH_EAUTH;
        }
        if (rc == 0) {
            rc = api_auth_verify(key.private_key, method, strlen(method), ts,
                                 r.raw, r.raw_len, sig,
                                 (int64_t)(now_ns() / 1000000000u),
                                 s->cfg.auth_skew_s, errmsg, sizeof errmsg);
        }
        if (rc != 0) {
            snprintf(msg, sizeof msg, "authentication failed: %s", errmsg);
            reply_error(&r, YH_EAUTH, msg);
            return;
        }
        r.actor = key.actor;
    }
    handle(&r, flags, kind);
}

void api__dispatch(struct api_conn *conn, const uint8_t *msg, size_t len)
{
    struct api_server *s = conn->s;
    struct api_msg m;
    char errmsg[YH_ERRMSG_SIZE];
    char method[API_METHOD_SIZE];
    int known = 0;
    int rc;

    msgpack_zone_clear(&s->zone);
    rc =
        api_frame_decode(msg, len, &s->zone, &m, &known, errmsg, sizeof errmsg);
    if (rc != 0) {
        api__conn_error(conn, known ? m.msgid : 0, YH_EPROTO, errmsg, NULL);
        conn->close_after_flush = 1;
        return;
    }
    if (m.type != API_MSG_REQUEST) {
        api__conn_error(conn, 0, YH_EPROTO,
                        "only requests are accepted on this port", NULL);
        conn->close_after_flush = 1;
        return;
    }
    if (m.method_len == 0 || m.method_len >= sizeof method ||
        memchr(m.method, '\0', m.method_len) != NULL) {
        api__conn_error(conn, m.msgid, YH_EACTION, "unknown action", NULL);
        return;
    }
    memcpy(method, m.method, m.method_len);
    method[m.method_len] = '\0';
    if (strcmp(method, "_Forward") == 0) {
        forwarded_request(conn, &m);
        return;
    }
    client_request(conn, &m, method);
}
