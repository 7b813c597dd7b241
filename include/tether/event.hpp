// tether/event.hpp — event: a one-shot, level-triggered flag that tasks wait
// for (DESIGN.md §7; asyncio.Event / trio.Event without clear()).
#pragma once

#include <tether/config.hpp>
#include <tether/detail/scope.hpp>
#include <tether/detail/waiter_list.hpp>
#include <tether/task.hpp>

#include <coroutine>

namespace tether {

/// A one-shot flag: `set()` wakes every task waiting in `wait()`, and every
/// later `wait()` returns at once. It cannot be cleared (as trio.Event): make a
/// new event for a new round, so that no waiter can miss a set/clear pair.
///
/// @par Cancellation
/// `co_await e.wait()` is a cancellation point, also when the event is set. A
/// cancelled wait leaves nothing behind; a task woken by `set()` returns
/// normally and sees a cancellation at its next cancellation point.
/// @par Thread safety
/// None: use from the tasks of one task tree (one thread). To set it from
/// another thread, post `set()` to the tree's executor.
/// @par Example
/// @code
/// tether::task<> runner(tether::event& ready) { co_await ready.wait(); /* … */ }
///
/// tether::event ready;
/// tg.spawn(runner(ready)); // a coroutine function, not a lambda invoked in place
/// ready.set();
/// @endcode
class event {
public:
    class wait_awaiter;

    event() noexcept = default;
    event(const event&) = delete;
    event& operator=(const event&) = delete;
    /// Precondition: no task waits in it.
    ~event() = default;

    /// Sets the flag and wakes every waiting task (oldest first). Idempotent.
    void set() noexcept {
        if (set_) return;
        set_ = true;
        waiters_.wake_all(detail::wait_outcome::done);
    }

    bool is_set() const noexcept {
        return set_;
    }

    /// `co_await e.wait()`: waits until the event is set.
    [[nodiscard]] inline wait_awaiter wait() noexcept;

private:
    // Invariant: set_ implies waiters_.empty().
    detail::waiter_list waiters_;
    bool set_ = false;
};

/// The awaitable of `event::wait()`.
class [[nodiscard]] event::wait_awaiter {
public:
    explicit wait_awaiter(event& e) noexcept : e_(&e) {}

    void bind_context(detail::task_ctx& c) noexcept {
        ctx_ = &c;
    }

    bool await_ready() const {
        detail::cancellation_point(*ctx_);
        return e_->set_;
    }
    void await_suspend(std::coroutine_handle<> h) noexcept {
        e_->waiters_.suspend(node_.emplace(), *ctx_, h);
    }
    void await_resume() const {
        if (node_.engaged()) node_->throw_if_cancelled();
    }

private:
    event* e_;
    detail::task_ctx* ctx_ = nullptr;
    detail::lazy_node<detail::waiter> node_;
};

inline event::wait_awaiter event::wait() noexcept {
    return wait_awaiter(*this);
}

} // namespace tether
