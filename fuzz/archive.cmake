# Archive scanning / extraction fuzzer (seeds: fuzz/seed_archive_fuzz.sh).
reprise_add_fuzzer(archive_fuzz SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/archive_fuzz.cpp LIBS reprise_deployer)
# Coverage feedback inside the library under test, not only in the harness.
target_compile_options(reprise_deployer PRIVATE -fsanitize=fuzzer-no-link)
# The malicious corpus as seeds (tests/agents/deployer/CMakeLists.txt builds the writer).
add_dependencies(fuzz_targets write_archive_seeds)
