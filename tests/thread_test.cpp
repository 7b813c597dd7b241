// Tests for <tether/thread.hpp>: to_thread on a pool, on an executor and on the
// default pool. Results and exceptions cross threads; the task resumes on its
// own thread; cancellation before the work starts skips it, cancellation while
// it runs waits for it. These tests use real threads (label tsan): threads are
// ordered with promises and futures, never with sleeps.
#include <tether/thread.hpp>

#include <tether/cancel_scope.hpp>
#include <tether/task_group.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <asio/thread_pool.hpp>

#include <atomic>
#include <exception>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using tether::cancel_scope;
using tether::cancelled_error;
using tether::task;
using tether::task_group;
using tether::to_thread;
using tether::with_task_group;
using tether_test::run_test;

namespace {

struct thread_error : std::runtime_error {
    thread_error() : std::runtime_error("thread_error") {}
};

} // namespace

TEST_CASE("to_thread runs fn on the pool and resumes on the task's thread", "[thread]") {
    asio::thread_pool pool(2);
    run_test([&]() -> task<void> {
        const auto home = std::this_thread::get_id();
        std::thread::id ran_on;
        const std::string r = co_await to_thread(pool, [&] {
            ran_on = std::this_thread::get_id();
            return std::string(1000, 'x'); // heap-allocated: crosses threads
        });
        CHECK(r.size() == 1000);
        CHECK(ran_on != home);
        CHECK(std::this_thread::get_id() == home);

        const int v = co_await to_thread(pool.get_executor(), [] { return 6 * 7; });
        CHECK(v == 42);
        co_await to_thread(pool, [] {}); // void
    });
    pool.join();
}

TEST_CASE("to_thread rethrows fn's exception, the same object", "[thread]") {
    asio::thread_pool pool(1);
    run_test([&]() -> task<void> {
        std::exception_ptr thrown;
        try {
            co_await to_thread(pool, [&] {
                thrown = std::make_exception_ptr(thread_error());
                std::rethrow_exception(thrown);
            });
            FAIL("no exception");
        } catch (const thread_error&) {
            CHECK(std::current_exception() == thrown);
        }
    });
    pool.join();
}

TEST_CASE("to_thread without a pool uses the default pool", "[thread]") {
    run_test([&]() -> task<void> {
        const auto home = std::this_thread::get_id();
        auto id = co_await to_thread([] { return std::this_thread::get_id(); });
        CHECK(id != home);
        CHECK(std::this_thread::get_id() == home);
    });
}

TEST_CASE("many concurrent to_thread calls: every result arrives once", "[thread]") {
    asio::thread_pool pool(4);
    run_test([&]() -> task<void> {
        constexpr int n = 500;
        std::vector<long> results(n, -1);
        std::atomic<int> running{0};
        std::atomic<int> peak{0};
        auto one = [&](int i) -> task<void> {
            results[static_cast<std::size_t>(i)] = co_await to_thread(pool, [&running, &peak, i] {
                const int now = running.fetch_add(1) + 1;
                int seen = peak.load();
                while (now > seen && !peak.compare_exchange_weak(seen, now)) {
                }
                long sum = 0;
                for (int k = 0; k <= i; ++k) sum += k;
                running.fetch_sub(1);
                return sum;
            });
        };
        auto body = [&](task_group& tg) -> task<void> {
            for (int i = 0; i < n; ++i) tg.spawn(one(i));
            co_return;
        };
        co_await with_task_group(body);
        for (int i = 0; i < n; ++i) {
            INFO("call " << i);
            CHECK(results[static_cast<std::size_t>(i)] == static_cast<long>(i) * (i + 1) / 2);
        }
        CHECK(peak.load() <= 4);
    });
    pool.join();
}

TEST_CASE("to_thread cancelled before fn starts: fn never runs", "[thread][cancellation]") {
    asio::thread_pool pool(1);
    run_test([&]() -> task<void> {
        std::atomic<bool> ran{false};
        bool cancelled = false;
        auto region = [&](cancel_scope& s) -> task<void> {
            s.cancel();
            try {
                co_await to_thread(pool, [&] { ran = true; });
            } catch (const cancelled_error&) {
                cancelled = true;
                throw;
            }
        };
        const bool completed = co_await tether::with_cancel_scope(region);
        CHECK_FALSE(completed);
        CHECK(cancelled);
        CHECK_FALSE(ran.load());
    });
    pool.join();
}

TEST_CASE("to_thread cancelled while fn runs waits for fn, then throws cancelled_error",
          "[thread][cancellation]") {
    asio::thread_pool pool(2);
    run_test([&]() -> task<void> {
        std::promise<void> started;
        std::promise<void> release;
        std::shared_future<void> started_f = started.get_future().share();
        std::shared_future<void> release_f = release.get_future().share();
        std::atomic<bool> finished{false};
        bool finished_when_cancelled = false;
        cancel_scope scope;
        auto worker = [&](cancel_scope&) -> task<void> {
            try {
                co_await to_thread(pool, [&] {
                    started.set_value();
                    release_f.wait();
                    finished = true;
                    return 1;
                });
                FAIL("to_thread returned after a cancellation");
            } catch (const cancelled_error&) {
                finished_when_cancelled = finished.load();
                throw;
            }
        };
        auto run_worker = [&]() -> task<void> {
            co_await tether::with_cancel_scope(scope, worker);
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(run_worker());
            co_await to_thread(pool, [&] { started_f.wait(); }); // fn is running now
            scope.cancel();
            co_await tether::yield_now();
            co_await tether::yield_now();
            release.set_value(); // only now can fn return
        };
        co_await with_task_group(body);
        CHECK(finished_when_cancelled); // the task waited for fn
        CHECK(scope.cancelled_caught());
    });
    pool.join();
}

TEST_CASE("to_thread destroys fn on the task's thread", "[thread]") {
    asio::thread_pool pool(1);
    run_test([&]() -> task<void> {
        const auto home = std::this_thread::get_id();
        std::thread::id destroyed_on;
        struct probe {
            std::thread::id* destroyed_on;
            bool armed = true;
            probe(std::thread::id* d) : destroyed_on(d) {}
            probe(probe&& o) noexcept : destroyed_on(o.destroyed_on) {
                o.armed = false;
            }
            ~probe() {
                if (armed) *destroyed_on = std::this_thread::get_id();
            }
            int operator()() const {
                return 3;
            }
        };
        probe p(&destroyed_on);
        const int v = co_await to_thread(pool, std::move(p));
        CHECK(v == 3);
        CHECK(destroyed_on == home);
    });
    pool.join();
}
