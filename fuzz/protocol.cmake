# Fuzzer for agents/protocol/: the frame decoder and the message decoder.
reprise_add_fuzzer(protocol_fuzz
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/protocol_fuzz.cpp
  LIBS reprise_agents)
