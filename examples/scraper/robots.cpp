#include "robots.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <span>
#include <system_error>

#include "text_util.hpp"
#include "url.hpp"

namespace scraper {

namespace {

// The product token of a user agent: its leading run of [A-Za-z_-]
// (RFC 9309 §2.2.1), lower-cased.
std::string product_token(std::string_view ua) {
    std::size_t n = 0;
    while (n < ua.size() && (is_alpha_ascii(ua[n]) || ua[n] == '_' || ua[n] == '-')) ++n;
    return to_lower_ascii(ua.substr(0, n));
}

// Whether `pattern` matches a prefix of `path` ('*' wildcard, final '$'
// anchor). Keeps the set of path positions reachable after each pattern
// character (sorted, no duplicates): O(|path| * |pattern|), no backtracking.
// `positions` is scratch space of at least |path| + 1 elements.
bool pattern_matches(std::string_view pattern, std::string_view path,
                     std::span<std::size_t> positions) {
    positions[0] = 0;
    std::size_t count = 1;
    for (std::size_t j = 0; j < pattern.size(); ++j) {
        const char c = pattern[j];
        if (c == '$' && j + 1 == pattern.size()) return positions[count - 1] == path.size();
        if (c == '*') {
            // Every position from the smallest reachable one onwards is reachable.
            const std::size_t first = positions[0];
            count = path.size() - first + 1;
            for (std::size_t i = 0; i < count; ++i) positions[i] = first + i;
            continue;
        }
        std::size_t kept = 0;
        for (std::size_t i = 0; i < count; ++i) {
            const std::size_t pos = positions[i];
            if (pos < path.size() && path[pos] == c) positions[kept++] = pos + 1;
        }
        if (kept == 0) return false;
        count = kept;
    }
    return true;
}

std::optional<std::chrono::milliseconds> parse_crawl_delay(std::string_view value) {
    double seconds = 0;
    const char* const first = value.data();
    const char* const last = first + value.size();
    const auto [ptr, ec] = std::from_chars(first, last, seconds, std::chars_format::fixed);
    if (ec != std::errc() || ptr != last || !std::isfinite(seconds) || seconds < 0)
        return std::nullopt;
    constexpr double max_seconds = 86400;
    return std::chrono::milliseconds(
        static_cast<long long>(std::min(seconds, max_seconds) * 1000.0 + 0.5));
}

} // namespace

robots_rules robots_rules::allow_all() {
    return robots_rules();
}

robots_rules robots_rules::disallow_all() {
    robots_rules r;
    r.disallow_all_ = true;
    return r;
}

robots_rules robots_rules::parse(std::string_view body, std::string_view user_agent,
                                 std::size_t max_bytes) {
    const std::string me = product_token(user_agent);
    if (body.size() > max_bytes) body = body.substr(0, max_bytes);
    if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3); // UTF-8 BOM

    // The groups for us and for "*" are accumulated side by side; which one
    // applies is known only at the end.
    robots_rules mine;
    robots_rules star;
    bool found_mine = false;
    bool found_star = false;
    // The group being read: which agents it names, and whether a rule line has
    // been seen (the next user-agent line then starts a new group).
    bool group_mine = false;
    bool group_star = false;
    bool in_rules = false;

    while (!body.empty()) {
        // Lines end in LF, CR or CRLF (RFC 9309 §2.2).
        const std::size_t eol = body.find_first_of("\r\n");
        std::string_view line = body.substr(0, eol);
        body = eol == std::string_view::npos ? std::string_view{} : body.substr(eol + 1);

        if (const std::size_t hash = line.find('#'); hash != std::string_view::npos)
            line = line.substr(0, hash);
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        const std::string_view key = trim_ows(line.substr(0, colon));
        const std::string_view value = trim_ows(line.substr(colon + 1));

        if (iequals(key, "user-agent")) {
            if (in_rules) {
                group_mine = group_star = false;
                in_rules = false;
            }
            if (value == "*" || (value.size() > 1 && value.front() == '*' && is_ows(value[1]))) {
                group_star = true;
                found_star = true;
            } else if (!me.empty() && product_token(value) == me) {
                group_mine = true;
                found_mine = true;
            }
        } else if (iequals(key, "allow") || iequals(key, "disallow")) {
            in_rules = true;
            if (value.empty()) continue; // "Disallow:" with no path disallows nothing
            const rule r{normalize_percent_encoding(value), iequals(key, "allow")};
            if (group_mine) mine.rules_.push_back(r);
            if (group_star) star.rules_.push_back(r);
        } else if (iequals(key, "crawl-delay")) {
            in_rules = true;
            if (const auto delay = parse_crawl_delay(value)) {
                for (robots_rules* g : {group_mine ? &mine : nullptr, group_star ? &star : nullptr})
                    if (g != nullptr && (!g->crawl_delay_ || *g->crawl_delay_ < *delay))
                        g->crawl_delay_ = delay;
            }
        }
        // Other keys (sitemap, host, ...) are not group members and end nothing.
    }

    if (found_mine) return mine;
    if (found_star) return star;
    return allow_all();
}

bool robots_rules::allowed(std::string_view path_and_query) const {
    if (path_and_query == "/robots.txt") return true;
    if (disallow_all_) return false;
    if (rules_.empty()) return true;
    const std::string path = normalize_percent_encoding(path_and_query);
    // Scratch space on the stack for the usual path, on the heap for a long one.
    std::array<std::size_t, 256> small;
    std::vector<std::size_t> large;
    std::span<std::size_t> positions(small);
    if (path.size() + 1 > small.size()) {
        large.resize(path.size() + 1);
        positions = large;
    }
    std::size_t best_length = 0;
    bool matched = false;
    bool best_allow = true;
    for (const rule& r : rules_) {
        if (!pattern_matches(r.pattern, path, positions)) continue;
        const std::size_t length = r.pattern.size();
        if (!matched || length > best_length || (length == best_length && r.allow && !best_allow)) {
            matched = true;
            best_length = length;
            best_allow = r.allow;
        }
    }
    return best_allow;
}

robots_rules robots_rules_for_status(int status, std::string_view body,
                                     std::string_view user_agent) {
    if (status >= 200 && status < 300) return robots_rules::parse(body, user_agent);
    if (status == 429) return robots_rules::disallow_all();
    if (status >= 300 && status < 500) return robots_rules::allow_all();
    return robots_rules::disallow_all();
}

robots_rules robots_rules_unreachable() {
    return robots_rules::disallow_all();
}

} // namespace scraper
