// benchmarks/bench_support.hpp — helpers shared by the *_bench.cpp files.
//
// Every benchmark runs on one thread and one io_context, like the task trees it
// measures. tether roots are started with tether::spawn and a counter (not with
// task_group), so that the benchmarks of the core do not depend on the scopes
// layer; Asio baselines use asio::co_spawn the same way.
#pragma once

#include <tether/task.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <exception>
#include <utility>

// Headers that other engineers add over time: each benchmark that needs one is
// compiled only when it exists, so the benchmarks build at every point.
#if __has_include(<tether/task_group.hpp>)
#include <tether/task_group.hpp>
#define TETHER_BENCH_HAVE_TASK_GROUP 1
#endif
#if __has_include(<tether/timeout.hpp>)
#include <tether/timeout.hpp>
#define TETHER_BENCH_HAVE_TIMEOUT 1
#endif
#if __has_include(<tether/when.hpp>)
#include <tether/when.hpp>
#define TETHER_BENCH_HAVE_WHEN 1
#endif
#if __has_include(<tether/bounded_queue.hpp>)
#include <tether/bounded_queue.hpp>
#define TETHER_BENCH_HAVE_QUEUE 1
#endif
#if __has_include(<tether/semaphore.hpp>)
#include <tether/semaphore.hpp>
#define TETHER_BENCH_HAVE_SEMAPHORE 1
#endif
#if __has_include(<tether/event.hpp>)
#include <tether/event.hpp>
#define TETHER_BENCH_HAVE_EVENT 1
#endif
#if __has_include(<tether/resilience/rate_limiter.hpp>)
#include <tether/resilience/rate_limiter.hpp>
#define TETHER_BENCH_HAVE_RATE_LIMITER 1
#endif
#if __has_include(<tether/resilience/circuit_breaker.hpp>)
#include <tether/resilience/circuit_breaker.hpp>
#define TETHER_BENCH_HAVE_CIRCUIT_BREAKER 1
#endif

namespace tether_bench {

/// Counts live root tasks started with start_root / start_asio_root and keeps
/// the first exception, which run_all rethrows.
struct roots {
    int live = 0;
    std::exception_ptr error;

    auto done_handler() {
        ++live;
        return [this](std::exception_ptr e) {
            --live;
            if (e && !error) error = e;
        };
    }
};

/// Starts `t` as a tether root on `io`.
inline void start_root(asio::io_context& io, tether::task<> t, roots& r) {
    tether::spawn(io, std::move(t), r.done_handler());
}

/// Starts `a` as a plain Asio coroutine on `io`.
inline void start_asio_root(asio::io_context& io, asio::awaitable<void> a, roots& r) {
    asio::co_spawn(io, std::move(a), r.done_handler());
}

/// Runs `io` until every root has finished; rethrows the first failure.
inline void run_all(asio::io_context& io, roots& r) {
    io.restart();
    while (r.live > 0 && io.run_one() != 0) {
    }
    io.restart();
    io.poll(); // completion handlers and drains that are still queued
    if (r.error) std::rethrow_exception(std::exchange(r.error, nullptr));
    if (r.live > 0)
        throw std::runtime_error("benchmark: io_context ran out of work with roots alive");
}

/// The "yield once" of plain Asio: resume through the io_context's queue.
inline asio::awaitable<void> asio_yield() {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
}

/// Reports `items` per benchmark iteration (so that `items_per_second`, and
/// the driver's ns/item, are per element, not per iteration).
inline void set_items(benchmark::State& st, std::int64_t per_iteration) {
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()) * per_iteration);
}

} // namespace tether_bench
