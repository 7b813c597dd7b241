// tether/tether.hpp — umbrella header: everything public in tether (the
// testing helpers, <tether/testing/virtual_clock.hpp>, are included apart).
#pragma once

#include <tether/bounded_queue.hpp>
#include <tether/cancel_scope.hpp>
#include <tether/cancellation.hpp>
#include <tether/config.hpp>
#include <tether/errors.hpp>
#include <tether/event.hpp>
#include <tether/resilience/circuit_breaker.hpp>
#include <tether/resilience/rate_limiter.hpp>
#include <tether/resilience/retry.hpp>
#include <tether/semaphore.hpp>
#include <tether/shield.hpp>
#include <tether/task.hpp>
#include <tether/task_group.hpp>
#include <tether/thread.hpp>
#include <tether/timeout.hpp>
#include <tether/when.hpp>
