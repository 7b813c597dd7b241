#include "gzip.hpp"

#include <string>

#include "catch_shim.hpp"

using scraper::decode_content;
using scraper::gzip_decode;
using scraper::gzip_errc;

#if SCRAPER_HAVE_ZLIB

#include <zlib.h>

namespace {

// window_bits: 15 + 16 = gzip, 15 = zlib, -15 = raw deflate.
std::string compress(const std::string& in, int window_bits) {
    z_stream zs{};
    REQUIRE(deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) ==
            Z_OK);
    std::string out(deflateBound(&zs, static_cast<uLong>(in.size())), '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

std::string gzip(const std::string& in) {
    return compress(in, 15 + 16);
}

std::string sample_text() {
    std::string s;
    for (int i = 0; i < 5000; ++i) s += "line " + std::to_string(i) + " of a compressible page\n";
    return s;
}

} // namespace

TEST_CASE("gzip and zlib streams decode to the original", "[gzip]") {
    const std::string text = sample_text();
    for (int bits : {15 + 16, 15}) {
        const auto r = gzip_decode(compress(text, bits), 10 * text.size());
        REQUIRE(r.has_value());
        CHECK(*r == text);
    }
    const auto empty = gzip_decode(gzip(""), 100);
    REQUIRE(empty.has_value());
    CHECK(empty->empty());
}

TEST_CASE("the decompressed-size cap is enforced and inclusive", "[gzip][limits]") {
    const std::string text = sample_text();
    const std::string z = gzip(text);
    CHECK(gzip_decode(z, text.size()).has_value());
    const auto r = gzip_decode(z, text.size() - 1);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == gzip_errc::too_large);
    CHECK(r.error().message ==
          "decompressed body exceeds the limit of " + std::to_string(text.size() - 1) + " bytes");
}

TEST_CASE("a gzip bomb stops at the cap", "[gzip][limits]") {
    const std::string zeros(64 * 1024 * 1024, '\0');
    const std::string bomb = gzip(zeros);
    CHECK(bomb.size() < 100 * 1024);
    const auto r = gzip_decode(bomb, 1024 * 1024);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == gzip_errc::too_large);
}

TEST_CASE("truncated and corrupt streams are errors", "[gzip][errors]") {
    const std::string z = gzip(sample_text());
    for (std::size_t cut : {std::size_t{0}, std::size_t{1}, std::size_t{9}, std::size_t{10},
                            z.size() / 2, z.size() - 1}) {
        INFO("cut at " << cut);
        const auto r = gzip_decode(z.substr(0, cut), 1 << 24);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == gzip_errc::truncated);
    }
    std::string corrupt = z;
    corrupt[z.size() / 2] = static_cast<char>(corrupt[z.size() / 2] ^ 0x55);
    corrupt[z.size() / 2 + 1] = static_cast<char>(corrupt[z.size() / 2 + 1] ^ 0x55);
    const auto c = gzip_decode(corrupt, 1 << 24);
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().code == gzip_errc::corrupt);

    const auto not_gzip = gzip_decode("<html>plain</html>", 1 << 20);
    REQUIRE_FALSE(not_gzip.has_value());
    CHECK(not_gzip.error().code == gzip_errc::corrupt);

    std::string bad_crc = gzip("hello");
    bad_crc[bad_crc.size() - 8] = static_cast<char>(bad_crc[bad_crc.size() - 8] ^ 1);
    CHECK(gzip_decode(bad_crc, 100).error().code == gzip_errc::corrupt);
}

TEST_CASE("concatenated gzip members decode in turn and other trailing bytes are ignored",
          "[gzip]") {
    const auto r = gzip_decode(gzip("first ") + gzip("second"), 100);
    REQUIRE(r.has_value());
    CHECK(*r == "first second");
    const auto t = gzip_decode(gzip("body") + std::string("\0\0\0garbage", 10), 100);
    REQUIRE(t.has_value());
    CHECK(*t == "body");
    // The cap applies across members.
    CHECK(gzip_decode(gzip("first ") + gzip("second"), 8).error().code == gzip_errc::too_large);
}

TEST_CASE("decode_content follows the Content-Encoding list", "[gzip][content_encoding]") {
    const std::string text = "hello, content coding";
    CHECK(decode_content("gzip", gzip(text), 1000).value() == text);
    CHECK(decode_content("X-GZIP", gzip(text), 1000).value() == text);
    CHECK(decode_content("deflate", compress(text, 15), 1000).value() == text);
    CHECK(decode_content("deflate", compress(text, -15), 1000).value() ==
          text); // raw deflate, as some servers send
    CHECK(decode_content("identity", text, 1000).value() == text);
    CHECK(decode_content("", text, 1000).value() == text);
    CHECK(decode_content("gzip, identity", gzip(text), 1000).value() == text);
    CHECK(decode_content("deflate, gzip", gzip(compress(text, 15)), 1000).value() == text);
    CHECK(decode_content("gzip", "", 1000).value().empty()); // e.g. HEAD or 204

    const auto br = decode_content("br", text, 1000);
    REQUIRE_FALSE(br.has_value());
    CHECK(br.error().code == gzip_errc::unsupported_encoding);
    CHECK(br.error().message == "unsupported Content-Encoding \"br\"");

    CHECK(decode_content("gzip", gzip(text), 5).error().code == gzip_errc::too_large);
    CHECK(decode_content("identity", text, 5).error().code == gzip_errc::too_large);
    CHECK(decode_content("gzip", "not gzip at all", 1000).error().code == gzip_errc::corrupt);
}

#else // !SCRAPER_HAVE_ZLIB

TEST_CASE("without zlib gzip decoding reports unavailable", "[gzip]") {
    CHECK_FALSE(scraper::gzip_available);
    CHECK(gzip_decode("x", 10).error().code == gzip_errc::unavailable);
    CHECK(decode_content("gzip", "x", 10).error().code == gzip_errc::unavailable);
    CHECK(decode_content("identity", "x", 10).value() == "x");
}

#endif
