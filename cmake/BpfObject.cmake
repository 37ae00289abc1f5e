# bpf_object(NAME SOURCE [HEADERS...])
#   Compiles SOURCE with clang for the BPF target, generates a libbpf skeleton
#   (NAME.skel.h) with bpftool, and exposes both through an INTERFACE target
#   NAME_skel. Headers listed are dependencies, so editing the shared map layout
#   rebuilds the object and every C++ file that includes the skeleton.
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
execute_process(COMMAND gcc -dumpmachine OUTPUT_VARIABLE BPF_HOST_TRIPLE
                OUTPUT_STRIP_TRAILING_WHITESPACE)

function(bpf_object NAME SOURCE)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${NAME}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${NAME}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -mcpu=v2 -Wall -Werror
            -I${PROJECT_SOURCE_DIR}/include -I/usr/include/${BPF_HOST_TRIPLE}
            -c ${CMAKE_CURRENT_SOURCE_DIR}/${SOURCE} -o ${obj}
    DEPENDS ${SOURCE} ${ARGN}
    COMMENT "BPF ${SOURCE}")
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${NAME} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${NAME}.skel.h")
  add_custom_target(${NAME}_skel_gen DEPENDS ${skel})
  add_library(${NAME}_skel INTERFACE)
  add_dependencies(${NAME}_skel ${NAME}_skel_gen)
  target_include_directories(${NAME}_skel INTERFACE ${CMAKE_CURRENT_BINARY_DIR})
  set(${NAME}_OBJECT ${obj} PARENT_SCOPE)
endfunction()
