// task_group_basics: a nursery waits for every child; a failing child cancels its
// siblings and the group throws task_group_error, which holds every failure.
//
// Mirrors the seeds' asyncio.TaskGroup lessons (seed 001 §2, §3.1 and §5).
#include <tether/task.hpp>
#include <tether/task_group.hpp>
#include <tether/testing/virtual_clock.hpp>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;

namespace {

double now_s(tether::clock::time_point start, tether::clock::time_point now) {
    return std::chrono::duration<double>(now - start).count();
}

tether::task<std::string> fetch(std::string_view name, std::chrono::milliseconds delay) {
    std::printf("  [%.*s] started  (delay=%lldms)\n", static_cast<int>(name.size()), name.data(),
                static_cast<long long>(delay.count()));
    try {
        co_await tether::sleep_for(delay);
    } catch (const tether::cancelled_error&) {
        // Report, then let it unwind: a cancelled child must not look successful.
        std::printf("  [%.*s] cancelled\n", static_cast<int>(name.size()), name.data());
        throw;
    }
    std::printf("  [%.*s] finished\n", static_cast<int>(name.size()), name.data());
    co_return std::string(name) + "-result";
}

tether::task<std::string> bad_task(std::string_view name, std::chrono::milliseconds delay) {
    co_await tether::sleep_for(delay);
    std::printf("  [%.*s] raises\n", static_cast<int>(name.size()), name.data());
    throw std::invalid_argument(std::string(name) + " failed!");
}

tether::task<int> amain() {
    int errors = 0;

    // 1. The group ends when its last child ends: ~2s, not 1 + 2 + 1.5.
    std::printf("1. three children, results read after the group:\n");
    const tether::clock::time_point t0 = co_await tether::this_task::now();
    tether::child<std::string> a, b, c; // outlive the group, so results stay readable
    auto three = [&](tether::task_group& tg) -> tether::task<> {
        a = tg.spawn(fetch("A", 1000ms));
        b = tg.spawn(fetch("B", 2000ms));
        c = tg.spawn(fetch("C", 1500ms));
        co_return; // returning from the body does not end the group: it joins
    };
    co_await tether::with_task_group(three);
    const double took = now_s(t0, co_await tether::this_task::now());
    std::printf("  results: %s, %s, %s in %.2fs\n\n", a.result().c_str(), b.result().c_str(),
                c.result().c_str(), took);
    if (took != 2.0) ++errors;

    // 2. Children created dynamically, and a child that spawns more children
    //    into the same group (allowed while the group runs or joins).
    std::printf("2. dynamic spawning:\n");
    const std::vector<std::string_view> urls{"/users", "/posts", "/comments"};
    std::vector<tether::child<std::string>> pages;
    auto crawl = [&](tether::task_group& tg) -> tether::task<> {
        for (std::string_view u : urls) pages.push_back(tg.spawn(fetch(u, 500ms)));
        co_await pages.front(); // wait for one child, then add a follow-up request
        pages.push_back(tg.spawn(fetch("/users/next-page", 500ms)));
    };
    co_await tether::with_task_group(crawl);
    for (auto& p : pages) std::printf("  -> %s\n", p.result().c_str());
    std::printf("\n");

    // 3. A failure cancels the siblings; the group rethrows it, wrapped in a
    //    task_group_error (even for a single failure), after every child ended.
    std::printf("3. a failing child:\n");
    tether::child<std::string> good_a, good_c;
    auto failing = [&](tether::task_group& tg) -> tether::task<> {
        good_a = tg.spawn(fetch("A", 500ms));
        tg.spawn(bad_task("B", 300ms));
        good_c = tg.spawn(fetch("C", 500ms));
        co_return;
    };
    try {
        co_await tether::with_task_group(failing);
        ++errors; // not reached
    } catch (const tether::task_group_error& group) {
        std::printf("  caught task_group_error with %zu failure(s):\n", group.exceptions().size());
        for (const std::exception_ptr& e : group.exceptions()) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                std::printf("    - %s\n", ex.what());
            }
        }
        if (!group.contains<std::invalid_argument>()) ++errors;
    }
    // A cancelled sibling's result() throws cancelled_error.
    try {
        (void)good_a.result();
        ++errors;
    } catch (const tether::cancelled_error&) {
        std::printf("  A's result(): cancelled_error (it never finished)\n");
    }

    std::printf("%s\n", errors == 0 ? "OK" : "UNEXPECTED");
    co_return errors == 0 ? 0 : 1;
}

} // namespace

int main() {
    asio::io_context io;
    tether::testing::virtual_clock clock(io);
    return tether::run(io, amain());
}
