// asio_interop: tether tasks and Asio code in one io_context.
//   1. In a task, any Asio operation is awaitable with tether::use_task:
//      sockets (an echo over 127.0.0.1) and timers.
//   2. Cancelling the task cancels the pending Asio operation (through its
//      cancellation slot): with_timeout around async_read_some.
//   3. From plain Asio code (a posted handler), tether::spawn(ex, task, callback).
//   4. From an asio::awaitable coroutine, tether::spawn(ex, task, use_awaitable);
//      and the task awaits that coroutine through asio::co_spawn(…, use_task).
//
// Real time and real sockets (loopback only); each step takes milliseconds.
#include <tether/event.hpp>
#include <tether/task.hpp>
#include <tether/task_group.hpp>
#include <tether/timeout.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

using namespace std::chrono_literals;
using asio::ip::tcp;

namespace {

tether::task<> echo_once(tcp::acceptor& acceptor) {
    tcp::socket peer = co_await acceptor.async_accept(tether::use_task);
    std::array<char, 64> buf{};
    const std::size_t n = co_await peer.async_read_some(asio::buffer(buf), tether::use_task);
    co_await asio::async_write(peer, asio::buffer(buf.data(), n), tether::use_task);
}

tether::task<std::string> client(tcp::endpoint server, std::string text) {
    tcp::socket sock(co_await tether::this_task::executor());
    co_await sock.async_connect(server, tether::use_task);
    co_await asio::async_write(sock, asio::buffer(text), tether::use_task);
    std::string reply(text.size(), '\0');
    co_await asio::async_read(sock, asio::buffer(reply), tether::use_task);
    co_return reply;
}

tether::task<int> answer(int x) {
    co_await tether::yield_now();
    co_return x * 2;
}

// An Asio coroutine that calls into tether and awaits the result.
asio::awaitable<int> asio_side() {
    auto ex = co_await asio::this_coro::executor;
    const int v = co_await tether::spawn(ex, answer(20), asio::use_awaitable);
    co_return v + 2;
}

tether::task<int> amain() {
    int errors = 0;
    auto ex = co_await tether::this_task::executor();

    std::printf("1. echo over 127.0.0.1 and a timer, awaited with use_task\n");
    tcp::acceptor acceptor(ex, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const tcp::endpoint server = acceptor.local_endpoint();
    std::string reply;
    auto echo = [&](tether::task_group& tg) -> tether::task<> {
        tg.spawn(echo_once(acceptor));
        std::string hello = "hello, asio";
        reply = co_await client(server, std::move(hello));
    };
    co_await tether::with_task_group(echo);
    asio::steady_timer timer(ex, 10ms);
    co_await timer.async_wait(tether::use_task);
    std::printf("   echoed \"%s\", then a 10ms steady_timer fired\n", reply.c_str());
    if (reply != "hello, asio") ++errors;

    std::printf("2. a timeout cancels a pending async_read_some\n");
    tcp::socket quiet(ex);
    // A named closure: never invoke a capturing coroutine lambda in place.
    auto accept_and_stay_silent = [&]() -> tether::task<> {
        tcp::socket s = co_await acceptor.async_accept(tether::use_task);
        co_await tether::sleep_for(200ms); // never writes
    };
    auto silent_peer = [&](tether::task_group& tg) -> tether::task<> {
        tg.spawn(accept_and_stay_silent());
        co_await quiet.async_connect(server, tether::use_task);
        std::array<char, 16> buf{};
        try {
            (void)co_await tether::with_timeout(
                50ms, quiet.async_read_some(asio::buffer(buf), tether::use_task));
            ++errors;
        } catch (const tether::timeout_error&) {
            std::printf("   timeout_error after 50ms; the read was cancelled\n");
        }
        tg.cancel();
    };
    co_await tether::with_task_group(silent_peer);

    std::printf("3. spawn from plain Asio code, with a completion callback\n");
    int from_callback = 0;
    tether::event called;
    asio::post(ex, [&] { // plain Asio code, not a task
        tether::spawn(ex, answer(21), [&](std::exception_ptr e, int v) {
            if (!e) from_callback = v;
            called.set(); // the callback runs on the io_context's thread
        });
    });
    co_await called.wait();
    std::printf("   the callback got %d\n", from_callback);
    if (from_callback != 42) ++errors;

    std::printf("4. spawn from an asio::awaitable, awaited with use_awaitable\n");
    const int from_awaitable = co_await asio::co_spawn(ex, asio_side(), tether::use_task);
    std::printf("   asio::awaitable -> tether task -> %d\n", from_awaitable);
    if (from_awaitable != 42) ++errors;

    std::printf("%s\n", errors == 0 ? "OK" : "UNEXPECTED");
    co_return errors == 0 ? 0 : 1;
}

} // namespace

int main() {
    asio::io_context io;
    return tether::run(io, amain());
}
