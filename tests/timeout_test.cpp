// Tests for <tether/timeout.hpp>: scenarios T-01 … T-20 of SEMANTICS.md, on
// virtual time. with_timeout is wait_for, with_deadline is timeout_at;
// reschedule/when()/expired() live on cancel_scope (with_cancel_scope).
#include <tether/timeout.hpp>

#include <tether/cancel_scope.hpp>
#include <tether/shield.hpp>
#include <tether/task_group.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

using namespace std::chrono_literals;
using tether::cancel_scope;
using tether::cancelled_error;
using tether::move_on_after;
using tether::move_on_at;
using tether::task;
using tether::task_group;
using tether::timeout_error;
using tether::with_deadline;
using tether::with_timeout;
using tether_test::now_minus;
using tether_test::run_test;

namespace {

struct error_z : std::runtime_error {
    error_z() : std::runtime_error("error_z") {}
};

tether::detail::scheduler* current_scheduler = nullptr;

task<void> remember_scheduler() {
    auto ex = co_await tether::this_task::executor();
    current_scheduler = &tether::detail::scheduler_for(asio::query(ex, asio::execution::context));
}

task<int> sleep_then(tether::clock::duration d, int v) {
    co_await tether::sleep_for(d);
    co_return v;
}

task<int> no_cancellation_point(int v) {
    co_return v;
}

// True if `e` is a timeout_error whose nested cause is a cancelled_error.
bool caused_by_cancellation(const timeout_error& e) {
    try {
        std::rethrow_if_nested(e);
    } catch (const cancelled_error&) {
        return true;
    } catch (...) {
    }
    return false;
}

/// run_test with access to the virtual clock (to block the "executor" by
/// jumping time from inside a task).
template <class F>
void run_with_clock(F&& fn) {
    asio::io_context io;
    tether::testing::virtual_clock clock(io);
    tether::run(io, fn(clock));
    io.restart();
    io.poll();
    CHECK(tether::detail::scheduler_for(io).idle());
}

} // namespace

static_assert(std::is_same_v<decltype(with_timeout(1s, sleep_then(1s, 1)))::result_type, int>);
static_assert(std::is_same_v<decltype(move_on_after(1s, sleep_then(1s, 1)))::result_type,
                             std::optional<int>>);
static_assert(
    std::is_same_v<decltype(move_on_after(1s, tether::sleep_for(1s)))::result_type, bool>);

TEST_CASE("T-01 expiry: cancelled_error inside, timeout_error only outside", "[timeout][T-01]") {
    run_test([]() -> task<void> {
        co_await remember_scheduler();
        bool inside_cancelled = false;
        bool inside_timeout = false;
        auto work = [&]() -> task<void> {
            try {
                co_await tether::sleep_for(10s);
            } catch (const cancelled_error&) {
                inside_cancelled = true;
                throw;
            } catch (const timeout_error&) {
                inside_timeout = true;
                throw;
            }
        };
        const auto t0 = co_await tether::this_task::now();
        bool caught = false;
        try {
            co_await with_timeout(10ms, work());
        } catch (const timeout_error& e) {
            caught = true;
            CHECK(caused_by_cancellation(e)); // its cause is that cancellation
        }
        CHECK(caught);
        CHECK(inside_cancelled);
        CHECK_FALSE(inside_timeout);
        {
            auto awaited = co_await now_minus(t0);
            CHECK(awaited == 10ms);
        }
        // The task is not left cancelled.
        co_await tether::yield_now();
        co_await tether::sleep_for(1s);
        CHECK(current_scheduler->pending_timers() == 0);
    });
}

TEST_CASE("T-02 absolute deadline", "[timeout][T-02]") {
    run_test([]() -> task<void> {
        const auto t0 = co_await tether::this_task::now();
        const auto d = t0 + 10ms;
        CHECK_THROWS_AS(co_await with_deadline(d, tether::sleep_for(10s)), timeout_error);
        {
            auto awaited = co_await tether::this_task::now();
            CHECK(awaited == d);
        } // fired exactly at d
        auto r = co_await move_on_at(d + 5ms, tether::sleep_for(10s));
        CHECK_FALSE(r);
        {
            auto awaited = co_await tether::this_task::now();
            CHECK(awaited == d + 5ms);
        }
    });
}

TEST_CASE("T-03 a deadline not reached, or none", "[timeout][T-03]") {
    run_test([]() -> task<void> {
        co_await remember_scheduler();
        const auto t0 = co_await tether::this_task::now();
        {
            auto awaited = co_await with_timeout(10s, sleep_then(10ms, 5));
            CHECK(awaited == 5);
        }
        {
            auto awaited = co_await now_minus(t0);
            CHECK(awaited == 10ms);
        }
        CHECK(current_scheduler->pending_timers() == 0); // the deadline was disarmed
        // Disabled: no deadline at all.
        {
            auto awaited =
                co_await with_deadline(tether::clock::time_point::max(), sleep_then(1h, 6));
            CHECK(awaited == 6);
        }
        {
            auto awaited = co_await with_timeout(std::chrono::hours::max(), sleep_then(1h, 7));
            CHECK(awaited == 7);
        }
        {
            auto awaited = co_await with_timeout(tether::clock::duration::max(), sleep_then(1h, 8));
            CHECK(awaited == 8);
        }
        {
            auto awaited =
                co_await move_on_after(std::chrono::duration<double>(1e300), sleep_then(1h, 9));
            CHECK(awaited == 9);
        }
        {
            auto awaited = co_await now_minus(t0);
            CHECK(awaited == 10ms + 4h);
        }
    });
}

TEST_CASE("T-04 a deadline already expired at entry", "[timeout][T-04]") {
    run_test([]() -> task<void> {
        const auto t0 = co_await tether::this_task::now();
        auto yields = []() -> task<int> {
            co_await tether::yield_now();
            co_return 1;
        };
        // (a) the first cancellation point throws; the scope converts.
        CHECK_THROWS_AS(co_await with_timeout(0s, yields()), timeout_error);
        CHECK_THROWS_AS(co_await with_timeout(-11s, yields()), timeout_error);
        CHECK_THROWS_AS(co_await with_deadline(t0, yields()), timeout_error);
        CHECK_THROWS_AS(co_await with_deadline(t0 - 1h, yields()), timeout_error);
        {
            auto awaited = co_await move_on_after(0s, yields());
            CHECK_FALSE(awaited);
        }
        {
            auto awaited = co_await move_on_after(0s, tether::sleep_for(1s));
            CHECK_FALSE(awaited);
        }
        {
            auto awaited = co_await now_minus(t0);
            CHECK(awaited == 0s);
        }
        // (b) work without a cancellation point completes.
        {
            auto awaited = co_await with_timeout(0s, no_cancellation_point(3));
            CHECK(awaited == 3);
        }
        {
            auto awaited = co_await move_on_at(t0, no_cancellation_point(4));
            CHECK(awaited == std::optional<int>(4));
        }
        co_await tether::yield_now(); // nothing is left cancelled
    });
}

TEST_CASE("T-05 a relative deadline starts counting on entry", "[timeout][T-05]") {
    run_test([]() -> task<void> {
        auto pending = with_timeout(5s, tether::sleep_for(1h)); // created at t0
        co_await tether::sleep_for(3s);
        const auto entry = co_await tether::this_task::now();
        CHECK_THROWS_AS(co_await std::move(pending), timeout_error);
        {
            auto awaited = co_await now_minus(entry);
            CHECK(awaited == 5s);
        } // entry + 5, not t0 + 5
    });
}

TEST_CASE("T-06 a foreign error passes through unchanged", "[timeout][T-06]") {
    run_test([]() -> task<void> {
        std::exception_ptr thrown;
        auto work = [&]() -> task<void> {
            co_await tether::sleep_for(1ms);
            thrown = std::make_exception_ptr(error_z());
            std::rethrow_exception(thrown);
        };
        try {
            co_await with_timeout(10ms, work());
            FAIL("no exception");
        } catch (const error_z&) {
            CHECK(std::current_exception() == thrown); // identity
        }
    });
}

TEST_CASE("T-07 an error raised by clean-up during the timeout's cancellation wins",
          "[timeout][T-07]") {
    run_test([]() -> task<void> {
        auto work = []() -> task<void> {
            try {
                co_await tether::sleep_for(1s);
            } catch (...) {
                throw error_z(); // "finally: raise"
            }
        };
        CHECK_THROWS_AS(co_await with_timeout(10ms, work()), error_z);
        CHECK_THROWS_AS(co_await move_on_after(10ms, work()), error_z);
    });
}

TEST_CASE("T-08 an external cancel inside an unexpired timeout stays a cancellation",
          "[timeout][T-08]") {
    SECTION("cancelled while inside") {
        run_test([]() -> task<void> {
            bool saw_cancel = false;
            auto region = [&](cancel_scope& outer) -> task<void> {
                auto work = [&]() -> task<void> {
                    outer.cancel();
                    co_await tether::sleep_for(1s);
                };
                try {
                    co_await with_timeout(10s, work());
                } catch (const timeout_error&) {
                    FAIL("converted to timeout_error");
                } catch (const cancelled_error&) {
                    saw_cancel = true;
                    throw;
                }
            };
            {
                auto awaited = co_await tether::with_cancel_scope(region);
                CHECK_FALSE(awaited);
            }
            CHECK(saw_cancel);
        });
    }
    SECTION("entered after an earlier cancellation was caught") {
        run_test([]() -> task<void> {
            bool saw_cancel = false;
            auto region = [&](cancel_scope& outer) -> task<void> {
                outer.cancel();
                try {
                    co_await tether::yield_now();
                } catch (const cancelled_error&) {
                }
                try {
                    co_await with_timeout(10s, tether::sleep_for(1s));
                } catch (const cancelled_error&) {
                    saw_cancel = true;
                    throw;
                }
            };
            {
                auto awaited = co_await tether::with_cancel_scope(region);
                CHECK_FALSE(awaited);
            }
            CHECK(saw_cancel);
        });
    }
}

TEST_CASE("T-09 an external cancel in the same tick as the expiry wins", "[timeout][T-09]") {
    run_test([]() -> task<void> {
        const auto d = (co_await tether::this_task::now()) + 10ms;
        cancel_scope* outer = nullptr;
        bool saw_timeout = false;
        bool saw_cancel = false;
        auto killer = [&]() -> task<void> {
            co_await tether::sleep_until(d); // armed before the timeout's deadline
            outer->cancel();
        };
        auto region = [&](cancel_scope& s) -> task<void> {
            outer = &s;
            try {
                co_await with_deadline(d, tether::sleep_for(1h));
            } catch (const timeout_error&) {
                saw_timeout = true;
            } catch (const cancelled_error&) {
                saw_cancel = true;
                throw;
            }
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(killer());
            co_await tether::yield_now(); // the killer arms its timer first
            co_await tether::with_cancel_scope(region);
        };
        co_await tether::with_task_group(body);
        CHECK(saw_cancel);
        CHECK_FALSE(saw_timeout);
    });
}

TEST_CASE("T-10 a pending cancellation is not swallowed by timeout(0)", "[timeout][T-10]") {
    for (auto d : {0ms, -5ms, 10ms}) {
        CAPTURE(d.count());
        run_test([d]() -> task<void> {
            bool saw_cancel = false;
            bool still_cancelled = false;
            auto region = [&](cancel_scope& outer) -> task<void> {
                outer.cancel(); // pending: no cancellation point reached yet
                try {
                    co_await with_timeout(d, tether::sleep_for(1s));
                } catch (const timeout_error&) {
                    FAIL("the pending cancellation was swallowed");
                } catch (const cancelled_error&) {
                    saw_cancel = true;
                }
                try {
                    co_await tether::yield_now();
                } catch (const cancelled_error&) {
                    still_cancelled = true;
                    throw;
                }
            };
            co_await tether::with_cancel_scope(region);
            CHECK(saw_cancel);
            CHECK(still_cancelled);
        });
    }
}

TEST_CASE("T-11 a completion that beats a simultaneous expiry returns its value; no stale "
          "cancellation",
          "[timeout][T-11]") {
    SECTION("the work's last wait and the deadline fire at the same instant") {
        run_test([]() -> task<void> {
            co_await remember_scheduler();
            const auto d = (co_await tether::this_task::now()) + 10ms;
            cancel_scope* scope = nullptr;
            bool cancel_called = false;
            auto setter = [&]() -> task<void> {
                scope->set_deadline(d); // armed after the work's sleep: fires second
                co_return;
            };
            auto region = [&](cancel_scope& s) -> task<int> {
                scope = &s;
                co_await tether::sleep_until(d); // completed, then the deadline fired
                cancel_called = s.cancel_called();
                co_return 42; // no further cancellation point
            };
            std::optional<int> r;
            auto body = [&](task_group& tg) -> task<void> {
                tg.spawn(setter());
                r = co_await tether::with_cancel_scope(region);
            };
            co_await tether::with_task_group(body);
            CHECK(r == std::optional<int>(42));
            CHECK(cancel_called);         // the deadline did fire ("expired")
            co_await tether::yield_now(); // no leftover cancellation
            CHECK(current_scheduler->pending_timers() == 0);
        });
    }
    SECTION("the deadline passes while the work is shielded; it ends without another "
            "cancellation point") {
        run_test([]() -> task<void> {
            const auto t0 = co_await tether::this_task::now();
            {
                auto awaited =
                    co_await with_deadline(t0 + 10ms, tether::shield(sleep_then(20ms, 42)));
                CHECK(awaited == 42);
            }
            {
                auto awaited = co_await with_timeout(10ms, tether::shield(sleep_then(20ms, 43)));
                CHECK(awaited == 43);
            }
            {
                auto awaited = co_await move_on_after(10ms, tether::shield(sleep_then(20ms, 44)));
                CHECK(awaited == std::optional<int>(44));
            }
            {
                auto awaited = co_await now_minus(t0);
                CHECK(awaited == 60ms);
            }
            co_await tether::yield_now(); // the task carries no leftover cancellation
        });
    }
}

TEST_CASE("T-12 nested timeouts with the same deadline: the outer one owns it", "[timeout][T-12]") {
    SECTION("timeouts") {
        run_test([]() -> task<void> {
            const auto d = (co_await tether::this_task::now()) + 10ms;
            bool between_cancelled = false;
            bool inner_timeout = false;
            auto between = [&]() -> task<void> {
                try {
                    co_await with_deadline(d, tether::sleep_for(10s));
                } catch (const timeout_error&) {
                    inner_timeout = true;
                } catch (const cancelled_error&) {
                    between_cancelled = true;
                    throw;
                }
            };
            CHECK_THROWS_AS(co_await with_deadline(d, between()), timeout_error);
            CHECK(between_cancelled);
            CHECK_FALSE(inner_timeout);
        });
    }
    SECTION("explicit cancels of scope3 then scope2 in the same tick") {
        run_test([]() -> task<void> {
            bool s1_caught = true, s2_caught = false, s3_caught = true, s3_called = false;
            cancel_scope* p2 = nullptr;
            cancel_scope* p3 = nullptr;
            auto r3 = [&](cancel_scope& s3) -> task<void> {
                p3 = &s3;
                s3.cancel();
                p2->cancel();
                co_await tether::yield_now();
            };
            auto r2 = [&](cancel_scope& s2) -> task<void> {
                p2 = &s2;
                auto a3 = tether::with_cancel_scope(r3);
                try {
                    co_await std::move(a3);
                } catch (const cancelled_error&) {
                    s3_caught = false; // scope3 let it through
                    s3_called = p3->cancel_called();
                    throw;
                }
            };
            auto r1 = [&](cancel_scope& s1) -> task<void> {
                auto a2 = tether::with_cancel_scope(r2);
                s2_caught = !(co_await std::move(a2));
                s1_caught = s1.cancel_called();
            };
            {
                auto awaited = co_await tether::with_cancel_scope(r1);
                CHECK(awaited);
            }
            CHECK(s2_caught);
            CHECK_FALSE(s3_caught);
            CHECK(s3_called);
            CHECK_FALSE(s1_caught); // scope1 untouched
        });
    }
}

TEST_CASE("T-13 nested: the inner expires first; the outer still fires later", "[timeout][T-13]") {
    SECTION("on time") {
        run_test([]() -> task<void> {
            const auto t0 = co_await tether::this_task::now();
            bool inner_timeout = false;
            auto outer_work = [&]() -> task<void> {
                try {
                    co_await with_timeout(10ms, tether::sleep_for(1s));
                } catch (const timeout_error&) {
                    inner_timeout = true;
                }
                co_await tether::sleep_for(10s);
            };
            CHECK_THROWS_AS(co_await with_timeout(100ms, outer_work()), timeout_error);
            CHECK(inner_timeout);
            {
                auto awaited = co_await now_minus(t0);
                CHECK(awaited == 100ms);
            }
        });
    }
    SECTION("the executor is blocked inside the inner block past both deadlines") {
        bool inner_timeout = false;
        bool outer_timeout = false;
        tether::clock::duration total{};
        run_with_clock([&](tether::testing::virtual_clock& clock) -> task<void> {
            const auto t0 = co_await tether::this_task::now();
            auto blocked = [&]() -> task<void> {
                clock.advance(150ms); // both deadlines pass while this code runs
                co_await tether::yield_now();
            };
            auto outer_work = [&]() -> task<void> {
                try {
                    co_await with_timeout(10ms, blocked());
                } catch (const timeout_error&) {
                    inner_timeout = true;
                }
                co_await tether::sleep_for(10s);
            };
            try {
                co_await with_timeout(100ms, outer_work());
            } catch (const timeout_error&) {
                outer_timeout = true;
            }
            total = co_await now_minus(t0);
        });
        CHECK(outer_timeout); // never consumed by the inner one
        CHECK_FALSE(inner_timeout);
        CHECK(total == 150ms);
    }
}

TEST_CASE("T-14 nested: the outer expires first; the inner passes it through", "[timeout][T-14]") {
    run_test([]() -> task<void> {
        bool inner_timeout = false;
        bool between_ran = false;
        auto outer_work = [&]() -> task<void> {
            try {
                co_await with_timeout(100ms, tether::sleep_for(1s));
            } catch (const timeout_error&) {
                inner_timeout = true;
            }
            between_ran = true;
        };
        const auto t0 = co_await tether::this_task::now();
        CHECK_THROWS_AS(co_await with_timeout(2ms, outer_work()), timeout_error);
        {
            auto awaited = co_await now_minus(t0);
            CHECK(awaited == 2ms);
        }
        CHECK_FALSE(inner_timeout);
        CHECK_FALSE(between_ran);
    });
}

TEST_CASE("T-15 moving a cancel scope's deadline while it is active", "[timeout][T-15]") {
    SECTION("later, then none, then an external cancel") {
        run_test([]() -> task<void> {
            bool expired = true;
            auto region = [&](cancel_scope& s) -> task<void> {
                const auto now = co_await tether::this_task::now();
                const auto d1 = now + 10s;
                s.set_deadline(d1);
                CHECK(s.deadline() == d1);
                const auto d2 = d1 + 20s;
                s.set_deadline(d2);
                CHECK(s.deadline() == d2);
                s.set_deadline(tether::clock::time_point::max());
                CHECK(s.deadline() == tether::clock::time_point::max());
                co_await tether::sleep_for(40s); // nothing fires
                s.cancel();
                try {
                    co_await tether::sleep_for(50s);
                } catch (const cancelled_error&) {
                    expired = s.deadline_expired();
                    throw;
                }
            };
            {
                auto awaited = co_await tether::with_cancel_scope(region);
                CHECK_FALSE(awaited);
            }
            CHECK_FALSE(expired);
        });
    }
    SECTION("a deadline moved into the past cancels at the next cancellation point") {
        run_test([]() -> task<void> {
            int thrown = 0;
            bool expired = false;
            auto region = [&](cancel_scope& s) -> task<void> {
                const auto start = co_await tether::this_task::now();
                s.set_deadline(start + 10s);
                co_await tether::sleep_for(5s);
                s.set_deadline(start + 1s); // already past
                for (int i = 0; i < 2; ++i) {
                    try {
                        co_await tether::yield_now();
                    } catch (const cancelled_error&) {
                        ++thrown; // level-triggered: twice
                    }
                }
                expired = s.deadline_expired();
                co_await tether::yield_now();
            };
            const auto t0 = co_await tether::this_task::now();
            {
                auto awaited = co_await tether::with_cancel_scope(region);
                CHECK_FALSE(awaited);
            }
            {
                auto awaited = co_await now_minus(t0);
                CHECK(awaited == 5s);
            }
            CHECK(thrown == 2);
            CHECK(expired);
        });
    }
    SECTION("stress: many reschedules neither leak nor fire early") {
        run_test([]() -> task<void> {
            co_await remember_scheduler();
            const auto t0 = co_await tether::this_task::now();
            auto region = [&](cancel_scope& s) -> task<void> {
                for (int i = 0; i < 1000; ++i) {
                    s.reschedule(1h + 1s * i);
                    s.reschedule(1ms * (i + 1));
                }
                CHECK(current_scheduler->pending_timers() == 1);
                co_await tether::sleep_for(10s);
            };
            {
                auto awaited = co_await tether::with_cancel_scope(region);
                CHECK_FALSE(awaited);
            }
            {
                auto awaited = co_await now_minus(t0);
                CHECK(awaited == 1000ms);
            }
            CHECK(current_scheduler->pending_timers() == 0);
        });
    }
}

TEST_CASE("T-16 an expiry can never be undone", "[timeout][T-16]") {
    // with_timeout/with_deadline are opened by a call: "enter twice", "reschedule
    // before entry/after exit" cannot be written. What remains: a fired deadline
    // moved back into the future does not un-cancel the scope.
    run_test([]() -> task<void> {
        bool still_cancelled = false;
        auto region = [&](cancel_scope& s) -> task<void> {
            s.reschedule(10ms);
            try {
                co_await tether::sleep_for(1s);
            } catch (const cancelled_error&) {
            }
            s.reschedule(1h);
            try {
                co_await tether::yield_now();
            } catch (const cancelled_error&) {
                still_cancelled = true;
            }
            CHECK(s.cancel_called());
        };
        co_await tether::with_cancel_scope(region);
        CHECK(still_cancelled);
    });
}

TEST_CASE("T-17 a shielded timeout in clean-up works after the outer one fired",
          "[timeout][T-17]") {
    run_test([]() -> task<void> {
        const auto t0 = co_await tether::this_task::now();
        bool inner_timeout = false;
        auto work = [&]() -> task<void> {
            std::exception_ptr original;
            try {
                co_await tether::sleep_for(1s);
            } catch (const cancelled_error&) {
                original = std::current_exception();
            }
            if (original) { // "finally:" (no co_await inside a handler in C++)
                try {
                    co_await tether::shield(with_timeout(10ms, tether::sleep_for(10s)));
                } catch (const timeout_error&) {
                    inner_timeout = true;
                }
                std::rethrow_exception(original);
            }
        };
        try {
            co_await with_timeout(10ms, work());
            FAIL("no exception");
        } catch (const timeout_error& e) {
            CHECK(caused_by_cancellation(e));
        }
        CHECK(inner_timeout);
        {
            auto awaited = co_await now_minus(t0);
            CHECK(awaited == 20ms);
        }
    });
}

TEST_CASE("T-18 a timeout around a task group", "[timeout][T-18]") {
    SECTION("(a) an expired timeout around a group whose body yields") {
        run_test([]() -> task<void> {
            auto body = [](task_group&) -> task<void> { co_await tether::yield_now(); };
            try {
                co_await with_timeout(-1s, tether::with_task_group(body));
                FAIL("no exception");
            } catch (const timeout_error& e) {
                CHECK(caused_by_cancellation(e));
            }
        });
    }
    SECTION("(b) a group error passes through the timeout unchanged") {
        run_test([]() -> task<void> {
            auto failing_cleanup = []() -> task<void> {
                try {
                    co_await tether::sleep_for(2s);
                } catch (...) {
                    throw error_z();
                }
            };
            auto body = [&](task_group& tg) -> task<void> {
                tg.spawn(failing_cleanup());
                co_await tether::sleep_for(1s);
            };
            try {
                co_await with_timeout(10ms, tether::with_task_group(body));
                FAIL("no exception");
            } catch (const tether::task_group_error& e) {
                REQUIRE(e.exceptions().size() == 1);
                CHECK_THROWS_AS(std::rethrow_exception(e.exceptions()[0]), error_z);
            }
        });
    }
}

TEST_CASE("T-19 bounded wait: the timeout path", "[timeout][T-19]") {
    SECTION("(a) timeout_error only after the work's clean-up has finished") {
        run_test([]() -> task<void> {
            bool cleanup_done = false;
            bool done_when_raised = false;
            auto op = [&]() -> task<void> {
                std::exception_ptr cancel;
                try {
                    co_await tether::sleep_for(1s);
                } catch (const cancelled_error&) {
                    cancel = std::current_exception();
                }
                co_await tether::shield(tether::yield_now()); // one more tick of clean-up
                cleanup_done = true;
                if (cancel) std::rethrow_exception(cancel);
            };
            try {
                co_await with_timeout(10ms, op());
            } catch (const timeout_error&) {
                done_when_raised = cleanup_done;
            }
            CHECK(done_when_raised);
        });
    }
    SECTION("(b) t == 0: timeout_error at once; the work does not run past its first "
            "cancellation point") {
        // Adapted: like a child cancelled before it runs (D-10), code before the
        // first cancellation point may run; asyncio's wait_for(coro, 0) does not
        // start coro at all.
        run_test([]() -> task<void> {
            bool passed = false;
            auto op = [&]() -> task<void> {
                co_await tether::yield_now();
                passed = true;
            };
            const auto t0 = co_await tether::this_task::now();
            CHECK_THROWS_AS(co_await with_timeout(0s, op()), timeout_error);
            CHECK_FALSE(passed);
            {
                auto awaited = co_await now_minus(t0);
                CHECK(awaited == 0s);
            }
        });
    }
    SECTION("(c) t == 0 and the work is already done: its result") {
        run_test([]() -> task<void> {
            {
                auto awaited = co_await with_timeout(0s, no_cancellation_point(5));
                CHECK(awaited == 5);
            }
            auto body = [](task_group& tg) -> task<void> {
                tether::child<int> h = tg.spawn(no_cancellation_point(6));
                co_await tether::sleep_for(1ms);
                {
                    auto awaited = co_await with_timeout(0s, h);
                    CHECK(awaited == 6);
                } // a finished child
            };
            co_await tether::with_task_group(body);
        });
    }
    SECTION("(d) the work swallows its cancellation and returns 42") {
        run_test([]() -> task<void> {
            auto op = []() -> task<int> {
                try {
                    co_await tether::sleep_for(1s);
                } catch (const cancelled_error&) {
                }
                co_return 42;
            };
            {
                auto awaited = co_await with_timeout(10ms, op());
                CHECK(awaited == 42);
            }
            {
                auto awaited = co_await move_on_after(10ms, op());
                CHECK(awaited == std::optional<int>(42));
            }
        });
    }
    SECTION("(e) the work throws from its clean-up") {
        run_test([]() -> task<void> {
            auto op = []() -> task<void> {
                try {
                    co_await tether::sleep_for(1s);
                } catch (const cancelled_error&) {
                    throw error_z();
                }
            };
            CHECK_THROWS_AS(co_await with_timeout(10ms, op()), error_z);
        });
    }
}

TEST_CASE("T-20 bounded wait: the external-cancel path", "[timeout][T-20]") {
    // W runs with_timeout(60s, op) inside a cancel scope that a sibling cancels.
    struct result {
        bool w_cancelled = false;
        bool statement_after = false;
        tether::clock::duration w_done_at{};
        bool op_exited = false;
        std::optional<int> op_value;
    };
    auto scenario = [](tether::clock::duration cancel_at, auto make_op) {
        return [cancel_at, make_op]() -> task<result> {
            result r;
            const auto t0 = co_await tether::this_task::now();
            cancel_scope* w_scope = nullptr;
            auto killer = [&]() -> task<void> {
                co_await tether::sleep_for(cancel_at);
                w_scope->cancel();
            };
            auto w = [&](cancel_scope& s) -> task<void> {
                w_scope = &s;
                try {
                    r.op_value = co_await with_timeout(60s, make_op(r.op_exited));
                    co_await tether::yield_now();
                    r.statement_after = true;
                } catch (const cancelled_error&) {
                    r.w_cancelled = true;
                    throw;
                }
            };
            auto body = [&](task_group& tg) -> task<void> {
                tg.spawn(killer());
                co_await tether::yield_now(); // the killer arms its timer first
                co_await tether::with_cancel_scope(w);
                r.w_done_at = co_await now_minus(t0);
            };
            co_await tether::with_task_group(body);
            co_return r;
        };
    };
    SECTION("a slow-to-cancel op keeps W waiting until it has exited") {
        auto op = [](bool& exited) -> task<int> {
            std::exception_ptr cancel;
            try {
                co_await tether::sleep_for(1h);
            } catch (const cancelled_error&) {
                cancel = std::current_exception();
            }
            co_await tether::shield(tether::sleep_for(100ms));
            exited = true;
            if (cancel) std::rethrow_exception(cancel);
            co_return 1;
        };
        result r = run_test(scenario(10ms, op));
        CHECK(r.w_cancelled);
        CHECK(r.op_exited);
        CHECK(r.w_done_at == 110ms);
        CHECK_FALSE(r.op_value);
    }
    SECTION("op completes in the tick W is cancelled: op keeps its result, W still ends "
            "cancelled") {
        auto op = [](bool& exited) -> task<int> {
            co_await tether::sleep_for(10ms);
            exited = true;
            co_return 7;
        };
        result r = run_test(scenario(10ms, op));
        CHECK(r.op_value == std::optional<int>(7));
        CHECK(r.w_cancelled);
        CHECK_FALSE(r.statement_after);
    }
    SECTION("an op that catches its cancellation twice cannot make W uncancellable") {
        auto op = [](bool& exited) -> task<int> {
            for (int i = 0; i < 2; ++i) {
                try {
                    co_await tether::sleep_for(1h);
                } catch (const cancelled_error&) {
                }
            }
            exited = true;
            co_return 42;
        };
        result r = run_test(scenario(10ms, op));
        CHECK(r.op_value == std::optional<int>(42));
        CHECK(r.w_cancelled);
        CHECK_FALSE(r.statement_after);
    }
}

// --- beyond the scenarios ---------------------------------------------------------

TEST_CASE("with_timeout runs any tether awaitable in place", "[timeout]") {
    run_test([]() -> task<void> {
        co_await remember_scheduler();
        {
            auto awaited = co_await move_on_after(10ms, tether::sleep_for(5ms));
            CHECK(awaited);
        }
        {
            auto awaited = co_await move_on_after(5ms, tether::sleep_for(10ms));
            CHECK_FALSE(awaited);
        }
        CHECK_THROWS_AS(co_await with_timeout(5ms, tether::sleep_for(10ms)), timeout_error);
        // Scopes compose without coroutine frames.
        {
            auto awaited = co_await with_timeout(1s, move_on_after(1ms, tether::sleep_for(1h)));
            CHECK(awaited == false);
        }
        {
            auto awaited = co_await with_timeout(1s, with_timeout(2s, sleep_then(1ms, 3)));
            CHECK(awaited == 3);
        }
        CHECK(current_scheduler->pending_timers() == 0);
    });
}

TEST_CASE("move_on_after with a void task reports whether it completed", "[timeout]") {
    run_test([]() -> task<void> {
        auto v = []() -> task<void> { co_await tether::sleep_for(5ms); };
        {
            auto awaited = co_await move_on_after(10ms, v());
            CHECK(awaited);
        }
        {
            auto awaited = co_await move_on_after(1ms, v());
            CHECK_FALSE(awaited);
        }
    });
}

TEST_CASE("an awaitable converted to a task can be stored and awaited later", "[timeout]") {
    run_test([]() -> task<void> {
        task<int> t = with_timeout(10ms, sleep_then(1ms, 9));
        task<std::optional<int>> m = move_on_after(1ms, sleep_then(10ms, 9));
        {
            auto awaited = co_await std::move(t);
            CHECK(awaited == 9);
        }
        {
            auto awaited = co_await std::move(m);
            CHECK_FALSE(awaited);
        }
    });
}

TEST_CASE("awaiting an empty task in a timeout is a usage_error", "[timeout]") {
    run_test([]() -> task<void> {
        task<int> t = sleep_then(1ms, 1);
        task<int> moved = std::move(t);
        CHECK_THROWS_AS(co_await with_timeout(1s, std::move(t)), tether::usage_error);
        {
            auto awaited = co_await with_timeout(1s, std::move(moved));
            CHECK(awaited == 1);
        }
        co_await tether::yield_now(); // the failed entry left no scope behind
    });
}

TEST_CASE("many synchronous timeouts in a loop do not grow the stack", "[timeout]") {
    run_test([]() -> task<void> {
        long sum = 0;
        for (int i = 0; i < 300000; ++i) sum += co_await with_timeout(1s, no_cancellation_point(1));
        CHECK(sum == 300000);
    });
}
