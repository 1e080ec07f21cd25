# Agent deployment benchmarks (bench/run_agents.sh runs them): a real hub in
# the benchmark process and real reprise-agent processes on loopback.
reprise_add_bench(bench_agents SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bench_agents.cpp
  LIBS reprise_server reprise_hub OpenSSL::SSL OpenSSL::Crypto)
add_dependencies(bench_agents reprise-agent gen_artifact)
