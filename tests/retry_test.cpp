// Tests of tether::retry (DESIGN.md §8), all on virtual time.
#include <tether/resilience/retry.hpp>

#include <tether/cancel_scope.hpp>
#include <tether/shield.hpp>
#include <tether/task_group.hpp>
#include <tether/timeout.hpp>

#include "support/run.hpp"

#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using tether_test::run_test;
using ms = std::chrono::milliseconds;

namespace {

/// A failure that carries a server-supplied delay (HTTP 429 with Retry-After).
struct retry_after_error : std::runtime_error {
    explicit retry_after_error(tether::clock::duration d)
        : std::runtime_error("429 Too Many Requests"), delay(d) {}
    tether::clock::duration delay;
};

/// Records what a retried operation saw: attempt start times relative to t0.
struct attempt_log {
    tether::clock::time_point t0{};
    std::vector<tether::clock::duration> starts;
    std::vector<std::exception_ptr> thrown;

    tether::task<> begin() {
        const auto now = co_await tether::this_task::now();
        if (starts.empty() && t0 == tether::clock::time_point{}) t0 = now;
        starts.push_back(now - t0);
    }
};

tether::task<tether::clock::time_point> now() {
    co_return co_await tether::this_task::now();
}

/// True if awaiting `work` throws an E; other exceptions escape. (Catch2's
/// macros must not contain a co_await: their state would live across suspensions.)
template <class E, class A>
tether::task<bool> throws_as(A work) {
    try {
        co_await std::move(work);
    } catch (const E&) {
        co_return true;
    }
    co_return false;
}

tether::retry_policy exact_policy() {
    tether::retry_policy p;
    p.max_attempts = 5;
    p.initial_delay = 100ms;
    p.multiplier = 2.0;
    p.max_delay = 10s;
    p.jitter = tether::retry_jitter::none;
    return p;
}

std::vector<tether::clock::duration> durations(std::initializer_list<ms> l) {
    return {l.begin(), l.end()};
}

} // namespace

TEST_CASE("retry sleeps the exponential backoff between attempts and returns the first success",
          "[retry]") {
    attempt_log log;
    std::vector<tether::retry_event> events;
    auto t = [&]() -> tether::task<int> {
        tether::retry_policy policy = exact_policy();
        policy.on_retry = [&](const tether::retry_event& e) { events.push_back(e); };
        auto attempt = [&]() -> tether::task<int> {
            co_await log.begin();
            if (log.starts.size() < 4) throw std::runtime_error("flaky");
            co_return 42;
        };
        co_return co_await tether::retry(policy, attempt);
    };
    CHECK(run_test(t) == 42);
    CHECK(log.starts == durations({0ms, 100ms, 300ms, 700ms}));
    REQUIRE(events.size() == 3);
    for (std::size_t i = 0; i < events.size(); ++i) {
        CHECK(events[i].attempt == i + 1);
        CHECK(events[i].delay == tether::clock::duration(100ms) * (1 << i));
        CHECK_FALSE(events[i].server_delay);
        CHECK(events[i].error);
    }
}

TEST_CASE("retry caps the backoff at max_delay", "[retry]") {
    attempt_log log;
    auto t = [&]() -> tether::task<> {
        tether::retry_policy policy = exact_policy();
        policy.multiplier = 10.0;
        policy.max_delay = 500ms;
        auto attempt = [&]() -> tether::task<> {
            co_await log.begin();
            if (log.starts.size() < 5) throw std::runtime_error("flaky");
        };
        co_await tether::retry(policy, attempt);
    };
    run_test(t);
    CHECK(log.starts == durations({0ms, 100ms, 600ms, 1100ms, 1600ms}));
    tether::retry_policy p = exact_policy();
    p.multiplier = 10.0;
    p.max_delay = 500ms;
    CHECK(p.backoff(1) == 100ms);
    CHECK(p.backoff(2) == 500ms);
    CHECK(p.backoff(1000) == 500ms); // no overflow
}

TEST_CASE("retry rethrows the last attempt's exception object when attempts run out", "[retry]") {
    attempt_log log;
    auto t = [&]() -> tether::task<> {
        tether::retry_policy policy = exact_policy();
        policy.max_attempts = 3;
        auto attempt = [&]() -> tether::task<int> {
            co_await log.begin();
            log.thrown.push_back(std::make_exception_ptr(
                std::runtime_error("attempt " + std::to_string(log.starts.size()))));
            std::rethrow_exception(log.thrown.back());
        };
        std::exception_ptr caught;
        try {
            (void)co_await tether::retry(policy, attempt);
        } catch (const std::runtime_error& e) {
            CHECK(std::string(e.what()) == "attempt 3");
            caught = std::current_exception();
        }
        REQUIRE(caught);
        CHECK(caught == log.thrown.back()); // the same object, not a copy
        const auto elapsed = co_await now() - log.t0;
        CHECK(elapsed == 300ms); // no sleep after the last attempt
    };
    run_test(t);
    CHECK(log.starts == durations({0ms, 100ms, 300ms}));
}

TEST_CASE("retry retries only the errors the predicate accepts", "[retry]") {
    SECTION("a rejected error ends the retry at once") {
        attempt_log log;
        auto t = [&]() -> tether::task<> {
            tether::retry_policy policy = exact_policy();
            policy.retry_if = tether::retry_on<std::system_error>();
            auto attempt = [&]() -> tether::task<> {
                co_await log.begin();
                throw std::invalid_argument("bad request");
            };
            const bool threw =
                co_await throws_as<std::invalid_argument>(tether::retry(policy, attempt));
            CHECK(threw);
        };
        run_test(t);
        CHECK(log.starts.size() == 1);
    }
    SECTION("accepted errors are retried, a rejected one stops") {
        attempt_log log;
        std::vector<bool> verdicts;
        auto t = [&]() -> tether::task<> {
            tether::retry_policy policy = exact_policy();
            policy.retry_if = [&](const std::exception_ptr& e) {
                verdicts.push_back(tether::retry_on<std::system_error>()(e));
                return verdicts.back();
            };
            auto attempt = [&]() -> tether::task<> {
                co_await log.begin();
                if (log.starts.size() < 3)
                    throw std::system_error(std::make_error_code(std::errc::connection_refused));
                throw std::invalid_argument("bad request");
            };
            const bool threw =
                co_await throws_as<std::invalid_argument>(tether::retry(policy, attempt));
            CHECK(threw);
        };
        run_test(t);
        CHECK(log.starts == durations({0ms, 100ms, 300ms}));
        CHECK(verdicts == std::vector<bool>{true, true, false});
    }
    SECTION("retry_on matches derived types") {
        auto pred = tether::retry_on<std::runtime_error, std::system_error>();
        CHECK(pred(std::make_exception_ptr(std::range_error("x"))));
        CHECK_FALSE(pred(std::make_exception_ptr(std::logic_error("x"))));
        CHECK_FALSE(pred(std::exception_ptr{}));
    }
}

TEST_CASE("retry never retries cancelled_error", "[retry][cancellation]") {
    attempt_log log;
    int predicate_calls = 0;
    auto t = [&]() -> tether::task<> {
        tether::retry_policy policy = exact_policy();
        policy.retry_if = [&](const std::exception_ptr&) {
            ++predicate_calls;
            return true;
        };
        auto attempt = [&]() -> tether::task<> {
            co_await log.begin();
            throw tether::cancelled_error("thrown by the attempt");
        };
        const bool threw =
            co_await throws_as<tether::cancelled_error>(tether::retry(policy, attempt));
        CHECK(threw);
    };
    run_test(t);
    CHECK(log.starts.size() == 1);
    CHECK(predicate_calls == 0);
}

TEST_CASE("cancelling the caller during a backoff sleep ends the retry at once",
          "[retry][cancellation]") {
    attempt_log log;
    std::optional<tether::clock::duration> ended_at;
    int retries = 0;
    auto t = [&]() -> tether::task<> {
        log.t0 = co_await now();
        tether::retry_policy policy = exact_policy();
        policy.on_retry = [&](const tether::retry_event&) { ++retries; };
        auto attempt = [&]() -> tether::task<> {
            co_await log.begin();
            throw std::runtime_error("down");
        };
        auto retrier = [&]() -> tether::task<> {
            bool cancelled = false;
            try {
                co_await tether::retry(policy, attempt);
            } catch (const tether::cancelled_error&) {
                cancelled = true;
            }
            CHECK(cancelled);
            ended_at = co_await now() - log.t0; // not a cancellation point
        };
        auto body = [&](tether::task_group& tg) -> tether::task<> {
            tether::child<void> c = tg.spawn(retrier());
            co_await tether::sleep_for(150ms); // during the second backoff (100ms..300ms)
            c.cancel();
        };
        co_await tether::with_task_group(body);
    };
    run_test(t);
    CHECK(log.starts == durations({0ms, 100ms}));
    CHECK(retries == 2);
    REQUIRE(ended_at);
    CHECK(*ended_at == 150ms);
}

TEST_CASE("retry is a cancellation point: in a cancelled scope no attempt starts",
          "[retry][cancellation]") {
    int attempts = 0;
    auto t = [&]() -> tether::task<> {
        tether::retry_policy policy = exact_policy();
        auto attempt = [&]() -> tether::task<> {
            ++attempts;
            co_await tether::yield_now(); // the attempt's first cancellation point
        };
        auto body = [&](tether::cancel_scope& s) -> tether::task<> {
            s.cancel();
            co_await tether::retry(policy, attempt);
        };
        const bool completed = co_await tether::with_cancel_scope(body);
        CHECK_FALSE(completed);
    };
    run_test(t);
    CHECK(attempts == 0);
}

TEST_CASE("no attempt starts after the total budget", "[retry][budget]") {
    SECTION("instant attempts") {
        attempt_log log;
        auto t = [&]() -> tether::task<> {
            tether::retry_policy policy = exact_policy();
            policy.max_attempts = 100;
            policy.total_budget = 1s;
            auto attempt = [&]() -> tether::task<> {
                co_await log.begin();
                throw std::runtime_error("down");
            };
            const bool threw =
                co_await throws_as<std::runtime_error>(tether::retry(policy, attempt));
            CHECK(threw);
            const auto elapsed = co_await now() - log.t0;
            CHECK(elapsed == 700ms); // gave up without sleeping to 1.5 s
        };
        run_test(t);
        CHECK(log.starts == durations({0ms, 100ms, 300ms, 700ms}));
    }
    SECTION("attempts that take time") {
        attempt_log log;
        auto t = [&]() -> tether::task<> {
            tether::retry_policy policy = exact_policy();
            policy.max_attempts = 100;
            policy.total_budget = 1s;
            auto attempt = [&]() -> tether::task<> {
                co_await log.begin();
                co_await tether::sleep_for(50ms);
                throw std::runtime_error("down");
            };
            const bool threw =
                co_await throws_as<std::runtime_error>(tether::retry(policy, attempt));
            CHECK(threw);
            const auto elapsed = co_await now() - log.t0;
            CHECK(elapsed == 900ms);
        };
        run_test(t);
        // Failures at 50, 200, 450, 900 ms; the next start (1.7 s) is past the budget.
        CHECK(log.starts == durations({0ms, 150ms, 400ms, 850ms}));
    }
    SECTION("a zero budget allows the first attempt only") {
        attempt_log log;
        auto t = [&]() -> tether::task<> {
            tether::retry_policy policy = exact_policy();
            policy.total_budget = 0ms;
            auto attempt = [&]() -> tether::task<> {
                co_await log.begin();
                throw std::runtime_error("down");
            };
            const bool threw =
                co_await throws_as<std::runtime_error>(tether::retry(policy, attempt));
            CHECK(threw);
        };
        run_test(t);
        CHECK(log.starts.size() == 1);
    }
}

TEST_CASE("an attempt that would start after the enclosing deadline is not started",
          "[retry][deadline]") {
    SECTION("with_timeout around the retry: the caller sees the real error") {
        attempt_log log;
        auto t = [&]() -> tether::task<> {
            log.t0 = co_await now();
            tether::retry_policy policy = exact_policy();
            policy.multiplier = 1.0; // 300 ms each
            policy.initial_delay = 300ms;
            policy.max_attempts = 10;
            auto attempt = [&]() -> tether::task<> {
                co_await log.begin();
                throw std::runtime_error("down");
            };
            bool real_error = false;
            try {
                co_await tether::with_timeout(1s, tether::retry(policy, attempt));
            } catch (const tether::timeout_error&) {
                FAIL("the deadline should not have been reached");
            } catch (const std::runtime_error& e) {
                real_error = std::string(e.what()) == "down";
            }
            CHECK(real_error);
            const auto elapsed = co_await now() - log.t0;
            CHECK(elapsed == 900ms);
        };
        run_test(t);
        CHECK(log.starts == durations({0ms, 300ms, 600ms, 900ms}));
    }
    SECTION("a cancel_scope deadline, and the tightest of nested deadlines") {
        attempt_log log;
        auto t = [&]() -> tether::task<> {
            log.t0 = co_await now();
            tether::retry_policy policy = exact_policy();
            policy.max_attempts = 10;
            auto attempt = [&]() -> tether::task<> {
                co_await log.begin();
                throw std::runtime_error("down");
            };
            auto inner = [&](tether::cancel_scope& s) -> tether::task<> {
                s.reschedule(500ms);
                co_await tether::retry(policy, attempt);
            };
            auto outer = [&](tether::cancel_scope& s) -> tether::task<> {
                s.reschedule(10s);
                const bool threw =
                    co_await throws_as<std::runtime_error>(tether::with_cancel_scope(inner));
                CHECK(threw);
            };
            const bool completed = co_await tether::with_cancel_scope(outer);
            CHECK(completed);
        };
        run_test(t);
        CHECK(log.starts == durations({0ms, 100ms, 300ms})); // 700 ms >= 500 ms: not started
    }
    SECTION("a deadline beyond a shield does not stop the retry") {
        attempt_log log;
        auto t = [&]() -> tether::task<> {
            log.t0 = co_await now();
            tether::retry_policy policy = exact_policy();
            policy.max_attempts = 4;
            auto attempt = [&]() -> tether::task<int> {
                co_await log.begin();
                if (log.starts.size() < 4) throw std::runtime_error("down");
                co_return 7;
            };
            auto body = [&](tether::cancel_scope& s) -> tether::task<int> {
                s.reschedule(200ms);
                co_return co_await tether::shield(tether::retry(policy, attempt));
            };
            // The shielded retry completes (its value is returned, not discarded).
            auto r = co_await tether::with_cancel_scope(body);
            CHECK((r && *r == 7));
        };
        run_test(t);
        CHECK(log.starts == durations({0ms, 100ms, 300ms, 700ms}));
    }
}

TEST_CASE("a server-supplied delay (Retry-After) replaces the backoff", "[retry]") {
    attempt_log log;
    std::vector<tether::retry_event> events;
    auto t = [&]() -> tether::task<std::string> {
        tether::retry_policy policy = exact_policy();
        policy.retry_after =
            [](const std::exception_ptr& e) -> std::optional<tether::clock::duration> {
            try {
                std::rethrow_exception(e);
            } catch (const retry_after_error& r) {
                return r.delay;
            } catch (...) {
                return std::nullopt;
            }
        };
        policy.on_retry = [&](const tether::retry_event& e) { events.push_back(e); };
        auto attempt = [&]() -> tether::task<std::string> {
            co_await log.begin();
            if (log.starts.size() == 1) throw retry_after_error(2s);
            if (log.starts.size() == 2) throw std::runtime_error("502");
            co_return "page";
        };
        co_return co_await tether::retry(policy, attempt);
    };
    CHECK(run_test(t) == "page");
    // 2 s as the server asked (beyond max_delay is fine), then the backoff for attempt 2.
    CHECK(log.starts == durations({0ms, 2000ms, 2200ms}));
    REQUIRE(events.size() == 2);
    CHECK(events[0].server_delay);
    CHECK(events[0].delay == 2s);
    CHECK_FALSE(events[1].server_delay);
    CHECK(events[1].delay == 200ms);
}

TEST_CASE("a server-supplied delay beyond the budget ends the retry", "[retry][budget]") {
    attempt_log log;
    auto t = [&]() -> tether::task<> {
        tether::retry_policy policy = exact_policy();
        policy.total_budget = 30s;
        policy.retry_after = [](const std::exception_ptr&) {
            return std::optional<tether::clock::duration>(1h);
        };
        auto attempt = [&]() -> tether::task<> {
            co_await log.begin();
            throw retry_after_error(1h);
        };
        const bool threw = co_await throws_as<retry_after_error>(tether::retry(policy, attempt));
        CHECK(threw);
        const auto elapsed = co_await now() - log.t0;
        CHECK(elapsed == 0ms);
    };
    run_test(t);
    CHECK(log.starts.size() == 1);
}

TEST_CASE("full jitter draws each delay uniformly below the backoff, reproducibly with a seed",
          "[retry][jitter]") {
    auto run_with_seed = [](std::uint64_t seed) {
        attempt_log log;
        std::vector<tether::clock::duration> delays;
        auto t = [&]() -> tether::task<> {
            tether::retry_policy policy = exact_policy();
            policy.max_attempts = 8;
            policy.jitter = tether::retry_jitter::full;
            policy.jitter_seed = seed;
            policy.on_retry = [&](const tether::retry_event& e) { delays.push_back(e.delay); };
            auto attempt = [&]() -> tether::task<> {
                co_await log.begin();
                if (log.starts.size() < 8) throw std::runtime_error("down");
            };
            co_await tether::retry(policy, attempt);
        };
        run_test(t);
        // The attempts started exactly after the drawn delays.
        REQUIRE(log.starts.size() == 8);
        tether::clock::duration sum{};
        for (std::size_t i = 0; i < delays.size(); ++i) {
            sum += delays[i];
            CHECK(log.starts[i + 1] == sum);
        }
        return delays;
    };
    const auto a = run_with_seed(42);
    const auto b = run_with_seed(42);
    const auto c = run_with_seed(43);
    CHECK(a == b);
    CHECK(a != c);
    // Exactly the documented draw: backoff(k) * u, u from splitmix64(seed).
    tether::retry_policy p = exact_policy();
    tether::detail::jitter_rng rng(42);
    REQUIRE(a.size() == 7);
    for (std::size_t k = 1; k <= a.size(); ++k) {
        CHECK(a[k - 1] == tether::detail::full_jitter(p.backoff(k), rng));
        CHECK(a[k - 1] >= tether::clock::duration::zero());
        CHECK(a[k - 1] < p.backoff(k));
    }
}

TEST_CASE("retry repeats any awaitable, such as a per-attempt timeout", "[retry]") {
    attempt_log log;
    auto t = [&]() -> tether::task<int> {
        tether::retry_policy policy = exact_policy();
        policy.retry_if = tether::retry_on<tether::timeout_error>();
        auto slow_then_fast = [&]() -> tether::task<int> {
            co_await log.begin();
            if (log.starts.size() < 3) co_await tether::sleep_for(1s);
            co_return 5;
        };
        auto attempt = [&] { return tether::with_timeout(50ms, slow_then_fast()); };
        co_return co_await tether::retry(policy, attempt);
    };
    CHECK(run_test(t) == 5);
    // Timeouts at 50 ms and 200 ms, each followed by the backoff.
    CHECK(log.starts == durations({0ms, 150ms, 400ms}));
}

TEST_CASE("an invalid policy is a usage_error at the call", "[retry][usage]") {
    auto attempt = []() -> tether::task<> { co_return; };
    tether::retry_policy p;
    p.max_attempts = 0;
    CHECK_THROWS_AS(tether::retry(p, attempt), tether::usage_error);
    p = tether::retry_policy{};
    p.multiplier = 0.5;
    CHECK_THROWS_AS(tether::retry(p, attempt), tether::usage_error);
    p = tether::retry_policy{};
    p.initial_delay = -1ms;
    CHECK_THROWS_AS(tether::retry(p, attempt), tether::usage_error);
    p = tether::retry_policy{};
    p.total_budget = -1ms;
    CHECK_THROWS_AS(tether::retry(p, attempt), tether::usage_error);
}
