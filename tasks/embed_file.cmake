# cmake -DIN=<file> -DOUT=<file.cc> -DSYMBOL=<name> -P embed_file.cmake
# Writes a C++ file defining `const char sf::tasks::<SYMBOL>[]` with IN's bytes, split
# into raw-string pieces below the compilers' literal limits.
file(READ "${IN}" content)
string(LENGTH "${content}" n)
set(out "// Generated from ${IN} by tasks/embed_file.cmake. Do not edit.\n")
string(APPEND out "#include \"tasks/data_files.h\"\nnamespace sf::tasks {\nconst char ${SYMBOL}[] =\n")
set(pos 0)
while(pos LESS n)
  string(SUBSTRING "${content}" ${pos} 16000 piece)
  string(APPEND out "R\"sfembed(${piece})sfembed\"\n")
  math(EXPR pos "${pos} + 16000")
endwhile()
string(APPEND out "\"\";\n}  // namespace sf::tasks\n")
file(WRITE "${OUT}.tmp" "${out}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
