# HTTP server benchmark (bench/run_http.sh runs it): slow clients and many
# live log streams against a real reprise-server process on loopback.
reprise_add_bench(bench_http SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bench_http.cpp LIBS Threads::Threads)
add_dependencies(bench_http reprise-server)
