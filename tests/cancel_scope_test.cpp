// Tests for <tether/cancel_scope.hpp>: scenarios C-01 … C-04 of SEMANTICS.md,
// deadlines, nesting and level-triggered delivery.
#include <tether/cancel_scope.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using tether::cancel_scope;
using tether::cancelled_error;
using tether::task;
using tether::with_cancel_scope;
using tether_test::run_test;

namespace {
tether::detail::scheduler* current_scheduler = nullptr;

task<void> remember_scheduler() {
    auto ex = co_await tether::this_task::executor();
    current_scheduler = &tether::detail::scheduler_for(asio::query(ex, asio::execution::context));
}
} // namespace

TEST_CASE("C-01 cancellation is level-triggered until the scope exits", "[cancel_scope][C-01]") {
    int thrown = 0;
    cancel_scope* seen = nullptr;
    bool after_ok = false;
    run_test([&]() -> task<void> {
        auto r = co_await with_cancel_scope([&](cancel_scope& s) -> task<void> {
            seen = &s;
            s.cancel();
            try {
                co_await tether::yield_now();
            } catch (const cancelled_error&) {
                ++thrown;
            }
            // Every later cancellation point throws again, without blocking.
            try {
                co_await tether::yield_now();
            } catch (const cancelled_error&) {
                ++thrown;
            }
            s.cancel(); // idempotent
            co_await tether::sleep_for(std::chrono::hours(24 * 365));
            FAIL("unreachable");
        });
        CHECK_FALSE(r);
        co_await tether::yield_now(); // code after the scope is not cancelled
        co_await tether::sleep_for(1s);
        after_ok = true;
    });
    CHECK(thrown == 2);
    REQUIRE(seen);
    CHECK(after_ok);
}

TEST_CASE("C-01 cancelled_caught and cancel_called report what happened", "[cancel_scope][C-01]") {
    run_test([&]() -> task<void> {
        cancel_scope s;
        auto r = co_await with_cancel_scope(s, [&](cancel_scope& self) -> task<int> {
            CHECK(&self == &s);
            s.cancel();
            co_await tether::sleep_for(1s);
            co_return 1;
        });
        CHECK_FALSE(r.has_value());
        CHECK(s.cancel_called());
        CHECK(s.cancelled_caught());
    });
}

TEST_CASE("C-04 a scope cancelled before entry cancels its first cancellation point",
          "[cancel_scope][C-04]") {
    run_test([&]() -> task<void> {
        cancel_scope s;
        s.cancel();
        auto r = co_await with_cancel_scope(s, [&](cancel_scope&) -> task<void> {
            co_await tether::yield_now();
            FAIL("must not pass the first cancellation point");
        });
        CHECK_FALSE(r);
        CHECK(s.cancelled_caught());
        co_await tether::yield_now(); // absorbed: nothing pending outside
    });
}

TEST_CASE("C-04 a cancel scope cannot be entered twice", "[cancel_scope][C-04]") {
    run_test([&]() -> task<void> {
        cancel_scope s;
        co_await with_cancel_scope(s, [](cancel_scope&) -> task<void> { co_return; });
        bool threw = false;
        try {
            co_await with_cancel_scope(s, [](cancel_scope&) -> task<void> { co_return; });
        } catch (const tether::usage_error&) {
            threw = true;
        }
        CHECK(threw);
        // Nor re-entered while active.
        cancel_scope t;
        bool nested_threw = false;
        co_await with_cancel_scope(t, [&](cancel_scope&) -> task<void> {
            try {
                co_await with_cancel_scope(t, [](cancel_scope&) -> task<void> { co_return; });
            } catch (const tether::usage_error&) {
                nested_threw = true;
            }
        });
        CHECK(nested_threw);
    });
}

TEST_CASE(
    "a cancelled scope that was not reached by its cancellation reports cancelled_caught false",
    "[cancel_scope][C-02]") {
    run_test([&]() -> task<void> {
        cancel_scope s;
        auto r = co_await with_cancel_scope(s, [&](cancel_scope&) -> task<int> {
            s.cancel();
            co_return 2;
        });
        CHECK(r == std::optional<int>(2));
        CHECK(s.cancel_called());
        CHECK_FALSE(s.cancelled_caught());
    });
}

TEST_CASE("C-02 a body with no cancellation point completes normally", "[cancel_scope][C-02]") {
    run_test([&]() -> task<void> {
        bool cancel_called = false;
        auto r = co_await with_cancel_scope([&](cancel_scope& s) -> task<int> {
            s.cancel();
            cancel_called = s.cancel_called();
            co_return 7; // no cancellation point: not interrupted
        });
        CHECK(cancel_called);
        REQUIRE(r.has_value());
        CHECK(*r == 7);
        co_await tether::yield_now(); // the pending cancel was not delivered outside
    });
}

TEST_CASE("C-03 a cancelled sleep leaves no deadline behind", "[cancel_scope][C-03]") {
    run_test([&]() -> task<void> {
        co_await remember_scheduler();
        auto r = co_await with_cancel_scope([&](cancel_scope& s) -> task<void> {
            s.reschedule(1s);
            co_await tether::sleep_for(1h);
        });
        CHECK_FALSE(r);
        CHECK(current_scheduler->pending_timers() == 0);
    });
}

TEST_CASE("C-04 a scope cancelled before its first cancellation point absorbs it",
          "[cancel_scope][C-04]") {
    run_test([&]() -> task<void> {
        bool reached = false;
        auto r = co_await with_cancel_scope([&](cancel_scope& s) -> task<void> {
            s.cancel();
            reached = true; // code before the first point may run (D-10)
            co_await tether::yield_now();
            FAIL("must not pass the first cancellation point");
        });
        CHECK(reached);
        CHECK_FALSE(r);
    });
}

TEST_CASE("a deadline cancels the scope at exactly that virtual time", "[cancel_scope][deadline]") {
    auto elapsed = run_test([&]() -> task<tether::clock::duration> {
        const auto t0 = co_await tether::this_task::now();
        auto r = co_await with_cancel_scope([&](cancel_scope& s) -> task<void> {
            s.reschedule(5s);
            CHECK(s.deadline() == t0 + 5s);
            co_await tether::sleep_for(10s);
        });
        CHECK_FALSE(r);
        co_return (co_await tether::this_task::now()) - t0;
    });
    CHECK(elapsed == 5s);
}

TEST_CASE("a deadline can be moved later and earlier while the scope is active",
          "[cancel_scope][deadline]") {
    SECTION("later") {
        auto elapsed = run_test([&]() -> task<tether::clock::duration> {
            const auto t0 = co_await tether::this_task::now();
            co_await with_cancel_scope([&](cancel_scope& s) -> task<void> {
                s.reschedule(5s);
                co_await tether::sleep_for(3s);
                s.set_deadline(t0 + 8s);
                co_await tether::sleep_for(1h);
            });
            co_return (co_await tether::this_task::now()) - t0;
        });
        CHECK(elapsed == 8s);
    }
    SECTION("earlier") {
        auto elapsed = run_test([&]() -> task<tether::clock::duration> {
            const auto t0 = co_await tether::this_task::now();
            co_await with_cancel_scope([&](cancel_scope& s) -> task<void> {
                s.reschedule(50s);
                co_await tether::sleep_for(3s);
                s.reschedule(1s);
                co_await tether::sleep_for(1h);
            });
            co_return (co_await tether::this_task::now()) - t0;
        });
        CHECK(elapsed == 4s);
    }
    SECTION("into the past: cancelled at once") {
        auto elapsed = run_test([&]() -> task<tether::clock::duration> {
            const auto t0 = co_await tether::this_task::now();
            bool expired = false;
            co_await with_cancel_scope([&](cancel_scope& s) -> task<void> {
                s.set_deadline(t0 - 1s);
                expired = s.deadline_expired();
                co_await tether::sleep_for(1h);
            });
            CHECK(expired);
            co_return (co_await tether::this_task::now()) - t0;
        });
        CHECK(elapsed == 0s);
    }
    SECTION("removed") {
        auto elapsed = run_test([&]() -> task<tether::clock::duration> {
            const auto t0 = co_await tether::this_task::now();
            auto r = co_await with_cancel_scope([&](cancel_scope& s) -> task<void> {
                s.reschedule(1s);
                s.set_deadline(tether::clock::time_point::max());
                co_await tether::sleep_for(10s);
            });
            CHECK(r);
            co_return (co_await tether::this_task::now()) - t0;
        });
        CHECK(elapsed == 10s);
    }
}

TEST_CASE("an enclosing cancellation passes through an inner scope", "[cancel_scope][nesting]") {
    run_test([&]() -> task<void> {
        bool inner_absorbed = true;
        auto outer = co_await with_cancel_scope([&](cancel_scope& out) -> task<void> {
            auto inner = co_await with_cancel_scope([&](cancel_scope&) -> task<void> {
                out.cancel();
                co_await tether::sleep_for(1h);
            });
            inner_absorbed = !inner; // not reached: the inner scope rethrows
            FAIL("the outer cancellation must propagate through the inner scope");
        });
        CHECK_FALSE(outer);
        CHECK(inner_absorbed);
    });
}

TEST_CASE("when both scopes are cancelled the outer one wins", "[cancel_scope][nesting]") {
    run_test([&]() -> task<void> {
        bool inner_returned = false;
        auto outer = co_await with_cancel_scope([&](cancel_scope& out) -> task<void> {
            co_await with_cancel_scope([&](cancel_scope& in) -> task<void> {
                in.cancel();
                out.cancel();
                co_await tether::yield_now();
            });
            inner_returned = true;
        });
        CHECK_FALSE(outer);
        CHECK_FALSE(inner_returned);
    });
}

TEST_CASE("equal deadlines: the outer scope wins the tie", "[cancel_scope][nesting][deadline]") {
    run_test([&]() -> task<void> {
        bool inner_returned = false;
        auto outer = co_await with_cancel_scope([&](cancel_scope& out) -> task<void> {
            out.reschedule(2s);
            co_await with_cancel_scope([&](cancel_scope& in) -> task<void> {
                in.reschedule(2s);
                co_await tether::sleep_for(1h);
            });
            inner_returned = true;
        });
        CHECK_FALSE(outer);
        CHECK_FALSE(inner_returned);
    });
}

TEST_CASE("an inner scope's own cancellation does not leak outside it", "[cancel_scope][nesting]") {
    run_test([&]() -> task<void> {
        std::vector<std::string> log;
        auto outer = co_await with_cancel_scope([&](cancel_scope&) -> task<void> {
            auto inner = co_await with_cancel_scope([&](cancel_scope& in) -> task<void> {
                in.reschedule(1s);
                co_await tether::sleep_for(1h);
            });
            log.push_back(inner ? "inner completed" : "inner cancelled");
            co_await tether::sleep_for(1s); // the outer scope is not cancelled
            log.push_back("outer continued");
        });
        CHECK(outer);
        CHECK(log == std::vector<std::string>{"inner cancelled", "outer continued"});
    });
}

TEST_CASE("an exception other than cancellation passes through the scope", "[cancel_scope]") {
    run_test([&]() -> task<void> {
        bool caught = false;
        try {
            co_await with_cancel_scope([&](cancel_scope& s) -> task<void> {
                s.cancel();
                throw std::runtime_error("not a cancellation");
                co_return;
            });
        } catch (const std::runtime_error&) {
            caught = true;
        }
        CHECK(caught);
    });
}

TEST_CASE("a scope awaitable converts to a task", "[cancel_scope]") {
    auto v = run_test([&]() -> task<int> {
        task<std::optional<int>> t =
            with_cancel_scope([](cancel_scope&) -> task<int> { co_return 3; });
        auto r = co_await std::move(t);
        co_return r.value_or(-1);
    });
    CHECK(v == 3);
}

TEST_CASE("reschedule before entry counts from the moment of entry, on tether's clock",
          "[cancel_scope][deadline][regression]") {
    run_test([]() -> task<void> {
        tether::cancel_scope long_deadline;
        long_deadline.reschedule(10s); // no scheduler yet: must not read the real clock
        CHECK(long_deadline.deadline() == tether::clock::time_point::max());
        co_await tether::sleep_for(1h); // entry is an hour later
        const auto entry = co_await tether::this_task::now();
        auto one_second = [](tether::cancel_scope&) -> task<void> {
            co_await tether::sleep_for(1s);
        };
        const bool completed = co_await tether::with_cancel_scope(long_deadline, one_second);
        CHECK(completed);
        CHECK(long_deadline.deadline() == entry + 10s);

        tether::cancel_scope short_deadline;
        short_deadline.reschedule(10ms);
        const auto entry2 = co_await tether::this_task::now();
        const bool completed2 = co_await tether::with_cancel_scope(short_deadline, one_second);
        CHECK_FALSE(completed2);
        const auto elapsed = (co_await tether::this_task::now()) - entry2;
        CHECK(elapsed == 10ms);
    });
}
