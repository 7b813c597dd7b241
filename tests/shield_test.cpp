// Tests for <tether/shield.hpp>: scenarios SH-01 … SH-07 of SEMANTICS.md, on
// virtual time. tether's shield is Trio's (mode R): the shielded work runs in
// place, its result is returned to the caller, and a pending cancellation
// surfaces at the caller's next cancellation point. Mode H (asyncio's shield of
// a separate task) is waiting on a child<T>: a cancelled wait leaves the child
// running under its group.
//
// SH-04(a) does not apply: a shield is a scope entered by `shield(work)`, not a
// flag that can be switched off while it is active. SH-04(b) is tested as a
// shield entered by clean-up while an outer cancellation is propagating.
#include <tether/shield.hpp>

#include <tether/cancel_scope.hpp>
#include <tether/event.hpp>
#include <tether/task_group.hpp>
#include <tether/timeout.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
using tether::cancel_scope;
using tether::cancelled_error;
using tether::child;
using tether::event;
using tether::shield;
using tether::task;
using tether::task_group;
using tether::task_group_error;
using tether::timeout_error;
using tether::with_task_group;
using tether_test::now_minus;
using tether_test::run_test;

namespace {

struct error_e : std::runtime_error {
    error_e() : std::runtime_error("error_e") {}
};

task<int> sleep_then(tether::clock::duration d, int v) {
    co_await tether::sleep_for(d);
    co_return v;
}

task<int> no_cancellation_point(int v) {
    co_return v;
}

} // namespace

TEST_CASE("SH-01 the shielded work finishes; the caller still sees the cancellation",
          "[shield][SH-01]") {
    run_test([]() -> task<void> {
        event go;
        int proof = 0;
        int returned = 0;
        bool inner_cancelled = false;
        bool outer_cancelled = false;
        auto inner = [&]() -> task<int> {
            try {
                co_await go.wait();
            } catch (const cancelled_error&) {
                inner_cancelled = true;
                throw;
            }
            proof += 1;
            co_return 7;
        };
        cancel_scope outer_scope;
        auto outer = [&](cancel_scope&) -> task<void> {
            try {
                returned = co_await shield(inner());
                co_await tether::yield_now(); // the pending cancellation surfaces here
                proof += 100;
            } catch (const cancelled_error&) {
                outer_cancelled = true;
                throw;
            }
        };
        auto body = [&](task_group& tg) -> task<void> {
            auto run_outer = [&]() -> task<void> {
                co_await tether::with_cancel_scope(outer_scope, outer);
            };
            tg.spawn(run_outer());
            co_await tether::sleep_for(10ms);
            outer_scope.cancel(); // while inner waits on the event
            co_await tether::sleep_for(10ms);
            CHECK(proof == 0);
            go.set();
        };
        co_await with_task_group(body);
        CHECK(proof == 1); // inner ran to completion; +100 never ran
        CHECK_FALSE(inner_cancelled);
        CHECK(returned == 7); // the completed result was handed over, not discarded
        CHECK(outer_cancelled);
        CHECK(outer_scope.cancelled_caught());
    });
}

TEST_CASE("SH-01 mode H: a cancelled wait on a child does not cancel the child",
          "[shield][SH-01]") {
    run_test([]() -> task<void> {
        child<int> h;
        auto body = [&](task_group& tg) -> task<void> {
            h = tg.spawn(sleep_then(100ms, 42));
            auto waited = co_await tether::move_on_after(10ms, h);
            CHECK_FALSE(waited); // the waiter was cancelled at once
            CHECK_FALSE(h.done());
        };
        co_await with_task_group(body);
        CHECK(h.result() == 42); // the owning group joined it
    });
}

TEST_CASE("SH-02 a shield does not block cancellation from inside", "[shield][SH-02]") {
    SECTION("an inner scope inside the shield catches its own cancellation") {
        run_test([]() -> task<void> {
            auto region = [](cancel_scope& s) -> task<void> {
                s.cancel();
                co_await tether::sleep_for(1h);
            };
            auto work = [&]() -> task<bool> {
                co_return co_await tether::with_cancel_scope(region);
            };
            const bool completed = co_await shield(work());
            CHECK_FALSE(completed);
        });
    }
    SECTION("the shielded work's own deadline still cancels it") {
        run_test([]() -> task<void> {
            const auto t0 = co_await tether::this_task::now();
            bool inside_cancelled = false;
            auto work = [&]() -> task<void> {
                try {
                    co_await tether::sleep_for(1h);
                } catch (const cancelled_error&) {
                    inside_cancelled = true;
                    throw;
                }
            };
            CHECK_THROWS_AS(co_await shield(tether::with_timeout(5ms, work())), timeout_error);
            CHECK(inside_cancelled);
            const auto elapsed = co_await now_minus(t0);
            CHECK(elapsed == 5ms);
        });
    }
    SECTION("a shielded wait on a child that is cancelled directly throws cancelled_error") {
        run_test([]() -> task<void> {
            auto body = [&](task_group& tg) -> task<void> {
                child<int> h = tg.spawn(sleep_then(1h, 1));
                auto canceller = [&]() -> task<void> {
                    co_await tether::sleep_for(1ms);
                    h.cancel();
                };
                tg.spawn(canceller());
                CHECK_THROWS_AS(co_await shield(h), cancelled_error);
            };
            co_await with_task_group(body); // the child's cancellation is no group error
        });
    }
}

TEST_CASE("SH-03 a shielded timeout inside a cancelled scope still enforces its deadline",
          "[shield][SH-03]") {
    run_test([]() -> task<void> {
        const auto t0 = co_await tether::this_task::now();
        bool moved_on = false;
        bool timed_out = false;
        bool next_point_cancelled = false;
        auto region = [&](cancel_scope& s) -> task<void> {
            s.cancel(); // the outer scope is already cancelled
            const bool completed =
                co_await shield(tether::move_on_after(10ms, tether::sleep_for(1h)));
            moved_on = !completed;
            const auto after_move_on = co_await now_minus(t0);
            CHECK(after_move_on == 10ms); // not at once, not never
            try {
                co_await shield(tether::with_timeout(10ms, tether::sleep_for(1h)));
            } catch (const timeout_error&) {
                timed_out = true;
            }
            const auto after_timeout = co_await now_minus(t0);
            CHECK(after_timeout == 20ms);
            try {
                co_await tether::yield_now(); // unshielded: the outer cancellation
            } catch (const cancelled_error&) {
                next_point_cancelled = true;
                throw;
            }
        };
        const bool completed = co_await tether::with_cancel_scope(region);
        CHECK_FALSE(completed);
        CHECK(moved_on);
        CHECK(timed_out);
        CHECK(next_point_cancelled);
    });
}

TEST_CASE("SH-04 a shield entered by clean-up does not capture the propagating cancellation",
          "[shield][SH-04]") {
    run_test([]() -> task<void> {
        cancel_scope outer;
        bool cleanup_finished = false;
        auto region = [&](cancel_scope& s) -> task<void> {
            s.cancel();
            bool cancelled = false;
            try {
                co_await tether::sleep_for(1h);
            } catch (const cancelled_error&) {
                cancelled = true;
            }
            REQUIRE(cancelled);
            // Asynchronous clean-up ("finally") while the cancellation propagates.
            co_await shield(tether::sleep_for(5ms));
            cleanup_finished = true;
            co_await tether::yield_now(); // still cancelled: rethrows
        };
        const bool completed = co_await tether::with_cancel_scope(outer, region);
        CHECK_FALSE(completed);
        CHECK(cleanup_finished);
        CHECK(outer.cancelled_caught()); // the outer scope caught it, not the shield
    });
}

TEST_CASE("SH-05 the outcome of shielded work that ends after the caller was cancelled",
          "[shield][SH-05]") {
    SECTION("it fails: the error is thrown, once, and beats the pending cancellation") {
        run_test([]() -> task<void> {
            std::exception_ptr thrown;
            auto failing = [&]() -> task<void> {
                co_await tether::sleep_for(10ms);
                thrown = std::make_exception_ptr(error_e());
                std::rethrow_exception(thrown);
            };
            int caught = 0;
            auto region = [&](cancel_scope& s) -> task<void> {
                s.cancel();
                try {
                    co_await shield(failing());
                } catch (const error_e&) {
                    ++caught;
                    CHECK(std::current_exception() == thrown); // identity
                }
            };
            co_await tether::with_cancel_scope(region);
            CHECK(caught == 1);
        });
    }
    SECTION("it succeeds: its value is returned, nothing is reported") {
        run_test([]() -> task<void> {
            int got = 0;
            auto region = [&](cancel_scope& s) -> task<void> {
                s.cancel();
                got = co_await shield(sleep_then(10ms, 5));
                co_await tether::yield_now();
            };
            const bool completed = co_await tether::with_cancel_scope(region);
            CHECK_FALSE(completed);
            CHECK(got == 5);
        });
    }
    SECTION("mode H: a child that fails after its waiter was cancelled is reported once") {
        run_test([]() -> task<void> {
            std::exception_ptr thrown;
            auto failing = [&]() -> task<int> {
                co_await tether::sleep_for(20ms);
                thrown = std::make_exception_ptr(error_e());
                std::rethrow_exception(thrown);
            };
            int waits_cancelled = 0;
            std::size_t members = 0;
            bool same_exception = false;
            auto body = [&](task_group& tg) -> task<void> {
                child<int> h = tg.spawn(failing());
                for (int i = 0; i < 2; ++i) { // two callers, both cancelled
                    auto waited = co_await tether::move_on_after(5ms, h);
                    if (!waited) ++waits_cancelled;
                }
                co_await tether::sleep_for(1h); // cancelled by the child's failure
            };
            try {
                co_await with_task_group(body);
            } catch (const task_group_error& e) {
                members = e.exceptions().size();
                same_exception = e.exceptions().front() == thrown;
            }
            CHECK(waits_cancelled == 2);
            CHECK(members == 1);
            CHECK(same_exception);
        });
    }
}

TEST_CASE("SH-06 shielding work that completes without suspending returns at once",
          "[shield][SH-06]") {
    run_test([]() -> task<void> {
        int got = 0;
        int finished_child = 0;
        auto region = [&](cancel_scope& s) -> task<void> {
            s.cancel();
            // Not a cancellation point: no throw inside the cancelled scope.
            got = co_await shield(no_cancellation_point(42));
            auto inner_group = [&](task_group& tg) -> task<void> {
                child<int> h = tg.spawn(no_cancellation_point(43));
                co_await shield(tether::sleep_for(1ms)); // lets the child finish
                REQUIRE(h.done());
                finished_child = co_await shield(h); // already finished: no suspension
            };
            co_await shield(with_task_group(inner_group));
        };
        const bool completed = co_await tether::with_cancel_scope(region);
        CHECK(completed);
        CHECK(got == 42);
        CHECK(finished_child == 43);
    });
}

TEST_CASE("SH-07 a timeout around shielded work", "[shield][SH-07]") {
    SECTION("mode R: the shielded work completes; the timeout fires at the next point") {
        run_test([]() -> task<void> {
            const auto t0 = co_await tether::this_task::now();
            int got = 0;
            auto work = [&]() -> task<void> {
                got = co_await shield(sleep_then(100ms, 9));
                co_await tether::yield_now(); // the deadline passed: cancelled here
            };
            CHECK_THROWS_AS(co_await tether::with_timeout(10ms, work()), timeout_error);
            CHECK(got == 9);
            const auto elapsed = co_await now_minus(t0);
            CHECK(elapsed == 100ms);
        });
    }
    SECTION("mode R with no further cancellation point: completion wins (T-11)") {
        run_test([]() -> task<void> {
            auto got = co_await tether::with_timeout(10ms, shield(sleep_then(100ms, 9)));
            CHECK(got == 9);
        });
    }
    SECTION("mode H: the wait times out; the child runs on and completes") {
        run_test([]() -> task<void> {
            const auto t0 = co_await tether::this_task::now();
            child<int> h;
            auto body = [&](task_group& tg) -> task<void> {
                h = tg.spawn(sleep_then(100ms, 9));
                CHECK_THROWS_AS(co_await tether::with_timeout(10ms, h), timeout_error);
                const auto at_timeout = co_await now_minus(t0);
                CHECK(at_timeout == 10ms);
                CHECK_FALSE(h.done());
                CHECK_THROWS_AS(co_await tether::with_timeout(0s, h), timeout_error);
                const auto at_zero = co_await now_minus(t0);
                CHECK(at_zero == 10ms); // t = 0: at once
                auto waited = co_await tether::with_deadline(tether::clock::time_point::max(), h);
                CHECK(waited == 9); // t = none: the caller gets the value
            };
            co_await with_task_group(body);
            CHECK(h.result() == 9);
        });
    }
}
