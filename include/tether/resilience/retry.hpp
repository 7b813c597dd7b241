// tether/resilience/retry.hpp — retry with exponential backoff, full jitter, an
// attempt budget, a time budget and server-supplied delays (DESIGN.md §8).
//
// The Python seeds hand-roll this as a decorator (`with_retries`, linear backoff,
// "never swallow cancellation"); `tether::retry` is its structured twin: the
// backoff sleeps are cancellation points, a cancelled_error is never retried, and
// an attempt that could only start after the enclosing deadline is not started.
#pragma once

#include <tether/config.hpp>
#include <tether/detail/scope.hpp>
#include <tether/detail/scoped_await.hpp>
#include <tether/errors.hpp>
#include <tether/task.hpp>

#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <type_traits>
#include <utility>

namespace tether {

/// What `retry` reports to `retry_policy::on_retry` before each backoff sleep.
struct retry_event {
    std::size_t attempt = 0;   ///< the attempt that failed, counting from 1
    std::exception_ptr error;  ///< what it threw
    clock::duration delay{};   ///< the sleep before attempt `attempt + 1`
    bool server_delay = false; ///< the delay came from `retry_policy::retry_after`
};

/// How `retry` randomises the exponential backoff.
enum class retry_jitter : unsigned char {
    none, ///< sleep exactly the exponential backoff
    full, ///< sleep uniformly in [0, backoff) ("full jitter"): spreads out a herd of clients
};

/// How `retry` repeats a failing operation.
///
/// After attempt `k` (counting from 1) fails with an error that `retry_if`
/// accepts, and unless a budget is spent, `retry` sleeps for
/// `backoff(k) = min(max_delay, initial_delay * multiplier^(k-1))` — multiplied by a
/// uniform random factor in [0, 1) under `retry_jitter::full` — or for the delay
/// that `retry_after` returns for that error, then starts attempt `k + 1`.
///
/// @par Exceptions
/// `retry` throws `usage_error` for a policy with `max_attempts == 0`, a negative
/// delay or budget, or a `multiplier` below 1 (or not finite).
/// @par Example
/// @code
/// tether::retry_policy policy;
/// policy.max_attempts = 5;
/// policy.initial_delay = 200ms;
/// policy.retry_if = tether::retry_on<std::system_error, http_status_error>();
/// policy.retry_after = [](const std::exception_ptr& e) { return retry_after_header(e); };
/// auto attempt = [&] { return fetch(url); };
/// auto page = co_await tether::retry(policy, attempt);
/// @endcode
/// Bind the policy (an aggregate with std::function members) and a capturing
/// lambda to named variables before awaiting: g++ 12 destroys such temporaries
/// twice inside a co_await expression (GCC PR 100611).
struct retry_policy {
    /// Attempts in all, the first included (>= 1).
    std::size_t max_attempts = 3;
    /// The backoff after the first failure.
    clock::duration initial_delay = std::chrono::milliseconds(100);
    /// Growth of the backoff per failed attempt (>= 1; 1 gives a constant backoff).
    double multiplier = 2.0;
    /// Cap of the exponential backoff (before jitter). Does not cap `retry_after`.
    clock::duration max_delay = std::chrono::seconds(30);
    /// Randomisation of the backoff.
    retry_jitter jitter = retry_jitter::full;
    /// Seed of the jitter generator. Leave empty in production (each `retry` call
    /// then draws a fresh seed, so that clients do not back off in step); set it in
    /// tests for reproducible delays.
    std::optional<std::uint64_t> jitter_seed;
    /// No attempt starts later than this after the first one started (the default
    /// is unlimited). An attempt already running is not interrupted: for a hard
    /// limit, wrap the retry in `with_timeout`.
    clock::duration total_budget = clock::duration::max();
    /// Which errors are retried; empty retries every error. `cancelled_error` is
    /// never retried and never passed here.
    std::function<bool(const std::exception_ptr&)> retry_if;
    /// A delay the server asked for (HTTP `Retry-After`), or empty to use the
    /// backoff. The delay is used as it is (no jitter, no `max_delay`); the budgets
    /// still apply, so a delay beyond them ends the retry with the error.
    std::function<std::optional<clock::duration>(const std::exception_ptr&)> retry_after;
    /// Called before each backoff sleep (for logging). Not called when the retry
    /// gives up.
    std::function<void(const retry_event&)> on_retry;

    /// The un-jittered backoff after failed attempt `attempt` (counting from 1).
    clock::duration backoff(std::size_t attempt) const noexcept;
};

/// A `retry_if` predicate that accepts exceptions of the types `Es` (or derived).
///
/// `policy.retry_if = tether::retry_on<std::system_error, tether::timeout_error>();`
template <class... Es>
std::function<bool(const std::exception_ptr&)> retry_on();

namespace detail {

/// A callable `fn()` returning a fresh attempt: a `task<T>`, or any tether
/// awaitable by value (`with_timeout(2s, fetch())`, …). What retry repeats.
template <class F>
concept attempt_factory = std::invocable<F&> && !std::is_reference_v<std::invoke_result_t<F&>> &&
                          scope_awaitable<std::invoke_result_t<F&>>;

/// The value an attempt produces (decayed).
template <class F>
using attempt_value_t = std::remove_cvref_t<
    decltype(std::declval<awaiter_for_t<std::invoke_result_t<F&>>&>().await_resume())>;

template <class T, class F>
task<T> retry_loop(retry_policy policy, F fn);

} // namespace detail

/// Runs `fn()` (a `task<T>`, or any tether awaitable such as
/// `with_timeout(2s, fetch(url))`) until it succeeds, retrying failures as
/// `policy` says.
///
/// `co_await retry(policy, fn)` returns the value of the first successful attempt.
/// It gives up, rethrowing the last attempt's exception (the same exception
/// object), when: the error is a `cancelled_error`; `policy.retry_if` rejects it;
/// `max_attempts` attempts have failed; or the next attempt could only start at or
/// after `total_budget` from the first start, or at or after the deadline of an
/// enclosing scope (`with_timeout`, a `cancel_scope` deadline) — an attempt that
/// would surely be cancelled is not started, and the caller sees the real error.
///
/// `fn` is called once per attempt and must return a fresh task (or awaitable);
/// it is kept in the retry's frame, so a lambda that captures by reference works.
/// Put a per-attempt timeout inside `fn`: its `timeout_error` is an ordinary
/// error that `retry_if` may accept.
///
/// @par Cancellation
/// A cancellation point before every attempt, and the backoff sleeps are
/// cancellation points: cancelling the caller during a sleep ends the retry at
/// once with `cancelled_error`. Attempts run in the
/// caller's scopes, so cancelling the caller cancels the running attempt; its
/// `cancelled_error` propagates and is not retried.
/// @par Thread safety
/// Like any task: one task tree, one thread. The policy's hooks run on that thread.
/// @par Exceptions
/// `usage_error` (at the call) for an invalid policy; otherwise the last attempt's
/// exception, `cancelled_error`, or whatever a policy hook throws.
template <detail::attempt_factory F>
task<detail::attempt_value_t<F>> retry(retry_policy policy, F fn);

// ---------------------------------------------------------------------------
// Implementation

inline clock::duration retry_policy::backoff(std::size_t attempt) const noexcept {
    if (attempt == 0) return clock::duration::zero();
    const double cap = static_cast<double>(max_delay.count());
    const double base = static_cast<double>(initial_delay.count()) *
                        std::pow(multiplier, static_cast<double>(attempt - 1));
    if (!(base < cap)) return max_delay; // also catches inf and nan
    return clock::duration(static_cast<clock::duration::rep>(base));
}

namespace detail {

template <class E>
bool holds_exception(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const E&) {
        return true;
    } catch (...) {
        return false;
    }
}

inline std::uint64_t random_seed() {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ static_cast<std::uint64_t>(rd());
}

/// splitmix64: tiny, fast, and good enough to spread backoff delays.
class jitter_rng {
public:
    explicit jitter_rng(std::uint64_t seed) noexcept : state_(seed) {}

    std::uint64_t next() noexcept {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

    /// Uniform in [0, 1).
    double unit() noexcept {
        return static_cast<double>(next() >> 11) * 0x1.0p-53;
    }

private:
    std::uint64_t state_;
};

/// The jittered delay: `base * u` with u uniform in [0, 1).
inline clock::duration full_jitter(clock::duration base, jitter_rng& rng) noexcept {
    return clock::duration(
        static_cast<clock::duration::rep>(static_cast<double>(base.count()) * rng.unit()));
}

/// The earliest deadline among the scopes around chain `ctx`, up to and including
/// the first shield (deadlines beyond a shield cannot cancel the chain).
inline clock::time_point enclosing_deadline(const task_ctx& ctx) noexcept {
    clock::time_point d = clock::time_point::max();
    for (const scope_state* s = ctx.scope_; s; s = s->parent_) {
        if (s->deadline_when_ < d) d = s->deadline_when_;
        if (s->shield_) break;
    }
    return d;
}

/// `co_await current_chain{}`: the awaiting chain's context. Never suspends; not a
/// cancellation point.
struct current_chain {
    task_ctx* ctx_ = nullptr;
    void bind_context(task_ctx& c) noexcept {
        ctx_ = &c;
    }
    bool await_ready() const noexcept {
        return true;
    }
    void await_suspend(std::coroutine_handle<>) const noexcept {}
    task_ctx& await_resume() const noexcept {
        return *ctx_;
    }
};

inline void validate(const retry_policy& p) {
    if (p.max_attempts == 0)
        throw usage_error("tether::retry: retry_policy::max_attempts is 0; it counts every "
                          "attempt, the first included, so use 1 for no retries");
    if (p.initial_delay < clock::duration::zero() || p.max_delay < clock::duration::zero())
        throw usage_error("tether::retry: retry_policy::initial_delay and max_delay must not be "
                          "negative");
    if (p.total_budget < clock::duration::zero())
        throw usage_error("tether::retry: retry_policy::total_budget must not be negative "
                          "(leave it at clock::duration::max() for no budget)");
    if (!std::isfinite(p.multiplier) || p.multiplier < 1.0)
        throw usage_error("tether::retry: retry_policy::multiplier must be a finite number >= 1 "
                          "(1 gives a constant backoff)");
}

template <class T, class F>
task<T> retry_loop(retry_policy policy, F fn) {
    task_ctx& ctx = co_await current_chain{};
    scheduler& sched = *ctx.sched_;
    const clock::time_point first_start = sched.now();
    // The first attempt always runs; later ones only if they start before this.
    const clock::time_point budget_end = deadline_after(first_start, policy.total_budget);
    std::optional<jitter_rng> rng;
    std::exception_ptr error;

    for (std::size_t attempt = 1;; ++attempt) {
        ctx.check_cancelled(); // a cancellation point before every attempt
        try {
            // Named, not a temporary in the co_await expression (GCC PR 100611).
            auto attempt_work = std::invoke(fn);
            if constexpr (std::is_void_v<T>) {
                co_await std::move(attempt_work);
                co_return;
            } else {
                co_return co_await std::move(attempt_work);
            }
        } catch (const cancelled_error&) {
            throw; // never retried: the caller is being cancelled
        } catch (...) {
            error = std::current_exception();
        }

        if (attempt >= policy.max_attempts) std::rethrow_exception(error);
        if (policy.retry_if && !policy.retry_if(error)) std::rethrow_exception(error);

        retry_event ev;
        ev.attempt = attempt;
        ev.error = error;
        std::optional<clock::duration> server;
        if (policy.retry_after) server = policy.retry_after(error);
        if (server) {
            ev.delay = *server < clock::duration::zero() ? clock::duration::zero() : *server;
            ev.server_delay = true;
        } else {
            ev.delay = policy.backoff(attempt);
            if (policy.jitter == retry_jitter::full) {
                if (!rng) rng.emplace(policy.jitter_seed ? *policy.jitter_seed : random_seed());
                ev.delay = full_jitter(ev.delay, *rng);
            }
        }

        // A cancelled caller stops here (no on_retry, no sleep).
        ctx.check_cancelled();
        const clock::time_point next_start = deadline_after(sched.now(), ev.delay);
        if (next_start >= budget_end || next_start >= enclosing_deadline(ctx))
            std::rethrow_exception(error);

        if (policy.on_retry) policy.on_retry(ev);
        co_await sleep_until(next_start); // a cancellation point
    }
}

} // namespace detail

template <class... Es>
std::function<bool(const std::exception_ptr&)> retry_on() {
    return [](const std::exception_ptr& e) -> bool {
        return e && (detail::holds_exception<Es>(e) || ...);
    };
}

template <detail::attempt_factory F>
task<detail::attempt_value_t<F>> retry(retry_policy policy, F fn) {
    detail::validate(policy);
    return detail::retry_loop<detail::attempt_value_t<F>>(std::move(policy), std::move(fn));
}

} // namespace tether
