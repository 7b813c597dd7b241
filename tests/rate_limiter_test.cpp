// Tests of tether::rate_limiter (DESIGN.md §8), all on virtual time.
#include <tether/resilience/rate_limiter.hpp>

#include <tether/cancel_scope.hpp>
#include <tether/task_group.hpp>

#include "support/run.hpp"

#include <chrono>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using tether_test::run_test;
using ms = std::chrono::milliseconds;

static_assert(!std::is_copy_constructible_v<tether::rate_limiter>);
static_assert(!std::is_move_constructible_v<tether::rate_limiter>);

namespace {

tether::task<tether::clock::time_point> now() {
    co_return co_await tether::this_task::now();
}

tether::task<std::size_t> pending_timers() {
    auto ex = co_await tether::this_task::executor();
    co_return tether::detail::scheduler_for(ex.context()).pending_timers();
}

/// Who got tokens when (relative to t0), in order.
struct grant_log {
    tether::clock::time_point t0{};
    std::vector<std::string> who;
    std::vector<tether::clock::duration> when;

    tether::task<> record(std::string name) {
        const auto t = co_await tether::this_task::now();
        who.push_back(std::move(name));
        when.push_back(t - t0);
    }
};

} // namespace

TEST_CASE("the bucket starts full: a burst passes at once, the next acquire waits",
          "[rate_limiter]") {
    auto t = []() -> tether::task<> {
        tether::rate_limiter rl(100.0, 10);
        const auto t0 = co_await now();
        for (int i = 0; i < 10; ++i) co_await rl.acquire();
        const auto after_burst = co_await now();
        CHECK(after_burst == t0);
        CHECK(rl.available() == 0.0);
        co_await rl.acquire();
        const auto waited = co_await now() - t0;
        CHECK(waited == 10ms);
        co_await rl.acquire(3);
        const auto waited3 = co_await now() - t0;
        CHECK(waited3 == 40ms);
    };
    run_test(t);
}

TEST_CASE("over 10 s at 100/s with burst 10 the grants are rate x time + burst within 1%",
          "[rate_limiter][rate]") {
    SECTION("one task") {
        std::size_t count = 0;
        auto t = [&]() -> tether::task<> {
            tether::rate_limiter rl(100.0, 10);
            const auto t0 = co_await now();
            for (;;) {
                co_await rl.acquire();
                if (co_await now() - t0 > 10s) break;
                ++count;
            }
        };
        run_test(t);
        CHECK(std::abs(static_cast<double>(count) - 1010.0) <= 10.1);
        CHECK(count == 1010); // exact, in fact
    }
    SECTION("eight competing tasks") {
        std::size_t count = 0;
        auto t = [&]() -> tether::task<> {
            tether::rate_limiter rl(100.0, 10);
            const auto t0 = co_await now();
            auto worker = [&]() -> tether::task<> {
                for (;;) {
                    co_await rl.acquire();
                    if (co_await now() - t0 > 10s) co_return;
                    ++count;
                }
            };
            auto body = [&](tether::task_group& tg) -> tether::task<> {
                for (int i = 0; i < 8; ++i) tg.spawn(worker());
                co_return;
            };
            co_await tether::with_task_group(body);
        };
        run_test(t);
        CHECK(std::abs(static_cast<double>(count) - 1010.0) <= 10.1);
    }
    SECTION("a fractional rate, mixed request sizes") {
        std::size_t tokens = 0;
        auto t = [&]() -> tether::task<> {
            tether::rate_limiter rl(33.3, 7);
            const auto t0 = co_await now();
            for (std::size_t i = 0;; ++i) {
                const std::size_t n = 1 + i % 4;
                co_await rl.acquire(n);
                if (co_await now() - t0 > 10s) break;
                tokens += n;
            }
        };
        run_test(t);
        // rate x time + burst = 340; at most one request's worth (4) may be left
        // in the bucket at the end, waiting for the next request to fit.
        CHECK(tokens <= 340);
        CHECK(tokens >= 336);
    }
}

TEST_CASE("waiters are served in FIFO order: a large request at the head holds back small ones",
          "[rate_limiter][fifo]") {
    grant_log log;
    auto t = [&]() -> tether::task<> {
        tether::rate_limiter rl(co_await tether::this_task::executor(), 10.0, 5);
        log.t0 = co_await now();
        REQUIRE(rl.try_acquire(5)); // empty the bucket
        auto taker = [&](std::string name, std::size_t n) -> tether::task<> {
            co_await rl.acquire(n);
            co_await log.record(std::move(name));
        };
        auto body = [&](tether::task_group& tg) -> tether::task<> {
            tg.spawn(taker("big", 5));
            tg.spawn(taker("small1", 1));
            tg.spawn(taker("small2", 1));
            co_await tether::yield_now(); // all three are waiting now
            CHECK(rl.waiting() == 3);
            CHECK_FALSE(rl.try_acquire(1)); // no barging past waiters
            co_await tether::sleep_for(150ms);
            CHECK_FALSE(rl.try_acquire(1)); // 1.5 tokens, but the head needs 5
            CHECK(rl.waiting() == 3);
        };
        co_await tether::with_task_group(body);
        CHECK(rl.waiting() == 0);
    };
    run_test(t);
    CHECK(log.who == std::vector<std::string>{"big", "small1", "small2"});
    CHECK(log.when == std::vector<tether::clock::duration>{500ms, 600ms, 700ms});
}

TEST_CASE("the limiter keeps one deadline armed however many tasks wait", "[rate_limiter]") {
    auto t = []() -> tether::task<> {
        tether::rate_limiter rl(co_await tether::this_task::executor(), 1000.0, 1);
        REQUIRE(rl.try_acquire());
        int served = 0;
        auto taker = [&]() -> tether::task<> {
            co_await rl.acquire();
            ++served;
        };
        auto body = [&](tether::task_group& tg) -> tether::task<> {
            for (int i = 0; i < 100; ++i) tg.spawn(taker());
            co_await tether::yield_now();
            CHECK(rl.waiting() == 100);
            const std::size_t timers = co_await pending_timers();
            CHECK(timers == 1);
        };
        co_await tether::with_task_group(body);
        CHECK(served == 100);
    };
    run_test(t);
}

TEST_CASE("a cancelled waiter takes no tokens and the next waiter moves up",
          "[rate_limiter][cancellation]") {
    SECTION("cancelling the head serves the next waiter at once if the bucket allows") {
        grant_log log;
        bool big_cancelled = false;
        auto t = [&]() -> tether::task<> {
            tether::rate_limiter rl(co_await tether::this_task::executor(), 10.0, 5);
            log.t0 = co_await now();
            REQUIRE(rl.try_acquire(5));
            auto big = [&]() -> tether::task<> {
                try {
                    co_await rl.acquire(5);
                } catch (const tether::cancelled_error&) {
                    big_cancelled = true;
                    throw;
                }
                co_await log.record("big");
            };
            auto small = [&]() -> tether::task<> {
                co_await rl.acquire(1);
                co_await log.record("small");
            };
            auto body = [&](tether::task_group& tg) -> tether::task<> {
                tether::child<void> b = tg.spawn(big());
                tg.spawn(small());
                co_await tether::sleep_for(200ms); // 2 tokens in the bucket
                b.cancel();
                co_await tether::yield_now();
                co_await tether::yield_now();
                // small took 1 of the 2 tokens; the cancelled acquire took none.
                CHECK(std::abs(rl.available() - 1.0) < 1e-9);
            };
            co_await tether::with_task_group(body);
        };
        run_test(t);
        CHECK(big_cancelled);
        CHECK(log.who == std::vector<std::string>{"small"});
        CHECK(log.when == std::vector<tether::clock::duration>{200ms});
    }
    SECTION("cancelling a waiter behind the head keeps the others' order and times") {
        grant_log log;
        auto t = [&]() -> tether::task<> {
            tether::rate_limiter rl(co_await tether::this_task::executor(), 10.0, 5);
            log.t0 = co_await now();
            REQUIRE(rl.try_acquire(5));
            auto taker = [&](std::string name, std::size_t n) -> tether::task<> {
                co_await rl.acquire(n);
                co_await log.record(std::move(name));
            };
            auto body = [&](tether::task_group& tg) -> tether::task<> {
                tg.spawn(taker("a", 2));
                tether::child<void> b = tg.spawn(taker("b", 2));
                tg.spawn(taker("c", 1));
                co_await tether::sleep_for(100ms);
                b.cancel();
            };
            co_await tether::with_task_group(body);
        };
        run_test(t);
        CHECK(log.who == std::vector<std::string>{"a", "c"});
        CHECK(log.when == std::vector<tether::clock::duration>{200ms, 300ms});
    }
    SECTION("an acquire in a cancelled scope throws and takes nothing, even with tokens there") {
        auto t = []() -> tether::task<> {
            tether::rate_limiter rl(10.0, 5);
            bool reached = false;
            auto body = [&](tether::cancel_scope& s) -> tether::task<> {
                s.cancel();
                co_await rl.acquire(2);
                reached = true;
            };
            const bool completed = co_await tether::with_cancel_scope(body);
            CHECK_FALSE(completed);
            CHECK_FALSE(reached);
            CHECK(rl.available() == 5.0);
        };
        run_test(t);
    }
    SECTION("a waiter served and then cancelled before it runs keeps its tokens") {
        bool returned = false;
        bool cancelled_later = false;
        auto t = [&]() -> tether::task<> {
            tether::rate_limiter rl(co_await tether::this_task::executor(), 1.0, 2);
            REQUIRE(rl.try_acquire(2));
            auto head = [&]() -> tether::task<> { co_await rl.acquire(2); };
            auto taker = [&]() -> tether::task<> {
                co_await rl.acquire(1);
                returned = true; // the acquire happened
                try {
                    co_await tether::yield_now(); // the next cancellation point
                } catch (const tether::cancelled_error&) {
                    cancelled_later = true;
                    throw;
                }
            };
            auto body = [&](tether::task_group& tg) -> tether::task<> {
                tether::child<void> h = tg.spawn(head());
                tether::child<void> w = tg.spawn(taker());
                co_await tether::sleep_for(1500ms);
                REQUIRE(rl.waiting() == 2);
                h.cancel(); // serves w from the 1.5 tokens (queued, not yet run) ...
                CHECK(rl.waiting() == 0);
                w.cancel(); // ... and w's cancellation comes after
                co_return;
            };
            co_await tether::with_task_group(body);
            CHECK(std::abs(rl.available() - 0.5) < 1e-9); // w's token is gone, h took none
        };
        run_test(t);
        CHECK(returned);
        CHECK(cancelled_later);
    }
}

TEST_CASE("set_rate takes effect at once and re-evaluates the waiters", "[rate_limiter][rate]") {
    SECTION("a faster rate serves the head sooner") {
        tether::clock::duration served_at{};
        auto t = [&]() -> tether::task<> {
            tether::rate_limiter rl(co_await tether::this_task::executor(), 1.0, 1);
            const auto t0 = co_await now();
            REQUIRE(rl.try_acquire());
            auto taker = [&]() -> tether::task<> {
                co_await rl.acquire();
                served_at = co_await now() - t0;
            };
            auto body = [&](tether::task_group& tg) -> tether::task<> {
                tg.spawn(taker());
                co_await tether::sleep_for(100ms); // 0.1 token at 1/s
                rl.set_rate(10.0);                 // 0.9 more at 10/s: 90 ms
            };
            co_await tether::with_task_group(body);
        };
        run_test(t);
        CHECK(served_at == 190ms);
    }
    SECTION("rate 0 pauses the refill until the rate is raised") {
        tether::clock::duration served_at{};
        auto t = [&]() -> tether::task<> {
            tether::rate_limiter rl(0.0, 3);
            const auto t0 = co_await now();
            co_await rl.acquire(3); // the initial burst is there
            auto taker = [&]() -> tether::task<> {
                co_await rl.acquire();
                served_at = co_await now() - t0;
            };
            auto body = [&](tether::task_group& tg) -> tether::task<> {
                tg.spawn(taker());
                co_await tether::sleep_for(1h);
                CHECK(rl.waiting() == 1);
                rl.set_rate(2.0); // 500 ms for one token
            };
            co_await tether::with_task_group(body);
        };
        run_test(t);
        CHECK(served_at == 1h + 500ms);
    }
    SECTION("a smaller burst drops tokens above it; it may not strand a waiter") {
        auto t = []() -> tether::task<> {
            tether::rate_limiter rl(co_await tether::this_task::executor(), 10.0, 10);
            rl.set_rate(10.0, 4);
            CHECK(rl.burst() == 4);
            CHECK(rl.available() == 4.0);
            CHECK_THROWS_AS(rl.acquire(5), tether::usage_error);
            REQUIRE(rl.try_acquire(4));
            auto taker = [&]() -> tether::task<> { co_await rl.acquire(3); };
            auto body = [&](tether::task_group& tg) -> tether::task<> {
                tg.spawn(taker());
                co_await tether::yield_now();
                CHECK_THROWS_AS(rl.set_rate(10.0, 2), tether::usage_error);
                CHECK(rl.burst() == 4); // unchanged
            };
            co_await tether::with_task_group(body);
        };
        run_test(t);
    }
}

TEST_CASE("try_acquire never waits and sees the refill", "[rate_limiter]") {
    auto t = []() -> tether::task<> {
        // Bound to this io_context's (virtual) clock before any acquire() is awaited.
        tether::rate_limiter rl(co_await tether::this_task::executor(), 100.0, 2);
        CHECK(rl.try_acquire(2));
        CHECK_FALSE(rl.try_acquire());
        co_await tether::sleep_for(5ms);
        CHECK_FALSE(rl.try_acquire()); // half a token
        CHECK(std::abs(rl.available() - 0.5) < 1e-9);
        co_await tether::sleep_for(5ms);
        CHECK(rl.try_acquire());
        CHECK(rl.try_acquire(0));
        co_await tether::sleep_for(1h);
        CHECK(rl.available() == 2.0); // capped at the burst
    };
    run_test(t);
}

TEST_CASE("a request larger than the burst or an invalid rate is a usage_error",
          "[rate_limiter][usage]") {
    tether::rate_limiter rl(10.0, 3);
    CHECK_THROWS_AS(rl.acquire(4), tether::usage_error);
    CHECK_THROWS_AS(rl.try_acquire(4), tether::usage_error);
    CHECK_THROWS_AS(tether::rate_limiter(10.0, 0), tether::usage_error);
    CHECK_THROWS_AS(tether::rate_limiter(-1.0, 1), tether::usage_error);
    CHECK_THROWS_AS(tether::rate_limiter(std::nan(""), 1), tether::usage_error);
    CHECK_THROWS_AS(rl.set_rate(-2.0), tether::usage_error);
    CHECK(rl.rate() == 10.0);
}

TEST_CASE("plain code between awaits is charged at one clock reading", "[rate_limiter][rate]") {
    // Within one stretch of a task (no suspension), the fast path reuses the
    // first clock reading; virtual time makes every reading exact anyway. This
    // checks that a request the cached reading cannot serve re-reads the clock.
    auto t = []() -> tether::task<> {
        tether::rate_limiter rl(100.0, 1);
        co_await rl.acquire();
        co_await tether::sleep_for(10ms);
        co_await rl.acquire(); // a new stretch: one token refilled
        const auto t0 = co_await now();
        co_await rl.acquire(); // must wait 10 ms, not be served from a stale reading
        const auto waited = co_await now() - t0;
        CHECK(waited == 10ms);
    };
    run_test(t);
}
