// benchmarks/queue_bench.cpp — item throughput through a bounded queue on one
// thread: tether's bounded_queue<int> beside Asio's experimental::channel.
//
// Issue 4: 1 producer / 1 consumer at capacity 16 and 1024, at least 100 M
// items/s and at least 25× the channel; 4 producers / 4 consumers, at least
// 50 M items/s. Arguments: capacity, producers (= consumers).
#include "bench_support.hpp"

#include <asio/experimental/channel.hpp>

namespace {

constexpr std::int64_t items_per_iteration = 1 << 16;

// --- plain Asio: experimental::channel --------------------------------------------

using channel = asio::experimental::channel<void(asio::error_code, int)>;

asio::awaitable<void> asio_producer(channel& ch, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i)
        co_await ch.async_send(asio::error_code{}, static_cast<int>(i), asio::use_awaitable);
}

asio::awaitable<void> asio_consumer(channel& ch, std::int64_t n, std::int64_t& sum) {
    for (std::int64_t i = 0; i < n; ++i) sum += co_await ch.async_receive(asio::use_awaitable);
}

void queue_asio(benchmark::State& st) {
    const auto capacity = static_cast<std::size_t>(st.range(0));
    const auto workers = st.range(1);
    const std::int64_t per_worker = items_per_iteration / workers;
    asio::io_context io;
    std::int64_t sum = 0;
    for (auto _ : st) {
        channel ch(io, capacity);
        tether_bench::roots r;
        for (std::int64_t w = 0; w < workers; ++w) {
            tether_bench::start_asio_root(io, asio_consumer(ch, per_worker, sum), r);
            tether_bench::start_asio_root(io, asio_producer(ch, per_worker), r);
        }
        tether_bench::run_all(io, r);
    }
    benchmark::DoNotOptimize(sum);
    tether_bench::set_items(st, per_worker * workers);
}
BENCHMARK(queue_asio)
    ->Name("queue/asio_channel")
    ->ArgNames({"cap", "pc"})
    ->Args({16, 1})
    ->Args({1024, 1})
    ->Args({16, 4})
    ->Args({1024, 4});

#if defined(TETHER_BENCH_HAVE_QUEUE)

// --- tether: bounded_queue -------------------------------------------------------------

tether::task<> tether_producer(tether::bounded_queue<int>& q, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) co_await q.push(static_cast<int>(i));
}

tether::task<> tether_consumer(tether::bounded_queue<int>& q, std::int64_t n, std::int64_t& sum) {
    for (std::int64_t i = 0; i < n; ++i) sum += *co_await q.pop();
}

void queue_tether(benchmark::State& st) {
    const auto capacity = static_cast<std::size_t>(st.range(0));
    const auto workers = st.range(1);
    const std::int64_t per_worker = items_per_iteration / workers;
    asio::io_context io;
    std::int64_t sum = 0;
    for (auto _ : st) {
        tether::bounded_queue<int> q(capacity);
        tether_bench::roots r;
        for (std::int64_t w = 0; w < workers; ++w) {
            tether_bench::start_root(io, tether_consumer(q, per_worker, sum), r);
            tether_bench::start_root(io, tether_producer(q, per_worker), r);
        }
        tether_bench::run_all(io, r);
    }
    benchmark::DoNotOptimize(sum);
    tether_bench::set_items(st, per_worker * workers);
}
BENCHMARK(queue_tether)
    ->Name("queue/tether")
    ->ArgNames({"cap", "pc"})
    ->Args({16, 1})
    ->Args({1024, 1})
    ->Args({16, 4})
    ->Args({1024, 4});

#endif

} // namespace

BENCHMARK_MAIN();
