// tether/cancellation.hpp — thread-safe cancellation tokens (DESIGN.md §3).
//
// cancellation_source / cancellation_token / cancellation_callback bridge stop
// signals from outside a task tree (SIGINT, a UI, another thread) into it; see
// `with_cancellation` in <tether/cancel_scope.hpp>. The semantics follow
// std::stop_source / std::stop_callback:
//  - `request_cancel()` is one-shot: the first call returns true and runs every
//    registered callback exactly once, synchronously, on the requesting thread,
//    before it returns; later calls return false;
//  - registering on an already-cancelled token runs the callback at once, in the
//    registering thread, before the constructor returns;
//  - after a callback's registration is destroyed it never runs; the destructor
//    waits for a concurrent invocation on another thread to return, and does not
//    wait when the callback destroys its own registration;
//  - a callback that throws calls std::terminate (callbacks should be noexcept).
#pragma once

#include <tether/config.hpp>
#include <tether/errors.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace tether {

namespace detail {

struct cancel_callback_node {
    cancel_callback_node* prev_ = nullptr;
    cancel_callback_node* next_ = nullptr;
    bool linked_ = false;
    void (*invoke_)(cancel_callback_node&) noexcept = nullptr;
};

class cancel_state {
public:
    void add_ref() noexcept {
        refs_.fetch_add(1, std::memory_order_relaxed);
    }
    void release() noexcept {
        // acq_rel: the last owner must see every write of the others before deleting.
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

    bool requested() const noexcept {
        // acquire: pairs with the release store in request(), so reason_ is visible.
        return requested_.load(std::memory_order_acquire);
    }

    std::string reason() const {
        if (!requested()) return {};
        return reason_; // immutable once requested_ is set
    }

    bool request(std::string reason) {
        std::unique_lock lock(mutex_);
        if (requested_.load(std::memory_order_relaxed)) return false;
        reason_ = std::move(reason);
        requested_.store(true, std::memory_order_release);
        invoking_thread_ = std::this_thread::get_id();
        while (cancel_callback_node* cb = head_) {
            unlink(*cb);
            running_ = cb;
            lock.unlock();
            cb->invoke_(*cb); // noexcept: a throwing callback terminates
            lock.lock();
            running_ = nullptr;
            done_.notify_all();
        }
        return true;
    }

    /// Registers cb; returns false (without registering) if cancellation was
    /// already requested — the caller then invokes cb itself.
    bool add(cancel_callback_node& cb) {
        if (requested()) return false;
        std::lock_guard lock(mutex_);
        if (requested_.load(std::memory_order_relaxed)) return false;
        cb.prev_ = nullptr;
        cb.next_ = head_;
        if (head_) head_->prev_ = &cb;
        head_ = &cb;
        cb.linked_ = true;
        return true;
    }

    void remove(cancel_callback_node& cb) {
        std::unique_lock lock(mutex_);
        if (cb.linked_) {
            unlink(cb);
            return;
        }
        // Not linked: it ran, is running, or never registered. Wait for a run on
        // another thread to finish; a callback destroying itself must not wait.
        if (running_ == &cb && invoking_thread_ != std::this_thread::get_id())
            done_.wait(lock, [&] { return running_ != &cb; });
    }

private:
    void unlink(cancel_callback_node& cb) noexcept {
        if (cb.prev_)
            cb.prev_->next_ = cb.next_;
        else
            head_ = cb.next_;
        if (cb.next_) cb.next_->prev_ = cb.prev_;
        cb.prev_ = cb.next_ = nullptr;
        cb.linked_ = false;
    }

    std::atomic<std::size_t> refs_{1};
    std::atomic<bool> requested_{false};
    std::mutex mutex_;
    std::condition_variable done_;
    cancel_callback_node* head_ = nullptr;    // guarded by mutex_
    cancel_callback_node* running_ = nullptr; // guarded by mutex_
    std::thread::id invoking_thread_;         // guarded by mutex_
    std::string reason_;                      // written once, before requested_
};

class cancel_state_ref {
public:
    cancel_state_ref() noexcept = default;
    explicit cancel_state_ref(cancel_state* s) noexcept : s_(s) {}
    cancel_state_ref(const cancel_state_ref& o) noexcept : s_(o.s_) {
        if (s_) s_->add_ref();
    }
    cancel_state_ref(cancel_state_ref&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    cancel_state_ref& operator=(cancel_state_ref o) noexcept {
        std::swap(s_, o.s_);
        return *this;
    }
    ~cancel_state_ref() {
        if (s_) s_->release();
    }
    cancel_state* get() const noexcept {
        return s_;
    }

private:
    cancel_state* s_ = nullptr;
};

} // namespace detail

/// A read-only view of a cancellation_source. Cheap to copy; thread-safe.
class cancellation_token {
public:
    /// A token that can never be cancelled.
    cancellation_token() noexcept = default;

    /// True once cancellation was requested on the source.
    bool is_cancelled() const noexcept {
        return state_.get() && state_.get()->requested();
    }
    /// False for a default-constructed token.
    bool can_be_cancelled() const noexcept {
        return state_.get() != nullptr;
    }
    /// The reason given to request_cancel(), or empty.
    std::string reason() const {
        return state_.get() ? state_.get()->reason() : std::string();
    }

private:
    friend class cancellation_source;
    template <class F>
    friend class cancellation_callback;
    explicit cancellation_token(detail::cancel_state_ref s) noexcept : state_(std::move(s)) {}

    detail::cancel_state_ref state_;
};

/// Runs `F` (once) when the token's source is cancelled, for as long as this
/// object lives. Not copyable or movable: its address is registered.
///
/// @par Thread safety
/// Construction and destruction may race with request_cancel() on other threads.
/// @par Exceptions
/// If `F` throws when invoked, std::terminate is called.
template <class F>
class cancellation_callback {
public:
    template <class G>
        requires std::constructible_from<F, G&&>
        cancellation_callback(const cancellation_token& token, G&& fn)
            : fn_(std::forward<G>(fn)), state_(token.state_) {
            node_.invoke_ = &invoke;
            if (!state_.get()) return;
            if (!state_.get()->add(node_)) {
                state_ = {};
                fn_();
            }
        }
        cancellation_callback(const cancellation_callback&) = delete;
        cancellation_callback& operator=(const cancellation_callback&) = delete;
        ~cancellation_callback() {
            if (state_.get()) state_.get()->remove(node_);
        }

    private:
        struct node : detail::cancel_callback_node {
            cancellation_callback* self_ = nullptr;
        };
        static void invoke(detail::cancel_callback_node& n) noexcept {
            static_cast<node&>(n).self_->fn_();
        }

        F fn_;
        detail::cancel_state_ref state_;
        node node_{{}, this};
};

template <class F>
cancellation_callback(const cancellation_token&, F) -> cancellation_callback<F>;

/// The owner of a cancellation request. Move-only handle to shared state.
///
/// @par Thread safety
/// `request_cancel()` may be called from any thread, concurrently.
class cancellation_source {
public:
    cancellation_source() : state_(new detail::cancel_state) {}

    /// A source linked to `parent`: cancelled when the parent is (at once if it
    /// already is), and cancellable on its own without affecting the parent.
    explicit cancellation_source(const cancellation_token& parent) : cancellation_source() {
        if (parent.can_be_cancelled()) {
            detail::cancel_state_ref child = state_;
            link_ = std::make_unique<link>(parent, forward_cancel{std::move(child), parent});
        }
    }

    cancellation_source(cancellation_source&&) noexcept = default;
    cancellation_source& operator=(cancellation_source&&) noexcept = default;

    cancellation_token token() const noexcept {
        return cancellation_token(state_);
    }

    /// Requests cancellation. Returns true for the call that made the request.
    bool request_cancel(std::string reason = {}) {
        return state_.get() && state_.get()->request(std::move(reason));
    }

    bool is_cancelled() const noexcept {
        return state_.get() && state_.get()->requested();
    }

private:
    struct forward_cancel {
        detail::cancel_state_ref child;
        cancellation_token parent;
        void operator()() noexcept {
            child.get()->request(parent.reason());
        }
    };
    using link = cancellation_callback<forward_cancel>;

    detail::cancel_state_ref state_;
    std::unique_ptr<link> link_;
};

} // namespace tether
