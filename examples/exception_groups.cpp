// exception_groups: the seeds' `except*` exercise in C++ — six flaky operations
// in a task group; handle the connection errors and the timeouts separately and
// rethrow whatever is left.
//
// Mirrors seed 001 §3 and practice problem 2 (ExceptionGroup, except*).
// Python's                       tether's
//   except* ConnectionError as g   rest = group.handle<connection_error>(f)
//   except* TimeoutError as g      rest = rest->handle<tether::timeout_error>(f)
//   (the rest propagates)          if (rest) throw *rest;
//   eg.split(ConnectionError)      group.split<connection_error>() -> {match, rest}
#include <tether/event.hpp>
#include <tether/task.hpp>
#include <tether/task_group.hpp>
#include <tether/testing/virtual_clock.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct connection_error : std::runtime_error { // Python's ConnectionError
    using std::runtime_error::runtime_error;
};

// The seed's operation: ops 3 and 6 lose the connection, ops 1 and 4 time out
// (raised directly, as the seed raises TimeoutError; tether's with_timeout
// raises the same type), ops 2 and 5 succeed. Op 7 has a bug.
// With `go`, the operations fail at the same instant (see round 2).
tether::task<std::string> flaky_operation(int op_id, tether::event* go) {
    if (go)
        co_await go->wait();
    else
        co_await tether::sleep_for(op_id * 100ms);
    const std::string name = "op " + std::to_string(op_id);
    if (op_id == 7) throw std::logic_error(name + ": a bug, not a network problem");
    if (op_id % 3 == 0) throw connection_error(name + ": connection lost");
    if (op_id % 3 == 1) throw tether::timeout_error();
    co_return name + ": success";
}

// Runs ops 1..n in a task group and classifies the failures, except*-style.
// Returns the group of unhandled failures, if any, for the caller to rethrow.
tether::task<std::optional<tether::task_group_error>> run_ops(int n, tether::event* go) {
    std::vector<tether::child<std::string>> ops;
    auto body = [&](tether::task_group& tg) -> tether::task<> {
        for (int id = 1; id <= n; ++id) ops.push_back(tg.spawn(flaky_operation(id, go)));
        if (go) {
            co_await tether::yield_now(); // let every child start and wait in go->wait()
            go->set(); // all wake at once: each completed its wait, none is cancelled
        }
    };
    try {
        co_await tether::with_task_group(body);
    } catch (const tether::task_group_error& group) {
        std::optional<tether::task_group_error> rest = group.handle<connection_error>(
            [](connection_error& e) { std::printf("  except* connection_error: %s\n", e.what()); });
        if (rest)
            rest = rest->handle<tether::timeout_error>([](tether::timeout_error& e) {
                std::printf("  except* timeout_error:    %s\n", e.what());
            });
        for (auto& op : ops) // the survivors' results are still readable
            if (op.done()) try {
                    std::printf("  result: %s\n", op.result().c_str());
                } catch (const tether::cancelled_error&) {
                    std::printf("  result: cancelled (a sibling failed first)\n");
                } catch (const std::exception&) {
                    // this op's failure is a member of the group
                }
        co_return rest;
    }
    co_return std::nullopt;
}

tether::task<int> amain() {
    int errors = 0;

    std::printf("round 1, as in the seed (op i fails after i * 100ms):\n");
    // The first failure cancels the rest: only op 1's timeout reaches except*.
    std::optional<tether::task_group_error> left = co_await run_ops(6, nullptr);
    if (left) ++errors;

    std::printf("\nround 2, all six fail at the same instant (an outage):\n");
    tether::event outage;
    left = co_await run_ops(6, &outage);
    if (left) ++errors;

    std::printf("\nround 3, plus op 7 with a bug: handled types are removed, the rest rethrown\n");
    tether::event outage2;
    left = co_await run_ops(7, &outage2);
    try {
        if (left) throw *left; // the unhandled members, still a task_group_error
        ++errors;
    } catch (const tether::task_group_error& rest) {
        std::printf("  rethrown: %s\n", rest.what());
        if (rest.exceptions().size() != 1 || !rest.contains<std::logic_error>()) ++errors;
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
