/* Raft node lifecycle and the glue between libraft and the fsm.
 *
 * Happy path: cluster_open() opens the fsm (LMDB in <dir>/state), sets up
 * raft_uv + TCP in <dir>/raft, bootstraps the initial configuration on a
 * fresh node, and starts raft. libraft calls glue_apply() for each
 * committed command; the entry's index is raft_last_applied() + 1 there
 * (libraft bumps last_applied after the call). The fsm accumulates applied
 * entries in one LMDB write transaction that the check handle commits at
 * the end of every loop iteration, after this iteration's proposals went to
 * raft as one batch.
 *
 * Failure modes: fsm_apply() failing locally makes glue_apply() return an
 * error, and libraft applies the same entry again later (the fsm rolled the
 * batch back whole). A corrupt snapshot at start makes raft_start() fail and
 * the node refuses to start rather than serve divergent data. */
#include "cluster_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsm/base/log.h"

YH_LOG_MODULE("cluster");

/* An unanswered vote request is resent this often (revote.c): two tries
 * reach a peer over a connection that died unnoticed (the first write
 * vanishes, the second fails and raft_uv reconnects), well inside one
 * election timeout. */
#define REVOTE_INTERVAL_MS 40u

void cluster_config_defaults(struct cluster_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->snapshot_threshold = 65536;
    cfg->snapshot_trailing = 8192;
    cfg->segment_size = 64u << 20;
    /* Without it a node's RSS grew with every page of the state its
     * transactions read (1.4 GB at 1M machines): the kernel keeps them in
     * its page cache either way. */
    cfg->map_budget = 128u << 20;
    /* libraft 0.15: a follower busy taking its own snapshot drops an
     * InstallSnapshot without answering, and the leader then sends it
     * nothing (not even heartbeats) until this timeout: 30 s by default,
     * which stalled followers for 30 s in jepsen partitions. It must stay
     * above the time to send and install the largest snapshot (a 250 MB
     * state: ~1 s over loopback + 2.4 s restore). */
    cfg->install_snapshot_timeout_ms = 8000;
    /* Randomized in [600, 800) ms (hooks.c narrows libraft's [T, 2T)):
     * failover under the 2 s goal, while six heartbeats fit in it even on a
     * loaded 2-core host. */
    cfg->election_timeout_ms = 600;
    cfg->heartbeat_timeout_ms = 100;
}

int cluster__raft_err(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case RAFT_NOMEM:
        return YH_ENOMEM;
    case RAFT_NOTLEADER:
    case RAFT_LEADERSHIPLOST:
    case RAFT_SHUTDOWN:
        return YH_EUNAVAIL;
    case RAFT_CANTCHANGE:
    case RAFT_BUSY:
        return YH_EBUSY;
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
        return YH_EEXIST;
    case RAFT_BADID:
    case RAFT_NOTFOUND:
        return YH_ENOTFOUND;
    case RAFT_CORRUPT:
        return YH_ECORRUPT;
    default:
        return YH_EIO;
    }
}

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- fsm glue ---------------------------------------------------------- */

void cluster__stop_now(void)
{
    fflush(NULL);
    _exit(70);
}

int cluster__apply_one(struct cluster *c,
                       uint64_t index,
                       const void *data,
                       size_t len)
{
    uint64_t tag = 0;
    int skipped = 0;
    int rc;

    yh_buf_reset(&c->result);
    yh_buf_reset(&c->event);
    rc = fsm_apply(c->fsm, index, data, len, &c->result, &c->event, &tag,
                   &skipped);
    if (rc != 0 || skipped) {
        return rc;
    }
    if (tag != 0 && (tag >> 48) == c->cfg.id) {
        cluster__complete_tag(c, tag, c->result.data, c->result.len);
    }
    if (c->event_cb != NULL && c->event.len > 0) {
        c->event_cb(c->event_arg, index, c->event.data, c->event.len);
    }
    return 0;
}

/* A follower queues the entry (defer.c) so that libraft can acknowledge the
 * append first; the leader, whose proposers wait for results, applies at
 * once after anything still queued from before it was elected. */
static int glue_apply(struct raft_fsm *rf,
                      const struct raft_buffer *buf,
                      void **result)
{
    struct cluster *c = rf->data;
    uint64_t index = raft_last_applied(&c->raft) + 1;
    int rc;

    *result = NULL;
    if (!c->closing && !c->draining && raft_state(&c->raft) != RAFT_LEADER &&
        cluster__defer_push(c, index, buf->base, buf->len) == 0) {
        cluster__defer_start(c);
        return 0;
    }
    rc = cluster__defer_drain(c, 0);
    if (rc == 0) {
        rc = cluster__apply_one(c, index, buf->base, buf->len);
    }
    if (rc != 0) {
        static struct yh_ratelimit rl = YH_RATELIMIT_INIT(5, 10);
        if (fsm_applied_index(c->fsm) + 1 != index &&
            cluster__defer_rewind(c) != 0) {
            /* The rollback took entries libraft already counts as applied
             * and will never feed again: retrying would diverge. Stop; on
             * restart raft re-feeds from the last committed LMDB index. */
            YH_ERR("n%" PRIu64 " apply %" PRIu64
                   " failed: %s, batch back "
                   "to %" PRIu64 "; stopping to replay from the log",
                   c->cfg.id, index, yh_strerror(rc),
                   fsm_applied_index(c->fsm));
            cluster__stop_now(); /* exits 70 */
        }
        YH_WARN_RL(&rl, "n%" PRIu64 " apply %" PRIu64 " failed: %s (retrying)",
                   c->cfg.id, index, yh_strerror(rc));
        return RAFT_IOERR;
    }
    return 0;
}

/* Apply everything queued and commit it: before the state is read as
 * current, snapshotted, replaced or closed. */
static int settle(struct cluster *c)
{
    int rc = cluster__defer_drain(c, 0);

    if (rc == 0) {
        rc = fsm_flush(c->fsm);
        if (rc == 0) {
            cluster__defer_committed(c);
        } else if (cluster__defer_rewind(c) == 0) {
            cluster__defer_start(c);
        }
    }
    return rc;
}

/* Synchronous part, on the loop: commit the open batch and pin a read
 * transaction on the state at last_applied. The bytes are produced by
 * glue_snapshot_async() on a threadpool thread. */
static int glue_snapshot(struct raft_fsm *rf,
                         struct raft_buffer *bufs[],
                         unsigned *n_bufs)
{
    struct cluster *c = rf->data;
    int rc;

    *bufs = NULL;
    *n_bufs = 0;
    if (c->snap != NULL) {
        return RAFT_BUSY;
    }
    /* libraft counts queued entries as applied: the snapshot must hold
     * them. */
    if (settle(c) != 0) {
        return RAFT_BUSY;
    }
    /* Before raft_uv can drop the segments this snapshot covers. A failure
     * refuses the snapshot (the log keeps everything until it works). */
    {
        char raft_dir[CLUSTER_PATH_SIZE + 16];
        char archive_dir[CLUSTER_PATH_SIZE + 16];
        snprintf(raft_dir, sizeof raft_dir, "%s/raft", c->cfg.data_dir);
        snprintf(archive_dir, sizeof archive_dir, "%s/archive",
                 c->cfg.data_dir);
        if (cluster__archive_segments(raft_dir, archive_dir,
                                      fsm_applied_index(c->fsm)) < 0) {
            return RAFT_BUSY;
        }
    }
    rc = fsm_snapshot_begin(c->fsm, &c->snap);
    if (rc != 0) {
        YH_WARN("n%" PRIu64 " snapshot begin: %s", c->cfg.id, yh_strerror(rc));
        c->snap = NULL;
        return RAFT_BUSY;
    }
    YH_INFO("n%" PRIu64 " snapshot at %" PRIu64, c->cfg.id,
            fsm_applied_index(c->fsm));
    return 0;
}

static int glue_snapshot_async(struct raft_fsm *rf,
                               struct raft_buffer *bufs[],
                               unsigned *n_bufs)
{
    struct cluster *c = rf->data;
    struct raft_buffer *b;
    int rc;

    if (c->cfg.test_snapshot_hold_file[0] != '\0') {
        /* Testing only (cluster.h): runs on a threadpool thread. */
        struct timespec ts = {0, 10 * 1000 * 1000};
        for (int i = 0;
             i < 6000 && access(c->cfg.test_snapshot_hold_file, F_OK) == 0;
             i++) {
            nanosleep(&ts, NULL);
        }
    }
    yh_buf_init(&c->snap_buf);
    rc = fsm_snapshot_encode(c->snap, &c->snap_buf);
    if (rc != 0) {
        yh_buf_release(&c->snap_buf);
        return RAFT_IOERR;
    }
    b = malloc(sizeof *b);
    if (b == NULL) {
        yh_buf_release(&c->snap_buf);
        return RAFT_NOMEM;
    }
    b->base = c->snap_buf.data;
    b->len = c->snap_buf.len;
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

static int glue_snapshot_finalize(struct raft_fsm *rf,
                                  struct raft_buffer *bufs[],
                                  unsigned *n_bufs)
{
    struct cluster *c = rf->data;

    if (*bufs != NULL) {
        free(*bufs);
        *bufs = NULL;
    }
    *n_bufs = 0;
    yh_buf_release(&c->snap_buf);
    if (c->snap != NULL) {
        fsm_snapshot_end(c->snap);
        c->snap = NULL;
    }
    return 0;
}

/* On success the fsm owns buf->base (libraft's rule): free it here. */
static int glue_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct cluster *c = rf->data;
    int loaded = 0;
    int rc;

    /* The snapshot supersedes whatever is still queued. */
    rc = settle(c);
    cluster__defer_clear(c);
    if (rc == 0) {
        rc = fsm_restore(c->fsm, buf->base, buf->len, &loaded);
    }
    if (rc != 0) {
        YH_ERR("n%" PRIu64 " restore snapshot: %s", c->cfg.id, yh_strerror(rc));
        return rc == YH_ECORRUPT ? RAFT_CORRUPT : RAFT_IOERR;
    }
    YH_INFO("n%" PRIu64 " snapshot %s, applied index %" PRIu64, c->cfg.id,
            loaded ? "restored" : "already held", fsm_applied_index(c->fsm));
    raft_free(buf->base);
    return 0;
}

/* ---- per-iteration work ------------------------------------------------ */

static void maybe_bootstrap_admin(struct cluster *c)
{
    struct fsm_key key;
    struct yh_buf env = YH_BUF_INIT;
    int rc;

    if (c->cfg.admin_public[0] == '\0' || raft_state(&c->raft) != RAFT_LEADER ||
        c->bootstrap_term == c->raft.current_term) {
        return;
    }
    c->bootstrap_term = c->raft.current_term;
    if (fsm_key_get(c->fsm, c->cfg.admin_public, &key) == 0) {
        return;
    }
    rc = fsm_cmd_bootstrap(c->cfg.admin_public, c->cfg.admin_private,
                           c->cfg.peers, c->cfg.n_peers, wall_ns(), &env);
    if (rc == 0) {
        rc = cluster_submit(c, env.data, env.len, 0, NULL, NULL);
    }
    if (rc != 0) {
        YH_WARN("n%" PRIu64 " admin bootstrap: %s", c->cfg.id, yh_strerror(rc));
        c->bootstrap_term = 0;
    } else {
        YH_INFO("n%" PRIu64 " proposing admin bootstrap", c->cfg.id);
    }
    yh_buf_release(&env);
}

static void kick_cb(uv_idle_t *h)
{
    uv_idle_stop(h);
}

void cluster__kick(struct cluster *c)
{
    if (!c->closing) {
        uv_idle_start(&c->kick, kick_cb);
    }
}

static void check_cb(uv_check_t *h)
{
    struct cluster *c = h->data;
    int rc;

    if (c->closing) {
        return;
    }
    cluster__hooks_poll(c);
    cluster__admin_run_deferred(c);
    cluster__flush_writes(c);
    cluster__flush_reads(c);
    if (!cluster__defer_should_commit(c)) {
        /* Still draining: commit in bigger batches, not every slice. */
    } else if ((rc = fsm_flush(c->fsm)) == 0) {
        cluster__defer_committed(c);
    } else {
        static struct yh_ratelimit rl = YH_RATELIMIT_INIT(5, 10);
        YH_WARN_RL(&rl, "n%" PRIu64 " commit batch: %s", c->cfg.id,
                   yh_strerror(rc));
        if (cluster__defer_rewind(c) == 0) {
            cluster__defer_start(c);
        }
    }
    if (c->tick_cb != NULL) {
        c->tick_cb(c->tick_arg);
    }
}

static int propose_tick(void *arg, const uint8_t *env, size_t len)
{
    struct cluster *c = arg;
    int rc = cluster_submit(c, env, len, 0, NULL, NULL);

    if (rc != 0) {
        static struct yh_ratelimit rl = YH_RATELIMIT_INIT(5, 10);
        YH_WARN_RL(&rl, "n%" PRIu64 " periodic proposal: %s", c->cfg.id,
                   yh_strerror(rc));
    }
    return rc;
}

/* revote.c asks to be polled when a vote request may need resending. */
static void revote_timer_cb(uv_timer_t *t)
{
    struct cluster *c = t->data;
    int next;

    if (c->closing) {
        return;
    }
    next = cluster_revote_poll(&c->revote);
    if (next >= 0) {
        uv_timer_start(&c->revote_timer, revote_timer_cb, (uint64_t)next, 0);
    }
}

static void revote_wake(void *arg, unsigned delay_ms)
{
    struct cluster *c = arg;

    if (c->revote_timer_ready && !c->closing &&
        !uv_is_active((uv_handle_t *)&c->revote_timer)) {
        uv_timer_start(&c->revote_timer, revote_timer_cb, delay_ms, 0);
    }
}

static void timer_cb(uv_timer_t *t)
{
    struct cluster *c = t->data;
    int leader;

    if (c->closing) {
        return;
    }
    leader = raft_state(&c->raft) == RAFT_LEADER;
    if (leader && !c->was_leader) {
        YH_INFO("n%" PRIu64 " leader in term %llu", c->cfg.id,
                (unsigned long long)c->raft.current_term);
    }
    c->was_leader = leader;
    if (leader) {
        settle(c);
    } else {
        cluster__defer_start(c); /* retries a failed slice */
    }
    cluster__hooks_poll(c);
    maybe_bootstrap_admin(c);
    if (leader) {
        /* Billing ticks, expiries, lease timeouts: keyed commands, so a
         * duplicate from a leader change is harmless. */
        fsm_leader_tick(c->fsm, wall_ns(), propose_tick, c);
    }
    if (leader && !cluster__quorum_contact(c, cluster__refuse_window(c))) {
        /* Cut off from the majority for an election timeout: libraft steps
         * down only at its next check-quorum, up to one more later. Answer
         * the writes still waiting now, outcome unknown: whether they
         * commit is up to the next leader. */
        cluster__fail_pending(c);
    }
    cluster__expire(c);
    cluster__flush_writes(c);
    if (c->cfg.map_budget != 0 && ++c->map_ticks >= 10) { /* ~1 s */
        c->map_ticks = 0;
        c->n_map_trims += fsm_map_trim(c->fsm, c->cfg.map_budget);
    }
}

/* ---- open / close ------------------------------------------------------ */

static int mkdir_p(const char *path)
{
    char tmp[CLUSTER_PATH_SIZE];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof tmp) {
        return YH_EINVAL;
    }
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
                return YH_EIO;
            }
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
        return YH_EIO;
    }
    return 0;
}

static int bootstrap_configuration(struct cluster *c)
{
    struct raft_configuration conf;
    int rv;

    raft_configuration_init(&conf);
    for (unsigned i = 0; i < c->cfg.n_peers; i++) {
        rv = raft_configuration_add(&conf, c->cfg.peers[i].id,
                                    c->cfg.peers[i].raft_addr, RAFT_VOTER);
        if (rv != 0) {
            raft_configuration_close(&conf);
            return rv;
        }
    }
    rv = raft_bootstrap(&c->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP) {
        return 0; /* not a fresh node: state is on disk already */
    }
    return rv;
}

int cluster_open(struct cluster **out,
                 uv_loop_t *loop,
                 const struct cluster_config *cfg,
                 char *errmsg)
{
    struct cluster *c;
    struct fsm_config fcfg = {0};
    char path[CLUSTER_PATH_SIZE + 16];
    int rc;
    int rv;

    c = calloc(1, sizeof *c);
    if (c == NULL) {
        return YH_ENOMEM;
    }
    c->loop = loop;
    c->cfg = *cfg;
    c->next_tag = (wall_ms() * 1000u) & ((UINT64_C(1) << 48) - 1);
    yh_buf_init(&c->result);
    yh_buf_init(&c->event);
    yh_buf_init(&c->snap_buf);

    if (cfg->id == 0 || cfg->id >= (1u << 16)) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "node id must be 1..65535");
        rc = YH_EINVAL;
        goto err;
    }
    rc = mkdir_p(cfg->data_dir);
    if (rc != 0) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "cannot create '%s': %s",
                 cfg->data_dir, strerror(errno));
        goto err;
    }
    snprintf(path, sizeof path, "%s/state", cfg->data_dir);
    fcfg.map_size = cfg->map_size;
    fcfg.nosync = 1; /* the raft log is the durable copy */
    rc = fsm_check_isolated(path, &fcfg, errmsg);
    if (rc == 0) {
        rc = fsm_open(&c->fsm, path, &fcfg, errmsg);
    }
    if (rc != 0) {
        goto err;
    }
    snprintf(path, sizeof path, "%s/raft", cfg->data_dir);
    rc = mkdir_p(path);
    if (rc != 0) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "cannot create '%s'", path);
        goto err_after_fsm;
    }

    rv = cluster__transport_init(c);
    if (rv != 0) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "raft tcp transport: %s",
                 raft_strerror(rv));
        rc = YH_EIO;
        goto err_after_fsm;
    }
    rv = raft_uv_init(&c->io, loop, path, &c->xport);
    if (rv != 0) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "raft io on '%s': %s", path,
                 c->io.errmsg);
        rc = YH_EIO;
        goto err_after_transport;
    }
    /* Closing a segment runs io_destroy on the loop thread (30-40 ms stall
     * each): big segments make that rare. */
    raft_uv_set_segment_size(&c->io, cfg->segment_size);
    /* Reconnect to a peer soon after a failure (transport.c). */
    cluster__transport_tune(c);
    /* LZ4 on every snapshot cost ~10% of a follower's CPU under load; the
     * disk is not the bottleneck here, the cores are. */
    raft_uv_set_snapshot_compression(&c->io, false);
    /* raft_uv 0.15 implements io->async_work (UvAsyncWork) but still
     * reports version 1, and raft_init refuses async snapshots below 2. */
    if (c->io.async_work != NULL && c->io.version < 2) {
        c->io.version = 2;
    }
    /* raft_uv 0.15 loses a second barrier (a truncation or a snapshot
     * write during another): barrier.c, directly above raft_uv. */
    rv = cluster_barriers_install(&c->barriers, &c->io, loop);
    if (rv != 0) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "raft io barriers: %s",
                 uv_strerror(rv));
        rc = YH_EIO;
        goto err_after_uv_io;
    }
    /* Deferred InstallSnapshot and the election timer's window: hooks.c. */
    cluster__hooks_install(c);
    /* Vote requests resent until answered: revote.c. */
    cluster_revote_install(&c->revote, &c->io, REVOTE_INTERVAL_MS, revote_wake,
                           c);
    /* libraft 0.15's follower answers after a term or role change: guard.c.
     * Above the hooks, so that it sees libraft's own requests. */
    cluster_guard_install(&c->guard, &c->io);

    c->raft_fsm.version = 3;
    c->raft_fsm.data = c;
    c->raft_fsm.apply = glue_apply;
    c->raft_fsm.snapshot = glue_snapshot;
    c->raft_fsm.snapshot_async = glue_snapshot_async;
    c->raft_fsm.snapshot_finalize = glue_snapshot_finalize;
    c->raft_fsm.restore = glue_restore;

    rv = raft_init(&c->raft, &c->io, &c->raft_fsm, cfg->id, cfg->raft_addr);
    if (rv != 0) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "raft init: %s",
                 raft_errmsg(&c->raft));
        rc = YH_EIO;
        goto err_after_io;
    }
    c->raft.data = c;
    raft_set_election_timeout(&c->raft, cfg->election_timeout_ms);
    raft_set_heartbeat_timeout(&c->raft, cfg->heartbeat_timeout_ms);
    raft_set_snapshot_threshold(&c->raft, cfg->snapshot_threshold);
    raft_set_snapshot_trailing(&c->raft, cfg->snapshot_trailing);
    raft_set_install_snapshot_timeout(&c->raft,
                                      cfg->install_snapshot_timeout_ms);
    raft_set_pre_vote(&c->raft, true);

    if (!cfg->join) {
        rv = bootstrap_configuration(c);
        if (rv != 0) {
            snprintf(errmsg, YH_ERRMSG_SIZE, "raft bootstrap: %s",
                     raft_strerror(rv));
            rc = YH_EIO;
            goto err_after_raft;
        }
    }
    if (cluster__transport_probe(c, errmsg) != 0) {
        rc = YH_EIO;
        goto err_after_raft;
    }
    rv = raft_start(&c->raft);
    if (rv != 0) {
        /* raft_uv's load errors (a segment or snapshot it cannot use) are
         * in the io's own message; libraft's is often empty then */
        snprintf(errmsg, YH_ERRMSG_SIZE, "raft start: %s (%s%s%s)",
                 raft_strerror(rv), raft_errmsg(&c->raft),
                 raft_errmsg(&c->raft)[0] != '\0' && c->io.errmsg[0] != '\0'
                     ? "; "
                     : "",
                 c->io.errmsg);
        rc = rv == RAFT_CORRUPT ? YH_ECORRUPT : YH_EIO;
        goto err_after_raft;
    }

    uv_check_init(loop, &c->check);
    c->check.data = c;
    uv_check_start(&c->check, check_cb);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_idle_init(loop, &c->kick);
    c->kick.data = c;
    uv_idle_init(loop, &c->drain);
    c->drain.data = c;
    uv_timer_start(&c->timer, timer_cb, 100, 100);
    uv_timer_init(loop, &c->revote_timer);
    c->revote_timer.data = c;
    c->revote_timer_ready = 1;

    YH_INFO("n%" PRIu64 " started: raft %s, data %s, applied %" PRIu64, cfg->id,
            cfg->raft_addr, cfg->data_dir, fsm_applied_index(c->fsm));
    *out = c;
    return 0;

err_after_raft:
    /* raft_init succeeded: raft owns the io from here, and closing needs the
     * loop to run. This happens at start-up only: give up the process. */
    YH_ERR("n%" PRIu64 " %s", cfg->id, errmsg);
    fsm_close(c->fsm);
    return rc;
err_after_io:
    cluster_guard_remove(&c->guard);
    cluster_revote_remove(&c->revote);
    cluster_barriers_remove(&c->barriers);
err_after_uv_io:
    raft_uv_close(&c->io);
err_after_transport:
    cluster__transport_release(c);
err_after_fsm:
    fsm_close(c->fsm);
err:
    yh_buf_release(&c->result);
    yh_buf_release(&c->event);
    free(c);
    return rc;
}

/* Every reader of the state comes through here: entries still queued on a
 * follower are applied first (one settle per call at most; re-entrant calls
 * from inside an apply see the state as it is). */
struct fsm *cluster_fsm(struct cluster *c)
{
    if (c->dq_next < c->dq_tail && !c->draining && !c->closing) {
        cluster__defer_drain(c, 0);
    }
    return c->fsm;
}

uint64_t cluster_next_tag(struct cluster *c)
{
    c->next_tag = (c->next_tag + 1) & ((UINT64_C(1) << 48) - 1);
    return (c->cfg.id << 48) | c->next_tag;
}

void cluster_set_event_cb(struct cluster *c, cluster_event_cb *cb, void *arg)
{
    c->event_cb = cb;
    c->event_arg = arg;
}

void cluster_set_tick_cb(struct cluster *c, cluster_tick_cb *cb, void *arg)
{
    c->tick_cb = cb;
    c->tick_arg = arg;
}

int cluster_is_leader(struct cluster *c)
{
    return raft_state(&c->raft) == RAFT_LEADER;
}

static void maybe_finish_close(struct cluster *c)
{
    cluster_close_cb *cb;
    void *arg;

    if (--c->n_closing > 0) {
        return;
    }
    fsm_close(c->fsm);
    cluster_guard_remove(&c->guard);
    cluster_revote_remove(&c->revote);
    cluster_barriers_remove(&c->barriers);
    yh_buf_release(&c->result);
    yh_buf_release(&c->event);
    cb = c->close_cb;
    arg = c->close_arg;
    free(c);
    if (cb != NULL) {
        cb(arg);
    }
}

static void handle_closed(uv_handle_t *h)
{
    maybe_finish_close(h->data);
}

static void raft_closed(struct raft *r)
{
    struct cluster *c = r->data;

    raft_uv_close(&c->io);
    cluster__transport_release(c);
    maybe_finish_close(c);
}

void cluster_close(struct cluster *c, cluster_close_cb *cb, void *arg)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    c->close_cb = cb;
    c->close_arg = arg;
    c->n_closing = 6; /* raft, check, timer, revote timer, kick, drain */
    settle(c);
    cluster__defer_free(c);
    cluster__fail_all(c);
    cluster__hooks_close(c);
    uv_check_stop(&c->check);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->check, handle_closed);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    c->revote_timer_ready = 0;
    uv_timer_stop(&c->revote_timer);
    uv_close((uv_handle_t *)&c->revote_timer, handle_closed);
    uv_idle_stop(&c->kick);
    uv_close((uv_handle_t *)&c->kick, handle_closed);
    uv_idle_stop(&c->drain);
    uv_close((uv_handle_t *)&c->drain, handle_closed);
    raft_close(&c->raft, raft_closed);
}
