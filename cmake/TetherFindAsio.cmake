# TetherFindAsio.cmake — make sure the target asio::asio exists.
#
# Standalone Asio ships no CMake package; asio::asio is the de-facto target name
# (vcpkg, conan). tether's own build and the installed tether-config.cmake both
# use this file, so a consumer finds Asio the same way tether was built.
#
#   tether_find_asio(<version-var>)
#     1. reuse an existing asio::asio (a parent project's, vcpkg's, conan's);
#     2. else an installed config package: find_package(asio CONFIG QUIET);
#     3. else the headers: find_path(ASIO_INCLUDE_DIR asio.hpp) and an IMPORTED
#        INTERFACE target asio::asio (ASIO_STANDALONE, Threads::Threads).
#     Nothing is downloaded here. On success asio::asio exists and <version-var>
#     holds Asio's version ("1.22.1"), or "" if it could not be read.
#     Set ASIO_INCLUDE_DIR (or CMAKE_PREFIX_PATH) to point at a particular Asio.
#
#   tether_add_asio_target(<include-dir>)
#     Create the IMPORTED target asio::asio for the headers in <include-dir>.
#
#   tether_asio_version_from_dir(<include-dir> <version-var>)
#     Parse ASIO_VERSION (e.g. 102201) from <include-dir>/asio/version.hpp.
#
#   tether_asio_fixup(<target> <version>)
#     Asio < 1.26 on clang (libstdc++) leaves ASIO_HAS_CO_AWAIT undefined; add
#     $<$<CXX_COMPILER_ID:Clang>:ASIO_HAS_CO_AWAIT=1> to <target>'s interface.
include_guard(GLOBAL)

function(tether_asio_version_from_dir dir out_var)
    set(version "")
    if(EXISTS "${dir}/asio/version.hpp")
        file(STRINGS "${dir}/asio/version.hpp" line
            REGEX "^#[ \t]*define[ \t]+ASIO_VERSION[ \t]+[0-9]+")
        if(line MATCHES "ASIO_VERSION[ \t]+([0-9]+)")
            # ASIO_VERSION = major * 100000 + minor * 100 + patch
            math(EXPR major "${CMAKE_MATCH_1} / 100000")
            math(EXPR minor "${CMAKE_MATCH_1} / 100 % 1000")
            math(EXPR patch "${CMAKE_MATCH_1} % 100")
            set(version "${major}.${minor}.${patch}")
        endif()
    endif()
    set(${out_var} "${version}" PARENT_SCOPE)
endfunction()

function(tether_add_asio_target include_dir)
    find_package(Threads REQUIRED)
    add_library(asio::asio INTERFACE IMPORTED)
    # An IMPORTED target's include directories are SYSTEM for its consumers, so
    # our -Wconversion -Werror builds do not trip over Asio's own headers.
    set_target_properties(asio::asio PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${include_dir}"
        INTERFACE_COMPILE_DEFINITIONS ASIO_STANDALONE
        INTERFACE_LINK_LIBRARIES
            "Threads::Threads;$<$<PLATFORM_ID:Windows>:ws2_32>;$<$<PLATFORM_ID:Windows>:mswsock>")
endfunction()

function(tether_asio_fixup target version)
    if(NOT version OR version VERSION_GREATER_EQUAL 1.26)
        return()
    endif()
    get_target_property(aliased ${target} ALIASED_TARGET)
    if(aliased)
        set(target ${aliased})
    endif()
    set(fix "$<$<CXX_COMPILER_ID:Clang>:ASIO_HAS_CO_AWAIT=1>")
    get_target_property(defs ${target} INTERFACE_COMPILE_DEFINITIONS)
    if(NOT defs OR NOT fix IN_LIST defs)
        set_property(TARGET ${target} APPEND PROPERTY INTERFACE_COMPILE_DEFINITIONS "${fix}")
    endif()
endfunction()

function(tether_find_asio out_version)
    if(NOT TARGET asio::asio)
        find_package(asio CONFIG QUIET)
    endif()

    set(version "")
    if(TARGET asio::asio)
        # A parent's or a package's target: read the version from its headers.
        get_target_property(aliased asio::asio ALIASED_TARGET)
        if(aliased)
            get_target_property(dirs ${aliased} INTERFACE_INCLUDE_DIRECTORIES)
        else()
            get_target_property(dirs asio::asio INTERFACE_INCLUDE_DIRECTORIES)
        endif()
        foreach(dir IN LISTS dirs)
            if(dir MATCHES "^\\$<BUILD_INTERFACE:(.*)>$")
                set(dir "${CMAKE_MATCH_1}")
            endif()
            tether_asio_version_from_dir("${dir}" version)
            if(version)
                break()
            endif()
        endforeach()
        if(NOT version AND asio_VERSION)
            set(version "${asio_VERSION}")
        endif()
    else()
        find_path(ASIO_INCLUDE_DIR NAMES asio.hpp
            DOC "Directory that holds standalone Asio's asio.hpp")
        if(ASIO_INCLUDE_DIR AND EXISTS "${ASIO_INCLUDE_DIR}/asio/version.hpp")
            tether_add_asio_target("${ASIO_INCLUDE_DIR}")
            tether_asio_version_from_dir("${ASIO_INCLUDE_DIR}" version)
        endif()
    endif()

    if(TARGET asio::asio)
        tether_asio_fixup(asio::asio "${version}")
    endif()
    set(${out_version} "${version}" PARENT_SCOPE)
endfunction()
