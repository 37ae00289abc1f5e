# Third-party libraries, as the project's targets link them:
#   xdpguard_dep_bpf   libbpf, with libelf and zlib under it
#   xdpguard_dep_yaml  yaml-cpp
#   xdpguard_dep_log   spdlog on fmt
#   xdpguard_dep_json  nlohmann-json (header-only, static or not)
#
# XDPGUARD_STATIC (default ON; OFF under XDPGUARD_SANITIZE or XDPGUARD_FUZZ)
# links the `xdpguard` executable with -static, so that the one file runs on
# any x86-64 Linux whatever its userland (Rocky 8's glibc 2.28, Debian 11's
# 2.31): its only runtime need is the kernel. Debian ships libbpf.a, libelf.a,
# libz.a and libyaml-cpp.a but no libfmt.a or libspdlog.a, so with the option
# the targets above resolve to those archives and to the header-only forms of
# fmt and spdlog. Every executable then links the same archives (the tests
# test the code that ships); only the agent drops the dynamic loader.
# Sanitizer runtimes cannot be linked statically into a glibc executable, hence
# OFF with them.

if(XDPGUARD_SANITIZE OR XDPGUARD_FUZZ)
  set(static_default OFF)
else()
  set(static_default ON)
endif()
option(XDPGUARD_STATIC "Link the xdpguard executable statically (glibc, -static)"
       ${static_default})
if(XDPGUARD_STATIC AND (XDPGUARD_SANITIZE OR XDPGUARD_FUZZ))
  message(FATAL_ERROR "XDPGUARD_STATIC cannot be combined with sanitizers "
                      "(XDPGUARD_SANITIZE / XDPGUARD_FUZZ): add -DXDPGUARD_STATIC=OFF")
endif()

find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET libbpf)
find_package(yaml-cpp REQUIRED)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)

add_library(xdpguard_dep_bpf INTERFACE)
add_library(xdpguard_dep_yaml INTERFACE)
add_library(xdpguard_dep_log INTERFACE)
add_library(xdpguard_dep_json INTERFACE)
target_link_libraries(xdpguard_dep_json INTERFACE nlohmann_json::nlohmann_json)

# static_archive(VAR NAME): the full path of libNAME.a, or a configure error.
function(static_archive var name)
  find_library(XDPGUARD_ARCHIVE_${name} NAMES lib${name}.a)
  if(NOT XDPGUARD_ARCHIVE_${name})
    message(FATAL_ERROR "XDPGUARD_STATIC: lib${name}.a not found (scripts/install-deps.sh "
                        "installs the -dev packages that ship it), or -DXDPGUARD_STATIC=OFF")
  endif()
  set(${var} ${XDPGUARD_ARCHIVE_${name}} PARENT_SCOPE)
endfunction()

if(XDPGUARD_STATIC)
  # libbpf's own pkg-config file says what it needs under it
  # (Requires.private: libelf zlib -> -lbpf -lelf -lz), in link order.
  set(bpf_archives)
  foreach(name ${LIBBPF_STATIC_LIBRARIES})
    static_archive(archive ${name})
    list(APPEND bpf_archives ${archive})
  endforeach()
  target_link_libraries(xdpguard_dep_bpf INTERFACE ${bpf_archives})
  target_include_directories(xdpguard_dep_bpf INTERFACE ${LIBBPF_INCLUDE_DIRS})

  static_archive(yaml_archive yaml-cpp)
  target_link_libraries(xdpguard_dep_yaml INTERFACE ${yaml_archive})
  target_include_directories(xdpguard_dep_yaml INTERFACE
    $<TARGET_PROPERTY:yaml-cpp,INTERFACE_INCLUDE_DIRECTORIES>)

  # Debian's spdlog::spdlog_header_only links the compiled fmt::fmt; this is
  # the same headers over fmt's header-only target (FMT_HEADER_ONLY).
  # Without SPDLOG_COMPILED_LIB spdlog compiles itself into its includers.
  target_compile_definitions(xdpguard_dep_log INTERFACE SPDLOG_FMT_EXTERNAL)
  target_include_directories(xdpguard_dep_log INTERFACE
    $<TARGET_PROPERTY:spdlog::spdlog_header_only,INTERFACE_INCLUDE_DIRECTORIES>)
  target_link_libraries(xdpguard_dep_log INTERFACE fmt::fmt-header-only Threads::Threads)
else()
  target_link_libraries(xdpguard_dep_bpf INTERFACE PkgConfig::LIBBPF)
  target_link_libraries(xdpguard_dep_yaml INTERFACE yaml-cpp)
  target_link_libraries(xdpguard_dep_log INTERFACE spdlog::spdlog fmt::fmt)
endif()
