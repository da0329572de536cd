/* The kernels of kernels_impl.h for the scalar path (compile flags: CMakeLists.txt). */
#define HR_ISA 0
#include "engine/kernels_impl.h"
