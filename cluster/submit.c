/* Proposal batching, result matching and barrier reads.
 *
 * Writes: cluster_submit() copies the envelope into a raft buffer and queues
 * it; cluster__flush_writes() (once per loop iteration) hands the whole
 * queue to one raft_apply(). Each proposal stays on the pending list, in
 * proposal order, until the entry carrying its tag is applied here
 * (cluster__complete_tag) — libraft reports only the first entry of a batch
 * through its callback. Tags grow monotonically on this node, so when tag T
 * is applied, every older pending proposal that has not been applied can
 * never be any more (the log holds our proposals in proposal order): those
 * complete with YH_EUNKNOWN, as do batches whose raft callback reports an
 * error and proposals past their deadline.
 *
 * Reads: queued reads wait for the next raft_barrier; one barrier serves
 * every read queued before it was issued. */
#include "cluster_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"

YH_LOG_MODULE("submit");

#define MAX_PENDING 65536u /* proposals in flight before YH_EBUSY */
#define MAX_BATCH 1024u    /* entries per raft_apply */
#define WRITE_TIMEOUT_MS 10000u

/* A leader that has heard from no majority for this long refuses new
 * writes and reads (YH_EUNAVAIL: nothing was proposed, retry elsewhere) and
 * answers its proposed writes YH_EUNKNOWN (node.c timer_cb): an election
 * timeout, and at least three heartbeats. libraft's check-quorum deposes
 * such a leader at its next check anyway (it checks once per election
 * timeout), so this only stops holding clients until then. Half an
 * election timeout was tried: under 28% packet loss (jepsen pause+loss)
 * TCP retransmissions alone delay answers that long, and the leader
 * refused writes it could still have committed. */
uint64_t cluster__refuse_window(const struct cluster *c)
{
    uint64_t w = c->cfg.election_timeout_ms;
    uint64_t hb = 3 * (uint64_t)c->cfg.heartbeat_timeout_ms;

    return w > hb ? w : hb;
}

static void pending_unref(struct cluster_pending *p)
{
    if (--p->refs == 0) {
        if (p->buf.base != NULL) {
            raft_free(p->buf.base);
        }
        free(p);
    }
}

static void list_remove(struct cluster *c, struct cluster_pending *p)
{
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        c->head = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    } else {
        c->tail = p->prev;
    }
    p->prev = p->next = NULL;
    c->n_pending--;
}

/* Deliver @status to @p once, drop it from the list. */
static void complete(struct cluster *c,
                     struct cluster_pending *p,
                     int status,
                     const uint8_t *result,
                     size_t len)
{
    if (p->done) {
        return;
    }
    p->done = 1;
    list_remove(c, p);
    if (p->cb != NULL) {
        p->cb(p->arg, status, result, len);
    }
    pending_unref(p);
}

int cluster_submit(struct cluster *c,
                   const uint8_t *envelope,
                   size_t len,
                   uint64_t tag,
                   cluster_write_cb *cb,
                   void *arg)
{
    struct cluster_pending *p;
    size_t padded;

    if (c->closing || raft_state(&c->raft) != RAFT_LEADER ||
        !cluster__quorum_contact(c, cluster__refuse_window(c))) {
        return YH_EUNAVAIL;
    }
    if (c->n_pending + c->n_queue >= MAX_PENDING) {
        return YH_EBUSY;
    }
    if (c->n_queue == c->queue_cap) {
        unsigned cap = c->queue_cap ? c->queue_cap * 2 : 256;
        struct cluster_pending **q = realloc(c->queue, cap * sizeof *q);
        if (q == NULL) {
            return YH_ENOMEM;
        }
        c->queue = q;
        c->queue_cap = cap;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        return YH_ENOMEM;
    }
    /* libraft 0.15 writes entries back to back and assumes each length is
     * a multiple of 8 (an assert compiled out in release builds); an odd
     * length corrupts the next batch's header on disk and on the wire.
     * Pad with zeros; fsm_apply accepts up to 7 trailing zero bytes. */
    padded = (len + 7) & ~(size_t)7;
    p->buf.base = raft_malloc(padded);
    if (p->buf.base == NULL) {
        free(p);
        return YH_ENOMEM;
    }
    memcpy(p->buf.base, envelope, len);
    memset((uint8_t *)p->buf.base + len, 0, padded - len);
    p->buf.len = padded;
    p->tag = tag;
    p->cb = cb;
    p->arg = arg;
    p->refs = 1;
    c->queue[c->n_queue++] = p;
    return 0;
}

static void batch_cb(struct raft_apply *req, int status, void *result)
{
    struct cluster_batch *b = req->data;
    struct cluster *c = b->c;

    (void)result;
    for (unsigned i = 0; i < b->n; i++) {
        struct cluster_pending *p = b->items[i];
        if (status != 0 && !p->done) {
            /* Leadership lost (or shutdown) after proposing: the entry may
             * still be committed by the next leader. */
            complete(c, p, YH_EUNKNOWN, NULL, 0);
        }
        pending_unref(p);
    }
    free(b);
}

static void propose(struct cluster *c,
                    struct cluster_pending **items,
                    unsigned n)
{
    struct cluster_batch *b;
    struct raft_buffer *bufs;
    uint64_t deadline = uv_now(c->loop) + WRITE_TIMEOUT_MS;
    int rv;

    b = malloc(sizeof *b + n * sizeof b->items[0]);
    bufs = malloc(n * sizeof *bufs);
    if (b == NULL || bufs == NULL) {
        free(b);
        free(bufs);
        for (unsigned i = 0; i < n; i++) {
            if (items[i]->cb != NULL) {
                items[i]->cb(items[i]->arg, YH_EUNAVAIL, NULL, 0);
            }
            pending_unref(items[i]);
        }
        return;
    }
    b->c = c;
    b->n = n;
    b->req.data = b;
    for (unsigned i = 0; i < n; i++) {
        bufs[i] = items[i]->buf;
        b->items[i] = items[i];
    }
    rv = raft_apply(&c->raft, &b->req, bufs, n, batch_cb);
    free(bufs);
    if (rv != 0) {
        /* Nothing was proposed: the caller still owns the buffers. */
        int status = cluster__raft_err(rv);
        for (unsigned i = 0; i < n; i++) {
            struct cluster_pending *p = items[i];
            if (p->cb != NULL) {
                p->cb(p->arg, status == YH_EBUSY ? YH_EBUSY : YH_EUNAVAIL, NULL,
                      0);
            }
            pending_unref(p);
        }
        free(b);
        return;
    }
    /* raft owns the payloads now. */
    for (unsigned i = 0; i < n; i++) {
        struct cluster_pending *p = items[i];
        p->buf.base = NULL;
        p->buf.len = 0;
        p->deadline_ms = deadline;
        p->refs = 2; /* list + batch */
        p->prev = c->tail;
        p->next = NULL;
        if (c->tail != NULL) {
            c->tail->next = p;
        } else {
            c->head = p;
        }
        c->tail = p;
        c->n_pending++;
    }
}

void cluster__flush_writes(struct cluster *c)
{
    unsigned off = 0;

    while (off < c->n_queue) {
        unsigned n = c->n_queue - off;
        if (n > MAX_BATCH) {
            n = MAX_BATCH;
        }
        propose(c, c->queue + off, n);
        off += n;
    }
    c->n_queue = 0;
}

void cluster__complete_tag(struct cluster *c,
                           uint64_t tag,
                           const uint8_t *result,
                           size_t len)
{
    while (c->head != NULL && c->head->tag <= tag) {
        struct cluster_pending *p = c->head;
        if (p->tag == tag) {
            complete(c, p, 0, result, len);
            return;
        }
        complete(c, p, YH_EUNKNOWN, NULL, 0);
    }
}

void cluster__expire(struct cluster *c)
{
    uint64_t now = uv_now(c->loop);

    while (c->head != NULL && c->head->deadline_ms <= now) {
        complete(c, c->head, YH_EUNKNOWN, NULL, 0);
    }
}

void cluster__fail_pending(struct cluster *c)
{
    while (c->head != NULL) {
        complete(c, c->head, YH_EUNKNOWN, NULL, 0);
    }
}

/* ---- reads ------------------------------------------------------------- */

int cluster_barrier(struct cluster *c, cluster_read_cb *cb, void *arg)
{
    struct cluster_read *r;

    if (c->closing || raft_state(&c->raft) != RAFT_LEADER ||
        !cluster__quorum_contact(c, cluster__refuse_window(c))) {
        return YH_EUNAVAIL;
    }
    r = malloc(sizeof *r);
    if (r == NULL) {
        return YH_ENOMEM;
    }
    r->cb = cb;
    r->arg = arg;
    r->next = NULL;
    if (c->reads_tail != NULL) {
        c->reads_tail->next = r;
    } else {
        c->reads_head = r;
    }
    c->reads_tail = r;
    return 0;
}

static void finish_reads(struct cluster_read *list, int status)
{
    while (list != NULL) {
        struct cluster_read *next = list->next;
        list->cb(list->arg, status);
        free(list);
        list = next;
    }
}

static void barrier_cb(struct raft_barrier *req, int status)
{
    struct cluster *c = req->data;
    struct cluster_read *list = c->reads_waiting;

    c->reads_waiting = NULL;
    c->barrier_inflight = 0;
    /* A failed barrier proves nothing about leadership: the reads had no
     * effect, so they fail definitely and the client retries. */
    finish_reads(list, status == 0 ? 0 : YH_EUNAVAIL);
    if (c->reads_head != NULL) {
        /* Issue the next barrier from the check handle, never from inside
         * libraft's callback. */
        cluster__kick(c);
    }
}

void cluster__flush_reads(struct cluster *c)
{
    struct cluster_read *list;
    int rv;

    if (c->reads_head == NULL || c->barrier_inflight) {
        return;
    }
    list = c->reads_head;
    c->reads_head = c->reads_tail = NULL;
    if (raft_state(&c->raft) != RAFT_LEADER) {
        finish_reads(list, YH_EUNAVAIL);
        return;
    }
    c->barrier.data = c;
    c->reads_waiting = list;
    c->barrier_inflight = 1;
    rv = raft_barrier(&c->raft, &c->barrier, barrier_cb);
    if (rv != 0) {
        c->reads_waiting = NULL;
        c->barrier_inflight = 0;
        finish_reads(list, YH_EUNAVAIL);
    }
}

void cluster__fail_all(struct cluster *c)
{
    for (unsigned i = 0; i < c->n_queue; i++) {
        struct cluster_pending *p = c->queue[i];
        if (p->cb != NULL) {
            p->cb(p->arg, YH_EUNAVAIL, NULL, 0);
        }
        pending_unref(p);
    }
    c->n_queue = 0;
    free(c->queue);
    c->queue = NULL;
    c->queue_cap = 0;
    while (c->head != NULL) {
        complete(c, c->head, YH_EUNKNOWN, NULL, 0);
    }
    finish_reads(c->reads_head, YH_EUNAVAIL);
    c->reads_head = c->reads_tail = NULL;
    /* Reads behind an in-flight barrier are failed by its callback, which
     * raft fires with an error when it closes. */
    if (c->admin != NULL) {
        cluster__admin_fail(c, YH_EUNAVAIL, "node shutting down");
    }
    if (c->admin_deferred != NULL) {
        free(c->admin_deferred); /* answered above; no raft request open */
        c->admin_deferred = NULL;
    }
}
