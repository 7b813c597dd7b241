#include "url.hpp"

#include <string>
#include <unordered_set>

#include "catch_shim.hpp"

using scraper::url;
using scraper::url_errc;

namespace {

std::string parsed(std::string_view text) {
    const auto r = url::parse(text);
    INFO(text);
    REQUIRE(r.has_value());
    return r->str();
}

url_errc parse_error(std::string_view text) {
    const auto r = url::parse(text);
    INFO(text);
    REQUIRE_FALSE(r.has_value());
    return r.error().code;
}

std::string resolved(const url& base, std::string_view ref) {
    const auto r = base.resolve(ref);
    INFO(ref);
    REQUIRE(r.has_value());
    return r->str();
}

} // namespace

TEST_CASE("absolute http and https URLs are split into their components", "[url]") {
    const auto u = url::parse("https://Example.COM:8443/a/b?x=1&y=2#frag");
    REQUIRE(u.has_value());
    CHECK(u->scheme() == "https");
    CHECK(u->is_https());
    CHECK(u->host() == "example.com");
    CHECK(u->hostname() == "example.com");
    CHECK(u->port() == 8443);
    CHECK(u->path() == "/a/b");
    CHECK(u->query() == "x=1&y=2");
    CHECK(u->target() == "/a/b?x=1&y=2");
    CHECK(u->authority() == "example.com:8443");
    CHECK(u->str() == "https://example.com:8443/a/b?x=1&y=2");

    const auto d = url::parse("http://example.com");
    REQUIRE(d.has_value());
    CHECK(d->port() == 80);
    CHECK(d->path() == "/");
    CHECK(d->query().empty());
    CHECK(d->authority() == "example.com");
    CHECK(url::parse("https://example.com")->port() == 443);
}

TEST_CASE("normalisation makes equivalent URLs equal", "[url][normalise]") {
    CHECK(parsed("HTTP://EXAMPLE.com/") == "http://example.com/");
    CHECK(parsed("http://example.com:80/a") == "http://example.com/a");
    CHECK(parsed("https://example.com:443/a") == "https://example.com/a");
    CHECK(parsed("http://example.com:443/a") == "http://example.com:443/a");
    CHECK(parsed("http://example.com:/a") == "http://example.com/a");
    CHECK(parsed("http://example.com") == "http://example.com/");
    CHECK(parsed("http://example.com?q") == "http://example.com/?q");
    CHECK(parsed("http://example.com/a#frag") == "http://example.com/a");
    CHECK(parsed("http://example.com/a?") == "http://example.com/a");
    CHECK(parsed("http://example.com/a/./b/../c") == "http://example.com/a/c");
    CHECK(parsed("http://example.com/a/%2E%2E/b") == "http://example.com/b");
    CHECK(parsed("http://example.com/%7euser/%7E") == "http://example.com/~user/~");
    CHECK(parsed("http://example.com/a%2fb%3a") == "http://example.com/a%2Fb%3A");
    CHECK(parsed("http://example.com/%41%42") == "http://example.com/AB");
    CHECK(parsed("http://example.com/a b\"<>`{|}^\\") ==
          "http://example.com/a%20b%22%3C%3E%60%7B%7C%7D%5E%5C");
    CHECK(parsed("http://example.com/caf\xC3\xA9") == "http://example.com/caf%C3%A9");
    CHECK(parsed("http://example.com/100%") == "http://example.com/100%25");
    CHECK(parsed("http://example.com/%zz") == "http://example.com/%25zz");
    CHECK(parsed("http://example.com/a?b=%2f&c=d e") == "http://example.com/a?b=%2F&c=d%20e");
    CHECK(parsed("http://example.com/;x=1,y=2/@:!$&'()*+") ==
          "http://example.com/;x=1,y=2/@:!$&'()*+");
    CHECK(parsed("  http://example.com/a\n/b\t \r\n") == "http://example.com/a/b");
    CHECK(parsed("http://[::1]:8080/x") == "http://[::1]:8080/x");
    CHECK(parsed("http://[2001:DB8::1]/") == "http://[2001:db8::1]/");
    CHECK(parsed("http://127.0.0.1:8080") == "http://127.0.0.1:8080/");

    const auto a = url::parse("http://EXAMPLE.com:80/%7Ea/./b#x");
    const auto b = url::parse("http://example.com/~a/b");
    CHECK(*a == *b);
    std::unordered_set<url> seen{*a};
    CHECK(seen.count(*b) == 1);
}

TEST_CASE("normalisation is idempotent", "[url][normalise]") {
    for (const char* text :
         {"http://example.com/a%2fb/../c?d=%7e#x", "https://h:444/%zz/ x", "http://[::1]/a/./b/"}) {
        const std::string once = parsed(text);
        CHECK(parsed(once) == once);
    }
}

TEST_CASE("an IPv6 host is bracketed in the URL but not for DNS", "[url]") {
    const auto u = url::parse("http://[::1]:8080/");
    REQUIRE(u.has_value());
    CHECK(u->host() == "[::1]");
    CHECK(u->hostname() == "::1");
    CHECK(u->authority() == "[::1]:8080");
}

TEST_CASE("unacceptable URLs are rejected with a reason", "[url][errors]") {
    CHECK(parse_error("") == url_errc::empty);
    CHECK(parse_error(" \t ") == url_errc::empty);
    CHECK(parse_error("/relative/path") == url_errc::not_absolute);
    CHECK(parse_error("example.com/a") == url_errc::not_absolute);
    CHECK(parse_error("ftp://example.com/") == url_errc::unsupported_scheme);
    CHECK(parse_error("mailto:someone@example.com") == url_errc::unsupported_scheme);
    CHECK(parse_error("javascript:alert(1)") == url_errc::unsupported_scheme);
    CHECK(parse_error("http:/no-authority") == url_errc::missing_host);
    CHECK(parse_error("http:no-authority") == url_errc::missing_host);
    CHECK(parse_error("http:///path") == url_errc::missing_host);
    CHECK(parse_error("http://:80/") == url_errc::missing_host);
    CHECK(parse_error("http://exa mple.com/") == url_errc::invalid_host);
    CHECK(parse_error("http://ex%41mple.com/") == url_errc::invalid_host);
    CHECK(parse_error("http://b\xC3\xBC"
                      "cher.de/") == url_errc::invalid_host);
    CHECK(parse_error("http://[::1/") == url_errc::invalid_host);
    CHECK(parse_error("http://[zz::1]/") == url_errc::invalid_host);
    CHECK(parse_error("http://[::1]x/") == url_errc::invalid_host);
    CHECK(parse_error("http://example.com:0/") == url_errc::invalid_port);
    CHECK(parse_error("http://example.com:65536/") == url_errc::invalid_port);
    CHECK(parse_error("http://example.com:99999999999999999999/") == url_errc::invalid_port);
    CHECK(parse_error("http://example.com:8a/") == url_errc::invalid_port);
    CHECK(parse_error("http://user:pass@example.com/") == url_errc::userinfo);

    const auto r = url::parse("ftp://example.com/");
    CHECK(r.error().message == "unsupported scheme \"ftp\" (only http and https)");
    CHECK_THROWS_AS(r.value(), scraper::bad_result_access);
}

TEST_CASE("RFC 3986 5.4.1 normal examples resolve as specified", "[url][resolve]") {
    const auto base = url::parse("http://a/b/c/d;p?q");
    REQUIRE(base.has_value());
    // Fragments are dropped and "http://g" gets its "/" path by normalisation.
    const std::pair<const char*, const char*> examples[] = {
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g/"},
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {"#s", "http://a/b/c/d;p?q"},
        {"g#s", "http://a/b/c/g"},
        {"g?y#s", "http://a/b/c/g?y"},
        {";x", "http://a/b/c/;x"},
        {"g;x", "http://a/b/c/g;x"},
        {"g;x?y#s", "http://a/b/c/g;x?y"},
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../", "http://a/"},
        {"../../g", "http://a/g"},
    };
    for (const auto& [ref, expected] : examples) CHECK(resolved(*base, ref) == expected);

    // "g:h" resolves to "g:h": a scheme we do not fetch.
    const auto gh = base->resolve("g:h");
    REQUIRE_FALSE(gh.has_value());
    CHECK(gh.error().code == url_errc::unsupported_scheme);
}

TEST_CASE("RFC 3986 5.4.2 abnormal examples resolve as specified", "[url][resolve]") {
    const auto base = url::parse("http://a/b/c/d;p?q");
    REQUIRE(base.has_value());
    const std::pair<const char*, const char*> examples[] = {
        {"../../../g", "http://a/g"},
        {"../../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {".g", "http://a/b/c/.g"},
        {"g..", "http://a/b/c/g.."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"./g/.", "http://a/b/c/g/"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
        {"g;x=1/../y", "http://a/b/c/y"},
        {"g?y/./x", "http://a/b/c/g?y/./x"},
        {"g?y/../x", "http://a/b/c/g?y/../x"},
        {"g#s/./x", "http://a/b/c/g"},
        {"g#s/../x", "http://a/b/c/g"},
    };
    for (const auto& [ref, expected] : examples) CHECK(resolved(*base, ref) == expected);
    // Strict parsers (RFC 3986 §5.4.2) read "http:g" as an absolute URI without a host.
    CHECK(base->resolve("http:g").error().code == url_errc::missing_host);
}

TEST_CASE("references found in pages resolve against the page URL", "[url][resolve]") {
    const auto base = url::parse("https://Site.example:8443/dir/page.html?x=1");
    REQUIRE(base.has_value());
    CHECK(resolved(*base, "other.html") == "https://site.example:8443/dir/other.html");
    CHECK(resolved(*base, "  ../up.html\n") == "https://site.example:8443/up.html");
    CHECK(resolved(*base, "HTTP://Elsewhere.example/x") == "http://elsewhere.example/x");
    CHECK(resolved(*base, "//cdn.example/lib.js") == "https://cdn.example/lib.js");
    CHECK(resolved(*base, "?page=2") == "https://site.example:8443/dir/page.html?page=2");
    CHECK(resolved(*base, "#top") == "https://site.example:8443/dir/page.html?x=1");
    CHECK(resolved(*base, "a%20b c") == "https://site.example:8443/dir/a%20b%20c");
    CHECK(base->resolve("mailto:x@y").error().code == url_errc::unsupported_scheme);
    CHECK(base->resolve("//user@host/").error().code == url_errc::userinfo);
}

TEST_CASE("remove_dot_segments follows RFC 3986 5.2.4", "[url]") {
    CHECK(scraper::remove_dot_segments("/a/b/c/./../../g") == "/a/g");
    CHECK(scraper::remove_dot_segments("mid/content=5/../6") == "mid/6");
    CHECK(scraper::remove_dot_segments("/..") == "/");
    CHECK(scraper::remove_dot_segments("/.") == "/");
    CHECK(scraper::remove_dot_segments("") == "");
    CHECK(scraper::remove_dot_segments("/a//../b") == "/a/b");
}

TEST_CASE("host_key identifies the connection target", "[url][host_key]") {
    const auto a = url::parse("http://Example.com/a");
    const auto b = url::parse("http://example.com:80/b?c");
    const auto c = url::parse("https://example.com/a");
    const auto d = url::parse("http://example.com:8080/a");
    CHECK(a->key() == b->key());
    CHECK_FALSE(a->key() == c->key());
    CHECK_FALSE(a->key() == d->key());
    CHECK(a->key().to_string() == "http://example.com:80");
    CHECK(std::hash<scraper::host_key>{}(a->key()) == std::hash<scraper::host_key>{}(b->key()));
    CHECK(a->key() < d->key());
}
