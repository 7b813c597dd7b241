// Tests of tether::circuit_breaker and keyed_circuit_breakers (DESIGN.md §8), all on
// virtual time.
#include <tether/resilience/circuit_breaker.hpp>

#include <tether/cancel_scope.hpp>
#include <tether/task_group.hpp>
#include <tether/timeout.hpp>

#include "support/run.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using tether::circuit_state;
using tether_test::run_test;

static_assert(!std::is_copy_constructible_v<tether::circuit_breaker>);
static_assert(!std::is_move_constructible_v<tether::circuit_breaker>);

namespace {

using transition = std::pair<circuit_state, circuit_state>;

tether::task<int> succeed(int v = 1) {
    co_return v;
}

tether::task<int> fail(std::string what = "down") {
    throw std::runtime_error(std::move(what));
    co_return 0;
}

tether::task<int> slow(tether::clock::duration d, bool ok) {
    co_await tether::sleep_for(d);
    if (!ok) throw std::runtime_error("slow failure");
    co_return 2;
}

enum class outcome { value, error, open, cancelled };

/// Awaits `work` through `cb` and says how it ended (keeps Catch2 macros free of
/// co_await, whose state must not live across a suspension).
template <class A>
tether::task<outcome> attempt(tether::circuit_breaker& cb, A work,
                              tether::clock::duration* retry_after = nullptr) {
    try {
        co_await cb.call(std::move(work));
        co_return outcome::value;
    } catch (const tether::circuit_open_error& e) {
        if (retry_after) *retry_after = e.retry_after();
        co_return outcome::open;
    } catch (const tether::cancelled_error&) {
        co_return outcome::cancelled;
    } catch (const std::exception&) {
        co_return outcome::error;
    }
}

/// `co_await expect(cb, work, outcome::x)`: attempt() and CHECK the outcome.
template <class A>
tether::task<> expect(tether::circuit_breaker& cb, A work, outcome expected,
                      tether::clock::duration* retry_after = nullptr,
                      int line = __builtin_LINE()) { // std::source_location: not in clang 14
    const outcome got = co_await attempt(cb, std::move(work), retry_after);
    INFO("expected at line " << line);
    CHECK(got == expected);
}

tether::circuit_breaker_options options(std::vector<transition>* log = nullptr) {
    tether::circuit_breaker_options o;
    o.failure_threshold = 3;
    o.recovery_timeout = 10s;
    if (log)
        o.on_state_change = [log](circuit_state a, circuit_state b) { log->push_back({a, b}); };
    return o;
}

} // namespace

TEST_CASE("consecutive failures open the circuit; while open calls fail fast without running",
          "[circuit_breaker]") {
    std::vector<transition> log;
    auto t = [&]() -> tether::task<> {
        tether::circuit_breaker cb(options(&log));
        co_await expect(cb, fail(), outcome::error);
        co_await expect(cb, fail(), outcome::error);
        co_await expect(cb, succeed(), outcome::value); // resets the count
        CHECK(cb.consecutive_failures() == 0);
        co_await expect(cb, fail(), outcome::error);
        co_await expect(cb, fail(), outcome::error);
        CHECK(cb.state() == circuit_state::closed);
        co_await expect(cb, fail(), outcome::error);
        CHECK(cb.state() == circuit_state::open);

        bool ran = false;
        auto probe = [&]() -> tether::task<int> {
            ran = true;
            co_return 1;
        };
        tether::clock::duration retry_after{};
        co_await expect(cb, probe(), outcome::open, &retry_after);
        CHECK(retry_after == 10s);
        co_await tether::sleep_for(4s);
        co_await expect(cb, probe(), outcome::open, &retry_after);
        CHECK(retry_after == 6s);
        CHECK_FALSE(ran);
    };
    run_test(t);
    CHECK(log == std::vector<transition>{{circuit_state::closed, circuit_state::open}});
}

TEST_CASE("after the recovery timeout a probe goes through; its success closes the circuit",
          "[circuit_breaker]") {
    std::vector<transition> log;
    auto t = [&]() -> tether::task<> {
        tether::circuit_breaker cb(options(&log));
        for (int i = 0; i < 3; ++i) co_await attempt(cb, fail());
        REQUIRE(cb.state() == circuit_state::open);
        co_await tether::sleep_for(10s);
        CHECK(cb.state() == circuit_state::open); // lazily: turns half-open at the next call
        const int v = co_await cb.call(succeed(7));
        CHECK(v == 7);
        CHECK(cb.state() == circuit_state::closed);
        co_await expect(cb, succeed(), outcome::value);
    };
    run_test(t);
    CHECK(log == std::vector<transition>{{circuit_state::closed, circuit_state::open},
                                         {circuit_state::open, circuit_state::half_open},
                                         {circuit_state::half_open, circuit_state::closed}});
}

TEST_CASE("a failed probe opens the circuit again for another recovery timeout",
          "[circuit_breaker]") {
    std::vector<transition> log;
    auto t = [&]() -> tether::task<> {
        tether::circuit_breaker cb(options(&log));
        for (int i = 0; i < 3; ++i) co_await attempt(cb, fail());
        co_await tether::sleep_for(10s);
        co_await expect(cb, slow(1s, false), outcome::error);
        CHECK(cb.state() == circuit_state::open);
        tether::clock::duration retry_after{};
        co_await expect(cb, succeed(), outcome::open, &retry_after);
        CHECK(retry_after == 10s); // counted from the failed probe (at 11 s)
        co_await tether::sleep_for(10s);
        co_await expect(cb, succeed(), outcome::value);
        CHECK(cb.state() == circuit_state::closed);
    };
    run_test(t);
    CHECK(log == std::vector<transition>{{circuit_state::closed, circuit_state::open},
                                         {circuit_state::open, circuit_state::half_open},
                                         {circuit_state::half_open, circuit_state::open},
                                         {circuit_state::open, circuit_state::half_open},
                                         {circuit_state::half_open, circuit_state::closed}});
}

TEST_CASE("while half-open, calls beyond the probe limit fail fast", "[circuit_breaker]") {
    SECTION("all probes succeed: the circuit closes") {
        std::vector<outcome> results(4, outcome::cancelled);
        tether::clock::duration rejected_retry_after{};
        auto t = [&]() -> tether::task<> {
            auto o = options();
            o.half_open_max_calls = 2;
            tether::circuit_breaker cb(o);
            for (int i = 0; i < 3; ++i) co_await attempt(cb, fail());
            co_await tether::sleep_for(10s);
            auto caller = [&](std::size_t i) -> tether::task<> {
                results[i] = co_await attempt(cb, slow(1s, true), &rejected_retry_after);
            };
            auto body = [&](tether::task_group& tg) -> tether::task<> {
                for (std::size_t i = 0; i < 3; ++i) tg.spawn(caller(i));
                co_await tether::yield_now();
                CHECK(cb.state() == circuit_state::half_open);
                co_return;
            };
            co_await tether::with_task_group(body);
            CHECK(cb.state() == circuit_state::closed);
            results[3] = co_await attempt(cb, succeed());
        };
        run_test(t);
        CHECK(results ==
              std::vector<outcome>{outcome::value, outcome::value, outcome::open, outcome::value});
        CHECK(rejected_retry_after == 10s);
    }
    SECTION("one probe fails: the circuit opens; a late probe success changes nothing") {
        std::vector<transition> log;
        auto t = [&]() -> tether::task<> {
            auto o = options(&log);
            o.half_open_max_calls = 2;
            tether::circuit_breaker cb(o);
            for (int i = 0; i < 3; ++i) co_await attempt(cb, fail());
            co_await tether::sleep_for(10s);
            std::vector<outcome> r(2);
            auto caller = [&](std::size_t i, tether::clock::duration d, bool ok) -> tether::task<> {
                r[i] = co_await attempt(cb, slow(d, ok));
            };
            auto body = [&](tether::task_group& tg) -> tether::task<> {
                tg.spawn(caller(0, 1s, false));
                tg.spawn(caller(1, 2s, true));
                co_return;
            };
            co_await tether::with_task_group(body);
            CHECK(r == std::vector<outcome>{outcome::error, outcome::value});
            CHECK(cb.state() == circuit_state::open);
            tether::clock::duration retry_after{};
            co_await expect(cb, succeed(), outcome::open, &retry_after);
            CHECK(retry_after == 9s); // opened at 11 s by the failed probe; now 12 s
        };
        run_test(t);
        CHECK(log == std::vector<transition>{{circuit_state::closed, circuit_state::open},
                                             {circuit_state::open, circuit_state::half_open},
                                             {circuit_state::half_open, circuit_state::open}});
    }
}

TEST_CASE("cancellations count neither as failures nor as successes",
          "[circuit_breaker][cancellation]") {
    SECTION("closed: a call cancelled from outside does not count") {
        auto t = []() -> tether::task<> {
            tether::circuit_breaker cb(options());
            co_await attempt(cb, fail());
            co_await attempt(cb, fail());
            REQUIRE(cb.consecutive_failures() == 2);
            // A deadline of the caller, outside the call: the call sees cancelled_error.
            auto body = [&](tether::cancel_scope& s) -> tether::task<> {
                s.reschedule(1s);
                co_await cb.call(slow(1h, true));
            };
            const bool completed = co_await tether::with_cancel_scope(body);
            CHECK_FALSE(completed);
            CHECK(cb.consecutive_failures() == 2); // not 3, not reset to 0
            CHECK(cb.state() == circuit_state::closed);
            // A task that swallows its cancellation and throws something else while
            // its caller is cancelled does not count either.
            auto masking = []() -> tether::task<int> {
                try {
                    co_await tether::sleep_for(1h);
                } catch (const tether::cancelled_error&) {
                }
                throw std::runtime_error("connection reset while shutting down");
            };
            auto body2 = [&](tether::cancel_scope& s) -> tether::task<> {
                s.reschedule(1s);
                co_await cb.call(masking());
            };
            bool threw = false;
            try {
                co_await tether::with_cancel_scope(body2);
            } catch (const std::runtime_error&) {
                threw = true;
            }
            CHECK(threw);
            CHECK(cb.consecutive_failures() == 2);
            co_await attempt(cb, fail());
            CHECK(cb.state() == circuit_state::open);
        };
        run_test(t);
    }
    SECTION("a timeout inside the call is a failure of the service") {
        auto t = []() -> tether::task<> {
            tether::circuit_breaker cb(options());
            for (int i = 0; i < 3; ++i) {
                bool timed_out = false;
                try {
                    co_await cb.call(tether::with_timeout(1s, slow(1h, true)));
                } catch (const tether::timeout_error&) {
                    timed_out = true;
                }
                CHECK(timed_out);
            }
            CHECK(cb.state() == circuit_state::open);
        };
        run_test(t);
    }
    SECTION("half-open: a cancelled probe gives its slot back") {
        std::vector<transition> log;
        auto t = [&]() -> tether::task<> {
            tether::circuit_breaker cb(options(&log));
            for (int i = 0; i < 3; ++i) co_await attempt(cb, fail());
            co_await tether::sleep_for(10s);
            outcome first = outcome::value;
            auto prober = [&]() -> tether::task<> { first = co_await attempt(cb, slow(1h, true)); };
            auto body = [&](tether::task_group& tg) -> tether::task<> {
                tether::child<void> p = tg.spawn(prober());
                co_await tether::sleep_for(1s);
                CHECK(cb.state() == circuit_state::half_open);
                co_await expect(cb, succeed(), outcome::open); // slot taken
                p.cancel();
                co_return;
            };
            co_await tether::with_task_group(body);
            CHECK(first == outcome::cancelled);
            CHECK(cb.state() == circuit_state::half_open);
            co_await expect(cb, succeed(), outcome::value); // the slot is free
            CHECK(cb.state() == circuit_state::closed);
        };
        run_test(t);
        CHECK(log.size() == 3);
    }
    SECTION("call is a cancellation point: in a cancelled scope the work never runs") {
        auto t = []() -> tether::task<> {
            tether::circuit_breaker cb(options());
            bool ran = false;
            auto work = [&]() -> tether::task<int> {
                ran = true;
                co_return 1;
            };
            auto body = [&](tether::cancel_scope& s) -> tether::task<> {
                s.cancel();
                co_await cb.call(work());
            };
            const bool completed = co_await tether::with_cancel_scope(body);
            CHECK_FALSE(completed);
            CHECK_FALSE(ran);
        };
        run_test(t);
    }
}

TEST_CASE("is_failure decides what counts; an exception that does not count is a success",
          "[circuit_breaker]") {
    struct not_found : std::runtime_error {
        not_found() : std::runtime_error("404") {}
    };
    auto t = []() -> tether::task<> {
        auto o = options();
        o.is_failure = [](const std::exception_ptr& e) {
            try {
                std::rethrow_exception(e);
            } catch (const not_found&) {
                return false;
            } catch (...) {
                return true;
            }
        };
        tether::circuit_breaker cb(o);
        auto missing = []() -> tether::task<int> {
            throw not_found();
            co_return 0;
        };
        co_await attempt(cb, fail());
        co_await attempt(cb, fail());
        co_await expect(cb, missing(), outcome::error); // still thrown to the caller
        CHECK(cb.consecutive_failures() == 0);          // but the service answered
        for (int i = 0; i < 5; ++i) co_await attempt(cb, missing());
        CHECK(cb.state() == circuit_state::closed);
    };
    run_test(t);
}

TEST_CASE("values and exceptions pass through unchanged", "[circuit_breaker]") {
    auto t = []() -> tether::task<> {
        tether::circuit_breaker cb(options());
        const std::exception_ptr thrown = std::make_exception_ptr(std::runtime_error("boom"));
        auto rethrower = [&]() -> tether::task<std::string> {
            std::rethrow_exception(thrown);
            co_return "";
        };
        std::exception_ptr caught;
        try {
            co_await cb.call(rethrower());
        } catch (const std::runtime_error&) {
            caught = std::current_exception();
        }
        CHECK(caught == thrown);
        auto text = []() -> tether::task<std::string> { co_return "payload"; };
        const std::string s = co_await cb.call(text());
        CHECK(s == "payload");
        auto nothing = []() -> tether::task<> { co_return; };
        co_await cb.call(nothing());
        // Any tether awaitable, not only tasks.
        const int v = co_await cb.call(tether::with_timeout(1s, succeed(9)));
        CHECK(v == 9);
        CHECK_THROWS_AS(cb.call(tether::task<int>{}), tether::usage_error);
    };
    run_test(t);
}

TEST_CASE("ratio mode opens when the failure share of the window reaches the ratio",
          "[circuit_breaker][ratio]") {
    auto t = []() -> tether::task<> {
        tether::circuit_breaker_options o;
        o.failure_threshold = 0; // ratio only
        o.failure_ratio = 0.5;
        o.window_size = 6;
        o.minimum_calls = 4;
        o.recovery_timeout = 5s;
        tether::circuit_breaker cb(o);
        // 2 failures of 3 calls: below minimum_calls.
        co_await attempt(cb, fail());
        co_await attempt(cb, fail());
        co_await attempt(cb, succeed());
        CHECK(cb.state() == circuit_state::closed);
        // 2 of 4 = 50%, but a success never opens the circuit ...
        co_await attempt(cb, succeed());
        CHECK(cb.state() == circuit_state::closed);
        // ... a failure does: 3 of 5, not consecutive.
        co_await attempt(cb, fail());
        CHECK(cb.state() == circuit_state::open);
        co_await tether::sleep_for(5s);
        co_await expect(cb, succeed(), outcome::value);
        CHECK(cb.state() == circuit_state::closed);
        // The window slides: old failures drop out.
        for (int i = 0; i < 5; ++i) co_await attempt(cb, succeed());
        co_await attempt(cb, fail()); // 1 of 6
        co_await attempt(cb, fail()); // 2 of 6
        CHECK(cb.state() == circuit_state::closed);
        co_await attempt(cb, fail()); // 3 of 6
        CHECK(cb.state() == circuit_state::open);
    };
    run_test(t);
}

TEST_CASE("an outcome counts only in the state it was admitted in", "[circuit_breaker]") {
    auto t = []() -> tether::task<> {
        tether::circuit_breaker cb(options());
        outcome late = outcome::value;
        auto straggler = [&]() -> tether::task<> { late = co_await attempt(cb, slow(1s, false)); };
        auto body = [&](tether::task_group& tg) -> tether::task<> {
            tg.spawn(straggler()); // admitted while closed
            co_await tether::yield_now();
            for (int i = 0; i < 3; ++i) co_await attempt(cb, fail());
            CHECK(cb.state() == circuit_state::open);
        };
        co_await tether::with_task_group(body);
        CHECK(late == outcome::error); // its caller still sees the error ...
        tether::clock::duration retry_after{};
        co_await expect(cb, succeed(), outcome::open, &retry_after);
        CHECK(retry_after == 9s); // ... but the circuit did not reopen at 1 s
    };
    run_test(t);
}

TEST_CASE("reset closes the circuit and clears the counters", "[circuit_breaker]") {
    std::vector<transition> log;
    auto t = [&]() -> tether::task<> {
        tether::circuit_breaker cb(options(&log));
        for (int i = 0; i < 3; ++i) co_await attempt(cb, fail());
        cb.reset();
        CHECK(cb.state() == circuit_state::closed);
        co_await expect(cb, succeed(), outcome::value);
    };
    run_test(t);
    CHECK(log == std::vector<transition>{{circuit_state::closed, circuit_state::open},
                                         {circuit_state::open, circuit_state::closed}});
}

TEST_CASE("inconsistent options are a usage_error", "[circuit_breaker][usage]") {
    tether::circuit_breaker_options o;
    o.failure_threshold = 0;
    CHECK_THROWS_AS(tether::circuit_breaker(o), tether::usage_error);
    o = {};
    o.failure_ratio = 1.5;
    CHECK_THROWS_AS(tether::circuit_breaker(o), tether::usage_error);
    o = {};
    o.failure_ratio = 0.5;
    o.minimum_calls = o.window_size + 1;
    CHECK_THROWS_AS(tether::circuit_breaker(o), tether::usage_error);
    o = {};
    o.half_open_max_calls = 0;
    CHECK_THROWS_AS(tether::circuit_breaker(o), tether::usage_error);
    o = {};
    o.recovery_timeout = -1s;
    CHECK_THROWS_AS(tether::circuit_breaker(o), tether::usage_error);
    CHECK_NOTHROW(tether::circuit_breaker(5, 30s));
}

TEST_CASE("keyed breakers: one per key, independent, with the key in the callback",
          "[circuit_breaker][keyed]") {
    using key_transition = std::pair<std::string, transition>;
    std::vector<key_transition> log;
    auto t = [&]() -> tether::task<> {
        tether::keyed_circuit_breakers<std::string> breakers(
            options(), [&](const std::string& host, circuit_state a, circuit_state b) {
                log.push_back({host, {a, b}});
            });
        for (int i = 0; i < 3; ++i) {
            bool failed = false;
            try {
                co_await breakers.call("a.example", fail());
            } catch (const std::runtime_error&) {
                failed = true;
            }
            CHECK(failed);
        }
        const int v = co_await breakers.call("b.example", succeed(3));
        CHECK(v == 3);
        CHECK(breakers.size() == 2);
        REQUIRE(breakers.find("a.example"));
        CHECK(breakers.find("a.example")->state() == circuit_state::open);
        CHECK(breakers.get("b.example").state() == circuit_state::closed);
        CHECK(breakers.find("c.example") == nullptr);
        bool open = false;
        try {
            co_await breakers.call("a.example", succeed());
        } catch (const tether::circuit_open_error&) {
            open = true;
        }
        CHECK(open);
        // prune() drops only breakers that carry no information.
        CHECK(breakers.prune() == 1); // b.example
        CHECK(breakers.size() == 1);
        CHECK(breakers.find("b.example") == nullptr);
        CHECK(breakers.find("a.example") != nullptr);
    };
    run_test(t);
    CHECK(log ==
          std::vector<key_transition>{{"a.example", {circuit_state::closed, circuit_state::open}}});
}
