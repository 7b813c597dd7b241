// tests/support/run.hpp — running coroutine tests deterministically.
//
//  - run_test(fn): runs the task `fn()` on a fresh single-threaded io_context
//    under a virtual clock (autojump), rethrows an escaped exception, and fails
//    the test if work is left behind (ready tasks or armed deadlines).
//  - sequencer: Trio's Sequencer — `co_await seq(n)` waits until steps 0..n-1
//    are done; the step is done when the returned guard is destroyed.
//  - counted: a live-object / copy counter to prove nothing leaks or is copied.
#pragma once

#include <tether/task.hpp>
#include <tether/testing/virtual_clock.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <functional>
#include <type_traits>
#include <utility>

namespace tether_test {

using namespace std::chrono_literals;

/// Runs `fn()` (returning tether::task<T>) on a fresh io_context with a virtual
/// clock; returns the task's value.
template <class F>
auto run_test(F&& fn) {
    asio::io_context io;
    tether::testing::virtual_clock clock(io);
    auto t = std::invoke(std::forward<F>(fn));
    using value_type = typename decltype(t)::value_type;
    auto check_idle = [&] {
        io.restart();
        io.poll();
        CHECK(tether::detail::scheduler_for(io).idle());
    };
    if constexpr (std::is_void_v<value_type>) {
        tether::run(io, std::move(t));
        check_idle();
    } else {
        auto v = tether::run(io, std::move(t));
        check_idle();
        return v;
    }
}

/// Elapsed virtual time helper: `co_await elapsed_since(t0)`.
inline tether::task<tether::clock::duration> now_minus(tether::clock::time_point t0) {
    co_return (co_await tether::this_task::now()) - t0;
}

/// Orders steps across tasks deterministically (Trio's Sequencer).
class sequencer {
public:
    class step {
    public:
        explicit step(sequencer& s) noexcept : s_(&s) {}
        step(step&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
        step& operator=(step&&) = delete;
        ~step() {
            if (s_) ++s_->next_;
        }

    private:
        sequencer* s_;
    };

    /// Waits (yielding) until every step below `n` is done.
    tether::task<step> operator()(int n) {
        while (next_ < n) co_await tether::yield_now();
        REQUIRE(next_ == n);
        co_return step(*this);
    }

private:
    int next_ = 0;
};

/// Counts live instances and copies.
struct counted {
    static inline int live = 0;
    static inline int copies = 0;
    int value = 0;

    counted() noexcept {
        ++live;
    }
    explicit counted(int v) noexcept : value(v) {
        ++live;
    }
    counted(const counted& o) noexcept : value(o.value) {
        ++live;
        ++copies;
    }
    counted(counted&& o) noexcept : value(o.value) {
        ++live;
    }
    counted& operator=(const counted& o) noexcept {
        value = o.value;
        ++copies;
        return *this;
    }
    counted& operator=(counted&&) noexcept = default;
    ~counted() {
        --live;
    }

    static void reset() noexcept {
        live = copies = 0;
    }
};

} // namespace tether_test
