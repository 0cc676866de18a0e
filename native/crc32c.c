/*
 * crc32cBlocks(data, blockSize, out, outOffset, seed): the CRC32C of each blockSize-byte block
 * of data, continuing from `seed` (0: the standard CRC), written as u32 little-endian at
 * out[outOffset + 4 i]. One call for a whole write request instead of one a block.
 *
 * firstBadEntry(entries, blockSize, seed): entries are block entries back to back (a u32 LE
 * CRC32C, then blockSize bytes: a WRITE record's body); the index of the first whose block does
 * not match its CRC from `seed`, or -1. One call for a whole read of a run of entries.
 *
 * firstBadBlock(blocks, blockSize, crcs, seed): the same for blocks back to back whose CRCs lie
 * apart, as u32 LE at crcs[4 i] (a scatter read of entries, readEntries in file-ops.c).
 *
 * The seed is format version 2's segment sequence (FORMAT.md §3.4): the same as @node-rs/crc32's
 * second argument, a CRC to continue from, so the register starts at its complement.
 *
 * Both keep three CRC instructions in flight at a time: the crc32q instruction has a latency
 * of three cycles and a throughput of one, so one stream uses a third of it. The three-stream
 * method and its combination of streams are Mark Adler's (crc32c.c, "crc32c_hw", zlib
 * licence): the CRC of a stream is carried past the next one's bytes by a table for that many
 * zero bytes, then XORed with it.
 *
 * Only where the CPU has SSE4.2; elsewhere the functions are not exported and lib/format/
 * checksum.ts takes a CRC a block with @node-rs/crc32.
 */
#include "args.h"
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>

#define POLY 0x82f63b78u
#define SHORT 256 /* bytes a stream per round: a 4 KiB block is five rounds and a 256-byte tail */

static uint32_t zeros_short[4][256]; /* carries a CRC past SHORT zero bytes, a byte of it at a time */

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec) {
  uint32_t sum = 0;
  for (; vec; vec >>= 1, mat++)
    if (vec & 1) sum ^= *mat;
  return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat) {
  for (int n = 0; n < 32; n++) square[n] = gf2_times(mat, mat[n]);
}

/* The operator that appends len zero bytes (len a power of two) to a raw CRC. */
static void zeros_operator(uint32_t *even, size_t len) {
  uint32_t odd[32];
  odd[0] = POLY; /* one zero bit */
  for (int n = 1; n < 32; n++) odd[n] = 1u << (n - 1);
  gf2_square(even, odd); /* two bits */
  gf2_square(odd, even); /* four bits */
  for (;;) {
    gf2_square(even, odd); /* one byte, then four, sixteen, ... */
    len >>= 1;
    if (len == 0) return;
    gf2_square(odd, even); /* two bytes, then eight, ... */
    len >>= 1;
    if (len == 0) break;
  }
  memcpy(even, odd, sizeof odd);
}

static void init_tables(void) {
  uint32_t op[32];
  zeros_operator(op, SHORT);
  for (uint32_t n = 0; n < 256; n++)
    for (int k = 0; k < 4; k++) zeros_short[k][n] = gf2_times(op, n << (8 * k));
}

static inline uint32_t shift_short(uint32_t crc) {
  return zeros_short[0][crc & 0xff] ^ zeros_short[1][(crc >> 8) & 0xff] ^ zeros_short[2][(crc >> 16) & 0xff] ^ zeros_short[3][crc >> 24];
}

static inline uint64_t load64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t seed, const uint8_t *next, size_t len) {
  uint64_t crc0 = seed ^ 0xffffffffu;
  while (len >= 3 * SHORT) {
    uint64_t crc1 = 0, crc2 = 0;
    for (const uint8_t *end = next + SHORT; next < end; next += 8) {
      crc0 = _mm_crc32_u64(crc0, load64(next));
      crc1 = _mm_crc32_u64(crc1, load64(next + SHORT));
      crc2 = _mm_crc32_u64(crc2, load64(next + 2 * SHORT));
    }
    crc0 = shift_short((uint32_t)crc0) ^ crc1;
    crc0 = shift_short((uint32_t)crc0) ^ crc2;
    next += 2 * SHORT;
    len -= 3 * SHORT;
  }
  for (; len >= 8; next += 8, len -= 8) crc0 = _mm_crc32_u64(crc0, load64(next));
  for (; len; next++, len--) crc0 = _mm_crc32_u8((uint32_t)crc0, *next);
  return (uint32_t)crc0 ^ 0xffffffffu;
}

static inline uint32_t load_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * The index of the first of `count` blocks that does not match its stored CRC from `seed`, or -1,
 * as a JavaScript number: block i at blocks + i * block_stride, its CRC (u32 LE) at crcs + i * crc_stride.
 */
static napi_value first_bad(napi_env env, const uint8_t *blocks, size_t block_stride, const uint8_t *crcs, size_t crc_stride, size_t count, uint32_t block_size, uint32_t seed) {
  int64_t bad = -1;
  for (size_t i = 0; i < count && bad < 0; i++) {
    if (crc32c_hw(seed, blocks + i * block_stride, block_size) != load_le32(crcs + i * crc_stride)) bad = (int64_t)i;
  }
  napi_value result;
  napi_create_int64(env, bad, &result);
  return result;
}

static napi_value crc32c_blocks(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *data, *out;
  size_t data_length, out_length;
  uint32_t block_size, out_offset, seed;
  if (argc < 5 || !get_bytes(env, argv[0], &data, &data_length) || napi_get_value_uint32(env, argv[1], &block_size) != napi_ok ||
      !get_bytes(env, argv[2], &out, &out_length) || napi_get_value_uint32(env, argv[3], &out_offset) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &seed) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "crc32cBlocks(data: Buffer, blockSize: number, out: Buffer, outOffset: number, seed: number)");
    return NULL;
  }
  size_t blocks = block_size ? data_length / block_size : 0;
  if (block_size == 0 || blocks * block_size != data_length || out_offset > out_length || (out_length - out_offset) / 4 < blocks) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "crc32cBlocks: data is not whole blocks, or out has no room for a CRC each");
    return NULL;
  }
  for (size_t i = 0; i < blocks; i++) {
    uint32_t crc = crc32c_hw(seed, data + i * block_size, block_size);
    uint8_t *at = out + out_offset + 4 * i;
    at[0] = crc & 0xff, at[1] = (crc >> 8) & 0xff, at[2] = (crc >> 16) & 0xff, at[3] = crc >> 24;
  }
  return NULL;
}

static napi_value first_bad_entry(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *entries;
  size_t length;
  uint32_t block_size, seed;
  if (argc < 3 || !get_bytes(env, argv[0], &entries, &length) || napi_get_value_uint32(env, argv[1], &block_size) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &seed) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "firstBadEntry(entries: Buffer, blockSize: number, seed: number)");
    return NULL;
  }
  size_t entry_size = (size_t)block_size + 4;
  size_t count = block_size ? length / entry_size : 0;
  if (block_size == 0 || count * entry_size != length) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "firstBadEntry: entries is not whole entries of a CRC and a block");
    return NULL;
  }
  return first_bad(env, entries + 4, entry_size, entries, entry_size, count, block_size, seed);
}

static napi_value first_bad_block(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *blocks, *crcs;
  size_t length, crcs_length;
  uint32_t block_size, seed;
  if (argc < 4 || !get_bytes(env, argv[0], &blocks, &length) || napi_get_value_uint32(env, argv[1], &block_size) != napi_ok ||
      !get_bytes(env, argv[2], &crcs, &crcs_length) || napi_get_value_uint32(env, argv[3], &seed) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "firstBadBlock(blocks: Buffer, blockSize: number, crcs: Buffer, seed: number)");
    return NULL;
  }
  size_t count = block_size ? length / block_size : 0;
  if (block_size == 0 || count * block_size != length || crcs_length / 4 < count) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "firstBadBlock: blocks is not whole blocks, or crcs holds fewer CRCs than blocks");
    return NULL;
  }
  return first_bad(env, blocks, block_size, crcs, 4, count, block_size, seed);
}

void register_crc32c(napi_env env, napi_value exports) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("sse4.2")) return;
  init_tables();
  export_function(env, exports, "crc32cBlocks", crc32c_blocks);
  export_function(env, exports, "firstBadEntry", first_bad_entry);
  export_function(env, exports, "firstBadBlock", first_bad_block);
}
#else
void register_crc32c(napi_env env, napi_value exports) {
  (void)env, (void)exports;
}
#endif
