// tether/errors.hpp — every exception type tether throws (DESIGN.md §10).
#pragma once

#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

namespace tether {

/// Thrown at a cancellation point inside a cancelled scope.
///
/// Cancellation is level-triggered: every later cancellation point inside the same
/// scope throws again until control leaves the scope, so catching one
/// `cancelled_error` cannot break the structure. Do not swallow it; let it unwind.
class cancelled_error : public std::exception {
public:
    cancelled_error() = default;
    /// @param reason carried from `cancellation_source::request_cancel(reason)`.
    explicit cancelled_error(std::string reason)
        : what_("tether: operation cancelled: " + reason), reason_(std::move(reason)) {}

    const char* what() const noexcept override {
        return what_.c_str();
    }
    /// The reason given to the cancellation request, or empty.
    const std::string& reason() const noexcept {
        return reason_;
    }

private:
    std::string what_ = "tether: operation cancelled";
    std::string reason_;
};

/// Thrown by `with_timeout` / `with_deadline` when their deadline cancelled the
/// work. Only the caller sees it; inside, the work saw `cancelled_error`.
class timeout_error : public std::runtime_error {
public:
    timeout_error() : std::runtime_error("tether: deadline exceeded") {}
};

/// A misuse of the API that the type system cannot catch (spawning into a closed
/// group, an extra `task_done()`, …). The message says what to do instead.
class usage_error : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

/// Thrown by `bounded_queue::push` when the queue is, or becomes, closed.
class queue_closed : public std::runtime_error {
public:
    queue_closed() : std::runtime_error("tether: push on a closed bounded_queue") {}
};

/// Thrown by `circuit_breaker::call` while the circuit is open.
class circuit_open_error : public std::runtime_error {
public:
    explicit circuit_open_error(std::chrono::nanoseconds retry_after)
        : std::runtime_error(
              "tether: circuit open; next probe in " +
              std::to_string(
                  std::chrono::duration_cast<std::chrono::milliseconds>(retry_after).count()) +
              " ms"),
          retry_after_(retry_after) {}

    /// Time until the breaker lets the next probe call through.
    std::chrono::nanoseconds retry_after() const noexcept {
        return retry_after_;
    }

private:
    std::chrono::nanoseconds retry_after_;
};

} // namespace tether
