/* The loaders of each model format (io layer), called by hr_model_load. */
#ifndef HR_IO_INTERNAL_H
#define HR_IO_INTERNAL_H

#include "model/model_internal.h"

hr_status hr_load_llama2c(hr_model *m);
hr_status hr_load_llama2c_q8(hr_model *m);
hr_status hr_load_gguf(hr_model *m, const char *path);
/* Hugging Face folder (src/model/hf_load.c). */
hr_status hr_load_hf(hr_model *m, const char *dir);

#endif
