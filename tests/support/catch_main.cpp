// tests/support/catch_main.cpp — the test runner's main(), for Catch2 v2 and v3.
// Compiled once (tether_catch_main) and linked into every test executable.
#define CATCH_CONFIG_RUNNER // v2: this translation unit holds Catch's implementation
#include "support/catch.hpp"

int main(int argc, char* argv[]) {
    return Catch::Session().run(argc, argv);
}
