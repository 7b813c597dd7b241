#include "html.hpp"

#include <cstring>

#include "text_util.hpp"

namespace scraper {

namespace {

constexpr std::size_t npos = std::string_view::npos;

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// Position of the '<' of the end tag "</name" (followed by whitespace, '/',
// '>' or the end of input) at or after `from`, or npos. Linear.
std::size_t find_end_tag(std::string_view s, std::size_t from, std::string_view name) {
    while (from < s.size()) {
        const void* lt = std::memchr(s.data() + from, '<', s.size() - from);
        if (lt == nullptr) return npos;
        const auto i = static_cast<std::size_t>(static_cast<const char*>(lt) - s.data());
        if (i + 1 < s.size() && s[i + 1] == '/' && istarts_with(s.substr(i + 2), name)) {
            const std::size_t after = i + 2 + name.size();
            if (after == s.size() || is_html_space(s[after]) || s[after] == '/' || s[after] == '>')
                return i;
        }
        from = i + 1;
    }
    return npos;
}

// Position just past the next '>' at or after `from`, or the end of input.
std::size_t skip_past_gt(std::string_view s, std::size_t from) {
    const std::size_t gt = s.find('>', from);
    return gt == npos ? s.size() : gt + 1;
}

bool is_raw_text_element(std::string_view name) {
    return name == "script" || name == "style" || name == "textarea" || name == "xmp" ||
           name == "iframe" || name == "noembed" || name == "noframes";
}

// Whether an href is worth returning (see html_summary::links).
bool keep_link(std::string_view href) {
    if (href.empty() || href.front() == '#') return false;
    // Schemes are compared without the tabs and newlines browsers strip.
    std::string head;
    for (char c : href) {
        if (c == '\t' || c == '\n' || c == '\r') continue;
        head += to_lower_ascii(c);
        if (head.size() == 11) break;
    }
    for (std::string_view scheme : {"javascript:", "mailto:", "tel:", "data:"})
        if (head.compare(0, scheme.size(), scheme) == 0) return false;
    return true;
}

std::string clean_href(std::string_view raw) {
    std::string v = decode_html_entities(raw);
    std::size_t b = 0;
    std::size_t e = v.size();
    while (b < e && is_html_space(v[b])) ++b;
    while (e > b && is_html_space(v[e - 1])) --e;
    return v.substr(b, e - b);
}

} // namespace

std::string decode_html_entities(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        const std::size_t amp = s.find('&', i);
        if (amp == npos) {
            out.append(s.substr(i));
            break;
        }
        out.append(s.substr(i, amp - i));
        i = amp + 1;
        if (i < s.size() && s[i] == '#') {
            std::size_t j = i + 1;
            const bool hex = j < s.size() && (s[j] == 'x' || s[j] == 'X');
            if (hex) ++j;
            const std::size_t digits_start = j;
            std::uint32_t cp = 0;
            while (j < s.size() && (hex ? hex_value(s[j]) >= 0 : is_digit_ascii(s[j]))) {
                const auto d = static_cast<std::uint32_t>(hex ? hex_value(s[j]) : s[j] - '0');
                cp = cp > 0x10FFFF ? cp
                                   : cp * (hex ? 16u : 10u) + d; // saturates past the Unicode range
                ++j;
            }
            if (j == digits_start) { // "&#" or "&#x" without digits: not a reference
                out += '&';
                continue;
            }
            if (j < s.size() && s[j] == ';') ++j;
            append_utf8(out, cp);
            i = j;
            continue;
        }
        // Named reference: only the basic ones, and only with the ';'.
        std::size_t j = i;
        while (j < s.size() && j - i < 8 && (is_alpha_ascii(s[j]) || is_digit_ascii(s[j]))) ++j;
        if (j < s.size() && s[j] == ';') {
            const std::string_view name = s.substr(i, j - i);
            const char* replacement = nullptr;
            if (name == "amp")
                replacement = "&";
            else if (name == "lt")
                replacement = "<";
            else if (name == "gt")
                replacement = ">";
            else if (name == "quot")
                replacement = "\"";
            else if (name == "apos")
                replacement = "'";
            else if (name == "nbsp")
                replacement = "\xC2\xA0";
            if (replacement != nullptr) {
                out += replacement;
                i = j + 1;
                continue;
            }
        }
        out += '&';
    }
    return out;
}

std::string collapse_whitespace(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    bool pending_space = false;
    for (char c : s) {
        if (is_html_space(c)) {
            pending_space = !out.empty();
            continue;
        }
        if (pending_space) out += ' ';
        pending_space = false;
        out += c;
    }
    return out;
}

html_summary extract_html(std::string_view s, const html_options& options) {
    html_summary summary;
    bool have_title = false;
    std::size_t i = 0;
    while (i < s.size()) {
        const void* lt = std::memchr(s.data() + i, '<', s.size() - i);
        if (lt == nullptr) break;
        i = static_cast<std::size_t>(static_cast<const char*>(lt) - s.data());
        if (i + 1 >= s.size()) break;
        const char next = s[i + 1];

        if (s.compare(i, 4, "<!--") == 0) {
            // Comment; "<!-->" and "<!--->" are (abruptly) closed comments too.
            const std::size_t body = i + 4;
            if (s.compare(body, 1, ">") == 0) {
                i = body + 1;
                continue;
            }
            if (s.compare(body, 2, "->") == 0) {
                i = body + 2;
                continue;
            }
            const std::size_t end = s.find("-->", body);
            i = end == npos ? s.size() : end + 3;
            continue;
        }
        if (next == '!' || next == '?' || next == '/') {
            // Doctype, bogus comment, CDATA, processing instruction, or end tag.
            i = skip_past_gt(s, i + 2);
            continue;
        }
        if (!is_alpha_ascii(next)) { // a literal '<' in text
            ++i;
            continue;
        }

        // Start tag: name, then attributes up to '>' (quoted values may hold '>').
        std::size_t j = i + 1;
        while (j < s.size() && !is_html_space(s[j]) && s[j] != '/' && s[j] != '>') ++j;
        const std::string name = to_lower_ascii(s.substr(i + 1, j - i - 1));
        const bool want_href =
            options.links && (name == "a" || (name == "base" && !summary.base_href));
        std::optional<std::string_view> href;
        for (;;) {
            while (j < s.size() && (is_html_space(s[j]) || s[j] == '/')) ++j;
            if (j >= s.size()) break;
            if (s[j] == '>') {
                ++j;
                break;
            }
            const std::size_t name_start = j++; // the first character may be '='
            while (j < s.size() && !is_html_space(s[j]) && s[j] != '/' && s[j] != '>' &&
                   s[j] != '=')
                ++j;
            const std::string_view attr = s.substr(name_start, j - name_start);
            while (j < s.size() && is_html_space(s[j])) ++j;
            std::string_view value;
            if (j < s.size() && s[j] == '=') {
                ++j;
                while (j < s.size() && is_html_space(s[j])) ++j;
                if (j < s.size() && (s[j] == '"' || s[j] == '\'')) {
                    const std::size_t close = s.find(s[j], j + 1);
                    const std::size_t start = j + 1;
                    j = close == npos ? s.size() : close + 1;
                    value = s.substr(start, (close == npos ? s.size() : close) - start);
                } else {
                    const std::size_t start = j;
                    while (j < s.size() && !is_html_space(s[j]) && s[j] != '>') ++j;
                    value = s.substr(start, j - start);
                }
            }
            if (want_href && !href && iequals(attr, "href"))
                href = value; // the first duplicate wins
        }
        i = j;

        if (href) {
            std::string link = clean_href(*href);
            if (name == "base") {
                summary.base_href = std::move(link);
            } else if (keep_link(link)) {
                if (summary.links.size() < options.max_links) {
                    summary.links.push_back(std::move(link));
                } else {
                    summary.links_truncated = true;
                }
            }
        }
        if (name == "title") {
            const std::size_t end = find_end_tag(s, i, "title");
            const std::size_t text_end = end == npos ? s.size() : end;
            if (!have_title) {
                have_title = true;
                summary.title =
                    collapse_whitespace(decode_html_entities(s.substr(i, text_end - i)));
            }
            if (!options.links) break; // the title was all we wanted
            i = end == npos ? s.size() : skip_past_gt(s, end + 2);
        } else if (is_raw_text_element(name)) {
            const std::size_t end = find_end_tag(s, i, name);
            i = end == npos ? s.size() : skip_past_gt(s, end + 2);
        }
    }
    return summary;
}

} // namespace scraper
