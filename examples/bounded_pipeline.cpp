// bounded_pipeline: a producer feeds workers through a bounded queue. The queue
// pushes back on the producer (backpressure), join() waits until every item was
// processed (task_done), close() shuts the workers down cleanly.
//   BROKEN  spawn one task per job (100k), limited by a semaphore: only 8 run at
//           once, but 100k coroutine frames exist at the same time.
//   FIXED   8 workers pull from a queue of 100: memory stays bounded.
//
// Mirrors the seeds' backpressure lesson (seed 004 "Backpressure with Bounded
// Queues", seed 000 "don't spawn 100k tasks"; asyncio.Queue(maxsize), join).
#include <tether/bounded_queue.hpp>
#include <tether/semaphore.hpp>
#include <tether/task.hpp>
#include <tether/task_group.hpp>
#include <tether/testing/virtual_clock.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>

using namespace std::chrono_literals;

// --- Heap accounting: every allocation of the program, to show the peak -------
namespace {
std::size_t heap_now = 0, heap_peak = 0;
}
void* operator new(std::size_t n) {
    auto* p = static_cast<std::size_t*>(std::malloc(n + 16));
    if (!p) throw std::bad_alloc();
    *p = n;
    heap_now += n;
    if (heap_now > heap_peak) heap_peak = heap_now;
    return reinterpret_cast<char*>(p) + 16;
}
void operator delete(void* p) noexcept {
    if (!p) return;
    auto* base = reinterpret_cast<std::size_t*>(static_cast<char*>(p) - 16);
    heap_now -= *base;
    std::free(base);
}
void operator delete(void* p, std::size_t) noexcept {
    operator delete(p);
}

namespace {

constexpr int jobs = 100'000;
constexpr int workers = 8;

tether::task<> process(int job, long& sum) {
    co_await tether::sleep_for(1ms); // the I/O of one job (virtual time)
    sum += job;
}

// BROKEN: one task per job. The semaphore bounds the jobs *in flight*, not the
// tasks *in existence*: every frame is allocated up front and waits.
tether::task<long> spawn_everything() {
    long sum = 0;
    tether::semaphore in_flight(workers);
    auto one = [&](int job) -> tether::task<> {
        tether::semaphore_permit permit = co_await in_flight.acquire();
        co_await process(job, sum);
    };
    auto body = [&](tether::task_group& tg) -> tether::task<> {
        for (int j = 0; j < jobs; ++j) tg.spawn(one(j));
        co_return;
    };
    co_await tether::with_task_group(body);
    co_return sum;
}

// FIXED: a fixed pool of workers and a bounded queue between them and the
// producer. `push` waits while 100 items are buffered, so the producer never
// runs ahead of the workers by more than that.
tether::task<long> worker_pool() {
    long sum = 0;
    std::size_t max_buffered = 0;
    tether::bounded_queue<int> q(100);
    auto worker = [&]() -> tether::task<> {
        while (std::optional<int> job = co_await q.pop()) { // empty once closed and drained
            co_await process(*job, sum);
            q.task_done(); // or pop_tracked(), which calls it for you
        }
    };
    auto body = [&](tether::task_group& tg) -> tether::task<> {
        for (int w = 0; w < workers; ++w) tg.spawn(worker());
        for (int j = 0; j < jobs; ++j) {
            co_await q.push(j); // backpressure: waits while the queue is full
            if (q.size() > max_buffered) max_buffered = q.size();
        }
        co_await q.join(); // every pushed item has been processed (task_done)
        std::printf("  join(): all %d jobs done; closing the queue\n", jobs);
        q.close(); // clean shutdown: each worker's pop() returns an empty optional
    };
    co_await tether::with_task_group(body);
    std::printf("  at most %zu items were buffered\n", max_buffered);
    co_return sum;
}

tether::task<int> amain() {
    const long expected = static_cast<long>(jobs) * (jobs - 1) / 2;

    // The fixed version runs first: tether recycles task frames, so a second run
    // would reuse the first one's memory and hide its peak.
    std::printf("FIXED: %d workers and a bounded_queue(100)\n", workers);
    tether::clock::time_point t0 = co_await tether::this_task::now();
    std::size_t base = heap_now;
    heap_peak = base;
    const long fixed_sum = co_await worker_pool();
    const std::size_t fixed_peak = heap_peak - base;
    std::printf("  %.1fs of virtual time; peak heap %zu KiB\n\n",
                std::chrono::duration<double>(co_await tether::this_task::now() - t0).count(),
                fixed_peak / 1024);

    std::printf("BROKEN: %d spawned tasks behind a semaphore(%d)\n", jobs, workers);
    t0 = co_await tether::this_task::now();
    base = heap_now;
    heap_peak = base;
    const long broken_sum = co_await spawn_everything();
    const std::size_t broken_peak = heap_peak - base;
    std::printf("  %.1fs of virtual time; peak heap %zu KiB\n\n",
                std::chrono::duration<double>(co_await tether::this_task::now() - t0).count(),
                broken_peak / 1024);

    const bool ok =
        fixed_sum == expected && broken_sum == expected && broken_peak > 20 * fixed_peak;
    std::printf("same work, same time; %zux the memory. %s\n",
                fixed_peak ? broken_peak / fixed_peak : 0, ok ? "OK" : "UNEXPECTED");
    co_return ok ? 0 : 1;
}

} // namespace

int main() {
    asio::io_context io;
    tether::testing::virtual_clock clock(io);
    return tether::run(io, amain());
}
