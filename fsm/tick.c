/* Periodic leader work (fsm_leader_tick): reads the state and hands the
 * cluster the internal commands that are due — billing charges per
 * (resource, epoch, period), stops for arrears or expiry, moves to the
 * recycle bin, purges. Each is keyed so that applying it twice, or after a
 * leader change, is a harmless rejection (see tbl_bill.c); host lease
 * expiries (_HostExpire, tbl_infra.c) likewise, and so are timer firings
 * and scaling steps (_TimerFire keyed by (timer, due time), _ScalePolicy
 * and _ScaleReconcile by the group's step counter; auto.c). Expired
 * RequestTokens are purged as a side effect of applying, not here. */
#include "fsm/fsm_int.h"

int fsm_leader_tick(struct fsm *f,
                    uint64_t now_ns,
                    fsm_propose_cb *cb,
                    void *arg)
{
    MDB_txn *txn;
    int rc;

    if (f->errored) {
        return 0; /* nothing trustworthy to read until restarted */
    }
    rc = fsm__rtxn_begin(f, &txn);
    if (rc != 0) {
        return rc;
    }
    rc = fsm__host_tick(f, txn, now_ns, cb, arg);
    /* The billing scan (FSM_BILL_SCAN_MAX resources a step) every 500 ms,
     * not every tick: periods are an hour in production, and what is due
     * is keyed, so a later charge is never a lost or double one. */
    if (rc == 0 && (now_ns < f->bill_tick_ns ||
                    now_ns - f->bill_tick_ns >= FSM_BILL_TICK_NS)) {
        f->bill_tick_ns = now_ns;
        rc = fsm__bill_tick(f, txn, now_ns, cb, arg);
    }
    if (rc == 0) {
        rc = fsm__auto_tick(f, txn, now_ns, cb, arg);
    }
    fsm__rtxn_end(f, txn);
    return rc;
}
