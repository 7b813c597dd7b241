// Catch2 for the scraper's tests: the project's shim (tests/support/catch.hpp,
// which papers over Catch2 v2/v3) when it is on the include path, else
// Catch2 v2's single header. Tests use only TEST_CASE, SECTION, GENERATE,
// REQUIRE*, CHECK*, INFO and CAPTURE, which mean the same in both.
#pragma once

#if __has_include("support/catch.hpp")
#include "support/catch.hpp"
#elif __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
