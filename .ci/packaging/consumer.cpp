// The program every packaging consumer builds: it links nothing but
// tether::tether, so it proves the include path, C++20 and Asio come along.
#include <tether/tether.hpp>

#include <cstdio>

namespace {

tether::task<int> answer() {
    co_return 42;
}

} // namespace

int main() {
    asio::io_context ctx;
    const int value = tether::run(ctx, answer());
    std::printf("tether consumer: %d\n", value);
    return value == 42 ? 0 : 1;
}
