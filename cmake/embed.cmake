# ss_embed(TARGET SYMBOL FILE): links FILE's bytes into TARGET as
#   extern const char SYMBOL[]; extern const unsigned long SYMBOL_size;
# followed by a NUL byte, through the assembler's .incbin, so that large assets
# cost no build time.
function(ss_embed target symbol file)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/embed_${symbol}.S")
  file(WRITE "${out}.in"
    "    .section .rodata\n"
    "    .global ${symbol}\n"
    "    .global ${symbol}_size\n"
    "    .balign 16\n"
    "${symbol}:\n"
    "    .incbin \"${file}\"\n"
    "${symbol}_end:\n"
    "    .byte 0\n"
    "    .balign 8\n"
    "${symbol}_size:\n"
    "    .quad ${symbol}_end - ${symbol}\n"
    "    .section .note.GNU-stack,\"\",@progbits\n")
  configure_file("${out}.in" "${out}" COPYONLY)
  set_source_files_properties("${out}" PROPERTIES OBJECT_DEPENDS "${file}")
  target_sources(${target} PRIVATE "${out}")
endfunction()
