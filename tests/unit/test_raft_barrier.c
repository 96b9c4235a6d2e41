/* cluster/barrier.c on a real raft_uv io (libraft 0.15, files in a temp
 * directory). Each scenario runs on raft_uv alone, a control that must
 * show the bug (in a child process: raft_uv may abort), and with the
 * wrapper, which must complete every request and leave on disk exactly the
 * log that was asked for (checked by loading it with a fresh raft_uv).
 *
 * - snapshot_then_truncate: a truncation while our own snapshot is being
 *   written (canonical/raft issue 372): raft_uv alone never truncates.
 * - random: libraft-like sequences of appends, truncations (always
 *   followed by an append, as libraft does), our snapshots and installed
 *   snapshots at random loop turns; every seed must pass with the wrapper.
 *   On raft_uv alone 3 to 11 of the 40 seeds failed in each of five runs
 *   (writes that never complete, the jepsen pause run of session 6;
 *   truncations not done; "closed segment ... is past last snapshot" at
 *   load), but which ones depends on thread timing: the control's failures
 *   are counted and printed, not required.
 *
 * YH_BARRIER_SEED=N runs one random seed (YH_BARRIER_BARE=1: on raft_uv
 * alone, YH_BARRIER_TRACE=1: print each request). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "cluster/barrier.h"
#include "fsm/base/log.h"

#define MAXIDX 4096

/* tmpfs when there is one: every append is a synchronous write */
static const char *tmp_root = "/tmp";
#define MAXREQ 512

struct req
{
    union
    {
        struct raft_io_append append;
        struct raft_io_snapshot_put put;
    } r;
    int done;
    int status;
    struct raft_entry *entries;
    unsigned n;
    struct raft_snapshot snap;
    uint64_t snap_data;
};

struct fx
{
    uv_loop_t loop;
    struct raft_uv_transport tr;
    struct raft_io io;
    struct raft_barriers b;
    int guarded;
    char dir[64];
    struct req *reqs[MAXREQ];
    unsigned n_reqs;
    /* the log asked for: value at each index, 0 = none */
    uint64_t want[MAXIDX];
    raft_index last;      /* last index appended */
    raft_index snap;      /* index of the last snapshot put */
    raft_index floor;     /* truncations must stay above this */
    unsigned put_pending; /* request number of a put in flight, or 0 */
    uint64_t next_value;
};

static int tracing;
#define TRACE(...) (tracing ? fprintf(stderr, __VA_ARGS__) : 0)

static void append_cb(struct raft_io_append *r, int status)
{
    struct req *q = r->data;

    TRACE("append %p done %d\n", (void *)q, status);
    q->done = 1;
    q->status = status;
}

static void put_cb(struct raft_io_snapshot_put *r, int status)
{
    struct req *q = r->data;

    TRACE("put %p done %d\n", (void *)q, status);
    q->done = 1;
    q->status = status;
}

static struct req *req_new(struct fx *f)
{
    struct req *q = calloc(1, sizeof *q);

    assert_non_null(q);
    assert_true(f->n_reqs < MAXREQ);
    f->reqs[f->n_reqs++] = q;
    return q;
}

static void io_open(struct fx *f)
{
    raft_term term;
    raft_id voted;
    struct raft_snapshot *snap;
    raft_index start;
    struct raft_entry *entries;
    size_t n;

    assert_int_equal(raft_uv_tcp_init(&f->tr, &f->loop), 0);
    assert_int_equal(raft_uv_init(&f->io, &f->loop, f->dir, &f->tr), 0);
    raft_uv_set_block_size(&f->io, 4096);
    raft_uv_set_segment_size(&f->io, 4096 * 4);
    raft_uv_set_auto_recovery(&f->io, false);
    assert_int_equal(f->io.init(&f->io, 1, "127.0.0.1:9001"), 0);
    assert_int_equal(
        f->io.load(&f->io, &term, &voted, &snap, &start, &entries, &n), 0);
    assert_null(snap);
    assert_int_equal(n, 0);
    if (f->guarded) {
        assert_int_equal(cluster_barriers_install(&f->b, &f->io, &f->loop), 0);
    }
}

static void fx_init(struct fx *f, int guarded)
{
    memset(f, 0, sizeof *f);
    f->guarded = guarded;
    snprintf(f->dir, sizeof f->dir, "%s/yh-barrier-XXXXXX", tmp_root);
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->next_value = 1;
    io_open(f);
}

static void on_timeout(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Run the loop until every request has completed or @ms pass; returns 1 if
 * all completed. */
static int run_all(struct fx *f, unsigned ms)
{
    uv_timer_t t;
    int expired = 0;
    int all = 0;

    uv_timer_init(&f->loop, &t);
    t.data = &expired;
    uv_timer_start(&t, on_timeout, ms, 0);
    while (!expired) {
        all = 1;
        for (unsigned i = 0; i < f->n_reqs; i++) {
            all &= f->reqs[i]->done;
        }
        if (all) {
            break;
        }
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    return all;
}

static void turns(struct fx *f, unsigned n)
{
    TRACE("%u turns\n", n);
    for (unsigned i = 0; i < n; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
}

static void do_append(struct fx *f, unsigned n, size_t size)
{
    struct req *q = req_new(f);

    q->entries = calloc(n, sizeof *q->entries);
    q->n = n;
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = f->next_value++;

        q->entries[i].term = 1;
        q->entries[i].type = RAFT_COMMAND;
        q->entries[i].buf.base = raft_aligned_alloc(8, size);
        q->entries[i].buf.len = size;
        memset(q->entries[i].buf.base, 0, size);
        memcpy(q->entries[i].buf.base, &v, sizeof v);
        f->last++;
        assert_true(f->last < MAXIDX);
        f->want[f->last] = v;
    }
    q->r.append.data = q;
    TRACE("append %p: %u entries to %llu\n", (void *)q, n,
          (unsigned long long)f->last);
    assert_int_equal(
        f->io.append(&f->io, &q->r.append, q->entries, n, append_cb), 0);
}

static void do_truncate(struct fx *f, raft_index index)
{
    assert_true(index > f->floor && index <= f->last);
    TRACE("truncate %llu\n", (unsigned long long)index);
    assert_int_equal(f->io.truncate(&f->io, index), 0);
    for (raft_index i = index; i <= f->last; i++) {
        f->want[i] = 0;
    }
    f->last = index - 1;
}

static void do_put(struct fx *f, unsigned trailing, raft_index index)
{
    struct req *q = req_new(f);

    q->snap.term = 1;
    q->snap.index = index;
    raft_configuration_init(&q->snap.configuration);
    assert_int_equal(raft_configuration_add(&q->snap.configuration, 1,
                                            "127.0.0.1:9001", RAFT_VOTER),
                     0);
    q->snap.configuration_index = 1;
    q->snap_data = index;
    q->snap.bufs = raft_malloc(sizeof *q->snap.bufs);
    q->snap.bufs[0].base = &q->snap_data;
    q->snap.bufs[0].len = sizeof q->snap_data;
    q->snap.n_bufs = 1;
    q->r.put.data = q;
    if (trailing == 0) { /* an installed snapshot replaces the log */
        for (raft_index i = 1; i <= f->last && i < MAXIDX; i++) {
            f->want[i] = 0;
        }
        f->last = index;
    }
    f->snap = index;
    if (index > f->floor) {
        f->floor = index;
    }
    f->put_pending = f->n_reqs;
    TRACE("put %p: trailing %u index %llu\n", (void *)q, trailing,
          (unsigned long long)index);
    assert_int_equal(
        f->io.snapshot_put(&f->io, trailing, &q->r.put, &q->snap, put_cb), 0);
}

static void closed_cb(struct raft_io *io)
{
    *(int *)io->data = 1;
}

static void io_close(struct fx *f)
{
    int closed = 0;

    f->io.data = &closed;
    f->io.close(&f->io, closed_cb);
    while (!closed) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    raft_uv_close(&f->io);
    raft_uv_tcp_close(&f->tr);
    if (f->guarded) {
        cluster_barriers_remove(&f->b);
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

/* Load the log with a fresh raft_uv and compare it with what was asked
 * for; returns a description of the first difference, or NULL. */
static const char *check_disk(struct fx *f, char *why, size_t len)
{
    struct uv_loop_s loop;
    struct raft_uv_transport tr;
    struct raft_io io;
    raft_term term;
    raft_id voted;
    struct raft_snapshot *snap = NULL;
    raft_index start;
    struct raft_entry *entries = NULL;
    size_t n = 0;
    const char *res = NULL;
    int closed = 0;
    int rv;

    uv_loop_init(&loop);
    raft_uv_tcp_init(&tr, &loop);
    raft_uv_init(&io, &loop, f->dir, &tr);
    raft_uv_set_auto_recovery(&io, false);
    io.init(&io, 1, "127.0.0.1:9001");
    rv = io.load(&io, &term, &voted, &snap, &start, &entries, &n);
    if (rv != 0) {
        snprintf(why, len, "load: %s", io.errmsg);
        res = why;
    } else if ((snap != NULL ? snap->index : 0) != f->snap) {
        snprintf(why, len, "snapshot at %llu, want %llu",
                 (unsigned long long)(snap != NULL ? snap->index : 0),
                 (unsigned long long)f->snap);
        res = why;
    } else if (start + n - 1 != f->last && !(n == 0 && f->last == f->snap)) {
        snprintf(why, len, "log ends at %llu, want %llu",
                 (unsigned long long)(start + n - 1),
                 (unsigned long long)f->last);
        res = why;
    } else {
        for (size_t i = 0; i < n; i++) {
            uint64_t v;

            memcpy(&v, entries[i].buf.base, sizeof v);
            if (v != f->want[start + i]) {
                snprintf(why, len, "entry %llu holds %llu, want %llu",
                         (unsigned long long)(start + i), (unsigned long long)v,
                         (unsigned long long)f->want[start + i]);
                res = why;
                break;
            }
        }
    }
    io.data = &closed;
    io.close(&io, closed_cb);
    while (!closed) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    raft_uv_close(&io);
    raft_uv_tcp_close(&tr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    /* what load returned is leaked: this runs in a child or at the end */
    return res;
}

static void rm_dir(const struct fx *f)
{
    char cmd[128];

    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot remove %s\n", f->dir);
    }
}

static void fx_done(struct fx *f)
{
    for (unsigned i = 0; i < f->n_reqs; i++) {
        struct req *q = f->reqs[i];

        for (unsigned j = 0; j < q->n; j++) {
            raft_aligned_free(8, q->entries[j].buf.base);
        }
        free(q->entries);
        if (q->snap.bufs != NULL) {
            raft_configuration_close(&q->snap.configuration);
            raft_free(q->snap.bufs);
        }
        free(q);
    }
    uv_loop_close(&f->loop);
    rm_dir(f);
}

/* Outcome of one scenario: 0 ok, 1 a request never completed, 2 the disk
 * holds another log than asked for. */
static int finish(struct fx *f, const char *name)
{
    char why[160];
    const char *diff;

    if (!run_all(f, 3000)) {
        fprintf(stderr, "  %s (%s): a request never completed\n", name,
                f->guarded ? "wrapped" : "raft_uv alone");
        for (unsigned i = 0; i < f->n_reqs; i++) {
            if (!f->reqs[i]->done) {
                fprintf(stderr, "    request %u (%s) pending\n", i,
                        f->reqs[i]->n ? "append" : "put");
            }
        }
        if (f->guarded) {
            fprintf(stderr, "    busy %d done %d marker %d held %s\n",
                    f->b.busy, f->b.busy_done, f->b.need_marker,
                    f->b.head != NULL ? "yes" : "no");
        }
        return 1; /* closing would wait for it too */
    }
    io_close(f);
    diff = check_disk(f, why, sizeof why);
    if (diff != NULL) {
        fprintf(stderr, "  %s (%s): %s\n", name,
                f->guarded ? "wrapped" : "raft_uv alone", diff);
        return 2;
    }
    return 0;
}

static int snapshot_then_truncate(int guarded)
{
    struct fx f;
    int rc;

    fx_init(&f, guarded);
    do_append(&f, 4, 4096);
    do_append(&f, 4, 4096);
    do_append(&f, 4, 4096);
    do_put(&f, 8192, 6); /* ours, keeps the log */
    do_truncate(&f, 8);
    do_append(&f, 1, 64);
    rc = finish(&f, "snapshot_then_truncate");
    if (rc != 1) {
        fx_done(&f);
    } else {
        rm_dir(&f); /* a child: the rest goes with it */
    }
    return rc;
}

static int random_run(int guarded, unsigned seed)
{
    struct fx f;
    char name[32];
    int rc;

    srand(seed);
    fx_init(&f, guarded);
    for (unsigned step = 0; step < 60; step++) {
        int r = rand() % 100;
        size_t sizes[] = {64, 1024, 4096};

        if (f.put_pending && f.reqs[f.put_pending - 1]->done) {
            f.put_pending = 0;
        }
        if (r < 50 || f.last == 0) {
            do_append(&f, 1 + rand() % 4, sizes[rand() % 3]);
        } else if (r < 70 && f.last > f.floor + 1) {
            raft_index at = f.floor + 1 + rand() % (f.last - f.floor);

            do_truncate(&f, at);
            do_append(&f, 1 + rand() % 3, sizes[rand() % 3]);
        } else if (r < 88 && !f.put_pending && f.last > f.floor) {
            /* ours: at an index already appended (libraft: applied) */
            raft_index at = f.floor + 1 + rand() % (f.last - f.floor);

            do_put(&f, 2 + rand() % 8, at);
        } else if (!f.put_pending) {
            do_put(&f, 0, f.last + 1 + rand() % 20);
        }
        turns(&f, rand() % 4);
    }
    snprintf(name, sizeof name, "random seed %u", seed);
    rc = finish(&f, name);
    if (rc != 1) {
        fx_done(&f);
    } else {
        rm_dir(&f); /* a child: the rest goes with it */
    }
    return rc;
}

/* Run @fn in a child (raft_uv alone may abort or hang); its exit code, or
 * 3 if it died. */
static int in_child(int (*fn)(int), int guarded)
{
    pid_t pid = fork();
    int st;

    assert_true(pid >= 0);
    if (pid == 0) {
        _exit(fn(guarded));
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 3;
}

static int one_seed(void)
{
    const char *s = getenv("YH_BARRIER_SEED");

    return s == NULL ? -1
                     : random_run(getenv("YH_BARRIER_BARE") == NULL,
                                  (unsigned)atoi(s));
}

static void test_snapshot_then_truncate(void **state)
{
    (void)state;
    /* control: raft_uv alone keeps the truncated entries */
    assert_int_not_equal(in_child(snapshot_then_truncate, 0), 0);
    assert_int_equal(in_child(snapshot_then_truncate, 1), 0);
}

#define SEEDS 40

/* Every seed in a child of its own, 8 at a time (most of a run's time is
 * the kernel's io_destroy when raft_uv closes a segment, not CPU). */
static int random_all(int guarded)
{
    int bad = 0;
    unsigned running = 0;

    for (unsigned s = 1; s <= SEEDS || running > 0;) {
        int st;

        if (s <= SEEDS && running < 8) {
            pid_t pid = fork();

            assert_true(pid >= 0);
            if (pid == 0) {
                _exit(random_run(guarded, s));
            }
            running++;
            s++;
            continue;
        }
        assert_true(wait(&st) > 0);
        running--;
        bad += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    return bad;
}

static void test_random(void **state)
{
    int control;
    int wrapped;

    (void)state;
    control = random_all(0);
    wrapped = random_all(1);
    fprintf(stderr,
            "  random: %d of %d seeds failed on raft_uv alone, %d "
            "wrapped\n",
            control, SEEDS, wrapped);
    assert_int_equal(wrapped, 0);
}

int main(void)
{
    if (getenv("YH_BARRIER_DIR") != NULL) {
        tmp_root = getenv("YH_BARRIER_DIR");
    } else if (access("/dev/shm", W_OK) == 0) {
        tmp_root = "/dev/shm";
    }
    tracing = getenv("YH_BARRIER_TRACE") != NULL;
    if (!tracing) {
        yh_log_level = YH_LOG_WARN; /* the wrapper's "held" lines */
    }
    if (getenv("YH_BARRIER_SEED") != NULL) {
        return one_seed();
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_then_truncate),
        cmocka_unit_test(test_random),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
