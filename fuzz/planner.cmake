# Fuzzers for planner/: the plan and application-spec parsers.
reprise_add_fuzzer(plan_parser_fuzz
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/plan_parser_fuzz.cpp
  LIBS reprise_planner)
