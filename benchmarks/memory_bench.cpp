// benchmarks/memory_bench.cpp — memory per pending child.
//
// 100,000 children each suspended on one shared wake-up source:
//   tether  children of one task_group, each waiting on one tether::event;
//   asio    co_spawn'ed asio::awaitable coroutines, each waiting on one shared
//           steady_timer (expiry: never; cancel() wakes them all — the usual
//           "timer as event" idiom).
// Issue 3: at most 256 bytes per child, frames included (Asio measured ~980).
//
// Each variant runs in a forked child process, so that it starts from a clean
// heap, and reports three measures of the growth while all children are
// pending, divided by the number of children:
//   heap_bytes    bytes live through operator new (malloc_usable_size of each
//                 block: the payload the program holds);
//   malloc_bytes  growth of mallinfo2().uordblks (adds malloc's per-block
//                 header: the memory the heap really uses) — the figure checked
//                 against the target;
//   rss_bytes     growth of the resident set (pages touched).
//
// Usage: memory_bench [children]   (default 100000). One JSON object per line.
#include <tether/task.hpp>

#if __has_include(<tether/task_group.hpp>) && __has_include(<tether/event.hpp>)
#include <tether/event.hpp>
#include <tether/task_group.hpp>
#define TETHER_BENCH_HAVE_GROUP_AND_EVENT 1
#endif

#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>

// --- counting operator new -----------------------------------------------------------

namespace {
std::atomic<long long> g_live{0};
std::atomic<long long> g_allocations{0};

void* counted_alloc(std::size_t n, std::size_t align) {
    void* p = align > alignof(std::max_align_t)
                  ? std::aligned_alloc(align, (n + align - 1) / align * align)
                  : std::malloc(n == 0 ? 1 : n);
    if (!p) throw std::bad_alloc();
    g_live.fetch_add(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    return p;
}

void counted_free(void* p) noexcept {
    if (!p) return;
    g_live.fetch_sub(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
    std::free(p);
}
} // namespace

void* operator new(std::size_t n) {
    return counted_alloc(n, 0);
}
void* operator new[](std::size_t n) {
    return counted_alloc(n, 0);
}
void* operator new(std::size_t n, std::align_val_t a) {
    return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
    return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(n, 0);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(n, 0);
    } catch (...) {
        return nullptr;
    }
}
void operator delete(void* p) noexcept {
    counted_free(p);
}
void operator delete[](void* p) noexcept {
    counted_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    counted_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    counted_free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    counted_free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    counted_free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    counted_free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    counted_free(p);
}

namespace {

struct snapshot {
    long long heap = 0;
    long long malloc_in_use = 0;
    long long rss = 0;
    long long allocations = 0;

    static snapshot take() {
        snapshot s;
        s.heap = g_live.load();
        s.allocations = g_allocations.load();
        s.malloc_in_use = static_cast<long long>(mallinfo2().uordblks);
        std::ifstream statm("/proc/self/statm");
        long long size = 0, resident = 0;
        statm >> size >> resident;
        s.rss = resident * sysconf(_SC_PAGESIZE);
        return s;
    }
};

void report(const char* variant, const char* what, long long children, const snapshot& before,
            const snapshot& peak) {
    const double n = static_cast<double>(children);
    std::printf("{\"variant\": \"%s\", \"what\": \"%s\", \"children\": %lld, "
                "\"heap_bytes_per_child\": %.1f, \"malloc_bytes_per_child\": %.1f, "
                "\"rss_bytes_per_child\": %.1f, \"allocations_per_child\": %.2f}\n",
                variant, what, children, static_cast<double>(peak.heap - before.heap) / n,
                static_cast<double>(peak.malloc_in_use - before.malloc_in_use) / n,
                static_cast<double>(peak.rss - before.rss) / n,
                static_cast<double>(peak.allocations - before.allocations) / n);
    std::fflush(stdout);
}

// --- plain Asio -----------------------------------------------------------------------

asio::awaitable<void> asio_waiter(asio::steady_timer& wake, long long& finished) {
    asio::error_code ec;
    co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    ++finished;
}

int run_asio(long long children) {
    asio::io_context io;
    asio::steady_timer wake(io, asio::steady_timer::time_point::max());
    long long finished = 0;
    long long completed = 0;
    // Warm up Asio's per-thread recycling allocator and the io_context.
    asio::co_spawn(io, asio_waiter(wake, finished), [&](std::exception_ptr) { ++completed; });
    io.poll();
    wake.cancel();
    io.run();
    io.restart();
    wake.expires_at(asio::steady_timer::time_point::max());
    finished = completed = 0;

    const snapshot before = snapshot::take();
    for (long long i = 0; i < children; ++i)
        asio::co_spawn(io, asio_waiter(wake, finished), [&](std::exception_ptr) { ++completed; });
    io.poll(); // every child starts and parks on the timer
    const snapshot peak = snapshot::take();
    wake.cancel();
    io.run();
    if (finished != children || completed != children) {
        std::fprintf(stderr, "memory_bench asio: %lld/%lld children finished\n", finished,
                     children);
        return 1;
    }
    report("asio", "co_spawn'ed awaitable waiting on a shared steady_timer", children, before,
           peak);
    return 0;
}

// --- tether -------------------------------------------------------------------------------

#if defined(TETHER_BENCH_HAVE_GROUP_AND_EVENT)

tether::task<> tether_waiter(tether::event& wake, long long& finished) {
    co_await wake.wait();
    ++finished;
}

tether::task<> tether_main(long long children, snapshot& before, snapshot& peak,
                           long long& finished) {
    { // Warm-up: one group, one child, so that lazily created state exists.
        tether::event warm;
        auto body = [&](tether::task_group& tg) -> tether::task<> {
            tg.spawn(tether_waiter(warm, finished));
            co_await tether::yield_now();
            warm.set();
        };
        co_await tether::with_task_group(body);
        finished = 0;
    }
    tether::event wake;
    before = snapshot::take();
    auto body = [&](tether::task_group& tg) -> tether::task<> {
        for (long long i = 0; i < children; ++i) tg.spawn(tether_waiter(wake, finished));
        // The run queue is FIFO: after one yield every child has started and
        // is suspended on the event.
        co_await tether::yield_now();
        peak = snapshot::take();
        wake.set();
    };
    co_await tether::with_task_group(body);
}

int run_tether(long long children) {
    asio::io_context io;
    snapshot before, peak;
    long long finished = 0;
    tether::run(io, tether_main(children, before, peak, finished));
    if (finished != children) {
        std::fprintf(stderr, "memory_bench tether: %lld/%lld children finished\n", finished,
                     children);
        return 1;
    }
    report("tether", "task_group child waiting on a tether::event", children, before, peak);
    return 0;
}

#else

int run_tether(long long) {
    std::printf(
        "{\"variant\": \"tether\", \"skipped\": \"tether/task_group.hpp or tether/event.hpp "
        "has not landed yet\"}\n");
    std::fflush(stdout);
    return 0;
}

#endif

int in_child_process(int (*fn)(long long), long long children) {
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid < 0) {
        std::perror("fork");
        return 1;
    }
    if (pid == 0) {
        int rc = 1;
        try {
            rc = fn(children);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "memory_bench: %s\n", e.what());
        }
        std::fflush(stdout);
        _exit(rc);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

} // namespace

int main(int argc, char** argv) {
    long long children = 100000;
    if (argc > 1) children = std::atoll(argv[1]);
    if (children <= 0) {
        std::fprintf(stderr, "usage: memory_bench [children > 0]\n");
        return 2;
    }
    int rc = in_child_process(run_tether, children);
    rc |= in_child_process(run_asio, children);
    return rc;
}
