// The scraper's command line (sans-I/O: parsing only, so it is unit-tested).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "crawler.hpp"
#include "demo_site.hpp"
#include "result.hpp"

namespace scraper {

enum class run_mode : unsigned char {
    crawl, ///< URLs from the command line / --urls, or resume from --db
    demo,  ///< serve the built-in site in-process and crawl it
    serve, ///< only serve the built-in site (--serve PORT)
    help,
};

struct cli_options {
    run_mode mode = run_mode::crawl;
    crawl_config crawl;
    /// --urls FILE: one URL per line; blank lines and lines starting with '#' ignored.
    std::optional<std::string> urls_file;
    /// --serve PORT (0: any free port).
    std::uint16_t serve_port = 0;
    /// The built-in site (--demo, --serve).
    site_options site;
    bool quiet = false;
    /// --db was given (the demo otherwise uses a temporary database).
    bool db_given = false;
};

/// Parses the arguments after the program name. Flags take their value as the
/// next argument or after '=' (`--rate 5`, `--rate=5`); "--" ends the flags.
///
/// @returns the options, or a one-line message naming the offending argument
///          (the caller prints it and exits with status 2).
[[nodiscard]] result<cli_options, std::string>
parse_command_line(std::span<const char* const> args);

/// The --help text.
[[nodiscard]] std::string usage_text();

} // namespace scraper
