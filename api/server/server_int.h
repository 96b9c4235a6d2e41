/* Private to api/server. */
#ifndef API_SERVER_INT_H
#define API_SERVER_INT_H

#include <msgpack.h>

#include "api/wire/frame.h"
#include "fsm/fsm.h"
#include "server.h"

#define API_METHOD_SIZE 64
#define API_FWD_SLOTS 65536u

struct api_conn;

/* An applied change, queued for WatchCommands streams until the batch is
 * committed (end of the loop iteration). */
struct api_agent_ev
{
    uint64_t index;
    char action[API_METHOD_SIZE];
    char resource[FSM_ID_SIZE];
    char gone[FSM_ID_SIZE]; /* host told that @resource is gone, or "" */
};

/* Password-hashing writes running at once on libuv's thread pool (4
 * threads, shared with raft_uv's file work and snapshots): a login storm
 * queues here instead of starving them. */
#define API_SLOW_MAX 2
struct slow_prep;

/* One request in flight (waiting for raft, a barrier or the leader). */
struct api_call
{
    struct api_server *s;
    struct api_conn *conn;        /* NULL once the connection is gone */
    uint32_t msgid;               /* client's msgid */
    char method[API_METHOD_SIZE]; /* action */
    struct fsm_actor actor;       /* authenticated actor */
    struct yh_buf raw;            /* request map bytes (reads, forwards) */
    struct yh_buf auth;           /* client's auth map, when the leader
                                     must authenticate (key unknown here) */
    int is_write;                 /* outcome unknown on loss */
    uint32_t fwd_msgid;           /* msgid on the forward connection */
    struct api_call *fwd_next;    /* forward queue before connect */
};

struct api_conn
{
    uv_tcp_t tcp; /* the socket; data = this */
    struct api_server *s;
    struct api_frame_reader rd;   /* input */
    struct yh_buf out;            /* responses not yet written */
    char peer[64];                /* "ip:port" */
    int closing;                  /* uv_close called */
    int closed;                   /* close callback ran */
    int close_after_flush;        /* protocol error: flush, then close */
    int paused;                   /* reading stopped (backpressure) */
    int dirty;                    /* on the server's dirty list */
    unsigned refs;                /* calls in flight + 1 while open */
    size_t writing;               /* bytes in uv_write requests */
    int watching;                 /* Watch/WatchCommands stream active */
    int watch_agent;              /* WatchCommands (per-host) stream */
    char watch_host[FSM_ID_SIZE]; /* its host */
    uint64_t watch_next;          /* next index to send */
    struct api_conn *next;        /* server's connection list */
    struct api_conn *prev;
    struct api_conn *dirty_next;      /* server's dirty list */
    struct api_conn *watch_next_conn; /* server's watcher list */
    struct api_conn *watch_prev_conn;
};

/* The forward connection to the current leader. */
struct api_fwd
{
    uv_tcp_t tcp;
    uv_connect_t connect;
    struct api_server *s;
    char addr[64]; /* leader API address */
    int state;     /* 0 connecting, 1 up, 2 closing */
    struct api_frame_reader rd;
    struct yh_buf out;
    uint32_t next_msgid;
    struct api_call *queued_head; /* waiting for connect */
    struct api_call *queued_tail;
    struct api_call **slots; /* by fwd_msgid % API_FWD_SLOTS */
    unsigned n_inflight;
    int dirty;
};

struct api_server
{
    uv_loop_t *loop;
    struct cluster *cluster;
    struct api_server_config cfg;
    uv_tcp_t listener;
    struct api_conn *conns;      /* all open connections */
    uint64_t fwd_checked;        /* uv_now of the last forward check */
    struct api_conn *dirty;      /* connections with output pending */
    struct api_conn *watchers;   /* connections with a Watch stream */
    unsigned n_agent_watchers;   /* of which WatchCommands streams */
    struct slow_prep *slow_head; /* password writes waiting for a worker */
    struct slow_prep *slow_tail;
    unsigned slow_running; /* on the thread pool (at most API_SLOW_MAX) */
    struct api_agent_ev *agent_evs; /* applied this iteration, for them */
    unsigned n_agent_evs;
    unsigned cap_agent_evs;
    struct api_fwd *fwd; /* NULL when not connected */
    int closing;
    int n_closing;
    api_server_close_cb *close_cb;
    void *close_arg;
    msgpack_zone zone;     /* per-message scratch */
    struct yh_buf scratch; /* per-message result scratch */
};

/* conn.c */
void api__conn_accept(struct api_server *s);
void api__conn_send(struct api_conn *conn, const uint8_t *p, size_t n);
void api__conn_error(struct api_conn *conn,
                     uint32_t msgid,
                     int code,
                     const char *msg,
                     const char *method);
void api__conn_result(struct api_conn *conn,
                      uint32_t msgid,
                      const uint8_t *res,
                      size_t len);
void api__conn_close(struct api_conn *conn);
void api__conn_unref(struct api_conn *conn);
void api__watch_add(struct api_conn *conn);
void api__watch_remove(struct api_conn *conn);
void api__flush_all(struct api_server *s);

/* dispatch.c */
void api__dispatch(struct api_conn *conn, const uint8_t *msg, size_t len);
void api__call_free(struct api_call *call);
/* Finish a call with a raw result map or an error. */
void api__call_result(struct api_call *call, const uint8_t *res, size_t len);
void api__call_error(struct api_call *call, int code, const char *msg);
void api__watch_event(void *arg,
                      uint64_t index,
                      const uint8_t *event,
                      size_t len);
void api__agent_flush(struct api_server *s);

/* forward.c */
int api__forward(struct api_server *s, struct api_call *call, const char *src);
void api__fwd_flush(struct api_server *s);
/* Fail forwarded calls when their leader no longer leads (rate-limited by
 * the caller). */
void api__fwd_check(struct api_server *s);
void api__fwd_close(struct api_server *s, int status);
/* HMAC-SHA256 (hex) with the cluster secret over everything a forward
 * asserts: method, client address, actor and the raw request. */
int api__forward_mac(const char *secret,
                     const char *method,
                     const char *src,
                     const struct fsm_actor *actor,
                     const uint8_t *raw,
                     size_t len,
                     char out[65]);

/* listen.c: one of the things a closing server waits for is done. */
void api__server_unref(struct api_server *s);
/* dispatch.c: fail the password writes not yet on the thread pool. */
void api__slow_fail_waiting(struct api_server *s);

#endif
