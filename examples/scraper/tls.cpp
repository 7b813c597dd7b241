#include "tls.hpp"

namespace scraper {

std::shared_ptr<tls_context> make_client_tls_context(const tls_options& options) {
#if SCRAPER_HAVE_TLS
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    ctx->set_default_verify_paths();
    if (!options.ca_file.empty()) ctx->load_verify_file(options.ca_file);
    ctx->set_verify_mode(options.verify_peer ? asio::ssl::verify_peer : asio::ssl::verify_none);
    return ctx;
#else
    (void)options;
    return nullptr;
#endif
}

} // namespace scraper
