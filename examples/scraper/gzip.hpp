// Content decoding (gzip / deflate) through zlib, with a cap on the
// decompressed size so a small "zip bomb" cannot exhaust memory.
//
// zlib is optional: SCRAPER_HAVE_ZLIB is 1 when it is available (the build
// defines it; otherwise it is detected with __has_include). Without zlib the
// functions exist and report `gzip_errc::unavailable`, and requests do not
// advertise gzip (request_options::accept_gzip defaults to gzip_available).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "result.hpp"

#ifndef SCRAPER_HAVE_ZLIB
#if __has_include(<zlib.h>)
#define SCRAPER_HAVE_ZLIB 1
#else
#define SCRAPER_HAVE_ZLIB 0
#endif
#endif

namespace scraper {

/// Whether this build can decode gzip and deflate.
inline constexpr bool gzip_available = SCRAPER_HAVE_ZLIB != 0;

enum class gzip_errc : unsigned char {
    corrupt,              ///< not valid gzip/zlib/deflate data
    truncated,            ///< the stream ends before its end marker
    too_large,            ///< the decoded size would exceed the cap
    unsupported_encoding, ///< a Content-Encoding other than gzip/x-gzip/deflate/identity
    unavailable,          ///< built without zlib
};

struct gzip_error {
    gzip_errc code;
    std::string message;
};

/// Decodes a gzip or zlib stream (auto-detected: inflate with windowBits
/// 15 + 32). Concatenated gzip members are decoded in turn (RFC 1952 §2.2);
/// bytes after the last member that do not start another member are ignored,
/// as browsers do.
/// @param max_output  decoding fails with `too_large` as soon as the output
///                    would exceed this many bytes (exactly max_output is fine).
/// @par Exceptions
/// Only `std::bad_alloc`.
[[nodiscard]] result<std::string, gzip_error> gzip_decode(std::string_view compressed,
                                                          std::size_t max_output);

/// Decodes `body` according to a Content-Encoding field value (a
/// comma-separated list of codings, applied in order, so decoded in reverse).
/// Supports gzip, x-gzip, deflate (zlib-wrapped, or raw deflate as some
/// servers send) and identity. An empty encoding or an empty body is returned
/// unchanged. The result is never larger than `max_output` bytes (a larger
/// identity body is `too_large` too), and each decoding step stops at the cap.
/// @par Exceptions
/// Only `std::bad_alloc`.
[[nodiscard]] result<std::string, gzip_error>
decode_content(std::string_view content_encoding, std::string body, std::size_t max_output);

/// Compresses `data` as one gzip member (for the built-in demo site and tests).
/// Without zlib, returns `gzip_errc::unavailable`.
/// @par Exceptions
/// Only `std::bad_alloc`.
[[nodiscard]] result<std::string, gzip_error> gzip_encode(std::string_view data, int level = 6);

} // namespace scraper
