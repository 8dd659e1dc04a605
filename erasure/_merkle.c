/*
 * erasure._merkle: the SHA-256 Merkle core.
 *
 * Tree (DESIGN.md): leaf = SHA256(0x00 || leaf), node = SHA256(0x01 || left || right), an odd node
 * at the end of a level moves up unchanged, empty data is one empty leaf.
 *
 * Every operation reduces to hashing many independent messages of equal length laid out at a
 * fixed stride, each optionally preceded by a one-byte tag: leaves of a buffer (stride = leaf
 * size, tag 0x00) and pairs of a level (stride 64, tag 0x01). Kernels hash such batches:
 *
 *   avx512    16 messages per pass, one per 32-bit lane of a zmm register (AVX-512F/BW)
 *   shani     four messages interleaved with the SHA extensions (SHA-NI + SSE4.1), each lane on a
 *             sequential run of messages; head and tail blocks laid out from a per-batch template
 *   portable  plain C, one message at a time
 *
 * The kernel is chosen at run time: CPUID/XGETBV say which can run, a 1 ms timing at import picks the
 * fastest (DATASOV_MERKLE_BACKEND, read by erasure.merkle, overrides). Each lives in its own function with its own
 * target attribute (mixing SHA-NI and AVX-512 code in one function was measured 25x slower).
 * All heavy calls release the GIL; large trees can be split across threads.
 */
#define PY_SSIZE_T_CLEAN
#define _POSIX_C_SOURCE 200809L
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#define DS_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

#define DIGEST 32
#define NO_TAG (-1)

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static const uint32_t IV[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

/* A batch: message i is [tag] || base[i*stride .. i*stride + len). */
typedef struct {
    const uint8_t *base;
    size_t stride;
    size_t len;
    int tag;
} batch_t;

typedef void (*kernel_fn)(const batch_t *b, size_t first, size_t count, uint8_t *out);

static inline size_t total_len(const batch_t *b) { return b->len + (b->tag >= 0); }
static inline size_t block_count(const batch_t *b) { return (total_len(b) + 9 + 63) / 64; }

/* Pointer to block j of a message if it lies wholly inside the data, else NULL. */
static inline const uint8_t *direct_block(const batch_t *b, const uint8_t *msg, size_t j) {
    size_t p = b->tag >= 0, v0 = 64 * j;
    if (v0 < p || v0 - p + 64 > b->len) return NULL;
    return msg + (v0 - p);
}

/* Assemble block j of a message (tag, data, 0x80, zeros, bit length) into out. */
static void build_block(const batch_t *b, const uint8_t *msg, size_t j, size_t nblocks, uint8_t out[64]) {
    size_t p = b->tag >= 0, v0 = 64 * j, len = b->len;
    memset(out, 0, 64);
    if (p && v0 == 0) out[0] = (uint8_t)b->tag;
    size_t ds = v0 > p ? v0 : p, de = p + len;
    if (de > v0 + 64) de = v0 + 64;
    if (de > ds) memcpy(out + (ds - v0), msg + (ds - p), de - ds);
    size_t pad = p + len;
    if (pad >= v0 && pad < v0 + 64) out[pad - v0] = 0x80;
    if (j == nblocks - 1) {
        uint64_t bits = (uint64_t)(p + len) * 8;
        for (int k = 0; k < 8; k++) out[56 + k] = (uint8_t)(bits >> (56 - 8 * k));
    }
}

static inline void store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* ---------------------------------------------------------------- portable ---- */

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress_portable(uint32_t st[8], const uint8_t *blk) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)blk[4 * t] << 24 | (uint32_t)blk[4 * t + 1] << 16 | (uint32_t)blk[4 * t + 2] << 8 |
               blk[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = ROR(w[t - 15], 7) ^ ROR(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ROR(w[t - 2], 17) ^ ROR(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[t] + w[t];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    st[0] += a; st[1] += b; st[2] += c; st[3] += d; st[4] += e; st[5] += f; st[6] += g; st[7] += h;
}

static void kernel_portable(const batch_t *b, size_t first, size_t count, uint8_t *out) {
    size_t nb = block_count(b);
    uint8_t buf[64];
    for (size_t i = 0; i < count; i++) {
        const uint8_t *msg = b->base + (first + i) * b->stride;
        uint32_t st[8];
        memcpy(st, IV, sizeof st);
        for (size_t j = 0; j < nb; j++) {
            const uint8_t *blk = direct_block(b, msg, j);
            if (!blk) { build_block(b, msg, j, nb, buf); blk = buf; }
            compress_portable(st, blk);
        }
        for (int w = 0; w < 8; w++) store_be32(out + DIGEST * i + 4 * w, st[w]);
    }
}

#ifdef DS_X86
/* ------------------------------------------------------------------ SHA-NI ---- */

#ifndef PREFETCH
#define PREFETCH 1024 /* bytes ahead of the block being hashed */
#endif
#define SHANI __attribute__((target("sha,sse4.1,ssse3")))
#define NL 4 /* messages interleaved: measured on Zen 4, 1 lane 0.81x, 2 lanes 0.97x, 3 1.26x, 4 1.32x, 6 1.03x
                (hashlib = 1x, 1 KiB leaves); past 4 the 16 xmm registers spill */

/* One 64-byte block for each of `nl` independent states, interleaved for throughput. */
SHANI __attribute__((always_inline)) static inline void shani_compress(int nl, __m128i *s0, __m128i *s1,
                                                                       const uint8_t **blk) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i w[NL][4], save0[NL], save1[NL], msg[NL], tmp[NL];
    for (int l = 0; l < nl; l++) { save0[l] = s0[l]; save1[l] = s1[l]; }
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++) {
        const __m128i k = _mm_loadu_si128((const __m128i *)&K256[4 * r]);
#pragma GCC unroll 8
        for (int l = 0; l < nl; l++) {
            if (r < 4) w[l][r] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blk[l] + 16 * r)), mask);
            msg[l] = _mm_add_epi32(w[l][r & 3], k);
            s1[l] = _mm_sha256rnds2_epu32(s1[l], s0[l], msg[l]);
            if (r >= 3 && r <= 14) {
                tmp[l] = _mm_alignr_epi8(w[l][r & 3], w[l][(r + 3) & 3], 4);
                w[l][(r + 1) & 3] = _mm_add_epi32(w[l][(r + 1) & 3], tmp[l]);
                w[l][(r + 1) & 3] = _mm_sha256msg2_epu32(w[l][(r + 1) & 3], w[l][r & 3]);
            }
            msg[l] = _mm_shuffle_epi32(msg[l], 0x0E);
            s0[l] = _mm_sha256rnds2_epu32(s0[l], s1[l], msg[l]);
            if (r >= 1 && r <= 12) w[l][(r - 1) & 3] = _mm_sha256msg1_epu32(w[l][(r - 1) & 3], w[l][r & 3]);
        }
    }
    for (int l = 0; l < nl; l++) { s0[l] = _mm_add_epi32(s0[l], save0[l]); s1[l] = _mm_add_epi32(s1[l], save1[l]); }
}

SHANI static inline void shani_init(__m128i *s0, __m128i *s1) {
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&IV[0]), 0xB1); /* CDAB */
    __m128i st1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&IV[4]), 0x1B); /* EFGH */
    *s0 = _mm_alignr_epi8(tmp, st1, 8);                                               /* ABEF */
    *s1 = _mm_blend_epi16(st1, tmp, 0xF0);                                            /* CDGH */
}

SHANI static inline void shani_store(__m128i s0, __m128i s1, uint8_t *out) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(s0, 0x1B); /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);           /* DCHG */
    s0 = _mm_blend_epi16(tmp, s1, 0xF0);        /* DCBA */
    s1 = _mm_alignr_epi8(s1, tmp, 8);           /* HGFE */
    _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(s0, mask));
    _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(s1, mask));
}

SHANI static void shani_compress4(__m128i *s0, __m128i *s1, const uint8_t **blk) { shani_compress(4, s0, s1, blk); }
SHANI static void shani_compress1(__m128i *s0, __m128i *s1, const uint8_t **blk) { shani_compress(1, s0, s1, blk); }

/* How a batch's messages split into blocks: an optional head block (the tag and the first 63 data
   bytes), direct blocks read in place, and one or two tail blocks (the last data bytes, 0x80, zeros,
   the bit length) whose padding is the same for every message of the batch, so it is laid out once. */
typedef struct {
    size_t nb;        /* blocks per message */
    size_t first;     /* first direct block: 1 after a head block, else 0 */
    size_t tail;      /* first tail block; direct blocks are [first, tail) */
    size_t tail_from; /* data offset of the tail's first data byte */
    size_t tail_to;   /* offset in the tail buffer where it goes */
    size_t tail_len;  /* data bytes in the tail */
    uint8_t tpl[128]; /* the tail blocks with padding, data bytes zero */
} layout_t;

static void plan_layout(const batch_t *b, layout_t *lay) {
    size_t p = b->tag >= 0, total = total_len(b);
    lay->nb = block_count(b);
    lay->tail = total / 64;
    if (lay->tail > lay->nb - 1) lay->tail = lay->nb - 1; /* total = 64m exactly: tail is padding only */
    lay->first = p && lay->tail > 0 ? 1 : 0;
    size_t v0 = 64 * lay->tail;
    memset(lay->tpl, 0, sizeof lay->tpl);
    if (p && v0 == 0) lay->tpl[0] = (uint8_t)b->tag;
    lay->tail_to = v0 == 0 ? p : 0;
    lay->tail_from = v0 == 0 ? 0 : v0 - p;
    lay->tail_len = total - v0 - lay->tail_to;
    lay->tpl[total - v0] = 0x80;
    uint64_t bits = (uint64_t)total * 8;
    size_t end = 64 * (lay->nb - lay->tail);
    for (int k = 0; k < 8; k++) lay->tpl[end - 8 + k] = (uint8_t)(bits >> (56 - 8 * k));
}

/* Block j of a message that does not lie wholly inside the data: the head (tag and 63 data bytes)
   or a tail block (the template with the message's last data bytes); a call of its own, so that the
   kernel's hot loop keeps its registers. */
__attribute__((noinline)) static void layout_block(const layout_t *lay, const batch_t *b, const uint8_t *msg,
                                                   size_t j, uint8_t out[64]) {
    if (j < lay->first) {
        out[0] = (uint8_t)b->tag;
        memcpy(out + 1, msg, 63);
        return;
    }
    memcpy(out, lay->tpl + 64 * (j - lay->tail), 64);
    if (j != lay->tail) return;
    if (lay->tail_len <= 8) { /* 1 byte for 1 KiB leaves and for inner nodes: no memcpy call */
        for (size_t k = 0; k < lay->tail_len; k++) out[lay->tail_to + k] = msg[lay->tail_from + k];
    } else {
        memcpy(out + lay->tail_to, msg + lay->tail_from, lay->tail_len);
    }
}

SHANI static void kernel_shani(const batch_t *b, size_t first, size_t count, uint8_t *out) {
    layout_t lay;
    plan_layout(b, &lay);
    size_t nb = lay.nb;
    uint8_t buf[NL][64];
    /* Lane l hashes messages l*q, l*q+1, ... so that each lane reads one long sequential stream (lanes
       on neighbouring messages measured 10% slower at 1 KiB); the last count % 4 go one at a time. */
    size_t q = count / NL;
    for (size_t i = 0; i < q + count % NL;) {
        int nl = i < q ? NL : 1;
        size_t idx[NL];
        const uint8_t *msg[NL];
        for (int l = 0; l < nl; l++) {
            idx[l] = i < q ? i + (size_t)l * q : NL * q + (i - q);
            msg[l] = b->base + (first + idx[l]) * b->stride;
        }
        __m128i s0[NL], s1[NL];
        shani_init(&s0[0], &s1[0]);
        for (int l = 1; l < nl; l++) { s0[l] = s0[0]; s1[l] = s1[0]; }
        for (size_t j = 0; j < nb; j++) {
            const uint8_t *blk[NL];
            for (int l = 0; l < nl; l++) {
                blk[l] = direct_block(b, msg[l], j);
                if (blk[l]) _mm_prefetch((const char *)(blk[l] + PREFETCH), _MM_HINT_T0);
                else { layout_block(&lay, b, msg[l], j, buf[l]); blk[l] = buf[l]; }
            }
            if (nl == NL) shani_compress4(s0, s1, blk);
            else shani_compress1(s0, s1, blk);
        }
        for (int l = 0; l < nl; l++) shani_store(s0[l], s1[l], out + DIGEST * idx[l]);
        i++;
    }
}

/* ----------------------------------------------------------- AVX-512 x16 ---- */

#define AVX512 __attribute__((target("avx512f,avx512bw")))
#define XOR3(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0x96)

AVX512 static inline void avx512_compress16(__m512i st[8], const uint8_t *base, __m512i offsets) {
    const __m512i bswap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
    __m512i w[16];
    __m512i a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
#pragma GCC unroll 64
    for (int t = 0; t < 64; t++) {
        if (t < 16) {
            w[t] = _mm512_shuffle_epi8(_mm512_i32gather_epi32(offsets, (const void *)(base + 4 * t), 1), bswap);
        } else {
            __m512i x = w[(t - 15) & 15], y = w[(t - 2) & 15];
            __m512i s0 = XOR3(_mm512_ror_epi32(x, 7), _mm512_ror_epi32(x, 18), _mm512_srli_epi32(x, 3));
            __m512i s1 = XOR3(_mm512_ror_epi32(y, 17), _mm512_ror_epi32(y, 19), _mm512_srli_epi32(y, 10));
            w[t & 15] = _mm512_add_epi32(_mm512_add_epi32(w[t & 15], s0), _mm512_add_epi32(w[(t - 7) & 15], s1));
        }
        __m512i S1 = XOR3(_mm512_ror_epi32(e, 6), _mm512_ror_epi32(e, 11), _mm512_ror_epi32(e, 25));
        __m512i ch = _mm512_ternarylogic_epi32(e, f, g, 0xCA);
        __m512i t1 = _mm512_add_epi32(_mm512_add_epi32(h, S1),
                                      _mm512_add_epi32(ch, _mm512_add_epi32(_mm512_set1_epi32((int)K256[t]), w[t & 15])));
        __m512i S0 = XOR3(_mm512_ror_epi32(a, 2), _mm512_ror_epi32(a, 13), _mm512_ror_epi32(a, 22));
        __m512i maj = _mm512_ternarylogic_epi32(a, b, c, 0xE8);
        __m512i t2 = _mm512_add_epi32(S0, maj);
        h = g; g = f; f = e; e = _mm512_add_epi32(d, t1); d = c; c = b; b = a; a = _mm512_add_epi32(t1, t2);
    }
    st[0] = _mm512_add_epi32(st[0], a); st[1] = _mm512_add_epi32(st[1], b);
    st[2] = _mm512_add_epi32(st[2], c); st[3] = _mm512_add_epi32(st[3], d);
    st[4] = _mm512_add_epi32(st[4], e); st[5] = _mm512_add_epi32(st[5], f);
    st[6] = _mm512_add_epi32(st[6], g); st[7] = _mm512_add_epi32(st[7], h);
}

AVX512 static void kernel_avx512(const batch_t *b, size_t first, size_t count, uint8_t *out) {
    size_t nb = block_count(b);
    uint8_t buf[16 * 64] __attribute__((aligned(64)));
    const __m512i buf_offsets = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                                   _mm512_set1_epi32(64));
    for (size_t g0 = 0; g0 < count; g0 += 16) {
        size_t lanes = count - g0 < 16 ? count - g0 : 16;
        const uint8_t *msg0 = b->base + (first + g0) * b->stride;
        int32_t off[16];
        for (size_t l = 0; l < 16; l++) off[l] = (int32_t)((l < lanes ? l : lanes - 1) * b->stride);
        const __m512i offsets = _mm512_loadu_si512((const void *)off);
        __m512i st[8];
        for (int k = 0; k < 8; k++) st[k] = _mm512_set1_epi32((int)IV[k]);
        for (size_t j = 0; j < nb; j++) {
            const uint8_t *direct = direct_block(b, msg0, j);
            if (direct) {
                if (j + 4 < nb)
                    for (size_t l = 0; l < lanes; l++)
                        _mm_prefetch((const char *)(direct + off[l] + 256), _MM_HINT_T0);
                avx512_compress16(st, direct, offsets);
            } else {
                for (size_t l = 0; l < 16; l++) build_block(b, msg0 + off[l], j, nb, buf + 64 * l);
                avx512_compress16(st, buf, buf_offsets);
            }
        }
        uint32_t words[8][16] __attribute__((aligned(64)));
        for (int k = 0; k < 8; k++) _mm512_store_si512((void *)words[k], st[k]);
        for (size_t l = 0; l < lanes; l++)
            for (int k = 0; k < 8; k++) store_be32(out + DIGEST * (g0 + l) + 4 * k, words[k][l]);
    }
}

static int cpu_has_shani(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(1, 0, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 29) & 1;
}

static int cpu_has_avx512(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(1, 0, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (!((b >> 16) & 1) || !((b >> 30) & 1)) return 0; /* AVX512F, AVX512BW */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0xE6) == 0xE6; /* XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM enabled by the OS */
}
#endif /* DS_X86 */

/* ------------------------------------------------------------- dispatch ---- */

typedef struct {
    const char *name;
    kernel_fn fn;
    int available;
    double seconds; /* best calibration time at import; 0 = not timed */
} kernel_t;

static kernel_t KERNELS[] = {
#ifdef DS_X86
    {"avx512", kernel_avx512, 0, 0.0},
    {"shani", kernel_shani, 0, 0.0},
#endif
    {"portable", kernel_portable, 1, 0.0},
};
#define NKERNELS (sizeof KERNELS / sizeof KERNELS[0])

static kernel_t *active = NULL;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPUID says which kernels can run; a short timing (256 leaves of 1 KiB, best of 5, ~2 ms in all)
   says which is fastest here: on AMD Zen 4 four SHA-NI lanes beat sixteen double-pumped AVX-512
   lanes, on other CPUs the order differs. */
static void detect(void) {
#ifdef DS_X86
    KERNELS[0].available = cpu_has_avx512();
    KERNELS[1].available = cpu_has_shani();
#endif
    active = &KERNELS[NKERNELS - 1];
    enum { LEAVES = 256, LEAF = 1024 };
    uint8_t *data = (uint8_t *)malloc(LEAVES * LEAF), *out = (uint8_t *)malloc(LEAVES * DIGEST);
    if (!data || !out) {
        free(data); free(out);
        for (size_t i = 0; i < NKERNELS; i++)
            if (KERNELS[i].available) { active = &KERNELS[i]; break; }
        return;
    }
    for (size_t i = 0; i < LEAVES * LEAF; i++) data[i] = (uint8_t)(i * 131 + 7);
    batch_t b = {data, LEAF, LEAF, 0x00};
    double best_time = 1e9;
    for (size_t k = 0; k < NKERNELS; k++) {
        if (!KERNELS[k].available) continue;
        double t_min = 1e9;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now_seconds();
            KERNELS[k].fn(&b, 0, LEAVES, out);
            double dt = now_seconds() - t0;
            if (dt < t_min) t_min = dt;
        }
        KERNELS[k].seconds = t_min;
        if (t_min < best_time) { best_time = t_min; active = &KERNELS[k]; }
    }
    free(data);
    free(out);
}

/* ----------------------------------------------------- threaded batches ---- */

typedef struct {
    kernel_fn fn;
    const batch_t *b;
    size_t first, count;
    uint8_t *out;
} job_t;

static void *run_job(void *arg) {
    job_t *j = (job_t *)arg;
    if (j->count) j->fn(j->b, j->first, j->count, j->out);
    return NULL;
}

#define MAX_THREADS 64
#define MIN_PER_THREAD 2048

/* Hash messages [0, count) of a batch into out, on up to `threads` threads. */
static void hash_batch(kernel_fn fn, const batch_t *b, size_t count, uint8_t *out, int threads) {
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if ((size_t)threads > count / MIN_PER_THREAD) threads = (int)(count / MIN_PER_THREAD);
    if (threads <= 1) { fn(b, 0, count, out); return; }
    pthread_t tid[MAX_THREADS];
    job_t jobs[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    size_t per = (((count + (size_t)threads - 1) / (size_t)threads) + 15) & ~(size_t)15;
    for (int t = 0; t < threads; t++) {
        size_t lo = (size_t)t * per, n = lo >= count ? 0 : (count - lo < per ? count - lo : per);
        jobs[t] = (job_t){fn, b, lo, n, out + DIGEST * (lo < count ? lo : 0)};
        if (t > 0 && n) started[t] = pthread_create(&tid[t], NULL, run_job, &jobs[t]) == 0;
    }
    run_job(&jobs[0]);
    for (int t = 1; t < threads; t++) {
        if (!jobs[t].count) continue;
        if (started[t]) pthread_join(tid[t], NULL);
        else run_job(&jobs[t]); /* no thread could be started: do it here */
    }
}

/* Leaf digests of data: n_leaves = max(1, ceil(len / leaf)); the last leaf may be short. */
static void leaf_digests(kernel_fn fn, const uint8_t *data, size_t len, size_t leaf, uint8_t *out, int threads) {
    size_t full = len / leaf;
    if (full) {
        batch_t b = {data, leaf, leaf, 0x00};
        hash_batch(fn, &b, full, out, threads);
    }
    if (len % leaf || len == 0) {
        batch_t b = {data + full * leaf, 0, len % leaf, 0x00};
        fn(&b, 0, 1, out + DIGEST * full);
    }
}

/* One level up: returns the new count; odd last node moves up unchanged. `out` may equal `in`. */
static size_t level_up(kernel_fn fn, const uint8_t *in, size_t count, uint8_t *out, int threads) {
    size_t pairs = count / 2;
    if (pairs) {
        batch_t b = {in, 2 * DIGEST, 2 * DIGEST, 0x01};
        if (out == in) {
            /* in place, a chunk of pairs at a time through a buffer on the stack: chunk c reads
               [64*LU*c, 64*LU*(c+1)) and then writes [32*LU*c, 32*LU*(c+1)), below every unread pair
               (kernels may hash a call's messages in any order, so one call must not do both) */
            enum { LU = 256 };
            uint8_t tmp[LU * DIGEST];
            for (size_t c = 0; c < pairs; c += LU) {
                size_t n = pairs - c < LU ? pairs - c : LU;
                fn(&b, c, n, tmp);
                memcpy(out + DIGEST * c, tmp, n * DIGEST);
            }
        } else {
            hash_batch(fn, &b, pairs, out, threads);
        }
    }
    if (count % 2) memmove(out + DIGEST * pairs, in + DIGEST * (count - 1), DIGEST);
    return pairs + count % 2;
}

/* ------------------------------------------------------------ Python API ---- */

static int parse_threads(int threads) { return threads < 1 ? 1 : threads; }

static PyObject *py_leaf_digests(PyObject *self, PyObject *args) {
    Py_buffer data;
    Py_ssize_t leaf;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "y*n|i", &data, &leaf, &threads)) return NULL;
    if (leaf < 1) { PyBuffer_Release(&data); PyErr_SetString(PyExc_ValueError, "leaf_size must be >= 1"); return NULL; }
    size_t n = data.len ? ((size_t)data.len + (size_t)leaf - 1) / (size_t)leaf : 1;
    PyObject *res = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * DIGEST));
    if (!res) { PyBuffer_Release(&data); return NULL; }
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(res);
    kernel_fn fn = active->fn;
    Py_BEGIN_ALLOW_THREADS
    leaf_digests(fn, data.buf, (size_t)data.len, (size_t)leaf, out, parse_threads(threads));
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    return res;
}

static PyObject *py_level_up(PyObject *self, PyObject *args) {
    Py_buffer lvl;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "y*|i", &lvl, &threads)) return NULL;
    if (lvl.len == 0 || lvl.len % DIGEST) {
        PyBuffer_Release(&lvl);
        PyErr_SetString(PyExc_ValueError, "a level is a non-empty multiple of 32 bytes");
        return NULL;
    }
    size_t count = (size_t)lvl.len / DIGEST, up = (count + 1) / 2;
    PyObject *res = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(up * DIGEST));
    if (!res) { PyBuffer_Release(&lvl); return NULL; }
    kernel_fn fn = active->fn;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(res);
    Py_BEGIN_ALLOW_THREADS
    level_up(fn, lvl.buf, count, out, parse_threads(threads));
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&lvl);
    return res;
}

/* Root of the nodes in buf (count of them), reducing in place. */
static void reduce_in_place(kernel_fn fn, uint8_t *buf, size_t count, int threads) {
    while (count > 1) {
        if (threads > 1 && count / 2 >= (size_t)threads * MIN_PER_THREAD) {
            /* threaded level into a scratch half, then copy back */
            size_t pairs = count / 2;
            uint8_t *tmp = (uint8_t *)malloc((pairs + 1) * DIGEST);
            if (tmp) {
                count = level_up(fn, buf, count, tmp, threads);
                memcpy(buf, tmp, count * DIGEST);
                free(tmp);
                continue;
            }
        }
        count = level_up(fn, buf, count, buf, 1);
    }
}

#define CHUNK_LEAVES 4096          /* at most: 128 KiB of digests stays in L2 */
#define CHUNK_BYTES (4u << 20)     /* aim: a few MiB of data per chunk, so threads get work at any leaf size */

/* Leaves per chunk: a power of two (each chunk is one aligned subtree), about CHUNK_BYTES of data. */
static size_t chunk_leaves(size_t leaf) {
    size_t n = 1;
    while (n < CHUNK_LEAVES && (n * 2) * leaf <= CHUNK_BYTES) n *= 2;
    return n;
}

typedef struct {
    kernel_fn fn;
    const uint8_t *data;
    size_t len, leaf, first_chunk, n_chunks;
    uint8_t *chunk_roots;
    int ok;
} root_job_t;

static void *run_root_job(void *arg) {
    root_job_t *j = (root_job_t *)arg;
    size_t per_chunk = chunk_leaves(j->leaf), chunk_bytes = per_chunk * j->leaf;
    uint8_t *scratch = (uint8_t *)malloc(per_chunk * DIGEST);
    if (!scratch) { j->ok = 0; return NULL; }
    for (size_t c = j->first_chunk; c < j->first_chunk + j->n_chunks; c++) {
        size_t off = c * chunk_bytes, n = j->len - off < chunk_bytes ? j->len - off : chunk_bytes;
        size_t leaves = (n + j->leaf - 1) / j->leaf;
        leaf_digests(j->fn, j->data + off, n, j->leaf, scratch, 1);
        reduce_in_place(j->fn, scratch, leaves, 1);
        memcpy(j->chunk_roots + DIGEST * c, scratch, DIGEST);
    }
    free(scratch);
    j->ok = 1;
    return NULL;
}

/* Root of the tree over data, chunk by chunk so digests stay in cache; chunks spread over threads. */
static int tree_root(kernel_fn fn, const uint8_t *data, size_t len, size_t leaf, int threads, uint8_t out[DIGEST]) {
    size_t chunk_bytes = chunk_leaves(leaf) * leaf;
    if (len <= chunk_bytes) {
        size_t leaves = len ? (len + leaf - 1) / leaf : 1;
        uint8_t *buf = (uint8_t *)malloc(leaves * DIGEST);
        if (!buf) return -1;
        leaf_digests(fn, data, len, leaf, buf, 1);
        reduce_in_place(fn, buf, leaves, 1);
        memcpy(out, buf, DIGEST);
        free(buf);
        return 0;
    }
    size_t n_chunks = (len + chunk_bytes - 1) / chunk_bytes;
    uint8_t *roots = (uint8_t *)malloc(n_chunks * DIGEST);
    if (!roots) return -1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if ((size_t)threads > n_chunks) threads = (int)n_chunks;
    if (threads < 1) threads = 1;
    root_job_t jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    size_t per = (n_chunks + (size_t)threads - 1) / (size_t)threads;
    for (int t = 0; t < threads; t++) {
        size_t lo = (size_t)t * per, n = lo >= n_chunks ? 0 : (n_chunks - lo < per ? n_chunks - lo : per);
        jobs[t] = (root_job_t){fn, data, len, leaf, lo, n, roots, 0};
        if (t > 0 && n) started[t] = pthread_create(&tid[t], NULL, run_root_job, &jobs[t]) == 0;
    }
    run_root_job(&jobs[0]);
    int ok = jobs[0].ok;
    for (int t = 1; t < threads; t++) {
        if (!jobs[t].n_chunks) continue;
        if (started[t]) pthread_join(tid[t], NULL);
        else run_root_job(&jobs[t]);
        ok &= jobs[t].ok;
    }
    if (ok) {
        reduce_in_place(fn, roots, n_chunks, 1);
        memcpy(out, roots, DIGEST);
    }
    free(roots);
    return ok ? 0 : -1;
}

static PyObject *py_root(PyObject *self, PyObject *args) {
    Py_buffer data;
    Py_ssize_t leaf;
    int threads = 1, rc;
    if (!PyArg_ParseTuple(args, "y*n|i", &data, &leaf, &threads)) return NULL;
    if (leaf < 1) { PyBuffer_Release(&data); PyErr_SetString(PyExc_ValueError, "leaf_size must be >= 1"); return NULL; }
    uint8_t out[DIGEST];
    kernel_fn fn = active->fn;
    Py_BEGIN_ALLOW_THREADS
    rc = tree_root(fn, data.buf, (size_t)data.len, (size_t)leaf, parse_threads(threads), out);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    if (rc) return PyErr_NoMemory();
    return PyBytes_FromStringAndSize((const char *)out, DIGEST);
}

static PyObject *py_roots_of_blocks(PyObject *self, PyObject *args) {
    /* Subtree root of each `block`-byte block of data (the last may be short): n*32 bytes. */
    Py_buffer data;
    Py_ssize_t block, leaf;
    if (!PyArg_ParseTuple(args, "y*nn", &data, &block, &leaf)) return NULL;
    if (leaf < 1 || block < leaf) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "need 1 <= leaf_size <= block_size");
        return NULL;
    }
    size_t len = (size_t)data.len, nblk = len ? (len + (size_t)block - 1) / (size_t)block : 1;
    PyObject *res = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(nblk * DIGEST));
    if (!res) { PyBuffer_Release(&data); return NULL; }
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(res);
    int rc = 0;
    kernel_fn fn = active->fn;
    Py_BEGIN_ALLOW_THREADS
    for (size_t i = 0; i < nblk && !rc; i++) {
        size_t off = i * (size_t)block, n = len - off < (size_t)block ? len - off : (size_t)block;
        rc = tree_root(fn, (const uint8_t *)data.buf + off, len ? n : 0, (size_t)leaf, 1, out + DIGEST * i);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    if (rc) { Py_DECREF(res); return PyErr_NoMemory(); }
    return res;
}

static PyObject *py_hash_batch(PyObject *self, PyObject *args) {
    /* hash_batch(data, msg_len, count, tag=-1, kernel=None): SHA-256 of `count` messages of
       `msg_len` bytes laid out back to back, each prefixed with byte `tag` unless tag < 0. */
    Py_buffer data;
    Py_ssize_t msg_len, count;
    int tag = NO_TAG;
    const char *kname = NULL;
    if (!PyArg_ParseTuple(args, "y*nn|iz", &data, &msg_len, &count, &tag, &kname)) return NULL;
    kernel_t *k = active;
    if (kname) {
        k = NULL;
        for (size_t i = 0; i < NKERNELS; i++)
            if (!strcmp(KERNELS[i].name, kname) && KERNELS[i].available) k = &KERNELS[i];
        if (!k) { PyBuffer_Release(&data); PyErr_Format(PyExc_ValueError, "kernel %s not available", kname); return NULL; }
    }
    if (msg_len < 0 || count < 0 || tag > 255 || (count && (size_t)msg_len * (size_t)count > (size_t)data.len)) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "batch does not fit the buffer");
        return NULL;
    }
    PyObject *res = PyBytes_FromStringAndSize(NULL, count * DIGEST);
    if (!res) { PyBuffer_Release(&data); return NULL; }
    batch_t b = {data.buf, (size_t)msg_len, (size_t)msg_len, tag < 0 ? NO_TAG : tag};
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(res);
    Py_BEGIN_ALLOW_THREADS
    if (count) k->fn(&b, 0, (size_t)count, out);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    return res;
}

/* Verify proofs against one root: each is (leaf digest, index, siblings bottom-up) in a tree of
   `count` leaves. Proofs advance level by level together so that each level's node hashes go
   through the multi-lane kernel as one batch. */
#define VGROUP 64

static void verify_group(kernel_fn fn, const uint8_t *root, uint64_t leaf_count, const uint8_t *digests,
                         const uint64_t *indices, const uint8_t *const *sibs, const uint32_t *depths, size_t n,
                         uint8_t *ok) {
    uint8_t acc[VGROUP][DIGEST], pairs[VGROUP][2 * DIGEST], hashed[VGROUP][DIGEST];
    uint64_t index[VGROUP], width = leaf_count;
    uint32_t used[VGROUP];
    size_t which[VGROUP];
    for (size_t p = 0; p < n; p++) {
        memcpy(acc[p], digests + DIGEST * p, DIGEST);
        index[p] = indices[p];
        used[p] = 0;
        ok[p] = indices[p] < leaf_count;
    }
    batch_t b = {&pairs[0][0], 2 * DIGEST, 2 * DIGEST, 0x01};
    while (width > 1) {
        size_t m = 0;
        for (size_t p = 0; p < n; p++) {
            if (!ok[p]) continue;
            int left = index[p] & 1, right = !left && index[p] + 1 < width;
            if (left || right) {
                if (used[p] == depths[p]) { ok[p] = 0; continue; }
                const uint8_t *sib = sibs[p] + DIGEST * used[p]++;
                memcpy(pairs[m] + (left ? 0 : DIGEST), sib, DIGEST);
                memcpy(pairs[m] + (left ? DIGEST : 0), acc[p], DIGEST);
                which[m++] = p;
            }
            index[p] >>= 1;
        }
        if (m) fn(&b, 0, m, &hashed[0][0]);
        for (size_t q = 0; q < m; q++) memcpy(acc[which[q]], hashed[q], DIGEST);
        width = (width + 1) >> 1;
    }
    for (size_t p = 0; p < n; p++)
        ok[p] = ok[p] && used[p] == depths[p] && memcmp(acc[p], root, DIGEST) == 0;
}

static PyObject *py_verify_many(PyObject *self, PyObject *args) {
    /* verify_many(root, leaf_count, leaf_digests, indices(bytes of u64), siblings, depths(bytes of u32))
       -> bytes of 0/1 per proof. siblings holds every proof's siblings back to back. */
    Py_buffer root, leaves, idx, sib, depths;
    unsigned long long count;
    if (!PyArg_ParseTuple(args, "y*Ky*y*y*y*", &root, &count, &leaves, &idx, &sib, &depths)) return NULL;
    PyObject *res = NULL;
    size_t n = (size_t)leaves.len / DIGEST;
    if (root.len != DIGEST || leaves.len % DIGEST || (size_t)idx.len != 8 * n || (size_t)depths.len != 4 * n ||
        sib.len % DIGEST) {
        PyErr_SetString(PyExc_ValueError, "inconsistent proof batch");
        goto done;
    }
    res = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (!res) goto done;
    uint8_t *ok = (uint8_t *)PyBytes_AS_STRING(res);
    const uint64_t *ix = (const uint64_t *)idx.buf;
    const uint32_t *dp = (const uint32_t *)depths.buf;
    size_t total_sib = (size_t)sib.len / DIGEST;
    int bad = 0;
    kernel_fn fn = active->fn;
    Py_BEGIN_ALLOW_THREADS
    size_t off = 0;
    const uint8_t *sibs[VGROUP];
    for (size_t g = 0; g < n && !bad; g += VGROUP) {
        size_t cnt = n - g < VGROUP ? n - g : VGROUP;
        for (size_t p = 0; p < cnt; p++) {
            if (off + dp[g + p] > total_sib) { bad = 1; break; }
            sibs[p] = (const uint8_t *)sib.buf + DIGEST * off;
            off += dp[g + p];
        }
        if (!bad)
            verify_group(fn, root.buf, (uint64_t)count, (const uint8_t *)leaves.buf + DIGEST * g, ix + g, sibs, dp + g,
                         cnt, ok + g);
    }
    if (off != total_sib) bad = 1;
    Py_END_ALLOW_THREADS
    if (bad) { Py_CLEAR(res); PyErr_SetString(PyExc_ValueError, "siblings do not match depths"); }
done:
    PyBuffer_Release(&root); PyBuffer_Release(&leaves); PyBuffer_Release(&idx);
    PyBuffer_Release(&sib); PyBuffer_Release(&depths);
    return res;
}

/* Available kernels ordered by the calibration at import, fastest first (so the first is the one
   chosen by default); untimed ones keep their table order after the timed ones. */
static PyObject *py_kernels(PyObject *self, PyObject *noargs) {
    size_t order[NKERNELS], count = 0;
    for (size_t i = 0; i < NKERNELS; i++)
        if (KERNELS[i].available) order[count++] = i;
    for (size_t i = 1; i < count; i++) { /* insertion sort: stable, at most three entries */
        size_t cur = order[i], j = i;
        double t = KERNELS[cur].seconds > 0 ? KERNELS[cur].seconds : 1e18;
        while (j > 0) {
            double tp = KERNELS[order[j - 1]].seconds > 0 ? KERNELS[order[j - 1]].seconds : 1e18;
            if (tp <= t) break;
            order[j] = order[j - 1];
            j--;
        }
        order[j] = cur;
    }
    PyObject *list = PyList_New(0);
    if (!list) return NULL;
    for (size_t i = 0; i < count; i++) {
        PyObject *s = PyUnicode_FromString(KERNELS[order[i]].name);
        if (!s || PyList_Append(list, s)) { Py_XDECREF(s); Py_DECREF(list); return NULL; }
        Py_DECREF(s);
    }
    return list;
}

static PyObject *py_get_kernel(PyObject *self, PyObject *noargs) { return PyUnicode_FromString(active->name); }

static PyObject *py_set_kernel(PyObject *self, PyObject *arg) {
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    for (size_t i = 0; i < NKERNELS; i++)
        if (!strcmp(KERNELS[i].name, name)) {
            if (!KERNELS[i].available) return PyErr_Format(PyExc_ValueError, "kernel %s not supported by this CPU", name);
            active = &KERNELS[i];
            Py_RETURN_NONE;
        }
    return PyErr_Format(PyExc_ValueError, "unknown kernel %s", name);
}

static PyMethodDef methods[] = {
    {"root", py_root, METH_VARARGS, "root(data, leaf_size, threads=1) -> 32-byte Merkle root"},
    {"leaf_digests", py_leaf_digests, METH_VARARGS, "leaf_digests(data, leaf_size, threads=1) -> n*32 bytes"},
    {"level_up", py_level_up, METH_VARARGS, "level_up(level, threads=1) -> next level (odd node promoted)"},
    {"roots_of_blocks", py_roots_of_blocks, METH_VARARGS, "roots_of_blocks(data, block, leaf) -> n*32 bytes"},
    {"hash_batch", py_hash_batch, METH_VARARGS, "hash_batch(data, msg_len, count, tag=-1, kernel=None)"},
    {"verify_many", py_verify_many, METH_VARARGS,
     "verify_many(root, leaf_count, leaf_digests, indices_u64, siblings, depths_u32) -> bytes of 0/1"},
    {"kernels", py_kernels, METH_NOARGS, "kernels() -> names of kernels this CPU supports, fastest first"},
    {"get_kernel", py_get_kernel, METH_NOARGS, "get_kernel() -> the active kernel"},
    {"set_kernel", py_set_kernel, METH_O, "set_kernel(name): force a kernel (tests, benchmarks)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_merkle", "SIMD SHA-256 Merkle core", -1, methods,
                                     NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__merkle(void) {
    detect();
    return PyModule_Create(&module);
}
