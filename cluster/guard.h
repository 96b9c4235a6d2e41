/* A guard around a raft_io against libraft 0.15 follower bugs (guard.c).
 * Independent of struct cluster so that tests can put it on the io of a
 * raft_fixture server. */
#ifndef YH_CLUSTER_GUARD_H
#define YH_CLUSTER_GUARD_H

#include <raft.h>

#define RAFT_GUARD_CONFS 8

struct raft_guard
{
    struct raft_io *io; /* the guarded io; io->data is its raft */
    int (*send)(struct raft_io *io,
                struct raft_io_send *req,
                const struct raft_message *message,
                raft_io_send_cb cb);
    int (*append)(struct raft_io *io,
                  struct raft_io_append *req,
                  const struct raft_entry entries[],
                  unsigned n,
                  raft_io_append_cb cb);
    int (*snapshot_put)(struct raft_io *io,
                        unsigned trailing,
                        struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot,
                        raft_io_snapshot_put_cb cb);
    int (*start)(struct raft_io *io,
                 unsigned msecs,
                 raft_io_tick_cb tick,
                 raft_io_recv_cb recv);
    int (*load)(struct raft_io *io,
                raft_term *term,
                raft_id *voted_for,
                struct raft_snapshot **snapshot,
                raft_index *start_index,
                struct raft_entry *entries[],
                size_t *n_entries);
    raft_index load_conf_index; /* the loaded snapshot's, 0 if none */
    raft_io_tick_cb tick;       /* libraft's */
    raft_io_recv_cb recv;       /* libraft's */
    int in_done;                /* inside a guarded completion callback */
    raft_term done_term;        /* current term when that request was made */
    unsigned long long n_dropped_results; /* AppendEntries results dropped */
    unsigned long long n_held_elections;  /* ticks with the timer held */
    unsigned long long n_dropped_timeout_now;
    /* Configurations recently seen at a log index (guard.c, "rollback"):
     * what libraft 0.15 can no longer find in its log when it rolls an
     * uncommitted configuration back. */
    struct raft_guard_conf
    {
        raft_index index; /* 0: slot unused */
        raft_term term;   /* of the entry at @index, 0 if not known */
        struct raft_configuration conf;
    } confs[RAFT_GUARD_CONFS];
    unsigned long long n_rollbacks;       /* rollbacks done by the guard */
    unsigned long long n_rollback_missed; /* ... it had no copy for */
    unsigned long long n_snapshot_confs;  /* snapshot configurations fixed */
    int start_uncommitted;   /* start: the newest configuration entry was
                                marked uncommitted */
    struct raft_guard *next; /* registry (guard.c) */
};

/* Wrap @io's send, append, snapshot_put, load and start. Call after the io is
 * initialized (and after any other wrapper that must sit below this one);
 * libraft must set io->data to its raft (raft_init does) before the first
 * call. */
void cluster_guard_install(struct raft_guard *g, struct raft_io *io);

/* Forget @g and free what it holds; only once its raft and io are
 * closed. */
void cluster_guard_remove(struct raft_guard *g);

#endif
