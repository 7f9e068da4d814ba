# Installs the openai npm package (v4) into PREFIX once; fails with a clear message without network.
if(EXISTS "${PREFIX}/node_modules/openai/package.json")
  message(STATUS "openai npm package already installed in ${PREFIX}")
  return()
endif()
file(MAKE_DIRECTORY "${PREFIX}")
execute_process(COMMAND "${NPM}" install --no-audit --no-fund --loglevel=error --prefix "${PREFIX}" openai@4
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 280)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "server tests: 'npm install openai@4' into ${PREFIX} failed (exit ${rc}). "
                      "These tests need Node.js 20 with npm and access to the npm registry.\n${out}\n${err}")
endif()
message(STATUS "installed openai npm package into ${PREFIX}")
