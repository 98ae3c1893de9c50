/*
 * lora_grpo_plugin.h: the lora-grpo plugin ABI, version 1.0, for plugins not written
 * in Rust. It mirrors `lora_grpo_plugin::abi`; the host checks every size below.
 *
 * A plugin library exports two functions:
 *   const LgAbiProbe     *lora_grpo_plugin_abi(void);      (same in every ABI major)
 *   const LgPluginHeader *lora_grpo_plugin_entry_v1(void);
 * Strings are UTF-8 pointer + length (no terminator). Buffers the plugin returns
 * (error messages, scores, sample fields) are handed back to it through the vtable's
 * free functions. Vtable functions return an LG_STATUS_* code and must not unwind
 * (no C++ exceptions, no longjmp out). One instance is used by one thread at a time.
 */
#ifndef LORA_GRPO_PLUGIN_H
#define LORA_GRPO_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LG_ABI_MAJOR 1
#define LG_ABI_MINOR 0

/* The entry function's name for this ABI major: lora_grpo_plugin_entry_v1. Define it
 * as `const LgPluginHeader *LG_ENTRY_FUNCTION(void) { ... }`. */
#define LG_CONCAT_(a, b) a##b
#define LG_CONCAT(a, b) LG_CONCAT_(a, b)
#define LG_ENTRY_FUNCTION LG_CONCAT(lora_grpo_plugin_entry_v, LG_ABI_MAJOR)

#define LG_STATUS_OK 0
#define LG_STATUS_DONE 1 /* dataset `next` only: no more samples */
#define LG_STATUS_ERROR 2
#define LG_STATUS_PANIC 3

#define LG_KIND_REWARD 1
#define LG_KIND_DATASET 2

#define LG_PROMPT_TEXT 0
#define LG_PROMPT_MESSAGES 1 /* JSON array of {"role": ..., "content": ...} */

typedef struct LgStr {
    const uint8_t *ptr; /* may be NULL when len == 0 */
    size_t len;
} LgStr;

/* Bytes allocated by the plugin, freed by its `free_bytes`. */
typedef struct LgOwnedBytes {
    uint8_t *ptr;
    size_t len;
} LgOwnedBytes;

/* Scores allocated by the plugin, freed by its `free_scores`. */
typedef struct LgOwnedScores {
    float *ptr;
    size_t len;
} LgOwnedScores;

/* Filled on LG_STATUS_ERROR / LG_STATUS_PANIC. */
typedef struct LgErrorOut {
    LgOwnedBytes message;
    uint64_t row; /* 1-based dataset row the error is about, 0 if none */
} LgErrorOut;

typedef struct LgAbiProbe {
    uint32_t abi_major;
    uint32_t abi_minor;
    LgStr sdk_version;
} LgAbiProbe;

typedef struct LgPluginHeader {
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t header_size; /* sizeof(LgPluginHeader) */
    uint32_t vtable_size; /* sizeof the vtable below */
    uint32_t kind;        /* LG_KIND_* */
    uint32_t reserved;
    LgStr name; /* the name recipes use, e.g. "exact-match" */
    LgStr version;
    LgStr sdk_version; /* SDK or header version the plugin was built with */
    LgStr description;
    const void *vtable; /* LgRewardVTable or LgDatasetVTable, by kind */
} LgPluginHeader;

/* One scoring call: every column has `len` entries. */
typedef struct LgRewardBatch {
    size_t len;
    const LgStr *prompts;
    const LgStr *completions;
    const LgStr *answers;
    const LgStr *metadata; /* JSON object text per sample */
    const uint64_t *group_ids;
} LgRewardBatch;

typedef struct LgRewardVTable {
    /* config: JSON object text from the recipe (may be empty). */
    int32_t (*create)(LgStr config, void **instance, LgErrorOut *error);
    /* Must set *scores to exactly batch->len finite values. */
    int32_t (*score)(void *instance, const LgRewardBatch *batch, LgOwnedScores *scores,
                     LgErrorOut *error);
    void (*destroy)(void *instance);
    void (*free_scores)(LgOwnedScores scores);
    void (*free_bytes)(LgOwnedBytes bytes);
} LgRewardVTable;

/* upper == UINT64_MAX means unknown. */
typedef struct LgSizeHint {
    uint64_t lower;
    uint64_t upper;
} LgSizeHint;

typedef struct LgSample {
    uint32_t prompt_kind; /* LG_PROMPT_* */
    uint32_t reserved;
    LgOwnedBytes prompt;
    LgOwnedBytes answer;
    LgOwnedBytes metadata; /* JSON object text */
    uint64_t row;          /* 1-based source row, 0 if none */
} LgSample;

typedef struct LgDatasetVTable {
    int32_t (*open)(LgStr config, LgStr split, void **instance, LgErrorOut *error);
    int32_t (*size_hint)(void *instance, LgSizeHint *hint, LgErrorOut *error);
    /* LG_STATUS_OK with *sample filled, LG_STATUS_DONE at the end, or an error. */
    int32_t (*next)(void *instance, LgSample *sample, LgErrorOut *error);
    void (*close)(void *instance);
    void (*free_bytes)(LgOwnedBytes bytes);
} LgDatasetVTable;

#ifdef __cplusplus
}
#endif

#endif /* LORA_GRPO_PLUGIN_H */
