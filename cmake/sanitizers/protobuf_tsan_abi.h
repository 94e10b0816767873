// Included before every C++ file of a target that uses protobuf in an SF_TSAN build
// (cmake/SfSanitizers.cmake, `-include`).
//
// Debian's libprotobuf is compiled without ThreadSanitizer, but
// <google/protobuf/map_field.h> gives MapFieldBase two more members (seq1_, seq2_) when
// the including file is compiled with it (__SANITIZE_THREAD__). Code of this project
// would then lay out every map field differently from the library that reads it, and
// the library's MapFieldBase::SyncRepeatedFieldWithMap would read the wrong members:
// reflection over a map field (coordinator/field_limits.cc) crashes with SEGV. Parsing
// the protobuf headers here, with __SANITIZE_THREAD__ hidden, gives every file the
// library's layout; include guards keep later includes from parsing them again.
#ifndef SF_CMAKE_SANITIZERS_PROTOBUF_TSAN_ABI_H_
#define SF_CMAKE_SANITIZERS_PROTOBUF_TSAN_ABI_H_

// libstdc++ reads __SANITIZE_THREAD__ once, in c++config.h, to keep shared_ptr's
// reference counts visible to TSan: let it see the macro first.
#include <cstddef>

#pragma push_macro("__SANITIZE_THREAD__")
#undef __SANITIZE_THREAD__
#include <google/protobuf/map_field.h>
#pragma pop_macro("__SANITIZE_THREAD__")

#endif  // SF_CMAKE_SANITIZERS_PROTOBUF_TSAN_ABI_H_
