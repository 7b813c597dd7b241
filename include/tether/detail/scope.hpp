// tether/detail/scope.hpp — the cancellation tree: chains of execution (task_ctx),
// the scopes they run in (scope_state) and the waits they are suspended in
// (wait_node).
//
// A *chain* is one line of execution: a spawned task plus the tasks it awaits
// inline. Only the innermost coroutine of a chain is ever suspended, so a chain
// waits on at most one thing at a time (`task_ctx::waiting_`). Scopes form a tree
// (a cancel scope, a timeout, a shield, a task_group); each scope lists the chains
// whose innermost scope it is and its child scopes. Cancelling a scope walks its
// subtree (stopping at shields), marks each chain cancelled and calls the cancel
// hook of whatever the chain waits on — which unlinks the waiter so that "a
// cancelled operation did not happen", and schedules the chain to throw.
#pragma once

#include <tether/config.hpp>
#include <tether/detail/scheduler.hpp>
#include <tether/errors.hpp>

#include <string>
#include <utility>

namespace tether::detail {

/// Intrusive doubly-linked list hook; a default-constructed hook is also a list
/// head (sentinel). Invariant: prev_ == this iff next_ == this iff unlinked/empty.
struct list_hook {
    list_hook* prev_ = this;
    list_hook* next_ = this;

    list_hook() = default;
    list_hook(const list_hook&) = delete;
    list_hook& operator=(const list_hook&) = delete;

    bool linked() const noexcept {
        return next_ != this;
    }

    void push_back(list_hook& n) noexcept {
        n.prev_ = prev_;
        n.next_ = this;
        prev_->next_ = &n;
        prev_ = &n;
    }

    void unlink() noexcept {
        prev_->next_ = next_;
        next_->prev_ = prev_;
        prev_ = next_ = this;
    }
};

struct task_ctx;

/// A suspended cancellable wait (a waiter node in a primitive, a pending Asio
/// operation, a sleep). Lives in the awaiter, inside the suspended frame.
struct wait_node : ready_node {
    task_ctx* ctx_ = nullptr;
    /// Called at most once, when a scope around ctx_ is cancelled while the chain
    /// waits here. It must either withdraw the wait and schedule the chain (the
    /// operation did not happen) or make the wait end promptly (an Asio operation).
    void (*on_cancel_)(wait_node&) noexcept = nullptr;
};

struct scope_state;

/// One chain of execution (Trio's Task). Linked into scope_->tasks_.
struct task_ctx : list_hook {
    scheduler* sched_ = nullptr;
    scope_state* scope_ = nullptr; // innermost scope the chain runs in
    wait_node* waiting_ = nullptr; // the cancellable wait the chain is suspended in
    bool cancelled_ = false; // cached: a scope between scope_ and the first shield is cancelled
    ready_node start_;       // schedules the chain's first resumption

    /// Begin a cancellable wait (call from await_suspend).
    void begin_wait(wait_node& w, void (*on_cancel)(wait_node&) noexcept) noexcept {
        w.ctx_ = this;
        w.on_cancel_ = on_cancel;
        waiting_ = &w;
    }
    /// End the wait without cancellation (the primitive completed it).
    void end_wait() noexcept {
        waiting_ = nullptr;
    }

    /// Throws cancelled_error if the chain is in a cancelled scope.
    void check_cancelled() const;
};

/// A node of the cancellation tree. Lives in the awaiter/group that opened it.
struct scope_state : list_hook {
    struct deadline_timer : timer_node {
        scope_state* scope_ = nullptr;
    };

    scope_state* parent_ = nullptr;
    scheduler* sched_ = nullptr;
    list_hook tasks_;    // chains whose innermost scope is this
    list_hook children_; // nested scopes
    deadline_timer deadline_;
    clock::time_point deadline_when_ = clock::time_point::max();
    // reschedule(d) before entry: the deadline is d after entry (no clock is
    // known before: the scheduler, and with it a virtual clock, comes at entry).
    clock::duration relative_delay_{};
    bool relative_pending_ = false;
    std::string reason_;
    bool cancel_called_ = false;
    bool deadline_expired_ = false; // the cancellation came from the deadline
    bool shield_ = false;
    bool entered_ = false;
    bool exited_ = false;

    scope_state() {
        deadline_.fire_ = &on_deadline;
        deadline_.scope_ = this;
    }
    scope_state(const scope_state&) = delete;
    scope_state& operator=(const scope_state&) = delete;
    ~scope_state() {
        if (sched_) sched_->remove_timer(deadline_);
    }

    /// Cancel this scope: idempotent; wakes every chain in the subtree that waits
    /// at a cancellation point (shields excepted).
    void cancel(std::string reason = {}) noexcept {
        if (cancel_called_) return;
        cancel_called_ = true;
        if (reason_.empty()) reason_ = std::move(reason);
        if (sched_) sched_->remove_timer(deadline_);
        if (entered_ && !exited_ && (shield_ || !enclosing_cancelled())) deliver(*this);
    }

    /// True if a scope strictly enclosing this one (up to a shield) is cancelled,
    /// i.e. a cancellation from outside is visible here.
    bool enclosing_cancelled() const noexcept {
        if (shield_) return false;
        return is_cancelled_from(parent_);
    }

    static bool is_cancelled_from(const scope_state* s) noexcept {
        for (; s; s = s->parent_) {
            if (s->cancel_called_) return true;
            if (s->shield_) return false;
        }
        return false;
    }

    /// The innermost cancelled scope visible from s, or null.
    static const scope_state* cancelling_scope(const scope_state* s) noexcept {
        for (; s; s = s->parent_) {
            if (s->cancel_called_) return s;
            if (s->shield_) return nullptr;
        }
        return nullptr;
    }

    void set_deadline(clock::time_point tp) {
        deadline_when_ = tp;
        relative_pending_ = false;
        if (!sched_ || cancel_called_) return;
        sched_->remove_timer(deadline_);
        if (tp == clock::time_point::max() || exited_) return;
        if (tp <= sched_->now()) {
            deadline_expired_ = true;
            cancel();
            return;
        }
        deadline_.when_ = tp;
        sched_->add_timer(deadline_);
    }

    /// Make chain `ctx` (currently in ctx.scope_) run inside this scope.
    void enter(task_ctx& ctx) {
        if (entered_) throw usage_error("tether: a cancel scope can be entered only once");
        entered_ = true;
        sched_ = ctx.sched_;
        parent_ = ctx.scope_;
        if (parent_) parent_->children_.push_back(*this);
        ctx.unlink();
        tasks_.push_back(ctx);
        ctx.scope_ = this;
        ctx.cancelled_ = is_cancelled_from(this);
        if (relative_pending_) deadline_when_ = deadline_after(sched_->now(), relative_delay_);
        if (!cancel_called_ && deadline_when_ != clock::time_point::max())
            set_deadline(deadline_when_);
    }

    /// Return chain `ctx` to the enclosing scope. Afterwards nothing refers to *this.
    void exit(task_ctx& ctx) noexcept {
        exited_ = true;
        if (sched_) sched_->remove_timer(deadline_);
        ctx.unlink();
        if (parent_) parent_->tasks_.push_back(ctx);
        ctx.scope_ = parent_;
        ctx.cancelled_ = is_cancelled_from(parent_);
        unlink();
    }

    /// Add a freshly spawned chain to this scope.
    void adopt(task_ctx& ctx) noexcept {
        ctx.sched_ = sched_;
        ctx.scope_ = this;
        tasks_.push_back(ctx);
        ctx.cancelled_ = is_cancelled_from(this);
    }

private:
    static void on_deadline(timer_node& t) noexcept {
        scope_state& self = *static_cast<deadline_timer&>(t).scope_;
        self.deadline_expired_ = true;
        self.cancel();
    }

    static void deliver(scope_state& s) noexcept {
        for (list_hook* h = s.tasks_.next_; h != &s.tasks_; h = h->next_) {
            auto& ctx = static_cast<task_ctx&>(*h);
            ctx.cancelled_ = true;
            if (wait_node* w = std::exchange(ctx.waiting_, nullptr)) w->on_cancel_(*w);
        }
        for (list_hook* h = s.children_.next_; h != &s.children_; h = h->next_) {
            auto& child = static_cast<scope_state&>(*h);
            if (!child.shield_ && !child.cancel_called_) deliver(child);
        }
    }
};

inline void task_ctx::check_cancelled() const {
    if (!cancelled_) return;
    const scope_state* s = scope_state::cancelling_scope(scope_);
    if (s && !s->reason_.empty()) throw cancelled_error(s->reason_);
    throw cancelled_error();
}

} // namespace tether::detail
