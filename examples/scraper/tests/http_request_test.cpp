#include "http_request.hpp"

#include <stdexcept>
#include <string>

#include "catch_shim.hpp"
#include "http_parser.hpp"

using scraper::http_method;
using scraper::request_options;
using scraper::serialize_request;
using scraper::url;

TEST_CASE("a GET request carries Host and User-Agent and Accept-Encoding and Connection",
          "[http_request]") {
    const auto u = url::parse("http://Example.com/a/b?x=1#frag");
    REQUIRE(u.has_value());
    request_options options;
    options.user_agent = "tether-scraper/0.1 (+https://example.com/bot)";
    options.accept_gzip = true;
    CHECK(serialize_request(http_method::get, *u, options) ==
          "GET /a/b?x=1 HTTP/1.1\r\n"
          "Host: example.com\r\n"
          "User-Agent: tether-scraper/0.1 (+https://example.com/bot)\r\n"
          "Accept-Encoding: gzip\r\n"
          "Connection: keep-alive\r\n"
          "\r\n");
}

TEST_CASE("HEAD requests with a non-default port and no gzip and close and extra headers",
          "[http_request]") {
    const auto u = url::parse("https://[::1]:8443/");
    REQUIRE(u.has_value());
    request_options options;
    options.user_agent = "bot";
    options.accept_gzip = false;
    options.keep_alive = false;
    options.extra_headers = {{"Accept", "text/html"}, {"Accept-Language", "en"}};
    CHECK(serialize_request(http_method::head, *u, options) == "HEAD / HTTP/1.1\r\n"
                                                               "Host: [::1]:8443\r\n"
                                                               "User-Agent: bot\r\n"
                                                               "Connection: close\r\n"
                                                               "Accept: text/html\r\n"
                                                               "Accept-Language: en\r\n"
                                                               "\r\n");
}

TEST_CASE("the default options advertise gzip only when it can be decoded", "[http_request]") {
    const auto u = url::parse("http://h/");
    const std::string req = serialize_request(http_method::get, *u);
    CHECK((req.find("Accept-Encoding: gzip\r\n") != std::string::npos) == scraper::gzip_available);
    CHECK(req.find("User-Agent: tether-scraper/") != std::string::npos);
}

TEST_CASE("header injection through options is refused", "[http_request][errors]") {
    const auto u = url::parse("http://h/");
    request_options bad_ua;
    bad_ua.user_agent = "bot\r\nX-Injected: 1";
    CHECK_THROWS_AS(serialize_request(http_method::get, *u, bad_ua), std::invalid_argument);
    request_options bad_name;
    bad_name.extra_headers = {{"Bad Name", "x"}};
    CHECK_THROWS_AS(serialize_request(http_method::get, *u, bad_name), std::invalid_argument);
    request_options bad_value;
    bad_value.extra_headers = {{"X-A", "a\nb"}};
    CHECK_THROWS_AS(serialize_request(http_method::get, *u, bad_value), std::invalid_argument);
}

TEST_CASE("the request target of a normalised URL is always safe to send", "[http_request]") {
    const auto u = url::parse("http://h/a b/\"q\"?x=<y> z");
    REQUIRE(u.has_value());
    const std::string req = serialize_request(http_method::get, *u);
    CHECK(req.rfind("GET /a%20b/%22q%22?x=%3Cy%3E%20z HTTP/1.1\r\n", 0) == 0);
}
