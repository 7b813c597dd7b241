// tether/resilience/rate_limiter.hpp — a token bucket on tether's clock
// (DESIGN.md §8).
//
// Where the seeds bound *concurrency* with a semaphore, a rate_limiter bounds
// *rate*: at most `burst` operations at once after a quiet spell, `rate` per second
// sustained (a per-host politeness limit in a scraper).
#pragma once

#include <tether/config.hpp>
#include <tether/detail/scheduler.hpp>
#include <tether/detail/scope.hpp>
#include <tether/errors.hpp>
#include <tether/task.hpp>

#include <cassert>
#include <chrono>
#include <cmath>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <string>

namespace tether {

namespace detail {
/// An Asio executor (of an io_context, checked when used).
template <class E>
concept io_executor = asio::execution::is_executor<E>::value;
} // namespace detail

/// A token bucket: holds up to `burst` tokens and gains `rate_per_second` tokens
/// per second; `acquire(n)` takes `n`, waiting until they are there.
///
/// Waiters are served strictly in FIFO order: a large request at the head of the
/// queue holds back smaller ones behind it (no barging), and neither `acquire`
/// nor `try_acquire` overtakes a waiting task. Time is tether's clock (virtual
/// under `testing::virtual_clock`); the bucket starts full. While tasks wait, the
/// limiter keeps one deadline armed, for the head of the queue.
///
/// The uncontended `acquire` reads the clock once per stretch of a task's plain
/// code (between two suspensions), not once per call — a clock read costs more
/// than the rest of the operation. Within a stretch, tokens are charged at the
/// time of that first reading; a request the cached reading cannot serve re-reads
/// the clock before it waits. So the limit is exact up to the CPU time of one
/// stretch: over any interval of length `t`, at most `burst + rate * (t + s)`
/// tokens are granted, where `s` is the longest stretch of plain code between
/// awaits (microseconds in well-behaved async code). `try_acquire` always reads
/// the clock.
///
/// The limiter takes its clock from the io_context it is bound to: at
/// construction when given an executor, else at the first awaited acquire().
/// Until then try_acquire() and set_rate() read the real clock — so under
/// `testing::virtual_clock`, construct it with the executor if it is used before
/// any acquire() was awaited.
///
/// @par Thread safety
/// Belongs to one task tree (one io_context thread); not synchronised.
/// @par Example
/// @code
/// tether::rate_limiter per_host(10.0, 5); // 10 requests/s, bursts of 5
/// co_await per_host.acquire();
/// co_await http_get(url);
/// @endcode
class rate_limiter {
public:
    class acquire_awaiter;

    /// A bucket of `burst` tokens (>= 1), refilled at `rate_per_second` (>= 0, finite;
    /// 0 pauses the refill). Starts full.
    /// @par Exceptions
    /// `usage_error` for a rate that is negative or not finite, or a burst of 0.
    rate_limiter(double rate_per_second, std::size_t burst);

    /// As above, bound at once to the clock of `ex`'s io_context (virtual under
    /// `testing::virtual_clock`). Without it, the first awaited acquire() binds
    /// the limiter, and until then try_acquire() and set_rate() read the real
    /// clock.
    /// @par Exceptions
    /// As above; `usage_error` if `ex` does not belong to an asio::io_context.
    template <detail::io_executor Executor>
    rate_limiter(const Executor& ex, double rate_per_second, std::size_t burst)
        : rate_limiter(rate_per_second, burst) {
        bind(detail::scheduler_for(detail::io_context_of(ex)));
    }

    rate_limiter(const rate_limiter&) = delete;
    rate_limiter& operator=(const rate_limiter&) = delete;
    /// Precondition: no task is waiting in acquire().
    ~rate_limiter();

    /// `co_await rl.acquire(n)`: takes `n` tokens, waiting (FIFO) until they are
    /// available. Takes them at once, without suspending, when no task waits and
    /// the bucket holds `n`.
    /// @par Cancellation
    /// A cancellation point. A cancelled acquire takes no tokens; if it was at the
    /// head of the queue, the next waiters are served at once if the bucket allows.
    /// An acquire that already got its tokens returns normally.
    /// @par Exceptions
    /// `usage_error` (at the call) if `n > burst()`: it could never be served.
    [[nodiscard]] acquire_awaiter acquire(std::size_t n = 1);

    /// Takes `n` tokens if no task waits and the bucket holds `n`; never suspends.
    /// @par Exceptions
    /// `usage_error` if `n > burst()`.
    bool try_acquire(std::size_t n = 1);

    /// Changes the refill rate from now on (tokens gained so far are kept). Waiters
    /// are re-evaluated: a faster rate serves them sooner.
    /// @par Exceptions
    /// `usage_error` for a negative or non-finite rate.
    void set_rate(double rate_per_second);

    /// Changes rate and capacity. A smaller burst drops the tokens above it.
    /// @par Exceptions
    /// `usage_error` as for the constructor, or if a waiting request needs more
    /// than `burst` tokens.
    void set_rate(double rate_per_second, std::size_t burst);

    /// Tokens gained per second.
    double rate() const noexcept {
        return rate_;
    }
    /// Capacity of the bucket.
    std::size_t burst() const noexcept {
        return burst_;
    }
    /// Tokens in the bucket now (fractional). Waiting tasks have not taken theirs yet.
    double available() const;
    /// Number of tasks waiting in acquire().
    std::size_t waiting() const noexcept {
        return waiting_;
    }

private:
    struct head_timer : detail::timer_node {
        rate_limiter* self_ = nullptr;
    };

    // Float rounding slack when comparing token counts: a head waiter whose
    // deadline fired must be served, not re-armed for one more nanosecond.
    static constexpr double slack = 1e-9;

    static void check_rate(double r, const char* who);
    void check_n(std::size_t n, const char* who) const;

    clock::time_point now() const noexcept {
        return sched_ ? sched_->now() : clock::now();
    }
    void bind(detail::scheduler& s);
    void refill(clock::time_point t) noexcept;
    bool enough(std::size_t n) const noexcept {
        return tokens_ + slack >= static_cast<double>(n);
    }
    void take(std::size_t n) noexcept {
        tokens_ -= static_cast<double>(n);
        if (tokens_ < 0.0) tokens_ = 0.0; // slack residue
    }
    // Fast path of acquire: no waiters and enough tokens. The clock is read once
    // per stretch of the task's plain code (scheduler::resumptions): within a
    // stretch the last reading stands for "now". Before waiting, it is re-read.
    bool try_take(std::size_t n, detail::scheduler& s) {
        if (waiters_.linked()) return false;
        if (&s != sched_) [[unlikely]]
            bind(s);
        const std::uint64_t stretch = s.resumptions();
        if (stretch == seen_ && enough(n) && !s.installed_virtual_time()) {
            take(n);
            return true;
        }
        seen_ = stretch;
        refill(s.now());
        if (!enough(n)) return false;
        take(n);
        return true;
    }
    acquire_awaiter& head() const noexcept;
    void enqueue(acquire_awaiter& w);
    void serve() noexcept;
    void arm_for_head();
    static void on_timer(detail::timer_node& t) noexcept;

    // Invariant: the bucket held tokens_ at time last_ (once started_).
    // Invariant: timer_ is armed iff waiters exist, the head cannot be served yet
    // and rate_ > 0; it is armed for the instant the head can be served.
    double rate_;
    std::size_t burst_;
    double tokens_;
    clock::time_point last_{};
    bool started_ = false;
    detail::scheduler* sched_ = nullptr; // bound by the first acquire
    // sched_->resumptions() when last_ was read by try_take: while it is unchanged,
    // last_ is current.
    std::uint64_t seen_ = ~std::uint64_t{0};
    detail::list_hook waiters_; // of acquire_awaiter, oldest first
    std::size_t waiting_ = 0;
    head_timer timer_;
};

/// The awaitable of `rate_limiter::acquire`.
class [[nodiscard]] rate_limiter::acquire_awaiter : private detail::wait_node,
                                                    private detail::list_hook {
public:
    // Movable only before it is suspended; a bound chain moves along.
    acquire_awaiter(acquire_awaiter&& o) noexcept
        : detail::wait_node(), detail::list_hook(), rl_(o.rl_), n_(o.n_) {
        ctx_ = o.ctx_;
    }
    acquire_awaiter& operator=(acquire_awaiter&&) = delete;

    void bind_context(detail::task_ctx& c) noexcept {
        ctx_ = &c;
    }
    bool await_ready() {
        if (ctx_->cancelled_) ctx_->check_cancelled(); // the test inlines; the throw does not
        return rl_->try_take(n_, *ctx_->sched_);
    }
    void await_suspend(std::coroutine_handle<> h) {
        handle_ = h;
        rl_->enqueue(*this); // may throw bad_alloc (a heap push): then nothing changed
        ctx_->begin_wait(*this, &on_cancel);
    }
    void await_resume() const {
        if (cancelled_) {
            ctx_->check_cancelled();
            throw cancelled_error(); // not reached: a cancelled wait implies a cancelled chain
        }
    }

private:
    friend class rate_limiter;

    acquire_awaiter(rate_limiter& rl, std::size_t n) noexcept : rl_(&rl), n_(n) {}

    static void on_cancel(detail::wait_node& node) noexcept;

    rate_limiter* rl_;
    std::size_t n_;
    bool cancelled_ = false;
};

// ---------------------------------------------------------------------------
// Implementation

inline rate_limiter::rate_limiter(double rate_per_second, std::size_t burst)
    : rate_(rate_per_second), burst_(burst), tokens_(static_cast<double>(burst)) {
    check_rate(rate_per_second, "tether::rate_limiter");
    if (burst == 0)
        throw usage_error("tether::rate_limiter: burst is 0, so no token could ever be "
                          "acquired; use a burst of at least 1");
    timer_.self_ = this;
    timer_.fire_ = &on_timer;
}

inline rate_limiter::~rate_limiter() {
    assert(!waiters_.linked() && "tether::rate_limiter destroyed while a task waits in acquire()");
    if (sched_) sched_->remove_timer(timer_);
}

inline void rate_limiter::check_rate(double r, const char* who) {
    if (!std::isfinite(r) || r < 0.0)
        throw usage_error(std::string(who) +
                          ": the rate must be a finite number of tokens per second >= 0");
}

inline void rate_limiter::check_n(std::size_t n, const char* who) const {
    if (n > burst_)
        throw usage_error(std::string(who) + ": requested " + std::to_string(n) +
                          " tokens but the burst is " + std::to_string(burst_) +
                          ", so the request could never be served; raise the burst or "
                          "split the request");
}

inline rate_limiter::acquire_awaiter rate_limiter::acquire(std::size_t n) {
    check_n(n, "tether::rate_limiter::acquire");
    return acquire_awaiter(*this, n);
}

inline bool rate_limiter::try_acquire(std::size_t n) {
    check_n(n, "tether::rate_limiter::try_acquire");
    if (waiters_.linked()) return false;
    refill(now());
    if (!enough(n)) return false;
    take(n);
    return true;
}

inline void rate_limiter::set_rate(double rate_per_second) {
    check_rate(rate_per_second, "tether::rate_limiter::set_rate");
    refill(now()); // tokens gained so far at the old rate
    rate_ = rate_per_second;
    if (waiters_.linked()) serve();
}

inline void rate_limiter::set_rate(double rate_per_second, std::size_t burst) {
    check_rate(rate_per_second, "tether::rate_limiter::set_rate");
    if (burst == 0) throw usage_error("tether::rate_limiter::set_rate: burst is 0; use at least 1");
    for (detail::list_hook* h = waiters_.next_; h != &waiters_; h = h->next_)
        if (static_cast<acquire_awaiter&>(*h).n_ > burst)
            throw usage_error("tether::rate_limiter::set_rate: a waiting acquire needs more "
                              "tokens than the new burst of " +
                              std::to_string(burst) + "; it could never be served");
    refill(now());
    rate_ = rate_per_second;
    burst_ = burst;
    const double cap = static_cast<double>(burst);
    if (tokens_ > cap) tokens_ = cap;
    if (waiters_.linked()) serve();
}

inline double rate_limiter::available() const {
    if (!started_) return tokens_;
    const clock::time_point t = now();
    double tokens = tokens_;
    if (t > last_) tokens += rate_ * std::chrono::duration<double>(t - last_).count();
    const double cap = static_cast<double>(burst_);
    return tokens < cap ? tokens : cap;
}

inline void rate_limiter::bind(detail::scheduler& s) {
    if (sched_)
        throw usage_error("tether::rate_limiter: used from two io_contexts; a limiter belongs "
                          "to one task tree (one thread)");
    // Before the first acquire, try_acquire and set_rate read the real clock; from
    // now on time is the scheduler's (virtual under testing::virtual_clock).
    if (started_) refill(clock::now());
    sched_ = &s;
    last_ = s.now();
    seen_ = ~std::uint64_t{0};
}

inline void rate_limiter::refill(clock::time_point t) noexcept {
    if (!started_) {
        started_ = true;
        last_ = t;
        return;
    }
    if (t <= last_) return;
    const double cap = static_cast<double>(burst_);
    if (tokens_ < cap) {
        tokens_ += rate_ * std::chrono::duration<double>(t - last_).count();
        if (tokens_ > cap) tokens_ = cap;
    }
    last_ = t;
}

inline rate_limiter::acquire_awaiter& rate_limiter::head() const noexcept {
    return static_cast<acquire_awaiter&>(*waiters_.next_);
}

// Called from await_suspend after the fast path failed (so the bucket was just
// refilled). A new head cannot be served now: arm the timer for it.
inline void rate_limiter::enqueue(acquire_awaiter& w) {
    const bool first = !waiters_.linked();
    waiters_.push_back(w);
    ++waiting_;
    if (!first) return;
    try {
        arm_for_head();
    } catch (...) {
        static_cast<detail::list_hook&>(w).unlink();
        --waiting_;
        throw;
    }
}

// Serve waiters from the head while the bucket allows, then re-arm for the new head.
inline void rate_limiter::serve() noexcept {
    sched_->remove_timer(timer_);
    refill(sched_->now());
    while (waiters_.linked()) {
        acquire_awaiter& w = head();
        if (!enough(w.n_)) {
            arm_for_head();
            return;
        }
        take(w.n_);
        static_cast<detail::list_hook&>(w).unlink();
        --waiting_;
        w.ctx_->end_wait();
        // w lives in the waiting frame; it is only queued here, not resumed.
        sched_->schedule(w);
    }
}

// Throws only if the scheduler's heap must grow: never from serve(), which has
// just removed this same timer.
inline void rate_limiter::arm_for_head() {
    if (rate_ <= 0.0) return; // paused: set_rate or a cancellation re-evaluates
    const double missing = static_cast<double>(head().n_) - tokens_;
    const double ns = std::ceil(missing / rate_ * 1e9);
    clock::duration d = clock::duration::max();
    if (ns < 9e18)
        d = std::chrono::duration_cast<clock::duration>(
            std::chrono::nanoseconds(static_cast<std::chrono::nanoseconds::rep>(ns)));
    timer_.when_ = detail::deadline_after(last_, d);
    sched_->add_timer(timer_);
}

inline void rate_limiter::on_timer(detail::timer_node& t) noexcept {
    static_cast<head_timer&>(t).self_->serve();
}

inline void rate_limiter::acquire_awaiter::on_cancel(detail::wait_node& node) noexcept {
    auto& w = static_cast<acquire_awaiter&>(node);
    rate_limiter& rl = *w.rl_;
    const bool was_head = &rl.head() == &w;
    static_cast<detail::list_hook&>(w).unlink();
    --rl.waiting_;
    w.cancelled_ = true; // took nothing: the acquire did not happen
    w.ctx_->sched_->schedule(w);
    if (was_head) rl.serve(); // the next waiter may fit now, or needs its own deadline
}

} // namespace tether
