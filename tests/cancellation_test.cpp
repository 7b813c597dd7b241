// Tests for <tether/cancellation.hpp>: scenarios CT-01 … CT-08 of SEMANTICS.md.
#include <tether/cancellation.hpp>

#include <tether/cancel_scope.hpp>
#include <tether/task.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <atomic>
#include <csignal>
#include <memory>
#include <optional>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using tether::cancellation_callback;
using tether::cancellation_source;
using tether::cancellation_token;
using tether::task;

static_assert(!std::is_copy_constructible_v<cancellation_source>);
static_assert(std::is_nothrow_move_constructible_v<cancellation_source>);
static_assert(std::is_copy_constructible_v<cancellation_token>);
static_assert(!std::is_copy_constructible_v<cancellation_callback<void (*)()>>);
static_assert(!std::is_move_constructible_v<cancellation_callback<void (*)()>>);

TEST_CASE("CT-01 cancel is one-shot and callbacks run exactly once, synchronously",
          "[cancellation]") {
    cancellation_source src;
    auto tok = src.token();
    const auto me = std::this_thread::get_id();
    int runs[3] = {0, 0, 0};
    bool on_my_thread = true;
    auto cb = [&](int i) {
        return [&, i]() noexcept {
            ++runs[i];
            on_my_thread = on_my_thread && std::this_thread::get_id() == me;
        };
    };
    cancellation_callback c0(tok, cb(0));
    cancellation_callback c1(tok, cb(1));
    cancellation_callback c2(tok, cb(2));
    CHECK_FALSE(tok.is_cancelled());
    CHECK(src.request_cancel("test"));
    // Every callback ran before the first request returned.
    CHECK(runs[0] == 1);
    CHECK(runs[1] == 1);
    CHECK(runs[2] == 1);
    CHECK_FALSE(src.request_cancel("again"));
    CHECK(runs[0] == 1);
    CHECK(on_my_thread);
    CHECK(tok.is_cancelled());
    CHECK(tok.reason() == "test");
}

TEST_CASE("CT-01 the cancel reason is carried by the resulting cancelled_error", "[cancellation]") {
    cancellation_source src;
    src.request_cancel("test");
    std::string reason;
    tether_test::run_test([&]() -> task<void> {
        try {
            co_await tether::with_cancellation(
                src.token(), []() -> task<void> { co_await tether::sleep_for(1h); }());
        } catch (const tether::cancelled_error& e) {
            reason = e.reason();
        }
    });
    CHECK(reason == "test");
}

TEST_CASE("CT-02 registering after cancellation runs the callback immediately, once",
          "[cancellation]") {
    cancellation_source src;
    src.request_cancel();
    int runs = 0;
    {
        cancellation_callback cb(src.token(), [&]() noexcept { ++runs; });
        CHECK(runs == 1);
        src.request_cancel();
        CHECK(runs == 1);
    }
    CHECK(runs == 1);
}

TEST_CASE("CT-03 a destroyed registration never runs; destroying after the run is a no-op",
          "[cancellation]") {
    cancellation_source src;
    int a = 0;
    int b = 0;
    auto ca =
        std::make_unique<cancellation_callback<std::function<void()>>>(src.token(), [&] { ++a; });
    cancellation_callback cb(src.token(), [&]() noexcept { ++b; });
    ca.reset();
    src.request_cancel();
    CHECK(a == 0);
    CHECK(b == 1);

    cancellation_source src2;
    int c = 0;
    auto cc =
        std::make_unique<cancellation_callback<std::function<void()>>>(src2.token(), [&] { ++c; });
    src2.request_cancel();
    CHECK(c == 1);
    cc.reset(); // harmless after the invocation
    CHECK(c == 1);
}

TEST_CASE("a default token can never be cancelled", "[cancellation]") {
    cancellation_token tok;
    CHECK_FALSE(tok.can_be_cancelled());
    CHECK_FALSE(tok.is_cancelled());
    int runs = 0;
    cancellation_callback cb(tok, [&]() noexcept { ++runs; });
    CHECK(runs == 0);
}

TEST_CASE("CT-04 exactly once under racing requests and registrations", "[cancellation][threads]") {
    for (int round = 0; round < 50; ++round) {
        cancellation_source src;
        auto tok = src.token();
        constexpr int requesters = 4;
        constexpr int registrars = 4;
        constexpr int per_registrar = 50;
        std::atomic<int> winners{0};
        std::atomic<bool> go{false};
        // runs[i] counts invocations of registration i; kept[i] says whether it
        // was still registered (not destroyed) when its thread finished.
        std::vector<std::atomic<int>> runs(registrars * per_registrar);
        std::vector<std::unique_ptr<cancellation_callback<std::function<void()>>>> keep(
            registrars * per_registrar);
        std::vector<std::thread> threads;
        for (int r = 0; r < requesters; ++r)
            threads.emplace_back([&] {
                while (!go.load()) {
                }
                if (src.request_cancel()) winners.fetch_add(1);
            });
        for (int g = 0; g < registrars; ++g)
            threads.emplace_back([&, g] {
                while (!go.load()) {
                }
                for (int k = 0; k < per_registrar; ++k) {
                    const int i = g * per_registrar + k;
                    auto cb = std::make_unique<cancellation_callback<std::function<void()>>>(
                        tok, [&runs, i] { runs[static_cast<std::size_t>(i)].fetch_add(1); });
                    if (k % 3 == 0)
                        cb.reset(); // some deregister at once
                    else
                        keep[static_cast<std::size_t>(i)] = std::move(cb);
                }
            });
        go.store(true);
        for (auto& t : threads) t.join();
        CHECK(winners.load() == 1);
        for (int i = 0; i < registrars * per_registrar; ++i) {
            const int n = runs[static_cast<std::size_t>(i)].load();
            if (keep[static_cast<std::size_t>(i)])
                CHECK(n == 1); // registered and never destroyed: ran exactly once
            else
                CHECK(n <= 1); // destroyed: at most once (if the request came first)
        }
    }
}

TEST_CASE("CT-05a deregistering on another thread waits for the running callback",
          "[cancellation][threads]") {
    cancellation_source src;
    std::atomic<bool> entered{false};
    std::atomic<bool> release{false};
    std::atomic<bool> finished{false};
    auto state = std::make_unique<int>(7);
    auto cb = std::make_unique<cancellation_callback<std::function<void()>>>(src.token(), [&] {
        entered.store(true);
        while (!release.load()) std::this_thread::yield();
        CHECK(*state == 7); // the captured state is still alive
        finished.store(true);
    });
    std::thread requester([&] { src.request_cancel(); });
    while (!entered.load()) std::this_thread::yield();
    std::thread destroyer([&] {
        cb.reset(); // must block until the callback returns
        CHECK(finished.load());
    });
    release.store(true);
    destroyer.join();
    requester.join();
    CHECK(finished.load());
}

TEST_CASE("CT-05b a callback may destroy its own registration without deadlock", "[cancellation]") {
    cancellation_source src;
    std::unique_ptr<cancellation_callback<std::function<void()>>> self;
    int runs = 0;
    self = std::make_unique<cancellation_callback<std::function<void()>>>(src.token(), [&] {
        ++runs;
        self.reset();
    });
    src.request_cancel();
    CHECK(runs == 1);
    CHECK_FALSE(self);
}

TEST_CASE("CT-06 a throwing callback terminates the program", "[cancellation][death]") {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::signal(SIGABRT, SIG_DFL);
        cancellation_source src;
        cancellation_callback cb(src.token(), [] { throw std::runtime_error("callback threw"); });
        src.request_cancel();
        _exit(0); // not reached: std::terminate aborts
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGABRT);
}

TEST_CASE("CT-07 a foreign thread's cancel resumes the waiter on its own thread",
          "[cancellation][threads]") {
    asio::io_context io;
    cancellation_source src;
    std::atomic<bool> waiting{false};
    std::thread::id resumed_on;
    std::thread::id requested_on;
    bool got_cancelled = false;
    std::thread canceller([&] {
        while (!waiting.load()) std::this_thread::yield();
        requested_on = std::this_thread::get_id();
        src.request_cancel("from another thread");
    });
    tether::run(io, [&]() -> task<void> {
        try {
            co_await tether::with_cancellation(src.token(), [&]() -> task<void> {
                waiting.store(true);
                co_await tether::sleep_for(1h); // real clock: only the cancel ends it
            }());
        } catch (const tether::cancelled_error& e) {
            got_cancelled = true;
            resumed_on = std::this_thread::get_id();
            CHECK(e.reason() == "from another thread");
        }
    }());
    canceller.join();
    CHECK(got_cancelled);
    CHECK(resumed_on == std::this_thread::get_id());
    CHECK(resumed_on != requested_on);
}

TEST_CASE("with_cancellation returns the value when the token never fires", "[cancellation]") {
    cancellation_source src;
    auto v = tether_test::run_test([&]() -> task<int> {
        co_return co_await tether::with_cancellation(src.token(), []() -> task<int> {
            co_await tether::sleep_for(1s);
            co_return 5;
        }());
    });
    CHECK(v == 5);
}

TEST_CASE("CT-08 linked tokens follow scope nesting", "[cancellation]") {
    cancellation_source parent;
    cancellation_source c1(parent.token());
    cancellation_source c2(parent.token());
    cancellation_source grandchild(c1.token());
    int runs_c2 = 0;
    int runs_gc = 0;
    cancellation_callback on_c2(c2.token(), [&]() noexcept { ++runs_c2; });
    cancellation_callback on_gc(grandchild.token(), [&]() noexcept { ++runs_gc; });

    SECTION("(a) cancelling a child cancels only its subtree") {
        c1.request_cancel();
        CHECK(c1.is_cancelled());
        CHECK(grandchild.is_cancelled());
        CHECK_FALSE(parent.is_cancelled());
        CHECK_FALSE(c2.is_cancelled());
        CHECK(runs_gc == 1);
        CHECK(runs_c2 == 0);
        parent.request_cancel();
        CHECK(runs_gc == 1);
        CHECK(runs_c2 == 1);
    }
    SECTION("(b) cancelling the parent cancels every descendant once") {
        parent.request_cancel("stop");
        CHECK(c1.is_cancelled());
        CHECK(c2.is_cancelled());
        CHECK(grandchild.is_cancelled());
        CHECK(runs_c2 == 1);
        CHECK(runs_gc == 1);
        CHECK(grandchild.token().reason() == "stop");
    }
    SECTION("(c) a child linked to a cancelled parent is born cancelled") {
        parent.request_cancel();
        cancellation_source late(parent.token());
        CHECK(late.is_cancelled());
    }
}
