/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What every fuzz target in tests/fuzz/ implements. Built either against libFuzzer
 * (-Dfuzz=true with clang) or against tests/fuzz/fuzz-main.c, which feeds it the files
 * of a corpus directory (suite fuzz-regress). Targets refuse inputs above their size
 * cap before doing any work. */

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
