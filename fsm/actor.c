/* Public predicates over actors, for the layers above the fsm. */
#include "fsm.h"
#include "fsm_int.h"

int fsm_actor_is_host(const struct fsm_actor *actor)
{
    return !actor->admin && fsm__is_host_id(actor->user_id);
}
