// fail_fast: one step of a checkout fails. Who notices, and what still happens?
//   1. BROKEN  plain asio::co_spawn + a counter: the failure is reported, but the
//              siblings run on and the confirmation e-mail goes out anyway.
//   2. FIXED   tether::when_all (a task group): the failure cancels the siblings
//              at their next cancellation point; task_group_error holds it.
//   3. ALSO    tether::gather_settled: no cancellation on purpose; every outcome
//              comes back, values and exceptions side by side.
//
// Mirrors the seeds' "gather vs TaskGroup" lesson (seed 001 §4, seed 000): gather
// does not cancel siblings on failure; return_exceptions=True is gather_settled.
#include <tether/task.hpp>
#include <tether/task_group.hpp>
#include <tether/testing/virtual_clock.hpp>
#include <tether/when.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

int emails_sent = 0; // the side effect that must not happen after a failed payment

// --- 1. unstructured: asio::awaitable + co_spawn (real time, short delays) ---
asio::awaitable<void> step_asio(int ms, bool fails) {
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
    co_await timer.async_wait(asio::use_awaitable);
    if (fails) throw std::runtime_error("payment declined");
    if (ms == 30) {
        ++emails_sent;
        std::printf("  e-mail sent (after the failure!)\n");
    }
}

void unstructured(asio::io_context& io) {
    int pending = 3;
    std::exception_ptr first_error;
    auto on_done = [&](std::exception_ptr e) {
        if (e && !first_error) {
            first_error = e;
            std::printf("  failure reported; nothing cancels the other two\n");
        }
        --pending;
    };
    asio::co_spawn(io, step_asio(10, true), on_done);  // charge card
    asio::co_spawn(io, step_asio(20, false), on_done); // reserve stock
    asio::co_spawn(io, step_asio(30, false), on_done); // send e-mail
    io.run();
    io.restart();
    std::printf("  pending=%d, emails_sent=%d\n\n", pending, emails_sent);
}

// --- 2 and 3: tether tasks (virtual time) ------------------------------------
tether::task<std::string> step(const char* what, std::chrono::milliseconds d, bool fails) {
    try {
        co_await tether::sleep_for(d);
    } catch (const tether::cancelled_error&) {
        std::printf("  %s: cancelled\n", what);
        throw;
    }
    if (fails) throw std::runtime_error(std::string(what) + ": payment declined");
    if (std::string(what) == "e-mail") {
        ++emails_sent;
        std::printf("  e-mail sent\n");
    }
    co_return std::string(what) + " ok";
}

tether::task<int> structured() {
    int errors = 0;
    std::printf("2. FIXED: when_all cancels the siblings of a failed task\n");
    emails_sent = 0;
    try {
        (void)co_await tether::when_all(step("card", 100ms, true), step("stock", 200ms, false),
                                        step("e-mail", 300ms, false));
        ++errors;
    } catch (const tether::task_group_error& group) {
        std::printf("  task_group_error: %s\n", group.what());
    }
    std::printf("  emails_sent=%d\n\n", emails_sent);
    if (emails_sent != 0) ++errors;

    std::printf("3. gather_settled: every task runs; outcomes come back in order\n");
    std::vector<tether::task<std::string>> steps;
    steps.push_back(step("card", 100ms, true));
    steps.push_back(step("stock", 200ms, false));
    steps.push_back(step("e-mail", 300ms, false));
    std::vector<tether::outcome<std::string>> outcomes =
        co_await tether::gather_settled(std::move(steps));
    for (auto& o : outcomes) {
        if (o) {
            std::printf("  value: %s\n", o.value().c_str());
        } else {
            try {
                std::rethrow_exception(o.error());
            } catch (const std::exception& e) {
                std::printf("  error: %s\n", e.what());
            }
        }
    }
    std::printf("  emails_sent=%d (use it when the tasks are independent)\n", emails_sent);
    if (emails_sent != 1 || outcomes[0].has_value()) ++errors;
    co_return errors;
}

} // namespace

int main() {
    asio::io_context io;
    std::printf("1. BROKEN: co_spawn + counter\n");
    unstructured(io);
    const bool broken_as_expected = emails_sent == 1;

    tether::testing::virtual_clock clock(io); // tether's timers only; before the tasks
    const int errors = tether::run(io, structured());
    std::printf("%s\n", broken_as_expected && errors == 0 ? "OK" : "UNEXPECTED");
    return broken_as_expected && errors == 0 ? 0 : 1;
}
