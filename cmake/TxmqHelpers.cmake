# txmq_add_module(NAME SOURCES ... [DEPS ...] [PRIVATE_DEPS ...])
# One library per module, aliased txmq::NAME: static, or shared with
# TXMQ_SHARED_LIBS (versioned by the minor version: before 1.0 a minor
# version may change the ABI, so libtxmq_producer.so.0.1). Public headers live in
# <module>/include/txmq/ (installed); everything else in <module>/src/ is
# private. In-tree code includes private headers from the repository root
# ("protocol/src/codec.h"), which is only on the build-tree include path.
# The public headers need C++20, so every module says so as a usage
# requirement: a C++17 project that links an installed txmq::producer gets
# its standard raised by CMake instead of a compile error in status.h.
function(txmq_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  if(TXMQ_SHARED_LIBS)
    add_library(txmq_${name} SHARED ${ARG_SOURCES})
    # $ORIGIN: an installed library finds the txmq libraries it needs
    # beside it (an application links only the ones it names).
    set_target_properties(txmq_${name} PROPERTIES
      VERSION ${PROJECT_VERSION}
      SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
      INSTALL_RPATH "$ORIGIN")
  else()
    add_library(txmq_${name} STATIC ${ARG_SOURCES})
  endif()
  add_library(txmq::${name} ALIAS txmq_${name})
  set_target_properties(txmq_${name} PROPERTIES OUTPUT_NAME txmq_${name} EXPORT_NAME ${name})
  target_include_directories(txmq_${name}
    PUBLIC
      $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE
      ${PROJECT_SOURCE_DIR}
      ${PROJECT_BINARY_DIR}/gen)
  target_compile_features(txmq_${name} PUBLIC cxx_std_20)
  target_link_libraries(txmq_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
endfunction()

# txmq_precompile(TARGET HEADER)
# With TXMQ_PRECOMPILED_HEADERS, HEADER is parsed once for TARGET and
# included ahead of each of its sources: for the test executables, whose
# files share gtest, Cap'n Proto and the client headers. (Tried on the
# libraries and txmqctl too: little gain there, where code generation
# dominates, and GCC 12 then reported false -Warray-bounds.) Sources still
# include what they use, so the build with the option off stays correct.
function(txmq_precompile target header)
  if(TXMQ_PRECOMPILED_HEADERS)
    target_precompile_headers(${target} PRIVATE ${header})
  endif()
endfunction()
