/* yunhan replay: rebuild a node's state offline from its raft log.
 *
 * The node's data dir is never written: its raft files are copied to a
 * temporary dir, loaded there with libraft's own loader (raft_uv's
 * io->load on a private loop), and the commands are applied to a fresh fsm
 * in another temporary dir:
 *
 *   snapshot (if any)  -> fsm_restore
 *   entries after it   -> fsm_apply for RAFT_COMMAND up to --to; barriers
 *                         and configuration changes take an index but
 *                         never reach the fsm (as in libraft's apply loop)
 *
 * The digest printed equals the live node's DescribeCluster Digest at the
 * same AppliedIndex: the fsm is a pure function of the log.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "../../cluster/cluster.h"
#include "../../fsm/base/err.h"
#include "../../fsm/base/mp.h"
#include "../../fsm/fsm.h"

void api_cli_replay_usage(FILE *out)
{
    fprintf(
        out,
        "offline replay of a node's log (the node's files are only "
        "read):\n"
        "  yunhan replay --data-dir DIR [--to INDEX|TIME] [--dump FILE|-]\n"
        "  yunhan audit  --data-dir DIR [--from-index N] [--to INDEX|TIME]\n"
        "                [--user ID] [--action NAME] [--json]\n"
        "  DIR is a node's data dir (raft log in DIR/raft, archived\n"
        "  segments in DIR/archive). TIME is @UNIXSECONDS or\n"
        "  YYYY-MM-DDTHH:MM:SSZ: the state after the last command stamped\n"
        "  at or before it. replay prints 'index N digest HEX'; --dump\n"
        "  writes the rebuilt state as text (as fsm_dump). audit prints\n"
        "  every command: index, time, user, action, resource, result,\n"
        "  source (--json: one JSON object per line).\n");
}

static int r_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "yunhan replay: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    api_cli_replay_usage(stderr);
    return API_CLI_EXIT_USAGE;
}

static int copy_file(const char *from, const char *to)
{
    char buf[1 << 16];
    int in, out;
    ssize_t r;
    int ret = 0;

    in = open(from, O_RDONLY | O_CLOEXEC);
    if (in == -1) {
        return -1;
    }
    out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out == -1) {
        close(in);
        return -1;
    }
    /* In-kernel copy first (segments are 64 MiB, mostly preallocated
     * zeros); plain read/write where the file system cannot. */
    for (;;) {
        r = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (r <= 0) {
            break;
        }
    }
    if (r == -1 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                    errno == EOPNOTSUPP)) {
        r = 0;
        while ((r = read(in, buf, sizeof(buf))) != 0) {
            char *p = buf;
            if (r == -1 && errno == EINTR) {
                continue;
            }
            if (r == -1) {
                break;
            }
            while (r > 0) {
                ssize_t w = write(out, p, (size_t)r);
                if (w == -1 && errno == EINTR) {
                    continue;
                }
                if (w <= 0) {
                    r = -1;
                    break;
                }
                p += w;
                r -= w;
            }
            if (r == -1) {
                break;
            }
        }
    }
    if (r == -1) {
        ret = -1;
    }
    close(in);
    if (close(out) == -1) {
        ret = -1;
    }
    return ret;
}

/* Index of a snapshot file "snapshot-TERM-INDEX-TIME[.meta]", 0 if @name
 * is not one. */
static uint64_t snapshot_index(const char *name)
{
    unsigned long long term, index, ts;
    int n = 0;

    if (sscanf(name, "snapshot-%llu-%llu-%llu%n", &term, &index, &ts, &n) !=
            3 ||
        (name[n] != '\0' && strcmp(name + n, ".meta") != 0)) {
        return 0;
    }
    return index;
}

/* Copy the regular files of @from into @to (existing, empty), leaving out
 * snapshots taken after @max_snapshot (0 = keep all): libraft loads the
 * newest snapshot present, and an older one still reaches an earlier
 * index when the log after it is kept (snapshot trailing). Reports the
 * oldest snapshot's index and the oldest closed segment's first index. */
static int copy_dir(const char *from,
                    const char *to,
                    uint64_t max_snapshot,
                    int segments_only,
                    uint64_t *min_snapshot,
                    uint64_t *min_segment)
{
    DIR *d = opendir(from);
    struct dirent *e;
    char a[PATH_MAX], b[PATH_MAX];
    int n = 0;

    if (d == NULL) {
        fprintf(stderr, "yunhan replay: cannot open '%s': %s\n", from,
                strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        uint64_t si = snapshot_index(e->d_name);

        unsigned long long first, end;
        int len = 0;

        if (si > 0 && (*min_snapshot == 0 || si < *min_snapshot)) {
            *min_snapshot = si;
        }
        if (sscanf(e->d_name, "%llu-%llu%n", &first, &end, &len) == 2 &&
            e->d_name[len] == '\0' &&
            (*min_segment == 0 || first < *min_segment)) {
            *min_segment = first;
        }
        if (e->d_name[0] == '.' || (max_snapshot > 0 && si > max_snapshot)) {
            continue;
        }
        if (segments_only) {
            uint64_t sf, sl;
            if (cluster_segment_range(e->d_name, &sf, &sl) != 0) {
                continue;
            }
        }
        if ((size_t)snprintf(a, sizeof(a), "%s/%s", from, e->d_name) >=
                sizeof(a) ||
            (size_t)snprintf(b, sizeof(b), "%s/%s", to, e->d_name) >=
                sizeof(b)) {
            continue;
        }
        if (stat(a, &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        if (copy_file(a, b) != 0) {
            if (errno == EEXIST) {
                continue; /* the same segment, archived and still live */
            }
            fprintf(stderr, "yunhan replay: cannot copy '%s': %s\n", a,
                    strerror(errno));
            closedir(d);
            return -1;
        }
        n++;
    }
    closedir(d);
    if (n == 0 && !segments_only) {
        fprintf(stderr, "yunhan replay: '%s' holds no raft files\n", from);
        return -1;
    }
    return 0;
}

static int rm_entry(const char *path,
                    const struct stat *st,
                    int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void io_closed(struct raft_io *io)
{
    (void)io;
}

static void free_loaded(struct raft_snapshot *snap,
                        struct raft_entry *ents,
                        size_t n)
{
    void *last = NULL;

    for (size_t i = 0; i < n; i++) {
        if (ents[i].batch == NULL) {
            raft_free(ents[i].buf.base);
        } else if (ents[i].batch != last) {
            last = ents[i].batch;
            raft_free(last);
        }
    }
    raft_free(ents);
    if (snap != NULL) {
        raft_configuration_close(&snap->configuration);
        for (unsigned i = 0; i < snap->n_bufs; i++) {
            raft_free(snap->bufs[i].base);
        }
        raft_free(snap->bufs);
        raft_free(snap);
    }
}

struct replay
{
    const char *data_dir;
    uint64_t to;        /* 0 = to the end of the log */
    uint64_t to_time;   /* unix ns, 0 = no time bound */
    const char *dump;   /* NULL, a path, or "-" */
    int audit;          /* print every command's operation-log record */
    uint64_t from;      /* audit: first index shown */
    const char *user;   /* audit: only this UserID */
    const char *action; /* audit: only this Action */
    int json;           /* audit: JSON lines */
};

/* 1 if a closed segment of @dir starts at index 1 and the closed segments
 * follow each other without a gap (the whole history is there). */
static int history_complete(const char *dir)
{
    uint64_t *firsts = NULL, *lasts = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int ok = 0;
    DIR *d = opendir(dir);

    if (d == NULL) {
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        uint64_t a, b;
        if (cluster_segment_range(e->d_name, &a, &b) != 0) {
            continue;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            uint64_t *nf = realloc(firsts, nc * sizeof *nf);
            uint64_t *nl = nf ? realloc(lasts, nc * sizeof *nl) : NULL;
            if (nf == NULL || nl == NULL) {
                free(nf != NULL ? nf : firsts);
                free(lasts);
                closedir(d);
                return 0;
            }
            firsts = nf;
            lasts = nl;
            cap = nc;
        }
        firsts[n] = a;
        lasts[n] = b;
        n++;
    }
    closedir(d);
    /* Few segments (64 MiB each): a quadratic walk is fine. */
    for (uint64_t next = 1;;) {
        size_t i;
        for (i = 0; i < n && firsts[i] != next; i++) {
        }
        if (i == n) {
            ok = next > 1;
            break;
        }
        next = lasts[i] + 1;
    }
    free(firsts);
    free(lasts);
    return ok;
}

static void remove_snapshots(const char *dir)
{
    char path[PATH_MAX];
    struct dirent *e;
    DIR *d = opendir(dir);

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (snapshot_index(e->d_name) > 0 &&
            (size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) <
                sizeof path) {
            unlink(path);
        }
    }
    closedir(d);
}

/* audit: print the operation-log record @ev of one command. */
static void audit_print(const struct replay *r, const struct yh_buf *ev)
{
    msgpack_unpacked u;
    const msgpack_object *o;
    char user[128], action[128], rid[128], src[128], msg[256], tok[80];
    int64_t code = 0, t = 0, index = 0;

    msgpack_unpacked_init(&u);
    o = api_cli_unpack(&u, ev->data, ev->len);
    if (o == NULL || o->type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&u);
        return;
    }
    if (yh_mp_strcpy(o, "UserID", user, sizeof user) != 0) {
        user[0] = '\0';
    }
    if (yh_mp_strcpy(o, "Action", action, sizeof action) != 0) {
        action[0] = '\0';
    }
    if ((r->user != NULL && strcmp(r->user, user) != 0) ||
        (r->action != NULL && strcmp(r->action, action) != 0)) {
        msgpack_unpacked_destroy(&u);
        return;
    }
    if (r->json) {
        api_cli_print_json(stdout, o, 1);
        fputc('\n', stdout);
        msgpack_unpacked_destroy(&u);
        return;
    }
    if (yh_mp_strcpy(o, "ResourceID", rid, sizeof rid) != 0) {
        rid[0] = '\0';
    }
    if (yh_mp_strcpy(o, "Source", src, sizeof src) != 0) {
        src[0] = '\0';
    }
    if (yh_mp_strcpy(o, "Message", msg, sizeof msg) != 0) {
        msg[0] = '\0';
    }
    if (yh_mp_strcpy(o, "RequestToken", tok, sizeof tok) != 0) {
        tok[0] = '\0';
    }
    (void)yh_mp_int(o, "RetCode", &code);
    (void)yh_mp_int(o, "Time", &t);
    (void)yh_mp_int(o, "Index", &index);
    {
        char when[32];
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("%" PRId64 "\t%s\t%s\t%s\t%s\t%" PRId64 "\t%s\t%s\t%s\n", index,
               when, user[0] ? user : "-", action, rid[0] ? rid : "-", code,
               msg[0] ? msg : "-", src[0] ? src : "-", tok[0] ? tok : "-");
    }
    msgpack_unpacked_destroy(&u);
}

/* Apply the loaded log to a fresh fsm in @state_dir. */
static int rebuild(const struct replay *r,
                   const char *state_dir,
                   struct raft_snapshot *snap,
                   raft_index start,
                   struct raft_entry *ents,
                   size_t n)
{
    struct fsm_config cfg = {.nosync = 1};
    struct fsm *f = NULL;
    struct yh_buf result = YH_BUF_INIT;
    struct yh_buf event = YH_BUF_INIT;
    int first_cmd = 1;
    char errmsg[YH_ERRMSG_SIZE];
    char hex[2 * FSM_DIGEST_SIZE + 1];
    uint64_t snap_index = snap != NULL ? snap->index : 0;
    uint64_t last = n > 0 ? start + n - 1 : snap_index;
    uint64_t to = r->to > 0 ? r->to : last;
    uint64_t n_cmds = 0;
    int ret = API_CLI_EXIT_ERROR;
    int rc;

    if (last == 0) {
        fprintf(stderr, "yunhan replay: the log is empty\n");
        return API_CLI_EXIT_ERROR;
    }
    if (to < snap_index) {
        fprintf(stderr,
                "yunhan replay: the log before index %" PRIu64
                " was compacted into a snapshot; the earliest state that "
                "can be rebuilt is at index %" PRIu64 " (asked for %" PRIu64
                ")\n",
                snap_index, snap_index, to);
        return API_CLI_EXIT_ERROR;
    }
    if (n > 0 && start > snap_index + 1) {
        fprintf(stderr,
                "yunhan replay: the log before index %" PRIu64
                " was compacted and no snapshot at or below index %" PRIu64
                " is left (snapshot %" PRIu64
                "): cannot rebuild that "
                "state\n",
                (uint64_t)start, to, snap_index);
        return API_CLI_EXIT_ERROR;
    }
    if (to > last) {
        fprintf(stderr,
                "yunhan replay: --to %" PRIu64
                " is past the end of the log "
                "(last index %" PRIu64 ")\n",
                to, last);
        return API_CLI_EXIT_ERROR;
    }
    rc = fsm_open(&f, state_dir, &cfg, errmsg);
    if (rc != 0) {
        fprintf(stderr, "yunhan replay: cannot open a state: %s\n", errmsg);
        return API_CLI_EXIT_ERROR;
    }
    if (snap != NULL) {
        int loaded = 0;
        if (snap->n_bufs != 1) {
            fprintf(stderr, "yunhan replay: snapshot with %u buffers\n",
                    snap->n_bufs);
            goto out;
        }
        rc = fsm_restore(f, snap->bufs[0].base, snap->bufs[0].len, &loaded);
        if (rc != 0) {
            fprintf(stderr,
                    "yunhan replay: cannot restore the snapshot at index "
                    "%" PRIu64 ": %s\n",
                    snap_index, yh_strerror(rc));
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t index = start + i;
        uint64_t tag = 0;
        int skipped = 0;

        if (index <= snap_index) {
            continue;
        }
        if (index > to) {
            break;
        }
        if (ents[i].type != RAFT_COMMAND) {
            continue;
        }
        if (r->to_time > 0) {
            uint64_t t = 0;
            if (fsm_cmd_time(ents[i].buf.base, ents[i].buf.len, &t) == 0 &&
                t > r->to_time) {
                if (first_cmd && snap != NULL) {
                    fprintf(stderr,
                            "yunhan replay: the state at that time precedes "
                            "the oldest state this node's files can rebuild "
                            "(snapshot at index %" PRIu64
                            "; the log before it is not archived here)\n",
                            snap_index);
                    goto out;
                }
                to = index - 1;
                break;
            }
        }
        first_cmd = 0;
        yh_buf_reset(&result);
        rc = fsm_apply(f, index, ents[i].buf.base, ents[i].buf.len, &result,
                       r->audit ? &event : NULL, &tag, &skipped);
        if (rc == 0 && r->audit && index >= r->from) {
            audit_print(r, &event);
        }
        if (rc != 0) {
            fprintf(stderr,
                    "yunhan replay: apply of index %" PRIu64 " failed: %s\n",
                    index, yh_strerror(rc));
            goto out;
        }
        n_cmds++;
    }
    rc = fsm_flush(f);
    if (rc != 0) {
        fprintf(stderr, "yunhan replay: flush failed: %s\n", yh_strerror(rc));
        goto out;
    }
    fsm_digest_hex(f, hex);
    if (to > fsm_applied_index(f) && r->to_time > 0) {
        to = fsm_applied_index(f);
    }
    if (n_cmds == 0 && snap == NULL && r->to_time > 0) {
        fprintf(stderr,
                "yunhan %s: no command was stamped at or before "
                "that time\n",
                r->audit ? "audit" : "replay");
        goto out;
    }
    if (!r->audit) {
        printf("index %" PRIu64 " digest %s\n", to, hex);
    }
    fprintf(stderr,
            "%s %" PRIu64 " commands (snapshot at %" PRIu64 ", log %" PRIu64
            "..%" PRIu64 ", fsm applied %" PRIu64 ")\n",
            r->audit ? "audited" : "replayed", n_cmds, snap_index,
            n > 0 ? (uint64_t)start : 0, last, fsm_applied_index(f));
    ret = API_CLI_EXIT_OK;
    if (r->dump != NULL) {
        FILE *out = strcmp(r->dump, "-") == 0 ? stdout : fopen(r->dump, "w");
        if (out == NULL) {
            fprintf(stderr, "yunhan replay: cannot write '%s': %s\n", r->dump,
                    strerror(errno));
            ret = API_CLI_EXIT_ERROR;
            goto out;
        }
        rc = fsm_dump(f, out);
        if (out != stdout && fclose(out) != 0) {
            rc = YH_EIO;
        }
        if (rc != 0) {
            fprintf(stderr, "yunhan replay: dump failed: %s\n",
                    yh_strerror(rc));
            ret = API_CLI_EXIT_ERROR;
        }
    }
out:
    yh_buf_release(&result);
    yh_buf_release(&event);
    fsm_close(f);
    return ret;
}

static int replay(const struct replay *r)
{
    char src[PATH_MAX], tmp[PATH_MAX], raft_dir[PATH_MAX], state[PATH_MAX];
    const char *tmpdir = getenv("TMPDIR");
    struct uv_loop_s loop;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_snapshot *snap = NULL;
    struct raft_entry *ents = NULL;
    size_t n = 0;
    raft_term term;
    raft_id voted_for;
    raft_index start = 0;
    uint64_t min_snap = 0; /* oldest snapshot in the dir, 0 = none */
    uint64_t min_seg = 0;  /* first index of the oldest closed segment */
    struct stat st;
    int ret = API_CLI_EXIT_ERROR;
    int rv;

    /* DIR/raft (yunhand's layout), or DIR itself if it is a raft dir. */
    if ((size_t)snprintf(src, sizeof(src), "%s/raft", r->data_dir) >=
        sizeof(src)) {
        return r_usage("--data-dir too long%s", "");
    }
    if (stat(src, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(src, sizeof(src), "%s/metadata1", r->data_dir);
        if (stat(src, &st) != 0) {
            fprintf(stderr,
                    "yunhan replay: no raft log in '%s' (expected "
                    "'%s/raft')\n",
                    r->data_dir, r->data_dir);
            return API_CLI_EXIT_ERROR;
        }
        snprintf(src, sizeof(src), "%s", r->data_dir);
    }
    snprintf(tmp, sizeof(tmp), "%s/yh-replay.XXXXXX",
             tmpdir != NULL && *tmpdir != '\0' ? tmpdir : "/tmp");
    if (mkdtemp(tmp) == NULL) {
        fprintf(stderr, "yunhan replay: mkdtemp: %s\n", strerror(errno));
        return API_CLI_EXIT_ERROR;
    }
    snprintf(raft_dir, sizeof(raft_dir), "%.*s/raft", PATH_MAX - 16, tmp);
    snprintf(state, sizeof(state), "%.*s/state", PATH_MAX - 16, tmp);
    if (mkdir(raft_dir, 0700) != 0 || mkdir(state, 0700) != 0) {
        fprintf(stderr, "yunhan replay: mkdir in '%s': %s\n", tmp,
                strerror(errno));
        goto err_after_tmp;
    }
    /* Archived segments first (yunhand keeps every compacted segment in
     * DIR/archive), then the live log; a segment in both is one file. */
    {
        char arch[PATH_MAX];
        uint64_t ignore_snap = 0, ignore_seg = 0;
        if ((size_t)snprintf(arch, sizeof(arch), "%s/archive", r->data_dir) <
                sizeof(arch) &&
            stat(arch, &st) == 0 && S_ISDIR(st.st_mode) &&
            copy_dir(arch, raft_dir, 0, 1, &ignore_snap, &ignore_seg) != 0) {
            goto err_after_tmp;
        }
    }
    if (copy_dir(src, raft_dir, r->to, 0, &min_snap, &min_seg) != 0) {
        goto err_after_tmp;
    }
    /* With the whole history present, rebuild from index 1 without any
     * snapshot: every command is re-applied (and audit sees all). */
    if (history_complete(raft_dir)) {
        remove_snapshots(raft_dir);
        min_snap = 0;
        min_seg = 1;
        fprintf(stderr, "yunhan %s: whole history from index 1\n",
                r->audit ? "audit" : "replay");
    }
    rv = uv_loop_init(&loop);
    if (rv != 0) {
        fprintf(stderr, "yunhan replay: uv_loop_init: %s\n", uv_strerror(rv));
        goto err_after_tmp;
    }
    rv = raft_uv_tcp_init(&transport, &loop);
    if (rv != 0) {
        fprintf(stderr, "yunhan replay: raft_uv_tcp_init: %s\n",
                raft_strerror(rv));
        goto err_after_loop;
    }
    rv = raft_uv_init(&io, &loop, raft_dir, &transport);
    if (rv != 0) {
        fprintf(stderr, "yunhan replay: raft_uv_init: %s\n", raft_strerror(rv));
        raft_uv_tcp_close(&transport);
        goto err_after_loop;
    }
    /* The id and address only matter to the transport, never used here. */
    rv = io.init(&io, 1, "127.0.0.1:9");
    if (rv != 0) {
        fprintf(stderr, "yunhan replay: cannot open the raft dir: %s\n",
                io.errmsg);
        goto err_after_io;
    }
    rv = io.load(&io, &term, &voted_for, &snap, &start, &ents, &n);
    if (rv != 0) {
        if (r->to > 0 && min_snap > 0 && min_snap <= r->to && min_seg > 1) {
            fprintf(stderr,
                    "yunhan replay: cannot rebuild index %" PRIu64
                    ": the log before index %" PRIu64
                    " was compacted and no snapshot at or below %" PRIu64
                    " connects to it (libraft: %s)\n",
                    r->to, min_seg, r->to, io.errmsg);
        } else if (r->to > 0 && min_snap > r->to) {
            /* Every snapshot is past --to and the log before them is
             * gone: libraft's complaint about the gap says as much. */
            fprintf(stderr,
                    "yunhan replay: cannot rebuild index %" PRIu64
                    ": the log before index %" PRIu64
                    " was compacted (oldest snapshot: index %" PRIu64
                    "; libraft: %s)\n",
                    r->to, min_seg > 0 ? min_seg : min_snap, min_snap,
                    io.errmsg);
        } else {
            fprintf(stderr, "yunhan replay: cannot load the raft log: %s\n",
                    io.errmsg);
        }
        goto err_after_init;
    }
    ret = rebuild(r, state, snap, start, ents, n);
    free_loaded(snap, ents, n);
err_after_init:
    io.close(&io, io_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
err_after_io:
    raft_uv_close(&io);
    raft_uv_tcp_close(&transport);
err_after_loop:
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "yunhan replay: libuv handles left open\n");
    }
err_after_tmp:
    rm_tree(tmp);
    return ret;
}

int api_cli_replay_main(int argc, char *argv[])
{
    struct replay r;

    memset(&r, 0, sizeof(r));
    r.audit = argc > 0 && strcmp(argv[0], "audit") == 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--help") == 0) {
            api_cli_replay_usage(stdout);
            return 0;
        }
        if (strcmp(a, "--json") == 0 && r.audit) {
            r.json = 1;
            continue;
        }
        if (val == NULL) {
            return r_usage("bad or incomplete option '%s'", a);
        }
        i++;
        if (strcmp(a, "--data-dir") == 0) {
            r.data_dir = val;
        } else if (strcmp(a, "--to") == 0) {
            char *end;
            unsigned long long v;
            struct tm tm;
            errno = 0;
            if (val[0] == '@') {
                v = strtoull(val + 1, &end, 10);
                if (errno != 0 || end == val + 1 || *end != '\0' ||
                    val[1] == '-' || v == 0) {
                    return r_usage("bad --to '%s' (@UNIXSECONDS)", val);
                }
                r.to_time = (uint64_t)v * 1000000000ull + 999999999ull;
                continue;
            }
            memset(&tm, 0, sizeof tm);
            end = strptime(val, "%Y-%m-%dT%H:%M:%SZ", &tm);
            if (end != NULL && *end == '\0') {
                time_t t = timegm(&tm);
                if (t <= 0) {
                    return r_usage("bad --to '%s' (time before 1970)", val);
                }
                r.to_time = (uint64_t)t * 1000000000ull + 999999999ull;
                continue;
            }
            v = strtoull(val, &end, 10);
            if (errno != 0 || end == val || *end != '\0' || v == 0 ||
                val[0] == '-') {
                return r_usage(
                    "bad --to '%s' (an index >= 1, @UNIXSECONDS "
                    "or YYYY-MM-DDTHH:MM:SSZ)",
                    val);
            }
            r.to = v;
        } else if (strcmp(a, "--from-index") == 0 && r.audit) {
            char *end;
            errno = 0;
            r.from = strtoull(val, &end, 10);
            if (errno != 0 || end == val || *end != '\0' || val[0] == '-') {
                return r_usage("bad --from-index '%s'", val);
            }
        } else if (strcmp(a, "--user") == 0 && r.audit) {
            r.user = val;
        } else if (strcmp(a, "--action") == 0 && r.audit) {
            r.action = val;
        } else if (strcmp(a, "--dump") == 0 && !r.audit) {
            r.dump = val;
        } else {
            return r_usage("unknown option '%s'", a);
        }
    }
    if (r.data_dir == NULL) {
        return r_usage("--data-dir is required%s", "");
    }
    return replay(&r);
}
