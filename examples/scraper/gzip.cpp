#include "gzip.hpp"

#include <algorithm>
#include <climits>
#include <new>
#include <utility>
#include <vector>

#include "text_util.hpp"

#if SCRAPER_HAVE_ZLIB
#include <zlib.h>
#endif

namespace scraper {

namespace {

#if SCRAPER_HAVE_ZLIB

// window_bits: 15 + 32 auto-detects gzip and zlib headers; -15 is raw deflate.
result<std::string, gzip_error> inflate_all(std::string_view in, std::size_t max_output,
                                            int window_bits) {
    z_stream zs{};
    if (inflateInit2(&zs, window_bits) != Z_OK)
        return gzip_error{gzip_errc::corrupt, "zlib inflateInit2 failed"};
    struct inflate_guard {
        z_stream* zs;
        ~inflate_guard() {
            inflateEnd(zs);
        }
    } guard{&zs};

    std::string out;
    out.reserve(std::min<std::size_t>(max_output, in.size() * 4 + 64));
    // zlib never writes through next_in; the const_cast is its C API's wart.
    auto* next = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    std::size_t left = in.size(); // bytes not yet handed to zlib
    unsigned char buffer[16 * 1024];

    for (;;) {
        if (zs.avail_in == 0 && left > 0) {
            const std::size_t n = std::min<std::size_t>(left, UINT_MAX);
            zs.next_in = next;
            zs.avail_in = static_cast<uInt>(n);
            next += n;
            left -= n;
        }
        zs.next_out = buffer;
        zs.avail_out = sizeof buffer;
        const int rc = inflate(&zs, Z_NO_FLUSH);
        const std::size_t produced = sizeof buffer - zs.avail_out;
        if (produced > max_output - out.size())
            return gzip_error{gzip_errc::too_large, "decompressed body exceeds the limit of " +
                                                        std::to_string(max_output) + " bytes"};
        out.append(reinterpret_cast<const char*>(buffer), produced);

        switch (rc) {
        case Z_STREAM_END: {
            // Invariant: the unread input is contiguous: [zs.next_in, zs.next_in + avail_in +
            // left).
            const std::size_t rest = zs.avail_in + left;
            if (rest >= 2 && window_bits > 15 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b) {
                if (inflateReset(&zs) != Z_OK)
                    return gzip_error{gzip_errc::corrupt, "zlib inflateReset failed"};
                continue; // another gzip member
            }
            return out;
        }
        case Z_OK:
            // Progress was made or output space ran out; stop only when zlib
            // has consumed everything, has room left, and still wants more.
            if (zs.avail_in == 0 && left == 0 && zs.avail_out != 0)
                return gzip_error{gzip_errc::truncated,
                                  "compressed body ends before the end of the stream"};
            continue;
        case Z_BUF_ERROR:
            // No progress possible: input exhausted before the end marker.
            return gzip_error{gzip_errc::truncated,
                              "compressed body ends before the end of the stream"};
        case Z_NEED_DICT:
            return gzip_error{gzip_errc::corrupt, "compressed body needs a preset dictionary"};
        case Z_MEM_ERROR:
            throw std::bad_alloc();
        default: // Z_DATA_ERROR, Z_STREAM_ERROR
            return gzip_error{gzip_errc::corrupt,
                              std::string("corrupt compressed body: ") +
                                  (zs.msg != nullptr ? zs.msg : "invalid data")};
        }
    }
}

#endif // SCRAPER_HAVE_ZLIB

[[maybe_unused]] gzip_error unavailable() {
    return gzip_error{gzip_errc::unavailable,
                      "this build has no zlib: cannot decode gzip or deflate"};
}

} // namespace

result<std::string, gzip_error> gzip_decode(std::string_view compressed, std::size_t max_output) {
#if SCRAPER_HAVE_ZLIB
    return inflate_all(compressed, max_output, 15 + 32);
#else
    (void)compressed;
    (void)max_output;
    return unavailable();
#endif
}

result<std::string, gzip_error> gzip_encode(std::string_view data, int level) {
#if SCRAPER_HAVE_ZLIB
    z_stream zs{};
    // windowBits 15 + 16: a gzip wrapper rather than zlib's.
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return gzip_error{gzip_errc::corrupt, "zlib deflateInit2 failed"};
    struct deflate_guard {
        z_stream* zs;
        ~deflate_guard() {
            deflateEnd(zs);
        }
    } guard{&zs};
    std::string out(deflateBound(&zs, static_cast<uLong>(data.size())), '\0');
    // zlib never writes through next_in; the const_cast is its C API's wart.
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
        return gzip_error{gzip_errc::corrupt, "zlib deflate did not finish"};
    out.resize(zs.total_out);
    return out;
#else
    (void)data;
    (void)level;
    return unavailable();
#endif
}

result<std::string, gzip_error> decode_content(std::string_view content_encoding, std::string body,
                                               std::size_t max_output) {
    std::vector<std::string_view> codings;
    for_each_list_element(content_encoding, [&](std::string_view c) { codings.push_back(c); });
    // Check every coding before decoding anything.
    for (std::string_view c : codings) {
        if (!iequals(c, "gzip") && !iequals(c, "x-gzip") && !iequals(c, "deflate") &&
            !iequals(c, "identity"))
            return gzip_error{gzip_errc::unsupported_encoding,
                              "unsupported Content-Encoding \"" + std::string(c) + "\""};
    }
    if (body.empty()) return body; // HEAD, 204, 304 or an empty body: nothing to decode
    for (auto it = codings.rbegin(); it != codings.rend(); ++it) {
        if (iequals(*it, "identity")) continue;
#if SCRAPER_HAVE_ZLIB
        result<std::string, gzip_error> r = inflate_all(body, max_output, 15 + 32);
        if (!r && iequals(*it, "deflate") && r.error().code == gzip_errc::corrupt) {
            // "deflate" should be zlib-wrapped (RFC 9110 §8.4.1.2), but some servers send raw
            // deflate.
            r = inflate_all(body, max_output, -15);
        }
        if (!r) return r;
        body = std::move(r).value();
#else
        return unavailable();
#endif
    }
    if (body.size() > max_output)
        return gzip_error{gzip_errc::too_large, "decoded body exceeds the limit of " +
                                                    std::to_string(max_output) + " bytes"};
    return body;
}

} // namespace scraper
