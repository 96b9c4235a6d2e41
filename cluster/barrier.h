/* One raft_uv barrier at a time (barrier.c): libraft 0.15's raft_uv loses
 * a barrier requested while another one is in progress. Independent of
 * struct cluster so that tests can put it on a bare raft_uv io. */
#ifndef YH_CLUSTER_BARRIER_H
#define YH_CLUSTER_BARRIER_H

#include <raft.h>
#include <uv.h>

struct raft_barriers_op;

struct raft_barriers
{
    struct raft_io *io;
    int (*append)(struct raft_io *io,
                  struct raft_io_append *req,
                  const struct raft_entry entries[],
                  unsigned n,
                  raft_io_append_cb cb);
    int (*truncate)(struct raft_io *io, raft_index index);
    int (*snapshot_put)(struct raft_io *io,
                        unsigned trailing,
                        struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot,
                        raft_io_snapshot_put_cb cb);
    void (*close)(struct raft_io *io, raft_io_close_cb cb);
    struct raft_barriers_op *head; /* requests held back, in call order */
    struct raft_barriers_op *tail;
    int busy;        /* a truncate or snapshot_put is in raft_uv */
    int busy_done;   /* ... it has completed; drain on the next turn */
    int need_marker; /* a truncate was passed: the next append marks it */
    int closing;
    int failed;                /* a held truncate could not be submitted */
    uv_timer_t *drain;         /* runs the queue one loop turn after completion;
                                  its own allocation, freed when closed */
    unsigned long long n_held; /* requests held back */
    unsigned long long n_held_puts;   /* ... snapshot_put among them */
    unsigned long long n_held_truncs; /* ... truncate among them */
    struct raft_barriers *next;       /* registry (barrier.c) */
};

/* Wrap @io's append, truncate, snapshot_put and close; @io must be a
 * raft_uv io on @loop, initialized, with no other wrapper below this one.
 * Returns 0 or a libuv error. */
int cluster_barriers_install(struct raft_barriers *b,
                             struct raft_io *io,
                             uv_loop_t *loop);

/* Forget @b (closing its timer if its io was never closed). */
void cluster_barriers_remove(struct raft_barriers *b);

#endif
