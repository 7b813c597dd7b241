// timeouts: relative and absolute deadlines, nesting, move_on_after, and a
// deadline moved while the work runs (an idle timeout).
//
// Mirrors the seeds' timeout lessons (seed 002 asyncio.wait_for, seed 003
// asyncio.timeout, seed 004 bounded_call returning None on timeout). As in
// asyncio, timeout_error is seen only *outside* the scope; inside, the work sees
// cancelled_error.
#include <tether/cancel_scope.hpp>
#include <tether/task.hpp>
#include <tether/testing/virtual_clock.hpp>
#include <tether/timeout.hpp>

#include <chrono>
#include <cstdio>
#include <optional>

using namespace std::chrono_literals;

namespace {

tether::clock::time_point t0;
double at(tether::clock::time_point now) {
    return std::chrono::duration<double>(now - t0).count();
}

tether::task<int> slow(std::chrono::milliseconds d, const char* name) {
    try {
        co_await tether::sleep_for(d);
    } catch (const tether::cancelled_error&) { // inside: cancelled_error, never timeout_error
        std::printf("    %s: cancelled inside\n", name);
        throw;
    }
    co_return static_cast<int>(d.count());
}

tether::task<int> amain() {
    int errors = 0;
    t0 = co_await tether::this_task::now();

    std::printf("1. relative: with_timeout(1s, 3s of work)\n");
    bool timed_out = false;
    try {
        (void)co_await tether::with_timeout(1s, slow(3000ms, "work"));
    } catch (const tether::timeout_error& e) { // no co_await in a handler (C++ rule)
        timed_out = true;
        std::printf("    caught outside: %s\n", e.what());
    }
    std::printf("    at %.1fs\n", at(co_await tether::this_task::now()));
    if (!timed_out) ++errors;

    std::printf("2. absolute: one deadline shared by three 1s steps, 2.5s from now\n");
    const tether::clock::time_point deadline = (co_await tether::this_task::now()) + 2500ms;
    int done = 0;
    try {
        for (int step = 0; step < 3; ++step) {
            (void)co_await tether::with_deadline(deadline, slow(1000ms, "step"));
            ++done;
        }
    } catch (const tether::timeout_error&) {
        std::printf("    %d steps done before the deadline\n", done);
    }
    if (done != 2) ++errors;

    std::printf("3. nested: the scope whose deadline fires raises\n");
    auto inner_fires = [&]() -> tether::task<int> {
        try {
            co_return co_await tether::with_timeout(1s, slow(3000ms, "inner work"));
        } catch (const tether::timeout_error&) {
            std::printf("    inner timeout caught inside the outer one; fallback\n");
        }
        co_return -1; // the outer 5s budget is still running
    };
    const int r = co_await tether::with_timeout(5s, inner_fires());
    std::printf("    outer returned %d\n", r);
    try { // outer 1s around inner 5s: the outer raises; the inner does not interfere
        auto outer_first = [&]() -> tether::task<int> {
            co_return co_await tether::with_timeout(5s, slow(3000ms, "inner work"));
        };
        (void)co_await tether::with_timeout(1s, outer_first());
        ++errors;
    } catch (const tether::timeout_error&) {
        std::printf("    outer timeout raised (the inner passed it through)\n");
    }

    std::printf("4. move_on_after: an empty optional instead of an exception\n");
    std::optional<int> fast = co_await tether::move_on_after(1s, slow(200ms, "fast"));
    std::optional<int> late = co_await tether::move_on_after(1s, slow(3000ms, "late"));
    std::printf("    fast -> %d, late -> %s\n", fast.value_or(-1), late ? "value" : "nullopt");
    if (!fast || late) ++errors;

    std::printf("5. a deadline moved while running: 1s idle timeout, reset on progress\n");
    int chunks = 0;
    auto download = [&](tether::cancel_scope& scope) -> tether::task<int> {
        scope.reschedule(1s); // the first chunk is due within 1s
        for (std::chrono::milliseconds gap : {600ms, 800ms, 900ms, 1500ms, 100ms}) {
            co_await tether::sleep_for(gap); // waiting for the next chunk
            ++chunks;
            scope.reschedule(1s); // progress: the idle deadline moves 1s ahead
            std::printf("    chunk %d at %.1fs, deadline now %.1fs\n", chunks,
                        at(co_await tether::this_task::now()), at(scope.deadline()));
        }
        co_return chunks;
    };
    tether::cancel_scope idle; // caller-owned: inspect it afterwards
    std::optional<int> all = co_await tether::with_cancel_scope(idle, download);
    std::printf("    %s after %d chunks at %.1fs (deadline_expired=%d)\n",
                all ? "finished" : "stalled", chunks, at(co_await tether::this_task::now()),
                static_cast<int>(idle.deadline_expired()));
    if (all || chunks != 3 || !idle.cancelled_caught()) ++errors;

    std::printf("%s\n", errors == 0 ? "OK" : "UNEXPECTED");
    co_return errors == 0 ? 0 : 1;
}

} // namespace

int main() {
    asio::io_context io;
    tether::testing::virtual_clock clock(io);
    return tether::run(io, amain());
}
