/* yunhan bench: closed-loop load generator.
 *
 * N connections (spread over the endpoints), each keeping P signed requests
 * in flight, for S seconds; then the outstanding requests are drained (up
 * to 10 s). Every completed request's latency is recorded and sorted for
 * the percentiles. Single-threaded, non-blocking sockets under poll(2).
 *
 * --action CreateVMInstance first builds, as the administrator and through
 * the API, what creates need (vm_setup below): a zone, hosts registered
 * and heartbeating as agents would, an image, prices, a tenant with a large
 * balance, raised quotas and its own API key; the run then signs every
 * CreateVMInstance with that tenant's key, so quota, billing and placement
 * are all exercised on the create path.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
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
#include "client.h"

#define DRAIN_MS 10000
#define MAX_RETCODE 600

enum bench_kind { BENCH_MODIFY, BENCH_CREATE, BENCH_READ, BENCH_VM };

/* What one bench host offers: the registration maxima, so that the run
 * measures creates and not capacity rejections. With the zone's 1000 %
 * overcommit a host takes 40,960 one-CPU machines. */
#define VM_HOST_CPU "4096"
#define VM_HOST_MEMORY "67108864" /* MB: 64 TiB */
#define VM_CPU 1
#define VM_MEMORY 512
#define TIMELINE_MAX 86400

struct slot
{
    uint32_t msgid;   /* request in flight in this slot */
    int64_t start_ns; /* when it was queued */
    int busy;
};

struct bconn
{
    int fd;                     /* -1 when dead */
    const char *endpoint;       /* borrowed from the endpoint table */
    struct yh_buf out;          /* bytes queued, not yet written */
    size_t out_off;             /* bytes of @out already written */
    struct api_frame_reader rd; /* incoming frames */
    struct slot *slots;         /* @pipeline entries */
    unsigned n_inflight;
    uint32_t next_msgid;
    unsigned id;
    int ep;           /* index of @endpoint in the endpoint table */
    int64_t retry_ns; /* dead: next reconnect attempt; alive: no new
                         requests before (after "no leader"/"busy") */
};

struct bench
{
    enum bench_kind kind;
    const char *action;
    long n_conns, pipeline, seconds, size;
    long count; /* stop sending after this many requests (0 = off) */
    int json, stale;
    struct api_cli_creds cr;
    char endpoints[API_CLIENT_MAX_ENDPOINTS][128];
    int n_endpoints;
    int leader_only; /* every connection starts on endpoints[0] */
    char user_id[128];
    char run[17];     /* random id of this run (tokens, emails) */
    long hosts;       /* BENCH_VM: hosts to register */
    char vm_zone[64]; /* BENCH_VM: its zone, image and tenant */
    char image[64];
    char tenant[64];
    int timeline;                     /* print acked per second */
    uint32_t *per_sec;                /* acked in each second of the run */
    int64_t start_ns;                 /* when the run started */
    char *remark;                     /* @size bytes */
    uint64_t seq;                     /* requests issued */
    uint64_t acked;                   /* RetCode 0 */
    uint64_t errors[MAX_RETCODE + 1]; /* by RetCode; [MAX_RETCODE] other */
    uint64_t conn_lost;               /* in flight on a connection that broke */
    uint64_t reconnects; /* connections re-opened after a failure */
    int64_t *lat_ns;     /* every completed request */
    size_t n_lat, cap_lat;
    struct yh_buf req; /* scratch request map */
    msgpack_zone zone;
};

void api_cli_bench_usage(FILE *out)
{
    fprintf(
        out,
        "benchmark (keys and endpoints as for calls):\n"
        "  yunhan bench [--endpoint E] --connections N --pipeline P "
        "--seconds S\n"
        "         [--size BYTES] [--action ModifyNameAndRemark|CreateUser|"
        "CreateVMInstance]\n"
        "         [--read [--stale]] [--json] [--count N] [--resource UID]\n"
        "         [--leader-only] [--hosts N] [--timeline]\n"
        "  Creates a target user, then keeps N x P signed requests in "
        "flight:\n"
        "  ModifyNameAndRemark ResourceID=<user> Remark=<BYTES bytes> "
        "(default 256),\n"
        "  CreateUser, or with --read DescribeUser. CreateVMInstance first "
        "makes\n"
        "  (as the admin) a zone, --hosts N hosts (default 32, 40,960 "
        "one-CPU\n"
        "  machines each), an image, prices, a tenant with a large balance "
        "and\n"
        "  raised quotas, then sends 1-CPU 512 MB Dynamic creates signed "
        "with\n"
        "  the tenant's key. Prints acked/s, errors "
        "by\n"
        "  RetCode and p50/p99/max latency. --connections 1 --pipeline 1 "
        "measures\n"
        "  sequential latency. Connections are spread round-robin over the\n"
        "  endpoints (followers forward to the leader); --leader-only opens\n"
        "  them all on the leader, as a leader-aware client would.\n"
        "  --timeline prints the acked count of every second of the run.\n");
}

static int b_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "yunhan bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    api_cli_bench_usage(stderr);
    return API_CLI_EXIT_USAGE;
}

static int num(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Put the leader's endpoint first: connections are spread round-robin, so
 * connection 0 (the only one of a sequential run) talks to the leader and
 * does not pay a forward hop; the others still spread the authentication
 * work over the followers. Best effort: the order stays as given when no
 * node answers DescribeCluster. */
static void leader_first(struct bench *b)
{
    struct api_client_config cfg = {b->cr.endpoint, NULL, NULL, 2000, 3000};
    struct api_client *c;
    struct yh_buf res = YH_BUF_INIT;
    char errmsg[YH_ERRMSG_SIZE];
    char leader[128];
    msgpack_unpacked u;
    const msgpack_object *r;
    static const uint8_t empty_map[] = {0x80};

    if (b->n_endpoints < 2 || api_client_new(&c, &cfg, errmsg) != 0) {
        return;
    }
    msgpack_unpacked_init(&u);
    if (api_client_call(c, "DescribeCluster", empty_map, sizeof empty_map, &res,
                        errmsg) == 0 &&
        (r = api_cli_unpack(&u, res.data, res.len)) != NULL &&
        yh_mp_strcpy(r, "LeaderAPIAddress", leader, sizeof leader) == 0) {
        for (int i = 1; i < b->n_endpoints; i++) {
            if (strcmp(b->endpoints[i], leader) == 0) {
                char tmp[sizeof b->endpoints[0]];
                memcpy(tmp, b->endpoints[0], sizeof tmp);
                memcpy(b->endpoints[0], b->endpoints[i], sizeof tmp);
                memcpy(b->endpoints[i], tmp, sizeof tmp);
                break;
            }
        }
    }
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&res);
    api_client_free(c);
}

/* The target user every ModifyNameAndRemark / DescribeUser points at. */
static int create_target(struct bench *b)
{
    struct api_client_config cfg = {b->cr.endpoint, b->cr.public_key,
                                    b->cr.private_key, 0, 0};
    struct api_client *c;
    struct yh_buf req = YH_BUF_INIT, res = YH_BUF_INIT;
    char errmsg[YH_ERRMSG_SIZE], email[128], pass[64];
    char *argv[3] = {email, pass, "Name=bench"};
    msgpack_unpacked u;
    const msgpack_object *r;
    int rc, retcode;

    rc = api_client_new(&c, &cfg, errmsg);
    if (rc != 0) {
        fprintf(stderr, "yunhan bench: %s\n", errmsg);
        return -1;
    }
    snprintf(email, sizeof(email), "UserEmail=bench-%s@bench.example", b->run);
    snprintf(pass, sizeof(pass), "PassWord=Bench-%s-Pw1", b->run);
    rc = api_cli_build_request(3, argv, 1, &req, NULL, errmsg);
    if (rc == 0) {
        rc = api_client_call(c, "CreateUser", req.data, req.len, &res, errmsg);
    }
    api_client_free(c);
    yh_buf_release(&req);
    if (rc != 0) {
        fprintf(stderr, "yunhan bench: CreateUser: %s\n", errmsg);
        yh_buf_release(&res);
        return -1;
    }
    msgpack_unpacked_init(&u);
    r = api_cli_unpack(&u, res.data, res.len);
    retcode = api_frame_result_retcode(res.data, res.len);
    rc = -1;
    if (r != NULL && retcode == 0 &&
        yh_mp_strcpy(r, "UserID", b->user_id, sizeof(b->user_id)) == 0) {
        rc = 0;
    } else {
        char m[200] = "";
        if (r != NULL) {
            yh_mp_strcpy(r, "Message", m, sizeof(m));
        }
        fprintf(stderr, "yunhan bench: CreateUser: error %d: %s\n", retcode, m);
    }
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&res);
    return rc;
}

/* ---- CreateVMInstance: the setup, through the API ---- */

/* One setup call: @action with the "Key=Value" arguments up to NULL and a
 * fresh RequestToken. 0 when it answered RetCode 0; the result in @u
 * (*r); otherwise the error is printed. */
static int setup_call(struct api_client *c,
                      msgpack_unpacked *u,
                      const msgpack_object **r,
                      const char *action,
                      ...)
{
    struct yh_buf req = YH_BUF_INIT, res = YH_BUF_INIT;
    char errmsg[YH_ERRMSG_SIZE];
    char *argv[16];
    int argc = 0, rc, retcode = -1;
    va_list ap;

    va_start(ap, action);
    for (char *kv = va_arg(ap, char *); kv != NULL && argc < 16;
         kv = va_arg(ap, char *)) {
        argv[argc++] = kv;
    }
    va_end(ap);
    rc = api_cli_build_request(argc, argv, 1, &req, NULL, errmsg);
    if (rc == 0) {
        rc = api_client_call(c, action, req.data, req.len, &res, errmsg);
    }
    yh_buf_release(&req);
    msgpack_unpacked_destroy(u);
    msgpack_unpacked_init(u);
    *r = NULL;
    if (rc == 0) {
        retcode = api_frame_result_retcode(res.data, res.len);
        *r = api_cli_unpack(u, res.data, res.len);
        if (*r == NULL) {
            snprintf(errmsg, sizeof errmsg, "undecodable result");
        } else if (retcode != 0) {
            snprintf(errmsg, sizeof errmsg, "RetCode %d: ", retcode);
            yh_mp_strcpy(*r, "Message", errmsg + strlen(errmsg),
                         sizeof errmsg - strlen(errmsg));
        }
    }
    yh_buf_release(&res);
    if (rc != 0 || *r == NULL || retcode != 0) {
        fprintf(stderr, "yunhan bench: setup: %s: %s\n", action, errmsg);
        return -1;
    }
    return 0;
}

/* Copy string field @key of @r into @out; -1 if absent. */
static int field(const msgpack_object *r,
                 const char *key,
                 char *out,
                 size_t size)
{
    if (yh_mp_strcpy(r, key, out, size) != 0) {
        fprintf(stderr, "yunhan bench: setup: no '%s' in a result\n", key);
        return -1;
    }
    return 0;
}

/* Register one host as an agent's installer would and heartbeat it once
 * with its own credentials (the zone's long lease keeps it Online). */
static int vm_host(struct bench *b, struct api_client *adm, long i)
{
    struct api_client_config cfg = {b->cr.endpoint, NULL, NULL, 0, 0};
    struct api_client *hc;
    char zone[96], name[64], pub[API_CLI_KEY_SIZE], priv[API_CLI_KEY_SIZE];
    char errmsg[YH_ERRMSG_SIZE];
    const msgpack_object *r;
    msgpack_unpacked u;
    int rc;

    snprintf(zone, sizeof zone, "ZoneID=%s", b->vm_zone);
    snprintf(name, sizeof name, "Name=bench-%s-%ld", b->run, i);
    msgpack_unpacked_init(&u);
    rc = setup_call(adm, &u, &r, "RegisterHost", zone, "CPU=" VM_HOST_CPU,
                    "Memory=" VM_HOST_MEMORY, name, NULL);
    if (rc == 0) {
        rc = field(r, "PublicKey", pub, sizeof pub);
    }
    if (rc == 0) {
        rc = field(r, "PrivateKey", priv, sizeof priv);
    }
    if (rc == 0) {
        cfg.public_key = pub;
        cfg.private_key = priv;
        rc = api_client_new(&hc, &cfg, errmsg);
        if (rc != 0) {
            fprintf(stderr, "yunhan bench: %s\n", errmsg);
        } else {
            rc = setup_call(hc, &u, &r, "HostHeartbeat", NULL);
            api_client_free(hc);
        }
    }
    msgpack_unpacked_destroy(&u);
    return rc == 0 ? 0 : -1;
}

/* Everything CreateVMInstance needs; afterwards b->cr holds the tenant's
 * key. The price book and the host lease are cluster-wide settings: run
 * this on a bench cluster. */
static int vm_setup(struct bench *b)
{
    struct api_client_config cfg = {b->cr.endpoint, b->cr.public_key,
                                    b->cr.private_key, 0, 0};
    struct api_client *c;
    char errmsg[YH_ERRMSG_SIZE];
    char a1[160], a2[160], a3[160], a4[160];
    const msgpack_object *r;
    msgpack_unpacked u;
    int64_t t0 = api_client_now_ms();
    int rc;

    if (api_client_new(&c, &cfg, errmsg) != 0) {
        fprintf(stderr, "yunhan bench: %s\n", errmsg);
        return -1;
    }
    msgpack_unpacked_init(&u);
    /* no agent heartbeats during the run: a lease that outlives it */
    rc = setup_call(c, &u, &r, "ModifyBillingConfig", "HostLease=864000", NULL);
    if (rc == 0) {
        snprintf(a1, sizeof a1, "Name=bench-%s", b->run);
        rc =
            setup_call(c, &u, &r, "CreateZone", a1, "CPUOvercommit=1000", NULL);
    }
    if (rc == 0) {
        rc = field(r, "ZoneID", b->vm_zone, sizeof b->vm_zone);
    }
    if (rc == 0) {
        /* where the boot disks go (Standard, the default set type) */
        char z[sizeof b->vm_zone + 8];
        snprintf(z, sizeof z, "ZoneID=%s", b->vm_zone);
        rc = setup_call(c, &u, &r, "CreateStoragePool", z, "SetType=Standard",
                        "Backend=local", "Capacity=1000000000", NULL);
    }
    for (long i = 0; rc == 0 && i < b->hosts; i++) {
        rc = vm_host(b, c, i);
    }
    if (rc == 0) {
        rc = setup_call(c, &u, &r, "CreateImage", a1, "Size=20", NULL);
    }
    if (rc == 0) {
        rc = field(r, "ImageID", b->image, sizeof b->image);
    }
    if (rc == 0) {
        rc = setup_call(c, &u, &r, "ModifyPrice", "Spec=CPU",
                        "ChargeType=Dynamic", "Price=10", NULL);
    }
    if (rc == 0) {
        rc = setup_call(c, &u, &r, "ModifyPrice", "Spec=Memory",
                        "ChargeType=Dynamic", "Price=5", NULL);
    }
    if (rc == 0) {
        snprintf(a1, sizeof a1, "UserEmail=benchvm-%s@bench.example", b->run);
        snprintf(a2, sizeof a2, "PassWord=Bench-%s-Pw1", b->run);
        rc = setup_call(c, &u, &r, "CreateUser", a1, a2, NULL);
    }
    if (rc == 0) {
        rc = field(r, "UserID", b->tenant, sizeof b->tenant);
    }
    snprintf(a1, sizeof a1, "UserID=%s", b->tenant);
    if (rc == 0) {
        snprintf(a2, sizeof a2, "SerialNo=bench-%s", b->run);
        rc = setup_call(c, &u, &r, "Recharge", a1, "Amount=1000000000000000",
                        "FromType=Bench", a2, NULL);
    }
    /* limits far above what a run creates, so every create is checked
     * against a quota and none is refused by one */
    if (rc == 0) {
        rc = setup_call(c, &u, &r, "ModifyQuota", a1, "ResourceType=VM",
                        "Limit=100000000", NULL);
    }
    if (rc == 0) {
        rc = setup_call(c, &u, &r, "ModifyQuota", a1, "ResourceType=CPU",
                        "Limit=100000000", NULL);
    }
    if (rc == 0) {
        rc = setup_call(c, &u, &r, "ModifyQuota", a1, "ResourceType=Memory",
                        "Limit=100000000000", NULL);
    }
    if (rc == 0) {
        rc = setup_call(c, &u, &r, "CreateAPIKey", a1, NULL);
    }
    if (rc == 0) {
        rc = field(r, "PublicKey", a3, sizeof a3);
    }
    if (rc == 0) {
        rc = field(r, "PrivateKey", a4, sizeof a4);
    }
    if (rc == 0) {
        snprintf(b->cr.public_key, sizeof b->cr.public_key, "%s", a3);
        snprintf(b->cr.private_key, sizeof b->cr.private_key, "%s", a4);
        fprintf(stderr,
                "yunhan bench: setup: zone %s, %ld hosts, image %s, tenant "
                "%s (%.1f s)\n",
                b->vm_zone, b->hosts, b->image, b->tenant,
                (double)(api_client_now_ms() - t0) / 1000);
    }
    msgpack_unpacked_destroy(&u);
    api_client_free(c);
    return rc == 0 ? 0 : -1;
}

/* After the run: the tenant's VM usage, as the state machine counts it
 * (must equal the acked creates). */
static void vm_report_usage(struct bench *b)
{
    struct api_client_config cfg = {b->cr.endpoint, b->cr.public_key,
                                    b->cr.private_key, 0, 0};
    struct yh_buf res = YH_BUF_INIT;
    struct api_client *c;
    char errmsg[YH_ERRMSG_SIZE];
    const msgpack_object *r, *infos;
    msgpack_unpacked u;
    static const uint8_t empty_map[] = {0x80};

    if (api_client_new(&c, &cfg, errmsg) != 0) {
        return;
    }
    msgpack_unpacked_init(&u);
    if (api_client_call(c, "DescribeQuota", empty_map, sizeof empty_map, &res,
                        errmsg) == 0 &&
        (r = api_cli_unpack(&u, res.data, res.len)) != NULL &&
        (infos = yh_mp_get(r, "Infos")) != NULL &&
        infos->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < infos->via.array.size; i++) {
            const msgpack_object *q = &infos->via.array.ptr[i];
            const msgpack_object *t = yh_mp_get(q, "ResourceType");
            int64_t used = -1;
            if (t != NULL && yh_mp_eq(t, "VM") &&
                yh_mp_int(q, "Used", &used) == 0) {
                printf("tenant VM usage after the run: %" PRId64
                       " (acked %" PRIu64 ")\n",
                       used, b->acked);
            }
        }
    }
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&res);
    api_client_free(c);
}

/* Append one signed request to @bc->out and remember it in a free slot. */
static int queue_request(struct bench *b,
                         struct bconn *bc,
                         int64_t now_ns,
                         int64_t now_s)
{
    msgpack_packer pk;
    char token[64], sig[API_SIG_HEX_SIZE], email[96];
    const char *action = b->action;
    uint32_t msgid = bc->next_msgid++;
    struct slot *s = NULL;
    int rc;

    for (long i = 0; i < b->pipeline; i++) {
        if (!bc->slots[i].busy) {
            s = &bc->slots[i];
            break;
        }
    }
    if (s == NULL) {
        return -1;
    }
    b->seq++;
    /* Zero-padded: tokens of a run sort in the order they are sent (see
     * api_cli_random_token). */
    snprintf(token, sizeof(token), "b%s-%016" PRIu64, b->run, b->seq);
    yh_buf_reset(&b->req);
    msgpack_packer_init(&pk, &b->req, yh_buf_msgpack_write);
    switch (b->kind) {
    case BENCH_MODIFY:
        /* A different remark each time: the write is never a no-op. */
        snprintf(b->remark, (size_t)b->size + 1, "%" PRIu64 "-", b->seq);
        b->remark[strlen(b->remark)] = 'x';
        b->remark[b->size] = '\0';
        msgpack_pack_map(&pk, 3);
        yh_mp_pack_kv_str(&pk, "ResourceID", b->user_id);
        yh_mp_pack_kv_str(&pk, "Remark", b->remark);
        yh_mp_pack_kv_str(&pk, "RequestToken", token);
        break;
    case BENCH_CREATE:
        snprintf(email, sizeof(email), "bench-%s-%" PRIu64 "@bench.example",
                 b->run, b->seq);
        msgpack_pack_map(&pk, 3);
        yh_mp_pack_kv_str(&pk, "UserEmail", email);
        yh_mp_pack_kv_str(&pk, "PassWord", "Bench-Pw1-long-enough");
        yh_mp_pack_kv_str(&pk, "RequestToken", token);
        break;
    case BENCH_VM:
        msgpack_pack_map(&pk, 6);
        yh_mp_pack_kv_str(&pk, "ZoneID", b->vm_zone);
        yh_mp_pack_kv_str(&pk, "ImageID", b->image);
        yh_mp_pack_kv_int(&pk, "CPU", VM_CPU);
        yh_mp_pack_kv_int(&pk, "Memory", VM_MEMORY);
        yh_mp_pack_kv_str(&pk, "ChargeType", "Dynamic");
        yh_mp_pack_kv_str(&pk, "RequestToken", token);
        break;
    case BENCH_READ:
        msgpack_pack_map(&pk, b->stale ? 2 : 1);
        yh_mp_pack_kv_str(&pk, "UserIDs.0", b->user_id);
        if (b->stale) {
            yh_mp_pack_kv_str(&pk, "Consistency", "stale");
        }
        break;
    }
    rc = api_auth_sign(b->cr.private_key, action, strlen(action), now_s,
                       b->req.data, b->req.len, sig);
    if (rc == 0) {
        rc = api_frame_pack_request(&bc->out, msgid, action, b->req.data,
                                    b->req.len, b->cr.public_key, now_s, sig);
    }
    if (rc != 0) {
        fprintf(stderr, "yunhan bench: cannot encode a request: %s\n",
                yh_strerror(rc));
        return -1;
    }
    s->busy = 1;
    s->msgid = msgid;
    s->start_ns = now_ns;
    bc->n_inflight++;
    return 0;
}

static void conn_fail(struct bench *b, struct bconn *bc, const char *why)
{
    fprintf(stderr, "yunhan bench: connection %u to %s: %s\n", bc->id,
            bc->endpoint, why);
    b->conn_lost += bc->n_inflight;
    bc->n_inflight = 0;
    close(bc->fd);
    bc->fd = -1;
    /* Start clean on the next endpoint after a pause (see run()). */
    yh_buf_reset(&bc->out);
    bc->out_off = 0;
    api_frame_reader_release(&bc->rd);
    api_frame_reader_init(&bc->rd, API_MAX_MESSAGE, API_MAX_DEPTH);
    for (long i = 0; i < b->pipeline; i++) {
        bc->slots[i].busy = 0;
    }
    bc->ep = (bc->ep + 1) % b->n_endpoints;
    bc->endpoint = b->endpoints[bc->ep];
    bc->retry_ns = api_client_now_ns() + 200 * 1000000LL;
}

static int record_latency(struct bench *b, int64_t ns)
{
    if (b->n_lat == b->cap_lat) {
        size_t cap = b->cap_lat ? 2 * b->cap_lat : 65536;
        int64_t *p = realloc(b->lat_ns, cap * sizeof(*p));
        if (p == NULL) {
            return -1;
        }
        b->lat_ns = p;
        b->cap_lat = cap;
    }
    b->lat_ns[b->n_lat++] = ns;
    return 0;
}

/* Handle every complete message buffered on @bc. */
static void drain_frames(struct bench *b, struct bconn *bc, int64_t now_ns)
{
    for (;;) {
        const uint8_t *p;
        size_t n;
        struct api_msg m;
        int known = 0;
        char errmsg[YH_ERRMSG_SIZE];
        const msgpack_object *o;
        int64_t rc64 = -1;
        int rc = api_frame_reader_next(&bc->rd, &p, &n, errmsg, sizeof(errmsg));

        if (rc == YH_EAGAIN) {
            return;
        }
        if (rc == 0) {
            msgpack_zone_clear(&b->zone);
            rc = api_frame_decode(p, n, &b->zone, &m, &known, errmsg,
                                  sizeof(errmsg));
        }
        if (rc != 0) {
            conn_fail(b, bc, errmsg);
            return;
        }
        if (m.type != API_MSG_RESPONSE) {
            continue;
        }
        for (long i = 0; i < b->pipeline; i++) {
            struct slot *s = &bc->slots[i];
            if (!s->busy || s->msgid != m.msgid) {
                continue;
            }
            s->busy = 0;
            bc->n_inflight--;
            o = m.error != NULL && m.error->type != MSGPACK_OBJECT_NIL
                    ? m.error
                    : m.result;
            if (yh_mp_int(o, "RetCode", &rc64) != 0) {
                rc64 = -1;
            }
            if (rc64 == 0) {
                int64_t sec = (now_ns - b->start_ns) / 1000000000LL;
                b->acked++;
                if (b->per_sec != NULL && sec >= 0 && sec < TIMELINE_MAX) {
                    b->per_sec[sec]++;
                }
            } else if (rc64 > 0 && rc64 < MAX_RETCODE) {
                b->errors[rc64]++;
                if (rc64 == YH_EUNAVAIL || rc64 == YH_EBUSY) {
                    /* Back off like a real client: hammering a cluster
                     * that is electing only slows the election down. */
                    bc->retry_ns = now_ns + 100 * 1000000LL;
                }
            } else {
                b->errors[MAX_RETCODE]++;
            }
            if (record_latency(b, now_ns - s->start_ns) != 0) {
                conn_fail(b, bc, "out of memory");
                return;
            }
            break;
        }
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(struct bench *b, double elapsed_s)
{
    double p50 = 0, p99 = 0, max = 0;
    uint64_t n_err = b->conn_lost;

    qsort(b->lat_ns, b->n_lat, sizeof(*b->lat_ns), cmp_i64);
    if (b->n_lat > 0) {
        size_t i99 = b->n_lat * 99 / 100;
        p50 = (double)b->lat_ns[b->n_lat / 2] / 1e6;
        p99 = (double)b->lat_ns[i99 < b->n_lat ? i99 : b->n_lat - 1] / 1e6;
        max = (double)b->lat_ns[b->n_lat - 1] / 1e6;
    }
    for (int i = 0; i <= MAX_RETCODE; i++) {
        n_err += b->errors[i];
    }
    if (b->json) {
        printf(
            "{\"action\":\"%s\",\"connections\":%ld,\"pipeline\":%ld,"
            "\"seconds\":%ld,\"size\":%ld,\"requests\":%" PRIu64
            ",\"acked\":%" PRIu64
            ",\"acked_per_s\":%.1f,\"p50_ms\":%.3f,"
            "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"errors\":{",
            b->action, b->n_conns, b->pipeline, b->seconds,
            b->kind == BENCH_MODIFY ? b->size : 0, b->seq, b->acked,
            (double)b->acked / elapsed_s, p50, p99, max);
        int first = 1;
        for (int i = 0; i <= MAX_RETCODE; i++) {
            if (b->errors[i] > 0) {
                printf("%s\"%s%d\":%" PRIu64, first ? "" : ",",
                       i == MAX_RETCODE ? "other" : "",
                       i == MAX_RETCODE ? 0 : i, b->errors[i]);
                first = 0;
            }
        }
        if (b->conn_lost > 0) {
            printf("%s\"connection\":%" PRIu64, first ? "" : ",", b->conn_lost);
        }
        printf("}}\n");
        return;
    }
    printf("bench: %s%s, %ld connections x %ld in flight, %ld s", b->action,
           b->kind == BENCH_READ && b->stale ? " (stale)" : "", b->n_conns,
           b->pipeline, b->seconds);
    if (b->kind == BENCH_MODIFY) {
        printf(", %ld-byte remark", b->size);
    }
    if (b->kind == BENCH_VM) {
        printf(", %d CPU %d MB Dynamic, tenant %s, %ld hosts in %s", VM_CPU,
               VM_MEMORY, b->tenant, b->hosts, b->vm_zone);
    }
    printf("\nendpoints:  %s%s\n", b->endpoints[0],
           b->leader_only || b->n_endpoints < 2
               ? " (the leader; every connection)"
               : " (the leader, connection 0) + others round-robin");
    printf("requests:   %" PRIu64 " sent, %" PRIu64 " acked, %" PRIu64
           " failed\n",
           b->seq, b->acked, n_err);
    printf("throughput: %.1f acked/s\n", (double)b->acked / elapsed_s);
    printf("latency ms: p50 %.3f  p99 %.3f  max %.3f  (%zu samples)\n", p50,
           p99, max, b->n_lat);
    for (int i = 0; i < MAX_RETCODE; i++) {
        if (b->errors[i] > 0) {
            printf("errors:     RetCode %d (%s): %" PRIu64 "\n", i,
                   yh_strerror(i), b->errors[i]);
        }
    }
    if (b->errors[MAX_RETCODE] > 0) {
        printf("errors:     no RetCode: %" PRIu64 "\n", b->errors[MAX_RETCODE]);
    }
    if (b->conn_lost > 0) {
        printf("errors:     lost with a connection: %" PRIu64 "\n",
               b->conn_lost);
    }
    if (b->reconnects > 0) {
        printf("reconnects: %" PRIu64 "\n", b->reconnects);
    }
    if (b->per_sec != NULL) {
        printf("acked/s:   ");
        for (long i = 0; i <= (long)elapsed_s && i < TIMELINE_MAX; i++) {
            printf(" %" PRIu32, b->per_sec[i]);
        }
        printf("\n");
    }
}

static int run(struct bench *b)
{
    struct bconn *conns = calloc((size_t)b->n_conns, sizeof(*conns));
    struct pollfd *pfds = calloc((size_t)b->n_conns, sizeof(*pfds));
    int64_t start, stop_send, stop_all, now, last_done;
    char errmsg[YH_ERRMSG_SIZE];
    int ret = 0;

    if (conns == NULL || pfds == NULL) {
        free(conns);
        free(pfds);
        return -1;
    }
    for (long i = 0; i < b->n_conns; i++) {
        struct bconn *bc = &conns[i];
        bc->id = (unsigned)i;
        bc->ep = b->leader_only ? 0 : (int)(i % b->n_endpoints);
        bc->endpoint = b->endpoints[bc->ep];
        bc->next_msgid = 1;
        yh_buf_init(&bc->out);
        api_frame_reader_init(&bc->rd, API_MAX_MESSAGE, API_MAX_DEPTH);
        bc->slots = calloc((size_t)b->pipeline, sizeof(*bc->slots));
        bc->fd = api_client_connect(bc->endpoint, 5000, errmsg);
        if (bc->slots == NULL || bc->fd < 0) {
            fprintf(stderr, "yunhan bench: %s\n",
                    bc->slots == NULL ? "out of memory" : errmsg);
            ret = -1;
            goto out;
        }
    }
    start = api_client_now_ns();
    b->start_ns = start;
    last_done = start;
    stop_send = start + b->seconds * 1000000000LL;
    stop_all = stop_send + DRAIN_MS * 1000000LL;
    for (;;) {
        int sending, busy = 0;
        int64_t now_s = (int64_t)time(NULL);

        now = api_client_now_ns();
        sending =
            now < stop_send && (b->count == 0 || b->seq < (uint64_t)b->count);
        for (long i = 0; i < b->n_conns; i++) {
            struct bconn *bc = &conns[i];
            pfds[i].fd = bc->fd;
            pfds[i].events = 0;
            pfds[i].revents = 0;
            if (bc->fd < 0 && sending && now >= bc->retry_ns) {
                bc->fd = api_client_connect(bc->endpoint, 1000, errmsg);
                if (bc->fd < 0) {
                    bc->ep = (bc->ep + 1) % b->n_endpoints;
                    bc->endpoint = b->endpoints[bc->ep];
                    bc->retry_ns = now + 200 * 1000000LL;
                } else {
                    b->reconnects++;
                }
                pfds[i].fd = bc->fd;
            }
            if (bc->fd < 0) {
                continue;
            }
            while (sending && now >= bc->retry_ns &&
                   bc->n_inflight < (unsigned)b->pipeline) {
                if (queue_request(b, bc, now, now_s) != 0) {
                    ret = -1;
                    goto out;
                }
            }
            busy += bc->n_inflight > 0;
            pfds[i].events = POLLIN;
            if (bc->out_off < bc->out.len) {
                pfds[i].events |= POLLOUT;
            }
        }
        if ((!sending && busy == 0) || now >= stop_all) {
            break;
        }
        if (poll(pfds, (nfds_t)b->n_conns, 20) == -1 && errno != EINTR) {
            fprintf(stderr, "yunhan bench: poll: %s\n", strerror(errno));
            ret = -1;
            goto out;
        }
        now = api_client_now_ns();
        for (long i = 0; i < b->n_conns; i++) {
            struct bconn *bc = &conns[i];
            uint8_t buf[65536];
            ssize_t r;

            if (bc->fd < 0 || pfds[i].revents == 0) {
                continue;
            }
            if (pfds[i].revents & POLLOUT) {
                r = send(bc->fd, bc->out.data + bc->out_off,
                         bc->out.len - bc->out_off, MSG_NOSIGNAL);
                if (r > 0) {
                    bc->out_off += (size_t)r;
                    if (bc->out_off == bc->out.len) {
                        yh_buf_reset(&bc->out);
                        bc->out_off = 0;
                    }
                } else if (r == -1 && errno != EAGAIN && errno != EINTR) {
                    conn_fail(b, bc, strerror(errno));
                    continue;
                }
            }
            if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                r = recv(bc->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (r > 0) {
                    uint64_t before = b->n_lat;
                    if (api_frame_reader_feed(&bc->rd, buf, (size_t)r) != 0) {
                        conn_fail(b, bc, "out of memory");
                        continue;
                    }
                    drain_frames(b, bc, now);
                    if (b->n_lat != before) {
                        last_done = now;
                    }
                } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    conn_fail(b, bc,
                              r == 0 ? "closed by server" : strerror(errno));
                }
            }
        }
    }
    for (long i = 0; i < b->n_conns; i++) {
        b->conn_lost += conns[i].n_inflight; /* not answered in the drain */
    }
    if (last_done <= start) {
        last_done = api_client_now_ns();
    }
    report(b, (double)(last_done - start) / 1e9);
out:
    for (long i = 0; i < b->n_conns; i++) {
        if (conns[i].fd >= 0) {
            close(conns[i].fd);
        }
        yh_buf_release(&conns[i].out);
        api_frame_reader_release(&conns[i].rd);
        free(conns[i].slots);
    }
    free(conns);
    free(pfds);
    return ret;
}

int api_cli_bench_main(int argc, char *argv[])
{
    struct bench b;
    const char *endpoint = NULL;
    char errmsg[YH_ERRMSG_SIZE];
    int ret;

    memset(&b, 0, sizeof(b));
    b.kind = BENCH_MODIFY;
    b.action = "ModifyNameAndRemark";
    b.n_conns = -1;
    b.pipeline = -1;
    b.seconds = -1;
    b.size = 256;
    b.hosts = 32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        long *target = NULL;
        long min = 1, max = 0;

        if (strcmp(a, "--help") == 0) {
            api_cli_bench_usage(stdout);
            return 0;
        }
        if (strcmp(a, "--read") == 0) {
            b.kind = BENCH_READ;
            continue;
        }
        if (strcmp(a, "--leader-only") == 0) {
            b.leader_only = 1;
            continue;
        }
        if (strcmp(a, "--stale") == 0) {
            b.stale = 1;
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            b.json = 1;
            continue;
        }
        if (strcmp(a, "--timeline") == 0) {
            b.timeline = 1;
            continue;
        }
        if (val == NULL) {
            return b_usage("bad or incomplete option '%s'", a);
        }
        i++;
        if (strcmp(a, "--endpoint") == 0) {
            endpoint = val;
            continue;
        }
        if (strcmp(a, "--action") == 0) {
            if (strcmp(val, "ModifyNameAndRemark") == 0) {
                b.kind = b.kind == BENCH_READ ? BENCH_READ : BENCH_MODIFY;
            } else if (strcmp(val, "CreateUser") == 0) {
                b.kind = BENCH_CREATE;
            } else if (strcmp(val, "CreateVMInstance") == 0) {
                b.kind = BENCH_VM;
            } else {
                return b_usage("unsupported --action '%s'", val);
            }
            continue;
        }
        if (strcmp(a, "--connections") == 0) {
            target = &b.n_conns;
            max = 4096;
        } else if (strcmp(a, "--pipeline") == 0) {
            target = &b.pipeline;
            max = 4096;
        } else if (strcmp(a, "--seconds") == 0) {
            target = &b.seconds;
            max = 86400;
        } else if (strcmp(a, "--hosts") == 0) {
            target = &b.hosts;
            max = 10000;
        } else if (strcmp(a, "--count") == 0) {
            target = &b.count;
            max = 1L << 40;
        } else if (strcmp(a, "--resource") == 0) {
            if (strlen(val) >= sizeof(b.user_id)) {
                return b_usage("bad value for %s", a);
            }
            snprintf(b.user_id, sizeof(b.user_id), "%s", val);
            continue;
        } else if (strcmp(a, "--size") == 0) {
            target = &b.size;
            min = 24;
            max = 1 << 20;
        } else {
            return b_usage("unknown option '%s'", a);
        }
        if (num(val, min, max, target) != 0) {
            return b_usage("bad value for %s", a);
        }
    }
    if (b.n_conns < 0 || b.pipeline < 0 || b.seconds < 0) {
        return b_usage(
            "--connections, --pipeline and --seconds are "
            "required%s",
            "");
    }
    b.action = b.kind == BENCH_MODIFY   ? "ModifyNameAndRemark"
               : b.kind == BENCH_CREATE ? "CreateUser"
               : b.kind == BENCH_VM     ? "CreateVMInstance"
                                        : "DescribeUser";
    if (b.stale && b.kind != BENCH_READ) {
        return b_usage("--stale goes with --read%s", "");
    }
    if (api_cli_load_creds(endpoint, &b.cr, errmsg) != 0) {
        fprintf(stderr, "yunhan bench: %s\n", errmsg);
        return API_CLI_EXIT_USAGE;
    }
    if (b.cr.public_key[0] == '\0') {
        fprintf(stderr,
                "yunhan bench: needs API keys (YUNHAN_PUBLIC_KEY, "
                "YUNHAN_PRIVATE_KEY)\n");
        return API_CLI_EXIT_USAGE;
    }
    b.n_endpoints = api_client_parse_endpoints(
        b.cr.endpoint, b.endpoints, API_CLIENT_MAX_ENDPOINTS, errmsg);
    if (b.n_endpoints < 0) {
        fprintf(stderr, "yunhan bench: %s\n", errmsg);
        return API_CLI_EXIT_USAGE;
    }
    leader_first(&b);
    if (api_auth_random_hex(8, b.run) != 0) {
        fprintf(stderr, "yunhan bench: no randomness\n");
        return API_CLI_EXIT_ERROR;
    }
    b.remark = malloc((size_t)b.size + 1);
    if (b.remark == NULL || !msgpack_zone_init(&b.zone, 4096)) {
        free(b.remark);
        return API_CLI_EXIT_ERROR;
    }
    memset(b.remark, 'x', (size_t)b.size);
    b.remark[b.size] = '\0';
    if (b.timeline) {
        b.per_sec = calloc(TIMELINE_MAX, sizeof *b.per_sec);
        if (b.per_sec == NULL) {
            free(b.remark);
            msgpack_zone_destroy(&b.zone);
            return API_CLI_EXIT_ERROR;
        }
    }
    ret = API_CLI_EXIT_OK;
    if (b.kind == BENCH_VM) {
        if (vm_setup(&b) != 0 || run(&b) != 0) {
            ret = API_CLI_EXIT_ERROR;
        } else {
            vm_report_usage(&b);
        }
    } else if (b.kind != BENCH_CREATE && b.user_id[0] == '\0' &&
               create_target(&b) != 0) {
        ret = API_CLI_EXIT_ERROR;
    } else if (run(&b) != 0) {
        ret = API_CLI_EXIT_ERROR;
    }
    free(b.per_sec);
    msgpack_zone_destroy(&b.zone);
    yh_buf_release(&b.req);
    free(b.remark);
    free(b.lat_ns);
    return ret;
}
