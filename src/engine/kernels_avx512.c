/* The kernels of kernels_impl.h for the avx512 path (compile flags: CMakeLists.txt;
 * x86-64 only). */
#if defined(__x86_64__) || defined(__i386__)
#define HR_ISA 2
#include "engine/kernels_impl.h"
#else
typedef int hr_kernels_avx512_unused; /* ISO C: no empty translation unit */
#endif
