/* Client connections: read, frame, dispatch, gather output, write.
 *
 * Output produced while handling one loop iteration is appended to
 * conn->out and written with one uv_write at the end of the iteration
 * (api__flush_all, from the cluster's tick), so a pipelining client gets
 * its responses in few syscalls.
 *
 * Lifetime: a connection holds one reference while open and one per call
 * in flight; calls outlive a closed connection and drop their answer. The
 * memory goes when the close callback has run and the last call is done.
 *
 * Backpressure: reading stops while too many calls are in flight or too
 * much output is buffered, and resumes when they drain. */
#include "server_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/wire/prescan.h"
#include "fsm/base/log.h"

YH_LOG_MODULE("conn");

#define MAX_INFLIGHT 4096u
#define MAX_OUT (16u << 20)
#define MAX_OUT_WATCH (64u << 20)

struct write_req
{
    uv_write_t req;
    struct api_conn *conn;
    uint8_t *data;
    size_t len;
};

static void conn_free(struct api_conn *conn)
{
    api_frame_reader_release(&conn->rd);
    yh_buf_release(&conn->out);
    free(conn);
}

void api__conn_unref(struct api_conn *conn)
{
    if (--conn->refs == 0) {
        conn_free(conn);
    }
}

static void on_closed(uv_handle_t *h)
{
    struct api_conn *conn = h->data;

    conn->closed = 1;
    api__conn_unref(conn);
}

void api__conn_close(struct api_conn *conn)
{
    struct api_server *s = conn->s;

    if (conn->closing) {
        return;
    }
    conn->closing = 1;
    api__watch_remove(conn);
    if (conn->prev != NULL) {
        conn->prev->next = conn->next;
    } else {
        s->conns = conn->next;
    }
    if (conn->next != NULL) {
        conn->next->prev = conn->prev;
    }
    conn->next = conn->prev = NULL;
    uv_close((uv_handle_t *)&conn->tcp, on_closed);
}

static void update_backpressure(struct api_conn *conn);

void api__watch_add(struct api_conn *conn)
{
    struct api_server *s = conn->s;

    if (conn->watching) {
        return;
    }
    conn->watching = 1;
    conn->watch_prev_conn = NULL;
    conn->watch_next_conn = s->watchers;
    if (s->watchers != NULL) {
        s->watchers->watch_prev_conn = conn;
    }
    s->watchers = conn;
}

void api__watch_remove(struct api_conn *conn)
{
    struct api_server *s = conn->s;

    if (!conn->watching) {
        return;
    }
    conn->watching = 0;
    if (conn->watch_agent) {
        conn->watch_agent = 0;
        s->n_agent_watchers--;
    }
    if (conn->watch_prev_conn != NULL) {
        conn->watch_prev_conn->watch_next_conn = conn->watch_next_conn;
    } else {
        s->watchers = conn->watch_next_conn;
    }
    if (conn->watch_next_conn != NULL) {
        conn->watch_next_conn->watch_prev_conn = conn->watch_prev_conn;
    }
    conn->watch_next_conn = conn->watch_prev_conn = NULL;
}

static void mark_dirty(struct api_conn *conn)
{
    if (!conn->dirty) {
        conn->dirty = 1;
        conn->refs++;
        conn->dirty_next = conn->s->dirty;
        conn->s->dirty = conn;
    }
}

void api__conn_send(struct api_conn *conn, const uint8_t *p, size_t n)
{
    if (conn->closing) {
        return;
    }
    if (yh_buf_append(&conn->out, p, n) != 0) {
        YH_WARN("%s: out of memory for output, closing", conn->peer);
        api__conn_close(conn);
        return;
    }
    if (conn->watching && conn->out.len + conn->writing > MAX_OUT_WATCH) {
        YH_WARN("%s: watch stream too slow, closing", conn->peer);
        api__conn_close(conn);
        return;
    }
    mark_dirty(conn);
}

void api__conn_error(struct api_conn *conn,
                     uint32_t msgid,
                     int code,
                     const char *msg,
                     const char *method)
{
    char action[API_METHOD_SIZE + 16];
    size_t before = conn->out.len;

    if (conn->closing) {
        return;
    }
    snprintf(action, sizeof action, "%sResponse", method ? method : "");
    if (api_frame_pack_error(&conn->out, msgid, code, msg,
                             method ? action : "") != 0) {
        conn->out.len = before;
        api__conn_close(conn);
        return;
    }
    mark_dirty(conn);
}

void api__conn_result(struct api_conn *conn,
                      uint32_t msgid,
                      const uint8_t *res,
                      size_t len)
{
    size_t before = conn->out.len;

    if (conn->closing) {
        return;
    }
    if (api_frame_pack_result(&conn->out, msgid, res, len) != 0) {
        conn->out.len = before;
        api__conn_close(conn);
        return;
    }
    mark_dirty(conn);
}

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = req->data;
    struct api_conn *conn = w->conn;

    conn->writing -= w->len;
    free(w->data);
    free(w);
    if (status != 0 && !conn->closing) {
        api__conn_close(conn);
    } else if (!conn->closing) {
        update_backpressure(conn);
    }
    api__conn_unref(conn);
}

static void conn_flush(struct api_conn *conn)
{
    struct write_req *w;
    uv_buf_t b;
    int rv;

    if (conn->closing || conn->out.len == 0) {
        goto out;
    }
    w = malloc(sizeof *w);
    if (w == NULL) {
        api__conn_close(conn);
        goto out;
    }
    w->conn = conn;
    w->data = yh_buf_steal(&conn->out, &w->len);
    w->req.data = w;
    b = uv_buf_init((char *)w->data, (unsigned)w->len);
    conn->refs++;
    conn->writing += w->len;
    rv = uv_write(&w->req, (uv_stream_t *)&conn->tcp, &b, 1, on_write);
    if (rv != 0) {
        conn->writing -= w->len;
        free(w->data);
        free(w);
        conn->refs--;
        api__conn_close(conn);
        goto out;
    }
out:
    if (conn->close_after_flush && !conn->closing) {
        api__conn_close(conn);
    }
}

void api__flush_all(struct api_server *s)
{
    struct api_conn *list = s->dirty;

    s->dirty = NULL;
    while (list != NULL) {
        struct api_conn *conn = list;
        list = conn->dirty_next;
        conn->dirty = 0;
        conn->dirty_next = NULL;
        conn_flush(conn);
        if (!conn->closing) {
            update_backpressure(conn);
        }
        api__conn_unref(conn);
    }
    api__fwd_flush(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    /* Freed in on_read after the bytes were copied into the reader. */
    buf->base = malloc(65536);
    buf->len = buf->base != NULL ? 65536 : 0;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct api_conn *conn = stream->data;
    char errmsg[YH_ERRMSG_SIZE];
    const uint8_t *msg;
    size_t len;
    int rc;

    if (nread < 0) {
        free(buf->base);
        api__conn_close(conn);
        return;
    }
    if (nread == 0) {
        free(buf->base);
        return;
    }
    rc = api_frame_reader_feed(&conn->rd, buf->base, (size_t)nread);
    free(buf->base);
    if (rc != 0) {
        api__conn_close(conn);
        return;
    }
    conn->refs++; /* dispatch may close the connection */
    while (!conn->closing && !conn->close_after_flush) {
        rc =
            api_frame_reader_next(&conn->rd, &msg, &len, errmsg, sizeof errmsg);
        if (rc == YH_EAGAIN) {
            break;
        }
        if (rc != 0) {
            /* The stream cannot be resynchronised: answer with msgid 0 (no
             * msgid is known) and close once the answer is out. */
            static struct yh_ratelimit rl = YH_RATELIMIT_INIT(10, 10);
            YH_WARN_RL(&rl, "%s: %s, closing", conn->peer, errmsg);
            api__conn_error(conn, 0, rc, errmsg, NULL);
            conn->close_after_flush = 1;
            break;
        }
        api__dispatch(conn, msg, len);
    }
    update_backpressure(conn);
    api__conn_unref(conn);
}

static void update_backpressure(struct api_conn *conn)
{
    int over =
        conn->refs > MAX_INFLIGHT || conn->out.len + conn->writing > MAX_OUT;

    if (conn->closing) {
        return;
    }
    if (over && !conn->paused) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->paused = 1;
    } else if (!over && conn->paused) {
        conn->paused = 0;
        uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
    }
}

static void peer_name(uv_tcp_t *tcp, char *out, size_t size)
{
    struct sockaddr_storage ss;
    int n = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &n) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            uv_ip4_name(in, host, sizeof host);
            port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(in6, host, sizeof host);
            port = ntohs(in6->sin6_port);
        }
    }
    snprintf(out, size, "%s:%d", host, port);
}

void api__conn_accept(struct api_server *s)
{
    struct api_conn *conn = calloc(1, sizeof *conn);

    if (conn == NULL) {
        return;
    }
    conn->s = s;
    conn->refs = 1;
    api_frame_reader_init(&conn->rd, s->cfg.max_message, API_MAX_DEPTH);
    yh_buf_init(&conn->out);
    uv_tcp_init(s->loop, &conn->tcp);
    conn->tcp.data = conn;
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&conn->tcp) !=
        0) {
        conn->closing = 1;
        uv_close((uv_handle_t *)&conn->tcp, on_closed);
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    peer_name(&conn->tcp, conn->peer, sizeof conn->peer);
    conn->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = conn;
    }
    s->conns = conn;
    uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
}
