// Minimal, linear-time extraction of what a crawler needs from an HTML page:
// the title and the link targets. Not a full HTML5 parser: it tokenises tags,
// comments and raw-text elements the way browsers do, and ignores the rest.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace scraper {

struct html_options {
    /// Stop collecting links after this many (`html_summary::links_truncated`).
    std::size_t max_links = 10000;
    /// Collect links and the <base> href. When false only the title is
    /// extracted, and the scan stops at the end of the first <title>: what a
    /// crawl needs from a page at its depth limit.
    bool links = true;
};

struct html_summary {
    /// Text of the first <title>, entity-decoded, whitespace collapsed and
    /// trimmed; empty if there is none.
    std::string title;
    /// href values of <a> tags in document order, entity-decoded and trimmed,
    /// unresolved (resolve them with url::resolve against `base_href` if set,
    /// else against the page URL). Excluded: empty hrefs, fragment-only hrefs
    /// ("#top"), and javascript:, mailto:, tel: and data: URLs.
    std::vector<std::string> links;
    /// href of the first <base> tag, if any.
    std::optional<std::string> base_href;
    /// More than `max_links` links were found; the rest were dropped.
    bool links_truncated = false;
};

/// Extracts title and links from `html` in one pass (O(size), no regex, no
/// backtracking). Tag and attribute names are case-insensitive; attribute
/// values may be double-quoted, single-quoted or unquoted. Comments, and the
/// content of <script>, <style>, <textarea>, <xmp>, <iframe>, <noembed> and
/// <noframes>, are skipped. Malformed markup never fails: whatever can be
/// read is returned.
/// @par Exceptions
/// Only `std::bad_alloc`.
[[nodiscard]] html_summary extract_html(std::string_view html, const html_options& options = {});

/// Decodes character references: &amp; &lt; &gt; &quot; &apos; &nbsp; and
/// numeric ones (&#65; &#x41;, also without the ';'), to UTF-8. Invalid code
/// points become U+FFFD; unknown named references are kept as written.
[[nodiscard]] std::string decode_html_entities(std::string_view text);

/// Collapses runs of ASCII whitespace to one space and trims both ends.
[[nodiscard]] std::string collapse_whitespace(std::string_view text);

} // namespace scraper
