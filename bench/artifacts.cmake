# Archive extraction / scanning benchmarks and the artifact generator
# (bench/run_extract.sh runs them; others reuse gen_artifact).
reprise_add_bench(gen_artifact SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/gen_artifact.cpp LIBS reprise_deployer)
reprise_add_bench(bench_extract SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bench_extract.cpp LIBS reprise_deployer)
