# Installs the official client SDKs the server tests drive (openai v4, @anthropic-ai/sdk), the
# reference MCP servers the agent tests use, and puppeteer-core (Apache-2.0; drives Debian's
# chromium for the web chat test, downloads no browser) into PREFIX once; fails with a clear
# message without network.
set(PACKAGES openai@4 @anthropic-ai/sdk@0.60.0 @modelcontextprotocol/server-everything@2026.8.31
             @modelcontextprotocol/server-filesystem@2026.8.31 @modelcontextprotocol/server-memory@2026.8.31
             puppeteer-core@24.43.1)
if(EXISTS "${PREFIX}/node_modules/openai/package.json" AND EXISTS "${PREFIX}/node_modules/@anthropic-ai/sdk/package.json"
   AND EXISTS "${PREFIX}/node_modules/@modelcontextprotocol/server-memory/package.json"
   AND EXISTS "${PREFIX}/node_modules/puppeteer-core/package.json")
  message(STATUS "client SDK npm packages already installed in ${PREFIX}")
  return()
endif()
file(MAKE_DIRECTORY "${PREFIX}")
execute_process(COMMAND "${NPM}" install --no-audit --no-fund --loglevel=error --prefix "${PREFIX}" ${PACKAGES}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 280)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "server tests: 'npm install ${PACKAGES}' into ${PREFIX} failed (exit ${rc}). "
                      "These tests need Node.js 20 with npm and access to the npm registry.\n${out}\n${err}")
endif()
message(STATUS "installed ${PACKAGES} into ${PREFIX}")
