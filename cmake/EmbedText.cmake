# cmake -DINPUT=file -DOUTPUT=file.cpp -DSYMBOL=name -P EmbedText.cmake
# Writes a C++ source defining `extern const std::string_view SYMBOL` with the
# bytes of INPUT, so the agent carries its default policy inside the binary.
file(READ ${INPUT} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," content "${content}")
file(WRITE ${OUTPUT}
  "// Generated from ${INPUT} by cmake/EmbedText.cmake; do not edit.\n"
  "#include <string_view>\n"
  "namespace xdpguard {\n"
  "static const char ${SYMBOL}_bytes[] = {${content} 0};\n"
  "extern const std::string_view ${SYMBOL}(${SYMBOL}_bytes, sizeof(${SYMBOL}_bytes) - 1);\n"
  "}\n")
