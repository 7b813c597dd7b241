#include "robots.hpp"

#include <chrono>
#include <string>

#include "catch_shim.hpp"

using scraper::robots_rules;
using namespace std::chrono_literals;

namespace {

// RFC 9309 §5.1.
constexpr const char* rfc_example = "User-Agent: *\n"
                                    "Disallow: *.gif$\n"
                                    "Disallow: /example/\n"
                                    "Allow: /publications/\n"
                                    "\n"
                                    "User-Agent: foobot\n"
                                    "Disallow:/\n"
                                    "Allow:/example/page.html\n"
                                    "Allow:/example/allowed.gif\n"
                                    "\n"
                                    "User-Agent: barbot\n"
                                    "User-Agent: bazbot\n"
                                    "Disallow: /example/page.html\n"
                                    "\n"
                                    "User-Agent: quxbot\n";

} // namespace

TEST_CASE("RFC 9309 5.1: each crawler gets its own group", "[robots][rfc9309]") {
    SECTION("foobot") {
        const auto r = robots_rules::parse(rfc_example, "foobot");
        CHECK(r.allowed("/example/page.html"));
        CHECK(r.allowed("/example/allowed.gif"));
        CHECK_FALSE(r.allowed("/example/other.html"));
        CHECK_FALSE(r.allowed("/"));
        CHECK_FALSE(r.allowed("/publications/")); // foobot's own group, not "*"
    }
    SECTION("barbot and bazbot share a group") {
        for (const char* bot : {"barbot", "bazbot"}) {
            const auto r = robots_rules::parse(rfc_example, bot);
            CHECK_FALSE(r.allowed("/example/page.html"));
            CHECK(r.allowed("/example/other.html"));
            CHECK(r.allowed("/image.gif"));
        }
    }
    SECTION("quxbot has an empty group: everything is allowed") {
        const auto r = robots_rules::parse(rfc_example, "quxbot");
        CHECK(r.allowed("/example/page.html"));
        CHECK(r.allowed("/image.gif"));
        CHECK(r.rule_count() == 0);
    }
    SECTION("any other crawler falls back to the * group") {
        const auto r = robots_rules::parse(rfc_example, "otherbot");
        CHECK_FALSE(r.allowed("/image.gif"));
        CHECK_FALSE(r.allowed("/dir/image.gif"));
        CHECK(r.allowed("/image.gif.html")); // '$' anchors the end
        CHECK_FALSE(r.allowed("/example/"));
        CHECK_FALSE(r.allowed("/example/x"));
        CHECK(r.allowed("/publications/"));
        CHECK(r.allowed("/index.html"));
        CHECK(r.rule_count() == 3);
    }
}

TEST_CASE("RFC 9309 5.2: the longest match wins", "[robots][rfc9309]") {
    const auto r = robots_rules::parse("User-Agent: foobot\n"
                                       "Allow: /example/page/\n"
                                       "Disallow: /example/page/disallowed.gif\n",
                                       "foobot");
    CHECK(r.allowed("/example/page/"));
    CHECK(r.allowed("/example/page/allowed.gif"));
    CHECK_FALSE(r.allowed("/example/page/disallowed.gif"));
    CHECK(r.allowed("/somewhere/else"));
}

TEST_CASE("Allow wins a tie between equally long matches", "[robots][rfc9309]") {
    CHECK(robots_rules::parse("user-agent: *\ndisallow: /page\nallow: /page\n", "x")
              .allowed("/page"));
    CHECK(robots_rules::parse("user-agent: *\nallow: /page\ndisallow: /page\n", "x")
              .allowed("/page"));
    // Same pattern length with a wildcard.
    const auto r = robots_rules::parse("user-agent: *\ndisallow: /pa\nallow: /p*\n", "x");
    CHECK(r.allowed("/page"));
    // A longer disallow still beats a shorter allow.
    CHECK_FALSE(
        robots_rules::parse("user-agent: *\nallow: /p\ndisallow: /pa\n", "x").allowed("/page"));
}

TEST_CASE("RFC 9309 2.2.3: '*' matches any sequence and '$' anchors the end", "[robots][rfc9309]") {
    const auto r = robots_rules::parse("User-agent: *\n"
                                       "Disallow: /\n"
                                       "Allow: /this/*/exactly\n"
                                       "Allow: /this/path/exactly$\n"
                                       "Allow: /$\n",
                                       "x");
    CHECK(r.allowed("/this/path/exactly"));
    CHECK(r.allowed("/this/a/b/exactly"));
    CHECK(r.allowed("/this/x/exactly-and-more")); // prefix match
    CHECK(r.allowed("/"));
    CHECK_FALSE(r.allowed("/index.html"));
    CHECK_FALSE(r.allowed("/this/exactly"));

    const auto anchored = robots_rules::parse("User-agent: *\nDisallow: /path/exactly$\n", "x");
    CHECK_FALSE(anchored.allowed("/path/exactly"));
    CHECK(anchored.allowed("/path/exactly/"));
    CHECK(anchored.allowed("/path/exactly?query"));

    const auto mid =
        robots_rules::parse("User-agent: *\nDisallow: /a$b\n", "x"); // '$' inside is literal
    CHECK_FALSE(mid.allowed("/a$b/c"));
    CHECK(mid.allowed("/a"));

    const auto query = robots_rules::parse("User-agent: *\nDisallow: /*?sort=\n", "x");
    CHECK_FALSE(query.allowed("/list?sort=asc"));
    CHECK(query.allowed("/list?page=2"));
}

TEST_CASE("many wildcards do not backtrack exponentially", "[robots]") {
    std::string pattern = "/";
    for (int i = 0; i < 200; ++i) pattern += "*a";
    pattern += "$";
    const auto r = robots_rules::parse("User-agent: *\nDisallow: " + pattern + "\n", "x");
    CHECK(r.allowed("/" + std::string(5000, 'a') + "b"));
    CHECK_FALSE(r.allowed("/" + std::string(5000, 'a')));
}

TEST_CASE("RFC 9309 2.2.2: paths and patterns match after percent-encoding normalisation",
          "[robots][rfc9309]") {
    CHECK_FALSE(robots_rules::parse("User-agent: *\nDisallow: /foo/bar?baz=quz\n", "x")
                    .allowed("/foo/bar?baz=quz"));
    CHECK_FALSE(robots_rules::parse("User-agent: *\nDisallow: /foo/bar/\xE3\x83\x84\n", "x")
                    .allowed("/foo/bar/%E3%83%84"));
    CHECK_FALSE(robots_rules::parse("User-agent: *\nDisallow: /foo/bar/%E3%83%84\n", "x")
                    .allowed("/foo/bar/%e3%83%84"));
    CHECK_FALSE(robots_rules::parse("User-agent: *\nDisallow: /foo/bar/%62%61%7A\n", "x")
                    .allowed("/foo/bar/baz"));
    CHECK_FALSE(
        robots_rules::parse("User-agent: *\nDisallow: /~joe\n", "x").allowed("/%7Ejoe/index.html"));
    // An encoded reserved character stays distinct from the literal one.
    CHECK(robots_rules::parse("User-agent: *\nDisallow: /a%2Fb\n", "x").allowed("/a/b"));
}

TEST_CASE("user-agent matching uses the product token case-insensitively", "[robots]") {
    const char* txt = "User-agent: Tether-Scraper\nDisallow: /private\n\n"
                      "User-agent: *\nDisallow: /\n";
    for (const char* ua :
         {"tether-scraper", "TETHER-SCRAPER", "tether-scraper/0.1 (+https://example.com/bot)"}) {
        const auto r = robots_rules::parse(txt, ua);
        CHECK(r.allowed("/public"));
        CHECK_FALSE(r.allowed("/private"));
    }
    // A robots.txt line naming "tether-scraper/2.0" still names our token.
    CHECK(robots_rules::parse("User-agent: tether-scraper/2.0\nDisallow: /x\n", "tether-scraper")
              .rule_count() == 1);
    // A different token that merely starts like ours is another crawler.
    CHECK(robots_rules::parse("User-agent: tether\nDisallow: /\n", "tether-scraper").allowed("/a"));
    CHECK_FALSE(
        robots_rules::parse("User-agent: tether\nDisallow: /\n", "tether/1.0").allowed("/a"));
}

TEST_CASE("groups naming the crawler more than once are merged", "[robots]") {
    const auto r = robots_rules::parse("User-agent: bot\nDisallow: /a\n\n"
                                       "User-agent: other\nDisallow: /b\n\n"
                                       "User-agent: bot\nDisallow: /c\n",
                                       "bot");
    CHECK_FALSE(r.allowed("/a"));
    CHECK(r.allowed("/b"));
    CHECK_FALSE(r.allowed("/c"));
}

TEST_CASE("parsing tolerates comments and odd line endings and junk", "[robots]") {
    const std::string txt = "\xEF\xBB\xBF# a comment line\r"
                            "USER-AGENT : *   # trailing comment\r\n"
                            "this line has no colon\n"
                            "Sitemap: https://example.com/sitemap.xml\n"
                            "unknown-key: whatever\n"
                            "DISALLOW:/secret # why\n"
                            "Disallow:\n"
                            "Allow:\n";
    const auto r = robots_rules::parse(txt, "x");
    CHECK_FALSE(r.allowed("/secret/x"));
    CHECK(r.allowed("/public"));
    CHECK(r.rule_count() == 1);
}

TEST_CASE("rules before any user-agent line are ignored", "[robots]") {
    const auto r = robots_rules::parse("Disallow: /\nUser-agent: *\nDisallow: /x\n", "bot");
    CHECK(r.allowed("/a"));
    CHECK_FALSE(r.allowed("/x"));
}

TEST_CASE("an empty or missing robots.txt allows everything and /robots.txt is always allowed",
          "[robots]") {
    CHECK(robots_rules::parse("", "bot").allowed("/anything"));
    CHECK(robots_rules::allow_all().allowed("/anything"));
    CHECK_FALSE(robots_rules::disallow_all().allowed("/anything"));
    CHECK(robots_rules::disallow_all().allowed("/robots.txt"));
    CHECK(robots_rules::parse("User-agent: *\nDisallow: /\n", "bot").allowed("/robots.txt"));
}

TEST_CASE("only the first max_bytes of a robots.txt are parsed", "[robots]") {
    const std::string txt =
        "User-agent: *\nDisallow: /a\n" + std::string(1000, '#') + "\nDisallow: /b\n";
    const auto r = robots_rules::parse(txt, "bot", 100);
    CHECK_FALSE(r.allowed("/a"));
    CHECK(r.allowed("/b"));
}

TEST_CASE("Crawl-delay is read from the applicable group", "[robots][crawl_delay]") {
    const char* txt = "User-agent: *\nCrawl-delay: 10\n\n"
                      "User-agent: slowbot\nCrawl-delay: 0.5\nDisallow: /x\n\n"
                      "User-agent: badbot\nCrawl-delay: soon\n\n"
                      "User-agent: negbot\nCrawl-delay: -3\n\n"
                      "User-agent: hugebot\nCrawl-delay: 1e9\n\n"
                      "User-agent: bigbot\nCrawl-delay: 9999999\n";
    CHECK(robots_rules::parse(txt, "other").crawl_delay() == 10s);
    CHECK(robots_rules::parse(txt, "slowbot").crawl_delay() == 500ms);
    CHECK_FALSE(robots_rules::parse(txt, "badbot").crawl_delay().has_value());
    CHECK_FALSE(robots_rules::parse(txt, "negbot").crawl_delay().has_value());
    CHECK_FALSE(
        robots_rules::parse(txt, "hugebot").crawl_delay().has_value()); // not a plain decimal
    CHECK(robots_rules::parse(txt, "bigbot").crawl_delay() == 24h);     // clamped to one day
    CHECK_FALSE(robots_rules::parse("User-agent: *\nDisallow: /\n", "x").crawl_delay().has_value());
    // Merged groups: the largest delay.
    CHECK(
        robots_rules::parse("User-agent: a\nCrawl-delay: 2\n\nUser-agent: a\nCrawl-delay: 3\n", "a")
            .crawl_delay() == 3s);
}

TEST_CASE("the fetch outcome decides between parsing and allow-all and disallow-all",
          "[robots][rfc9309]") {
    const char* body = "User-agent: *\nDisallow: /private\n";
    const auto ok = scraper::robots_rules_for_status(200, body, "bot");
    CHECK_FALSE(ok.allowed("/private"));
    CHECK(ok.allowed("/public"));
    for (int status : {301, 404, 403, 410, 400}) {
        INFO(status);
        CHECK(scraper::robots_rules_for_status(status, body, "bot").allowed("/private"));
    }
    for (int status : {429, 500, 503, 504, 599}) {
        INFO(status);
        CHECK_FALSE(scraper::robots_rules_for_status(status, body, "bot").allowed("/public"));
    }
    CHECK_FALSE(scraper::robots_rules_unreachable().allowed("/public"));
}
