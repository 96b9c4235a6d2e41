/* Private to cluster/: the cluster struct and helpers shared by its files. */
#ifndef YH_CLUSTER_INT_H
#define YH_CLUSTER_INT_H

#include <raft.h>
#include <raft/uv.h>

#include "cluster.h"
#include "barrier.h"
#include "guard.h"
#include "revote.h"

/* A proposed write waiting for its entry to be applied. Referenced by the
 * pending list (until completed) and by its batch (until raft's apply
 * callback fires), hence the refcount. */
struct cluster_pending
{
    uint64_t tag;                 /* envelope tag */
    cluster_write_cb *cb;         /* completion */
    void *arg;                    /* for @cb */
    int done;                     /* completion delivered */
    int refs;                     /* list + batch references */
    uint64_t deadline_ms;         /* uv_now deadline for an answer */
    struct raft_buffer buf;       /* payload until proposed */
    struct cluster_pending *prev; /* pending list, proposal order */
    struct cluster_pending *next;
};

/* One raft_apply() request. */
struct cluster_batch
{
    struct raft_apply req;           /* must stay valid until its cb */
    struct cluster *c;               /* owner */
    unsigned n;                      /* number of entries */
    struct cluster_pending *items[]; /* one per entry */
};

/* A queued linearizable read. */
struct cluster_read
{
    cluster_read_cb *cb;       /* completion */
    void *arg;                 /* for @cb */
    struct cluster_read *next; /* FIFO */
};

/* Async admin operation (transfer, add, remove). */
struct cluster_admin
{
    struct cluster *c;
    cluster_admin_cb *cb;
    void *arg;
    struct fsm_node node; /* node being added/removed */
    int step;             /* progress of a multi-step change */
    union
    {
        struct raft_transfer transfer;
        struct raft_change change;
    } req;
};

struct cluster
{
    uv_loop_t *loop;                    /* borrowed */
    struct cluster_config cfg;          /* copy */
    struct fsm *fsm;                    /* owned */
    struct raft_io io;                  /* raft_uv */
    struct raft_uv_transport transport; /* raft_uv_tcp (inner) */
    /* transport.c: what raft_uv uses; connects itself, listens through
     * @transport. */
    struct raft_uv_transport xport;
    raft_id xid;
    char xaddress[64];
    raft_uv_accept_cb xaccept_cb;
    struct tconn *xconns; /* outgoing connection attempts */
    int xclosing;
    int xinner_closed;
    raft_uv_transport_close_cb xclose_cb;
    struct raft_fsm raft_fsm; /* glue, data = this */
    struct raft raft;         /* the raft instance */
    uv_check_t check;         /* end-of-iteration work */
    uv_timer_t timer;         /* 1 s housekeeping */
    uv_idle_t kick;           /* keeps the loop spinning until the next check */
    struct cluster_admin *admin_deferred; /* next membership step to run */
    int closing;                          /* cluster_close() called */
    int n_closing;                        /* handles still closing */
    cluster_close_cb *close_cb;
    void *close_arg;

    uint64_t next_tag; /* low 48 bits of the next tag */

    /* Writes queued for the next batch. */
    struct cluster_pending **queue;
    unsigned n_queue;
    unsigned queue_cap;
    unsigned n_pending;           /* proposed, not completed */
    struct cluster_pending *head; /* pending list, oldest first */
    struct cluster_pending *tail;

    /* Reads. */
    struct cluster_read *reads_head; /* queued, no barrier yet */
    struct cluster_read *reads_tail;
    struct cluster_read *reads_waiting; /* behind the in-flight barrier */
    struct raft_barrier barrier;
    int barrier_inflight;

    /* Snapshot in progress (one at a time). */
    struct fsm_snap *snap;
    struct yh_buf snap_buf;

    /* Leadership bookkeeping. */
    raft_term bootstrap_term; /* term in which admin bootstrap ran */
    int was_leader;

    struct cluster_admin *admin; /* membership change in progress */

    cluster_event_cb *event_cb;
    void *event_arg;
    cluster_tick_cb *tick_cb;
    void *tick_arg;

    struct raft_guard guard;   /* guard.c: libraft 0.15 follower answers */
    struct raft_revote revote; /* revote.c: vote requests resent */
    uv_timer_t revote_timer;   /* polls revote while requests wait */
    int revote_timer_ready;
    struct raft_barriers
        barriers;       /* barrier.c: one raft_uv barrier at a time */
    unsigned map_ticks; /* timer ticks since the map check */
    unsigned long long n_map_trims; /* fsm_map_trim() that released */

    /* hooks.c: wrappers around two raft_io methods. */
    int (*io_start)(struct raft_io *io,
                    unsigned msecs,
                    raft_io_tick_cb tick,
                    raft_io_recv_cb recv);                  /* raft_uv's */
    int (*io_random)(struct raft_io *io, int min, int max); /* raft_uv's */
    int (*io_append)(struct raft_io *io,
                     struct raft_io_append *req,
                     const struct raft_entry entries[],
                     unsigned n,
                     raft_io_append_cb cb); /* raft_uv's */
    raft_io_recv_cb raft_recv;              /* libraft's receive callback */
    struct raft_message held;               /* deferred InstallSnapshot */
    int held_valid;                         /* @held is set */
    char held_addr[64];                     /* @held's server_address */
    unsigned long long n_deferred;          /* InstallSnapshots deferred */
    /* hooks.c: when a message last came from each peer (uv_now ms), for
     * cluster__quorum_contact(). */
    struct
    {
        raft_id id;
        uint64_t ms;
    } contact[2 * CLUSTER_MAX_NODES];
    raft_term contact_term; /* term of the leadership being checked */
    uint64_t contact_since; /* uv_now when it was first checked */
    int contact_lost;       /* logged "lost contact" for this episode */

    struct yh_buf result; /* scratch for fsm_apply */
    struct yh_buf event;
    char errmsg[YH_ERRMSG_SIZE];

    /* Deferred apply on followers (defer.c): a FIFO of committed entries,
     * [dq_head, dq_next) applied but not committed to LMDB yet,
     * [dq_next, dq_tail) waiting. Absolute counters; slot = i & (cap-1). */
    struct cluster_deferred **dq;
    unsigned dq_cap;
    uint64_t dq_head, dq_next, dq_tail;
    size_t dq_bytes;
    unsigned dq_uncommitted; /* applied since the last commit */
    int draining;            /* re-entrancy guard */
    uv_idle_t drain;         /* applies the queue between I/O */
};

/* submit.c */
void cluster__flush_writes(struct cluster *c);
void cluster__flush_reads(struct cluster *c);
void cluster__complete_tag(struct cluster *c,
                           uint64_t tag,
                           const uint8_t *result,
                           size_t len);
void cluster__expire(struct cluster *c);
uint64_t cluster__refuse_window(const struct cluster *c);
/* Complete every proposed write with YH_EUNKNOWN (see timer_cb). */
void cluster__fail_pending(struct cluster *c);
void cluster__fail_all(struct cluster *c);

/* node.c: stop the process at once with status 70 ("replay from the log
 * on restart"): stdio flushed, then _exit, not exit: atexit handlers and
 * library destructors racing the threadpool crashed a node (SIGSEGV) in
 * jepsen when exit() ran from inside a raft_uv callback. */
void cluster__stop_now(void) __attribute__((noreturn));

/* node.c: apply one committed entry (result to its proposer, event to
 * watchers). */
int cluster__apply_one(struct cluster *c,
                       uint64_t index,
                       const void *data,
                       size_t len);

/* defer.c */
int cluster__defer_push(struct cluster *c,
                        uint64_t index,
                        const void *data,
                        size_t len);
/* Apply queued entries in order; @budget_ns 0 = all. Non-zero: an apply
 * failed and the queue was rewound to retry (or the process exited). */
int cluster__defer_drain(struct cluster *c, uint64_t budget_ns);
unsigned cluster__defer_waiting(const struct cluster *c);
/* After a rolled-back batch: 0 if the queue can re-apply what was lost. */
int cluster__defer_rewind(struct cluster *c);
/* After a successful commit: drop the entries it made durable. */
void cluster__defer_committed(struct cluster *c);
int cluster__defer_should_commit(const struct cluster *c);
void cluster__defer_start(struct cluster *c);
void cluster__defer_clear(struct cluster *c);
void cluster__defer_free(struct cluster *c);

/* node.c: run the check handle's work on the next loop turn without
 * waiting for I/O. Raft callbacks use it instead of calling back into raft
 * (libraft 0.15 is not re-entrant there: a barrier issued from a failing
 * barrier's callback crashed under partitions). */
void cluster__kick(struct cluster *c);

/* membership.c */
void cluster__admin_run_deferred(struct cluster *c);
void cluster__admin_fail(struct cluster *c, int status, const char *msg);

/* hooks.c: wrap c->io (after raft_uv_init, before raft_init); deliver a
 * deferred InstallSnapshot once this node's own snapshot is done (called
 * every loop turn); free it at close. */
void cluster__hooks_install(struct cluster *c);
void cluster__hooks_poll(struct cluster *c);
void cluster__hooks_close(struct cluster *c);
/* On a leader: 1 if a majority of voters (this node included) was heard
 * from within @window_ms (or leadership began less than @window_ms ago),
 * else 0. Always 1 on a non-leader. */
int cluster__quorum_contact(struct cluster *c, uint64_t window_ms);

/* transport.c: set up c->transport and the wrapper c->xport (before
 * raft_uv_init), tune raft_uv's reconnects (after it), release. */
int cluster__transport_init(struct cluster *c);
void cluster__transport_tune(struct cluster *c);
void cluster__transport_release(struct cluster *c);
/* 0 if the raft address can be listened on now, else -1 with the reason in
 * @errmsg (YH_ERRMSG_SIZE): raft_uv reports a failed bind or listen as a
 * bare I/O error with no message. */
int cluster__transport_probe(struct cluster *c, char *errmsg);

/* Map a libraft error to a YH_E* code. */
int cluster__raft_err(int rv);

/* ---- archive.c ---- */
/* Hard-link every closed segment of @raft_dir whose last index is at most
 * @applied into @archive_dir (created if missing). Returns the number of
 * new links, or -1 after logging why. */
int cluster__archive_segments(const char *raft_dir,
                              const char *archive_dir,
                              uint64_t applied);

#endif
