#include "html.hpp"

#include <chrono>
#include <string>
#include <vector>

#include "catch_shim.hpp"

using scraper::extract_html;

TEST_CASE("the first title is extracted and decoded with whitespace collapsed", "[html][title]") {
    const auto s = extract_html("<!DOCTYPE html><html><HEAD><Title>\n  Fish &amp; "
                                "Chips:\t&lt;best&gt; &quot;ever&quot; &#39;&#x41;&apos;\n"
                                "</TITLE><title>second</title></head></html>");
    CHECK(s.title == "Fish & Chips: <best> \"ever\" 'A'");
}

TEST_CASE("title edge cases", "[html][title]") {
    CHECK(extract_html("<p>no title</p>").title.empty());
    CHECK(extract_html("<title></title>").title.empty());
    CHECK(extract_html("<title>  </title>").title.empty());
    CHECK(extract_html("<title>unterminated   title").title == "unterminated title");
    // Title content is text: tags inside are not parsed.
    CHECK(extract_html("<title>a <b>bold</b> move</title>").title == "a <b>bold</b> move");
    CHECK(extract_html("<title lang=en>x</title >").title == "x");
    CHECK(extract_html("<titles>no</titles><title>yes</title>").title == "yes");
    CHECK(extract_html("<!-- <title>commented</title> --><title>real</title>").title == "real");
    CHECK(extract_html("<script>document.write('<title>js</title>')</script><title>real</title>")
              .title == "real");
    CHECK(extract_html("<title>caf&eacute; &nbsp;x</title>").title == "caf&eacute; \xC2\xA0x");
}

TEST_CASE("href links are extracted from a tags in document order", "[html][links]") {
    const auto s = extract_html("<a href=\"/double\">1</a>"
                                "<a href='/single'>2</a>"
                                "<a href=/unquoted>3</a>"
                                "<A HREF=\"/upper\">4</A>"
                                "<a class=x\nhref = \"/spaced\" >5</a>"
                                "<a href=\"/first\" href=\"/second\">6</a>"
                                "<a href=\"/with>gt\">7</a>"
                                "<a href=\"/q?a=1&amp;b=2\">8</a>"
                                "<a name=anchor>no href</a>"
                                "<abbr href=\"/not-a-link\">x</abbr>"
                                "<area href=\"/area\">"
                                "<a href=\"  /trimmed \n\">9</a>"
                                "<a/href=\"/slash\">10</a>");
    const std::vector<std::string> expected = {"/double",  "/single", "/unquoted", "/upper",
                                               "/spaced",  "/first",  "/with>gt",  "/q?a=1&b=2",
                                               "/trimmed", "/slash"};
    CHECK(s.links == expected);
    CHECK_FALSE(s.links_truncated);
}

TEST_CASE("javascript: mailto: tel: data: empty and fragment-only links are skipped",
          "[html][links]") {
    const auto s = extract_html("<a href=\"javascript:void(0)\">a</a>"
                                "<a href=\"JavaScript:alert(1)\">b</a>"
                                "<a href=\" java\tscript:alert(1)\">c</a>"
                                "<a href=\"mailto:someone@example.com\">d</a>"
                                "<a href=\"MAILTO:x@y\">e</a>"
                                "<a href=\"tel:+123\">f</a>"
                                "<a href=\"data:text/html,hi\">g</a>"
                                "<a href=\"\">h</a>"
                                "<a href>i</a>"
                                "<a href=\"#top\">j</a>"
                                "<a href=\"page#section\">k</a>"
                                "<a href=\"javascript.html\">l</a>");
    CHECK(s.links == std::vector<std::string>{"page#section", "javascript.html"});
}

TEST_CASE("links in comments and in script and style content are ignored", "[html][links]") {
    const auto s = extract_html(
        "<!-- <a href=\"/in-comment\">x</a> -->"
        "<!--><a href=\"/after-abrupt-comment\">ok</a>"
        "<!---><a href=\"/after-abrupt-comment-2\">ok</a>"
        "<script type=text/javascript>var s = '<a href=\"/in-script\">'; if (a < b) {}</script>"
        "<SCRIPT>'</scriptx><a href=\"/still-script\">'</SCRIPT >"
        "<style>a[href=\"/in-style\"] {}</style>"
        "<textarea><a href=\"/in-textarea\"></textarea>"
        "<![CDATA[ <a href=\"/cdata-bogus\"> ]]>"
        "<a href=\"/real\">real</a>"
        "<!-- unterminated comment <a href=\"/never\">");
    CHECK(s.links ==
          std::vector<std::string>{"/after-abrupt-comment", "/after-abrupt-comment-2", "/real"});
}

TEST_CASE("the first base href is reported", "[html][links]") {
    const auto s = extract_html(
        "<head><base href=\"https://cdn.example/\"><base href=\"/ignored/\"></head><a href=x>");
    REQUIRE(s.base_href.has_value());
    CHECK(*s.base_href == "https://cdn.example/");
    CHECK(s.links == std::vector<std::string>{"x"});
    CHECK_FALSE(extract_html("<a href=x>").base_href.has_value());
}

TEST_CASE("the number of links is capped", "[html][links]") {
    std::string page;
    for (int i = 0; i < 50; ++i) page += "<a href=\"/p" + std::to_string(i) + "\">x</a>";
    scraper::html_options options;
    options.max_links = 10;
    const auto s = extract_html(page, options);
    CHECK(s.links.size() == 10);
    CHECK(s.links.back() == "/p9");
    CHECK(s.links_truncated);
}

TEST_CASE("malformed markup never fails", "[html]") {
    const char* inputs[] = {
        "",         "<",          "<a",         "<a href",
        "<a href=", "<a href=\"", "<a href='x", "</",
        "<!",       "<!-",        "<!--",       "<script>",
        "<script",  "<title",     "a < b > c",  "<<<<a href=y>>>",
        "&",        "&#",         "&#x;",       "<a href=\"&#xFFFFFFFFFF;&#0;&#55296;\">"};
    for (const char* in : inputs) {
        INFO(in);
        const auto s = extract_html(in);
        CHECK(s.links.size() <= 1);
    }
    CHECK(extract_html("<<<<a href=y>>>").links == std::vector<std::string>{"y"});
    // Invalid code points become U+FFFD.
    CHECK(extract_html("<a href=\"&#xFFFFFFFFFF;&#0;&#55296;\">").links ==
          std::vector<std::string>{"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"});
}

TEST_CASE("entity decoding", "[html][entities]") {
    using scraper::decode_html_entities;
    CHECK(decode_html_entities("a &amp; b") == "a & b");
    CHECK(decode_html_entities("&lt;&gt;&quot;&apos;&nbsp;") == "<>\"'\xC2\xA0");
    CHECK(decode_html_entities("&#65;&#x42;&#X43;&#68") == "ABCD");
    CHECK(decode_html_entities("&#x20AC; &#128512;") == "\xE2\x82\xAC \xF0\x9F\x98\x80");
    CHECK(decode_html_entities("&amp &unknown; &; & x") == "&amp &unknown; &; & x");
    CHECK(decode_html_entities("&amp;amp;") == "&amp;");
    CHECK(decode_html_entities("&#;&#x;") == "&#;&#x;");
}

TEST_CASE("whitespace collapsing", "[html]") {
    CHECK(scraper::collapse_whitespace("  a \t\n b\r\n\fc  ") == "a b c");
    CHECK(scraper::collapse_whitespace("") == "");
    CHECK(scraper::collapse_whitespace(" \n ") == "");
}

TEST_CASE("extraction is linear on adversarial input", "[html][performance]") {
    // Each of these is quadratic for a naive scanner that restarts searches.
    const std::string inputs[] = {
        std::string(400000, '<'),
        [] {
            std::string s;
            for (int i = 0; i < 100000; ++i) s += "<a x";
            return s;
        }(),
        [] {
            std::string s = "<script>";
            for (int i = 0; i < 100000; ++i) s += "</scrip";
            return s;
        }(),
        [] {
            std::string s;
            for (int i = 0; i < 100000; ++i) s += "<!--";
            return s;
        }(),
        [] {
            std::string s;
            for (int i = 0; i < 100000; ++i) s += "&#1";
            return s;
        }(),
    };
    for (const std::string& in : inputs) {
        const auto start = std::chrono::steady_clock::now();
        (void)extract_html(in);
        const auto elapsed = std::chrono::steady_clock::now() - start;
        CHECK(elapsed < std::chrono::seconds(1));
    }
}
