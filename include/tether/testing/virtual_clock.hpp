// tether/testing/virtual_clock.hpp — deterministic time for tests (DESIGN.md §9).
#pragma once

#include <tether/config.hpp>
#include <tether/detail/scheduler.hpp>
#include <tether/errors.hpp>

#include <chrono>

namespace tether::testing {

/// Replaces tether's clock on one io_context with virtual time (Trio's autojump
/// MockClock): whenever no task is ready to run, time jumps to the earliest
/// pending deadline, so a test of a 30-second timeout takes microseconds and
/// "same instant" races are deterministic.
///
/// Affects every tether deadline on that io_context: sleep_for/sleep_until,
/// timeouts, cancel_scope deadlines, retry backoff, rate limiter and circuit
/// breaker timing. Plain Asio timers awaited through `use_task` keep real time.
///
/// With a zero autojump threshold (the default) the jump happens once the Asio
/// handlers already queued have run. When a test also waits on real I/O (a
/// loopback socket), set a threshold: time then jumps only after that much real
/// time passes with nothing to run.
///
/// Install it before starting tasks; it must outlive the tasks that use it.
class virtual_clock {
public:
    explicit virtual_clock(asio::io_context& io, std::chrono::nanoseconds autojump_threshold =
                                                     std::chrono::nanoseconds{0})
        : sched_(detail::scheduler_for(io)) {
        if (sched_.installed_virtual_time())
            throw usage_error("tether::testing::virtual_clock: this io_context already has one");
        // Start well away from the epoch so that `now() - duration` stays valid.
        time_.now_ = clock::time_point(std::chrono::hours(24 * 365));
        time_.autojump_threshold_ = autojump_threshold;
        sched_.install_virtual_time(&time_);
    }
    virtual_clock(const virtual_clock&) = delete;
    virtual_clock& operator=(const virtual_clock&) = delete;
    ~virtual_clock() {
        sched_.install_virtual_time(nullptr);
    }

    /// Current virtual time.
    clock::time_point now() const noexcept {
        return time_.now_;
    }

    /// Time elapsed since construction.
    clock::duration elapsed() const noexcept {
        return time_.now_ - origin_;
    }

    /// Moves time forward by `d`, firing every deadline that passes (their tasks
    /// run at the next drain). Call from the io_context's thread.
    void advance(clock::duration d) {
        sched_.advance_virtual_to(time_.now_ + d);
    }

    /// Calls `fn(arg)` after every resumption of a task from the scheduler's ready
    /// queue — between two steps of the task tree, when no task is running — or
    /// no more with `fn == nullptr`. For test harnesses that act at each step,
    /// such as cancelling a scope after the k-th resumption. `fn` may cancel
    /// scopes and set deadlines; it must not resume tasks itself.
    void on_each_resumption(void (*fn)(void*) noexcept, void* arg) noexcept {
        time_.after_resume_ = fn;
        time_.after_resume_arg_ = arg;
    }

    /// Turn automatic jumping on or off (off: only advance() moves time).
    void set_autojump(bool on) noexcept {
        time_.autojump_ = on;
        sched_.install_virtual_time(&time_);
    }

private:
    detail::scheduler& sched_;
    detail::virtual_time time_;
    clock::time_point origin_ = clock::time_point(std::chrono::hours(24 * 365));
};

} // namespace tether::testing
