// tether/semaphore.hpp — semaphore and semaphore_permit (DESIGN.md §7;
// scenarios S-* in SEMANTICS.md).
#pragma once

#include <tether/config.hpp>
#include <tether/detail/scope.hpp>
#include <tether/detail/waiter_list.hpp>
#include <tether/errors.hpp>
#include <tether/task.hpp>

#include <coroutine>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>

namespace tether {

class semaphore;

/// One permit of a semaphore, released when destroyed or on `release()`.
/// Move-only; a moved-from or released permit holds nothing. Because permits
/// are only obtained from `acquire()`/`try_acquire()`, a semaphore can never be
/// released more times than it was acquired.
///
/// Must not outlive its semaphore.
class [[nodiscard]] semaphore_permit {
public:
    /// A permit that holds nothing.
    semaphore_permit() noexcept = default;
    semaphore_permit(semaphore_permit&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    semaphore_permit& operator=(semaphore_permit&& o) noexcept {
        if (this != &o) {
            release();
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    semaphore_permit(const semaphore_permit&) = delete;
    semaphore_permit& operator=(const semaphore_permit&) = delete;
    ~semaphore_permit() {
        release();
    }

    /// Gives the permit back now (to the oldest waiting task, if any). Idempotent.
    inline void release() noexcept;

    /// True while it holds a permit.
    explicit operator bool() const noexcept {
        return s_ != nullptr;
    }
    bool held() const noexcept {
        return s_ != nullptr;
    }

private:
    friend class semaphore;
    explicit semaphore_permit(semaphore& s) noexcept : s_(&s) {}

    semaphore* s_ = nullptr;
};

/// A counting semaphore for tasks: limits how many hold a permit at once.
///
/// FIFO with direct hand-off: a released permit goes straight to the oldest
/// waiting task, so `try_acquire()` and later `acquire()` calls never barge ahead
/// of a waiting task, and no task waits while a permit is free.
///
/// @par Cancellation
/// `co_await acquire()` is a cancellation point, also when a permit is free. A
/// cancelled acquire did not happen: it neither holds nor loses a permit. A
/// task that was already handed a permit returns it normally (as a
/// `semaphore_permit`, released on unwinding) and sees the cancellation at its
/// next cancellation point — so the permit passes on.
/// @par Thread safety
/// None: use from the tasks of one task tree (one thread).
/// @par Example
/// @code
/// tether::semaphore in_flight(8);
/// auto permit = co_await in_flight.acquire(); // released at end of scope
/// co_await fetch(url);
/// @endcode
class semaphore {
public:
    class acquire_awaiter;

    /// A semaphore with `initial` free permits.
    /// @par Exceptions
    /// `usage_error` if `initial` is negative.
    explicit semaphore(std::ptrdiff_t initial) : available_(checked(initial)) {}

    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;
    /// Precondition: no task waits in it and no permit of it is alive.
    ~semaphore() = default;

    /// `co_await s.acquire()` → `semaphore_permit`: takes a permit, waiting
    /// (FIFO) while none is free.
    [[nodiscard]] inline acquire_awaiter acquire() noexcept;

    /// Takes a permit if one is free and no task is waiting; never suspends.
    [[nodiscard]] std::optional<semaphore_permit> try_acquire() noexcept {
        if (available_ == 0) return std::nullopt;
        --available_;
        return semaphore_permit(*this);
    }

    /// Free permits. Zero while any task waits (a freed permit goes to a waiter).
    std::size_t available() const noexcept {
        return available_;
    }

private:
    friend class semaphore_permit;

    static std::size_t checked(std::ptrdiff_t initial) {
        if (initial < 0)
            throw usage_error("tether::semaphore: the initial count must not be negative (got " +
                              std::to_string(initial) + ")");
        return static_cast<std::size_t>(initial);
    }

    void release_one() noexcept {
        if (waiters_.empty()) {
            ++available_;
            return;
        }
        // Hand the permit straight to the oldest waiter (no barging).
        detail::waiter_list::wake(waiters_.pop_front(), detail::wait_outcome::done);
    }

    // Invariant: !waiters_.empty() implies available_ == 0.
    detail::waiter_list waiters_;
    std::size_t available_;
};

/// The awaitable of `semaphore::acquire()`.
class [[nodiscard]] semaphore::acquire_awaiter {
public:
    explicit acquire_awaiter(semaphore& s) noexcept : s_(&s) {}

    void bind_context(detail::task_ctx& c) noexcept {
        ctx_ = &c;
    }

    bool await_ready() {
        detail::cancellation_point(*ctx_);
        if (s_->available_ == 0) return false;
        --s_->available_;
        return true;
    }
    void await_suspend(std::coroutine_handle<> h) noexcept {
        s_->waiters_.suspend(node_.emplace(), *ctx_, h);
    }
    semaphore_permit await_resume() const {
        if (node_.engaged()) node_->throw_if_cancelled();
        return semaphore_permit(*s_);
    }

private:
    semaphore* s_;
    detail::task_ctx* ctx_ = nullptr;
    detail::lazy_node<detail::waiter> node_;
};

inline semaphore::acquire_awaiter semaphore::acquire() noexcept {
    return acquire_awaiter(*this);
}

inline void semaphore_permit::release() noexcept {
    if (semaphore* s = std::exchange(s_, nullptr)) s->release_one();
}

} // namespace tether
