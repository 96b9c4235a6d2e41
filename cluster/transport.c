/* The raft transport: raft_uv_tcp, with outgoing connections that notice a
 * dead peer in bounded time.
 *
 * raft_uv_tcp connects with no timeout and leaves an established
 * connection to the kernel's defaults. After a network partition that is
 * far too slow (jepsen partition runs): data written to a cut peer sits in
 * TCP retransmission with exponential backoff (0.2, 0.4, ... 12.8 s), and a
 * reconnect's SYNs back off the same way, so after the partition heals a
 * node could not reach a peer for several more seconds. Followers do not
 * talk to each other while they have a leader, so the votes of the next
 * election were stuck behind such a connection: two healthy nodes failed to
 * elect a leader for 5 s (isolate-leader seed 201 before this file).
 *
 * So this transport wraps raft_uv_tcp: listening (and the accept
 * handshake) is raft_uv_tcp's own, but outgoing connections are made here,
 * with the same handshake (protocol 1, server id, padded address; raft
 * 0.15 src/uv_tcp_connect.c) and
 *  - a connect timeout (CONNECT_TIMEOUT_MS): raft_uv retries after
 *    CONNECT_RETRY_MS, so a healed peer is reached within ~1 s;
 *  - TCP_USER_TIMEOUT (USER_TIMEOUT_MS) on the connection: data that stays
 *    unacknowledged that long fails the connection, raft_uv drops it and
 *    reconnects instead of waiting out the backoff. The leader sends a
 *    heartbeat every 100 ms, so a cut link is noticed within ~2 s. A paused
 *    peer's kernel keeps acknowledging until its receive buffer is full;
 *    a connection dropped then is simply re-established (raft tolerates
 *    lost and reordered messages);
 *  - TCP_NODELAY.
 * An address that is not an IPv4 literal goes to raft_uv_tcp unchanged. */
#include "cluster_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fsm/base/log.h"

YH_LOG_MODULE("cluster");

#define CONNECT_TIMEOUT_MS 1000u
#define CONNECT_RETRY_MS 250u
#define USER_TIMEOUT_MS 2000u
#define HANDSHAKE_PROTOCOL 1u

struct tconn
{
    struct cluster *c;
    struct raft_uv_connect *req; /* raft_uv's request */
    uv_tcp_t *tcp;               /* raft_malloc'd: raft_uv frees it */
    uv_connect_t connect;
    uv_write_t write;
    uv_timer_t timer;
    uv_buf_t hs; /* handshake bytes */
    int status;  /* reported to raft_uv on failure */
    int done;    /* answered or failing */
    int n_open;  /* handles still to close before freeing */
    struct tconn *prev, *next;
};

static void maybe_closed(struct cluster *c)
{
    if (c->xclosing && c->xinner_closed && c->xconns == NULL &&
        c->xclose_cb != NULL) {
        raft_uv_transport_close_cb cb = c->xclose_cb;
        c->xclose_cb = NULL;
        cb(&c->xport);
    }
}

static void tconn_free(struct tconn *tc)
{
    struct cluster *c = tc->c;

    if (tc->prev != NULL) {
        tc->prev->next = tc->next;
    } else {
        c->xconns = tc->next;
    }
    if (tc->next != NULL) {
        tc->next->prev = tc->prev;
    }
    free(tc->hs.base);
    free(tc);
    maybe_closed(c);
}

/* Failure path: both handles closed, then raft_uv hears the status. */
static void fail_closed(uv_handle_t *h)
{
    struct tconn *tc = h->data;

    if (--tc->n_open > 0) {
        return;
    }
    raft_free(tc->tcp);
    tc->tcp = NULL;
    tc->req->cb(tc->req, NULL, tc->status);
    tconn_free(tc);
}

static void tconn_fail(struct tconn *tc, int status)
{
    if (tc->done) {
        return;
    }
    tc->done = 1;
    tc->status = status;
    tc->n_open = 2;
    uv_timer_stop(&tc->timer);
    uv_close((uv_handle_t *)tc->tcp, fail_closed);
    uv_close((uv_handle_t *)&tc->timer, fail_closed);
}

/* Success path: the tcp handle went to raft_uv, only the timer is ours. */
static void timer_closed(uv_handle_t *h)
{
    tconn_free(h->data);
}

static void on_write(uv_write_t *w, int status)
{
    struct tconn *tc = w->data;
    uv_stream_t *stream = (uv_stream_t *)tc->tcp;
    uv_os_fd_t fd;

    if (tc->done) {
        return;
    }
    if (status != 0 || tc->c->xclosing) {
        tconn_fail(tc, tc->c->xclosing ? RAFT_CANCELED : RAFT_NOCONNECTION);
        return;
    }
    tc->done = 1;
    if (uv_fileno((uv_handle_t *)tc->tcp, &fd) == 0) {
        unsigned ms = USER_TIMEOUT_MS;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
    }
    uv_timer_stop(&tc->timer);
    tc->tcp->data = NULL;
    tc->tcp = NULL;
    tc->req->cb(tc->req, stream, 0);
    uv_close((uv_handle_t *)&tc->timer, timer_closed);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct tconn *tc = req->data;

    if (tc->done) {
        return;
    }
    if (status != 0) {
        tconn_fail(tc, RAFT_NOCONNECTION);
        return;
    }
    uv_tcp_nodelay(tc->tcp, 1);
    tc->write.data = tc;
    if (uv_write(&tc->write, (uv_stream_t *)tc->tcp, &tc->hs, 1, on_write) !=
        0) {
        tconn_fail(tc, RAFT_NOCONNECTION);
    }
}

static void on_timeout(uv_timer_t *t)
{
    tconn_fail(t->data, RAFT_NOCONNECTION);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i)); /* little endian, as raft's */
    }
}

static int parse_ip4(const char *address, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(address, ':');
    size_t n;

    if (colon == NULL || (n = (size_t)(colon - address)) >= sizeof host) {
        return -1;
    }
    memcpy(host, address, n);
    host[n] = '\0';
    return uv_ip4_addr(host, atoi(colon + 1), sa) == 0 ? 0 : -1;
}

int cluster__transport_probe(struct cluster *c, char *errmsg)
{
    struct sockaddr_in sa;
    int one = 1;
    int fd;
    int rc = 0;

    if (parse_ip4(c->cfg.raft_addr, &sa) != 0) {
        snprintf(errmsg, YH_ERRMSG_SIZE,
                 "raft address '%s' is not IPv4 HOST:PORT", c->cfg.raft_addr);
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return 0; /* cannot tell: let raft_uv try */
    }
    /* as libuv binds: SO_REUSEADDR, so only a live socket on the port
     * conflicts, not one in TIME_WAIT */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(fd, 1) != 0) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "cannot listen on raft address %s: %s",
                 c->cfg.raft_addr, strerror(errno));
        rc = -1;
    }
    close(fd);
    return rc;
}

static int x_connect(struct raft_uv_transport *t,
                     struct raft_uv_connect *req,
                     raft_id id,
                     const char *address,
                     raft_uv_connect_cb cb)
{
    struct cluster *c = t->impl;
    struct sockaddr_in sa;
    struct tconn *tc;
    size_t alen;

    if (parse_ip4(address, &sa) != 0) {
        return c->transport.connect(&c->transport, req, id, address, cb);
    }
    req->cb = cb;
    tc = calloc(1, sizeof *tc);
    if (tc == NULL) {
        return RAFT_NOMEM;
    }
    alen = (strlen(c->xaddress) + 1 + 7) & ~(size_t)7;
    tc->hs.len = 24 + alen;
    tc->hs.base = calloc(1, tc->hs.len);
    tc->tcp = raft_malloc(sizeof *tc->tcp);
    if (tc->hs.base == NULL || tc->tcp == NULL) {
        free(tc->hs.base);
        raft_free(tc->tcp);
        free(tc);
        return RAFT_NOMEM;
    }
    put64((uint8_t *)tc->hs.base, HANDSHAKE_PROTOCOL);
    put64((uint8_t *)tc->hs.base + 8, c->xid);
    put64((uint8_t *)tc->hs.base + 16, alen);
    memcpy(tc->hs.base + 24, c->xaddress, strlen(c->xaddress));
    tc->c = c;
    tc->req = req;
    uv_tcp_init(c->loop, tc->tcp);
    tc->tcp->data = tc;
    uv_timer_init(c->loop, &tc->timer);
    tc->timer.data = tc;
    tc->connect.data = tc;
    tc->next = c->xconns;
    if (c->xconns != NULL) {
        c->xconns->prev = tc;
    }
    c->xconns = tc;
    if (uv_tcp_connect(&tc->connect, tc->tcp, (struct sockaddr *)&sa,
                       on_connect) != 0) {
        /* Answer asynchronously, as raft_uv expects of a failed attempt. */
        tconn_fail(tc, RAFT_NOCONNECTION);
        return 0;
    }
    uv_timer_start(&tc->timer, on_timeout, CONNECT_TIMEOUT_MS, 0);
    return 0;
}

static int x_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct cluster *c = t->impl;

    int rv;

    c->xid = id;
    snprintf(c->xaddress, sizeof c->xaddress, "%s", address);
    rv = c->transport.init(&c->transport, id, address);
    memcpy(t->errmsg, c->transport.errmsg, sizeof t->errmsg);
    return rv;
}

static void x_accept(struct raft_uv_transport *inner,
                     raft_id id,
                     const char *address,
                     struct uv_stream_s *stream)
{
    struct cluster *c = inner->data;

    c->xaccept_cb(&c->xport, id, address, stream);
}

static int x_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct cluster *c = t->impl;

    int rv;

    c->xaccept_cb = cb;
    rv = c->transport.listen(&c->transport, x_accept);
    memcpy(t->errmsg, c->transport.errmsg, sizeof t->errmsg);
    return rv;
}

static void x_inner_closed(struct raft_uv_transport *inner)
{
    struct cluster *c = inner->data;

    c->xinner_closed = 1;
    maybe_closed(c);
}

static void x_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct cluster *c = t->impl;

    c->xclosing = 1;
    c->xclose_cb = cb;
    for (struct tconn *tc = c->xconns; tc != NULL; tc = tc->next) {
        tconn_fail(tc, RAFT_CANCELED);
    }
    c->transport.close(&c->transport, x_inner_closed);
}

int cluster__transport_init(struct cluster *c)
{
    int rv = raft_uv_tcp_init(&c->transport, c->loop);

    if (rv != 0) {
        return rv;
    }
    c->transport.data = c;
    memset(&c->xport, 0, sizeof c->xport);
    c->xport.impl = c;
    c->xport.init = x_init;
    c->xport.listen = x_listen;
    c->xport.connect = x_connect;
    c->xport.close = x_close;
    return 0;
}

void cluster__transport_tune(struct cluster *c)
{
    raft_uv_set_connect_retry_delay(&c->io, CONNECT_RETRY_MS);
}

void cluster__transport_release(struct cluster *c)
{
    raft_uv_tcp_close(&c->transport);
}
