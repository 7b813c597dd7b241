# TetherDevFlags.cmake — the INTERFACE target tether_dev_flags.
#
# Warnings, -Werror, ASIO_NO_DEPRECATED and sanitizers for tether's OWN tests,
# examples and benchmarks. The tether target never links it, so consumers do not
# inherit any of it. Third-party headers (Asio, Catch2, fmt, benchmark) come in
# through IMPORTED or SYSTEM targets, so these warnings only fire on our code.
#
#   TETHER_WERROR    treat warnings as errors (default: ON when top level)
#   TETHER_SANITIZE  "" | address | undefined | address,undefined | thread
include_guard(GLOBAL)

option(TETHER_WERROR "Treat warnings as errors in tether's own targets" ${PROJECT_IS_TOP_LEVEL})
set(TETHER_SANITIZE "" CACHE STRING
    "Sanitizers for tether's own targets: empty, address, undefined, address,undefined or thread")
set_property(CACHE TETHER_SANITIZE PROPERTY STRINGS
    "" "address" "undefined" "address,undefined" "thread")

add_library(tether_dev_flags INTERFACE)

if(MSVC)
    target_compile_options(tether_dev_flags INTERFACE /W4 /permissive- $<$<BOOL:${TETHER_WERROR}>:/WX>)
else()
    target_compile_options(tether_dev_flags INTERFACE
        -Wall -Wextra -Wpedantic -Wshadow -Wconversion
        $<$<BOOL:${TETHER_WERROR}>:-Werror>)
endif()

# Catches Asio APIs removed in 1.33 (io_service, io_context::work, reset(), ...)
# while we still build against 1.22.
target_compile_definitions(tether_dev_flags INTERFACE ASIO_NO_DEPRECATED)

if(TETHER_SANITIZE)
    string(REPLACE "," ";" sanitizers "${TETHER_SANITIZE}")
    foreach(s IN LISTS sanitizers)
        if(NOT s MATCHES "^(address|undefined|thread)$")
            message(FATAL_ERROR "TETHER_SANITIZE: unknown sanitizer '${s}' "
                                "(use address, undefined, address,undefined or thread)")
        endif()
    endforeach()
    if("thread" IN_LIST sanitizers AND "address" IN_LIST sanitizers)
        message(FATAL_ERROR "TETHER_SANITIZE: thread and address cannot be combined")
    endif()
    if(MSVC)
        message(FATAL_ERROR "TETHER_SANITIZE is implemented for GCC and Clang only")
    endif()

    set(flags -fsanitize=${TETHER_SANITIZE} -fno-omit-frame-pointer)
    if("undefined" IN_LIST sanitizers)
        # A UBSan finding fails the test instead of printing and carrying on.
        list(APPEND flags -fno-sanitize-recover=all)
        # clang 14 UBSan cannot compile coroutines ("cannot represent a
        # difference across sections"); clang 16 is fine. 15 is untested: keep it.
        if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 16)
            list(APPEND flags -fno-sanitize=function)
        endif()
    endif()
    target_compile_options(tether_dev_flags INTERFACE ${flags})
    target_link_options(tether_dev_flags INTERFACE ${flags})
    message(STATUS "tether: sanitizers ${TETHER_SANITIZE}")
endif()
