# Fuzzer for agents/protocol/: the frame decoder and the message decoder.
reprise_add_fuzzer(protocol_fuzz
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/protocol_fuzz.cpp
  LIBS reprise_protocol)
# Coverage feedback inside the protocol's decoders, not only in the harness.
target_compile_options(reprise_protocol PRIVATE -fsanitize=fuzzer-no-link)
