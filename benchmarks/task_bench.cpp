// benchmarks/task_bench.cpp — the cost of awaiting a task and of yielding,
// beside plain Asio (asio::awaitable, asio::post).
//
//  task_await/*   co_await of a coroutine that completes without suspending
//                 (issue 2: at most 15 ns).
//  yield64/*      64 tasks ready at once, each yielding in turn; time per yield
//                 (issue 2: at most 30 ns; Asio's post resumption ~130 ns here).
#include "bench_support.hpp"

namespace {

using tether_bench::roots;

// --- task await ---------------------------------------------------------------

tether::task<int> tether_leaf(int x) {
    co_return x + 1;
}

tether::task<> tether_await_loop(benchmark::State& st) {
    int sum = 0;
    for (auto _ : st) {
        sum += co_await tether_leaf(sum);
        benchmark::DoNotOptimize(sum);
    }
}

void task_await_tether(benchmark::State& st) {
    asio::io_context io;
    tether::run(io, tether_await_loop(st));
    tether_bench::set_items(st, 1);
}
BENCHMARK(task_await_tether)->Name("task_await/tether");

asio::awaitable<int> asio_leaf(int x) {
    co_return x + 1;
}

asio::awaitable<void> asio_await_loop(benchmark::State& st) {
    int sum = 0;
    for (auto _ : st) {
        sum += co_await asio_leaf(sum);
        benchmark::DoNotOptimize(sum);
    }
}

void task_await_asio(benchmark::State& st) {
    asio::io_context io;
    roots r;
    tether_bench::start_asio_root(io, asio_await_loop(st), r);
    tether_bench::run_all(io, r);
    tether_bench::set_items(st, 1);
}
BENCHMARK(task_await_asio)->Name("task_await/asio");

// --- yield with 64 ready tasks ----------------------------------------------------
//
// One measuring task runs the benchmark loop and yields once per iteration; 63
// others yield in a loop until it stops. The run queue is FIFO, so every
// iteration is one yield of each of the 64 tasks: items = iterations × 64.

constexpr int yield_tasks = 64;

tether::task<> tether_yielder(const bool& stop) {
    while (!stop) co_await tether::yield_now();
}

tether::task<> tether_yield_loop(benchmark::State& st, bool& stop) {
    for (auto _ : st) co_await tether::yield_now();
    stop = true;
}

void yield64_tether(benchmark::State& st) {
    asio::io_context io;
    roots r;
    bool stop = false;
    for (int i = 1; i < yield_tasks; ++i) tether_bench::start_root(io, tether_yielder(stop), r);
    tether_bench::start_root(io, tether_yield_loop(st, stop), r);
    tether_bench::run_all(io, r);
    tether_bench::set_items(st, yield_tasks);
}
BENCHMARK(yield64_tether)->Name("yield64/tether");

asio::awaitable<void> asio_yielder(const bool& stop) {
    while (!stop) co_await tether_bench::asio_yield();
}

asio::awaitable<void> asio_yield_loop(benchmark::State& st, bool& stop) {
    for (auto _ : st) co_await tether_bench::asio_yield();
    stop = true;
}

void yield64_asio(benchmark::State& st) {
    asio::io_context io;
    roots r;
    bool stop = false;
    for (int i = 1; i < yield_tasks; ++i) tether_bench::start_asio_root(io, asio_yielder(stop), r);
    tether_bench::start_asio_root(io, asio_yield_loop(st, stop), r);
    tether_bench::run_all(io, r);
    tether_bench::set_items(st, yield_tasks);
}
BENCHMARK(yield64_asio)->Name("yield64/asio");

} // namespace

BENCHMARK_MAIN();
