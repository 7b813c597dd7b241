// benchmarks/semaphore_bench.cpp — tether's semaphore beside the plain-Asio
// "timer waiters" idiom (a counter plus one steady_timer per waiter, cancelled
// to wake it), on one thread.
//
// Issue 4: uncontended acquire + release at most 5 ns; with a limit of 4 and 64
// tasks that each yield once while holding a permit, at most 100 ns per
// acquisition (Asio idioms measured ~600–800 ns here).
#include "bench_support.hpp"

#include <deque>

namespace {

constexpr int contended_limit = 4;
constexpr int contended_tasks = 64;
constexpr int acquisitions_per_task = 64;

// --- plain Asio: counter + timer waiters ---------------------------------------------

/// FIFO semaphore in the style Asio users write by hand: a waiter parks on its
/// own steady_timer (expiry: never); release() hands the permit to the oldest
/// waiter by cancelling its timer.
class asio_semaphore {
public:
    explicit asio_semaphore(int permits) : count_(permits) {}

    asio::awaitable<void> acquire() {
        if (count_ > 0 && waiters_.empty()) {
            --count_;
            co_return;
        }
        asio::steady_timer t(co_await asio::this_coro::executor,
                             asio::steady_timer::time_point::max());
        waiters_.push_back(&t);
        asio::error_code ec;
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        // Woken by release(): the permit was handed over.
    }

    void release() {
        if (!waiters_.empty()) {
            asio::steady_timer* t = waiters_.front();
            waiters_.pop_front();
            t->cancel();
        } else {
            ++count_;
        }
    }

private:
    int count_;
    std::deque<asio::steady_timer*> waiters_;
};

asio::awaitable<void> asio_uncontended_loop(benchmark::State& st) {
    asio_semaphore sem(1);
    for (auto _ : st) {
        co_await sem.acquire();
        sem.release();
    }
}

void semaphore_uncontended_asio(benchmark::State& st) {
    asio::io_context io;
    tether_bench::roots r;
    tether_bench::start_asio_root(io, asio_uncontended_loop(st), r);
    tether_bench::run_all(io, r);
    tether_bench::set_items(st, 1);
}
BENCHMARK(semaphore_uncontended_asio)->Name("semaphore_uncontended/asio_timer_waiters");

asio::awaitable<void> asio_contender(asio_semaphore& sem) {
    for (int i = 0; i < acquisitions_per_task; ++i) {
        co_await sem.acquire();
        co_await tether_bench::asio_yield();
        sem.release();
    }
}

void semaphore_contended_asio(benchmark::State& st) {
    asio::io_context io;
    for (auto _ : st) {
        asio_semaphore sem(contended_limit);
        tether_bench::roots r;
        for (int i = 0; i < contended_tasks; ++i)
            tether_bench::start_asio_root(io, asio_contender(sem), r);
        tether_bench::run_all(io, r);
    }
    tether_bench::set_items(st, contended_tasks * acquisitions_per_task);
}
BENCHMARK(semaphore_contended_asio)->Name("semaphore_contended/asio_timer_waiters");

#if defined(TETHER_BENCH_HAVE_SEMAPHORE)

// --- tether: semaphore ------------------------------------------------------------------

tether::task<> tether_uncontended_loop(benchmark::State& st) {
    tether::semaphore sem(1);
    for (auto _ : st) {
        auto permit = co_await sem.acquire();
        benchmark::DoNotOptimize(permit);
    }
}

void semaphore_uncontended_tether(benchmark::State& st) {
    asio::io_context io;
    tether::run(io, tether_uncontended_loop(st));
    tether_bench::set_items(st, 1);
}
BENCHMARK(semaphore_uncontended_tether)->Name("semaphore_uncontended/tether");

tether::task<> tether_contender(tether::semaphore& sem) {
    for (int i = 0; i < acquisitions_per_task; ++i) {
        auto permit = co_await sem.acquire();
        co_await tether::yield_now();
    }
}

void semaphore_contended_tether(benchmark::State& st) {
    asio::io_context io;
    for (auto _ : st) {
        tether::semaphore sem(contended_limit);
        tether_bench::roots r;
        for (int i = 0; i < contended_tasks; ++i)
            tether_bench::start_root(io, tether_contender(sem), r);
        tether_bench::run_all(io, r);
    }
    tether_bench::set_items(st, contended_tasks * acquisitions_per_task);
}
BENCHMARK(semaphore_contended_tether)->Name("semaphore_contended/tether");

#endif

} // namespace

BENCHMARK_MAIN();
