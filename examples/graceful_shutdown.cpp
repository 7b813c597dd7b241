// graceful_shutdown: SIGINT/SIGTERM -> a cancellation_source -> a tree of tasks.
// The first signal cancels the workers (their RAII clean-up runs as they unwind)
// and starts a shielded flush; a second signal forces the flush to stop.
//
// Mirrors the seeds' graceful-shutdown pattern (seed 003: signal handlers, a
// TaskGroup of workers, `finally: await self._cleanup()`).
//
// Under ctest the example sends itself the two signals (at 2.5s and 4s of virtual
// time). Run `example_graceful_shutdown --interactive` and press Ctrl-C (twice).
#include <tether/cancel_scope.hpp>
#include <tether/cancellation.hpp>
#include <tether/shield.hpp>
#include <tether/task.hpp>
#include <tether/task_group.hpp>
#include <tether/testing/virtual_clock.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>

using namespace std::chrono_literals;

namespace {

int jobs_done = 0, connections_open = 0, flushed = 0;

struct connection { // finally-style clean-up: runs however the worker ends
    int id;
    explicit connection(int i) : id(i) {
        ++connections_open;
    }
    ~connection() {
        --connections_open;
        std::printf("  worker %d: connection closed\n", id);
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
};

tether::task<> worker(int id) {
    connection conn(id);
    for (;;) {
        co_await tether::sleep_for(1s); // a cancellation point
        ++jobs_done;
        std::printf("  worker %d: job done\n", id);
    }
}

tether::task<> flush() { // the async part of the clean-up: ten 1s steps
    for (flushed = 0; flushed < 10; ++flushed) co_await tether::sleep_for(1s);
    std::printf("  flush complete\n");
}

tether::task<> app(tether::cancellation_token force) {
    bool stopping = false;
    try {
        auto workers = [](tether::task_group& tg) -> tether::task<> {
            for (int id = 2; id <= 3; ++id) tg.spawn(worker(id));
            co_await worker(1); // the body is worker 1
        };
        co_await tether::with_task_group(workers);
    } catch (const tether::cancelled_error&) {
        stopping = true; // no co_await in a handler: do the async clean-up after it
    }
    if (stopping) {
        std::printf("  workers stopped; flushing (shielded from the first signal)\n");
        co_await tether::shield(tether::with_cancellation(force, flush()));
    }
}

// Turns signals into cancellation requests: the first asks nicely, the second forces.
tether::task<> listen(asio::signal_set& signals, tether::cancellation_source& shutdown,
                      tether::cancellation_source& force) {
    const int first = co_await signals.async_wait(tether::use_task);
    std::printf("signal %d: shutting down (again to force)\n", first);
    shutdown.request_cancel(first == SIGINT ? "SIGINT" : "SIGTERM");
    const int second = co_await signals.async_wait(tether::use_task);
    std::printf("signal %d: forcing\n", second);
    force.request_cancel("forced");
}

tether::task<> impatient_user() { // ctest mode: the "user" presses Ctrl-C twice
    co_await tether::sleep_for(2500ms);
    std::raise(SIGINT);
    co_await tether::sleep_for(1500ms);
    std::raise(SIGINT);
}

tether::task<int> amain(bool interactive) {
    asio::signal_set signals(co_await tether::this_task::executor(), SIGINT, SIGTERM);
    tether::cancellation_source shutdown, force; // request_cancel() is thread-safe
    auto body = [&](tether::task_group& tg) -> tether::task<> {
        tg.spawn(listen(signals, shutdown, force));
        if (!interactive) tg.spawn(impatient_user());
        try {
            co_await tether::with_cancellation(shutdown.token(), app(force.token()));
        } catch (const tether::cancelled_error& e) {
            std::printf("app ended: %s\n", e.what());
        }
        tg.cancel(); // stop listening; the group then ends normally
    };
    co_await tether::with_task_group(body);
    std::printf("jobs done: %d, connections open: %d, flush steps: %d/10\n", jobs_done,
                connections_open, flushed);
    const bool ok = interactive || (jobs_done == 6 && connections_open == 0 && flushed == 1);
    std::printf("%s\n", ok ? "OK" : "UNEXPECTED");
    co_return ok ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    const bool interactive = argc > 1 && std::strcmp(argv[1], "--interactive") == 0;
    asio::io_context io;
    // Signals arrive through real I/O: time may jump only after 20ms of real idle
    // time, so that a signal is always seen before the next virtual second.
    std::optional<tether::testing::virtual_clock> clock;
    if (!interactive) clock.emplace(io, 20ms);
    return tether::run(io, amain(interactive));
}
