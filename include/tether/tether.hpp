// tether/tether.hpp — umbrella header: everything public in tether.
#pragma once

#include <tether/cancel_scope.hpp>
#include <tether/cancellation.hpp>
#include <tether/config.hpp>
#include <tether/errors.hpp>
#include <tether/resilience/circuit_breaker.hpp>
#include <tether/resilience/rate_limiter.hpp>
#include <tether/resilience/retry.hpp>
#include <tether/task.hpp>
