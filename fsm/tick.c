/* Periodic leader work (fsm_leader_tick). The identity model has no
 * periodic state changes: expired RequestTokens are purged as a side effect
 * of applying (bounded per entry), so there is nothing to propose yet.
 * Billing ticks, expiries and lease timeouts are added here as their tables
 * arrive; each must be keyed so that applying it twice is harmless. */
#include "fsm.h"

int fsm_leader_tick(struct fsm *f, uint64_t now_ns, fsm_propose_cb *cb,
                    void *arg)
{
    (void)f;
    (void)now_ns;
    (void)cb;
    (void)arg;
    return 0;
}
