// tether/resilience/circuit_breaker.hpp — circuit_breaker, keyed_circuit_breakers
// (DESIGN.md §8).
//
// The seeds' CircuitBreaker counts failures under an asyncio.Lock and refuses
// calls for `recovery_timeout` once `failure_threshold` is reached. This one adds
// the half-open state (a limited number of probe calls decide whether to close
// again), a failure-ratio mode, and structured cancellation: a call that ends
// because its caller was cancelled says nothing about the service, so it counts
// neither as a failure nor as a success.
#pragma once

#include <tether/cancel_scope.hpp>
#include <tether/config.hpp>
#include <tether/detail/scheduler.hpp>
#include <tether/detail/scope.hpp>
#include <tether/detail/scoped_await.hpp>
#include <tether/errors.hpp>
#include <tether/task.hpp>

#include <chrono>
#include <cmath>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tether {

/// The state of a circuit_breaker.
enum class circuit_state : unsigned char {
    closed,    ///< calls pass; failures are counted
    open,      ///< calls fail fast with circuit_open_error until the recovery timeout
    half_open, ///< a limited number of probe calls pass; their outcome decides
};

template <class Key, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>>
class keyed_circuit_breakers;

/// Configuration of a circuit_breaker.
///
/// The circuit opens when `failure_threshold` calls in a row failed, or (ratio
/// mode, when `failure_ratio > 0`) when a failure is recorded, the window of the
/// last `window_size` calls holds at least `minimum_calls`, and the share of
/// failures among them reached `failure_ratio` (a success never opens it). Either rule alone may be
/// switched off (`failure_threshold = 0`, `failure_ratio = 0`), not both.
struct circuit_breaker_options {
    /// Consecutive failures that open the circuit; 0 switches the rule off.
    std::size_t failure_threshold = 5;
    /// Share of failures in the window (0 < r <= 1) that opens the circuit; 0
    /// switches ratio mode off.
    double failure_ratio = 0.0;
    /// Ratio mode: how many of the most recent calls the window holds (>= 1).
    std::size_t window_size = 20;
    /// Ratio mode: the window must hold at least this many calls (1..window_size)
    /// before the ratio can open the circuit.
    std::size_t minimum_calls = 10;
    /// How long the circuit stays open before it lets probe calls through.
    clock::duration recovery_timeout = std::chrono::seconds(30);
    /// Half-open: the number of probe calls let through (>= 1). All must succeed
    /// to close the circuit; one failure opens it again.
    std::size_t half_open_max_calls = 1;
    /// Which exceptions count as failures; empty counts every exception. An
    /// exception that does not count (a 404, say: the service answered) counts as
    /// a success. Cancellations never reach it.
    std::function<bool(const std::exception_ptr&)> is_failure;
    /// Called on every state change, synchronously, inside the call that caused
    /// it (the open → half-open change happens in the first call after the
    /// recovery timeout). Must not throw (std::terminate).
    std::function<void(circuit_state from, circuit_state to)> on_state_change;
};

/// A circuit breaker: stops calling a failing service for a while, then probes it.
///
/// closed → open when the failure rule trips; open → half-open in the first call
/// after `recovery_timeout`; half-open → closed when `half_open_max_calls` probes
/// succeeded, → open again at the first failed probe. An outcome is recorded only
/// in the state it was admitted in: a slow call that was admitted while closed
/// and ends after the circuit opened changes nothing.
///
/// @par Cancellation
/// A call that ends with `cancelled_error`, or with any exception while its
/// caller is cancelled, is counted neither as a failure nor as a success; a
/// cancelled probe gives its slot back. So put timeouts that measure the service
/// *inside* the call (`cb.call(with_timeout(2s, fetch()))` counts a slow service
/// as failing), and timeouts of the caller outside.
/// @par Thread safety
/// Belongs to one task tree (one io_context thread); not synchronised.
/// @par Example
/// @code
/// tether::circuit_breaker_options opts;
/// opts.failure_threshold = 3;
/// opts.recovery_timeout = 10s;
/// tether::circuit_breaker breaker(opts);
/// try {
///     auto body = co_await breaker.call(fetch(url));
/// } catch (const tether::circuit_open_error& e) {
///     requeue(url, e.retry_after());
/// }
/// @endcode
class circuit_breaker {
public:
    template <class A>
    class call_awaiter;

    /// @par Exceptions
    /// `usage_error` for inconsistent options (both rules off, a ratio outside
    /// [0, 1], a window or probe count of 0, minimum_calls outside 1..window_size,
    /// a negative recovery timeout).
    explicit circuit_breaker(circuit_breaker_options options = {});
    /// Consecutive-failure mode: opens after `failure_threshold` failures in a row.
    circuit_breaker(std::size_t failure_threshold, clock::duration recovery_timeout);

    circuit_breaker(const circuit_breaker&) = delete;
    circuit_breaker& operator=(const circuit_breaker&) = delete;

    /// `co_await cb.call(work)`: runs `work` — a `task<T>` (moved in) or any tether
    /// awaitable (`with_timeout(2s, fetch())`, …) — through the breaker, in place
    /// on the awaiting chain (no coroutine frame), and returns its result or
    /// rethrows its exception (the same object); records the outcome.
    /// @par Cancellation
    /// A cancellation point before `work` starts (then it never runs); `work` runs
    /// in the caller's scopes. See the class notes on what cancellations count as.
    /// @par Exceptions
    /// `circuit_open_error` (and `work` never runs) while the circuit is open —
    /// with the time left until the first probe — and while half-open with every
    /// probe slot taken (then `retry_after()` is the recovery timeout: the probes
    /// decide soon, and if one fails the circuit stays open that long).
    /// `usage_error` at the call for an empty task. Otherwise what `work` throws.
    template <detail::scope_awaitable A>
    [[nodiscard]] call_awaiter<A> call(A&& work);

    /// The current state. An open circuit whose recovery timeout has passed still
    /// reads `open` until the next call turns it half-open.
    circuit_state state() const noexcept {
        return state_;
    }
    /// Failures in a row recorded while closed.
    std::size_t consecutive_failures() const noexcept {
        return consecutive_;
    }
    /// Back to closed with every counter cleared (for an operator or a test).
    /// Calls admitted before are then not recorded.
    void reset() noexcept;
    const circuit_breaker_options& options() const noexcept {
        return opts_;
    }

private:
    template <class Key, class Hash, class KeyEqual>
    friend class keyed_circuit_breakers;

    // What an awaiter learned at admission.
    struct ticket {
        std::uint64_t generation = 0;
        bool admitted = false;
    };

    void admit(ticket& t, detail::scheduler& s) {
        if (state_ == circuit_state::closed) [[likely]] {
            t.generation = generation_;
            t.admitted = true;
            return;
        }
        admit_slow(t, s);
    }
    void admit_slow(ticket& t, detail::scheduler& s);

    // Records a call that returned. Fast path: closed, same generation.
    void record_success(const ticket& t) noexcept {
        if (t.generation != generation_) return; // admitted in an earlier state
        if (state_ == circuit_state::closed) [[likely]] {
            consecutive_ = 0;
            if (!window_.empty()) push_outcome(false);
            return;
        }
        record_probe_success();
    }
    void record_exception(const ticket& t, const std::exception_ptr& e, bool caller_cancelled,
                          detail::scheduler& s);
    void record_neutral(const ticket& t) noexcept;

    void record_probe_success() noexcept;
    void push_outcome(bool failure) noexcept;
    bool should_open() const noexcept;
    void open(clock::time_point now) noexcept;
    void transition(circuit_state to) noexcept;

    circuit_breaker_options opts_;
    circuit_state state_ = circuit_state::closed;
    // Bumped on every state change; an outcome counts only in its own generation.
    std::uint64_t generation_ = 0;
    std::size_t consecutive_ = 0; // closed: failures in a row
    // Ratio mode: ring of the last window_size outcomes (1 = failure).
    std::vector<unsigned char> window_;
    std::size_t window_pos_ = 0;
    std::size_t window_count_ = 0;
    std::size_t window_failures_ = 0;
    clock::time_point open_until_{}; // open: when the first probe may go
    std::size_t probes_ = 0;         // half-open: probe slots taken
    std::size_t probe_successes_ = 0;
    std::size_t refs_ = 0; // live call_awaiters (keyed_circuit_breakers::prune)
};

/// The awaitable of `circuit_breaker::call`: drives the work's own awaiter in
/// place (a task starts inline on the awaiting chain; no coroutine frame).
template <class A>
class [[nodiscard]] circuit_breaker::call_awaiter {
    using awaiter_type = detail::awaiter_for_t<A>;
    static constexpr bool separate_awaiter = detail::has_member_co_await<A>;
    using inner_result = decltype(std::declval<awaiter_type&>().await_resume());

public:
    // Movable only before it is awaited; a bound chain moves along.
    call_awaiter(call_awaiter&& o) noexcept(std::is_nothrow_constructible_v<A, A&&>)
        : cb_(std::exchange(o.cb_, nullptr)), work_(static_cast<A&&>(o.work_)), ctx_(o.ctx_) {}
    call_awaiter& operator=(call_awaiter&&) = delete;
    ~call_awaiter() {
        if (!cb_) return;
        --cb_->refs_;
        // Admitted but never resumed (its io_context was abandoned): give back a
        // probe slot; nothing is recorded.
        if (ticket_.admitted) cb_->record_neutral(ticket_);
    }

    void bind_context(detail::task_ctx& c) noexcept {
        ctx_ = &c;
    }

    bool await_ready() {
        if (ctx_->cancelled_) ctx_->check_cancelled(); // the test inlines; the throw does not
        cb_->admit(ticket_, *ctx_->sched_);            // throws circuit_open_error
        try {
            if constexpr (separate_awaiter)
                inner_.emplace(static_cast<A&&>(work_).operator co_await());
            awaiter_type& w = inner();
            if constexpr (detail::context_bindable<awaiter_type>) w.bind_context(*ctx_);
            return w.await_ready();
        } catch (...) {
            settle(std::current_exception());
            throw;
        }
    }

    template <class Promise>
    auto await_suspend(std::coroutine_handle<Promise> parent) {
        // A task that finishes at once lets the parent go on without a resumption.
        try {
            return inner().await_suspend(parent);
        } catch (...) {
            settle(std::current_exception());
            throw;
        }
    }

    inner_result await_resume() {
        if constexpr (detail::is_task<std::remove_cvref_t<A>>::value) {
            // A task's outcome is readable without a try block, which keeps this
            // path small enough to inline.
            const std::exception_ptr& e = inner_->child_.promise().exception_;
            if (!e) [[likely]]
                succeed();
            else
                settle(e);
            return inner_->await_resume(); // the value, or rethrows e
        } else {
            try {
                if constexpr (std::is_void_v<inner_result>) {
                    inner().await_resume();
                    succeed();
                } else {
                    inner_result r = inner().await_resume();
                    succeed();
                    if constexpr (std::is_reference_v<inner_result>)
                        return static_cast<inner_result>(r);
                    else
                        return r;
                }
            } catch (...) {
                settle(std::current_exception());
                throw; // the same exception object
            }
        }
    }

private:
    friend class circuit_breaker;

    call_awaiter(circuit_breaker& cb, A&& work) noexcept(std::is_nothrow_constructible_v<A, A&&>)
        : cb_(&cb), work_(static_cast<A&&>(work)) {
        ++cb.refs_;
    }

    awaiter_type& inner() noexcept {
        if constexpr (separate_awaiter)
            return *inner_;
        else
            return work_;
    }
    void succeed() noexcept {
        ticket_.admitted = false;
        cb_->record_success(ticket_);
    }
    void settle(const std::exception_ptr& e) {
        if (!ticket_.admitted) return;
        ticket_.admitted = false;
        cb_->record_exception(ticket_, e, ctx_->cancelled_, *ctx_->sched_);
    }

    struct no_awaiter {};
    circuit_breaker* cb_;
    A work_;
    [[no_unique_address]] std::conditional_t<separate_awaiter, std::optional<awaiter_type>,
                                             no_awaiter>
        inner_;
    ticket ticket_;
    detail::task_ctx* ctx_ = nullptr;
};

/// One circuit_breaker per key (per host, for a scraper), created on first use
/// with shared options.
///
/// Breakers live at stable addresses until `prune()` removes them.
/// @par Example
/// @code
/// tether::keyed_circuit_breakers<std::string> breakers(opts, [](const std::string& host,
///     tether::circuit_state from, tether::circuit_state to) { log(host, from, to); });
/// auto page = co_await breakers.call(url.host, fetch(url));
/// @endcode
template <class Key, class Hash, class KeyEqual>
class keyed_circuit_breakers {
public:
    /// Called on every state change of any breaker, with its key.
    using state_callback = std::function<void(const Key&, circuit_state from, circuit_state to)>;

    /// `options.on_state_change`, if set, is called too (without the key).
    /// @par Exceptions
    /// `usage_error` for inconsistent options (see circuit_breaker).
    explicit keyed_circuit_breakers(circuit_breaker_options options = {},
                                    state_callback on_state_change = {})
        : opts_(std::move(options)), on_change_(std::move(on_state_change)) {
        circuit_breaker probe(opts_); // validates now rather than at the first key
    }

    /// The breaker of `key`, created closed on first use.
    circuit_breaker& get(const Key& key) {
        auto it = breakers_.find(key);
        if (it != breakers_.end()) return it->second;
        circuit_breaker_options o = opts_;
        if (on_change_) {
            o.on_state_change = [cb = on_change_, inner = opts_.on_state_change,
                                 k = key](circuit_state from, circuit_state to) {
                if (inner) inner(from, to);
                cb(k, from, to);
            };
        }
        return breakers_.try_emplace(key, std::move(o)).first->second;
    }

    /// The breaker of `key`, or nullptr if it was never used (or pruned).
    circuit_breaker* find(const Key& key) noexcept {
        auto it = breakers_.find(key);
        return it == breakers_.end() ? nullptr : &it->second;
    }

    /// `co_await breakers.call(key, work)`: `get(key).call(work)`.
    template <detail::scope_awaitable A>
    [[nodiscard]] circuit_breaker::call_awaiter<A> call(const Key& key, A&& work) {
        return get(key).call(static_cast<A&&>(work));
    }

    /// Number of breakers.
    std::size_t size() const noexcept {
        return breakers_.size();
    }

    /// Removes the breakers that hold no information: closed, no failure recorded,
    /// no call pending. Returns how many were removed. Bounds memory when keys
    /// come and go (hosts in a long crawl).
    std::size_t prune() {
        std::size_t removed = 0;
        for (auto it = breakers_.begin(); it != breakers_.end();) {
            const circuit_breaker& b = it->second;
            if (b.state_ == circuit_state::closed && b.consecutive_ == 0 &&
                b.window_failures_ == 0 && b.refs_ == 0) {
                it = breakers_.erase(it);
                ++removed;
            } else {
                ++it;
            }
        }
        return removed;
    }

    const circuit_breaker_options& options() const noexcept {
        return opts_;
    }

private:
    circuit_breaker_options opts_;
    state_callback on_change_;
    // Node-based: a breaker keeps its address while others are added or removed.
    std::unordered_map<Key, circuit_breaker, Hash, KeyEqual> breakers_;
};

// ---------------------------------------------------------------------------
// Implementation

inline circuit_breaker::circuit_breaker(circuit_breaker_options options)
    : opts_(std::move(options)) {
    const circuit_breaker_options& o = opts_;
    if (o.failure_threshold == 0 && o.failure_ratio == 0.0)
        throw usage_error("tether::circuit_breaker: failure_threshold and failure_ratio are both "
                          "0, so the circuit could never open; set at least one");
    if (!(o.failure_ratio >= 0.0 && o.failure_ratio <= 1.0))
        throw usage_error("tether::circuit_breaker: failure_ratio must be in [0, 1] (0 switches "
                          "ratio mode off)");
    if (o.failure_ratio > 0.0) {
        if (o.window_size == 0)
            throw usage_error("tether::circuit_breaker: window_size is 0; ratio mode needs a "
                              "window of at least one call");
        if (o.minimum_calls == 0 || o.minimum_calls > o.window_size)
            throw usage_error("tether::circuit_breaker: minimum_calls must be between 1 and "
                              "window_size");
        window_.assign(o.window_size, 0);
    }
    if (o.half_open_max_calls == 0)
        throw usage_error("tether::circuit_breaker: half_open_max_calls is 0, so the circuit "
                          "could never close again; use at least 1");
    if (o.recovery_timeout < clock::duration::zero())
        throw usage_error("tether::circuit_breaker: recovery_timeout must not be negative");
}

inline circuit_breaker::circuit_breaker(std::size_t failure_threshold,
                                        clock::duration recovery_timeout)
    : circuit_breaker([&] {
          circuit_breaker_options o;
          o.failure_threshold = failure_threshold;
          o.recovery_timeout = recovery_timeout;
          return o;
      }()) {}

template <detail::scope_awaitable A>
circuit_breaker::call_awaiter<A> circuit_breaker::call(A&& work) {
    if constexpr (detail::is_task<std::remove_cvref_t<A>>::value) {
        if (!work)
            throw usage_error("tether::circuit_breaker::call: the task is empty (moved from)");
    }
    return call_awaiter<A>(*this, static_cast<A&&>(work));
}

inline void circuit_breaker::admit_slow(ticket& t, detail::scheduler& s) {
    if (state_ == circuit_state::open) {
        const clock::time_point now = s.now();
        if (now < open_until_) throw circuit_open_error(open_until_ - now);
        transition(circuit_state::half_open);
    }
    // Half-open: a probe, if a slot is free.
    if (probes_ >= opts_.half_open_max_calls) throw circuit_open_error(opts_.recovery_timeout);
    ++probes_;
    t.generation = generation_;
    t.admitted = true;
}

inline void circuit_breaker::record_exception(const ticket& t, const std::exception_ptr& e,
                                              bool caller_cancelled, detail::scheduler& s) {
    // A cancellation says nothing about the service.
    if (caller_cancelled || detail::is_cancelled_error(e)) {
        record_neutral(t);
        return;
    }
    if (t.generation != generation_) return;
    const bool failure = opts_.is_failure ? opts_.is_failure(e) : true;
    if (!failure) {
        record_success(t);
        return;
    }
    if (state_ == circuit_state::closed) {
        ++consecutive_;
        if (!window_.empty()) push_outcome(true);
        if (should_open()) open(s.now());
    } else { // half-open: a failed probe
        open(s.now());
    }
}

inline void circuit_breaker::record_neutral(const ticket& t) noexcept {
    // Only a half-open probe holds something to give back: its slot.
    if (t.generation == generation_ && state_ == circuit_state::half_open) --probes_;
}

inline void circuit_breaker::record_probe_success() noexcept {
    // Invariant: state_ == half_open (admissions happen only closed or half-open,
    // and each state change bumps the generation).
    if (++probe_successes_ >= opts_.half_open_max_calls) transition(circuit_state::closed);
}

inline void circuit_breaker::push_outcome(bool failure) noexcept {
    if (window_count_ == window_.size())
        window_failures_ -= window_[window_pos_];
    else
        ++window_count_;
    window_[window_pos_] = failure ? 1 : 0;
    window_failures_ += failure ? 1 : 0;
    if (++window_pos_ == window_.size()) window_pos_ = 0;
}

inline bool circuit_breaker::should_open() const noexcept {
    if (opts_.failure_threshold != 0 && consecutive_ >= opts_.failure_threshold) return true;
    return opts_.failure_ratio > 0.0 && window_count_ >= opts_.minimum_calls &&
           static_cast<double>(window_failures_) >=
               opts_.failure_ratio * static_cast<double>(window_count_);
}

inline void circuit_breaker::open(clock::time_point now) noexcept {
    open_until_ = detail::deadline_after(now, opts_.recovery_timeout);
    transition(circuit_state::open);
}

inline void circuit_breaker::reset() noexcept {
    transition(circuit_state::closed);
}

inline void circuit_breaker::transition(circuit_state to) noexcept {
    const circuit_state from = state_;
    state_ = to;
    ++generation_;
    consecutive_ = 0;
    window_pos_ = window_count_ = window_failures_ = 0;
    probes_ = probe_successes_ = 0;
    if (from != to && opts_.on_state_change) opts_.on_state_change(from, to);
}

} // namespace tether
