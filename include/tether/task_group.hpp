// tether/task_group.hpp — task_group, with_task_group, child<T>,
// task_group_error (DESIGN.md §4): Trio's nursery, Python's asyncio.TaskGroup.
#pragma once

#include <tether/cancel_scope.hpp>
#include <tether/config.hpp>
#include <tether/detail/group_core.hpp>
#include <tether/detail/scope.hpp>
#include <tether/errors.hpp>
#include <tether/task.hpp>

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace tether {

/// Every failure of a task group (or of when_all / when_any): Python's
/// ExceptionGroup.
///
/// Thrown by `with_task_group` when the body or a child failed, even for a
/// single failure. The members are the original exceptions (same
/// `exception_ptr`, so identity is preserved), in the order they happened, and
/// never a `cancelled_error`. A nested group's failure is a member of its own
/// (not flattened). Copying is cheap and never throws.
///
/// @par The `except*` equivalent
/// `handle<E>(f)` calls `f(e)` for every member of type `E` (looking inside
/// nested groups) and returns the others as a smaller group, or nothing when
/// every member was handled. Rethrow what is left:
/// @code
/// // Python:  try: …  except* ConnectionError as g: …  except* TimeoutError as g: …
/// try {
///     co_await tether::with_task_group([&](tether::task_group& tg) -> tether::task<> {
///         for (auto& url : urls) tg.spawn(fetch(url));
///         co_return;
///     });
/// } catch (const tether::task_group_error& group) {
///     auto rest = group.handle<connection_error>([&](connection_error& e) { log(e); });
///     if (rest) rest = rest->handle<tether::timeout_error>([&](auto&) { ++timeouts; });
///     if (rest) throw *rest; // the unhandled members, still a task_group_error
/// }
/// @endcode
/// `split<E>()` returns both halves, like Python's `ExceptionGroup.split`.
class task_group_error : public std::exception {
public:
    /// @pre `errors` is not empty and holds no cancelled_error.
    explicit task_group_error(std::vector<std::exception_ptr> errors);

    /// "tether::task_group_error: N failure(s); first: <what() of the first>".
    const char* what() const noexcept override {
        return state_->what_.c_str();
    }

    /// The failures, in the order they happened.
    const std::vector<std::exception_ptr>& exceptions() const noexcept {
        return state_->errors_;
    }

    /// True if a member, or a member of a nested group, is an `E`.
    template <class E>
    bool contains() const;

    /// Calls `f(E&)` for each member of type `E` (also inside nested groups) and
    /// returns the remaining members as a smaller group (nested groups keep their
    /// shape), or `std::nullopt` if none remain. `f` runs inside a catch handler
    /// of that member: `throw;` in `f` rethrows it. An exception from `f`
    /// propagates at once (the unhandled members go with this group).
    template <class E, class F>
        requires std::invocable<F&, E&> std::optional<task_group_error> handle(F f)
    const {
        return handle_impl<E>(f);
    }

    /// {members of type `E`, the rest}, each `std::nullopt` when empty.
    template <class E>
    std::pair<std::optional<task_group_error>, std::optional<task_group_error>> split() const;

private:
    template <class E, class F>
    std::optional<task_group_error> handle_impl(F& f) const;

    struct state {
        std::vector<std::exception_ptr> errors_;
        std::string what_;
    };
    std::shared_ptr<const state> state_;
};

class task_group;

namespace detail {
template <class T>
struct child_ref {
    using type = T&;
    using const_type = const T&;
};
template <>
struct child_ref<void> {
    using type = void;
    using const_type = void;
};
} // namespace detail

/// The handle of a child spawned into a task_group.
///
/// Movable, not copyable. Dropping the handle does not cancel or detach the
/// child (the group still waits for it and reports its failure); it only
/// releases the frame: a child that no handle refers to frees its frame as soon
/// as it ends. While a handle refers to a finished child, the frame (and its
/// result) stays alive, also after the group has ended.
///
/// @par Thread safety
/// Use on the task tree's thread only.
template <class T>
class child {
public:
    using value_type = T;

    /// An empty handle (refers to no child).
    child() noexcept = default;
    child(child&& o) noexcept;
    child& operator=(child&& o) noexcept;
    child(const child&) = delete;
    child& operator=(const child&) = delete;
    ~child() {
        release();
    }

    /// True once the child has finished (with a value, an error or cancelled).
    bool done() const noexcept {
        return h_ && h_.done();
    }

    /// The child's value, or rethrows its exception (the same object); a
    /// cancelled child throws `cancelled_error`.
    /// @par Exceptions
    /// `usage_error` if the child has not finished (await it first) or the handle
    /// is empty.
    typename detail::child_ref<T>::type result() &;
    typename detail::child_ref<T>::const_type result() const&;
    /// Moves the value out.
    T result() &&;

    /// Cancels this child only (and whatever it spawned into nested groups). Not
    /// an error for the group. No effect on a finished child, or the second time.
    /// @par Exceptions
    /// `std::bad_alloc` (cancelling one child allocates a small scope).
    void cancel();

    class waiter_base;
    template <bool Move>
    class awaiter;

    /// `co_await h`: waits for the child, then as result() (a reference to the
    /// value held by the handle).
    /// @par Cancellation
    /// A cancellation point while the child has not finished: a cancelled wait
    /// throws `cancelled_error` and leaves the child running (its result stays in
    /// the handle; its group still waits for it). A finished child returns at
    /// once, without a cancellation point.
    awaiter<false> operator co_await() & noexcept {
        return awaiter<false>(*this);
    }
    /// `co_await std::move(h)`: as above, moving the value out.
    awaiter<true> operator co_await() && noexcept {
        return awaiter<true>(*this);
    }

private:
    friend class task_group;

    child(detail::task_handle<T> h, detail::group_core& g) noexcept;
    static std::coroutine_handle<> on_done(detail::promise_base& pb) noexcept;
    static std::coroutine_handle<> on_done_detached(detail::promise_base& pb) noexcept;
    void release() noexcept;
    void rebind() noexcept;
    void check_done(const char* what) const;

    detail::task_handle<T> h_{};
    detail::group_core* group_ = nullptr; // valid while the child runs
    waiter_base* waiter_ = nullptr;       // a task awaiting this handle
    bool cancel_requested_ = false;
};

namespace detail {
template <class A>
concept spawnable_awaitable = requires {
    typename std::remove_cvref_t<A>::result_type;
}
&&std::convertible_to<A&&, task<typename std::remove_cvref_t<A>::result_type>>;
} // namespace detail

/// A nursery: the tasks spawned into it are its children; the scope that opened
/// it (`with_task_group`) ends only when the body and every child have ended.
/// Obtain one from `with_task_group`.
///
/// @par Thread safety
/// Use on the task tree's thread only.
class task_group {
public:
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;

    /// Starts `t` as a child of the group; it runs on the group's executor, in the
    /// group's cancellation scope, once the spawning task next suspends.
    /// Spawning while the group is joining (the body has returned, children still
    /// run) is allowed.
    /// @par Exceptions
    /// `usage_error` if the group is failing, cancelled (by cancel() or an
    /// enclosing scope) or finished, or `t` is empty; `t` is then destroyed
    /// without running.
    template <class T>
    child<T> spawn(task<T> t);

    /// Spawns a scope awaitable (`with_timeout(…)`, `shield(…)`, `when_all(…)`,
    /// another `with_task_group(…)` …), converted into a task.
    template <class A>
        requires detail::spawnable_awaitable<A> child<typename std::remove_cvref_t<A>::result_type>
        spawn(A&& work) {
            using R = typename std::remove_cvref_t<A>::result_type;
            return spawn(task<R>(static_cast<A&&>(work)));
        }

    /// Cancels the body and every child. The group then ends normally (this
    /// cancellation never leaks out of it); later spawns are refused. Idempotent.
    void cancel() noexcept {
        core_.cancel_own();
    }

    /// True once cancel() was called, a failure cancelled the group, or the body
    /// ended with an exception.
    bool cancel_called() const noexcept {
        return core_.scope_.cancel_called_;
    }

    /// Number of children that have not finished.
    std::size_t size() const noexcept {
        return core_.running_;
    }

private:
    template <class F>
    friend class task_group_awaitable;

    task_group() = default;

    detail::group_core core_;
};

/// The awaitable returned by with_task_group. Move it only before awaiting it.
template <class F>
class [[nodiscard]] task_group_awaitable {
public:
    using body_task = std::invoke_result_t<F&, task_group&>;
    using value_type = typename body_task::value_type;
    using result_type = value_type;

    explicit task_group_awaitable(F fn) : fn_(std::move(fn)) {}
    task_group_awaitable(task_group_awaitable&& o) noexcept(std::is_nothrow_move_constructible_v<F>)
        : fn_(std::move(o.fn_)), ctx_(o.ctx_) {}
    task_group_awaitable& operator=(task_group_awaitable&&) = delete;

    void bind_context(detail::task_ctx& c) noexcept {
        ctx_ = &c;
    }
    bool await_ready() const noexcept {
        return false;
    }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent);
    result_type await_resume();

    /// Converts the awaitable into a task (to spawn it, store it, …).
    operator task<result_type>() && {
        return detail::awaitable_as_task<result_type>(std::move(*this));
    }

private:
    static std::coroutine_handle<> body_done(detail::promise_base& pb) noexcept {
        return static_cast<detail::group_core*>(pb.owner_)->body_finished(pb.exception_);
    }

    F fn_;
    task_group group_;
    body_task body_;
    detail::task_ctx* ctx_ = nullptr;
};

/// Opens a task group: runs `body(tg)` and returns its value once the body and
/// every child spawned into `tg` have finished.
///
/// `body` is invoked once, with the group, and must return `task<T>`; it runs
/// inline on the awaiting task. The callable is kept alive until the group ends.
///
/// @par Cancellation
/// The body and the children run in the group's scope. The first failure (an
/// exception other than `cancelled_error`, from a child or the body) cancels the
/// body and every child; when all have finished, `task_group_error` is thrown
/// with every failure. `tg.cancel()` cancels everything and the group then ends
/// normally; if that leaves a body that returns a value without one, its
/// `cancelled_error` propagates (catch it in the body to return a fallback). A
/// cancellation of an enclosing scope cancels the body and the children, and
/// passes through as `cancelled_error`; if it comes with failures, the group
/// throws `task_group_error` and the enclosing scope stays cancelled (its next
/// cancellation point throws). Awaiting the group is not itself a cancellation
/// point.
/// @par Exceptions
/// `task_group_error`; a `cancelled_error` as described; `usage_error` if
/// `body` returns an empty task.
/// @par Example
/// @code
/// auto total = co_await tether::with_task_group([&](tether::task_group& tg) -> tether::task<int> {
///     tether::child<int> a = tg.spawn(count("a"));
///     tg.spawn(log_progress());       // the handle may be dropped
///     co_return co_await a + 1;       // the group still waits for log_progress
/// });
/// @endcode
template <class F>
    requires std::invocable<F&, task_group&> task_group_awaitable<F> with_task_group(F body) {
        return task_group_awaitable<F>(std::move(body));
    }

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

// Matches an exception_ptr against E; calls f(E&) inside the handler.
template <class E, class F>
bool visit_as(const std::exception_ptr& e, F&& f) {
    try {
        std::rethrow_exception(e);
    } catch (E& x) {
        std::forward<F>(f)(x);
        return true;
    } catch (...) {
        return false;
    }
}

inline std::string describe(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "an exception not derived from std::exception";
    }
}

} // namespace detail

inline task_group_error::task_group_error(std::vector<std::exception_ptr> errors) {
    auto s = std::make_shared<state>();
    s->what_ = "tether::task_group_error: " + std::to_string(errors.size()) +
               (errors.size() == 1 ? " failure" : " failures");
    if (!errors.empty()) s->what_ += "; first: " + detail::describe(errors.front());
    s->errors_ = std::move(errors);
    state_ = std::move(s);
}

template <class E>
bool task_group_error::contains() const {
    for (const std::exception_ptr& e : exceptions()) {
        bool found = detail::visit_as<E>(e, [](E&) {});
        if constexpr (!std::is_base_of_v<E, task_group_error>) {
            if (!found)
                detail::visit_as<task_group_error>(
                    e, [&](task_group_error& g) { found = g.template contains<E>(); });
        }
        if (found) return true;
    }
    return false;
}

template <class E, class F>
std::optional<task_group_error> task_group_error::handle_impl(F& f) const {
    std::vector<std::exception_ptr> rest;
    for (const std::exception_ptr& e : exceptions()) {
        if constexpr (!std::is_base_of_v<E, task_group_error>) {
            std::optional<task_group_error> nested_rest;
            bool unchanged = false;
            const bool nested = detail::visit_as<task_group_error>(e, [&](task_group_error& g) {
                nested_rest = g.template handle_impl<E>(f);
                unchanged = nested_rest && nested_rest->state_ == g.state_;
            });
            if (nested) {
                if (unchanged)
                    rest.push_back(e); // keep the same object
                else if (nested_rest)
                    rest.push_back(std::make_exception_ptr(std::move(*nested_rest)));
                continue;
            }
        }
        if (!detail::visit_as<E>(e, f)) rest.push_back(e);
    }
    if (rest.empty()) return std::nullopt;
    if (rest == exceptions()) return *this;
    return task_group_error(std::move(rest));
}

template <class E>
std::pair<std::optional<task_group_error>, std::optional<task_group_error>>
task_group_error::split() const {
    std::vector<std::exception_ptr> matched;
    std::vector<std::exception_ptr> rest;
    for (const std::exception_ptr& e : exceptions()) {
        if constexpr (!std::is_base_of_v<E, task_group_error>) {
            std::pair<std::optional<task_group_error>, std::optional<task_group_error>> parts;
            const bool nested = detail::visit_as<task_group_error>(
                e, [&](task_group_error& g) { parts = g.template split<E>(); });
            if (nested) {
                if (parts.first) {
                    if (!parts.second)
                        matched.push_back(e); // wholly matched: keep the same object
                    else
                        matched.push_back(std::make_exception_ptr(std::move(*parts.first)));
                }
                if (parts.second) {
                    if (!parts.first)
                        rest.push_back(e);
                    else
                        rest.push_back(std::make_exception_ptr(std::move(*parts.second)));
                }
                continue;
            }
        }
        (detail::visit_as<E>(e, [](E&) {}) ? matched : rest).push_back(e);
    }
    auto make = [this](std::vector<std::exception_ptr>& v) -> std::optional<task_group_error> {
        if (v.empty()) return std::nullopt;
        if (v == exceptions()) return *this;
        return task_group_error(std::move(v));
    };
    return {make(matched), make(rest)};
}

// --- child<T> ---------------------------------------------------------------

/// The part of a child awaiter the child's completion wakes.
template <class T>
class child<T>::waiter_base : public detail::wait_node {
public:
    void wake() noexcept {
        ctx_->end_wait();
        ctx_->sched_->schedule(*this);
    }

protected:
    friend class child<T>;
    child* owner_ = nullptr; // null if the handle was destroyed while awaited
    bool cancelled_ = false;
};

template <class T>
template <bool Move>
class [[nodiscard]] child<T>::awaiter : public waiter_base {
public:
    explicit awaiter(child& c) noexcept {
        this->owner_ = &c;
    }
    // Movable only before await_suspend.
    awaiter(awaiter&& o) noexcept : waiter_base() {
        this->owner_ = o.owner_;
    }
    awaiter& operator=(awaiter&&) = delete;

    bool await_ready() const {
        if (!this->owner_->h_) throw usage_error("tether::child: awaited an empty child handle");
        return this->owner_->h_.done();
    }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        detail::task_ctx& ctx = *h.promise().ctx_;
        if (ctx.cancelled_) { // a cancellation point: throw from await_resume
            this->ctx_ = &ctx;
            this->cancelled_ = true;
            return false;
        }
        if (this->owner_->waiter_)
            throw usage_error("tether::child: a child handle can be awaited by one task at a time");
        this->handle_ = h;
        ctx.begin_wait(*this, &on_cancel);
        this->owner_->waiter_ = this;
        return true;
    }

    std::conditional_t<Move, T, typename detail::child_ref<T>::type> await_resume() {
        if (this->cancelled_) this->ctx_->check_cancelled();
        if (!this->owner_)
            throw usage_error("tether::child: the handle was destroyed while it was awaited");
        if constexpr (Move) {
            return std::move(*this->owner_).result();
        } else {
            return this->owner_->result();
        }
    }

private:
    // The wait did not happen: unregister; the child keeps running.
    static void on_cancel(detail::wait_node& w) noexcept {
        auto& self = static_cast<awaiter&>(w);
        if (self.owner_) self.owner_->waiter_ = nullptr;
        self.cancelled_ = true;
        self.ctx_->sched_->schedule(self);
    }
};

template <class T>
child<T>::child(detail::task_handle<T> h, detail::group_core& g) noexcept : h_(h), group_(&g) {
    g.launch(h, this, &child::on_done);
}

template <class T>
child<T>::child(child&& o) noexcept
    : h_(std::exchange(o.h_, {})), group_(o.group_), waiter_(std::exchange(o.waiter_, nullptr)),
      cancel_requested_(o.cancel_requested_) {
    rebind();
}

template <class T>
child<T>& child<T>::operator=(child&& o) noexcept {
    if (this != &o) {
        release();
        h_ = std::exchange(o.h_, {});
        group_ = o.group_;
        waiter_ = std::exchange(o.waiter_, nullptr);
        cancel_requested_ = o.cancel_requested_;
        rebind();
    }
    return *this;
}

template <class T>
void child<T>::rebind() noexcept {
    if (h_ && !h_.done()) h_.promise().owner_ = this;
    if (waiter_) waiter_->owner_ = this;
}

template <class T>
void child<T>::release() noexcept {
    if (!h_) return;
    if (waiter_) {
        waiter_->owner_ = nullptr;
        std::exchange(waiter_, nullptr)->wake();
    }
    if (h_.done()) {
        h_.destroy();
    } else {
        // Nothing refers to the frame any more: it frees itself when it ends.
        detail::promise<T>& p = h_.promise();
        p.owner_ = group_;
        p.on_done_ = &child::on_done_detached;
    }
    h_ = {};
}

template <class T>
std::coroutine_handle<> child<T>::on_done(detail::promise_base& pb) noexcept {
    child& c = *static_cast<child*>(pb.owner_);
    detail::group_core& g = *c.group_;
    g.detach_chain(pb.own_ctx_);
    if (pb.exception_) g.child_error(pb.exception_);
    if (c.waiter_) std::exchange(c.waiter_, nullptr)->wake();
    return g.child_finished(); // the frame stays: the handle owns it
}

template <class T>
std::coroutine_handle<> child<T>::on_done_detached(detail::promise_base& pb) noexcept {
    auto& p = static_cast<detail::promise<T>&>(pb);
    detail::group_core& g = *static_cast<detail::group_core*>(p.owner_);
    g.detach_chain(p.own_ctx_);
    if (p.exception_) g.child_error(p.exception_);
    detail::task_handle<T>::from_promise(p).destroy(); // *this frame is gone
    return g.child_finished();
}

template <class T>
void child<T>::check_done(const char* what) const {
    if (!h_) throw usage_error(std::string("tether::child::") + what + ": the handle is empty");
    if (!h_.done())
        throw usage_error(std::string("tether::child::") + what +
                          ": the child has not finished; co_await the handle first");
}

template <class T>
typename detail::child_ref<T>::type child<T>::result() & {
    check_done("result");
    detail::promise<T>& p = h_.promise();
    if (p.exception_) std::rethrow_exception(p.exception_);
    if constexpr (!std::is_void_v<T>) return *p.value_;
}

template <class T>
typename detail::child_ref<T>::const_type child<T>::result() const& {
    check_done("result");
    const detail::promise<T>& p = h_.promise();
    if (p.exception_) std::rethrow_exception(p.exception_);
    if constexpr (!std::is_void_v<T>) return *p.value_;
}

template <class T>
T child<T>::result() && {
    check_done("result");
    detail::promise<T>& p = h_.promise();
    if (p.exception_) std::rethrow_exception(p.exception_);
    if constexpr (!std::is_void_v<T>) return std::move(*p.value_);
}

template <class T>
void child<T>::cancel() {
    if (!h_ || h_.done() || cancel_requested_) return;
    group_->cancel_child(h_.promise().own_ctx_);
    cancel_requested_ = true;
}

// --- task_group / with_task_group ---------------------------------------------

template <class T>
child<T> task_group::spawn(task<T> t) {
    if (!t) throw usage_error("tether::task_group::spawn: the task is empty (moved from)");
    if (const char* why = core_.refusal()) throw usage_error(why); // t dies unrun
    return child<T>(t.release(), core_);
}

template <class F>
template <class Promise>
bool task_group_awaitable<F>::await_suspend(std::coroutine_handle<Promise> parent) {
    body_ = std::invoke(fn_, group_);
    if (!body_) throw usage_error("tether::with_task_group: the body returned an empty task");
    detail::group_core& g = group_.core_;
    g.open(*ctx_, parent, true);
    auto h = body_.release();
    body_ = body_task(h);
    auto& p = h.promise();
    p.ctx_ = ctx_;
    p.owner_ = &g;
    p.on_done_ = &body_done;
    h.resume(); // the body runs inline until it first suspends (or ends)
    return g.finish_start();
}

template <class F>
auto task_group_awaitable<F>::await_resume() -> result_type {
    detail::group_core& g = group_.core_;
    // An enclosing cancellation that ended a child while the group joined is
    // never swallowed, also when the body itself returned normally (Trio: the
    // children's Cancelled propagates out of the nursery).
    const bool enclosing_cancelled = g.scope_.enclosing_cancelled();
    g.close(*ctx_);
    if (!g.errors_.empty()) throw task_group_error(std::move(g.errors_));
    auto h = body_.release();
    body_ = body_task(h);
    auto& p = h.promise();
    if (p.exception_) {
        if constexpr (std::is_void_v<value_type>) {
            if (g.absorbs(p.exception_)) return;
        }
        std::rethrow_exception(p.exception_);
    }
    if (enclosing_cancelled && g.first_cancelled_) std::rethrow_exception(g.first_cancelled_);
    if constexpr (!std::is_void_v<value_type>) return std::move(*p.value_);
}

} // namespace tether
