// tether/config.hpp — the one place that includes Asio and applies version and
// compiler fix-ups. Every tether header includes this first.
//
// Copyright (c) 2026 The tether authors. Distributed under the Boost Software
// License, Version 1.0 (see LICENSE).
#pragma once

#if !defined(ASIO_STANDALONE)
#define ASIO_STANDALONE 1
#endif

#include <asio/version.hpp>

// Asio < 1.26 does not recognise clang's C++20 coroutine support when it runs on
// libstdc++ and leaves ASIO_HAS_CO_AWAIT undefined. The CMake target adds the
// definition; this repeats it for builds that do not use our CMake files.
#if defined(__clang__) && ASIO_VERSION < 102600 && !defined(ASIO_HAS_CO_AWAIT)
#if defined(ASIO_DETAIL_CONFIG_HPP)
#error                                                                                             \
    "tether: Asio < 1.26 was included before <tether/config.hpp> on clang without ASIO_HAS_CO_AWAIT=1; include tether first or define ASIO_HAS_CO_AWAIT=1"
#endif
#define ASIO_HAS_CO_AWAIT 1
#endif

#include <asio.hpp>

#if !defined(ASIO_HAS_CO_AWAIT)
#error "tether needs C++20 coroutines: compile with -std=c++20 (ASIO_HAS_CO_AWAIT is not defined)"
#endif

/// tether's own version, as MAJOR * 10000 + MINOR * 100 + PATCH.
#define TETHER_VERSION 100 // 0.1.0

#if defined(__SANITIZE_ADDRESS__)
#define TETHER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TETHER_ASAN 1
#endif
#endif

/// Keeps a function out of line. For the few fast-path helpers that return a
/// small `std::optional` by value: once g++ 12 inlines one into a coroutine it
/// builds the optional in memory with two narrow stores and reloads it whole (a
/// store-forwarding stall that made `bounded_queue::pop` twice as slow); returned
/// from a call it travels in a register.
#if defined(__GNUC__) || defined(__clang__)
#define TETHER_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define TETHER_NOINLINE __declspec(noinline)
#else
#define TETHER_NOINLINE
#endif
