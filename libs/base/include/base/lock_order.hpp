#pragma once
// The kernel's global lock order, outermost first. A hart may acquire a
// lock only while holding locks listed above it. Each lock's declaration
// names its place here in a comment; new subsystems insert their locks in
// this list when they add them, and lockdep (libs/lockdep) checks the
// order at run time (the ktest image runs every suite with it, fatal).
//
//   outermost
//     (VFS locks will be listed here)
//     netdev g_dispatch      libs/netdev/src/netdev.cpp: a sync::Mutex held by
//                            the network thread while protocol handlers, work
//                            items and driver polls run; protocol mutexes nest
//                            inside it (never take it holding one).
//     tcp g_lock             libs/tcp/src/tcp.cpp: a sync::Mutex over the whole
//                            TCP engine (connection table, listeners, buffers).
//                            Taken by API threads and, inside g_dispatch, by the
//                            network thread; ipv4/eth-arp locks nest inside
//                            (segments are sent under it); waiters are woken
//                            under it (g_lock inside), never wait under it.
//     network protocol mutexes (sync::Mutex, one per library, never nested
//                            with each other: each is released before calling
//                            into another library, a driver or a handler):
//                            dhcp g_lock, dns g_lock (libs/dhcp, libs/dns:
//                            lease/state, cache), udp g_lock (bound sockets and
//                            their queues), icmp g_lock (pings, token bucket),
//                            ipv4 g_lock (addresses, routes, handlers,
//                            reassembly), eth_arp g_lock (cache, pending
//                            queues). Packets are freed under them (pool lock).
//     sched g_lock           libs/sched/src/core.cpp: threads and every
//                            hart's run queue, and every wait queue
//                            (no sync primitive — Mutex, Semaphore,
//                            ConditionVariable, RwLock, Barrier — has a
//                            lock of its own), owned-queue lists and robust
//                            hand-over at a thread's exit. Held across context switches;
//                            thread stacks are freed under it (mmu, zone
//                            locks); it arms and cancels timer events.
//     futex Bucket::lock     libs/futex/src/futex.cpp: one per hash bucket, its
//                            key chain and their reference counts. Taken
//                            with no other lock held and never held across
//                            a scheduler call (the word checks that must be
//                            atomic with blocking run under g_lock and take
//                            no futex lock); may nest inside g_lock.
//     futex g_pool_lock      the per-key queue pool; inside a bucket lock.
//                            (A robust exit touches only lock words and
//                            wait queues, under g_lock alone.)
//     ipc Channel::m_lock    libs/ipc/src/channel.cpp: one per mailbox or
//                            message queue, its storage and counters; taken
//                            under g_lock (wait's still_wait, wake_one_or's
//                            otherwise), never held across a sched call.
//     sched_edf g_lock       libs/sched-edf/src/edf.cpp: admission ledgers
//                            (the EDF exit hook runs under the sched lock).
//     time Callout::m_lock   one per callout: arming state; arms its event
//                            under it.
//     time Queue::lock       libs/time/src/events.cpp: one per hart's event
//                            heap; never two at once; callbacks run with it
//                            released.
//     mmu g_lock             libs/mmu/src/mmu.cpp: the page tables; zone
//                            locks nest inside (tables come from mm-buddy).
//                            Held across the SBI remote fence (TLB
//                            shootdown), which waits only for the other
//                            harts' M-mode firmware, never for their locks.
//     virtio Queue::m_lock   libs/virtio/include/virtio/virtio.hpp: one per
//                            virtqueue, its rings and tokens; taken by drivers
//                            from threads and their IRQ handlers. No scheduler
//                            call under it; packets may be freed under it.
//     virtio Table::lock     libs/virtio/src/device.cpp: which slots are claimed.
//     netdev g_table_lock    libs/netdev/src/netdev.cpp: interface and EtherType
//                            tables. Never nested with g_queue_lock.
//     netdev g_queue_lock    the receive ring and work list; taken from IRQ
//                            handlers; the thread is woken after releasing it.
//     netdev PacketPool::m_lock  libs/netdev/src/packet.cpp: the packet free
//                            list. A leaf but for klog: packets may be freed
//                            under any lock above (driver queue locks too).
//     mm_pool::Pool::m_lock  one per pool: its free list and counters. A
//                            pool grows under it, so the registry and zone
//                            locks nest inside.
//     mm_pool g_registry_lock   libs/mm-pool/src/pool.cpp: the list of pools.
//                            No pool lock is ever taken under it.
//     mm_buddy Zone::lock    libs/mm-buddy/src/buddy.cpp: one per RAM region,
//                            its free lists and page states.
//     klog::g_lock           libs/klog/src/klog.cpp: the log ring and console
//                            output. A leaf: nothing is acquired under it,
//                            so any code, at any lock depth, may log.
//     lockdep g_graph_lock   libs/lockdep/src/lockdep.cpp: the class table and
//                            dependency graph. A RawSpinlock (not itself
//                            checked), taken by the hooks of every other
//                            lock; reports print after releasing it.
//   innermost
//
// Spinlocks (arch/spinlock.hpp) disable interrupts while held, so an
// interrupt handler can never spin on a lock its own hart holds.
// The smp library (IPIs, secondary start) uses atomics only, no locks.
