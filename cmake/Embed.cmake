# reprise_embed(OUT_VAR SYMBOL BASE_DIR FILE...) generates a .cpp embedding the
# files (paths relative to BASE_DIR) and sets OUT_VAR to its path.
function(reprise_embed out_var symbol base)
  set(files ${ARGN})
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${symbol}.cpp")
  set(deps "")
  foreach(f IN LISTS files)
    list(APPEND deps "${base}/${f}")
  endforeach()
  string(REPLACE ";" "\\;" files_arg "${files}")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DBASE=${base} -DSYMBOL=${symbol} "-DFILES=${files_arg}"
            -P ${CMAKE_SOURCE_DIR}/cmake/embed_files.cmake
    DEPENDS ${deps} ${CMAKE_SOURCE_DIR}/cmake/embed_files.cmake
    COMMENT "Embedding ${symbol}")
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()
