/* Forwarding from a follower to the leader.
 *
 * One TCP connection to the leader's API address, opened on demand and
 * replaced when the leader changes. Each call is sent as
 *   [0, fwd_msgid, "_Forward", [{Method, Request: bin, Source, UserID,
 *                                TenantID, Admin, Mac}]]
 * and the leader's answer (error or result map) is relayed to the client
 * under the client's msgid.
 *
 * Failure: if the connection cannot be established nothing was executed
 * (YH_EUNAVAIL, the client retries). If it breaks after requests were
 * written, forwarded writes end with YH_EUNKNOWN (they may have happened)
 * and reads with YH_EUNAVAIL. */
#include "server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/wire/prescan.h"
#include "fsm/base/crypto.h"
#include "fsm/base/log.h"
#include "fsm/base/mp.h"

YH_LOG_MODULE("forward");

int api__forward_mac(const char *secret,
                     const char *method,
                     const char *src,
                     const struct fsm_actor *actor,
                     const uint8_t *raw,
                     size_t len,
                     char out[65])
{
    uint8_t md[YH_SHA256_SIZE];
    const char *admin = actor->admin ? "1\n" : "0\n";
    struct yh_part parts[] = {
        {method, strlen(method)},
        {"\n", 1},
        {src, strlen(src)},
        {"\n", 1},
        {actor->user_id, strlen(actor->user_id)},
        {"\n", 1},
        {actor->tenant_id, strlen(actor->tenant_id)},
        {"\n", 1},
        {admin, 2},
        {raw, len},
    };
    int rc = yh_hmac_sha256(secret, strlen(secret), parts,
                            sizeof parts / sizeof parts[0], md);

    if (rc == 0) {
        yh_hex(md, YH_SHA256_SIZE, out);
    }
    return rc;
}

static void fwd_on_closed(uv_handle_t *h)
{
    struct api_fwd *f = h->data;

    api_frame_reader_release(&f->rd);
    yh_buf_release(&f->out);
    free(f->slots);
    free(f);
}

/* Fail every call on @f and close it. @was_up: bytes may have reached the
 * leader. */
static void fwd_fail(struct api_fwd *f, int was_up)
{
    struct api_server *s = f->s;

    if (f->state == 2) {
        return;
    }
    f->state = 2;
    if (s->fwd == f) {
        s->fwd = NULL;
    }
    for (unsigned i = 0; i < API_FWD_SLOTS && f->n_inflight > 0; i++) {
        struct api_call *call = f->slots[i];
        if (call == NULL) {
            continue;
        }
        f->slots[i] = NULL;
        f->n_inflight--;
        if (was_up && call->is_write) {
            api__call_error(call, YH_EUNKNOWN, NULL);
        } else {
            api__call_error(call, YH_EUNAVAIL, "leader unreachable, retry");
        }
    }
    uv_close((uv_handle_t *)&f->tcp, fwd_on_closed);
}

void api__fwd_close(struct api_server *s, int status)
{
    (void)status;
    if (s->fwd != NULL) {
        fwd_fail(s->fwd, 1);
    }
}

static void fwd_on_write(uv_write_t *req, int status)
{
    struct api_fwd *f = req->handle->data;

    free(req->data);
    free(req);
    if (status != 0 && f->state != 2) {
        fwd_fail(f, 1);
    }
}

static void fwd_write(struct api_fwd *f)
{
    uv_write_t *req;
    uv_buf_t b;
    size_t len;

    if (f->state != 1 || f->out.len == 0) {
        return;
    }
    req = malloc(sizeof *req);
    if (req == NULL) {
        fwd_fail(f, 1);
        return;
    }
    req->data = yh_buf_steal(&f->out, &len);
    b = uv_buf_init(req->data, (unsigned)len);
    if (uv_write(req, (uv_stream_t *)&f->tcp, &b, 1, fwd_on_write) != 0) {
        free(req->data);
        free(req);
        fwd_fail(f, 1);
    }
}

void api__fwd_check(struct api_server *s)
{
    char leader[64];
    uint64_t lid = 0;

    if (s->fwd == NULL || s->fwd->n_inflight == 0) {
        return;
    }
    /* Requests forwarded to a node that no longer leads will not be
     * answered until it notices: answer them now (writes: outcome unknown,
     * reads: unavailable) so clients retry with the new leader. */
    if (cluster_is_leader(s->cluster) ||
        cluster_leader_api(s->cluster, &lid, leader) != 0 ||
        strcmp(leader, s->fwd->addr) != 0) {
        fwd_fail(s->fwd, 1);
    }
}

void api__fwd_flush(struct api_server *s)
{
    if (s->fwd != NULL) {
        fwd_write(s->fwd);
    }
}

static void fwd_relay(struct api_fwd *f, const struct api_msg *m)
{
    struct api_call *call = f->slots[m->msgid % API_FWD_SLOTS];
    const msgpack_object *o;
    struct yh_buf res = YH_BUF_INIT;
    msgpack_packer pk;

    if (call == NULL || call->fwd_msgid != m->msgid) {
        return; /* answer to a call that already failed */
    }
    f->slots[m->msgid % API_FWD_SLOTS] = NULL;
    f->n_inflight--;
    o = m->error != NULL && m->error->type != MSGPACK_OBJECT_NIL ? m->error
                                                                 : m->result;
    if (o == NULL || o->type != MSGPACK_OBJECT_MAP) {
        api__call_error(call, YH_EPROTO, "bad answer from the leader");
        return;
    }
    msgpack_packer_init(&pk, &res, yh_buf_msgpack_write);
    msgpack_pack_object(&pk, *o);
    api__call_result(call, res.data, res.len);
    yh_buf_release(&res);
}

static void fwd_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = malloc(65536);
    buf->len = buf->base != NULL ? 65536 : 0;
}

static void fwd_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct api_fwd *f = stream->data;
    struct api_server *s = f->s;
    char errmsg[YH_ERRMSG_SIZE];
    const uint8_t *msg;
    size_t len;
    int rc;

    if (nread <= 0) {
        free(buf->base);
        if (nread < 0) {
            fwd_fail(f, 1);
        }
        return;
    }
    rc = api_frame_reader_feed(&f->rd, buf->base, (size_t)nread);
    free(buf->base);
    if (rc != 0) {
        fwd_fail(f, 1);
        return;
    }
    while (f->state == 1) {
        struct api_msg m;
        int known = 0;

        rc = api_frame_reader_next(&f->rd, &msg, &len, errmsg, sizeof errmsg);
        if (rc == YH_EAGAIN) {
            break;
        }
        msgpack_zone_clear(&s->zone);
        if (rc != 0 ||
            api_frame_decode(msg, len, &s->zone, &m, &known, errmsg,
                             sizeof errmsg) != 0 ||
            m.type != API_MSG_RESPONSE) {
            YH_WARN("bad message from leader %s: %s", f->addr, errmsg);
            fwd_fail(f, 1);
            return;
        }
        fwd_relay(f, &m);
    }
}

static void fwd_on_connect(uv_connect_t *req, int status)
{
    struct api_fwd *f = req->data;

    if (f->state == 2) {
        return;
    }
    if (status != 0) {
        YH_WARN("cannot reach leader %s: %s", f->addr, uv_strerror(status));
        fwd_fail(f, 0);
        return;
    }
    f->state = 1;
    uv_tcp_nodelay(&f->tcp, 1);
    uv_read_start((uv_stream_t *)&f->tcp, fwd_alloc, fwd_on_read);
    fwd_write(f);
}

static int parse_addr(const char *addr, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    size_t n;

    if (colon == NULL || (n = (size_t)(colon - addr)) >= sizeof host) {
        return YH_EINVAL;
    }
    memcpy(host, addr, n);
    host[n] = '\0';
    return uv_ip4_addr(host, atoi(colon + 1), sa) == 0 ? 0 : YH_EINVAL;
}

static struct api_fwd *fwd_open(struct api_server *s, const char *addr)
{
    struct api_fwd *f = calloc(1, sizeof *f);
    struct sockaddr_in sa;

    if (f == NULL) {
        return NULL;
    }
    f->slots = calloc(API_FWD_SLOTS, sizeof *f->slots);
    if (f->slots == NULL || parse_addr(addr, &sa) != 0) {
        free(f->slots);
        free(f);
        return NULL;
    }
    f->s = s;
    snprintf(f->addr, sizeof f->addr, "%s", addr);
    api_frame_reader_init(&f->rd, 64u << 20, API_MAX_DEPTH);
    yh_buf_init(&f->out);
    uv_tcp_init(s->loop, &f->tcp);
    f->tcp.data = f;
    f->connect.data = f;
    if (uv_tcp_connect(&f->connect, &f->tcp, (struct sockaddr *)&sa,
                       fwd_on_connect) != 0) {
        f->state = 2;
        uv_close((uv_handle_t *)&f->tcp, fwd_on_closed);
        return NULL;
    }
    return f;
}

int api__forward(struct api_server *s, struct api_call *call, const char *src)
{
    struct api_fwd *f;
    char leader[64];
    char mac[65];
    uint64_t lid = 0;
    struct yh_buf req = YH_BUF_INIT;
    msgpack_packer pk;
    int rc;

    if (s->cfg.cluster_secret[0] == '\0') {
        return YH_EUNAVAIL;
    }
    if (cluster_leader_api(s->cluster, &lid, leader) != 0) {
        return YH_EUNAVAIL;
    }
    if (s->fwd != NULL && strcmp(s->fwd->addr, leader) != 0) {
        fwd_fail(s->fwd, 1);
    }
    if (s->fwd == NULL) {
        s->fwd = fwd_open(s, leader);
        if (s->fwd == NULL) {
            return YH_EUNAVAIL;
        }
    }
    f = s->fwd;
    call->fwd_msgid = f->next_msgid++;
    if (f->slots[call->fwd_msgid % API_FWD_SLOTS] != NULL) {
        return YH_EBUSY;
    }
    rc = api__forward_mac(s->cfg.cluster_secret, call->method, src,
                          &call->actor, call->raw.data, call->raw.len, mac);
    if (rc != 0) {
        return rc;
    }
    msgpack_packer_init(&pk, &req, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, call->auth.len > 0 ? 8 : 7);
    yh_mp_pack_kv_str(&pk, "Method", call->method);
    yh_mp_pack_str(&pk, "Request");
    msgpack_pack_bin(&pk, call->raw.len);
    msgpack_pack_bin_body(&pk, call->raw.data, call->raw.len);
    yh_mp_pack_kv_str(&pk, "Source", src);
    yh_mp_pack_kv_str(&pk, "UserID", call->actor.user_id);
    yh_mp_pack_kv_str(&pk, "TenantID", call->actor.tenant_id);
    yh_mp_pack_str(&pk, "Admin");
    if (call->actor.admin) {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
    }
    yh_mp_pack_kv_str(&pk, "Mac", mac);
    if (call->auth.len > 0) {
        /* Raw auth map: the leader authenticates (see dispatch.c). */
        yh_mp_pack_str(&pk, "Auth");
        yh_buf_append(&req, call->auth.data, call->auth.len);
    }
    rc = api_frame_pack_request(&f->out, call->fwd_msgid, "_Forward", req.data,
                                req.len, NULL, 0, NULL);
    yh_buf_release(&req);
    if (rc != 0) {
        return rc;
    }
    f->slots[call->fwd_msgid % API_FWD_SLOTS] = call;
    f->n_inflight++;
    return 0;
}
