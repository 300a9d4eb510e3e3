// Reader/writer lock. Protocol (m_state, see rwlock.hpp):
// - a reader enters by raising the reader count with a CAS, only while no
//   writer is counted; otherwise it sets kReadersWait and blocks on
//   m_readers, the check and the block being one step under the
//   scheduler's lock (sched::wait), and retries when woken;
// - a writer counts itself in (which shuts out new readers: writer
//   preference), takes m_writer (writers queue there by priority, with
//   PI), then waits on m_drain until the active readers are gone;
// - the last reader out wakes m_drain when a writer is counted;
// - a writer leaves by unlocking m_writer (handing it to the next writer,
//   if any) and then counting itself out: if that leaves no writer and
//   readers wait, it clears kReadersWait and wakes them all.
// Lost wake-ups are excluded the usual way: each waiter's check runs
// under the scheduler's lock and reads the word its waker changed before
// waking under that lock.
#include <sync/rwlock.hpp>

namespace tessera::sync {

struct RwLock::Entry {
    RwLock* lock;
    bool entered;
};

// A reader's check under the scheduler's lock: enter if no writer is
// counted, else flag the readers waiting (in the same step as blocking).
bool RwLock::reader_must_wait(void* p) {
    auto& e = *static_cast<Entry*>(p);
    auto& state = e.lock->m_state;
    std::uint64_t s = state.load(std::memory_order_relaxed);
    for (;;) {
        if ((s >> kWriterShift) == 0) {
            if (state.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed)) {
                e.entered = true;
                return false;
            }
        } else if (s & kReadersWait) {
            return true;
        } else if (state.compare_exchange_weak(s, s | kReadersWait, std::memory_order_relaxed,
                                               std::memory_order_relaxed)) {
            return true;
        }
    }
}

bool RwLock::try_lock_shared() {
    std::uint64_t s = m_state.load(std::memory_order_relaxed);
    while ((s >> kWriterShift) == 0)
        if (m_state.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed))
            return true;
    return false;
}

base::Result<void> RwLock::lock_shared_until(time::Ticks deadline) {
    if (try_lock_shared()) return {};
    // A wake-up only says the writers have gone; another may have come
    // since, so check again.
    for (;;) {
        Entry e{this, false};
        auto r = sched::wait(m_readers, deadline, reader_must_wait, &e);
        if (!r.ok() || e.entered) return r;
    }
}

void RwLock::unlock_shared() {
    std::uint64_t before = m_state.fetch_sub(1, std::memory_order_release);
    // The last reader out lets a counted writer in (it may still be
    // queued on m_writer: then it finds no readers when it gets there).
    if ((before & kReaderMask) == 1 && (before >> kWriterShift) != 0) (void)sched::wake_one(m_drain);
}

// The drain check under the scheduler's lock.
bool RwLock::readers_present(void* self) {
    return (static_cast<RwLock*>(self)->m_state.load(std::memory_order_acquire) & kReaderMask) != 0;
}

base::Result<void> RwLock::lock_until(time::Ticks deadline) {
    std::uint64_t before = m_state.fetch_add(kWriter, std::memory_order_acquire);
    if (!m_writer.try_lock()) {
        if (auto r = m_writer.lock_until(deadline); !r.ok()) {
            writer_leaves();
            return r;
        }
        before = m_state.load(std::memory_order_acquire);
    }
    if ((before & kReaderMask) == 0) return {}; // uncontended: no reader was in
    if (auto r = sched::wait(m_drain, deadline, readers_present, this); !r.ok()) {
        // The readers may have left just now, but the deadline is what
        // the caller asked for: give up (and let readers in if we were
        // the last writer).
        m_writer.unlock();
        writer_leaves();
        return r;
    }
    return {};
}

bool RwLock::try_lock() {
    std::uint64_t s = m_state.load(std::memory_order_relaxed);
    for (;;) {
        if ((s & kReaderMask) != 0 || (s >> kWriterShift) != 0) return false;
        if (m_state.compare_exchange_weak(s, s + kWriter, std::memory_order_acquire, std::memory_order_relaxed))
            break;
    }
    if (m_writer.try_lock()) return true;
    // A writer came between our CAS and the mutex and took it first.
    writer_leaves();
    return false;
}

void RwLock::unlock() {
    m_writer.unlock(); // to the next writer, if one waits: readers stay out
    writer_leaves();
}

// Counts a writer out; with no writer left, admits every waiting reader.
void RwLock::writer_leaves() {
    std::uint64_t before = m_state.fetch_sub(kWriter, std::memory_order_release);
    if ((before >> kWriterShift) != 1 || !(before & kReadersWait)) return;
    // Clear the flag before waking: a reader that blocks after this sets
    // it again itself, and one that blocked before is in the queue now.
    m_state.fetch_and(~kReadersWait, std::memory_order_relaxed);
    (void)sched::wake_all(m_readers);
}

} // namespace tessera::sync
