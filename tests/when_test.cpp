// Tests for <tether/when.hpp>: when_all (variadic and vector), when_any
// (variadic and vector) and gather_settled (DESIGN.md §6), on virtual time.
// They are structured: every task has finished when the combinator returns, a
// failure cancels the siblings and is reported as task_group_error, and an
// enclosing cancellation passes through.
#include <tether/when.hpp>

#include <tether/cancel_scope.hpp>
#include <tether/task_group.hpp>
#include <tether/timeout.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <chrono>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using tether::cancel_scope;
using tether::cancelled_error;
using tether::gather_settled;
using tether::outcome;
using tether::task;
using tether::task_group_error;
using tether::usage_error;
using tether::when_all;
using tether::when_any;
using tether_test::counted;
using tether_test::now_minus;
using tether_test::run_test;

namespace {

struct error_a : std::runtime_error {
    explicit error_a(int i = 0) : std::runtime_error("error_a " + std::to_string(i)) {}
};

task<int> sleep_then(tether::clock::duration d, int v) {
    co_await tether::sleep_for(d);
    co_return v;
}

task<std::string> sleep_then_string(tether::clock::duration d, std::string v) {
    co_await tether::sleep_for(d);
    co_return v;
}

task<void> sleep_void(tether::clock::duration d, int& done) {
    co_await tether::sleep_for(d);
    ++done;
}

task<int> sleep_then_throw(tether::clock::duration d, int id) {
    co_await tether::sleep_for(d);
    throw error_a(id);
}

task<int> immediate(int v) {
    co_return v;
}

// Sleeps for `d`; counts a cancellation and rethrows it.
task<int> cancellable(tether::clock::duration d, int v, int& cancelled) {
    try {
        co_await tether::sleep_for(d);
    } catch (const cancelled_error&) {
        ++cancelled;
        throw;
    }
    co_return v;
}

task<std::unique_ptr<int>> move_only(int v) {
    co_await tether::yield_now();
    co_return std::make_unique<int>(v);
}

} // namespace

static_assert(
    std::is_same_v<
        decltype(when_all(std::declval<task<int>>(), std::declval<task<void>>()).await_resume()),
        std::tuple<int, std::monostate>>);
static_assert(
    std::is_same_v<decltype(when_all(std::declval<std::vector<task<int>>>()).await_resume()),
                   std::vector<int>>);

TEST_CASE("when_all runs the tasks concurrently and returns every value in order",
          "[when][when_all]") {
    run_test([]() -> task<void> {
        const auto t0 = co_await tether::this_task::now();
        int voids = 0;
        auto values = co_await when_all(sleep_then(30ms, 1), sleep_then_string(10ms, "two"),
                                        sleep_void(20ms, voids), immediate(4));
        CHECK(std::get<0>(values) == 1);
        CHECK(std::get<1>(values) == "two");
        CHECK(voids == 1);
        CHECK(std::get<3>(values) == 4);
        const auto elapsed = co_await now_minus(t0);
        CHECK(elapsed == 30ms); // the max, not the sum
    });
}

TEST_CASE("when_all of a vector returns the values in the tasks' order", "[when][when_all]") {
    run_test([]() -> task<void> {
        const auto t0 = co_await tether::this_task::now();
        std::vector<task<int>> tasks;
        for (int i = 0; i < 10; ++i) tasks.push_back(sleep_then((10 - i) * 1ms, i));
        const std::vector<int> values = co_await when_all(std::move(tasks));
        CHECK(values == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
        const auto elapsed = co_await now_minus(t0);
        CHECK(elapsed == 10ms);

        const std::vector<int> none = co_await when_all(std::vector<task<int>>{});
        CHECK(none.empty()); // an empty vector returns at once

        int voids = 0;
        std::vector<task<void>> void_tasks;
        for (int i = 0; i < 3; ++i) void_tasks.push_back(sleep_void(1ms, voids));
        co_await when_all(std::move(void_tasks));
        CHECK(voids == 3);

        std::vector<task<std::unique_ptr<int>>> owners;
        owners.push_back(move_only(5));
        owners.push_back(move_only(6));
        auto pointers = co_await when_all(std::move(owners)); // move-only values
        CHECK(*pointers[0] + *pointers[1] == 11);
    });
}

TEST_CASE("a when_all failure cancels the siblings and raises task_group_error",
          "[when][when_all][cancellation]") {
    run_test([]() -> task<void> {
        const auto t0 = co_await tether::this_task::now();
        int cancelled = 0;
        std::size_t members = 0;
        try {
            (void)co_await when_all(cancellable(1h, 1, cancelled), sleep_then_throw(10ms, 7),
                                    cancellable(1h, 3, cancelled));
        } catch (const task_group_error& e) {
            members = e.exceptions().size();
            CHECK(e.contains<error_a>());
        }
        CHECK(members == 1); // never a cancelled_error member
        CHECK(cancelled == 2);
        const auto elapsed = co_await now_minus(t0);
        CHECK(elapsed == 10ms);
    });
}

TEST_CASE("when_all keeps every failure", "[when][when_all]") {
    run_test([]() -> task<void> {
        std::vector<task<int>> tasks;
        tasks.push_back(sleep_then_throw(5ms, 1));
        tasks.push_back(sleep_then_throw(5ms, 2)); // fails at the same instant
        tasks.push_back(sleep_then(1h, 3));
        std::size_t members = 0;
        try {
            (void)co_await when_all(std::move(tasks));
        } catch (const task_group_error& e) {
            members = e.exceptions().size();
        }
        CHECK(members == 2);
    });
}

TEST_CASE("an enclosing cancellation cancels when_all's tasks and passes through",
          "[when][when_all][cancellation]") {
    run_test([]() -> task<void> {
        int cancelled = 0;
        bool saw_cancelled = false;
        auto region = [&](cancel_scope& s) -> task<void> {
            s.reschedule(10ms);
            try {
                (void)co_await when_all(cancellable(1h, 1, cancelled),
                                        cancellable(1h, 2, cancelled));
            } catch (const cancelled_error&) {
                saw_cancelled = true;
                throw;
            }
        };
        const bool completed = co_await tether::with_cancel_scope(region);
        CHECK_FALSE(completed);
        CHECK(saw_cancelled);
        CHECK(cancelled == 2);
    });
}

TEST_CASE("when_any returns the first to finish, cancels and joins the rest", "[when][when_any]") {
    run_test([]() -> task<void> {
        const auto t0 = co_await tether::this_task::now();
        int cancelled = 0;
        auto r = co_await when_any(cancellable(30ms, 1, cancelled), cancellable(10ms, 2, cancelled),
                                   cancellable(20ms, 3, cancelled));
        REQUIRE(r.index() == 1);
        CHECK(std::get<1>(r) == 2);
        CHECK(cancelled == 2); // both losers were cancelled and joined
        const auto elapsed = co_await now_minus(t0);
        CHECK(elapsed == 10ms);
    });
}

TEST_CASE("when_any of a vector reports the winner's position", "[when][when_any]") {
    run_test([]() -> task<void> {
        std::vector<task<int>> tasks;
        for (int i = 0; i < 5; ++i)
            tasks.push_back(sleep_then(std::abs(2 - i) * 1ms + 1ms, 10 + i));
        auto winner = co_await when_any(std::move(tasks));
        CHECK(winner.first == 2);
        CHECK(winner.second == 12);
        CHECK_THROWS_AS(co_await when_any(std::vector<task<int>>{}), usage_error);
    });
}

TEST_CASE("when_any: a task that completes without suspending wins", "[when][when_any]") {
    run_test([]() -> task<void> {
        int cancelled = 0;
        auto r = co_await when_any(cancellable(1h, 1, cancelled), immediate(2));
        REQUIRE(r.index() == 1);
        CHECK(std::get<1>(r) == 2);
        CHECK(cancelled == 1);
    });
}

TEST_CASE("when_any: a loser that also finished has its value destroyed", "[when][when_any]") {
    run_test([]() -> task<void> {
        auto make = [](int v) -> task<counted> {
            co_await tether::sleep_for(5ms);
            co_return counted(v);
        };
        const int live_before = counted::live;
        {
            // Both finish at the same instant: the first to finish wins.
            auto r = co_await when_any(make(1), make(2));
            CHECK(r.index() == 0);
            CHECK(counted::live == live_before + 1); // only the winner's value is alive
        }
        CHECK(counted::live == live_before);
    });
}

TEST_CASE("when_any: a failure is never dropped", "[when][when_any]") {
    run_test([]() -> task<void> {
        int cancelled = 0;
        std::size_t members = 0;
        try {
            (void)co_await when_any(cancellable(1h, 1, cancelled), sleep_then_throw(5ms, 9));
        } catch (const task_group_error& e) {
            members = e.exceptions().size();
        }
        CHECK(members == 1);
        CHECK(cancelled == 1);
    });
}

TEST_CASE("gather_settled returns every outcome and does not cancel on failure",
          "[when][gather_settled]") {
    run_test([]() -> task<void> {
        const auto t0 = co_await tether::this_task::now();
        std::vector<task<int>> tasks;
        tasks.push_back(sleep_then(30ms, 1));
        tasks.push_back(sleep_then_throw(10ms, 2));
        tasks.push_back(sleep_then(20ms, 3));
        std::vector<outcome<int>> results = co_await gather_settled(std::move(tasks));
        REQUIRE(results.size() == 3);
        CHECK(results[0].value() == 1);
        CHECK_FALSE(results[1].has_value());
        CHECK_THROWS_AS(results[1].value(), error_a);
        CHECK(results[2].value() == 3); // the failure did not cancel it
        const auto elapsed = co_await now_minus(t0);
        CHECK(elapsed == 30ms);

        int voids = 0;
        std::vector<task<void>> void_tasks;
        void_tasks.push_back(sleep_void(1ms, voids));
        auto thrower = []() -> task<void> {
            co_await tether::yield_now();
            throw error_a(3);
        };
        void_tasks.push_back(thrower());
        std::vector<outcome<void>> void_results = co_await gather_settled(std::move(void_tasks));
        CHECK(void_results[0].has_value());
        CHECK(void_results[1].error() != nullptr);
        CHECK(voids == 1);
    });
}

TEST_CASE("gather_settled under an enclosing cancellation throws cancelled_error",
          "[when][gather_settled][cancellation]") {
    run_test([]() -> task<void> {
        int cancelled = 0;
        auto region = [&](cancel_scope& s) -> task<void> {
            s.reschedule(5ms);
            std::vector<task<int>> tasks;
            tasks.push_back(cancellable(1h, 1, cancelled));
            tasks.push_back(sleep_then(1ms, 2));
            (void)co_await gather_settled(std::move(tasks));
            FAIL("gather_settled returned although its caller was cancelled");
        };
        const bool completed = co_await tether::with_cancel_scope(region);
        CHECK_FALSE(completed);
        CHECK(cancelled == 1);
    });
}

TEST_CASE("combinators reject an empty task with usage_error", "[when]") {
    run_test([]() -> task<void> {
        task<int> t = immediate(1);
        task<int> moved = std::move(t);
        std::vector<task<int>> tasks;
        tasks.push_back(std::move(t));
        CHECK_THROWS_AS(co_await when_all(std::move(tasks)), usage_error);
        const int v = co_await std::move(moved);
        CHECK(v == 1);
    });
}

TEST_CASE("many synchronous when_all calls in a loop do not grow the stack", "[when]") {
    run_test([]() -> task<void> {
        long sum = 0;
        for (int i = 0; i < 100000; ++i) {
            auto values = co_await when_all(immediate(1), immediate(2));
            sum += std::get<0>(values) + std::get<1>(values);
        }
        CHECK(sum == 300000);
    });
}
