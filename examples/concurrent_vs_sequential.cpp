// concurrent_vs_sequential: three "cooking" tasks, awaited one after another and
// then together. Sequential awaits take the sum of the durations; when_all takes
// the longest one.
//
// Mirrors the seeds' "running tasks concurrently" lesson (asyncio.gather and the
// cooking problem, seed 002).
//
// The clock is tether::testing::virtual_clock: whenever every task waits, time
// jumps to the next deadline, so the 16 "seconds" below run in microseconds and
// the printed times are exact.
#include <tether/task.hpp>
#include <tether/testing/virtual_clock.hpp>
#include <tether/when.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Seconds of tether's clock since `start` (virtual time here).
double seconds_since(tether::clock::time_point start, tether::clock::time_point now) {
    return std::chrono::duration<double>(now - start).count();
}

// A coroutine parameter is copied into the frame: take names by value (a
// string_view of a literal is safe), never a reference to a caller's temporary.
tether::task<std::string> cook(std::string_view food, std::chrono::seconds duration) {
    std::printf("  start cooking %.*s (%llds)\n", static_cast<int>(food.size()), food.data(),
                static_cast<long long>(duration.count()));
    co_await tether::sleep_for(duration); // a cancellation point; never blocks the thread
    std::printf("  %.*s is ready\n", static_cast<int>(food.size()), food.data());
    co_return std::string(food) + " done";
}

tether::task<std::string> simmer(std::chrono::seconds duration) {
    co_await tether::sleep_for(duration);
    co_return "side dish";
}

tether::task<int> amain() {
    // 1. Sequential: each co_await waits for its task before the next one starts.
    std::printf("sequential awaits:\n");
    const tether::clock::time_point t0 = co_await tether::this_task::now();
    std::string rice = co_await cook("rice", 3s);
    std::string vegetables = co_await cook("vegetables", 5s);
    std::string meat = co_await cook("meat", 8s);
    const double sequential = seconds_since(t0, co_await tether::this_task::now());
    std::printf("  -> %s, %s, %s in %.1fs (the sum: 3 + 5 + 8)\n\n", rice.c_str(),
                vegetables.c_str(), meat.c_str(), sequential);

    // 2. Concurrent: when_all starts all three and returns when the last one ends.
    //    The results come back in argument order, whatever order they finish in.
    std::printf("when_all:\n");
    const tether::clock::time_point t1 = co_await tether::this_task::now();
    // Bind the tuple first, then unpack (no structured binding of a co_await:
    // GCC 15 PR 124584 skips destructors there).
    std::tuple<std::string, std::string, std::string> meals =
        co_await tether::when_all(cook("rice", 3s), cook("vegetables", 5s), cook("meat", 8s));
    const double concurrent = seconds_since(t1, co_await tether::this_task::now());
    std::printf("  -> %s, %s, %s in %.1fs (the longest: 8)\n\n", std::get<0>(meals).c_str(),
                std::get<1>(meals).c_str(), std::get<2>(meals).c_str(), concurrent);

    // 3. The same with a vector, for a number of tasks known only at run time.
    std::printf("when_all over a vector of 10 tasks of 1..10s:\n");
    std::vector<tether::task<std::string>> dishes;
    for (int i = 1; i <= 10; ++i) dishes.push_back(simmer(std::chrono::seconds(i)));
    const tether::clock::time_point t2 = co_await tether::this_task::now();
    std::vector<std::string> sides = co_await tether::when_all(std::move(dishes));
    const double many = seconds_since(t2, co_await tether::this_task::now());
    std::printf("  -> %zu side dishes in %.1fs (not 55)\n", sides.size(), many);

    const bool ok = sequential == 16.0 && concurrent == 8.0 && many == 10.0 && sides.size() == 10;
    std::printf("%s\n", ok ? "OK" : "UNEXPECTED TIMES");
    co_return ok ? 0 : 1;
}

} // namespace

int main() {
    asio::io_context io;
    tether::testing::virtual_clock clock(io); // install before starting tasks
    return tether::run(io, amain());
}
