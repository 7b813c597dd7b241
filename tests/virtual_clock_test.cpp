// Tests for <tether/testing/virtual_clock.hpp>.
#include <tether/testing/virtual_clock.hpp>

#include <tether/cancel_scope.hpp>
#include <tether/task.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <string>
#include <vector>

using namespace std::chrono_literals;
using tether::task;

TEST_CASE("time jumps to the next deadline when every task is blocked", "[virtual_clock]") {
    asio::io_context io;
    tether::testing::virtual_clock clock(io);
    const auto wall0 = std::chrono::steady_clock::now();
    tether::run(io, []() -> task<void> { co_await tether::sleep_for(std::chrono::hours(10)); }());
    CHECK(clock.elapsed() == std::chrono::hours(10));
    CHECK(std::chrono::steady_clock::now() - wall0 < 10s);
}

TEST_CASE("sleepers wake in deadline order, ties in arrival order", "[virtual_clock]") {
    asio::io_context io;
    tether::testing::virtual_clock clock(io);
    std::vector<std::string> log;
    auto sleeper = [&](std::string name, tether::clock::duration d) -> task<void> {
        co_await tether::sleep_for(d);
        log.push_back(name);
    };
    auto noop = [](std::exception_ptr e) { CHECK_FALSE(e); };
    tether::spawn(io, sleeper("c", 3s), noop);
    tether::spawn(io, sleeper("a", 1s), noop);
    tether::spawn(io, sleeper("b1", 2s), noop);
    tether::spawn(io, sleeper("b2", 2s), noop);
    io.run();
    CHECK(log == std::vector<std::string>{"a", "b1", "b2", "c"});
    CHECK(clock.elapsed() == 3s);
}

TEST_CASE("this_task::now follows virtual time", "[virtual_clock]") {
    asio::io_context io;
    tether::testing::virtual_clock clock(io);
    auto d = tether::run(io, [&]() -> task<tether::clock::duration> {
        auto t0 = co_await tether::this_task::now();
        CHECK(t0 == clock.now());
        co_await tether::sleep_for(1500ms);
        co_return (co_await tether::this_task::now()) - t0;
    }());
    CHECK(d == 1500ms);
}

TEST_CASE("advance moves time by hand when autojump is off", "[virtual_clock]") {
    asio::io_context io;
    tether::testing::virtual_clock clock(io);
    clock.set_autojump(false);
    bool woke = false;
    // A named lambda: the closure must outlive the coroutine (NOTES.md).
    auto sleeper = [&]() -> task<void> {
        co_await tether::sleep_for(5s);
        woke = true;
    };
    tether::spawn(io, sleeper(), [](std::exception_ptr e) { CHECK_FALSE(e); });
    io.poll();
    CHECK_FALSE(woke);
    clock.advance(4s);
    io.poll();
    CHECK_FALSE(woke);
    clock.advance(1s);
    io.poll();
    CHECK(woke);
    CHECK(clock.elapsed() == 5s);
}

TEST_CASE("one virtual clock per io_context", "[virtual_clock]") {
    asio::io_context io;
    tether::testing::virtual_clock clock(io);
    CHECK_THROWS_AS(tether::testing::virtual_clock(io), tether::usage_error);
}

TEST_CASE("with a threshold, real I/O completes before time jumps", "[virtual_clock][socket]") {
    asio::io_context io;
    tether::testing::virtual_clock clock(io, 5s);
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    asio::ip::tcp::socket client(io);
    asio::ip::tcp::socket server(io);
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
    std::thread writer([&] { asio::write(client, asio::buffer(std::string("ok"))); });
    auto r = tether::run(io, [&]() -> task<std::optional<std::size_t>> {
        co_return co_await tether::with_cancel_scope(
            [&](tether::cancel_scope& s) -> task<std::size_t> {
                s.reschedule(1s); // virtual: would fire at once without the threshold
                char buf[8];
                co_return co_await server.async_read_some(asio::buffer(buf), tether::use_task);
            });
    }());
    writer.join();
    REQUIRE(r.has_value());
    CHECK(*r == 2);
    CHECK(clock.elapsed() == 0s);
}
