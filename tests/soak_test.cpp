// Soak (issue 8): 10 M items through a bounded queue and 1 M children through
// task groups, with the process's resident memory read before, after warm-up
// and at the end. Memory must stay flat after warm-up (frames and queue storage
// are recycled, nothing accumulates); under ASan, whose quarantine holds freed
// memory on purpose, only LeakSanitizer's verdict at exit applies. The figures
// are printed for the report.
#include <tether/bounded_queue.hpp>

#include <tether/task_group.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <cstdio>
#include <fstream>
#include <string>

using tether::task;
using tether::task_group;
using tether::with_task_group;
using tether_test::run_test;

namespace {

// A field of /proc/self/status in KiB (VmRSS: resident now, VmHWM: peak).
long status_kib(const char* field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    const std::string key = std::string(field) + ":";
    while (std::getline(in, line)) {
        if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
    }
    return -1;
}

// Resident memory may grow by at most this much after warm-up.
constexpr long allowed_growth_kib = 8 * 1024;

void check_flat(const char* what, long warm, long end) {
    std::printf("soak: %s: VmRSS %ld KiB after warm-up, %ld KiB at the end, VmHWM %ld KiB\n", what,
                warm, end, status_kib("VmHWM"));
#if TETHER_ASAN
    (void)warm;
    (void)end;
#else
    CHECK(end - warm <= allowed_growth_kib);
#endif
}

} // namespace

TEST_CASE("soak: 10 M items through a bounded queue keep memory flat", "[soak][bounded_queue]") {
    constexpr long items = 10'000'000;
    long warm = 0;
    long sum = 0;
    run_test([&]() -> task<void> {
        tether::bounded_queue<long> q(64);
        auto producer = [&]() -> task<void> {
            for (long i = 0; i < items; ++i) {
                if (i == items / 10) warm = status_kib("VmRSS");
                co_await q.push(i);
            }
            q.close();
        };
        auto consumer = [&]() -> task<void> {
            while (auto v = co_await q.pop()) sum += *v;
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(producer());
            tg.spawn(consumer());
            co_return;
        };
        co_await with_task_group(body);
    });
    CHECK(sum == items * (items - 1) / 2); // every item once
    check_flat("10 M queue items", warm, status_kib("VmRSS"));
}

TEST_CASE("soak: 1 M children through task groups keep memory flat", "[soak][task_group]") {
    constexpr int groups = 100;
    constexpr int children_each = 10'000;
    long warm = 0;
    long finished = 0;
    run_test([&]() -> task<void> {
        auto child_task = [&]() -> task<void> {
            co_await tether::yield_now();
            ++finished;
        };
        auto body = [&](task_group& tg) -> task<void> {
            for (int i = 0; i < children_each; ++i) tg.spawn(child_task());
            co_return;
        };
        for (int g = 0; g < groups; ++g) {
            if (g == groups / 10) warm = status_kib("VmRSS");
            co_await with_task_group(body);
        }
    });
    CHECK(finished == long{groups} * children_each);
    check_flat("1 M children", warm, status_kib("VmRSS"));
}
