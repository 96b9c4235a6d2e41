/* Server lifecycle: listen, accept, per-iteration flush, close. */
#include "server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/wire/auth.h"
#include "api/wire/prescan.h"
#include "fsm/base/log.h"

YH_LOG_MODULE("server");

static void on_connection(uv_stream_t *listener, int status)
{
    struct api_server *s = listener->data;

    if (status != 0 || s->closing) {
        return;
    }
    api__conn_accept(s);
}

static void on_tick(void *arg)
{
    struct api_server *s = arg;
    uint64_t now = uv_now(s->loop);

    if (now - s->fwd_checked >= 100) {
        s->fwd_checked = now;
        api__fwd_check(s);
    }
    api__agent_flush(s);
    api__flush_all(s);
}

int api_server_open(struct api_server **out,
                    uv_loop_t *loop,
                    struct cluster *cluster,
                    const struct api_server_config *cfg,
                    char *errmsg)
{
    struct api_server *s;
    struct sockaddr_in sa;
    char host[64];
    const char *colon = strrchr(cfg->listen_addr, ':');
    size_t n;
    int rv;

    if (colon == NULL ||
        (n = (size_t)(colon - cfg->listen_addr)) >= sizeof host) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "bad API address '%s'",
                 cfg->listen_addr);
        return YH_EINVAL;
    }
    memcpy(host, cfg->listen_addr, n);
    host[n] = '\0';
    if (uv_ip4_addr(host, atoi(colon + 1), &sa) != 0) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "bad API address '%s'",
                 cfg->listen_addr);
        return YH_EINVAL;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        return YH_ENOMEM;
    }
    s->loop = loop;
    s->cluster = cluster;
    s->cfg = *cfg;
    if (s->cfg.max_message == 0) {
        s->cfg.max_message = API_MAX_MESSAGE;
    }
    if (s->cfg.auth_skew_s == 0) {
        s->cfg.auth_skew_s = API_AUTH_SKEW_S;
    }
    msgpack_zone_init(&s->zone, 4096);
    yh_buf_init(&s->scratch);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    rv = uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    }
    if (rv != 0) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "cannot listen on '%s': %s",
                 cfg->listen_addr, uv_strerror(rv));
        uv_close((uv_handle_t *)&s->listener, NULL);
        /* The handle memory must outlive the close callback: leak the small
         * server struct, the process is exiting on this error anyway. */
        return YH_EIO;
    }
    cluster_set_tick_cb(cluster, on_tick, s);
    cluster_set_event_cb(cluster, api__watch_event, s);
    YH_INFO("api listening on %s", cfg->listen_addr);
    *out = s;
    return 0;
}

void api__server_unref(struct api_server *s)
{
    if (--s->n_closing > 0) {
        return;
    }
    msgpack_zone_destroy(&s->zone);
    yh_buf_release(&s->scratch);
    free(s->agent_evs);
    if (s->close_cb != NULL) {
        s->close_cb(s->close_arg);
    }
    free(s);
}

static void listener_closed(uv_handle_t *h)
{
    api__server_unref(h->data);
}

void api_server_close(struct api_server *s, api_server_close_cb *cb, void *arg)
{
    s->closing = 1;
    s->close_cb = cb;
    s->close_arg = arg;
    /* the listener, and each password write on the thread pool */
    s->n_closing = 1 + s->slow_running;
    api__slow_fail_waiting(s);
    cluster_set_tick_cb(s->cluster, NULL, NULL);
    cluster_set_event_cb(s->cluster, NULL, NULL);
    api__flush_all(s);
    api__fwd_close(s, YH_EUNAVAIL);
    while (s->conns != NULL) {
        api__conn_close(s->conns);
    }
    uv_close((uv_handle_t *)&s->listener, listener_closed);
}
