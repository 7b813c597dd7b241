// tether/tether.hpp — umbrella header: everything public in tether.
#pragma once

#include <tether/config.hpp>
#include <tether/errors.hpp>
#include <tether/task.hpp>
#include <tether/cancellation.hpp>
#include <tether/cancel_scope.hpp>
