// Tests for <tether/semaphore.hpp>: scenarios S-01 … S-09 of SEMANTICS.md (S-10
// and S-11 concern BoundedSemaphore / CapacityLimiter, which tether does not
// offer: a semaphore_permit cannot be released twice by construction), the
// permit's RAII, and the fast path / suspended × cancelled before / after
// wake-up matrix. A "tick" is one yield_now().
#include <tether/semaphore.hpp>

#include <tether/cancel_scope.hpp>
#include <tether/task_group.hpp>
#include <tether/timeout.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <optional>
#include <string>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using tether::cancel_scope;
using tether::cancelled_error;
using tether::semaphore;
using tether::semaphore_permit;
using tether::task;
using tether::task_group;
using tether::usage_error;
using tether_test::run_test;

static_assert(!std::is_copy_constructible_v<semaphore_permit>);
static_assert(!std::is_copy_assignable_v<semaphore_permit>);
static_assert(std::is_nothrow_move_constructible_v<semaphore_permit>);
static_assert(std::is_nothrow_move_assignable_v<semaphore_permit>);
static_assert(std::is_nothrow_destructible_v<semaphore_permit>);
static_assert(!std::is_copy_constructible_v<semaphore>);
static_assert(!std::is_move_constructible_v<semaphore>);
static_assert(std::is_same_v<decltype(std::declval<semaphore&>().try_acquire()),
                             std::optional<semaphore_permit>>);

namespace {

task<void> ticks(int n) {
    for (int i = 0; i < n; ++i) co_await tether::yield_now();
}

/// What happened to one acquire run by a child task.
struct acq_log {
    bool acquired = false;
    bool cancelled = false;
    bool next_point_threw = false;
};

/// Acquires, records (in `order` as `id`), then holds the permit for `hold`
/// ticks — cancellation points — and releases it.
task<void> acquire_op(semaphore& s, acq_log& log, std::vector<int>* order = nullptr, int id = 0,
                      int hold = 1) {
    semaphore_permit p;
    try {
        p = co_await s.acquire();
        log.acquired = true;
        if (order) order->push_back(id);
    } catch (const cancelled_error&) {
        log.cancelled = true;
        throw;
    }
    try {
        for (int i = 0; i < hold; ++i) co_await tether::yield_now();
    } catch (const cancelled_error&) {
        log.next_point_threw = true;
        throw; // the permit is released while unwinding
    }
}

/// Acquires, records the order, holds for `hold`, releases; `rounds` times.
task<void> rounds_op(semaphore& s, std::vector<std::string>& order, std::string name, int rounds,
                     std::chrono::milliseconds hold) {
    for (int r = 1; r <= rounds; ++r) {
        auto p = co_await s.acquire();
        order.push_back(name + "_" + std::to_string(r));
        co_await tether::sleep_for(hold);
    }
}

} // namespace

TEST_CASE("S-01 construction, counting and try_acquire", "[semaphore][S-01]") {
    CHECK_THROWS_AS(semaphore(-1), usage_error);
    CHECK_THROWS_WITH(semaphore(-1), Catch::Matchers::ContainsSubstring("negative"));
    run_test([]() -> task<void> {
        semaphore zero(0);
        CHECK(zero.available() == 0); // "locked"
        CHECK_FALSE(zero.try_acquire().has_value());

        semaphore one(1);
        CHECK(one.available() == 1);
        {
            auto p = co_await one.acquire();
            CHECK(p);
            CHECK(one.available() == 0);
            CHECK_FALSE(one.try_acquire()); // would block; never suspends
        }
        CHECK(one.available() == 1);
        auto q = one.try_acquire();
        REQUIRE(q);
        CHECK(q->held());
        CHECK(one.available() == 0);
        q->release();
        CHECK_FALSE(q->held());
        q->release(); // idempotent
        CHECK(one.available() == 1);
    });
}

TEST_CASE("a permit releases once: on release(), on destruction, or when moved over",
          "[semaphore][permit]") {
    run_test([]() -> task<void> {
        semaphore s(2);
        auto a = co_await s.acquire();
        auto b = co_await s.acquire();
        CHECK(s.available() == 0);
        semaphore_permit c = std::move(a);
        CHECK_FALSE(a);
        CHECK(c);
        CHECK(s.available() == 0);
        c = std::move(b); // c's old permit is released
        CHECK(s.available() == 1);
        c = semaphore_permit();
        CHECK(s.available() == 2);
        semaphore_permit empty;
        CHECK_FALSE(empty);
        empty.release();
        CHECK(s.available() == 2);
    });
}

TEST_CASE("S-02 acquisitions are FIFO across rounds", "[semaphore][S-02]") {
    run_test([]() -> task<void> {
        semaphore s(1);
        std::vector<std::string> order;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(rounds_op(s, order, "c1", 2, 10ms));
            tg.spawn(rounds_op(s, order, "c2", 2, 10ms));
            tg.spawn(rounds_op(s, order, "c3", 2, 10ms));
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(order == std::vector<std::string>{"c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"});
    });
}

TEST_CASE("S-02 stress: mutual exclusion and a repeating order", "[semaphore][S-02]") {
    run_test([]() -> task<void> {
        semaphore s(1);
        int inside = 0;
        int max_inside = 0;
        int acquisitions = 0;
        std::vector<int> order;
        auto worker = [&](int id) -> task<void> {
            for (int i = 0; i < 10; ++i) {
                auto p = co_await s.acquire();
                ++acquisitions;
                order.push_back(id);
                max_inside = std::max(max_inside, ++inside);
                co_await tether::yield_now();
                co_await tether::yield_now();
                --inside;
            }
        };
        auto body = [&](task_group& tg) -> task<void> {
            for (int id = 0; id < 5; ++id) tg.spawn(worker(id));
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(max_inside == 1);
        CHECK(acquisitions == 50);
        REQUIRE(order.size() == 50);
        for (std::size_t i = 5; i < order.size(); ++i) CHECK(order[i] == order[i - 5]);
    });
}

TEST_CASE("S-03 a release with a waiter hands the permit over; try_acquire cannot barge",
          "[semaphore][S-03]") {
    run_test([]() -> task<void> {
        semaphore s(1);
        auto a = co_await s.acquire();
        acq_log b;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(acquire_op(s, b));
            co_await ticks(1);
            a.release(); // same tick: release, then try_acquire
            CHECK(s.available() == 0);
            CHECK_FALSE(s.try_acquire());
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(b.acquired);
        CHECK(s.available() == 1);
    });
}

TEST_CASE("S-04 re-acquiring goes to the back of the line", "[semaphore][S-04]") {
    run_test([]() -> task<void> {
        semaphore s(1);
        std::vector<int> order;
        auto main_permit = co_await s.acquire(); // held by the test (c1's role below)
        auto c2 = [&]() -> task<void> {
            {
                auto p = co_await s.acquire();
                order.push_back(2);
            }
            auto p = co_await s.acquire(); // queues behind c3
            order.push_back(4);
        };
        auto c3 = [&]() -> task<void> {
            auto p = co_await s.acquire();
            order.push_back(3);
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(c2());
            tg.spawn(c3());
            co_await ticks(1);
            order.push_back(1);
            main_permit.release();
        };
        co_await tether::with_task_group(body);
        CHECK(order == std::vector<int>{1, 2, 3, 4});
    });
}

TEST_CASE("S-05 (a) a cancelled waiter is skipped", "[semaphore][S-05][cancellation]") {
    run_test([]() -> task<void> {
        semaphore s(2);
        auto held1 = co_await s.acquire(); // Semaphore(0) with two releases to come
        auto held2 = co_await s.acquire();
        std::vector<int> order;
        acq_log t1, t2, t3;
        auto body = [&](task_group& tg) -> task<void> {
            auto h1 = tg.spawn(acquire_op(s, t1, &order, 1));
            tg.spawn(acquire_op(s, t2, &order, 2));
            tg.spawn(acquire_op(s, t3, &order, 3));
            co_await ticks(1);
            h1.cancel();
            co_await ticks(1);
            held1.release();
            held2.release();
        };
        co_await tether::with_task_group(body);
        CHECK(order == std::vector<int>{2, 3});
        CHECK(t1.cancelled);
        CHECK(s.available() == 2);
    });
}

TEST_CASE("S-05 (b) two waiters cancelled, one release: exactly the third acquires",
          "[semaphore][S-05][cancellation]") {
    run_test([]() -> task<void> {
        semaphore s(1);
        auto held = co_await s.acquire();
        std::vector<int> order;
        acq_log t1, t2, t3, t4;
        auto body = [&](task_group& tg) -> task<void> {
            auto h1 = tg.spawn(acquire_op(s, t1, &order, 1));
            auto h2 = tg.spawn(acquire_op(s, t2, &order, 2));
            tg.spawn(acquire_op(s, t3, &order, 3, 5));
            auto h4 = tg.spawn(acquire_op(s, t4, &order, 4));
            co_await ticks(1);
            h1.cancel();
            h2.cancel();
            held.release();
            co_await ticks(2);
            CHECK(order == std::vector<int>{3});
            CHECK_FALSE(t4.acquired); // still waiting
            h4.cancel();
        };
        co_await tether::with_task_group(body);
        CHECK(t1.cancelled);
        CHECK(t2.cancelled);
        CHECK(t4.cancelled);
        CHECK(s.available() == 1);
    });
}

TEST_CASE("S-06 a cancelled or timed-out waiter leaks nothing", "[semaphore][S-06][cancellation]") {
    SECTION("cancelled") {
        run_test([]() -> task<void> {
            semaphore s(1);
            auto held = co_await s.acquire();
            acq_log w;
            auto body = [&](task_group& tg) -> task<void> {
                auto h = tg.spawn(acquire_op(s, w));
                co_await ticks(1);
                h.cancel();
                co_await ticks(1);
                held.release();
                co_return;
            };
            co_await tether::with_task_group(body);
            CHECK(w.cancelled);
            CHECK(s.available() == 1);
            auto t0 = co_await tether::this_task::now();
            auto p = co_await s.acquire(); // at once
            auto t1 = co_await tether::this_task::now();
            CHECK(t1 == t0);
        });
    }
    SECTION("timed out") {
        run_test([]() -> task<void> {
            semaphore s(1);
            auto held = co_await s.acquire();
            auto r = co_await tether::move_on_after(50ms, s.acquire());
            CHECK_FALSE(r.has_value());
            CHECK(s.available() == 0);
            held.release();
            CHECK(s.available() == 1);
            auto p = s.try_acquire();
            CHECK(p);
        });
    }
}

TEST_CASE("S-07 (a) release racing with cancel: the permit is never lost",
          "[semaphore][S-07][cancellation]") {
    run_test([]() -> task<void> {
        semaphore s(1);
        auto c1 = co_await s.acquire();
        acq_log c2;
        auto body = [&](task_group& tg) -> task<void> {
            auto h2 = tg.spawn(acquire_op(s, c2));
            co_await ticks(1);
            c1.release(); // c2 is woken with the permit ...
            h2.cancel();  // ... and cancelled before it runs
            // Direct hand-off: c2 acquired, so it must release — which it does
            // when its next cancellation point throws. No hang, no leaked permit.
            auto t0 = co_await tether::this_task::now();
            auto p = co_await tether::with_timeout(1s, s.acquire());
            auto t1 = co_await tether::this_task::now();
            CHECK(p);
            CHECK(t1 == t0);
        };
        co_await tether::with_task_group(body);
        CHECK(c2.acquired);
        CHECK(c2.next_point_threw);
        CHECK(s.available() == 1);
    });
}

TEST_CASE("S-07 (b) a waiter cancelled in the tick of a release passes the permit on",
          "[semaphore][S-07][cancellation]") {
    run_test([]() -> task<void> {
        semaphore s(1);
        auto held = co_await s.acquire(); // Semaphore(0)
        std::vector<int> order;
        acq_log t1;
        bool t2_holds_at_end = false;
        auto body = [&](task_group& tg) -> task<void> {
            auto h1 = tg.spawn(acquire_op(s, t1, &order, 1));
            auto t2_task = [&]() -> task<void> {
                auto p = co_await s.acquire();
                order.push_back(2);
                co_await ticks(2);
                t2_holds_at_end = s.available() == 0; // "locked again"
            };
            tg.spawn(t2_task());
            co_await ticks(1);
            h1.cancel();    // one tick:
            held.release(); // cancel t1 and release
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(t1.cancelled);
        CHECK(order == std::vector<int>{2});
        CHECK(t2_holds_at_end);
        CHECK(s.available() == 1);
    });
}

TEST_CASE("S-07 a woken waiter cancelled in the other order still releases",
          "[semaphore][S-07][cancellation]") {
    // Cancel first, then release in the same tick: the cancelled waiter is gone,
    // the permit stays free.
    run_test([]() -> task<void> {
        semaphore s(1);
        auto held = co_await s.acquire();
        acq_log w;
        auto body = [&](task_group& tg) -> task<void> {
            auto h = tg.spawn(acquire_op(s, w));
            co_await ticks(1);
            h.cancel();
            held.release();
            CHECK(s.available() == 1);
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(w.cancelled);
        CHECK_FALSE(w.acquired);
        CHECK(s.available() == 1);
    });
}

TEST_CASE("S-08 several releases wake several waiters; later arrivals do not barge",
          "[semaphore][S-08]") {
    run_test([]() -> task<void> {
        semaphore s(3);
        auto taken1 = co_await s.acquire();
        auto taken2 = co_await s.acquire();
        std::vector<int> order;
        acq_log c1, c2, c3, c4;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(acquire_op(s, c1, &order, 1, 10)); // acquires
            tg.spawn(acquire_op(s, c2, &order, 2, 10)); // waits
            tg.spawn(acquire_op(s, c3, &order, 3, 10)); // waits
            co_await ticks(1);
            CHECK(order == std::vector<int>{1});
            tg.spawn(acquire_op(s, c4, &order, 4)); // runs after the releases
            taken1.release();
            taken2.release();
            CHECK(s.available() == 0);
            co_await ticks(1);
            CHECK(order == std::vector<int>{1, 2, 3});
            CHECK_FALSE(c4.acquired); // the only waiter
            CHECK(s.available() == 0);
        };
        co_await tether::with_task_group(body);
        CHECK(order == std::vector<int>{1, 2, 3, 4});
        CHECK(s.available() == 3);
    });
}

TEST_CASE("S-09 no waiter is stranded while permits are free", "[semaphore][S-09]") {
    run_test([]() -> task<void> {
        semaphore s(3);
        auto r1 = co_await s.acquire(); // Semaphore(0): three releases to come
        auto r2 = co_await s.acquire();
        auto r3 = co_await s.acquire();
        std::vector<int> acquired;
        auto c1 = [&]() -> task<void> {
            auto p = co_await s.acquire();
            acquired.push_back(1);
            co_await ticks(3);
        };
        auto c2 = [&]() -> task<void> {
            r1.release(); // handed straight to c1
            CHECK(s.available() == 0);
            r2.release();
            r3.release();
            CHECK(s.available() == 2);
            auto p = co_await s.acquire(); // at once: no waiter is queued
            acquired.push_back(2);
            co_await ticks(3);
        };
        auto c3 = [&]() -> task<void> {
            auto p = co_await s.acquire();
            acquired.push_back(3);
            co_await ticks(3);
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(c1());
            co_await ticks(1);
            tg.spawn(c2());
            tg.spawn(c3());
            co_await ticks(2);
            // All three hold a permit with no further release; c1's was granted first.
            CHECK(acquired.size() == 3);
            CHECK(s.available() == 0);
        };
        co_await tether::with_task_group(body);
        CHECK(acquired == std::vector<int>{2, 3, 1}); // the order their code ran
        CHECK(s.available() == 3);
    });
}

// ---------------------------------------------------------------------------
// Matrix: fast path / suspended × cancelled before / after wake-up

TEST_CASE("matrix: acquire in a cancelled scope throws and takes no permit",
          "[semaphore][matrix][cancellation]") {
    run_test([]() -> task<void> {
        semaphore s(1);
        auto attempt = [&](cancel_scope& sc) -> task<void> {
            sc.cancel();
            auto p = co_await s.acquire(); // a permit is free: the fast path
            FAIL("unreachable");
        };
        auto r = co_await tether::with_cancel_scope(attempt);
        CHECK_FALSE(r);
        CHECK(s.available() == 1);
    });
}

TEST_CASE("matrix: acquire suspended and cancelled before wake-up did not happen",
          "[semaphore][matrix][cancellation]") {
    run_test([]() -> task<void> {
        semaphore s(1);
        auto held = co_await s.acquire();
        acq_log w1, w2;
        auto body = [&](task_group& tg) -> task<void> {
            auto h1 = tg.spawn(acquire_op(s, w1));
            tg.spawn(acquire_op(s, w2));
            co_await ticks(1);
            h1.cancel();
            held.release(); // goes to w2, the next in line
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(w1.cancelled);
        CHECK_FALSE(w1.acquired);
        CHECK(w2.acquired);
        CHECK(s.available() == 1);
    });
}

TEST_CASE("matrix: acquire woken then cancelled returns the permit; the next point releases it",
          "[semaphore][matrix][cancellation]") {
    run_test([]() -> task<void> {
        semaphore s(1);
        auto held = co_await s.acquire();
        acq_log w1, w2;
        auto body = [&](task_group& tg) -> task<void> {
            auto h1 = tg.spawn(acquire_op(s, w1));
            tg.spawn(acquire_op(s, w2));
            co_await ticks(1);
            held.release(); // handed to w1
            h1.cancel();    // before w1 runs
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(w1.acquired);
        CHECK(w1.next_point_threw);
        CHECK(w2.acquired); // w1's permit passed on when it unwound
        CHECK(s.available() == 1);
    });
}

TEST_CASE("semaphore under load: a limit of 4 is never exceeded and every task gets through",
          "[semaphore][stress]") {
    run_test([]() -> task<void> {
        semaphore s(4);
        int inside = 0, max_inside = 0, done = 0;
        auto worker = [&]() -> task<void> {
            for (int i = 0; i < 50; ++i) {
                auto p = co_await s.acquire();
                max_inside = std::max(max_inside, ++inside);
                co_await tether::yield_now();
                --inside;
            }
            ++done;
        };
        auto body = [&](task_group& tg) -> task<void> {
            for (int i = 0; i < 64; ++i) tg.spawn(worker());
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(max_inside == 4);
        CHECK(done == 64);
        CHECK(s.available() == 4);
    });
}
