// TLS for the HTTP client: an asio::ssl client context with peer verification,
// when the build found OpenSSL (SCRAPER_HAVE_TLS=1). Without it, https URLs
// fail per URL with fetch_errc::tls_unavailable; nothing else changes.
#pragma once

#include <tether/config.hpp>

#include <memory>
#include <string>

#ifndef SCRAPER_HAVE_TLS
#define SCRAPER_HAVE_TLS 0
#endif

#if SCRAPER_HAVE_TLS
#include <asio/ssl.hpp>
#endif

namespace scraper {

/// Whether this build can fetch https URLs.
inline constexpr bool tls_available = SCRAPER_HAVE_TLS != 0;

#if SCRAPER_HAVE_TLS
using tls_context = asio::ssl::context;
#else
/// Placeholder in builds without OpenSSL.
struct tls_context {};
#endif

/// How the client verifies servers.
struct tls_options {
    /// Verify the certificate chain and the host name (SNI is always sent).
    /// Turning it off is for tests against self-signed servers only.
    bool verify_peer = true;
    /// Extra trusted CA certificates (PEM file); the system's default trust
    /// store is always used as well.
    std::string ca_file;
};

/// A TLS 1.2+ client context with the system trust store (and `ca_file`);
/// null without OpenSSL.
/// @throws std::system_error if `ca_file` cannot be loaded.
[[nodiscard]] std::shared_ptr<tls_context> make_client_tls_context(const tls_options& options);

} // namespace scraper
