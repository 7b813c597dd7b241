// HTTPS through the client against a loopback TLS server with a self-signed
// certificate made here (OpenSSL): trusted through tls_options::ca_file it
// works (SNI-less IP literal, host-name verification against the IP SAN);
// untrusted, or for another name, the request fails with tls_failed.
#include <tether/task.hpp>
#include <tether/task_group.hpp>

#include "catch_shim.hpp"
#include "http_client.hpp"

#if SCRAPER_HAVE_TLS
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <unistd.h>

using namespace std::chrono_literals;
using scraper::fetch_errc;
using scraper::fetch_error;

namespace {

using tcp = asio::ip::tcp;

struct pkey_free {
    void operator()(EVP_PKEY* p) const noexcept {
        EVP_PKEY_free(p);
    }
};
struct x509_free {
    void operator()(X509* p) const noexcept {
        X509_free(p);
    }
};

// A self-signed CA:TRUE certificate for `san` ("IP:127.0.0.1", …), written as
// PEM to a temporary file (removed on destruction).
struct self_signed {
    std::unique_ptr<EVP_PKEY, pkey_free> key;
    std::unique_ptr<X509, x509_free> cert;
    std::filesystem::path pem;

    explicit self_signed(const char* san) {
        key.reset(EVP_EC_gen("P-256"));
        REQUIRE(key);
        cert.reset(X509_new());
        X509* x = cert.get();
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, key.get());
        X509_NAME* name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("scraper test"), -1, -1,
                                   0);
        X509_set_issuer_name(x, name);
        for (const auto& [nid, value] : {std::pair{NID_subject_alt_name, san},
                                         std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
            X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, nid, value);
            REQUIRE(ext != nullptr);
            X509_add_ext(x, ext, -1);
            X509_EXTENSION_free(ext);
        }
        REQUIRE(X509_sign(x, key.get(), EVP_sha256()) > 0);

        static std::atomic<int> counter{0};
        pem = std::filesystem::temp_directory_path() /
              ("scraper_tls_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) +
               ".pem");
        std::FILE* f = std::fopen(pem.c_str(), "w");
        REQUIRE(f != nullptr);
        PEM_write_X509(f, x);
        std::fclose(f);
    }
    self_signed(const self_signed&) = delete;
    self_signed& operator=(const self_signed&) = delete;
    ~self_signed() {
        std::error_code ignored;
        std::filesystem::remove(pem, ignored);
    }
};

// Serves every connection: TLS handshake, one request, one response.
tether::task<void> tls_server(tcp::acceptor& acceptor, asio::ssl::context& ctx) {
    for (;;) {
        tcp::socket raw = co_await acceptor.async_accept(tether::use_task);
        asio::ssl::stream<tcp::socket> s(std::move(raw), ctx);
        try {
            co_await s.async_handshake(asio::ssl::stream_base::server, tether::use_task);
            std::string buf;
            std::array<char, 4096> chunk{};
            while (buf.find("\r\n\r\n") == std::string::npos) {
                const std::size_t n =
                    co_await s.async_read_some(asio::buffer(chunk), tether::use_task);
                buf.append(chunk.data(), n);
            }
            const std::string_view reply =
                "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecret";
            co_await asio::async_write(s, asio::buffer(reply.data(), reply.size()),
                                       tether::use_task);
        } catch (const std::system_error&) {
            // the client refused the certificate
        }
    }
}

// Fetches `target` with `opts` from the server; the error code, or nullopt
// and the body.
struct outcome {
    std::optional<fetch_errc> error;
    std::string body;
};

outcome fetch_over_tls(const self_signed& cert, const scraper::tls_options& opts,
                       const std::string& host) {
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
    asio::ssl::context server_ctx(asio::ssl::context::tls_server);
    REQUIRE(SSL_CTX_use_certificate(server_ctx.native_handle(), cert.cert.get()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey(server_ctx.native_handle(), cert.key.get()) == 1);

    scraper::client_options o;
    o.tls = opts;
    o.request_timeout = 5s;
    scraper::http_client client(o);
    const auto target = scraper::url::parse("https://" + host + ":" +
                                            std::to_string(acceptor.local_endpoint().port()) + "/");
    REQUIRE(target);

    outcome out;
    auto body = [&]() -> tether::task<void> {
        co_await tether::with_task_group([&](tether::task_group& tg) -> tether::task<void> {
            tether::child<void> srv = tg.spawn(tls_server(acceptor, server_ctx));
            try {
                scraper::http_response r = co_await client.exchange(*target);
                out.body = std::move(r.body);
            } catch (const fetch_error& e) {
                out.error = e.code();
            }
            srv.cancel();
        });
    };
    tether::run(io, body());
    return out;
}

} // namespace

TEST_CASE("https: a trusted certificate for the IP works, with host-name verification",
          "[client][tls]") {
    const self_signed cert("IP:127.0.0.1");
    scraper::tls_options opts;
    opts.ca_file = cert.pem.string();
    const outcome o = fetch_over_tls(cert, opts, "127.0.0.1");
    CHECK_FALSE(o.error);
    CHECK(o.body == "secret");
}

TEST_CASE("https: an untrusted certificate, or one for another name, is tls_failed",
          "[client][tls]") {
    SECTION("not trusted") {
        const self_signed cert("IP:127.0.0.1");
        const outcome o = fetch_over_tls(cert, scraper::tls_options{}, "127.0.0.1");
        CHECK(o.error == fetch_errc::tls_failed);
    }
    SECTION("trusted, but issued for another address") {
        const self_signed cert("IP:127.0.0.2");
        scraper::tls_options opts;
        opts.ca_file = cert.pem.string();
        const outcome o = fetch_over_tls(cert, opts, "127.0.0.1");
        CHECK(o.error == fetch_errc::tls_failed);
    }
    SECTION("verification off (tests only) accepts it") {
        const self_signed cert("IP:127.0.0.2");
        scraper::tls_options opts;
        opts.verify_peer = false;
        const outcome o = fetch_over_tls(cert, opts, "127.0.0.1");
        CHECK_FALSE(o.error);
        CHECK(o.body == "secret");
    }
}
#endif
