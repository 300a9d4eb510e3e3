#pragma once
// A reader/writer lock with writer preference.
//
// Many readers or one writer. Writer preference: once a writer waits (for
// the readers to leave or for another writer), new readers wait too, so
// writers cannot starve; readers can, under a continuous stream of
// writers. When a writer leaves: if other writers wait, the next one (the
// most urgent) takes over and readers keep waiting; else every waiting
// reader is admitted at once.
//
// Priority inheritance: writers queue on a sync::Mutex, so the writer
// holding the lock inherits the priority of the writers waiting for it
// (SCHED_PRIORITY_INHERITANCE). Readers do not: a reader waiting for a
// writer does not boost it, and a writer waiting for readers to leave does
// not boost them (readers are not tracked one by one; bound reader
// sections instead).
//
// Costs: uncontended lock_shared/unlock_shared are one atomic operation
// each on the state word (a CAS; a fetch_sub); uncontended lock/unlock are
// two (the state word and the writers' mutex word).
//
// Threads only (never in interrupt context). SMP-safe. Not recursive:
// re-entering for reading while a writer waits deadlocks.
#include <atomic>
#include <base/result.hpp>
#include <base/verify.hpp>
#include <cstdint>
#include <sched/wait.hpp>
#include <sync/mutex.hpp>
#include <time/time.hpp>

namespace tessera::sync {

class RwLock {
public:
    constexpr RwLock() = default;
    RwLock(const RwLock&) = delete;
    RwLock& operator=(const RwLock&) = delete;

    void lock_shared() { (void)lock_shared_until(time::kNever); }
    // TimedOut if `deadline` (absolute) passes first.
    [[nodiscard]] base::Result<void> lock_shared_until(time::Ticks deadline);
    [[nodiscard]] bool try_lock_shared();
    void unlock_shared();

    // Locking for writing while holding it for writing is a bug: it panics.
    void lock() { VERIFY(lock_until(time::kNever).ok()); }
    [[nodiscard]] base::Result<void> lock_until(time::Ticks deadline);
    [[nodiscard]] bool try_lock();
    void unlock();

    // For tests and statistics.
    unsigned readers() const { return unsigned(m_state.load(std::memory_order_relaxed) & kReaderMask); }
    unsigned writers() const { return unsigned(m_state.load(std::memory_order_relaxed) >> kWriterShift); }

private:
    // m_state: active readers (low 32 bits), kReadersWait, and the number
    // of writers that hold the lock or wait for it (from kWriterShift up).
    // A writer counts itself in before it queues on m_writer and out after
    // it unlocked m_writer, so "writers() > 0" covers every writer that
    // holds, waits, or is being handed the lock: readers enter only when
    // it is 0.
    static constexpr std::uint64_t kReaderMask = 0xffff'ffffull;
    static constexpr std::uint64_t kReadersWait = 1ull << 32; // readers blocked (may be stale)
    static constexpr unsigned kWriterShift = 33;
    static constexpr std::uint64_t kWriter = 1ull << kWriterShift;

    struct Entry;
    static bool reader_must_wait(void* entry);
    static bool readers_present(void* self);
    void writer_leaves();

    std::atomic<std::uint64_t> m_state{0};
    Mutex m_writer;            // writers take turns here, with PI among them
    sched::WaitQueue m_readers; // readers waiting for the writers to go
    sched::WaitQueue m_drain;   // the writer holding m_writer, waiting for readers to leave
};

class [[nodiscard]] ReadGuard {
public:
    explicit ReadGuard(RwLock& l) : m_lock(l) { m_lock.lock_shared(); }
    ~ReadGuard() { m_lock.unlock_shared(); }
    ReadGuard(const ReadGuard&) = delete;
    ReadGuard& operator=(const ReadGuard&) = delete;

private:
    RwLock& m_lock;
};

class [[nodiscard]] WriteGuard {
public:
    explicit WriteGuard(RwLock& l) : m_lock(l) { m_lock.lock(); }
    ~WriteGuard() { m_lock.unlock(); }
    WriteGuard(const WriteGuard&) = delete;
    WriteGuard& operator=(const WriteGuard&) = delete;

private:
    RwLock& m_lock;
};

} // namespace tessera::sync
