// Tests for <tether/task.hpp>: task<T>, run, spawn, use_task, yield_now, sleep.
#include <tether/task.hpp>

#include <tether/cancel_scope.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using tether::task;
using tether_test::run_test;

static_assert(!std::is_copy_constructible_v<task<int>>);
static_assert(!std::is_copy_assignable_v<task<int>>);
static_assert(std::is_nothrow_move_constructible_v<task<int>>);
static_assert(std::is_nothrow_move_assignable_v<task<void>>);

namespace {

task<int> answer() {
    co_return 42;
}
task<void> nothing() {
    co_return;
}
task<std::unique_ptr<int>> boxed(int v) {
    co_return std::make_unique<int>(v);
}

struct marked_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

task<int> throws_marked(const void** where) {
    try {
        throw marked_error("boom");
    } catch (marked_error& e) {
        *where = &e;
        throw;
    }
    co_return 0;
}

task<int> plus_one(int x) {
    co_return x + 1;
}

} // namespace

TEST_CASE("awaiting a task returns its value", "[task]") {
    CHECK(run_test([]() -> task<int> { co_return co_await answer(); }) == 42);
    run_test([]() -> task<void> { co_await nothing(); });
}

TEST_CASE("move-only results are moved out, not copied", "[task]") {
    auto v = run_test([]() -> task<int> {
        auto p = co_await boxed(7);
        co_return *p;
    });
    CHECK(v == 7);
}

TEST_CASE("exceptions propagate with their identity", "[task][exceptions]") {
    const void* thrown = nullptr;
    const void* caught = nullptr;
    run_test([&]() -> task<void> {
        try {
            (void)co_await throws_marked(&thrown);
        } catch (marked_error& e) {
            caught = &e;
        }
    });
    REQUIRE(thrown != nullptr);
    CHECK(thrown == caught);
}

TEST_CASE("run rethrows the task's exception", "[task][run]") {
    asio::io_context io;
    const void* where = nullptr;
    CHECK_THROWS_AS(tether::run(io, throws_marked(&where)), marked_error);
}

TEST_CASE("ten million synchronously completing awaits do not grow the stack", "[task][stack]") {
    // Regression guard for g++ 12 at -O0, which does not turn symmetric transfer
    // into a tail call: synchronous completion must not nest frames.
    const long n = run_test([]() -> task<long> {
        long sum = 0;
        for (int i = 0; i < 10'000'000; ++i) sum += co_await plus_one(i) & 1;
        co_return sum;
    });
    CHECK(n == 5'000'000);
}

TEST_CASE("a task that is never started is destroyed without running", "[task][lifetime]") {
    tether_test::counted::reset();
    bool ran = false;
    {
        auto make = [&](tether_test::counted c) -> task<void> {
            ran = true;
            (void)c;
            co_return;
        };
        auto t = make(tether_test::counted(1));
        CHECK(tether_test::counted::live >= 1);
    }
    CHECK_FALSE(ran);
    CHECK(tether_test::counted::live == 0);
}

TEST_CASE("run reports a task tree that can never finish", "[task][run]") {
    asio::io_context io;
    auto stuck = []() -> task<void> { co_await std::suspend_always{}; };
    CHECK_THROWS_AS(tether::run(io, stuck()), tether::usage_error);
}

TEST_CASE("run can be called repeatedly on one io_context", "[task][run]") {
    asio::io_context io;
    CHECK(tether::run(io, answer()) == 42);
    CHECK(tether::run(io, plus_one(1)) == 2);
}

TEST_CASE("yield_now lets every ready task run once, in FIFO order", "[task][yield]") {
    asio::io_context io;
    std::vector<std::string> log;
    auto worker = [&](std::string name) -> task<void> {
        for (int i = 0; i < 3; ++i) {
            log.push_back(name + std::to_string(i));
            co_await tether::yield_now();
        }
    };
    int finished = 0;
    auto on_done = [&](std::exception_ptr e) {
        CHECK_FALSE(e);
        ++finished;
    };
    tether::spawn(io, worker("a"), on_done);
    tether::spawn(io, worker("b"), on_done);
    io.run();
    CHECK(finished == 2);
    CHECK(log == std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "b2"});
}

TEST_CASE("sleep_for waits exactly its duration of virtual time", "[task][sleep]") {
    auto elapsed = run_test([]() -> task<tether::clock::duration> {
        const auto t0 = co_await tether::this_task::now();
        co_await tether::sleep_for(90s);
        co_await tether::sleep_until(t0 + 100s);
        co_await tether::sleep_for(-5s); // non-positive: yields once
        co_return (co_await tether::this_task::now()) - t0;
    });
    CHECK(elapsed == 100s);
}

TEST_CASE("sleep_for on the real clock", "[task][sleep]") {
    asio::io_context io;
    auto t0 = std::chrono::steady_clock::now();
    tether::run(io, []() -> task<void> { co_await tether::sleep_for(20ms); }());
    CHECK(std::chrono::steady_clock::now() - t0 >= 20ms);
}

TEST_CASE("this_task::executor is the io_context's executor", "[task]") {
    asio::io_context io;
    auto ex = tether::run(io, []() -> task<asio::io_context::executor_type> {
        co_return co_await tether::this_task::executor();
    }());
    CHECK(ex == io.get_executor());
}

TEST_CASE("spawn delivers the value through asio::use_future", "[task][spawn]") {
    asio::io_context io;
    std::future<int> f = tether::spawn(io, answer(), asio::use_future);
    io.run();
    CHECK(f.get() == 42);
}

TEST_CASE("spawn delivers the exception through a callback", "[task][spawn]") {
    asio::io_context io;
    const void* where = nullptr;
    std::exception_ptr got;
    int value = -1;
    tether::spawn(io.get_executor(), throws_marked(&where), [&](std::exception_ptr e, int v) {
        got = e;
        value = v;
    });
    io.run();
    REQUIRE(got);
    CHECK(value == 0);
    try {
        std::rethrow_exception(got);
    } catch (marked_error& e) {
        CHECK(&e == where);
    }
}

TEST_CASE("spawn can be awaited from an asio::awaitable", "[task][spawn][interop]") {
    asio::io_context io;
    int result = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            result = co_await tether::spawn(io, plus_one(41), asio::use_awaitable);
        },
        [](std::exception_ptr e) { CHECK_FALSE(e); });
    io.run();
    CHECK(result == 42);
}

TEST_CASE("spawn from another thread runs the task on the io_context's thread", "[task][spawn]") {
    asio::io_context io;
    auto guard = asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    const auto runner_id = runner.get_id();
    std::future<std::thread::id> f = tether::spawn(
        io, []() -> task<std::thread::id> { co_return std::this_thread::get_id(); }(),
        asio::use_future);
    CHECK(f.get() == runner_id);
    guard.reset();
    runner.join();
}

TEST_CASE("emitting on spawn's cancellation slot cancels the task", "[task][spawn][cancellation]") {
    asio::io_context io;
    tether::testing::virtual_clock clock(io);
    clock.set_autojump(false); // only the cancellation may end the sleep
    asio::cancellation_signal signal;
    std::exception_ptr got;
    bool done = false;
    tether::spawn(
        io, []() -> task<void> { co_await tether::sleep_for(1h); }(),
        asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) {
            got = e;
            done = true;
        }));
    io.poll(); // the task starts and sleeps
    REQUIRE_FALSE(done);
    signal.emit(asio::cancellation_type::terminal);
    io.run();
    REQUIRE(done);
    CHECK_THROWS_AS(std::rethrow_exception(got), tether::cancelled_error);
    CHECK(clock.elapsed() == 0s); // cancelled at once, not by the hour passing
}

TEST_CASE("use_task awaits a real Asio timer", "[task][use_task]") {
    asio::io_context io;
    tether::run(io, []() -> task<void> {
        asio::steady_timer timer(co_await tether::this_task::executor(), 5ms);
        co_await timer.async_wait(tether::use_task);
    }());
}

namespace {
struct loopback_pair {
    asio::ip::tcp::acceptor acceptor;
    asio::ip::tcp::socket client;
    asio::ip::tcp::socket server;

    explicit loopback_pair(asio::io_context& io)
        : acceptor(io, {asio::ip::make_address("127.0.0.1"), 0}), client(io), server(io) {
        client.connect(acceptor.local_endpoint());
        acceptor.accept(server);
    }
};
} // namespace

TEST_CASE("use_task reads from a loopback socket", "[task][use_task][socket]") {
    asio::io_context io;
    loopback_pair p(io);
    asio::write(p.client, asio::buffer(std::string("hello")));
    std::string got = tether::run(io, [&]() -> task<std::string> {
        char buf[16];
        std::size_t n = co_await p.server.async_read_some(asio::buffer(buf), tether::use_task);
        co_return std::string(buf, n);
    }());
    CHECK(got == "hello");
}

TEST_CASE("use_task turns an error code into std::system_error", "[task][use_task][socket]") {
    asio::io_context io;
    loopback_pair p(io);
    p.client.close();
    CHECK_THROWS_AS(tether::run(io,
                                [&]() -> task<void> {
                                    char buf[16];
                                    (void)co_await p.server.async_read_some(asio::buffer(buf),
                                                                            tether::use_task);
                                }()),
                    std::system_error);
}

TEST_CASE("cancellation reaches a pending socket read on loopback",
          "[task][use_task][cancellation]") {
    asio::io_context io;
    tether::testing::virtual_clock clock(io);
    loopback_pair p(io);
    auto r = tether::run(io, [&]() -> task<std::optional<std::size_t>> {
        co_return co_await tether::with_cancel_scope(
            [&](tether::cancel_scope& s) -> task<std::size_t> {
                s.reschedule(30s);
                char buf[16];
                co_return co_await p.server.async_read_some(asio::buffer(buf), tether::use_task);
            });
    }());
    CHECK_FALSE(r.has_value());
    CHECK(clock.elapsed() == 30s);
    // The socket is still usable: the cancelled read did not consume anything.
    asio::write(p.client, asio::buffer(std::string("x")));
    char c = 0;
    CHECK(asio::read(p.server, asio::buffer(&c, 1)) == 1);
    CHECK(c == 'x');
}

TEST_CASE("a use_task operation is not started in an already cancelled scope",
          "[task][use_task][cancellation]") {
    asio::io_context io;
    loopback_pair p(io);
    asio::write(p.client, asio::buffer(std::string("data")));
    auto r = tether::run(io, [&]() -> task<bool> {
        co_return co_await tether::with_cancel_scope([&](tether::cancel_scope& s) -> task<void> {
            s.cancel();
            char buf[16];
            (void)co_await p.server.async_read_some(asio::buffer(buf), tether::use_task);
            FAIL("the read must not run");
        });
    }());
    CHECK_FALSE(r);
    CHECK(p.server.available() == 4); // nothing was consumed
}

TEST_CASE("overlapping sleeps on the real clock all wake: the Asio timer is re-armed after it "
          "fires",
          "[task][sleep][regression]") {
    // Real time, tiny durations: the scheduler's one Asio timer fires for the
    // earliest deadline and must be armed again for the ones still in the heap
    // (it was not, and the later sleepers waited for ever).
    asio::io_context io;
    int woke = 0;
    auto sleeper = [&](std::chrono::milliseconds d) -> task<void> {
        co_await tether::sleep_for(d);
        ++woke;
    };
    auto body = [&]() -> task<void> {
        auto a = sleeper(1ms);
        auto b = sleeper(2ms);
        auto c = sleeper(3ms);
        tether::spawn(io.get_executor(), std::move(b), [](std::exception_ptr) {});
        tether::spawn(io.get_executor(), std::move(c), [](std::exception_ptr) {});
        co_await std::move(a);
    };
    tether::run(io, body());
    io.restart();
    io.run(); // returns once every sleeper woke (nothing else keeps it running)
    CHECK(woke == 3);
}
