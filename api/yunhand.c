/* yunhand: one Yunhan management node.
 *
 *   yunhand --id N --data-dir DIR --raft-addr H:P --api-addr H:P
 *           --peer ID,RAFT,API ... [--join] [--admin-key-file F]
 *           [--cluster-secret-file F] [--snapshot-threshold N]
 *           [--snapshot-trailing N] [--election-timeout MS]
 *           [--heartbeat-timeout MS] [--log-level L] [--pid-file F]
 *           [--config FILE]
 *
 * A config file holds "key = value" lines with the same keys (no dashes);
 * flags given after --config override it. SIGTERM/SIGINT stop gracefully. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/server/server.h"
#include "cluster/cluster.h"
#include "fsm/base/log.h"

YH_LOG_MODULE("yunhand");

struct opts
{
    struct cluster_config cluster;
    struct api_server_config api;
    char pid_file[1024];
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: yunhand --id N --data-dir DIR --raft-addr HOST:PORT "
            "--api-addr HOST:PORT\n"
            "               --peer ID,RAFTADDR,APIADDR [--peer ...] [--join]\n"
            "               [--admin-key-file FILE] [--cluster-secret-file "
            "FILE]\n"
            "               [--snapshot-threshold N] [--snapshot-trailing N]\n"
            "               [--segment-size BYTES] "
            "[--install-snapshot-timeout MS]\n"
            "               [--election-timeout MS] [--heartbeat-timeout MS]\n"
            "               [--map-budget-mb MB]\n"
            "               [--log-level error|warn|info|debug] [--pid-file "
            "FILE]\n"
            "               [--config FILE]\n");
}

static int parse_uint(const char *v,
                      unsigned long long max,
                      unsigned long long *out)
{
    char *end;

    errno = 0;
    *out = strtoull(v, &end, 10);
    return (errno != 0 || end == v || *end != '\0' || *out > max) ? -1 : 0;
}

static int read_first_line(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL) {
        fprintf(stderr, "yunhand: cannot open '%s': %s\n", path,
                strerror(errno));
        return -1;
    }
    if (fgets(out, (int)size, f) == NULL) {
        fclose(f);
        fprintf(stderr, "yunhand: '%s' is empty\n", path);
        return -1;
    }
    fclose(f);
    n = strlen(out);
    while (n > 0 &&
           (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ')) {
        out[--n] = '\0';
    }
    return 0;
}

static int parse_config_file(struct opts *o, const char *path);

/* Apply one option (key without dashes). */
static int set_opt(struct opts *o, const char *key, const char *val)
{
    struct cluster_config *c = &o->cluster;
    unsigned long long x;

    if (strcmp(key, "join") == 0) {
        c->join = val == NULL || strcmp(val, "0") != 0;
        return 0;
    }
    if (val == NULL) {
        fprintf(stderr, "yunhand: option '%s' needs a value\n", key);
        return -1;
    }
    if (strcmp(key, "config") == 0) {
        return parse_config_file(o, val);
    } else if (strcmp(key, "id") == 0) {
        if (parse_uint(val, 65535, &x) != 0 || x == 0) {
            fprintf(stderr, "yunhand: id must be 1..65535\n");
            return -1;
        }
        c->id = x;
    } else if (strcmp(key, "data-dir") == 0) {
        snprintf(c->data_dir, sizeof c->data_dir, "%s", val);
    } else if (strcmp(key, "raft-addr") == 0) {
        snprintf(c->raft_addr, sizeof c->raft_addr, "%s", val);
    } else if (strcmp(key, "api-addr") == 0) {
        snprintf(c->api_addr, sizeof c->api_addr, "%s", val);
        snprintf(o->api.listen_addr, sizeof o->api.listen_addr, "%s", val);
    } else if (strcmp(key, "peer") == 0) {
        struct fsm_node *p;
        char tmp[256];
        char *a;
        char *b;
        if (c->n_peers == CLUSTER_MAX_NODES) {
            fprintf(stderr, "yunhand: too many peers\n");
            return -1;
        }
        snprintf(tmp, sizeof tmp, "%s", val);
        a = strchr(tmp, ',');
        b = a ? strchr(a + 1, ',') : NULL;
        if (a == NULL || b == NULL) {
            fprintf(stderr, "yunhand: --peer wants ID,RAFTADDR,APIADDR\n");
            return -1;
        }
        *a++ = '\0';
        *b++ = '\0';
        p = &c->peers[c->n_peers];
        if (parse_uint(tmp, 65535, &x) != 0 || x == 0) {
            fprintf(stderr, "yunhand: bad peer id '%s'\n", tmp);
            return -1;
        }
        p->id = x;
        snprintf(p->raft_addr, sizeof p->raft_addr, "%s", a);
        snprintf(p->api_addr, sizeof p->api_addr, "%s", b);
        c->n_peers++;
    } else if (strcmp(key, "admin-key-file") == 0) {
        char line[2 * FSM_KEY_SIZE + 2];
        char *sp;
        if (read_first_line(val, line, sizeof line) != 0) {
            return -1;
        }
        sp = strchr(line, ' ');
        if (sp == NULL || sp - line >= FSM_KEY_SIZE ||
            strlen(sp + 1) >= FSM_KEY_SIZE || sp[1] == '\0') {
            fprintf(stderr, "yunhand: '%s' must hold \"PUBLIC PRIVATE\"\n",
                    val);
            return -1;
        }
        *sp = '\0';
        snprintf(c->admin_public, sizeof c->admin_public, "%s", line);
        snprintf(c->admin_private, sizeof c->admin_private, "%s", sp + 1);
    } else if (strcmp(key, "cluster-secret-file") == 0) {
        if (read_first_line(val, o->api.cluster_secret,
                            sizeof o->api.cluster_secret) != 0) {
            return -1;
        }
    } else if (strcmp(key, "snapshot-threshold") == 0) {
        if (parse_uint(val, 1u << 30, &x) != 0 || x < 2) {
            fprintf(stderr, "yunhand: bad snapshot-threshold\n");
            return -1;
        }
        c->snapshot_threshold = (unsigned)x;
    } else if (strcmp(key, "snapshot-trailing") == 0) {
        if (parse_uint(val, 1u << 30, &x) != 0) {
            fprintf(stderr, "yunhand: bad snapshot-trailing\n");
            return -1;
        }
        c->snapshot_trailing = (unsigned)x;
    } else if (strcmp(key, "install-snapshot-timeout") == 0) {
        if (parse_uint(val, 3600000, &x) != 0 || x < 100) {
            fprintf(stderr, "yunhand: bad install-snapshot-timeout (ms)\n");
            return -1;
        }
        c->install_snapshot_timeout_ms = (unsigned)x;
    } else if (strcmp(key, "test-snapshot-hold-file") == 0) {
        /* Testing only (cluster.h): a regression test holds a snapshot. */
        if (strlen(val) >= sizeof c->test_snapshot_hold_file) {
            fprintf(stderr, "yunhand: test-snapshot-hold-file too long\n");
            return -1;
        }
        snprintf(c->test_snapshot_hold_file, sizeof c->test_snapshot_hold_file,
                 "%s", val);
    } else if (strcmp(key, "segment-size") == 0) {
        /* raft_uv wants a multiple of its block size (4 KiB here). */
        if (parse_uint(val, 1u << 30, &x) != 0 || x < 65536 || x % 4096) {
            fprintf(stderr,
                    "yunhand: bad segment-size (a multiple of 4096, "
                    "at least 65536)\n");
            return -1;
        }
        c->segment_size = (size_t)x;
    } else if (strcmp(key, "map-budget-mb") == 0) {
        if (parse_uint(val, 1u << 20, &x) != 0) {
            fprintf(stderr, "yunhand: bad map-budget-mb (0 = never trim)\n");
            return -1;
        }
        c->map_budget = (size_t)x << 20;
    } else if (strcmp(key, "election-timeout") == 0) {
        if (parse_uint(val, 600000, &x) != 0 || x < 10) {
            fprintf(stderr, "yunhand: bad election-timeout\n");
            return -1;
        }
        c->election_timeout_ms = (unsigned)x;
    } else if (strcmp(key, "heartbeat-timeout") == 0) {
        if (parse_uint(val, 600000, &x) != 0 || x < 1) {
            fprintf(stderr, "yunhand: bad heartbeat-timeout\n");
            return -1;
        }
        c->heartbeat_timeout_ms = (unsigned)x;
    } else if (strcmp(key, "log-level") == 0) {
        if (strcmp(val, "error") == 0) {
            yh_log_level = YH_LOG_ERR;
        } else if (strcmp(val, "warn") == 0) {
            yh_log_level = YH_LOG_WARN;
        } else if (strcmp(val, "info") == 0) {
            yh_log_level = YH_LOG_INFO;
        } else if (strcmp(val, "debug") == 0) {
            yh_log_level = YH_LOG_DBG;
        } else {
            fprintf(stderr, "yunhand: bad log-level '%s'\n", val);
            return -1;
        }
    } else if (strcmp(key, "pid-file") == 0) {
        snprintf(o->pid_file, sizeof o->pid_file, "%s", val);
    } else {
        fprintf(stderr, "yunhand: unknown option '%s'\n", key);
        return -1;
    }
    return 0;
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    e = s + strlen(s);
    while (e > s &&
           (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) {
        *--e = '\0';
    }
    return s;
}

static int parse_config_file(struct opts *o, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int lineno = 0;

    if (f == NULL) {
        fprintf(stderr, "yunhand: cannot open config '%s': %s\n", path,
                strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char *eq;
        char *k;
        lineno++;
        k = trim(line);
        if (*k == '\0' || *k == '#') {
            continue;
        }
        eq = strchr(k, '=');
        if (eq == NULL) {
            fprintf(stderr, "yunhand: %s:%d: expected key = value\n", path,
                    lineno);
            fclose(f);
            return -1;
        }
        *eq = '\0';
        if (set_opt(o, trim(k), trim(eq + 1)) != 0) {
            fprintf(stderr, "yunhand: in %s:%d\n", path, lineno);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

static uv_loop_t loop;
static struct cluster *the_cluster;
static struct api_server *the_server;
static uv_signal_t sig_term;
static uv_signal_t sig_int;
static int stopping;

static void cluster_closed(void *arg)
{
    (void)arg;
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
}

static void server_closed(void *arg)
{
    (void)arg;
    cluster_close(the_cluster, cluster_closed, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    if (stopping) {
        return;
    }
    stopping = 1;
    YH_INFO("signal %d: stopping", signum);
    if (the_server != NULL) {
        api_server_close(the_server, server_closed, NULL);
    } else {
        cluster_close(the_cluster, cluster_closed, NULL);
    }
}

int main(int argc, char **argv)
{
    sigset_t stop_signals;
    struct opts o;
    char errmsg[YH_ERRMSG_SIZE] = "";
    static char tag[16];
    int rc;

    memset(&o, 0, sizeof o);
    cluster_config_defaults(&o.cluster);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0) {
            usage(stderr);
            return 2;
        }
        a += 2;
        if (strcmp(a, "join") == 0) {
            o.cluster.join = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "yunhand: --%s needs a value\n", a);
            return 2;
        }
        if (set_opt(&o, a, argv[++i]) != 0) {
            return 2;
        }
    }
    if (o.cluster.id == 0 || o.cluster.data_dir[0] == '\0' ||
        o.cluster.raft_addr[0] == '\0' || o.api.listen_addr[0] == '\0') {
        fprintf(stderr,
                "yunhand: --id, --data-dir, --raft-addr and "
                "--api-addr are required\n");
        usage(stderr);
        return 2;
    }
    if (!o.cluster.join && o.cluster.n_peers == 0) {
        fprintf(stderr,
                "yunhand: give every initial member with --peer "
                "(or --join)\n");
        return 2;
    }
    snprintf(tag, sizeof tag, "n%" PRIu64, o.cluster.id);
    yh_log_tag = tag;
    signal(SIGPIPE, SIG_IGN);
    /* A SIGTERM or SIGINT that comes while the node opens (which can take
     * seconds with a long log) waits until the loop's handlers are in
     * place, so it still stops the node gracefully (jepsen: a node stopped
     * 13 ms after its start died of the signal). Threads started meanwhile
     * keep them blocked, so they go to this thread. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    uv_loop_init(&loop);
    rc = cluster_open(&the_cluster, &loop, &o.cluster, errmsg);
    if (rc != 0) {
        fprintf(stderr, "yunhand: %s (%s)\n", errmsg, yh_strerror(rc));
        return 1;
    }
    rc = api_server_open(&the_server, &loop, the_cluster, &o.api, errmsg);
    if (rc != 0) {
        fprintf(stderr, "yunhand: %s\n", errmsg);
        return 1;
    }
    if (o.pid_file[0] != '\0') {
        FILE *f = fopen(o.pid_file, "w");
        if (f != NULL) {
            fprintf(f, "%d\n", (int)getpid());
            fclose(f);
        }
    }
    uv_signal_init(&loop, &sig_term);
    uv_signal_init(&loop, &sig_int);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL);

    uv_run(&loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&loop);
    if (rc != 0) {
        YH_WARN("loop closed with handles open: %s", uv_strerror(rc));
    }
    YH_INFO("stopped");
    return 0;
}
