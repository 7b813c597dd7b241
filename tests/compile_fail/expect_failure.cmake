# Runs `cmake --build BUILD_DIR --target TARGET` and succeeds only if the build
# fails with output matching EXPECT (a regular expression): a compile-fail test.
execute_process(
    COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
    RESULT_VARIABLE rc
    OUTPUT_VARIABLE out
    ERROR_VARIABLE out)
if(rc EQUAL 0)
    message(FATAL_ERROR "${TARGET} compiled, but it must not: the misuse is no longer caught")
endif()
if(NOT out MATCHES "${EXPECT}")
    message(FATAL_ERROR "${TARGET} failed to compile, but not with a diagnostic matching "
                        "'${EXPECT}':\n${out}")
endif()
message(STATUS "${TARGET}: rejected as expected")
