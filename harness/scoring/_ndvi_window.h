/* One instantiation of the window kernel, included by _ndvi_window.c with
 *   ELEM           the input element type (float or double), ELEM_IS_FLOAT 1 or 0;
 *   SFX            the suffix of every name defined here;
 *   ATTR           the function attribute (a target instruction set, or nothing);
 *   KERNEL_AVX2    1 where ATTR enables AVX2 (x86 intrinsics are used), else 0.
 *
 * Every sum follows numpy's float64 pairwise summation exactly (numpy's
 * DOUBLE_pairwise_sum: a run of fewer than 8 values summed in order from 0.0; a run of
 * at most 128 values with eight running partial sums, added as
 * ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), then the last n % 8 in order;
 * a longer run split at n / 2 rounded down to a multiple of 8), on the float64 value of
 * each element. A sum here therefore has the bits of np.sum over the same float64
 * values. The lanes of a vector are independent partial sums, never reassociated, and
 * the file is compiled with -ffp-contract=off (no fused multiply-add), so each product
 * rounds before it is added, as numpy's separate passes do.
 */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SFX)

ATTR static inline v4d FN(load4)(const ELEM *x)
{
#if KERNEL_AVX2 && ELEM_IS_FLOAT
    return (v4d)_mm256_cvtps_pd(_mm_loadu_ps(x));
#elif KERNEL_AVX2
    return (v4d)_mm256_loadu_pd(x);
#elif ELEM_IS_FLOAT
    v4f f;
    memcpy(&f, x, sizeof f);
    return __builtin_convertvector(f, v4d);
#else
    v4d d;
    memcpy(&d, x, sizeof d);
    return d;
#endif
}

ATTR static inline double FN(hsum8)(v4d lo, v4d hi)
{
    return ((lo[0] + lo[1]) + (lo[2] + lo[3])) + ((hi[0] + hi[1]) + (hi[2] + hi[3]));
}

ATTR static inline v4d FN(vabs)(v4d x)
{
    const v4l sign = {INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN};
    return (v4d)((v4l)x & ~sign);
}

ATTR static inline v4d FN(vmin)(v4d a, v4d b)
{
    v4l lt = a < b;
    return (v4d)((lt & (v4l)a) | (~lt & (v4l)b));
}

ATTR static inline v4d FN(vmax)(v4d a, v4d b)
{
    v4l gt = a > b;
    return (v4d)((gt & (v4l)a) | (~gt & (v4l)b));
}

/* The running extremes of t over a block: eight float lanes where the instruction set
 * has a float min / max (the same extremes: min and max do not round), else two double
 * vectors; the block's first eight values start them. */
#if KERNEL_AVX2 && ELEM_IS_FLOAT
typedef __m256 FN(Ext);
#define EXT_LO0(t, t0, t1) _mm256_loadu_ps(t)
#define EXT_HI0(t, t0, t1) _mm256_loadu_ps(t)
#define EXT_MIN(acc, t, t0, t1) _mm256_min_ps(acc, _mm256_loadu_ps(t))
#define EXT_MAX(acc, t, t0, t1) _mm256_max_ps(acc, _mm256_loadu_ps(t))
#define EXT_LANES 8
#elif KERNEL_AVX2
typedef __m256d FN(Ext);
#define EXT_LO0(t, t0, t1) _mm256_min_pd((__m256d)(t0), (__m256d)(t1))
#define EXT_HI0(t, t0, t1) _mm256_max_pd((__m256d)(t0), (__m256d)(t1))
#define EXT_MIN(acc, t, t0, t1) _mm256_min_pd(acc, EXT_LO0(t, t0, t1))
#define EXT_MAX(acc, t, t0, t1) _mm256_max_pd(acc, EXT_HI0(t, t0, t1))
#define EXT_LANES 4
#else
typedef v4d FN(Ext);
#define EXT_LO0(t, t0, t1) FN(vmin)(t0, t1)
#define EXT_HI0(t, t0, t1) FN(vmax)(t0, t1)
#define EXT_MIN(acc, t, t0, t1) FN(vmin)(acc, EXT_LO0(t, t0, t1))
#define EXT_MAX(acc, t, t0, t1) FN(vmax)(acc, EXT_HI0(t, t0, t1))
#define EXT_LANES 4
#endif

/* One value's share of the four sums and the extremes (the runs below 8 and the tails). */
#define SUMS4_STEP(pi, ti_)                 \
    do {                                    \
        double ti = (double)(ti_);          \
        double ei = (double)(pi) - ti;      \
        e += ei;                            \
        s += ei * ei;                       \
        a += fabs(ei);                      \
        y += ti;                            \
        if (ti < *mn) *mn = ti;             \
        if (ti > *mx) *mx = ti;             \
    } while (0)

/* Pixels of a masked run still to be gathered, asked of the memory while the values
 * gathered before them are summed, so that memory and arithmetic overlap. */
typedef struct {
    const ELEM *p, *t;
    const uint8_t *v;
    Py_ssize_t i, n;
} FN(Ahead);

/* Asks for the next (about) n pixels' cache lines of p, t and v. */
ATTR static inline void FN(prefetch)(FN(Ahead) *a, Py_ssize_t n)
{
    const Py_ssize_t per_line = 64 / sizeof(ELEM);
    Py_ssize_t stop = a->i + n < a->n ? a->i + n : a->n;
    for (Py_ssize_t j = a->i; j < stop; j += per_line) {
        __builtin_prefetch(a->p + j);
        __builtin_prefetch(a->t + j);
        if (j % 64 < per_line) __builtin_prefetch(a->v + j);
    }
    a->i = stop;
}

/* The sums of err = p - t, err^2, |err| and t over n values, and t's extremes folded
 * into mn / mx. */
ATTR static void FN(sums4)(const ELEM *p, const ELEM *t, Py_ssize_t n, Sums4 *out, double *mn,
                           double *mx, FN(Ahead) *ahead)
{
    if (n < 8) {
        double e = 0., s = 0., a = 0., y = 0.;
        for (Py_ssize_t i = 0; i < n; i++) SUMS4_STEP(p[i], t[i]);
        out->err = e, out->sq = s, out->ab = a, out->y = y;
        return;
    }
    if (n <= 128) {
        if (ahead != NULL) FN(prefetch)(ahead, n);
        v4d t0 = FN(load4)(t), t1 = FN(load4)(t + 4);
        v4d e0 = FN(load4)(p) - t0, e1 = FN(load4)(p + 4) - t1;
        v4d se0 = e0, se1 = e1, ss0 = e0 * e0, ss1 = e1 * e1;
        v4d sa0 = FN(vabs)(e0), sa1 = FN(vabs)(e1), sy0 = t0, sy1 = t1;
        FN(Ext) lo = EXT_LO0(t, t0, t1), hi = EXT_HI0(t, t0, t1);
        Py_ssize_t i, stop = n - n % 8;
        for (i = 8; i < stop; i += 8) {
            t0 = FN(load4)(t + i), t1 = FN(load4)(t + i + 4);
            e0 = FN(load4)(p + i) - t0, e1 = FN(load4)(p + i + 4) - t1;
            se0 += e0, se1 += e1;
            ss0 += e0 * e0, ss1 += e1 * e1;
            sa0 += FN(vabs)(e0), sa1 += FN(vabs)(e1);
            sy0 += t0, sy1 += t1;
            lo = EXT_MIN(lo, t + i, t0, t1);
            hi = EXT_MAX(hi, t + i, t0, t1);
        }
        double e = FN(hsum8)(se0, se1), s = FN(hsum8)(ss0, ss1);
        double a = FN(hsum8)(sa0, sa1), y = FN(hsum8)(sy0, sy1);
        for (int k = 0; k < EXT_LANES; k++) {
            if (lo[k] < *mn) *mn = lo[k];
            if (hi[k] > *mx) *mx = hi[k];
        }
        for (; i < n; i++) SUMS4_STEP(p[i], t[i]);
        out->err = e, out->sq = s, out->ab = a, out->y = y;
        return;
    }
    Py_ssize_t half = n / 2;
    half -= half % 8;
    Sums4 left, right;
    FN(sums4)(p, t, half, &left, mn, mx, ahead);
    FN(sums4)(p + half, t + half, n - half, &right, mn, mx, ahead);
    out->err = left.err + right.err;
    out->sq = left.sq + right.sq;
    out->ab = left.ab + right.ab;
    out->y = left.y + right.y;
}

/* One value of the centred pass: t - c (square 0) or ((t - c) - d)^2 (square 1). */
#define CENTRED(v, square, dd) ((square) ? ((v) - (dd)) * ((v) - (dd)) : (v))

/* The sum over n values of t of (t - c) (square = 0) or of ((t - c) - d)^2 (square = 1;
 * d = 0 gives (t - c)^2, as x - 0 == x). */
ATTR static double FN(centred)(const ELEM *t, Py_ssize_t n, double c, double d, int square)
{
    if (n < 8) {
        double r = 0.;
        for (Py_ssize_t i = 0; i < n; i++) {
            double v = (double)t[i] - c;
            r += CENTRED(v, square, d);
        }
        return r;
    }
    if (n <= 128) {
        const v4d cv = {c, c, c, c}, dv = {d, d, d, d};
        v4d v0 = FN(load4)(t) - cv, v1 = FN(load4)(t + 4) - cv;
        v4d r0 = CENTRED(v0, square, dv), r1 = CENTRED(v1, square, dv);
        Py_ssize_t i, stop = n - n % 8;
        for (i = 8; i < stop; i += 8) {
            v0 = FN(load4)(t + i) - cv, v1 = FN(load4)(t + i + 4) - cv;
            r0 += CENTRED(v0, square, dv), r1 += CENTRED(v1, square, dv);
        }
        double r = FN(hsum8)(r0, r1);
        for (; i < n; i++) {
            double v = (double)t[i] - c;
            r += CENTRED(v, square, d);
        }
        return r;
    }
    Py_ssize_t half = n / 2;
    half -= half % 8;
    return FN(centred)(t, half, c, d, square) + FN(centred)(t + half, n - half, c, d, square);
}

/* A masked run of pixels read in order: the next pixel i, and where the next kept
 * target value goes (tt). */
typedef struct {
    const ELEM *p, *t;
    const uint8_t *v;
    Py_ssize_t i, n;
    ELEM *pp, *tt;
} FN(Stream);

/* The next `want` valid values of the stream: p's to s->pp (a chunk buffer, room for
 * `want`), t's to s->tt, which moves on by `want` (the stream must hold them). With
 * AVX2 (float) eight pixels at a time while eight more values are wanted: the mask's
 * eight bytes pick a permutation that moves the kept values to the front, all eight
 * are stored, and the next store starts after the kept ones. */
ATTR static void FN(take)(FN(Stream) *s, Py_ssize_t want)
{
    const ELEM *p = s->p, *t = s->t;
    const uint8_t *v = s->v;
    ELEM *pp = s->pp, *tt = s->tt;
    Py_ssize_t k = 0, i = s->i;
#if KERNEL_AVX2 && ELEM_IS_FLOAT
    const __m128i zero = _mm_setzero_si128();
    for (; k + 8 <= want && i + 8 <= s->n; i += 8) {
        __m128i m = _mm_loadl_epi64((const __m128i *)(v + i));
        unsigned keep = ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(m, zero)) & 0xFFu;
        __m256i perm = _mm256_loadu_si256((const __m256i *)compress_lut[keep]);
        _mm256_storeu_ps(pp + k, _mm256_permutevar8x32_ps(_mm256_loadu_ps(p + i), perm));
        _mm256_storeu_ps(tt + k, _mm256_permutevar8x32_ps(_mm256_loadu_ps(t + i), perm));
        k += __builtin_popcount(keep);
    }
#endif
    for (; k < want; i++) { /* nothing is written past `want`: the next values' place */
        if (v[i]) {
            pp[k] = p[i];
            tt[k] = t[i];
            k++;
        }
    }
    s->i = i;
    s->tt = tt + want;
}

/* sums4 over the next n valid values of the stream, gathered a subtree of at most
 * STREAM_CHUNK values at a time and summed while in cache (the same tree, the same bits). */
ATTR static void FN(sums4_stream)(FN(Stream) *s, Py_ssize_t n, Sums4 *out, double *mn,
                                  double *mx)
{
    if (n <= STREAM_CHUNK) {
        ELEM *tt = s->tt;
        FN(take)(s, n);
        FN(Ahead) ahead = {s->p, s->t, s->v, s->i, s->n};
        FN(sums4)(s->pp, tt, n, out, mn, mx, &ahead);
        return;
    }
    Py_ssize_t half = n / 2;
    half -= half % 8;
    Sums4 left, right;
    FN(sums4_stream)(s, half, &left, mn, mx);
    FN(sums4_stream)(s, n - half, &right, mn, mx);
    out->err = left.err + right.err;
    out->sq = left.sq + right.sq;
    out->ab = left.ab + right.ab;
    out->y = left.y + right.y;
}

/* How many of v's n bytes are nonzero. */
ATTR static Py_ssize_t FN(count)(const uint8_t *v, Py_ssize_t n)
{
    Py_ssize_t k = 0, i = 0;
#if KERNEL_AVX2
    const __m256i zero = _mm256_setzero_si256();
    for (; i + 32 <= n; i += 32) {
        __m256i m = _mm256_loadu_si256((const __m256i *)(v + i));
        k += 32 - __builtin_popcount((unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(m, zero)));
    }
#endif
    for (; i < n; i++) k += v[i] != 0;
    return k;
}

/* One task of a window (see Task in _ndvi_window.c). */
ATTR static void FN(run_task)(Task *task)
{
    const ELEM *p = task->p, *t = task->t;
    Py_ssize_t n = task->n;
    switch (task->op) {
    case OP_COUNT:
        task->k = FN(count)(task->v, n);
        break;
    case OP_SUMS4:
        task->mn = INFINITY, task->mx = -INFINITY;
        if (task->v != NULL) {
            FN(Stream) st = {p, t, task->v, 0, n, (ELEM *)task->pp, (ELEM *)task->tt};
            FN(sums4_stream)(&st, task->cap, &task->sums, &task->mn, &task->mx);
        } else {
            FN(sums4)(p, t, n, &task->sums, &task->mn, &task->mx, NULL);
        }
        break;
    case OP_CENTRED:
        task->r = FN(centred)(t, n, task->c, task->d, task->square);
        break;
    }
}

#undef SUMS4_STEP
#undef CENTRED
#undef EXT_LO0
#undef EXT_HI0
#undef EXT_MIN
#undef EXT_MAX
#undef EXT_LANES
#undef FN
#undef CAT
#undef CAT_
