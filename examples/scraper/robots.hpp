// robots.txt (RFC 9309, the Robots Exclusion Protocol), plus the common
// Crawl-delay extension.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace scraper {

/// The rules of one robots.txt that apply to one crawler.
///
/// Matching (RFC 9309 §2.2): the groups whose user-agent line names our
/// product token (case-insensitively) are merged; if there are none, the
/// groups for "*" are merged; if there are none either, everything is
/// allowed. Among the Allow/Disallow rules that match a path, the longest
/// pattern wins and Allow wins a tie. Patterns match a prefix of the path;
/// '*' matches any sequence of characters and a final '$' anchors the end.
/// "/robots.txt" itself is always allowed. Paths and patterns are compared
/// after percent-encoding normalisation (url.hpp), so "/%7Efoo" and "/~foo"
/// are the same path.
///
/// @par Thread safety
/// Immutable after construction: `allowed()` and `crawl_delay()` may be
/// called concurrently.
class robots_rules {
public:
    /// Everything allowed: no robots.txt, or RFC 9309 "unavailable" (4xx).
    [[nodiscard]] static robots_rules allow_all();
    /// Nothing allowed: RFC 9309 "unreachable" (5xx, network error).
    [[nodiscard]] static robots_rules disallow_all();

    /// Parses a robots.txt body for the crawler `user_agent`. Either the
    /// product token ("tether-scraper") or a whole User-Agent string
    /// ("tether-scraper/0.1 (+https://...)") may be given: the leading run of
    /// [A-Za-z_-] is the token. Never fails: unknown or malformed lines are
    /// ignored, and only the first `max_bytes` are parsed (RFC 9309 §2.5
    /// requires at least 500 KiB).
    [[nodiscard]] static robots_rules parse(std::string_view body, std::string_view user_agent,
                                            std::size_t max_bytes = 512 * 1024);

    /// Whether the crawler may fetch `path_and_query` (a URL's target(), e.g.
    /// "/a/b?x=1"). Runs in O(path length × pattern length) per rule, with no
    /// backtracking.
    [[nodiscard]] bool allowed(std::string_view path_and_query) const;

    /// Crawl-delay of the applicable group(s), the largest if several. Values
    /// are decimal seconds ("10", "0.5"); negative or malformed values are
    /// ignored; values over one day are clamped to one day.
    [[nodiscard]] std::optional<std::chrono::milliseconds> crawl_delay() const noexcept {
        return crawl_delay_;
    }

    /// Number of Allow/Disallow rules that apply to the crawler.
    [[nodiscard]] std::size_t rule_count() const noexcept {
        return rules_.size();
    }

private:
    struct rule {
        std::string pattern; // percent-normalised; may contain '*' and a final '$'
        bool allow;
    };

    robots_rules() = default;

    std::vector<rule> rules_;
    bool disallow_all_ = false;
    std::optional<std::chrono::milliseconds> crawl_delay_;
};

/// Rules for the outcome of fetching /robots.txt (RFC 9309 §2.3.1), after the
/// client has followed up to five redirects:
/// - 2xx: parse `body`;
/// - 3xx (more redirects than followed) and 4xx: "unavailable", allow all;
/// - 429 Too Many Requests: treated as unreachable (disallow all), as Google
///   does, since the server is asking us to back off;
/// - 5xx and anything else: "unreachable", disallow all.
[[nodiscard]] robots_rules robots_rules_for_status(int status, std::string_view body,
                                                   std::string_view user_agent);

/// Rules when /robots.txt could not be fetched at all (connection refused,
/// timeout, TLS failure): "unreachable", disallow all (RFC 9309 §2.3.1.4).
[[nodiscard]] robots_rules robots_rules_unreachable();

} // namespace scraper
