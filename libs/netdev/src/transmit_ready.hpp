#pragma once
// Between the pool and the interface code: transmit resources are back.
namespace tessera::netdev::detail {

// Schedules every add_transmit_ready() work item. Any context; call it
// with no netdev spinlock held (it takes the queue lock and may wake the
// network thread).
void schedule_transmit_ready();

} // namespace tessera::netdev::detail
