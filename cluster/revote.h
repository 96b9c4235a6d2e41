/* Vote requests resent until answered (revote.c). Independent of struct
 * cluster so that tests can put it on the io of a raft_fixture server. */
#ifndef YH_CLUSTER_REVOTE_H
#define YH_CLUSTER_REVOTE_H

#include <raft.h>

#define RAFT_REVOTE_PEERS 16
#define RAFT_REVOTE_ADDRESS 64
#define RAFT_REVOTE_MAX_RESENDS 32

struct raft_revote
{
    struct raft_io *io; /* the wrapped io; io->data is its raft */
    int (*send)(struct raft_io *io,
                struct raft_io_send *req,
                const struct raft_message *message,
                raft_io_send_cb cb);
    int (*start)(struct raft_io *io,
                 unsigned msecs,
                 raft_io_tick_cb tick,
                 raft_io_recv_cb recv);
    raft_io_tick_cb tick; /* the caller's (libraft's, or a wrapper's) */
    raft_io_recv_cb recv;
    unsigned interval_ms; /* resend an unanswered request this often */
    /* Called when a request is waiting to be resent in @delay_ms (NULL: the
     * io's ticks are the only polls). */
    void (*wake)(void *arg, unsigned delay_ms);
    void *wake_arg;
    struct raft_revote_peer
    {
        raft_id id; /* 0: slot unused */
        char address[RAFT_REVOTE_ADDRESS];
        struct raft_request_vote args; /* the request libraft last sent */
        raft_time sent_at;             /* last (re)sent, io->time */
        unsigned n_sent;
        int waiting; /* no answer to @args yet */
    } peers[RAFT_REVOTE_PEERS];
    unsigned long long n_resent;   /* requests resent */
    unsigned long long n_answered; /* ... answered after a resend */
    struct raft_revote *next;      /* registry (revote.c) */
};

/* Wrap @io's send and start. @wake may be NULL. Call after the io is
 * initialized; libraft must set io->data to its raft (raft_init does) before
 * the first call. */
void cluster_revote_install(struct raft_revote *v,
                            struct raft_io *io,
                            unsigned interval_ms,
                            void (*wake)(void *arg, unsigned delay_ms),
                            void *wake_arg);

/* Resend what is due. Returns the milliseconds until the next request is
 * due, or -1 if none is waiting. */
int cluster_revote_poll(struct raft_revote *v);

/* Forget @v; only once its raft and io are closed. */
void cluster_revote_remove(struct raft_revote *v);

#endif
