// semaphore_limits: a semaphore bounds how many operations are *in flight* at
// once (open connections, browser pages), owned by the client that needs it.
//   BROKEN  the permit is discarded at once, so nothing is limited.
//   FIXED   the permit is a named local held across the work (RAII release).
// Also: giving up on a wait (move_on_after) neither keeps nor loses a permit.
//
// Mirrors the seeds' Semaphore lesson (seed 003 "Semaphore for Rate Limiting",
// `async with self.semaphore:`). For requests per *second*, see
// rate_limited_fetch.cpp.
#include <tether/semaphore.hpp>
#include <tether/task.hpp>
#include <tether/testing/virtual_clock.hpp>
#include <tether/timeout.hpp>
#include <tether/when.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <vector>

using namespace std::chrono_literals;

namespace {

// The infrastructure layer owns the limit; callers just call fetch().
class fetcher {
public:
    explicit fetcher(std::ptrdiff_t max_concurrent) : in_flight_(max_concurrent) {}

    tether::task<int> fetch_broken(int url) {
        // BROKEN: the permit is a temporary, released before the work starts.
        // (The statement `co_await in_flight_.acquire();` compiles and does the same.)
        (void)co_await in_flight_.acquire();
        co_return co_await do_fetch(url);
    }

    tether::task<int> fetch(int url) {
        tether::semaphore_permit permit = co_await in_flight_.acquire(); // `async with sem:`
        co_return co_await do_fetch(url);
    } // permit released here, also when do_fetch throws or is cancelled

    tether::semaphore& limit() {
        return in_flight_;
    }
    int peak() const {
        return peak_;
    }
    void reset_peak() {
        peak_ = 0;
    }

private:
    tether::task<int> do_fetch(int url) {
        if (++active_ > peak_) peak_ = active_;
        co_await tether::sleep_for(100ms); // the request (virtual time)
        --active_;
        co_return url * 10;
    }

    tether::semaphore in_flight_;
    int active_ = 0, peak_ = 0;
};

tether::task<double> fetch_all(fetcher& f, bool broken) {
    const tether::clock::time_point t0 = co_await tether::this_task::now();
    std::vector<tether::task<int>> calls;
    for (int url = 0; url < 10; ++url) calls.push_back(broken ? f.fetch_broken(url) : f.fetch(url));
    (void)co_await tether::when_all(std::move(calls));
    co_return std::chrono::duration<double>(co_await tether::this_task::now() - t0).count();
}

tether::task<int> amain() {
    int errors = 0;
    fetcher f(3);

    const double broken_s = co_await fetch_all(f, true);
    std::printf("BROKEN: 10 requests, at most %d in flight, %.1fs\n", f.peak(), broken_s);
    if (f.peak() != 10) ++errors;

    f.reset_peak();
    const double fixed_s = co_await fetch_all(f, false);
    std::printf("FIXED:  10 requests, at most %d in flight, %.1fs (ceil(10 / 3) rounds)\n",
                f.peak(), fixed_s);
    if (f.peak() != 3 || fixed_s != 0.4) ++errors;

    // A waiter that gives up is cancellation-safe: it did not take a permit.
    std::vector<tether::semaphore_permit> held;
    while (std::optional<tether::semaphore_permit> p = f.limit().try_acquire())
        held.push_back(std::move(*p)); // never suspends; empty when none is free
    std::printf("holding all %zu permits; available() = %zu\n", held.size(), f.limit().available());
    std::optional<tether::semaphore_permit> late = co_await tether::move_on_after(
        50ms, f.limit().acquire()); // empty: the deadline cancelled the wait
    std::printf("a wait with a 50ms limit: %s\n", late ? "got a permit" : "gave up");
    held.clear(); // releases all three
    std::printf("after release: available() = %zu (nothing lost)\n", f.limit().available());
    if (late || f.limit().available() != 3) ++errors;

    std::printf("%s\n", errors == 0 ? "OK" : "UNEXPECTED");
    co_return errors == 0 ? 0 : 1;
}

} // namespace

int main() {
    asio::io_context io;
    tether::testing::virtual_clock clock(io);
    return tether::run(io, amain());
}
