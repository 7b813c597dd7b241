// libFuzzer target for scraper::http_response_parser.
//
// Input layout: the last bytes (FuzzedDataProvider takes integers from the
// end) pick the request method, the limits, EOF or not, and a seed for how the
// stream is split into feed() calls; the rest, from the front, is the byte
// stream from the "server". The seed corpus files end in 7 such bytes
// (seed, eof=1, default limits, GET). Checked on every input:
// - no crash, leak or undefined behaviour (ASan + UBSan);
// - feed() consumes everything while the response is in progress, and
//   nothing once it is done;
// - the body never exceeds max_body_bytes, the header list never exceeds
//   max_headers;
// - after finish(), the parser is complete or failed, never in between;
// - the outcome does not depend on how the stream was split (compared with
//   one feed() of the whole stream).
//
// Build: clang++ -std=c++20 -fsanitize=fuzzer,address,undefined -fno-sanitize=function
//        -I examples/scraper examples/scraper/fuzz/http_parser_fuzz.cpp
//        examples/scraper/http_parser.cpp
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http_parser.hpp"

namespace {

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "invariant violated: %s\n", what);
        std::abort();
    }
}

struct outcome {
    bool complete;
    scraper::http_errc error;
    int status;
    std::string reason;
    std::size_t header_count;
    std::size_t trailer_count;
    std::string body;
    bool keep_alive;
    scraper::body_framing framing;
    std::size_t consumed;

    bool operator==(const outcome&) const = default;
};

outcome snapshot(const scraper::http_response_parser& p, std::size_t consumed) {
    return outcome{
        p.is_complete(),    p.error().code,           p.status(), std::string(p.reason()),
        p.headers().size(), p.trailers().size(),      p.body(),   p.keep_alive(),
        p.framing(),        p.failed() ? 0 : consumed};
}

void check_state(const scraper::http_response_parser& p) {
    const auto& limits = p.limits();
    check(p.body().size() <= limits.max_body_bytes, "body within max_body_bytes");
    check(p.headers().size() <= limits.max_headers, "headers within max_headers");
    check(p.trailers().size() <= limits.max_headers, "trailers within max_headers");
    check(!(p.is_complete() && p.failed()), "complete and failed are exclusive");
    check(p.failed() == static_cast<bool>(p.error()), "failed() iff error()");
    check(!p.keep_alive() || p.is_complete(), "keep_alive implies complete");
    check(!p.keep_alive() || p.framing() != scraper::body_framing::until_close,
          "until_close never keeps alive");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const auto method = in.ConsumeBool() ? scraper::http_method::head : scraper::http_method::get;
    scraper::http_parser_limits limits;
    if (in.ConsumeBool()) { // small limits, so that fuzzing reaches them
        limits.max_header_bytes = in.ConsumeIntegralInRange<std::size_t>(0, 512);
        limits.max_headers = in.ConsumeIntegralInRange<std::size_t>(0, 16);
        limits.max_body_bytes = in.ConsumeIntegralInRange<std::uint64_t>(0, 1024);
        limits.max_chunk_line_bytes = in.ConsumeIntegralInRange<std::size_t>(0, 64);
        limits.max_interim_responses = in.ConsumeIntegralInRange<std::size_t>(0, 4);
    }
    const bool eof = in.ConsumeBool();
    std::uint32_t seed = in.ConsumeIntegral<std::uint32_t>();
    const std::string stream = in.ConsumeRemainingBytesAsString();
    const std::string_view all(stream);

    // Reference: one feed of the whole stream.
    scraper::http_response_parser whole(method, limits);
    std::size_t whole_used = whole.feed(all);
    check(whole_used <= all.size(), "feed consumes at most its input");
    check(whole.done() || whole_used == all.size(), "feed consumes everything while in progress");
    check_state(whole);
    if (eof) {
        whole.finish();
        check(whole.done(), "finish() ends the response");
    }
    check_state(whole);

    // The same stream in pieces of pseudo-random sizes (1..64 bytes, xorshift).
    scraper::http_response_parser split(method, limits);
    std::size_t pos = 0;
    while (pos < all.size() && !split.done()) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        const std::size_t n = std::min<std::size_t>(1 + seed % 64, all.size() - pos);
        const std::size_t used = split.feed(all.substr(pos, n));
        check(used <= n, "feed consumes at most its input");
        check(split.done() || used == n, "feed consumes everything while in progress");
        check_state(split);
        pos += used;
    }
    check(split.feed(all.substr(pos)) == 0 || !split.done(), "a done parser consumes nothing");
    if (eof) split.finish();
    check_state(split);

    check(snapshot(split, pos) == snapshot(whole, whole_used),
          "the outcome does not depend on the split");
    return 0;
}
