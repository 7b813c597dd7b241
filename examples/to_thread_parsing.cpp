// to_thread_parsing: CPU-heavy parsing offloaded to a thread pool while the
// event loop keeps serving I/O (here: a 5ms heartbeat).
//   BROKEN  parse on the event loop: no other task runs until it returns.
//   FIXED   co_await tether::to_thread(pool, parse): the heartbeat keeps ticking.
//
// Mirrors the seeds' warning "mixing blocking and async code blocks the entire
// event loop" (seed 002; asyncio.to_thread). Real time here: the point is that
// a thread really works while the loop runs.
#include <tether/task.hpp>
#include <tether/task_group.hpp>
#include <tether/thread.hpp>
#include <tether/timeout.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

using namespace std::chrono_literals;

namespace {

// A "document": lines of comma-separated numbers.
std::string make_document() {
    std::string doc;
    for (int line = 0; line < 60'000; ++line) {
        for (int col = 0; col < 8; ++col) doc += std::to_string(line * 8 + col) + ',';
        doc += '\n';
    }
    return doc;
}

// Pure CPU work that touches nothing of the task tree: safe on another thread.
long long parse_and_sum(std::string_view doc) {
    long long total = 0, value = 0;
    for (int round = 0; round < 4; ++round) { // make it heavy enough to notice
        for (char ch : doc) {
            if (ch >= '0' && ch <= '9') {
                value = value * 10 + (ch - '0');
            } else {
                total += value;
                value = 0;
            }
        }
    }
    return total / 4;
}

struct heartbeat {
    bool parsing = false;
    std::atomic<int> ticks_while_parsing{0}; // written by the loop, read by the parsing thread
    tether::task<> run() {
        for (;;) {
            co_await tether::sleep_for(5ms); // stands for sockets, timers, other requests
            if (parsing) ++ticks_while_parsing;
        }
    }
};

// Parses on the pool thread, then returns only once the event loop has shown it
// ran meanwhile (one heartbeat), or after 2 s: a fast machine parses in less
// than a heartbeat, and what this example shows must not depend on that.
long long parse_while_loop_runs(std::string_view doc, const heartbeat& hb) {
    const long long sum = parse_and_sum(doc);
    const auto give_up = std::chrono::steady_clock::now() + 2s;
    while (hb.ticks_while_parsing.load() == 0 && std::chrono::steady_clock::now() < give_up)
        std::this_thread::sleep_for(1ms);
    return sum;
}

tether::task<int> parse_with(bool offload, asio::thread_pool& pool, const std::string& doc,
                             long long& result) {
    heartbeat hb;
    auto body = [&](tether::task_group& tg) -> tether::task<> {
        tg.spawn(hb.run());
        co_await tether::sleep_for(20ms); // let the heartbeat start
        hb.parsing = true;
        if (offload) {
            auto job = [&doc, &hb] {
                return parse_while_loop_runs(doc, hb);
            }; // named: see NOTES.md
            result = co_await tether::to_thread(pool, job);
        } else {
            result = parse_and_sum(doc); // BROKEN: blocks the loop
        }
        hb.parsing = false;
        tg.cancel(); // stop the heartbeat; the group ends normally
    };
    co_await tether::with_task_group(body);
    co_return hb.ticks_while_parsing.load();
}

tether::task<int> amain() {
    asio::thread_pool pool(2); // CPU-bound work gets its own small pool
    const std::string doc = make_document();
    long long broken_sum = 0, fixed_sum = 0;

    const int broken_ticks = co_await parse_with(false, pool, doc, broken_sum);
    std::printf("BROKEN: parsed inline; the heartbeat ticked %d times meanwhile\n", broken_ticks);

    const int fixed_ticks = co_await parse_with(true, pool, doc, fixed_sum);
    std::printf("FIXED:  to_thread; the heartbeat ticked %d times meanwhile\n", fixed_ticks);

    // Cancellation cannot interrupt a running function: the task waits for it,
    // then throws cancelled_error (the result is discarded).
    auto job = [&doc] { return parse_and_sum(doc); };
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<long long> r = co_await tether::move_on_after(1ms, tether::to_thread(pool, job));
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    std::printf("with a 1ms limit: %s after %lldms (it waited for the thread)\n",
                r ? "a result" : "no result", static_cast<long long>(waited.count()));

    const bool ok = broken_ticks == 0 && fixed_ticks > 0 && broken_sum == fixed_sum;
    std::printf("sum %lld. %s\n", fixed_sum, ok ? "OK" : "UNEXPECTED");
    co_return ok ? 0 : 1;
}

} // namespace

int main() {
    asio::io_context io;
    return tether::run(io, amain());
}
