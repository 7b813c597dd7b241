// benchmarks/timeout_bench.cpp — a timeout around work that completes at once:
// tether's with_timeout beside plain Asio's `op || timer` (awaitable_operators).
//
// Issue 3: at most 100 ns (Asio's `op || timer` measured ~3–8 µs here): arming
// and disarming a deadline must not cost a syscall or an Asio timer operation.
#include "bench_support.hpp"

#include <asio/experimental/awaitable_operators.hpp>

#include <chrono>
#include <variant>

namespace {

using namespace std::chrono_literals;

// --- the work alone (what the timeout wraps) ----------------------------------------

asio::awaitable<int> asio_leaf(int x) {
    co_return x + 1;
}

// --- plain Asio: op || timer -----------------------------------------------------

asio::awaitable<void> asio_timeout_loop(benchmark::State& st) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    int sum = 0;
    for (auto _ : st) {
        timer.expires_after(1s);
        std::variant<int, std::monostate> r =
            co_await (asio_leaf(sum) || timer.async_wait(asio::use_awaitable));
        if (r.index() == 0) sum = std::get<0>(r);
        benchmark::DoNotOptimize(sum);
    }
}

void timeout_asio(benchmark::State& st) {
    asio::io_context io;
    tether_bench::roots r;
    tether_bench::start_asio_root(io, asio_timeout_loop(st), r);
    tether_bench::run_all(io, r);
    tether_bench::set_items(st, 1);
}
BENCHMARK(timeout_asio)->Name("timeout/asio_or_timer");

#if defined(TETHER_BENCH_HAVE_TIMEOUT)

// --- tether: with_timeout ------------------------------------------------------------

tether::task<int> tether_leaf(int x) {
    co_return x + 1;
}

tether::task<> tether_timeout_loop(benchmark::State& st) {
    int sum = 0;
    for (auto _ : st) {
        sum = co_await tether::with_timeout(1s, tether_leaf(sum));
        benchmark::DoNotOptimize(sum);
    }
}

void timeout_tether(benchmark::State& st) {
    asio::io_context io;
    tether::run(io, tether_timeout_loop(st));
    tether_bench::set_items(st, 1);
}
BENCHMARK(timeout_tether)->Name("timeout/tether");

#endif

} // namespace

BENCHMARK_MAIN();
