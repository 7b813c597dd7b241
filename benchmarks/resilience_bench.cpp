// benchmarks/resilience_bench.cpp — fast paths of the resilience kit: an
// uncontended rate_limiter::acquire and a circuit_breaker::call around a task
// that completes at once (issue 5: at most 30 ns each), beside the baseline of
// awaiting the same task directly. Plain Asio has no rate limiter or circuit
// breaker to compare with; the ratio is the overhead over the bare await.
#include "bench_support.hpp"

#include <chrono>

namespace {

tether::task<int> tether_leaf(int x) {
    co_return x + 1;
}

// --- baseline: the bare await -----------------------------------------------------------

tether::task<> bare_loop(benchmark::State& st) {
    int sum = 0;
    for (auto _ : st) {
        sum = co_await tether_leaf(sum);
        benchmark::DoNotOptimize(sum);
    }
}

void bare_await(benchmark::State& st) {
    asio::io_context io;
    tether::run(io, bare_loop(st));
    tether_bench::set_items(st, 1);
}
BENCHMARK(bare_await)->Name("resilience/bare_await");

#if defined(TETHER_BENCH_HAVE_RATE_LIMITER)

// --- rate_limiter::acquire with tokens to spare, then the task --------------------------

tether::task<> rate_limited_loop(benchmark::State& st) {
    // Refills far faster than the loop can take: every acquire finds a token.
    tether::rate_limiter limiter(1e12, 1u << 20);
    int sum = 0;
    for (auto _ : st) {
        co_await limiter.acquire();
        sum = co_await tether_leaf(sum);
        benchmark::DoNotOptimize(sum);
    }
}

void rate_limiter_tether(benchmark::State& st) {
    asio::io_context io;
    tether::run(io, rate_limited_loop(st));
    tether_bench::set_items(st, 1);
}
BENCHMARK(rate_limiter_tether)->Name("resilience/rate_limiter");

#endif

#if defined(TETHER_BENCH_HAVE_CIRCUIT_BREAKER)

// --- circuit_breaker::call around the task, circuit closed ---------------------------------

tether::task<> breaker_loop(benchmark::State& st) {
    tether::circuit_breaker breaker(5, std::chrono::seconds(30));
    int sum = 0;
    for (auto _ : st) {
        sum = co_await breaker.call(tether_leaf(sum));
        benchmark::DoNotOptimize(sum);
    }
}

void circuit_breaker_tether(benchmark::State& st) {
    asio::io_context io;
    tether::run(io, breaker_loop(st));
    tether_bench::set_items(st, 1);
}
BENCHMARK(circuit_breaker_tether)->Name("resilience/circuit_breaker");

#endif

} // namespace

BENCHMARK_MAIN();
