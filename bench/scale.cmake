# Scale-out benchmark helper (bench/run_scale_out.sh runs it): a throwaway
# PostgreSQL 15 cluster, the tests' own (tests/support/pg_cluster.h).
reprise_add_bench(bench_pg SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bench_pg.cpp
  LIBS reprise_pg_cluster)
