// tests/support/catch.hpp — one include for Catch2 v3 or v2.
//
// The suite is written against the v3 API; on v2 (Debian bookworm ships 2.13)
// this maps the few names that differ. Use TEST_CASE, SECTION, GENERATE,
// REQUIRE*/CHECK* (also _THAT, _THROWS_AS, _THROWS_MATCHES), INFO, CAPTURE, FAIL,
// SUCCEED, BENCHMARK, Catch::Approx and the Catch::Matchers Equals,
// ContainsSubstring, StartsWith, EndsWith, WithinAbs, WithinRel and Message.
// v3-only features (SKIP, ...) do not exist on v2.
//
// Never write `co_await` inside an assertion macro: bind the result first.
// Catch repeats the expression in operands meant to stay unevaluated
// (__builtin_constant_p, `false && (expr)`), and g++ 12 runs a co_await found
// there — `CHECK(co_await sleep_then(10ms, 5) == 5)` slept three times, and in a
// short-circuited operand it can leave the coroutine suspended for ever.
#pragma once

#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp> // Catch2 v3
#define TETHER_CATCH2_MAJOR 3
#else
#if !defined(CATCH_CONFIG_ENABLE_BENCHMARKING)
#define CATCH_CONFIG_ENABLE_BENCHMARKING // v3 always has BENCHMARK
#endif
#include <catch2/catch.hpp> // Catch2 v2
#define TETHER_CATCH2_MAJOR 2

#include <string>

namespace Catch {
// v3 has Catch::Approx; v2 has Catch::Detail::Approx (and a global ::Approx).
using Detail::Approx;
} // namespace Catch

namespace Catch::Matchers {
// v3 renamed the string matcher Contains to ContainsSubstring.
inline StdString::ContainsMatcher ContainsSubstring(const std::string& str,
                                                    CaseSensitive::Choice cs = CaseSensitive::Yes) {
    return Contains(str, cs);
}
} // namespace Catch::Matchers
#endif
