/* Blocking client: see client.h for the failover rules.
 *
 * Happy path of one call: connect (lazily, kept across calls) -> sign ->
 * write the whole request -> read frames until the response with our msgid
 * arrives (notifications and stale responses of abandoned calls are
 * skipped) -> copy the result or error map out.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../fsm/base/err.h"
#include "../../fsm/base/mp.h"
#include "../wire/auth.h"
#include "../wire/frame.h"
#include "../wire/prescan.h"

struct api_client
{
    char endpoints[API_CLIENT_MAX_ENDPOINTS][128]; /* host:port */
    unsigned n_endpoints;
    unsigned cur;        /* index of the endpoint in use / to try next */
    int fd;              /* connection, -1 when none */
    char *public_key;    /* NULL = anonymous */
    char *private_key;   /* HMAC secret */
    int timeout_ms;      /* per-attempt I/O timeout */
    int deadline_ms;     /* overall deadline of one call */
    int attempt_ms;      /* I/O timeout of the current attempt */
    uint32_t next_msgid; /* msgid of the next request */
    struct api_frame_reader reader; /* frames of the current connection */
    struct yh_buf out;              /* encoded request */
};

/* Outcome of one attempt on one endpoint. */
enum attempt {
    ATTEMPT_ANSWER,      /* response received */
    ATTEMPT_NOT_SENT,    /* failed before the whole request was written */
    ATTEMPT_SENT_FAILED, /* failed after writing: outcome unknown */
    ATTEMPT_FATAL,       /* local failure (memory, protocol) */
};

int64_t api_client_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t api_client_now_ms(void)
{
    return api_client_now_ns() / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int api_client_parse_endpoints(const char *list,
                               char (*out)[128],
                               unsigned max,
                               char *errmsg)
{
    unsigned n = 0;
    const char *p = list;

    if (list == NULL || *list == '\0') {
        snprintf(errmsg, YH_ERRMSG_SIZE, "empty endpoint list");
        return -1;
    }
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *colon;

        /* tolerate spaces around commas */
        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        while (len > 0 && p[len - 1] == ' ') {
            len--;
        }
        if (len > 0) {
            colon = memrchr(p, ':', len);
            if (colon == NULL || colon == p || colon == p + len - 1 ||
                len >= 128) {
                snprintf(errmsg, YH_ERRMSG_SIZE,
                         "bad endpoint '%.*s' (want host:port)", (int)len, p);
                return -1;
            }
            for (const char *q = colon + 1; q < p + len; q++) {
                if (*q < '0' || *q > '9') {
                    snprintf(errmsg, YH_ERRMSG_SIZE,
                             "bad port in endpoint '%.*s'", (int)len, p);
                    return -1;
                }
            }
            if (n == max) {
                snprintf(errmsg, YH_ERRMSG_SIZE, "too many endpoints (max %u)",
                         max);
                return -1;
            }
            memcpy(out[n], p, len);
            out[n][len] = '\0';
            n++;
        }
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    if (n == 0) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "empty endpoint list");
        return -1;
    }
    return (int)n;
}

int api_client_new(struct api_client **out,
                   const struct api_client_config *cfg,
                   char *errmsg)
{
    struct api_client *c;
    int n;

    if ((cfg->public_key == NULL) != (cfg->private_key == NULL)) {
        snprintf(errmsg, YH_ERRMSG_SIZE,
                 "public key and private key must be given together");
        return YH_EINVAL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "out of memory");
        return YH_ENOMEM;
    }
    n = api_client_parse_endpoints(cfg->endpoints, c->endpoints,
                                   API_CLIENT_MAX_ENDPOINTS, errmsg);
    if (n < 0) {
        free(c);
        return YH_EINVAL;
    }
    c->n_endpoints = (unsigned)n;
    c->fd = -1;
    c->timeout_ms =
        cfg->timeout_ms > 0 ? cfg->timeout_ms : API_CLIENT_TIMEOUT_MS;
    c->deadline_ms =
        cfg->deadline_ms > 0 ? cfg->deadline_ms : API_CLIENT_DEADLINE_MS;
    c->attempt_ms = c->timeout_ms;
    if (cfg->public_key != NULL) {
        c->public_key = strdup(cfg->public_key);
        c->private_key = strdup(cfg->private_key);
        if (c->public_key == NULL || c->private_key == NULL) {
            free(c->public_key);
            free(c->private_key);
            free(c);
            snprintf(errmsg, YH_ERRMSG_SIZE, "out of memory");
            return YH_ENOMEM;
        }
    }
    /* Start at a pseudo-random msgid so that two clients on one server are
     * easy to tell apart in its logs. */
    c->next_msgid = (uint32_t)(api_client_now_ns() & 0xffff) + 1;
    api_frame_reader_init(&c->reader, API_MAX_MESSAGE, API_MAX_DEPTH);
    yh_buf_init(&c->out);
    /* A peer closing while we write must be an error, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    *out = c;
    return 0;
}

static void client_disconnect(struct api_client *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    /* Drop any partial frame of the old connection. */
    api_frame_reader_release(&c->reader);
    api_frame_reader_init(&c->reader, API_MAX_MESSAGE, API_MAX_DEPTH);
}

void api_client_free(struct api_client *c)
{
    if (c == NULL) {
        return;
    }
    client_disconnect(c);
    api_frame_reader_release(&c->reader);
    yh_buf_release(&c->out);
    if (c->private_key != NULL) {
        explicit_bzero(c->private_key, strlen(c->private_key));
    }
    free(c->public_key);
    free(c->private_key);
    free(c);
}

const char *api_client_endpoint(const struct api_client *c)
{
    return c->n_endpoints > 0 ? c->endpoints[c->cur] : "";
}

int api_client_connect(const char *endpoint, int timeout_ms, char *errmsg)
{
    char host[128];
    const char *colon = strrchr(endpoint, ':');
    struct addrinfo hints, *res = NULL, *ai;
    int rc, fd = -1, one = 1;
    int64_t deadline = api_client_now_ms() + timeout_ms;
    char last[160] = "no address";

    if (colon == NULL || (size_t)(colon - endpoint) >= sizeof(host)) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "bad endpoint '%s'", endpoint);
        return -1;
    }
    memcpy(host, endpoint, (size_t)(colon - endpoint));
    host[colon - endpoint] = '\0';
    /* "[::1]:7400" */
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = '\0';
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "cannot resolve '%s': %s", endpoint,
                 gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        struct pollfd pfd;
        int err = 0;
        socklen_t elen = sizeof(err);
        int left;

        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
        if (fd == -1) {
            snprintf(last, sizeof(last), "socket: %s", strerror(errno));
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
            if (errno != EINPROGRESS) {
                snprintf(last, sizeof(last), "%s", strerror(errno));
                goto next;
            }
            left = (int)(deadline - api_client_now_ms());
            pfd.fd = fd;
            pfd.events = POLLOUT;
            do {
                rc = poll(&pfd, 1, left > 0 ? left : 0);
            } while (rc == -1 && errno == EINTR);
            if (rc == 0) {
                snprintf(last, sizeof(last), "connect timed out");
                goto next;
            }
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == -1) {
                err = errno;
            }
            if (err != 0) {
                snprintf(last, sizeof(last), "%s", strerror(err));
                goto next;
            }
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        freeaddrinfo(res);
        return fd;
    next:
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    snprintf(errmsg, YH_ERRMSG_SIZE, "cannot connect to %s: %s", endpoint,
             last);
    return -1;
}

/* Write all of @p within @timeout_ms. 0, or -1 with @errmsg. */
static int write_all(int fd,
                     const uint8_t *p,
                     size_t n,
                     int timeout_ms,
                     char *errmsg)
{
    int64_t deadline = api_client_now_ms() + timeout_ms;

    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w == -1 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            int left = (int)(deadline - api_client_now_ms());
            if (left <= 0) {
                snprintf(errmsg, YH_ERRMSG_SIZE, "write timed out");
                return -1;
            }
            if (poll(&pfd, 1, left) == -1 && errno != EINTR) {
                snprintf(errmsg, YH_ERRMSG_SIZE, "poll: %s", strerror(errno));
                return -1;
            }
            continue;
        }
        snprintf(errmsg, YH_ERRMSG_SIZE, "write: %s",
                 w == 0 ? "closed" : strerror(errno));
        return -1;
    }
    return 0;
}

/* Read more bytes into the frame reader, waiting at most @timeout_ms (-1 =
 * forever). 0, or -1 with @errmsg (closed, reset, timed out). */
static int read_some(struct api_client *c, int timeout_ms, char *errmsg)
{
    uint8_t buf[65536];
    struct pollfd pfd = {c->fd, POLLIN, 0};
    int64_t deadline = api_client_now_ms() + timeout_ms;
    ssize_t r;
    int rc;

    for (;;) {
        int left = timeout_ms < 0 ? -1 : (int)(deadline - api_client_now_ms());
        if (timeout_ms >= 0 && left < 0) {
            left = 0;
        }
        rc = poll(&pfd, 1, left);
        if (rc == -1 && errno == EINTR) {
            continue;
        }
        if (rc == -1) {
            snprintf(errmsg, YH_ERRMSG_SIZE, "poll: %s", strerror(errno));
            return -1;
        }
        if (rc == 0) {
            snprintf(errmsg, YH_ERRMSG_SIZE,
                     "timed out waiting for the answer");
            return -1;
        }
        r = recv(c->fd, buf, sizeof(buf), 0);
        if (r > 0) {
            if (api_frame_reader_feed(&c->reader, buf, (size_t)r) != 0) {
                snprintf(errmsg, YH_ERRMSG_SIZE, "out of memory");
                return -1;
            }
            return 0;
        }
        if (r == -1 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        snprintf(errmsg, YH_ERRMSG_SIZE, "connection %s",
                 r == 0 ? "closed by server" : strerror(errno));
        return -1;
    }
}

/* Pack @o into @out (reset first). */
static int pack_object(struct yh_buf *out, const msgpack_object *o)
{
    msgpack_packer pk;

    yh_buf_reset(out);
    msgpack_packer_init(&pk, out, yh_buf_msgpack_write);
    if (msgpack_pack_object(&pk, *o) != 0) {
        return YH_ENOMEM;
    }
    return 0;
}

/* Encode and write one request. Returns ATTEMPT_ANSWER when written. */
static enum attempt send_request(struct api_client *c,
                                 const char *action,
                                 const uint8_t *req,
                                 size_t len,
                                 uint32_t *msgid,
                                 char *errmsg)
{
    char sig[API_SIG_HEX_SIZE];
    int64_t ts = (int64_t)time(NULL);
    int rc;

    if (c->fd < 0) {
        c->fd = api_client_connect(c->endpoints[c->cur], c->attempt_ms, errmsg);
        if (c->fd < 0) {
            return ATTEMPT_NOT_SENT;
        }
    }
    if (c->public_key != NULL) {
        rc = api_auth_sign(c->private_key, action, strlen(action), ts, req, len,
                           sig);
        if (rc != 0) {
            snprintf(errmsg, YH_ERRMSG_SIZE, "cannot sign request: %s",
                     yh_strerror(rc));
            return ATTEMPT_FATAL;
        }
    }
    *msgid = c->next_msgid++;
    yh_buf_reset(&c->out);
    rc =
        api_frame_pack_request(&c->out, *msgid, action, req, len, c->public_key,
                               ts, c->public_key != NULL ? sig : NULL);
    if (rc != 0) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "cannot encode request: %s",
                 yh_strerror(rc));
        return ATTEMPT_FATAL;
    }
    if (write_all(c->fd, c->out.data, c->out.len, c->attempt_ms, errmsg) != 0) {
        /* The server only acts on complete messages, and an incomplete one
         * can never complete once the connection is gone. */
        client_disconnect(c);
        return ATTEMPT_NOT_SENT;
    }
    return ATTEMPT_ANSWER;
}

/* Wait for the next message; on 0 *msg is decoded into @zone.
 * -1 = connection failure (disconnected, @errmsg), -2 = protocol error. */
static int next_message(struct api_client *c,
                        int timeout_ms,
                        msgpack_zone *zone,
                        struct api_msg *msg,
                        char *errmsg)
{
    for (;;) {
        const uint8_t *p;
        size_t n;
        int known = 0;
        int rc =
            api_frame_reader_next(&c->reader, &p, &n, errmsg, YH_ERRMSG_SIZE);
        if (rc == 0) {
            msgpack_zone_clear(zone);
            rc = api_frame_decode(p, n, zone, msg, &known, errmsg,
                                  YH_ERRMSG_SIZE);
            if (rc != 0) {
                client_disconnect(c);
                return -2;
            }
            return 0;
        }
        if (rc != YH_EAGAIN) {
            client_disconnect(c);
            return -2;
        }
        if (read_some(c, timeout_ms, errmsg) != 0) {
            client_disconnect(c);
            return -1;
        }
    }
}

/* Wait for the response to @msgid and copy its result/error map. */
static enum attempt wait_response(struct api_client *c,
                                  uint32_t msgid,
                                  struct yh_buf *result,
                                  char *errmsg)
{
    msgpack_zone zone;
    struct api_msg msg;
    int64_t deadline = api_client_now_ms() + c->attempt_ms;
    enum attempt ret;

    if (!msgpack_zone_init(&zone, 4096)) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "out of memory");
        return ATTEMPT_FATAL;
    }
    for (;;) {
        int left = (int)(deadline - api_client_now_ms());
        int rc = next_message(c, left > 0 ? left : 0, &zone, &msg, errmsg);
        const msgpack_object *o;

        if (rc == -1) {
            ret = ATTEMPT_SENT_FAILED;
            break;
        }
        if (rc == -2) {
            ret = ATTEMPT_FATAL;
            break;
        }
        if (msg.type != API_MSG_RESPONSE || msg.msgid != msgid) {
            continue; /* late answer to an abandoned call, or a notify */
        }
        o = msg.error != NULL && msg.error->type != MSGPACK_OBJECT_NIL
                ? msg.error
                : msg.result;
        if (o == NULL || o->type != MSGPACK_OBJECT_MAP) {
            snprintf(errmsg, YH_ERRMSG_SIZE,
                     "response carries neither a result nor an error map");
            client_disconnect(c);
            ret = ATTEMPT_FATAL;
            break;
        }
        if (pack_object(result, o) != 0) {
            snprintf(errmsg, YH_ERRMSG_SIZE, "out of memory");
            ret = ATTEMPT_FATAL;
            break;
        }
        ret = ATTEMPT_ANSWER;
        break;
    }
    msgpack_zone_destroy(&zone);
    return ret;
}

/* 1 if the request map @req carries a non-empty RequestToken. -1 if @req is
 * not a map. */
static int has_token(const uint8_t *req, size_t len)
{
    msgpack_unpacked u;
    size_t off = 0;
    int ret = -1;

    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)req, len, &off) ==
            MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object *t = yh_mp_get(&u.data, "RequestToken");
        ret = t != NULL &&
              ((t->type == MSGPACK_OBJECT_STR && t->via.str.size > 0) ||
               (t->type == MSGPACK_OBJECT_BIN && t->via.bin.size > 0));
    }
    msgpack_unpacked_destroy(&u);
    return ret;
}

static void next_endpoint(struct api_client *c)
{
    client_disconnect(c);
    c->cur = (c->cur + 1) % c->n_endpoints;
}

static int backoff_ms(void)
{
    return 100 + (int)(api_client_now_ns() % 101);
}

int api_client_call_flags(struct api_client *c,
                          const char *action,
                          const uint8_t *req,
                          size_t len,
                          unsigned flags,
                          struct yh_buf *result,
                          char *errmsg)
{
    int64_t deadline = api_client_now_ms() + c->deadline_ms;
    int token = has_token(req, len);
    int resend_ok;
    int sent = 0;        /* some attempt wrote the request */
    unsigned failed = 0; /* consecutive endpoints that could not connect */
    char why[YH_ERRMSG_SIZE] = "";

    if (token < 0) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "request is not a msgpack map");
        return YH_EINVAL;
    }
    resend_ok = token || (flags & API_CLIENT_F_IDEMPOTENT);
    for (;;) {
        uint32_t msgid = 0;
        enum attempt a;
        int retcode;
        int last_try;

        int64_t left = deadline - api_client_now_ms();

        /* An attempt may not outlive the deadline by much: the last one
         * still gets a fair chance (500 ms) to finish. */
        c->attempt_ms = left < c->timeout_ms ? (int)(left > 500 ? left : 500)
                                             : c->timeout_ms;
        yh_buf_reset(result);
        a = send_request(c, action, req, len, &msgid, why);
        if (a == ATTEMPT_ANSWER) {
            a = wait_response(c, msgid, result, why);
            if (a == ATTEMPT_SENT_FAILED) {
                sent = 1;
            }
        }
        last_try =
            (flags & API_CLIENT_F_NO_RETRY) || api_client_now_ms() >= deadline;
        switch (a) {
        case ATTEMPT_FATAL:
            snprintf(errmsg, YH_ERRMSG_SIZE, "%s: %s", c->endpoints[c->cur],
                     why);
            return YH_EPROTO;
        case ATTEMPT_NOT_SENT:
            failed++;
            if (last_try) {
                goto unreachable;
            }
            next_endpoint(c);
            /* A whole round of refused connections: nobody is up (maybe
             * restarting); pause before the next round. */
            if (failed % c->n_endpoints == 0) {
                sleep_ms(backoff_ms());
            }
            continue;
        case ATTEMPT_SENT_FAILED:
            failed = 0;
            if (!resend_ok || last_try) {
                snprintf(errmsg, YH_ERRMSG_SIZE,
                         "%s: %s after the request was sent: outcome unknown",
                         c->endpoints[c->cur], why);
                return YH_EUNKNOWN;
            }
            next_endpoint(c);
            continue;
        case ATTEMPT_ANSWER:
            break;
        }
        failed = 0;
        retcode = api_frame_result_retcode(result->data, result->len);
        if (retcode == YH_EUNAVAIL && !last_try) {
            next_endpoint(c);
            sleep_ms(backoff_ms());
            continue;
        }
        if (retcode == YH_EUNKNOWN && resend_ok && !last_try) {
            next_endpoint(c);
            sleep_ms(50);
            continue;
        }
        if (retcode == YH_EBUSY && !last_try) {
            sleep_ms(backoff_ms());
            continue;
        }
        return 0;
    }

unreachable:
    if (sent) {
        snprintf(errmsg, YH_ERRMSG_SIZE,
                 "request sent but no answer before the deadline: outcome "
                 "unknown (last error: %s)",
                 why);
        return YH_EUNKNOWN;
    }
    snprintf(errmsg, YH_ERRMSG_SIZE, "no endpoint reachable (last: %s)", why);
    return YH_EUNAVAIL;
}

int api_client_call(struct api_client *c,
                    const char *action,
                    const uint8_t *req,
                    size_t len,
                    struct yh_buf *result,
                    char *errmsg)
{
    return api_client_call_flags(c, action, req, len, 0, result, errmsg);
}

int api_client_stream(struct api_client *c,
                      const char *action,
                      const uint8_t *req,
                      size_t len,
                      unsigned max_events,
                      int idle_timeout_ms,
                      api_client_stream_cb *cb,
                      void *arg,
                      struct yh_buf *result,
                      char *errmsg)
{
    msgpack_zone zone;
    struct api_msg msg;
    uint32_t msgid = 0;
    unsigned n_events = 0;
    int got_response = 0;
    int ret = 0;
    int64_t deadline = api_client_now_ms() + c->deadline_ms;
    char why[YH_ERRMSG_SIZE] = "";

    /* Connect with failover (nothing has happened yet, so any endpoint is
     * as good as another). */
    c->attempt_ms = c->timeout_ms;
    for (;;) {
        enum attempt a = send_request(c, action, req, len, &msgid, why);
        if (a == ATTEMPT_ANSWER) {
            break;
        }
        if (a == ATTEMPT_FATAL) {
            snprintf(errmsg, YH_ERRMSG_SIZE, "%s", why);
            return YH_EPROTO;
        }
        if (api_client_now_ms() >= deadline) {
            snprintf(errmsg, YH_ERRMSG_SIZE, "no endpoint reachable (last: %s)",
                     why);
            return YH_EUNAVAIL;
        }
        next_endpoint(c);
        sleep_ms(50);
    }
    if (!msgpack_zone_init(&zone, 4096)) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "out of memory");
        return YH_ENOMEM;
    }
    for (;;) {
        int rc = next_message(c, got_response ? idle_timeout_ms : c->timeout_ms,
                              &zone, &msg, why);
        if (rc != 0) {
            snprintf(errmsg, YH_ERRMSG_SIZE, "%s: %s", c->endpoints[c->cur],
                     why);
            ret = rc == -1 ? YH_EIO : YH_EPROTO;
            break;
        }
        if (msg.type == API_MSG_RESPONSE && msg.msgid == msgid) {
            const msgpack_object *o =
                msg.error != NULL && msg.error->type != MSGPACK_OBJECT_NIL
                    ? msg.error
                    : msg.result;
            if (o == NULL || o->type != MSGPACK_OBJECT_MAP) {
                snprintf(errmsg, YH_ERRMSG_SIZE, "bad response");
                ret = YH_EPROTO;
                break;
            }
            if (pack_object(result, o) != 0) {
                ret = YH_ENOMEM;
                break;
            }
            got_response = 1;
            if (o == msg.error) {
                break; /* the caller reads the RetCode */
            }
            if (cb(arg, 0, o) != 0) {
                break;
            }
            continue;
        }
        if (msg.type != API_MSG_NOTIFY || msg.params == NULL ||
            msg.params->type != MSGPACK_OBJECT_ARRAY ||
            msg.params->via.array.size < 1) {
            continue;
        }
        n_events++;
        if (cb(arg, 1, &msg.params->via.array.ptr[0]) != 0) {
            break;
        }
        if (max_events > 0 && n_events >= max_events) {
            break;
        }
    }
    msgpack_zone_destroy(&zone);
    /* The server keeps streaming: this connection is no good for calls. */
    client_disconnect(c);
    return ret;
}
