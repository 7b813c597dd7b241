#include "http_parser.hpp"

#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "catch_shim.hpp"

using scraper::body_framing;
using scraper::http_errc;
using scraper::http_method;
using scraper::http_parser_limits;
using scraper::http_response_parser;

namespace {

// What a parse produced, in a form that compares across split strategies.
struct outcome {
    bool complete = false;
    http_errc error = http_errc::none;
    int status = 0;
    std::string reason;
    std::vector<scraper::http_field> headers;
    std::vector<scraper::http_field> trailers;
    std::string body;
    bool keep_alive = false;
    body_framing framing = body_framing::unknown;
    std::size_t consumed = 0; // bytes consumed in total (meaningful on success)

    friend bool operator==(const outcome&, const outcome&) = default;
};

outcome snapshot(const http_response_parser& p, std::size_t consumed) {
    outcome o;
    o.complete = p.is_complete();
    o.error = p.error().code;
    o.status = p.status();
    o.reason = std::string(p.reason());
    o.headers.assign(p.headers().begin(), p.headers().end());
    o.trailers.assign(p.trailers().begin(), p.trailers().end());
    o.body = p.body();
    o.keep_alive = p.keep_alive();
    o.framing = p.framing();
    o.consumed = p.failed() ? 0 : consumed;
    return o;
}

// Feeds `data` in the given piece sizes (cycled), then signals EOF if
// `eof`. Checks the feed contract on the way: while the response is in
// progress, every byte offered is consumed.
outcome parse_in_pieces(std::string_view data, const std::vector<std::size_t>& pieces, bool eof,
                        http_method method = http_method::get, http_parser_limits limits = {}) {
    http_response_parser p(method, limits);
    std::size_t pos = 0;
    std::size_t k = 0;
    while (pos < data.size() && !p.done()) {
        const std::size_t n = std::min(pieces[k++ % pieces.size()], data.size() - pos);
        const std::size_t used = p.feed(data.substr(pos, n));
        REQUIRE(used <= n);
        if (!p.done()) REQUIRE(used == n);
        REQUIRE(p.body().size() <= limits.max_body_bytes);
        pos += used;
    }
    if (eof) p.finish();
    return snapshot(p, pos);
}

outcome parse_whole(std::string_view data, bool eof, http_method method = http_method::get,
                    http_parser_limits limits = {}) {
    return parse_in_pieces(data, {data.size() == 0 ? 1 : data.size()}, eof, method, limits);
}

// Every split into two pieces, byte by byte, and 200 random splittings all
// give the same outcome as one feed.
void check_split_invariance(std::string_view data, bool eof, http_method method = http_method::get,
                            http_parser_limits limits = {}) {
    const outcome whole = parse_whole(data, eof, method, limits);
    for (std::size_t cut = 0; cut <= data.size(); ++cut) {
        http_response_parser p(method, limits);
        std::size_t used = p.feed(data.substr(0, cut));
        if (!p.done()) used += p.feed(data.substr(cut));
        if (eof) p.finish();
        INFO("split at " << cut);
        REQUIRE(snapshot(p, used) == whole);
    }
    REQUIRE(parse_in_pieces(data, {1}, eof, method, limits) == whole);
    std::mt19937 rng(12345);
    for (int round = 0; round < 200; ++round) {
        std::vector<std::size_t> pieces(16);
        std::uniform_int_distribution<std::size_t> size(1, 1 + data.size() / 3);
        for (auto& s : pieces) s = size(rng);
        INFO("random round " << round);
        REQUIRE(parse_in_pieces(data, pieces, eof, method, limits) == whole);
    }
}

const std::string simple_response = "HTTP/1.1 200 OK\r\n"
                                    "Content-Type: text/html\r\n"
                                    "Content-Length: 13\r\n"
                                    "Set-Cookie: a=1\r\n"
                                    "set-cookie: b=2\r\n"
                                    "\r\n"
                                    "<p>hello</p>\n";

const std::string chunked_response = "HTTP/1.1 200 OK\r\n"
                                     "Transfer-Encoding: chunked\r\n"
                                     "Trailer: X-Checksum\r\n"
                                     "\r\n"
                                     "5;name=value;flag\r\n"
                                     "hello\r\n"
                                     "1a ; quoted=\"a;b\\\"c\"\r\n"
                                     "abcdefghijklmnopqrstuvwxyz\r\n"
                                     "0\r\n"
                                     "X-Checksum: 42\r\n"
                                     "X-Other: yes\r\n"
                                     "\r\n";

} // namespace

TEST_CASE("a Content-Length response parses identically for every split point",
          "[http_parser][split]") {
    const outcome o = parse_whole(simple_response, false);
    CHECK(o.complete);
    CHECK(o.status == 200);
    CHECK(o.reason == "OK");
    CHECK(o.body == "<p>hello</p>\n");
    CHECK(o.framing == body_framing::content_length);
    CHECK(o.keep_alive);
    CHECK(o.consumed == simple_response.size());
    check_split_invariance(simple_response, false);
}

TEST_CASE("header lookup is case-insensitive and keeps repeated fields in order",
          "[http_parser][headers]") {
    http_response_parser p;
    p.feed(simple_response);
    REQUIRE(p.is_complete());
    CHECK(p.headers().find("content-type") == "text/html");
    CHECK(p.headers().find("CONTENT-LENGTH") == "13");
    CHECK_FALSE(p.headers().find("X-Missing").has_value());
    const auto cookies = p.headers().find_all("Set-Cookie");
    REQUIRE(cookies.size() == 2);
    CHECK(cookies[0] == "a=1");
    CHECK(cookies[1] == "b=2");
    CHECK(p.headers().count("SET-COOKIE") == 2);
    CHECK(p.content_length() == 13u);
}

TEST_CASE("a chunked body with extensions and trailers parses identically for every split point",
          "[http_parser][chunked][split]") {
    const outcome o = parse_whole(chunked_response, false);
    CHECK(o.complete);
    CHECK(o.body == "helloabcdefghijklmnopqrstuvwxyz");
    CHECK(o.framing == body_framing::chunked);
    CHECK(o.keep_alive);
    REQUIRE(o.trailers.size() == 2);
    CHECK(o.trailers[0] == scraper::http_field{"X-Checksum", "42"});
    CHECK(o.trailers[1] == scraper::http_field{"X-Other", "yes"});
    CHECK(o.consumed == chunked_response.size());
    check_split_invariance(chunked_response, false);
}

TEST_CASE("a body delimited by connection close completes only on finish()",
          "[http_parser][close][split]") {
    const std::string r = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of this until EOF";
    http_response_parser p;
    CHECK(p.feed(r) == r.size());
    CHECK(p.headers_complete());
    CHECK_FALSE(p.done());
    CHECK(p.framing() == body_framing::until_close);
    p.finish();
    CHECK(p.is_complete());
    CHECK(p.body() == "all of this until EOF");
    CHECK_FALSE(p.keep_alive());
    check_split_invariance(r, true);
}

TEST_CASE("bytes after a complete response are not consumed", "[http_parser]") {
    const std::string two = simple_response + "HTTP/1.1 204 No Content\r\n\r\n";
    http_response_parser p;
    const std::size_t used = p.feed(two);
    CHECK(used == simple_response.size());
    CHECK(p.is_complete());
    CHECK(p.feed("more") == 0);
    p.finish(); // no effect once done
    CHECK(p.is_complete());

    SECTION("reset() parses the next response on the same connection") {
        p.reset(http_method::get);
        CHECK_FALSE(p.received_any());
        CHECK(p.feed(std::string_view(two).substr(used)) == two.size() - used);
        CHECK(p.is_complete());
        CHECK(p.status() == 204);
        CHECK(p.body().empty());
    }
}

TEST_CASE("responses to HEAD and 204 and 304 responses have no body whatever the headers say",
          "[http_parser][no_body]") {
    SECTION("HEAD with Content-Length") {
        const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        const outcome o = parse_whole(r, false, http_method::head);
        CHECK(o.complete);
        CHECK(o.body.empty());
        CHECK(o.framing == body_framing::none);
        CHECK(o.keep_alive);
        check_split_invariance(r, false, http_method::head);
    }
    SECTION("HEAD with chunked") {
        const outcome o = parse_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                                      false, http_method::head);
        CHECK(o.complete);
        CHECK(o.framing == body_framing::none);
    }
    SECTION("204 and 304 with Content-Length") {
        for (const char* status : {"204 No Content", "304 Not Modified"}) {
            const std::string r =
                std::string("HTTP/1.1 ") + status + "\r\nContent-Length: 5\r\n\r\n";
            const outcome o = parse_whole(r + "HTTP/", false);
            CHECK(o.complete);
            CHECK(o.body.empty());
            CHECK(o.consumed == r.size());
        }
    }
}

TEST_CASE("interim 1xx responses are skipped before the final response",
          "[http_parser][interim][split]") {
    const std::string r = "HTTP/1.1 100 Continue\r\n\r\n"
                          "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    http_response_parser p;
    CHECK(p.feed(r) == r.size());
    REQUIRE(p.is_complete());
    CHECK(p.status() == 200);
    CHECK(p.interim_responses() == 2);
    CHECK_FALSE(p.headers().contains("Link"));
    CHECK(p.body() == "ok");
    check_split_invariance(r, false);

    SECTION("too many interim responses are an error") {
        std::string many;
        for (int i = 0; i < 3; ++i) many += "HTTP/1.1 100 Continue\r\n\r\n";
        http_parser_limits limits;
        limits.max_interim_responses = 2;
        CHECK(parse_whole(many, false, http_method::get, limits).error ==
              http_errc::too_many_interim_responses);
    }
    SECTION("101 Switching Protocols is an error") {
        CHECK(
            parse_whole("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", false).error ==
            http_errc::unexpected_status);
    }
}

TEST_CASE("keep-alive follows the version and the Connection header and the framing",
          "[http_parser][keep_alive]") {
    struct row {
        const char* response;
        bool eof;
        bool keep_alive;
    };
    const row rows[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, true},
        {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false, false},
        {"HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n", false,
         false},
        {"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false, true},
        {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, false},
        {"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", false, true},
        {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nbody", true, false}, // read until close
        {"HTTP/1.1 200 OK\r\n\r\nbody", true, false},                           // read until close
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false, true},
        // Transfer-Encoding with Content-Length, or in HTTP/1.0: process, then close.
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
         false, false},
        {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         false, false},
        {"HTTP/1.1 304 Not Modified\r\n\r\n", false, true},
        {"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", false,
         true}, // a higher minor version is 1.1-compatible
    };
    for (const row& r : rows) {
        INFO(r.response);
        const outcome o = parse_whole(r.response, r.eof);
        REQUIRE(o.complete);
        CHECK(o.keep_alive == r.keep_alive);
    }
    SECTION("an incomplete or failed response is never keep-alive") {
        http_response_parser p;
        p.feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab");
        CHECK_FALSE(p.keep_alive());
        p.finish();
        CHECK_FALSE(p.keep_alive());
    }
}

TEST_CASE("tolerated deviations: bare LF and missing reason and obs-fold and leading empty lines",
          "[http_parser][lenient]") {
    SECTION("bare LF line endings") {
        const std::string r = "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi";
        const outcome o = parse_whole(r, false);
        CHECK(o.complete);
        CHECK(o.body == "hi");
        check_split_invariance(r, false);
    }
    SECTION("status line without a reason phrase") {
        for (const char* r : {"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
                              "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"}) {
            const outcome o = parse_whole(r, false);
            CHECK(o.complete);
            CHECK(o.reason.empty());
        }
    }
    SECTION("obs-fold continuation lines are joined with a space") {
        const std::string r = "HTTP/1.1 200 OK\r\nX-Long: part one\r\n   part "
                              "two\r\n\tthree\r\nContent-Length: 0\r\n\r\n";
        http_response_parser p;
        p.feed(r);
        REQUIRE(p.is_complete());
        CHECK(p.headers().find("x-long") == "part one part two three");
        check_split_invariance(r, false);
    }
    SECTION("empty lines before the status line are skipped") {
        const std::string r = "\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        CHECK(parse_whole(r, false).complete);
        check_split_invariance(r, false);
    }
    SECTION("identical repeated Content-Length values are accepted") {
        for (const char* r : {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
                              "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nhi"}) {
            const outcome o = parse_whole(r, false);
            CHECK(o.complete);
            CHECK(o.body == "hi");
        }
    }
    SECTION("header values are trimmed, empty values allowed") {
        http_response_parser p;
        p.feed("HTTP/1.1 200 OK\r\nX-A:   spaced \t \r\nX-Empty:\r\nContent-Length: 0\r\n\r\n");
        REQUIRE(p.is_complete());
        CHECK(p.headers().find("X-A") == "spaced");
        CHECK(p.headers().find("X-Empty") == "");
    }
}

TEST_CASE("malformed responses are reported as errors", "[http_parser][errors]") {
    struct row {
        std::string response;
        http_errc expected;
    };
    const std::string ok_head = "HTTP/1.1 200 OK\r\n";
    const std::vector<row> rows = {
        {"SSH-2.0-OpenSSH_9.2\r\n", http_errc::not_http},
        {"<html><body>hello</body></html>", http_errc::not_http},
        {"http/1.1 200 OK\r\n\r\n", http_errc::not_http},
        {std::string("\x16\x03\x01\x00\xa5", 5), http_errc::not_http}, // a TLS handshake
        {"HTTP/1.1200 OK\r\n\r\n", http_errc::bad_status_line},
        {"HTTP/1.1 20 OK\r\n\r\n", http_errc::bad_status_line},
        {"HTTP/1.1 2000 OK\r\n\r\n", http_errc::bad_status_line},
        {"HTTP/1.1 abc OK\r\n\r\n", http_errc::bad_status_line},
        {"HTTP/1.1 099 Low\r\n\r\n", http_errc::bad_status_line},
        {"HTTP/1.1 600 High\r\n\r\n", http_errc::bad_status_line},
        {"HTTP/1 200 OK\r\n\r\n", http_errc::bad_status_line},
        {"HTTP/1.1 200 O\x01K\r\n\r\n", http_errc::bad_status_line},
        {"HTTP/2.0 200 OK\r\n\r\n", http_errc::unsupported_version},
        {"HTTP/0.9 200 OK\r\n\r\n", http_errc::unsupported_version},
        {ok_head + "No colon here\r\n\r\n", http_errc::bad_header},
        {ok_head + "Bad Name: x\r\n\r\n", http_errc::bad_header},
        {ok_head + "Name : x\r\n\r\n", http_errc::bad_header},
        {ok_head + ": empty name\r\n\r\n", http_errc::bad_header},
        {ok_head + "X-A: a\rb\r\n\r\n", http_errc::bad_header},
        {ok_head + std::string("X-A: a\0b\r\n\r\n", 12), http_errc::bad_header},
        {ok_head + " leading: space\r\n\r\n", http_errc::bad_header},
        {ok_head + "Content-Length: abc\r\n\r\n", http_errc::bad_content_length},
        {ok_head + "Content-Length: -1\r\n\r\n", http_errc::bad_content_length},
        {ok_head + "Content-Length: +5\r\n\r\n", http_errc::bad_content_length},
        {ok_head + "Content-Length:\r\n\r\n", http_errc::bad_content_length},
        {ok_head + "Content-Length: 5,\r\n\r\n", http_errc::bad_content_length},
        {ok_head + "Content-Length: 1 2\r\n\r\n", http_errc::bad_content_length},
        {ok_head + "Content-Length: 18446744073709551616\r\n\r\n",
         http_errc::content_length_overflow},
        {ok_head + "Content-Length: 99999999999999999999999\r\n\r\n",
         http_errc::content_length_overflow},
        {ok_head + "Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
         http_errc::conflicting_content_length},
        {ok_head + "Content-Length: 2, 3\r\n\r\nabc", http_errc::conflicting_content_length},
        {ok_head + "Transfer-Encoding: gzip, chunked\r\n\r\n",
         http_errc::unsupported_transfer_coding},
        {ok_head + "Transfer-Encoding: chunked, chunked\r\n\r\n", http_errc::bad_transfer_encoding},
        {ok_head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
         http_errc::bad_transfer_encoding},
        {ok_head + "Transfer-Encoding: chunked\r\n\r\nzz\r\n", http_errc::bad_chunk_size},
        {ok_head + "Transfer-Encoding: chunked\r\n\r\n\r\n", http_errc::bad_chunk_size},
        {ok_head + "Transfer-Encoding: chunked\r\n\r\n-1\r\n", http_errc::bad_chunk_size},
        {ok_head + "Transfer-Encoding: chunked\r\n\r\n5 x\r\n", http_errc::bad_chunk_size},
        {ok_head + "Transfer-Encoding: chunked\r\n\r\n5;\r\n", http_errc::bad_chunk_size},
        {ok_head + "Transfer-Encoding: chunked\r\n\r\n5;a=\"open\r\n", http_errc::bad_chunk_size},
        {ok_head + "Transfer-Encoding: chunked\r\n\r\n5;a=b c\r\n", http_errc::bad_chunk_size},
        {ok_head + "Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
         http_errc::chunk_size_overflow},
        {ok_head + "Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", http_errc::bad_chunk},
        {ok_head + "Transfer-Encoding: chunked\r\n\r\n2\r\nab\rX", http_errc::bad_chunk},
        {ok_head + "Transfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer\r\n\r\n",
         http_errc::bad_header},
    };
    for (const row& r : rows) {
        INFO(r.response);
        const outcome o = parse_whole(r.response, true);
        CHECK_FALSE(o.complete);
        CHECK(o.error == r.expected);
        CHECK_FALSE(o.keep_alive);
        check_split_invariance(r.response, true);
    }
}

TEST_CASE("error messages name the problem", "[http_parser][errors]") {
    http_response_parser p;
    p.feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n");
    REQUIRE(p.failed());
    CHECK(p.error().message == "conflicting Content-Length values");
    CHECK(scraper::to_string(p.error().code) == "conflicting_content_length");
    CHECK(static_cast<bool>(p.error()));
    CHECK(p.feed("more") == 0);
}

TEST_CASE("EOF before any byte is distinguished from EOF inside a response", "[http_parser][eof]") {
    SECTION("nothing received") {
        http_response_parser p;
        p.finish();
        CHECK(p.error().code == http_errc::eof_before_response);
    }
    SECTION("an empty feed is not a byte") {
        http_response_parser p;
        CHECK(p.feed("") == 0);
        CHECK_FALSE(p.received_any());
        p.finish();
        CHECK(p.error().code == http_errc::eof_before_response);
    }
    const char* truncated[] = {
        "H",
        "HTTP/1.1 200 OK",
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
        "\r\n",
    };
    for (const char* r : truncated) {
        INFO(r);
        const outcome o = parse_whole(r, true);
        CHECK(o.error == http_errc::premature_eof);
        check_split_invariance(r, true);
    }
    SECTION("the message says how much of the body arrived") {
        http_response_parser p;
        p.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        p.finish();
        CHECK(p.error().message == "connection closed after 3 of 10 body bytes");
    }
}

TEST_CASE("limits on header size and header count and body size are enforced",
          "[http_parser][limits]") {
    http_parser_limits limits;
    limits.max_header_bytes = 64;
    limits.max_headers = 3;
    limits.max_body_bytes = 10;
    limits.max_chunk_line_bytes = 16;

    SECTION("a header section of exactly the limit passes, one byte more fails") {
        // Status line (17) + "X: " + value + CRLF + CRLF (2) must total 64.
        const std::string head = "HTTP/1.1 200 OK\r\n";
        const std::string exact =
            head + "X: " + std::string(64 - head.size() - 3 - 2 - 2, 'v') + "\r\n\r\n";
        REQUIRE(exact.size() == 64);
        CHECK(parse_whole(exact, true, http_method::get, limits).complete);
        const std::string over =
            head + "X: " + std::string(64 - head.size() - 3 - 2 - 2 + 1, 'v') + "\r\n\r\n";
        CHECK(parse_whole(over, true, http_method::get, limits).error ==
              http_errc::header_block_too_large);
        check_split_invariance(over, true, http_method::get, limits);
    }
    SECTION("an endless header line fails without buffering it") {
        http_response_parser p(http_method::get, limits);
        p.feed("HTTP/1.1 200 OK\r\nX: ");
        for (int i = 0; i < 100 && !p.done(); ++i) p.feed("aaaaaaaaaa");
        CHECK(p.error().code == http_errc::header_block_too_large);
    }
    SECTION("an endless status line fails") {
        CHECK(parse_whole("HTTP/1.1 200 " + std::string(100, 'x'), false, http_method::get, limits)
                  .error == http_errc::header_block_too_large);
    }
    SECTION("endless empty lines before the status line fail") {
        CHECK(parse_whole(std::string(100, '\n'), false, http_method::get, limits).error ==
              http_errc::header_block_too_large);
    }
    SECTION("header count") {
        CHECK(parse_whole("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", true, http_method::get,
                          limits)
                  .complete);
        CHECK(parse_whole("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", true,
                          http_method::get, limits)
                  .error == http_errc::too_many_headers);
    }
    SECTION("Content-Length over the body limit fails before the body arrives") {
        CHECK(parse_whole("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", false,
                          http_method::get, limits)
                  .complete);
        const outcome o = parse_whole("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", false,
                                      http_method::get, limits);
        CHECK(o.error == http_errc::body_too_large);
    }
    SECTION("a body read until close over the limit fails") {
        const std::string r = "HTTP/1.1 200 OK\r\n\r\n01234567890";
        CHECK(parse_whole(r, true, http_method::get, limits).error == http_errc::body_too_large);
        check_split_invariance(r, true, http_method::get, limits);
        CHECK(parse_whole("HTTP/1.1 200 OK\r\n\r\n0123456789", true, http_method::get, limits)
                  .complete);
    }
    SECTION("a chunked body over the limit fails at the chunk that overflows it") {
        const std::string r =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n6\r\n";
        CHECK(parse_whole(r, false, http_method::get, limits).error == http_errc::body_too_large);
        check_split_invariance(r, false, http_method::get, limits);
        CHECK(parse_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: "
                          "chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n",
                          false, http_method::get, limits)
                  .complete);
    }
    SECTION("an over-long chunk-size line fails") {
        const std::string r =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=aaaaaaaaaaaaaaaaaaaa\r\n";
        CHECK(parse_whole(r, false, http_method::get, limits).error == http_errc::bad_chunk_size);
    }
    SECTION("trailers have their own size and count limits") {
        const std::string base = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
        CHECK(parse_whole(base + "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", false, http_method::get,
                          limits)
                  .error == http_errc::too_many_headers);
        CHECK(parse_whole(base + "A: " + std::string(70, 'x') + "\r\n\r\n", false, http_method::get,
                          limits)
                  .error == http_errc::header_block_too_large);
    }
}

TEST_CASE("a large body arrives intact through random splits", "[http_parser][split]") {
    std::string body;
    for (int i = 0; i < 20000; ++i) body += static_cast<char>('a' + i % 26);
    std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (std::size_t pos = 0; pos < body.size(); pos += 777) {
        const std::string piece = body.substr(pos, 777);
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
        chunked += size + piece + "\r\n";
    }
    chunked += "0\r\n\r\n";
    const std::string length = "HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n" + body;
    std::mt19937 rng(7);
    for (const std::string* r : {&std::as_const(chunked), &std::as_const(length)}) {
        for (int round = 0; round < 20; ++round) {
            std::vector<std::size_t> pieces(32);
            std::uniform_int_distribution<std::size_t> size(1, 3000);
            for (auto& s : pieces) s = size(rng);
            const outcome o = parse_in_pieces(*r, pieces, false);
            REQUIRE(o.complete);
            REQUIRE(o.body == body);
        }
    }
}

TEST_CASE(
    "regression: a non-HTTP byte beyond a tiny header budget gives the same error for every split",
    "[http_parser][limits][regression]") {
    // Found by the fuzzer: one feed reported not_http (it looked at the '-' past
    // the budget) while byte-by-byte feeding reported header_block_too_large.
    http_parser_limits limits;
    limits.max_header_bytes = 2;
    const std::string r = std::string("HT-TP/HT\0\0", 10);
    CHECK(parse_whole(r, true, http_method::get, limits).error ==
          http_errc::header_block_too_large);
    check_split_invariance(r, true, http_method::get, limits);
    limits.max_header_bytes = 3;
    CHECK(parse_whole(r, true, http_method::get, limits).error == http_errc::not_http);
    check_split_invariance(r, true, http_method::get, limits);
}

TEST_CASE("parser and headers are cheap value types", "[http_parser]") {
    static_assert(std::is_nothrow_move_constructible_v<http_response_parser>);
    static_assert(std::is_nothrow_move_assignable_v<http_response_parser>);
    static_assert(std::is_copy_constructible_v<scraper::http_headers>);
    http_response_parser a;
    a.feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    http_response_parser b(std::move(a));
    CHECK(b.is_complete());
    CHECK(b.take_body() == "ok");
    CHECK(b.body().empty());
}
