// tether/when.hpp — when_all, when_any, gather_settled, outcome<T> (DESIGN.md §6).
//
// Each combinator is a task group without a body: the tasks become children of
// a scope opened in place (no coroutine frame besides the children's own), and
// their results go straight from the finishing frame into a slot of the
// awaitable.
#pragma once

#include <tether/cancel_scope.hpp>
#include <tether/config.hpp>
#include <tether/detail/group_core.hpp>
#include <tether/errors.hpp>
#include <tether/task.hpp>
#include <tether/task_group.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace tether {

/// The result of one task of gather_settled: a value or an exception.
///
/// `outcome<void>` holds nothing or an exception.
template <class T>
class outcome {
public:
    using value_type = T;

    /// Holds `v`.
    explicit outcome(T v) noexcept(std::is_nothrow_move_constructible_v<T>)
        : v_(std::in_place_index<0>, std::move(v)) {}
    /// Holds the exception `e` (not null).
    explicit outcome(std::exception_ptr e) noexcept : v_(std::in_place_index<1>, std::move(e)) {}

    bool has_value() const noexcept {
        return v_.index() == 0;
    }
    explicit operator bool() const noexcept {
        return has_value();
    }

    /// The value; rethrows the exception (the same object) if there is none.
    T& value() & {
        check();
        return std::get<0>(v_);
    }
    const T& value() const& {
        check();
        return std::get<0>(v_);
    }
    T&& value() && {
        check();
        return std::get<0>(std::move(v_));
    }

    /// The exception, or null when it holds a value.
    std::exception_ptr error() const noexcept {
        return v_.index() == 1 ? std::get<1>(v_) : std::exception_ptr();
    }

private:
    void check() const {
        if (v_.index() == 1) std::rethrow_exception(std::get<1>(v_));
    }

    std::variant<T, std::exception_ptr> v_;
};

template <>
class outcome<void> {
public:
    using value_type = void;

    /// Success.
    outcome() noexcept = default;
    /// Holds the exception `e` (not null).
    explicit outcome(std::exception_ptr e) noexcept : e_(std::move(e)) {}

    bool has_value() const noexcept {
        return !e_;
    }
    explicit operator bool() const noexcept {
        return has_value();
    }
    /// Rethrows the exception, if any.
    void value() const {
        if (e_) std::rethrow_exception(e_);
    }
    std::exception_ptr error() const noexcept {
        return e_;
    }

private:
    std::exception_ptr e_;
};

namespace detail {

/// What a task<T> contributes to a tuple or variant: T, or std::monostate for void.
template <class T>
using slot_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
slot_value_t<T> take_value(promise<T>& p) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if constexpr (std::is_void_v<T>) {
        return std::monostate{};
    } else {
        return std::move(*p.value_);
    }
}

/// on_done_ of a when_* child: hands the outcome to its slot, frees the frame.
template <class T, class Slot>
std::coroutine_handle<> slot_done(promise_base& pb) noexcept {
    auto& p = static_cast<promise<T>&>(pb);
    Slot& slot = *static_cast<Slot*>(p.owner_);
    group_core& g = *slot.group_;
    g.detach_chain(p.own_ctx_);
    slot.complete(p); // noexcept: a throwing move of the value terminates
    task_handle<T>::from_promise(p).destroy();
    return g.child_finished();
}

/// when_all: keeps the value; a failure fails the group.
template <class T>
struct all_slot {
    group_core* group_ = nullptr;
    std::optional<slot_value_t<T>> value_;

    void complete(promise<T>& p) noexcept {
        if (p.exception_)
            group_->child_error(p.exception_);
        else
            value_.emplace(take_value(p));
    }
};

/// gather_settled: keeps the value or the exception; nothing fails the group.
template <class T>
struct settled_slot {
    group_core* group_ = nullptr;
    std::optional<outcome<T>> outcome_;

    void complete(promise<T>& p) noexcept {
        if (p.exception_) {
            if (!group_->first_cancelled_ && is_cancelled_error(p.exception_))
                group_->first_cancelled_ = p.exception_;
            outcome_.emplace(p.exception_);
        } else if constexpr (std::is_void_v<T>) {
            outcome_.emplace();
        } else {
            outcome_.emplace(std::move(*p.value_));
        }
    }
};

/// when_any: the first value wins and cancels the rest.
template <class T, class Owner, std::size_t I>
struct any_slot {
    group_core* group_ = nullptr;
    Owner* owner_ = nullptr;
    std::size_t index_ = I; // vector form: the task's position

    void complete(promise<T>& p) noexcept {
        if (p.exception_) {
            group_->child_error(p.exception_);
            return;
        }
        if (owner_->winner_) return; // a loser that also finished: its value is dropped
        owner_->template win<I>(index_, take_value(p));
        group_->cancel_own();
    }
};

template <class T>
void check_tasks(const std::vector<task<T>>& tasks, const char* who) {
    for (const task<T>& t : tasks)
        if (!t) throw usage_error(std::string(who) + ": a task is empty (moved from)");
}

template <class... Ts>
void check_tasks(const std::tuple<task<Ts>...>& tasks, const char* who) {
    const bool any_empty = std::apply([](const auto&... t) { return (!t || ...); }, tasks);
    if (any_empty) throw usage_error(std::string(who) + ": a task is empty (moved from)");
}

/// The common part of the combinator awaitables: a group with no body.
class combinator_base {
public:
    combinator_base() = default;
    // Movable only before await_suspend (a fresh group is made).
    combinator_base(combinator_base&& o) noexcept : ctx_(o.ctx_) {}
    combinator_base& operator=(combinator_base&&) = delete;

    void bind_context(task_ctx& c) noexcept {
        ctx_ = &c;
    }
    bool await_ready() const noexcept {
        return false;
    }

protected:
    // The whole of every combinator's await_suspend: checks the tasks, opens the
    // group, launches them (launch_each() calls launch() once per task), and runs
    // what is ready. True if the caller suspends.
    template <class Tasks, class LaunchEach>
    bool start(const Tasks& tasks, const char* who, std::coroutine_handle<> parent,
               LaunchEach&& launch_each) {
        check_tasks(tasks, who);
        core_.open(*ctx_, parent, false);
        launch_each();
        return core_.finish_start();
    }

    template <class T, class Slot>
    void launch(task<T>& t, Slot& slot) noexcept {
        slot.group_ = &core_;
        core_.launch(t.release(), &slot, &slot_done<T, Slot>);
    }

    // Leaves the scope; throws task_group_error if a task failed.
    void close() {
        core_.close(*ctx_);
        if (!core_.errors_.empty()) throw task_group_error(std::move(core_.errors_));
    }

    [[noreturn]] void rethrow_cancelled() const {
        if (core_.first_cancelled_) std::rethrow_exception(core_.first_cancelled_);
        throw cancelled_error(); // unreachable: a task without a value failed or was cancelled
    }

    group_core core_;
    task_ctx* ctx_ = nullptr;
};

template <class... Ts>
class [[nodiscard]] when_all_awaitable : public combinator_base {
public:
    using result_type = std::tuple<slot_value_t<Ts>...>;

    explicit when_all_awaitable(task<Ts>... ts) : tasks_(std::move(ts)...) {}
    when_all_awaitable(when_all_awaitable&& o) noexcept
        : combinator_base(std::move(o)), tasks_(std::move(o.tasks_)) {}

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) {
        return start(tasks_, "tether::when_all", parent,
                     [this] { launch_all(std::index_sequence_for<Ts...>{}); });
    }

    result_type await_resume() {
        close();
        const bool complete =
            std::apply([](auto&... s) { return (s.value_.has_value() && ...); }, slots_);
        if (!complete) rethrow_cancelled();
        return std::apply([](auto&... s) { return result_type(std::move(*s.value_)...); }, slots_);
    }

    operator task<result_type>() && {
        return awaitable_as_task<result_type>(std::move(*this));
    }

private:
    template <std::size_t... I>
    void launch_all(std::index_sequence<I...>) noexcept {
        (launch(std::get<I>(tasks_), std::get<I>(slots_)), ...);
    }

    std::tuple<task<Ts>...> tasks_;
    std::tuple<all_slot<Ts>...> slots_;
};

template <class T>
class [[nodiscard]] when_all_vector_awaitable : public combinator_base {
public:
    using result_type = std::conditional_t<std::is_void_v<T>, void, std::vector<slot_value_t<T>>>;

    explicit when_all_vector_awaitable(std::vector<task<T>> ts) : tasks_(std::move(ts)) {}
    when_all_vector_awaitable(when_all_vector_awaitable&& o) noexcept
        : combinator_base(std::move(o)), tasks_(std::move(o.tasks_)) {}

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) {
        slots_.resize(tasks_.size());
        return start(tasks_, "tether::when_all", parent, [this] {
            for (std::size_t i = 0; i < tasks_.size(); ++i) launch(tasks_[i], slots_[i]);
        });
    }

    result_type await_resume() {
        close();
        for (const all_slot<T>& s : slots_)
            if (!s.value_) rethrow_cancelled();
        if constexpr (!std::is_void_v<T>) {
            result_type r;
            r.reserve(slots_.size());
            for (all_slot<T>& s : slots_) r.push_back(std::move(*s.value_));
            return r;
        }
    }

    operator task<result_type>() && {
        return awaitable_as_task<result_type>(std::move(*this));
    }

private:
    std::vector<task<T>> tasks_;
    std::vector<all_slot<T>> slots_;
};

template <class... Ts>
class [[nodiscard]] when_any_awaitable : public combinator_base {
public:
    using result_type = std::variant<slot_value_t<Ts>...>;

    explicit when_any_awaitable(task<Ts>... ts) : tasks_(std::move(ts)...) {}
    when_any_awaitable(when_any_awaitable&& o) noexcept
        : combinator_base(std::move(o)), tasks_(std::move(o.tasks_)) {}

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) {
        return start(tasks_, "tether::when_any", parent,
                     [this] { launch_all(std::index_sequence_for<Ts...>{}); });
    }

    result_type await_resume() {
        close();
        if (!winner_) rethrow_cancelled();
        return std::move(*winner_);
    }

    operator task<result_type>() && {
        return awaitable_as_task<result_type>(std::move(*this));
    }

private:
    template <class, class, std::size_t>
    friend struct any_slot;

    template <std::size_t I, class V>
    void win(std::size_t, V&& v) noexcept {
        winner_.emplace(std::in_place_index<I>, std::forward<V>(v));
    }

    template <std::size_t... I>
    void launch_all(std::index_sequence<I...>) noexcept {
        ((std::get<I>(slots_).owner_ = this), ...);
        (launch(std::get<I>(tasks_), std::get<I>(slots_)), ...);
    }

    template <class Seq>
    struct slots_for;
    template <std::size_t... I>
    struct slots_for<std::index_sequence<I...>> {
        using type = std::tuple<any_slot<Ts, when_any_awaitable, I>...>;
    };

    std::tuple<task<Ts>...> tasks_;
    typename slots_for<std::index_sequence_for<Ts...>>::type slots_;
    std::optional<result_type> winner_;
};

template <class T>
class [[nodiscard]] when_any_vector_awaitable : public combinator_base {
public:
    using result_type = std::pair<std::size_t, slot_value_t<T>>;

    explicit when_any_vector_awaitable(std::vector<task<T>> ts) : tasks_(std::move(ts)) {}
    when_any_vector_awaitable(when_any_vector_awaitable&& o) noexcept
        : combinator_base(std::move(o)), tasks_(std::move(o.tasks_)) {}

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) {
        if (tasks_.empty()) throw usage_error("tether::when_any: no tasks (nothing can win)");
        slots_.resize(tasks_.size());
        return start(tasks_, "tether::when_any", parent, [this] {
            for (std::size_t i = 0; i < tasks_.size(); ++i) {
                slots_[i].owner_ = this;
                slots_[i].index_ = i;
                launch(tasks_[i], slots_[i]);
            }
        });
    }

    result_type await_resume() {
        close();
        if (!winner_) rethrow_cancelled();
        return std::move(*winner_);
    }

    operator task<result_type>() && {
        return awaitable_as_task<result_type>(std::move(*this));
    }

private:
    template <class, class, std::size_t>
    friend struct any_slot;

    template <std::size_t, class V>
    void win(std::size_t index, V&& v) noexcept {
        winner_.emplace(index, std::forward<V>(v));
    }

    std::vector<task<T>> tasks_;
    std::vector<any_slot<T, when_any_vector_awaitable, 0>> slots_;
    std::optional<result_type> winner_;
};

template <class T>
class [[nodiscard]] gather_settled_awaitable : public combinator_base {
public:
    using result_type = std::vector<outcome<T>>;

    explicit gather_settled_awaitable(std::vector<task<T>> ts) : tasks_(std::move(ts)) {}
    gather_settled_awaitable(gather_settled_awaitable&& o) noexcept
        : combinator_base(std::move(o)), tasks_(std::move(o.tasks_)) {}

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) {
        slots_.resize(tasks_.size());
        return start(tasks_, "tether::gather_settled", parent, [this] {
            for (std::size_t i = 0; i < tasks_.size(); ++i) launch(tasks_[i], slots_[i]);
        });
    }

    result_type await_resume() {
        close();
        // Cancelled by an enclosing scope: the caller is cancelled, not settled.
        if (core_.first_cancelled_ && core_.scope_.enclosing_cancelled()) rethrow_cancelled();
        result_type r;
        r.reserve(slots_.size());
        for (settled_slot<T>& s : slots_) r.push_back(std::move(*s.outcome_));
        return r;
    }

    operator task<result_type>() && {
        return awaitable_as_task<result_type>(std::move(*this));
    }

private:
    std::vector<task<T>> tasks_;
    std::vector<settled_slot<T>> slots_;
};

} // namespace detail

/// Runs the tasks concurrently and returns all their values, in order:
/// `auto [a, b] = co_await when_all(f(), g());` — a `void` task contributes a
/// `std::monostate`.
///
/// Structured: the tasks are children of a scope opened in place (a task group
/// without a body); `when_all` returns only when every one has finished.
///
/// @par Cancellation
/// Not a cancellation point itself. The first failure cancels the other tasks;
/// when all have finished, `task_group_error` is thrown with every failure. A
/// cancellation of an enclosing scope cancels the tasks and passes through as
/// `cancelled_error` (or `task_group_error` if a task failed meanwhile).
/// @par Exceptions
/// `task_group_error`; `cancelled_error`; `usage_error` for an empty task.
template <class... Ts>
detail::when_all_awaitable<Ts...> when_all(task<Ts>... tasks) {
    return detail::when_all_awaitable<Ts...>(std::move(tasks)...);
}

/// Runs the tasks concurrently; returns their values in order (`void` for
/// `task<void>`). As the variadic form otherwise; an empty vector returns at once.
template <class T>
detail::when_all_vector_awaitable<T> when_all(std::vector<task<T>> tasks) {
    return detail::when_all_vector_awaitable<T>(std::move(tasks));
}

/// Runs the tasks concurrently; the first to finish with a value wins, the others
/// are cancelled and joined before it returns.
///
/// Returns `std::variant<V...>` whose `index()` is the winner's position
/// (`V` = `T`, or `std::monostate` for `task<void>`; duplicates allowed, so read
/// it with `std::get<I>`).
///
/// A loser that also finished with a value before it saw the cancellation: its
/// value is destroyed (the first to finish wins). A task that fails — the
/// winner's competitor included, also while being cancelled — is never dropped:
/// the failure cancels the rest and `task_group_error` is thrown (the winner's
/// value, if any, is destroyed), as with a task group.
///
/// @par Cancellation
/// Not a cancellation point itself. The losers' cancellation does not leak out.
/// If an enclosing scope cancels every task before one wins, `cancelled_error`.
/// @par Example
/// @code
/// auto r = co_await tether::when_any(query(primary), query(replica));
/// const reply& first = r.index() == 0 ? std::get<0>(r) : std::get<1>(r);
/// @endcode
template <class T0, class... Ts>
detail::when_any_awaitable<T0, Ts...> when_any(task<T0> first, task<Ts>... rest) {
    return detail::when_any_awaitable<T0, Ts...>(std::move(first), std::move(rest)...);
}

/// The vector form of when_any: returns {the winner's position, its value}
/// (`std::monostate` for `task<void>`). `usage_error` if `tasks` is empty.
template <class T>
detail::when_any_vector_awaitable<T> when_any(std::vector<task<T>> tasks) {
    return detail::when_any_vector_awaitable<T>(std::move(tasks));
}

/// Runs the tasks concurrently and returns every outcome, in order — a value or
/// the exception (asyncio's `gather(..., return_exceptions=True)`). A failure
/// does not cancel the other tasks.
///
/// @par Cancellation
/// Not a cancellation point itself. A cancellation of an enclosing scope cancels
/// the tasks; if any of them ended cancelled, `cancelled_error` is thrown (the
/// caller is cancelled), otherwise the outcomes are returned. A task cancelled
/// by itself (e.g. `with_cancellation`) reports its `cancelled_error` as its
/// outcome.
template <class T>
detail::gather_settled_awaitable<T> gather_settled(std::vector<task<T>> tasks) {
    return detail::gather_settled_awaitable<T>(std::move(tasks));
}

} // namespace tether
