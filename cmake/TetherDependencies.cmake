# TetherDependencies.cmake — tether's dependencies for its own build.
#
# Each tether_require_<dep>() uses an installed package when there is one and
# otherwise fetches a pinned release with FetchContent (needs internet). Only
# tether_require_asio() is called unconditionally; the others are called by the
# directory that needs them (tests/, examples/, benchmarks/).
#
#   tether_require_asio()       target asio::asio; sets TETHER_ASIO_VERSION and
#                               TETHER_ASIO_FETCHED
#   tether_require_catch2()     Catch2::Catch2 (v2 or v3) and catch_discover_tests();
#                               sets TETHER_CATCH2_VERSION
#   tether_require_fmt()        fmt::fmt
#   tether_require_benchmark()  benchmark::benchmark
#
# To use a local copy instead of a download, pass e.g.
# -DFETCHCONTENT_SOURCE_DIR_ASIO=/path/to/asio (FetchContent's own override).
include_guard(GLOBAL)
include(FetchContent)
include(${CMAKE_CURRENT_LIST_DIR}/TetherFindAsio.cmake)

# Pinned fallbacks. The SHA-256 sums could not be computed on the (offline)
# machines that wrote this file: they are the pins other public projects use for
# the same archives. A wrong sum fails the download loudly; it never builds
# something unexpected.
set(TETHER_ASIO_FETCH_URL
    "https://github.com/chriskohlhoff/asio/archive/refs/tags/asio-1-38-0.tar.gz")
set(TETHER_ASIO_FETCH_SHA256
    "5cf78ede456fd13b95fe692711f4f689be26c826f1f5541c7a1df3aa32bd9dbd")
set(TETHER_CATCH2_FETCH_URL
    "https://github.com/catchorg/Catch2/archive/refs/tags/v3.8.1.tar.gz")
set(TETHER_CATCH2_FETCH_SHA256
    "18b3f70ac80fccc340d8c6ff0f339b2ae64944782f8d2fca2bd705cf47cadb79")
set(TETHER_FMT_FETCH_URL
    "https://github.com/fmtlib/fmt/archive/refs/tags/11.1.4.tar.gz")
set(TETHER_FMT_FETCH_SHA256
    "ac366b7b4c2e9f0dde63a59b3feb5ee59b67974b14ee5dc9ea8ad78aa2c1ee1e")
set(TETHER_BENCHMARK_FETCH_URL
    "https://github.com/google/benchmark/archive/refs/tags/v1.9.1.tar.gz")
set(TETHER_BENCHMARK_FETCH_SHA256
    "32131c08ee31eeff2c8968d7e874f3cb648034377dfc32a4c377fa8796d84981")

function(tether_require_asio)
    if(TARGET asio::asio)
        set(how "the existing target asio::asio")
    endif()
    tether_find_asio(version)
    set(fetched OFF)
    if(TARGET asio::asio)
        if(NOT how AND asio_DIR)
            set(how "config package in ${asio_DIR}")
        elseif(NOT how)
            set(how "headers in ${ASIO_INCLUDE_DIR}")
        endif()
    else()
        message(STATUS "tether: standalone Asio not found; fetching ${TETHER_ASIO_FETCH_URL}")
        # Asio has no CMake build: SOURCE_SUBDIR names a directory that does not
        # exist, so FetchContent_MakeAvailable only downloads and unpacks it.
        FetchContent_Declare(asio
            URL ${TETHER_ASIO_FETCH_URL}
            URL_HASH SHA256=${TETHER_ASIO_FETCH_SHA256}
            DOWNLOAD_EXTRACT_TIMESTAMP TRUE
            SOURCE_SUBDIR tether-no-cmake-build)
        FetchContent_MakeAvailable(asio)
        # Tags from 1.38 keep the headers in include/ at the top (asio/include is
        # a symlink); tags up to 1.36 only in asio/include.
        foreach(dir IN ITEMS "${asio_SOURCE_DIR}/include" "${asio_SOURCE_DIR}/asio/include")
            if(EXISTS "${dir}/asio.hpp" AND EXISTS "${dir}/asio/version.hpp")
                tether_add_asio_target("${dir}")
                tether_asio_version_from_dir("${dir}" version)
                tether_asio_fixup(asio::asio "${version}")
                break()
            endif()
        endforeach()
        if(NOT TARGET asio::asio)
            message(FATAL_ERROR "tether: fetched Asio into ${asio_SOURCE_DIR} but found "
                                "no asio.hpp in include/ or asio/include/")
        endif()
        set(fetched ON)
        set(how "fetched into ${asio_SOURCE_DIR}")
    endif()
    if(NOT version)
        set(version "unknown")
    endif()
    message(STATUS "tether: Asio ${version} (${how})")
    set(TETHER_ASIO_VERSION "${version}" PARENT_SCOPE)
    set(TETHER_ASIO_FETCHED ${fetched} PARENT_SCOPE)
    # Also visible to a parent project that added tether as a subdirectory.
    set(TETHER_ASIO_VERSION "${version}" CACHE INTERNAL "Asio version tether builds against")
endfunction()

# A macro: the Catch2 package appends to CMAKE_MODULE_PATH in the caller's scope.
macro(tether_require_catch2)
    if(NOT TARGET Catch2::Catch2)
        # Unversioned on purpose: both v2 and v3 install SameMajorVersion files.
        find_package(Catch2 QUIET)
        if(Catch2_FOUND)
            list(APPEND CMAKE_MODULE_PATH "${Catch2_DIR}")
            set(TETHER_CATCH2_VERSION "${Catch2_VERSION}")
        else()
            message(STATUS "tether: Catch2 not found; fetching ${TETHER_CATCH2_FETCH_URL}")
            FetchContent_Declare(Catch2
                URL ${TETHER_CATCH2_FETCH_URL}
                URL_HASH SHA256=${TETHER_CATCH2_FETCH_SHA256}
                DOWNLOAD_EXTRACT_TIMESTAMP TRUE
                SYSTEM)
            set(CATCH_INSTALL_DOCS OFF CACHE BOOL "")
            set(CATCH_INSTALL_EXTRAS OFF CACHE BOOL "")
            FetchContent_MakeAvailable(Catch2)
            list(APPEND CMAKE_MODULE_PATH "${catch2_SOURCE_DIR}/extras")
            set(TETHER_CATCH2_VERSION "3 (fetched)")
        endif()
    endif()
    include(Catch) # catch_discover_tests(), from v2's or v3's package
    message(STATUS "tether: Catch2 ${TETHER_CATCH2_VERSION}")
endmacro()

macro(tether_require_fmt)
    if(NOT TARGET fmt::fmt)
        find_package(fmt QUIET)
        if(NOT fmt_FOUND)
            message(STATUS "tether: fmt not found; fetching ${TETHER_FMT_FETCH_URL}")
            FetchContent_Declare(fmt
                URL ${TETHER_FMT_FETCH_URL}
                URL_HASH SHA256=${TETHER_FMT_FETCH_SHA256}
                DOWNLOAD_EXTRACT_TIMESTAMP TRUE
                SYSTEM)
            FetchContent_MakeAvailable(fmt)
        endif()
    endif()
endmacro()

macro(tether_require_benchmark)
    if(NOT TARGET benchmark::benchmark)
        find_package(benchmark QUIET)
        if(NOT benchmark_FOUND)
            message(STATUS "tether: Google Benchmark not found; fetching ${TETHER_BENCHMARK_FETCH_URL}")
            FetchContent_Declare(benchmark
                URL ${TETHER_BENCHMARK_FETCH_URL}
                URL_HASH SHA256=${TETHER_BENCHMARK_FETCH_SHA256}
                DOWNLOAD_EXTRACT_TIMESTAMP TRUE
                SYSTEM)
            set(BENCHMARK_ENABLE_TESTING OFF CACHE BOOL "")
            set(BENCHMARK_ENABLE_GTEST_TESTS OFF CACHE BOOL "")
            set(BENCHMARK_ENABLE_INSTALL OFF CACHE BOOL "")
            set(BENCHMARK_INSTALL_DOCS OFF CACHE BOOL "")
            FetchContent_MakeAvailable(benchmark)
        endif()
    endif()
endmacro()
