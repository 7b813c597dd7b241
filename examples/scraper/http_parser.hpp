// A sans-I/O HTTP/1.1 response parser (RFC 9112).
//
// The parser owns no socket and no timer: the caller reads bytes however it
// likes and hands them to `feed()`, in pieces of any size (one byte at a time
// works), then calls `finish()` if the peer closes the connection. The parser
// produces the same result for every way of splitting the same input.
//
// Malformed or hostile input is reported as an `http_error` value; it never
// throws for bad input, never reads out of bounds, and never grows memory past
// the configured limits (plus one line of at most the remaining header budget).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "http_message.hpp"

namespace scraper {

/// Why a response could not be parsed. `none` means no error.
enum class http_errc : unsigned char {
    none,
    not_http,                    ///< the response does not start with "HTTP/"
    bad_status_line,             ///< malformed status line or status code outside 100-599
    unsupported_version,         ///< an HTTP major version other than 1
    unexpected_status,           ///< 101 Switching Protocols (we never ask to upgrade)
    bad_header,                  ///< malformed header or trailer field line
    header_block_too_large,      ///< header (or trailer) section over `max_header_bytes`
    too_many_headers,            ///< more than `max_headers` fields (or trailer fields)
    too_many_interim_responses,  ///< more than `max_interim_responses` 1xx responses
    bad_content_length,          ///< Content-Length is not a decimal number
    content_length_overflow,     ///< Content-Length does not fit in 64 bits
    conflicting_content_length,  ///< several different Content-Length values
    unsupported_transfer_coding, ///< a transfer coding other than chunked
    bad_transfer_encoding,       ///< chunked repeated or not the final coding
    bad_chunk_size,              ///< malformed chunk-size line or chunk extension
    chunk_size_overflow,         ///< chunk size does not fit in 64 bits
    bad_chunk,                   ///< chunk data not followed by CRLF
    body_too_large,              ///< body over `max_body_bytes`
    eof_before_response,         ///< connection closed before any response byte
    premature_eof,               ///< connection closed inside the response
};

/// Stable lower-case name of an error code, e.g. "body_too_large".
[[nodiscard]] std::string_view to_string(http_errc code) noexcept;

/// An error code with a human-readable message naming what was wrong.
struct http_error {
    http_errc code = http_errc::none;
    std::string message;

    explicit operator bool() const noexcept {
        return code != http_errc::none;
    }
};

/// Resource limits. A response that exceeds one fails with the matching
/// `http_errc`; the parser stops reading at that point.
struct http_parser_limits {
    /// Bytes of the status line plus header section, line terminators included
    /// (the trailer section has its own budget of the same size).
    std::size_t max_header_bytes = 64 * 1024;
    /// Header fields per response (trailer fields are counted separately).
    std::size_t max_headers = 128;
    /// Body bytes after transfer decoding (i.e. still content-encoded).
    std::uint64_t max_body_bytes = 16 * 1024 * 1024;
    /// One chunk-size line, extensions included.
    std::size_t max_chunk_line_bytes = 4096;
    /// 1xx interim responses (100 Continue, 103 Early Hints) skipped before the final one.
    std::size_t max_interim_responses = 8;
};

/// How the body of the current response is delimited (RFC 9112 §6.3).
enum class body_framing : unsigned char {
    unknown,        ///< headers not complete yet
    none,           ///< no body: HEAD request, 204, 304
    content_length, ///< exactly `content_length()` bytes
    chunked,        ///< Transfer-Encoding: chunked
    until_close,    ///< everything until the peer closes; needs `finish()`
};

/// Incremental parser of one HTTP/1.1 response at a time.
///
/// Usage: construct (or `reset()`) with the method of the request the
/// response answers, then call `feed()` with received bytes until `done()`;
/// on EOF from the peer call `finish()`. On success `is_complete()` holds and
/// the accessors describe the final (non-1xx) response.
///
/// @par Contracts
/// - `feed()` consumes every byte it is given while the response is in
///   progress; it returns fewer only when the response completed (the rest
///   belongs to the next response, or is garbage from the server) or failed.
/// - Once `done()`, `feed()` consumes nothing and `finish()` does nothing.
/// - `body().size() <= limits().max_body_bytes` at all times.
/// - Interim 1xx responses are skipped (counted in `interim_responses()`).
///
/// @par Thread safety
/// None: one object per connection, used by one thread at a time.
///
/// @par Exceptions
/// Only `std::bad_alloc`; bad input is reported through `error()`.
///
/// @par Example
/// @code
/// scraper::http_response_parser p(scraper::http_method::get);
/// p.feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
/// assert(p.is_complete() && p.status() == 200 && p.body() == "hi" && p.keep_alive());
/// @endcode
class http_response_parser {
public:
    explicit http_response_parser(http_method request_method = http_method::get,
                                  http_parser_limits limits = {});

    /// Forgets the current response and prepares for the next one on the same
    /// connection, answering a request made with `request_method`. Keeps the limits.
    void reset(http_method request_method);

    /// Parses as much of `data` as belongs to the current response and returns
    /// the number of bytes consumed (see the class contracts).
    std::size_t feed(std::string_view data);

    /// Tells the parser the peer closed the connection. Completes a body read
    /// until close; anywhere else inside a response it fails with
    /// `premature_eof`, or `eof_before_response` if not a single byte arrived
    /// (a reused keep-alive connection the server had closed: safe to retry).
    void finish();

    /// The response is complete or failed: feeding more changes nothing.
    [[nodiscard]] bool done() const noexcept {
        return state_ == state::complete || state_ == state::failed;
    }
    /// The response was parsed successfully, body included.
    [[nodiscard]] bool is_complete() const noexcept {
        return state_ == state::complete;
    }
    /// Parsing failed; `error()` says why. Status and headers keep what was
    /// parsed before the error; the body is emptied.
    [[nodiscard]] bool failed() const noexcept {
        return state_ == state::failed;
    }
    /// The final response's status line and header section have been parsed
    /// (status, reason, headers and framing are available; the body may not be).
    [[nodiscard]] bool headers_complete() const noexcept {
        return headers_complete_;
    }
    /// At least one byte was fed since construction or `reset()`.
    [[nodiscard]] bool received_any() const noexcept {
        return received_any_;
    }

    [[nodiscard]] const http_error& error() const noexcept {
        return error_;
    }

    /// Status code of the final response (0 before its status line is parsed).
    [[nodiscard]] int status() const noexcept {
        return status_;
    }
    [[nodiscard]] std::string_view reason() const noexcept {
        return reason_;
    }
    /// Minor version of "HTTP/1.x" (0 or 1; larger minors are treated as 1).
    [[nodiscard]] int version_minor() const noexcept {
        return version_minor_;
    }
    [[nodiscard]] const http_headers& headers() const noexcept {
        return headers_;
    }
    /// Moves the headers out; `headers()` is empty afterwards.
    [[nodiscard]] http_headers take_headers() noexcept {
        return std::move(headers_);
    }
    /// Trailer fields of a chunked body.
    [[nodiscard]] const http_headers& trailers() const noexcept {
        return trailers_;
    }
    /// The body received so far, transfer-decoded (chunk framing removed) but
    /// still content-encoded (see gzip.hpp).
    [[nodiscard]] const std::string& body() const noexcept {
        return body_;
    }
    /// Moves the body out; `body()` is empty afterwards.
    [[nodiscard]] std::string take_body() noexcept {
        return std::move(body_);
    }

    [[nodiscard]] body_framing framing() const noexcept {
        return framing_;
    }
    /// The Content-Length the body is framed by, when framing is content_length.
    [[nodiscard]] std::optional<std::uint64_t> content_length() const noexcept {
        return content_length_;
    }
    /// Number of 1xx responses skipped before the final one.
    [[nodiscard]] std::size_t interim_responses() const noexcept {
        return interim_;
    }

    /// The connection may carry another request: the response is complete,
    /// was framed without relying on connection close, did not mix
    /// Transfer-Encoding with Content-Length or HTTP/1.0, and the version and
    /// Connection header allow it (HTTP/1.1: unless "close"; HTTP/1.0: only
    /// with "keep-alive"). The caller must also check that no bytes were left
    /// over after the response before reusing the connection.
    [[nodiscard]] bool keep_alive() const noexcept {
        return state_ == state::complete && keep_alive_;
    }

    [[nodiscard]] const http_parser_limits& limits() const noexcept {
        return limits_;
    }

private:
    enum class state : unsigned char {
        status_line,
        header_line,
        body_length,
        body_until_close,
        chunk_size,
        chunk_data,
        chunk_data_cr,
        chunk_data_lf,
        trailer_line,
        complete,
        failed,
    };
    enum class line_status : unsigned char { partial, ready, too_long };

    line_status take_line(const char*& p, const char* end, std::size_t limit);
    void fail(http_errc code, std::string message);
    void on_status_line();
    void on_header_line();
    void on_end_of_headers();
    void on_chunk_size_line();
    void on_trailer_line();
    bool add_field_line(http_headers& target, bool trailer);
    bool append_body(const char* p, std::size_t n);

    http_parser_limits limits_;
    http_method method_;
    state state_ = state::status_line;
    http_error error_;
    bool received_any_ = false;
    bool headers_complete_ = false;
    bool keep_alive_ = false;
    int status_ = 0;
    int version_minor_ = 1;
    std::string reason_;
    http_headers headers_;
    http_headers trailers_;
    std::string body_;
    body_framing framing_ = body_framing::unknown;
    std::optional<std::uint64_t> content_length_;
    std::size_t interim_ = 0;

    // Invariant: header_bytes_ <= limits_.max_header_bytes (it counts the bytes
    // of the current status line + header section, or trailer section).
    std::size_t header_bytes_ = 0;
    // The line being accumulated; after take_line() returned ready, the line
    // without its CRLF/LF and line_wire_size_ its size on the wire.
    std::string line_;
    std::size_t line_wire_size_ = 0;
    // Bytes still expected in the current Content-Length body or chunk.
    std::uint64_t remaining_ = 0;
};

} // namespace scraper
