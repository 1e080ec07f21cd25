# Scheduler / engine benchmark helper (bench/run_engine.sh runs it): seeds
# scheduled deployments into a stopped server's store and reports lateness.
reprise_add_bench(bench_engine SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bench_engine.cpp
  LIBS reprise_server)
add_dependencies(bench_engine reprise-server reprise)
