/* yunhan cluster: run a local cluster of yunhand processes in a directory.
 *
 *   DIR/admin.key       "PUBLIC PRIVATE" of the bootstrap admin (0600)
 *   DIR/cluster.secret  node-to-node forwarding secret (0600)
 *   DIR/n<i>.conf       yunhand --config file of node i
 *   DIR/n<i>/           its data dir
 *   DIR/n<i>.log        its stdout + stderr
 *   DIR/n<i>.pid        its pid (written here, after fork)
 *   DIR/env             shell exports for the CLI
 *
 * Node i listens for the API on 127.0.0.1:B+i and for raft on B+100+i.
 * Processes are started with fork + setsid + exec so that they outlive the
 * CLI and do not get the terminal's signals. Before signalling a pid from a
 * pid file we check that it still is a yunhand process (pids get reused).
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../fsm/base/err.h"
#include "../../fsm/base/mp.h"
#include "../wire/auth.h"
#include "../wire/frame.h"
#include "client.h"

#define MAX_NODES 64

struct cl_opts
{
    const char *dir;    /* --dir */
    long nodes;         /* --nodes */
    long base_port;     /* --base-port */
    long node;          /* --node */
    const char *signal; /* --signal */
    long timeout_s;     /* --timeout: bound of the waits */
    const char *snap_threshold, *snap_trailing; /* passed through */
    const char *segment_size;
    const char *election_timeout, *heartbeat_timeout, *log_level;
};

/* What the CLI needs from one node's conf. */
struct node_info
{
    long id;
    char api_addr[64];
    char raft_addr[64];
};

void api_cli_cluster_usage(FILE *out)
{
    fprintf(out,
            "local clusters (one directory per cluster):\n"
            "  yunhan cluster up --dir DIR [--nodes 3] [--base-port 7400]\n"
            "         [--snapshot-threshold N] [--snapshot-trailing N]\n"
            "         [--segment-size BYTES]\n"
            "         [--election-timeout MS] [--heartbeat-timeout MS]\n"
            "         [--log-level error|warn|info|debug] [--timeout S]\n"
            "  yunhan cluster down --dir DIR\n"
            "  yunhan cluster status --dir DIR\n"
            "  yunhan cluster kill --dir DIR --node N "
            "[--signal KILL|TERM|STOP|CONT]\n"
            "  yunhan cluster start --dir DIR --node N [--timeout S]\n"
            "  yunhan cluster add --dir DIR --node N [--timeout S]\n"
            "  yunhan cluster remove --dir DIR --node N\n"
            "  node i: API 127.0.0.1:BASE+i, raft 127.0.0.1:BASE+100+i; "
            "'. DIR/env' sets\n"
            "  YUNHAN_ENDPOINT and the admin keys.\n");
}

static int cl_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "yunhan cluster: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    api_cli_cluster_usage(stderr);
    return API_CLI_EXIT_USAGE;
}

static int parse_num(const char *s, long min, long max, long *out)
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

static int path_fmt(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int path_fmt(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Write @s to @path via a temporary file and rename, with @mode. */
static int write_file(const char *path, const char *s, mode_t mode)
{
    char tmp[PATH_MAX];
    int fd;
    size_t n = strlen(s);

    if (path_fmt(tmp, sizeof(tmp), "%s.tmp", path) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd == -1) {
        return -1;
    }
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w == -1 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    if (fchmod(fd, mode) == -1 || close(fd) == -1) {
        unlink(tmp);
        return -1;
    }
    return rename(tmp, path);
}

/* ---- node discovery -------------------------------------------------- */

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* Ids of the nodes with a DIR/n<id>.conf, sorted. */
static int list_nodes(const char *dir, long *ids, int max)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        const char *s = e->d_name;
        char *end;
        long id;

        if (s[0] != 'n' || s[1] < '1' || s[1] > '9') {
            continue;
        }
        id = strtol(s + 1, &end, 10);
        if (strcmp(end, ".conf") != 0 || n == max) {
            continue;
        }
        ids[n++] = id;
    }
    closedir(d);
    qsort(ids, (size_t)n, sizeof(*ids), cmp_long);
    return n;
}

static int read_node(const char *dir, long id, struct node_info *ni)
{
    char path[PATH_MAX], line[512];
    FILE *f;

    memset(ni, 0, sizeof(*ni));
    ni->id = id;
    if (path_fmt(path, sizeof(path), "%s/n%ld.conf", dir, id) != 0) {
        return -1;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char k[64], v[64];
        if (sscanf(line, " %63[a-z-] = %63s", k, v) != 2) {
            continue;
        }
        if (strcmp(k, "api-addr") == 0) {
            snprintf(ni->api_addr, sizeof(ni->api_addr), "%s", v);
        } else if (strcmp(k, "raft-addr") == 0) {
            snprintf(ni->raft_addr, sizeof(ni->raft_addr), "%s", v);
        }
    }
    fclose(f);
    return ni->api_addr[0] != '\0' && ni->raft_addr[0] != '\0' ? 0 : -1;
}

/* ---- processes ------------------------------------------------------- */

static pid_t read_pid(const char *dir, long id)
{
    char path[PATH_MAX], buf[32];
    FILE *f;
    long v;

    if (path_fmt(path, sizeof(path), "%s/n%ld.pid", dir, id) != 0) {
        return 0;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    if (fgets(buf, sizeof(buf), f) == NULL) {
        buf[0] = '\0';
    }
    buf[strcspn(buf, "\n")] = '\0';
    if (parse_num(buf, 1, INT_MAX, &v) != 0) {
        v = 0;
    }
    fclose(f);
    return (pid_t)v;
}

static void remove_pid_file(const char *dir, long id)
{
    char path[PATH_MAX];

    if (path_fmt(path, sizeof(path), "%s/n%ld.pid", dir, id) == 0) {
        unlink(path);
    }
}

/* Process state letter from /proc/<pid>/stat ('R', 'S', 'T', 'Z', ...),
 * 0 if there is no such process or it is not a yunhand. */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    FILE *f;
    size_t n;
    char *rp;

    if (pid <= 0) {
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0'; /* argv[0] is the first NUL-terminated string */
    if (n == 0 || strstr(buf, "yunhand") == NULL) {
        return n == 0 ? 'Z' : 0; /* zombies have an empty cmdline */
    }
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    rp = strrchr(buf, ')'); /* comm may contain spaces */
    return rp != NULL && rp[1] == ' ' ? rp[2] : 0;
}

static int pid_alive(pid_t pid)
{
    char s = proc_state(pid);

    if (s == 'Z' && pid > 0) {
        /* Our own child that died (during up/start): reap it. */
        waitpid(pid, NULL, WNOHANG);
    }
    return s != 0 && s != 'Z' && s != 'X';
}

static int find_yunhand(char *out, size_t size)
{
    const char *env = getenv("YUNHAND");
    char self[PATH_MAX];
    ssize_t n;
    char *slash;

    if (env != NULL && *env != '\0') {
        snprintf(out, size, "%s", env);
        return access(out, X_OK);
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        return -1;
    }
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (slash == NULL) {
        return -1;
    }
    *slash = '\0';
    if (path_fmt(out, size, "%s/yunhand", self) != 0) {
        return -1;
    }
    return access(out, X_OK);
}

/* fork + setsid + exec "yunhand --config DIR/n<id>.conf", output to the log
 * file. A close-on-exec pipe tells the parent whether exec worked. */
static pid_t start_node(const char *dir, long id, const char *yunhand)
{
    char conf[PATH_MAX], log[PATH_MAX], pidpath[PATH_MAX], buf[32];
    int pfd[2];
    int child_err = 0;
    pid_t pid;
    ssize_t r;

    if (path_fmt(conf, sizeof(conf), "%s/n%ld.conf", dir, id) != 0 ||
        path_fmt(log, sizeof(log), "%s/n%ld.log", dir, id) != 0 ||
        path_fmt(pidpath, sizeof(pidpath), "%s/n%ld.pid", dir, id) != 0) {
        fprintf(stderr, "yunhan cluster: path too long\n");
        return -1;
    }
    if (pipe2(pfd, O_CLOEXEC) == -1) {
        fprintf(stderr, "yunhan cluster: pipe: %s\n", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid == -1) {
        fprintf(stderr, "yunhan cluster: fork: %s\n", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int nul = open("/dev/null", O_RDONLY);
        int e;
        close(pfd[0]);
        setsid();
        signal(SIGPIPE, SIG_DFL);
        if (fd == -1 || nul == -1 || dup2(nul, 0) == -1 || dup2(fd, 1) == -1 ||
            dup2(fd, 2) == -1) {
            e = errno;
            (void)!write(pfd[1], &e, sizeof(e));
            _exit(127);
        }
        execl(yunhand, "yunhand", "--config", conf, (char *)NULL);
        e = errno;
        (void)!write(pfd[1], &e, sizeof(e));
        _exit(127);
    }
    close(pfd[1]);
    do {
        r = read(pfd[0], &child_err, sizeof(child_err));
    } while (r == -1 && errno == EINTR);
    close(pfd[0]);
    if (r > 0) {
        waitpid(pid, NULL, 0);
        fprintf(stderr, "yunhan cluster: cannot start %s for n%ld: %s\n",
                yunhand, id, strerror(child_err));
        return -1;
    }
    snprintf(buf, sizeof(buf), "%d\n", (int)pid);
    if (write_file(pidpath, buf, 0644) != 0) {
        fprintf(stderr, "yunhan cluster: cannot write '%s': %s\n", pidpath,
                strerror(errno));
    }
    return pid;
}

/* SIGTERM (and SIGCONT, a stopped process cannot handle TERM), wait up to
 * @grace_ms, then SIGKILL. 0 when gone. */
static int stop_pid(pid_t pid, int grace_ms)
{
    int64_t deadline = api_client_now_ms() + grace_ms;

    if (!pid_alive(pid)) {
        return 0;
    }
    kill(pid, SIGTERM);
    kill(pid, SIGCONT);
    while (api_client_now_ms() < deadline) {
        if (!pid_alive(pid)) {
            return 0;
        }
        usleep(20 * 1000);
    }
    kill(pid, SIGKILL);
    deadline = api_client_now_ms() + 5000;
    while (api_client_now_ms() < deadline) {
        if (!pid_alive(pid)) {
            return 0;
        }
        usleep(20 * 1000);
    }
    return -1;
}

static void print_log_tail(const char *dir, long id, int lines)
{
    char path[PATH_MAX];
    FILE *f;
    long size;
    char *buf, *p;
    size_t n;
    int seen = 0;

    if (path_fmt(path, sizeof(path), "%s/n%ld.log", dir, id) != 0) {
        return;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    if (size > 16384) {
        fseek(f, size - 16384, SEEK_SET);
    } else {
        fseek(f, 0, SEEK_SET);
    }
    buf = malloc(16385);
    if (buf == NULL) {
        fclose(f);
        return;
    }
    n = fread(buf, 1, 16384, f);
    fclose(f);
    buf[n] = '\0';
    p = buf + n;
    while (p > buf && seen <= lines) {
        p--;
        if (*p == '\n' && p + 1 < buf + n) {
            seen++;
        }
    }
    if (seen > lines) {
        p++;
    }
    fprintf(stderr, "--- tail of %s\n%s%s", path, p,
            n > 0 && buf[n - 1] != '\n' ? "\n" : "");
    free(buf);
}

/* ---- calls ----------------------------------------------------------- */

/* One call to @endpoints; on 0 *@u holds the decoded result map and
 * *retcode its RetCode. */
static int call(const char *endpoints,
                const char *pub,
                const char *priv,
                const char *action,
                int argc,
                char *argv[],
                int mutate,
                int timeout_ms,
                unsigned flags,
                msgpack_unpacked *u,
                const msgpack_object **res,
                int *retcode,
                char *errmsg)
{
    struct api_client_config cfg = {endpoints, pub, priv, timeout_ms,
                                    timeout_ms};
    struct api_client *c;
    struct yh_buf req = YH_BUF_INIT, out = YH_BUF_INIT;
    int rc;

    rc = api_client_new(&c, &cfg, errmsg);
    if (rc != 0) {
        return rc;
    }
    rc = api_cli_build_request(argc, argv, mutate, &req, NULL, errmsg);
    if (rc == 0) {
        rc = api_client_call_flags(c, action, req.data, req.len, flags, &out,
                                   errmsg);
    }
    if (rc == 0) {
        *res = api_cli_unpack(u, out.data, out.len);
        *retcode = api_frame_result_retcode(out.data, out.len);
        if (*res == NULL) {
            snprintf(errmsg, YH_ERRMSG_SIZE, "undecodable answer");
            rc = YH_EPROTO;
        } else if (*retcode != 0) {
            const msgpack_object *m = yh_mp_get(*res, "Message");
            struct yh_buf b = YH_BUF_INIT;
            if (m != NULL) {
                api_cli_cell_text(&b, m);
            }
            snprintf(errmsg, YH_ERRMSG_SIZE, "error %d: %.*s", *retcode,
                     (int)b.len, b.data != NULL ? (char *)b.data : "");
            yh_buf_release(&b);
        }
    }
    yh_buf_release(&req);
    yh_buf_release(&out);
    api_client_free(c);
    return rc;
}

struct describe
{
    char state[32];
    uint64_t leader_id;
    uint64_t term, commit, applied;
    char digest[2 * 32 + 1];
    char leader_api[64];
};

static uint64_t get_u64(const msgpack_object *m, const char *key)
{
    int64_t v = 0;

    if (yh_mp_int(m, key, &v) != 0 || v < 0) {
        return 0;
    }
    return (uint64_t)v;
}

/* Anonymous DescribeCluster of one node, one quick attempt. */
static int describe_node(const char *api_addr,
                         int timeout_ms,
                         struct describe *d,
                         msgpack_unpacked *keep)
{
    msgpack_unpacked u;
    const msgpack_object *r = NULL;
    char errmsg[YH_ERRMSG_SIZE];
    int retcode = -1, rc;

    memset(d, 0, sizeof(*d));
    msgpack_unpacked_init(&u);
    rc = call(api_addr, NULL, NULL, "DescribeCluster", 0, NULL, 0, timeout_ms,
              API_CLIENT_F_NO_RETRY | API_CLIENT_F_IDEMPOTENT, &u, &r, &retcode,
              errmsg);
    if (rc == 0 && retcode == 0) {
        yh_mp_strcpy(r, "State", d->state, sizeof(d->state));
        yh_mp_strcpy(r, "Digest", d->digest, sizeof(d->digest));
        yh_mp_strcpy(r, "LeaderAPIAddress", d->leader_api,
                     sizeof(d->leader_api));
        d->leader_id = get_u64(r, "LeaderID");
        d->term = get_u64(r, "Term");
        d->commit = get_u64(r, "CommitIndex");
        d->applied = get_u64(r, "AppliedIndex");
    }
    if (keep != NULL && rc == 0 && retcode == 0) {
        *keep = u;
    } else {
        msgpack_unpacked_destroy(&u);
    }
    return rc == 0 && retcode == 0 ? 0 : -1;
}

/* ---- helpers over the cluster dir ----------------------------------- */

struct cluster
{
    char dir[PATH_MAX];
    char pub[API_CLI_KEY_SIZE];
    char priv[API_CLI_KEY_SIZE];
    long ids[MAX_NODES];
    int n;
    struct node_info nodes[MAX_NODES];
};

static int cluster_load(const char *dir, struct cluster *c, int need_keys)
{
    char path[PATH_MAX];
    char errmsg[YH_ERRMSG_SIZE];

    memset(c, 0, sizeof(*c));
    if (realpath(dir, c->dir) == NULL) {
        fprintf(stderr, "yunhan cluster: '%s': %s\n", dir, strerror(errno));
        return -1;
    }
    c->n = list_nodes(c->dir, c->ids, MAX_NODES);
    if (c->n <= 0) {
        fprintf(stderr,
                "yunhan cluster: no n<i>.conf in '%s' (not a "
                "cluster dir?)\n",
                c->dir);
        return -1;
    }
    for (int i = 0; i < c->n; i++) {
        if (read_node(c->dir, c->ids[i], &c->nodes[i]) != 0) {
            fprintf(stderr, "yunhan cluster: bad or unreadable n%ld.conf\n",
                    c->ids[i]);
            return -1;
        }
    }
    if (need_keys) {
        if (path_fmt(path, sizeof(path), "%s/admin.key", c->dir) != 0 ||
            api_cli_read_keyfile(path, c->pub, c->priv, errmsg) != 0) {
            fprintf(stderr, "yunhan cluster: %s\n", errmsg);
            return -1;
        }
    }
    return 0;
}

/* "a,b,c" of the API addresses, skipping node @skip. */
static void cluster_endpoints(const struct cluster *c,
                              long skip,
                              char *out,
                              size_t size)
{
    size_t len = 0;

    out[0] = '\0';
    for (int i = 0; i < c->n; i++) {
        if (c->ids[i] == skip) {
            continue;
        }
        len += (size_t)snprintf(out + len, size - len, "%s%s",
                                len > 0 ? "," : "", c->nodes[i].api_addr);
        if (len >= size) {
            out[size - 1] = '\0';
            return;
        }
    }
}

static int write_env(const struct cluster *c)
{
    char eps[4096], path[PATH_MAX];
    struct yh_buf b = YH_BUF_INIT;
    int rc;

    cluster_endpoints(c, -1, eps, sizeof(eps));
    rc = yh_buf_printf(&b,
                       "export YUNHAN_ENDPOINT=%s\n"
                       "export YUNHAN_PUBLIC_KEY=%s\n"
                       "export YUNHAN_PRIVATE_KEY=%s\n"
                       "export YUNHAN_CLUSTER_DIR=%s\n",
                       eps, c->pub, c->priv, c->dir);
    if (rc == 0) {
        rc = yh_buf_append(&b, "", 1);
    }
    if (rc == 0 && path_fmt(path, sizeof(path), "%s/env", c->dir) != 0) {
        rc = -1;
    }
    if (rc == 0) {
        rc = write_file(path, (const char *)b.data, 0600);
    }
    yh_buf_release(&b);
    if (rc != 0) {
        fprintf(stderr, "yunhan cluster: cannot write %s/env: %s\n", c->dir,
                strerror(errno));
        return -1;
    }
    return 0;
}

static int index_of(const struct cluster *c, long id)
{
    for (int i = 0; i < c->n; i++) {
        if (c->ids[i] == id) {
            return i;
        }
    }
    return -1;
}

/* Wait until some node reports a leader, then until the admin key works.
 * @pids: our children (checked for early death), may hold 0s. */
static int wait_ready(const struct cluster *c,
                      const pid_t *pids,
                      long timeout_s,
                      uint64_t *leader,
                      uint64_t *term)
{
    int64_t deadline = api_client_now_ms() + timeout_s * 1000;
    char eps[4096], errmsg[YH_ERRMSG_SIZE] = "";
    int have_leader = 0;

    cluster_endpoints(c, -1, eps, sizeof(eps));
    while (api_client_now_ms() < deadline) {
        for (int i = 0; i < c->n; i++) {
            if (pids != NULL && pids[i] > 0 &&
                waitpid(pids[i], NULL, WNOHANG) == pids[i]) {
                fprintf(stderr, "yunhan cluster: n%ld exited during start\n",
                        c->ids[i]);
                print_log_tail(c->dir, c->ids[i], 20);
                return -1;
            }
        }
        if (!have_leader) {
            for (int i = 0; i < c->n && !have_leader; i++) {
                struct describe d;
                if (describe_node(c->nodes[i].api_addr, 500, &d, NULL) == 0 &&
                    d.leader_id != 0) {
                    have_leader = 1;
                    *leader = d.leader_id;
                    *term = d.term;
                }
            }
        }
        if (have_leader) {
            msgpack_unpacked u;
            const msgpack_object *r;
            int retcode = -1, rc;
            char *args[] = {"Limit=1"};
            msgpack_unpacked_init(&u);
            rc = call(eps, c->pub, c->priv, "DescribeUser", 1, args, 0, 2000,
                      API_CLIENT_F_IDEMPOTENT, &u, &r, &retcode, errmsg);
            msgpack_unpacked_destroy(&u);
            if (rc == 0 && retcode == 0) {
                return 0;
            }
        }
        usleep(100 * 1000);
    }
    fprintf(stderr, "yunhan cluster: %s after %ld s%s%s\n",
            have_leader ? "admin key not accepted" : "no leader elected",
            timeout_s, errmsg[0] != '\0' ? ": " : "", errmsg);
    for (int i = 0; i < c->n; i++) {
        print_log_tail(c->dir, c->ids[i], 15);
    }
    return -1;
}

/* ---- up -------------------------------------------------------------- */

static int write_conf(const char *dir,
                      long id,
                      long base,
                      const struct cl_opts *o,
                      const char *peers,
                      int join)
{
    char buf[16384], path[PATH_MAX];
    size_t len;

    len = (size_t)snprintf(
        buf, sizeof(buf),
        "# yunhand config of node %ld (written by yunhan cluster)\n"
        "id = %ld\n"
        "data-dir = %s/n%ld\n"
        "raft-addr = 127.0.0.1:%ld\n"
        "api-addr = 127.0.0.1:%ld\n"
        "%s"
        "admin-key-file = %s/admin.key\n"
        "cluster-secret-file = %s/cluster.secret\n",
        id, id, dir, id, base + 100 + id, base + id, peers, dir, dir);
#define OPT_LINE(field, name)                                              \
    if (o->field != NULL && len < sizeof(buf)) {                           \
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s = %s\n", \
                                name, o->field);                           \
    }
    OPT_LINE(snap_threshold, "snapshot-threshold")
    OPT_LINE(snap_trailing, "snapshot-trailing")
    OPT_LINE(segment_size, "segment-size")
    OPT_LINE(election_timeout, "election-timeout")
    OPT_LINE(heartbeat_timeout, "heartbeat-timeout")
    OPT_LINE(log_level, "log-level")
#undef OPT_LINE
    if (join && len < sizeof(buf)) {
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "join = 1\n");
    }
    if (len >= sizeof(buf) ||
        path_fmt(path, sizeof(path), "%s/n%ld.conf", dir, id) != 0) {
        fprintf(stderr, "yunhan cluster: config too long\n");
        return -1;
    }
    if (write_file(path, buf, 0644) != 0) {
        fprintf(stderr, "yunhan cluster: cannot write '%s': %s\n", path,
                strerror(errno));
        return -1;
    }
    path_fmt(path, sizeof(path), "%s/n%ld", dir, id);
    if (mkdir(path, 0700) == -1 && errno != EEXIST) {
        fprintf(stderr, "yunhan cluster: cannot create '%s': %s\n", path,
                strerror(errno));
        return -1;
    }
    return 0;
}

static int gen_keys(const char *dir)
{
    char pub[2 * 20 + 1], priv[2 * 32 + 1], secret[2 * 32 + 1];
    char buf[256], path[PATH_MAX];

    if (api_auth_random_hex(20, pub) != 0 ||
        api_auth_random_hex(32, priv) != 0 ||
        api_auth_random_hex(32, secret) != 0) {
        fprintf(stderr, "yunhan cluster: no randomness for keys\n");
        return -1;
    }
    snprintf(buf, sizeof(buf), "%s %s\n", pub, priv);
    path_fmt(path, sizeof(path), "%s/admin.key", dir);
    if (write_file(path, buf, 0600) != 0) {
        fprintf(stderr, "yunhan cluster: cannot write '%s': %s\n", path,
                strerror(errno));
        return -1;
    }
    snprintf(buf, sizeof(buf), "%s\n", secret);
    path_fmt(path, sizeof(path), "%s/cluster.secret", dir);
    if (write_file(path, buf, 0600) != 0) {
        fprintf(stderr, "yunhan cluster: cannot write '%s': %s\n", path,
                strerror(errno));
        return -1;
    }
    explicit_bzero(priv, sizeof(priv));
    explicit_bzero(secret, sizeof(secret));
    return 0;
}

static int cmd_up(const struct cl_opts *o)
{
    char yunhand[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
    char peers[8192];
    struct cluster c;
    pid_t pids[MAX_NODES] = {0};
    uint64_t leader = 0, term = 0;
    size_t plen = 0;
    int restart;

    if (o->base_port + 100 + o->nodes > 65535) {
        return cl_usage("--base-port %s too high (need BASE+100+N <= 65535)",
                        "");
    }
    if (find_yunhand(yunhand, sizeof(yunhand)) != 0) {
        fprintf(stderr,
                "yunhan cluster: cannot find an executable yunhand (looked "
                "at %s; set $YUNHAND)\n",
                yunhand);
        return API_CLI_EXIT_ERROR;
    }
    if (mkdir(o->dir, 0700) == -1 && errno != EEXIST) {
        fprintf(stderr, "yunhan cluster: cannot create '%s': %s\n", o->dir,
                strerror(errno));
        return API_CLI_EXIT_ERROR;
    }
    if (realpath(o->dir, dir) == NULL) {
        fprintf(stderr, "yunhan cluster: '%s': %s\n", o->dir, strerror(errno));
        return API_CLI_EXIT_ERROR;
    }
    path_fmt(path, sizeof(path), "%s/admin.key", dir);
    restart = access(path, F_OK) == 0;
    if (!restart) {
        if (gen_keys(dir) != 0) {
            return API_CLI_EXIT_ERROR;
        }
        for (long i = 1; i <= o->nodes; i++) {
            plen +=
                (size_t)snprintf(peers + plen, sizeof(peers) - plen,
                                 "peer = %ld,127.0.0.1:%ld,127.0.0.1:%ld\n", i,
                                 o->base_port + 100 + i, o->base_port + i);
        }
        for (long i = 1; i <= o->nodes; i++) {
            if (write_conf(dir, i, o->base_port, o, peers, 0) != 0) {
                return API_CLI_EXIT_ERROR;
            }
        }
    }
    if (cluster_load(dir, &c, 1) != 0) {
        return API_CLI_EXIT_ERROR;
    }
    if (restart) {
        printf(
            "restarting the existing cluster in %s (%d nodes; options "
            "other than --timeout are ignored)\n",
            dir, c.n);
    }
    for (int i = 0; i < c.n; i++) {
        pid_t old = read_pid(dir, c.ids[i]);
        if (pid_alive(old)) {
            continue;
        }
        pids[i] = start_node(dir, c.ids[i], yunhand);
        if (pids[i] < 0) {
            for (int j = 0; j < i; j++) {
                if (pids[j] > 0) {
                    stop_pid(pids[j], 2000);
                    remove_pid_file(dir, c.ids[j]);
                }
            }
            return API_CLI_EXIT_ERROR;
        }
    }
    if (write_env(&c) != 0) {
        return API_CLI_EXIT_ERROR;
    }
    if (wait_ready(&c, pids, o->timeout_s, &leader, &term) != 0) {
        for (int i = 0; i < c.n; i++) {
            if (pids[i] > 0) {
                stop_pid(pids[i], 2000);
                waitpid(pids[i], NULL, WNOHANG);
                remove_pid_file(dir, c.ids[i]);
            }
        }
        return API_CLI_EXIT_ERROR;
    }
    printf("cluster up: %d nodes in %s, leader n%" PRIu64 " (term %" PRIu64
           ")\n",
           c.n, dir, leader, term);
    for (int i = 0; i < c.n; i++) {
        printf("  n%ld  pid %-7d api %-21s raft %-21s log %s/n%ld.log\n",
               c.ids[i], (int)read_pid(dir, c.ids[i]), c.nodes[i].api_addr,
               c.nodes[i].raft_addr, dir, c.ids[i]);
    }
    printf("environment: . %s/env\n", dir);
    return 0;
}

/* ---- down / status / kill / start ------------------------------------ */

static int cmd_down(const struct cl_opts *o)
{
    struct cluster c;
    pid_t pids[MAX_NODES];
    int64_t deadline;
    int left = 0, ret = 0;

    if (cluster_load(o->dir, &c, 0) != 0) {
        return API_CLI_EXIT_ERROR;
    }
    /* Signal everyone first, then wait: the nodes stop in parallel. */
    for (int i = 0; i < c.n; i++) {
        pids[i] = read_pid(c.dir, c.ids[i]);
        if (pid_alive(pids[i])) {
            kill(pids[i], SIGTERM);
            kill(pids[i], SIGCONT);
            left++;
        } else {
            pids[i] = 0;
            remove_pid_file(c.dir, c.ids[i]);
        }
    }
    deadline = api_client_now_ms() + 5000;
    while (left > 0 && api_client_now_ms() < deadline) {
        usleep(20 * 1000);
        left = 0;
        for (int i = 0; i < c.n; i++) {
            left += pids[i] > 0 && pid_alive(pids[i]);
        }
    }
    for (int i = 0; i < c.n; i++) {
        if (pids[i] == 0) {
            continue;
        }
        if (pid_alive(pids[i])) {
            fprintf(stderr,
                    "n%ld (pid %d) ignored SIGTERM for 5 s: "
                    "SIGKILL\n",
                    c.ids[i], (int)pids[i]);
            if (stop_pid(pids[i], 0) != 0) {
                fprintf(stderr, "n%ld (pid %d) does not die\n", c.ids[i],
                        (int)pids[i]);
                ret = API_CLI_EXIT_ERROR;
                continue;
            }
        }
        remove_pid_file(c.dir, c.ids[i]);
    }
    if (ret == 0) {
        printf("cluster down: %s\n", c.dir);
    }
    return ret;
}

static int cmd_status(const struct cl_opts *o)
{
    struct cluster c;

    if (cluster_load(o->dir, &c, 0) != 0) {
        return API_CLI_EXIT_ERROR;
    }
    printf("%-4s %-7s %-8s %-15s %-11s %-5s %-7s %-7s %-6s %s\n", "NODE", "PID",
           "PROCESS", "API", "STATE", "TERM", "COMMIT", "APPLIED", "LEADER",
           "DIGEST");
    for (int i = 0; i < c.n; i++) {
        pid_t pid = read_pid(c.dir, c.ids[i]);
        char st = proc_state(pid);
        const char *proc = pid == 0                 ? "-"
                           : st == 0 || st == 'Z'   ? "dead"
                           : st == 'T' || st == 't' ? "stopped"
                                                    : "running";
        struct describe d;
        char name[16], pidtxt[16];

        snprintf(name, sizeof(name), "n%ld", c.ids[i]);
        snprintf(pidtxt, sizeof(pidtxt), "%d", (int)pid);
        if (strcmp(proc, "running") == 0 &&
            describe_node(c.nodes[i].api_addr, 1000, &d, NULL) == 0) {
            char leader[24];
            snprintf(leader, sizeof(leader), "%" PRIu64, d.leader_id);
            printf("%-4s %-7s %-8s %-15s %-11s %-5" PRIu64 " %-7" PRIu64
                   " %-7" PRIu64 " %-6s %s\n",
                   name, pidtxt, proc, c.nodes[i].api_addr, d.state, d.term,
                   d.commit, d.applied, d.leader_id ? leader : "-", d.digest);
        } else {
            printf("%-4s %-7s %-8s %-15s %s\n", name, pid ? pidtxt : "-", proc,
                   c.nodes[i].api_addr,
                   strcmp(proc, "running") == 0 ? "no-answer" : "-");
        }
    }
    return 0;
}

static int cmd_kill(const struct cl_opts *o)
{
    struct cluster c;
    int sig;
    pid_t pid;
    int64_t deadline;

    if (cluster_load(o->dir, &c, 0) != 0) {
        return API_CLI_EXIT_ERROR;
    }
    if (index_of(&c, o->node) < 0) {
        fprintf(stderr, "yunhan cluster: no node %ld in %s\n", o->node, c.dir);
        return API_CLI_EXIT_ERROR;
    }
    if (strcasecmp(o->signal, "KILL") == 0) {
        sig = SIGKILL;
    } else if (strcasecmp(o->signal, "TERM") == 0) {
        sig = SIGTERM;
    } else if (strcasecmp(o->signal, "STOP") == 0) {
        sig = SIGSTOP;
    } else if (strcasecmp(o->signal, "CONT") == 0) {
        sig = SIGCONT;
    } else {
        return cl_usage("bad --signal '%s' (KILL, TERM, STOP or CONT)",
                        o->signal);
    }
    pid = read_pid(c.dir, o->node);
    if (!pid_alive(pid)) {
        fprintf(stderr, "yunhan cluster: n%ld is not running\n", o->node);
        return API_CLI_EXIT_ERROR;
    }
    if (kill(pid, sig) != 0) {
        fprintf(stderr, "yunhan cluster: kill n%ld (pid %d): %s\n", o->node,
                (int)pid, strerror(errno));
        return API_CLI_EXIT_ERROR;
    }
    if (sig == SIGKILL || sig == SIGTERM) {
        deadline = api_client_now_ms() + 10000;
        while (pid_alive(pid) && api_client_now_ms() < deadline) {
            usleep(20 * 1000);
        }
        if (pid_alive(pid)) {
            fprintf(stderr, "yunhan cluster: n%ld (pid %d) still alive\n",
                    o->node, (int)pid);
            return API_CLI_EXIT_ERROR;
        }
        remove_pid_file(c.dir, o->node);
    }
    printf("n%ld (pid %d): SIG%s\n", o->node, (int)pid,
           sig == SIGKILL   ? "KILL"
           : sig == SIGTERM ? "TERM"
           : sig == SIGSTOP ? "STOP"
                            : "CONT");
    return 0;
}

/* Wait until node @i answers DescribeCluster. */
static int wait_answers(const struct cluster *c,
                        int i,
                        pid_t pid,
                        long timeout_s)
{
    int64_t deadline = api_client_now_ms() + timeout_s * 1000;
    struct describe d;

    while (api_client_now_ms() < deadline) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "yunhan cluster: n%ld exited during start\n",
                    c->ids[i]);
            print_log_tail(c->dir, c->ids[i], 20);
            return -1;
        }
        if (describe_node(c->nodes[i].api_addr, 500, &d, NULL) == 0) {
            return 0;
        }
        usleep(50 * 1000);
    }
    fprintf(stderr, "yunhan cluster: n%ld does not answer after %ld s\n",
            c->ids[i], timeout_s);
    print_log_tail(c->dir, c->ids[i], 20);
    return -1;
}

static int cmd_start(const struct cl_opts *o)
{
    struct cluster c;
    char yunhand[PATH_MAX];
    int i;
    pid_t pid;

    if (cluster_load(o->dir, &c, 0) != 0) {
        return API_CLI_EXIT_ERROR;
    }
    i = index_of(&c, o->node);
    if (i < 0) {
        fprintf(stderr, "yunhan cluster: no node %ld in %s\n", o->node, c.dir);
        return API_CLI_EXIT_ERROR;
    }
    if (pid_alive(read_pid(c.dir, o->node))) {
        fprintf(stderr, "yunhan cluster: n%ld is already running\n", o->node);
        return API_CLI_EXIT_ERROR;
    }
    if (find_yunhand(yunhand, sizeof(yunhand)) != 0) {
        fprintf(stderr,
                "yunhan cluster: cannot find yunhand (set "
                "$YUNHAND)\n");
        return API_CLI_EXIT_ERROR;
    }
    pid = start_node(c.dir, o->node, yunhand);
    if (pid < 0) {
        return API_CLI_EXIT_ERROR;
    }
    if (wait_answers(&c, i, pid, o->timeout_s) != 0) {
        return API_CLI_EXIT_ERROR;
    }
    printf("n%ld started (pid %d)\n", o->node, (int)pid);
    return 0;
}

/* ---- add / remove ---------------------------------------------------- */

static int cmd_add(const struct cl_opts *o)
{
    struct cluster c;
    char yunhand[PATH_MAX], path[PATH_MAX], eps[4096], peers[8192];
    char errmsg[YH_ERRMSG_SIZE];
    char a_id[64], a_raft[128], a_api[128];
    char *args[3] = {a_id, a_raft, a_api};
    struct describe d;
    msgpack_unpacked u;
    const msgpack_object *r = NULL, *nodes;
    int64_t deadline;
    size_t plen = 0;
    long base;
    int retcode = -1, rc, i;
    pid_t pid;
    uint64_t target = 0;

    if (cluster_load(o->dir, &c, 1) != 0) {
        return API_CLI_EXIT_ERROR;
    }
    if (index_of(&c, o->node) >= 0) {
        fprintf(stderr, "yunhan cluster: n%ld already exists in %s\n", o->node,
                c.dir);
        return API_CLI_EXIT_ERROR;
    }
    if (c.n >= MAX_NODES) {
        fprintf(stderr, "yunhan cluster: too many nodes\n");
        return API_CLI_EXIT_ERROR;
    }
    path_fmt(path, sizeof(path), "%s/n%ld", c.dir, o->node);
    if (access(path, F_OK) == 0) {
        fprintf(stderr,
                "yunhan cluster: %s exists (data of a removed node?); pick "
                "another node id\n",
                path);
        return API_CLI_EXIT_ERROR;
    }
    if (find_yunhand(yunhand, sizeof(yunhand)) != 0) {
        fprintf(stderr,
                "yunhan cluster: cannot find yunhand (set "
                "$YUNHAND)\n");
        return API_CLI_EXIT_ERROR;
    }
    /* Ports follow the first node's: its API port is BASE + its id. */
    base = strtol(strrchr(c.nodes[0].api_addr, ':') + 1, NULL, 10) - c.ids[0];
    if (base + 100 + o->node > 65535) {
        fprintf(stderr,
                "yunhan cluster: node id %ld too high for base port "
                "%ld\n",
                o->node, base);
        return API_CLI_EXIT_ERROR;
    }
    /* Current members, as the cluster sees them. */
    cluster_endpoints(&c, -1, eps, sizeof(eps));
    msgpack_unpacked_init(&u);
    rc = call(eps, NULL, NULL, "DescribeCluster", 0, NULL, 0, 5000,
              API_CLIENT_F_IDEMPOTENT, &u, &r, &retcode, errmsg);
    nodes = rc == 0 && retcode == 0 ? yh_mp_get(r, "Nodes") : NULL;
    if (nodes == NULL || nodes->type != MSGPACK_OBJECT_ARRAY) {
        fprintf(stderr, "yunhan cluster: DescribeCluster: %s\n",
                rc != 0 || retcode != 0 ? errmsg : "no Nodes");
        msgpack_unpacked_destroy(&u);
        return API_CLI_EXIT_ERROR;
    }
    for (uint32_t k = 0; k < nodes->via.array.size; k++) {
        const msgpack_object *n = &nodes->via.array.ptr[k];
        char ra[128] = "", aa[128] = "";
        yh_mp_strcpy(n, "RaftAddress", ra, sizeof(ra));
        yh_mp_strcpy(n, "APIAddress", aa, sizeof(aa));
        plen += (size_t)snprintf(peers + plen, sizeof(peers) - plen,
                                 "peer = %" PRIu64 ",%s,%s\n",
                                 get_u64(n, "NodeID"), ra, aa);
    }
    msgpack_unpacked_destroy(&u);
    plen += (size_t)snprintf(peers + plen, sizeof(peers) - plen,
                             "peer = %ld,127.0.0.1:%ld,127.0.0.1:%ld\n",
                             o->node, base + 100 + o->node, base + o->node);
    if (plen >= sizeof(peers) ||
        write_conf(c.dir, o->node, base, o, peers, 1) != 0) {
        return API_CLI_EXIT_ERROR;
    }
    c.ids[c.n] = o->node;
    if (read_node(c.dir, o->node, &c.nodes[c.n]) != 0) {
        return API_CLI_EXIT_ERROR;
    }
    i = c.n++;
    pid = start_node(c.dir, o->node, yunhand);
    if (pid < 0 || wait_answers(&c, i, pid, o->timeout_s) != 0) {
        return API_CLI_EXIT_ERROR;
    }
    snprintf(a_id, sizeof(a_id), "NodeID=%ld", o->node);
    snprintf(a_raft, sizeof(a_raft), "RaftAddress=%s", c.nodes[i].raft_addr);
    snprintf(a_api, sizeof(a_api), "APIAddress=%s", c.nodes[i].api_addr);
    msgpack_unpacked_init(&u);
    rc = call(eps, c.pub, c.priv, "AddNode", 3, args, 1,
              (int)o->timeout_s * 1000, 0, &u, &r, &retcode, errmsg);
    msgpack_unpacked_destroy(&u);
    if (rc != 0 || retcode != 0) {
        fprintf(stderr,
                "yunhan cluster: AddNode: %s (n%ld keeps running; "
                "'cluster kill' it)\n",
                errmsg, o->node);
        return rc == YH_EUNKNOWN || retcode == YH_EUNKNOWN
                   ? API_CLI_EXIT_UNKNOWN
                   : API_CLI_EXIT_ERROR;
    }
    /* It is a member now, whatever happens next. */
    if (write_env(&c) != 0) {
        return API_CLI_EXIT_ERROR;
    }
    /* Caught up: the new node has applied what the leader had applied right
     * after the AddNode (AppliedIndex counts state machine entries only, so
     * a trailing barrier or configuration entry never holds it back). */
    for (int k = 0; k < c.n - 1; k++) {
        if (describe_node(c.nodes[k].api_addr, 1000, &d, NULL) == 0 &&
            strcmp(d.state, "leader") == 0) {
            target = d.applied;
        }
    }
    deadline = api_client_now_ms() + o->timeout_s * 1000;
    for (;;) {
        if (describe_node(c.nodes[i].api_addr, 1000, &d, NULL) == 0 &&
            d.applied >= target && d.leader_id != 0) {
            break;
        }
        if (api_client_now_ms() > deadline) {
            fprintf(stderr,
                    "yunhan cluster: n%ld added but not caught up after %ld "
                    "s (applied %" PRIu64 " of %" PRIu64 ")\n",
                    o->node, o->timeout_s, d.applied, target);
            return API_CLI_EXIT_ERROR;
        }
        usleep(100 * 1000);
    }
    printf("n%ld added (pid %d, applied %" PRIu64 "); environment: . %s/env\n",
           o->node, (int)pid, d.applied, c.dir);
    return 0;
}

static int cmd_remove(const struct cl_opts *o)
{
    struct cluster c;
    char eps[4096], errmsg[YH_ERRMSG_SIZE], a_id[64];
    char from[PATH_MAX], to[PATH_MAX];
    char *args[1] = {a_id};
    msgpack_unpacked u;
    const msgpack_object *r;
    int retcode = -1, rc, i;
    pid_t pid;

    if (cluster_load(o->dir, &c, 1) != 0) {
        return API_CLI_EXIT_ERROR;
    }
    i = index_of(&c, o->node);
    if (i < 0) {
        fprintf(stderr, "yunhan cluster: no node %ld in %s\n", o->node, c.dir);
        return API_CLI_EXIT_ERROR;
    }
    if (c.n == 1) {
        fprintf(stderr, "yunhan cluster: cannot remove the last node\n");
        return API_CLI_EXIT_ERROR;
    }
    cluster_endpoints(&c, o->node, eps, sizeof(eps));
    snprintf(a_id, sizeof(a_id), "NodeID=%ld", o->node);
    msgpack_unpacked_init(&u);
    rc = call(eps, c.pub, c.priv, "RemoveNode", 1, args, 1,
              (int)o->timeout_s * 1000, 0, &u, &r, &retcode, errmsg);
    msgpack_unpacked_destroy(&u);
    if (rc != 0 || retcode != 0) {
        fprintf(stderr, "yunhan cluster: RemoveNode: %s\n", errmsg);
        return rc == YH_EUNKNOWN || retcode == YH_EUNKNOWN
                   ? API_CLI_EXIT_UNKNOWN
                   : API_CLI_EXIT_ERROR;
    }
    pid = read_pid(c.dir, o->node);
    if (stop_pid(pid, 5000) != 0) {
        fprintf(stderr, "yunhan cluster: n%ld (pid %d) does not stop\n",
                o->node, (int)pid);
        return API_CLI_EXIT_ERROR;
    }
    remove_pid_file(c.dir, o->node);
    /* Keep the conf for the record, out of the member list. */
    path_fmt(from, sizeof(from), "%s/n%ld.conf", c.dir, o->node);
    path_fmt(to, sizeof(to), "%s/n%ld.conf.removed", c.dir, o->node);
    if (rename(from, to) != 0) {
        fprintf(stderr, "yunhan cluster: rename '%s': %s\n", from,
                strerror(errno));
        return API_CLI_EXIT_ERROR;
    }
    memmove(&c.ids[i], &c.ids[i + 1], sizeof(c.ids[0]) * (size_t)(c.n - i - 1));
    memmove(&c.nodes[i], &c.nodes[i + 1],
            sizeof(c.nodes[0]) * (size_t)(c.n - i - 1));
    c.n--;
    if (write_env(&c) != 0) {
        return API_CLI_EXIT_ERROR;
    }
    printf("n%ld removed and stopped; environment: . %s/env\n", o->node, c.dir);
    return 0;
}

/* ---- main ------------------------------------------------------------ */

int api_cli_cluster_main(int argc, char *argv[])
{
    struct cl_opts o;
    const char *sub;
    long v;

    memset(&o, 0, sizeof(o));
    o.nodes = 3;
    o.base_port = 7400;
    o.node = -1;
    o.signal = "KILL";
    o.timeout_s = 30;
    if (argc < 2) {
        return cl_usage("missing sub-command%s", "");
    }
    sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
        api_cli_cluster_usage(stdout);
        return 0;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *val;

        if (strcmp(a, "--help") == 0) {
            api_cli_cluster_usage(stdout);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0) {
            return cl_usage("unexpected argument '%s'", a);
        }
        if (i + 1 >= argc) {
            return cl_usage("option %s needs a value", a);
        }
        val = argv[++i];
        if (strcmp(a, "--dir") == 0) {
            o.dir = val;
        } else if (strcmp(a, "--nodes") == 0) {
            if (parse_num(val, 1, 9, &o.nodes) != 0) {
                return cl_usage("bad --nodes '%s' (1..9)", val);
            }
        } else if (strcmp(a, "--base-port") == 0) {
            if (parse_num(val, 1024, 65000, &o.base_port) != 0) {
                return cl_usage("bad --base-port '%s'", val);
            }
        } else if (strcmp(a, "--node") == 0) {
            if (parse_num(val, 1, 99, &o.node) != 0) {
                return cl_usage("bad --node '%s' (1..99)", val);
            }
        } else if (strcmp(a, "--signal") == 0) {
            o.signal = val;
        } else if (strcmp(a, "--timeout") == 0) {
            if (parse_num(val, 1, 3600, &o.timeout_s) != 0) {
                return cl_usage("bad --timeout '%s' (seconds)", val);
            }
        } else if (strcmp(a, "--snapshot-threshold") == 0 ||
                   strcmp(a, "--snapshot-trailing") == 0 ||
                   strcmp(a, "--segment-size") == 0 ||
                   strcmp(a, "--election-timeout") == 0 ||
                   strcmp(a, "--heartbeat-timeout") == 0) {
            if (parse_num(val, 1, INT_MAX, &v) != 0) {
                return cl_usage("bad number '%s'", val);
            }
            if (strcmp(a, "--snapshot-threshold") == 0) {
                o.snap_threshold = val;
            } else if (strcmp(a, "--snapshot-trailing") == 0) {
                o.snap_trailing = val;
            } else if (strcmp(a, "--segment-size") == 0) {
                o.segment_size = val;
            } else if (strcmp(a, "--election-timeout") == 0) {
                o.election_timeout = val;
            } else {
                o.heartbeat_timeout = val;
            }
        } else if (strcmp(a, "--log-level") == 0) {
            if (strcmp(val, "error") != 0 && strcmp(val, "warn") != 0 &&
                strcmp(val, "info") != 0 && strcmp(val, "debug") != 0) {
                return cl_usage("bad --log-level '%s'", val);
            }
            o.log_level = val;
        } else {
            return cl_usage("unknown option '%s'", a);
        }
    }
    if (o.dir == NULL) {
        return cl_usage("--dir is required%s", "");
    }
    if (strcmp(sub, "up") == 0) {
        return cmd_up(&o);
    }
    if (strcmp(sub, "down") == 0) {
        return cmd_down(&o);
    }
    if (strcmp(sub, "status") == 0) {
        return cmd_status(&o);
    }
    if (strcmp(sub, "kill") != 0 && strcmp(sub, "start") != 0 &&
        strcmp(sub, "add") != 0 && strcmp(sub, "remove") != 0) {
        return cl_usage("unknown sub-command '%s'", sub);
    }
    if (o.node < 0) {
        return cl_usage("--node is required for '%s'", sub);
    }
    if (strcmp(sub, "kill") == 0) {
        return cmd_kill(&o);
    }
    if (strcmp(sub, "start") == 0) {
        return cmd_start(&o);
    }
    if (strcmp(sub, "add") == 0) {
        return cmd_add(&o);
    }
    return cmd_remove(&o);
}
