# Writes a C++ file holding the given files as byte arrays, so binaries are
# self-contained. Run as: cmake -DOUT=x.cpp -DBASE=dir -DSYMBOL=name -DFILES="a;b" -P embed_files.cmake
# The generated file defines `const reprise::EmbeddedFile* SYMBOL(size_t* count)`.
set(content "// Generated from files under ${BASE}; do not edit.\n#include \"common/embedded.h\"\n\nnamespace {\n")
set(table "")
set(index 0)
foreach(file IN LISTS FILES)
  file(READ "${BASE}/${file}" hex HEX)
  file(SIZE "${BASE}/${file}" size)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND content "const unsigned char kData${index}[] = {${bytes}0x00};\n")
  string(APPEND table "    {\"${file}\", reinterpret_cast<const char*>(kData${index}), ${size}},\n")
  math(EXPR index "${index} + 1")
endforeach()
string(APPEND content "const reprise::EmbeddedFile kFiles[] = {\n${table}    {nullptr, nullptr, 0}};\n}  // namespace\n\n")
string(APPEND content "namespace reprise {\nconst EmbeddedFile* ${SYMBOL}(size_t* count) {\n  *count = ${index};\n  return kFiles;\n}\n}  // namespace reprise\n")
file(WRITE "${OUT}.tmp" "${content}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
