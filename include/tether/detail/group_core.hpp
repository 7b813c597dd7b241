// tether/detail/group_core.hpp — the join machinery shared by with_task_group
// and the when_* combinators.
//
// A group is a scope (scope_state) that child chains are adopted into. A child
// is its own coroutine frame: spawning links the frame's chain context
// (promise_base::own_ctx_) into the group's scope and queues its first
// resumption; when the child reaches final_suspend, the frame's on_done_ hook
// (chosen by whoever spawned it: a child<T> handle, a detached child, a when_*
// result slot) records the outcome, unlinks the chain, frees the frame if
// nothing refers to it any more, and resumes the awaiting coroutine once the
// body and every child have finished. No wrapper coroutine, no allocation
// besides the frame itself (recycled by the frame pool).
#pragma once

#include <tether/cancel_scope.hpp>
#include <tether/config.hpp>
#include <tether/detail/scope.hpp>
#include <tether/errors.hpp>
#include <tether/task.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <utility>
#include <vector>

namespace tether::detail {

/// promise_base::on_done_: called at a chain's final_suspend; returns what to
/// resume next. May destroy the frame.
using on_done_fn = std::coroutine_handle<> (*)(promise_base&) noexcept;

class group_core {
public:
    group_core() = default;
    group_core(const group_core&) = delete;
    group_core& operator=(const group_core&) = delete;

    /// Enters the group's scope on the awaiting chain. Until finish_start(), a
    /// completion never resumes `parent` (it is still inside await_suspend).
    void open(task_ctx& ctx, std::coroutine_handle<> parent, bool has_body) {
        scope_.enter(ctx);
        entered_cancelled_ = scope_.enclosing_cancelled();
        parent_ = parent;
        starting_ = true;
        body_done_ = !has_body;
    }

    /// Ends the synchronous start; true if the awaiting coroutine must stay
    /// suspended (the body or a child still runs).
    bool finish_start() noexcept {
        starting_ = false;
        return !(body_done_ && running_ == 0);
    }

    /// Leaves the scope (from await_resume). Afterwards spawning is refused.
    void close(task_ctx& ctx) noexcept {
        scope_.exit(ctx);
        finished_ = true;
    }

    /// Why a spawn must be refused now, or nullptr.
    const char* refusal() const noexcept {
        if (finished_)
            return "tether::task_group::spawn: the group has finished; spawn only while its "
                   "with_task_group is running (the task was not started)";
        // A group opened inside an already-cancelled scope accepts children until
        // its body ends (they start cancelled, as in Trio): its body is plain code
        // that has not reached a cancellation point yet, not a group shutting down.
        // A cancellation that arrives while the group runs shuts it down (asyncio).
        if (scope_.cancel_called_ || (!entered_cancelled_ && scope_.enclosing_cancelled()))
            return "tether::task_group::spawn: the group is shutting down (a child or the body "
                   "failed, or the group or an enclosing scope was cancelled); the task was not "
                   "started";
        return nullptr;
    }

    /// Starts `h` as a new chain of this group; `done(promise)` runs when it ends,
    /// with promise.owner_ == owner.
    template <class T>
    void launch(task_handle<T> h, void* owner, on_done_fn done) noexcept {
        promise<T>& p = h.promise();
        p.adopt_as_chain(scope_, h);
        p.owner_ = owner;
        p.on_done_ = done;
        ++running_;
        scope_.sched_->schedule(p.own_ctx_.start_);
    }

    /// A child ended with exception `e`: a cancellation is noted, anything else
    /// is a failure that cancels the body and every child.
    void child_error(const std::exception_ptr& e) noexcept {
        if (is_cancelled_error(e)) {
            if (!first_cancelled_) first_cancelled_ = e;
            return;
        }
        fail(e);
    }

    /// Records a failure (identity preserved) and cancels the group.
    void fail(std::exception_ptr e) noexcept {
        errors_.push_back(std::move(e)); // std::bad_alloc here terminates
        scope_.cancel();
    }

    /// task_group::cancel(): a cancellation the group absorbs.
    void cancel_own() noexcept {
        own_cancel_ = true;
        scope_.cancel();
    }

    /// The body ended (it ran inline on the awaiting chain).
    std::coroutine_handle<> body_finished(const std::exception_ptr& e) noexcept {
        body_done_ = true;
        if (e) {
            if (is_cancelled_error(e))
                scope_.cancel(); // the body left: the children stop too (not a failure)
            else
                fail(e);
        }
        return next();
    }

    /// Unlinks a finished child's chain, and the scope child<T>::cancel() put
    /// above it, if any. Call before the frame is destroyed.
    void detach_chain(task_ctx& ctx) noexcept {
        scope_state* s = ctx.scope_;
        ctx.unlink();
        if (s != &scope_) { // a per-child scope (cancel_child); its subtree is empty now
            s->unlink();
            delete s;
        }
    }

    /// A child finished; resumes the awaiting coroutine if it was the last.
    std::coroutine_handle<> child_finished() noexcept {
        --running_;
        return next();
    }

    /// Cancels one child chain only (child<T>::cancel()): puts a new scope between
    /// the group's scope and the chain's own scopes, and cancels it. The scope is
    /// freed by detach_chain when the child ends.
    void cancel_child(task_ctx& ctx) {
        auto* s = new scope_state; // rare: only an explicit child cancel allocates
        s->sched_ = scope_.sched_;
        s->parent_ = &scope_;
        s->entered_ = true;
        scope_.children_.push_back(*s);
        if (ctx.scope_ == &scope_) {
            ctx.unlink();
            s->tasks_.push_back(ctx);
            ctx.scope_ = s;
        } else {
            // The chain's own scopes form a path from ctx.scope_ up to scope_;
            // re-parent the outermost of them (and with it everything inside).
            scope_state* top = ctx.scope_;
            while (top->parent_ != &scope_) top = top->parent_;
            top->unlink();
            s->children_.push_back(*top);
            top->parent_ = s;
        }
        s->cancel();
    }

    /// True if the body's exception `e` is the group's own cancellation
    /// (task_group::cancel()), which the group absorbs.
    bool absorbs(const std::exception_ptr& e) const noexcept {
        return own_cancel_ && !scope_.enclosing_cancelled() && is_cancelled_error(e);
    }

    scope_state scope_;
    std::vector<std::exception_ptr> errors_; // failures, in the order they happened
    std::exception_ptr first_cancelled_;     // a child's cancelled_error, if any
    std::coroutine_handle<> parent_;         // the coroutine awaiting the group
    std::size_t running_ = 0;                // children spawned and not finished
    bool body_done_ = false;
    bool starting_ = false;          // inside await_suspend: never resume parent_
    bool own_cancel_ = false;        // task_group::cancel() was called
    bool entered_cancelled_ = false; // an enclosing scope was cancelled at open()
    bool finished_ = false;          // the scope was left

private:
    // Invariant: parent_ is returned (resumed) exactly once, when the body and
    // every child have ended and await_suspend has returned.
    std::coroutine_handle<> next() const noexcept {
        if (running_ == 0 && body_done_ && !starting_) return parent_;
        return std::noop_coroutine();
    }
};

} // namespace tether::detail
