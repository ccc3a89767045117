/* harness.scoring._ndvi_window: the ndvi statistics of one window of a chip, compiled,
 * with the bits of the numpy path (ndvi_sums._window_sums_numpy).
 *
 * window_sums(p, t, v, pp, tt, centre, alone) -> (n, sum_err, sum_sq_err, sum_abs_err,
 *     sum_y, centre, shifted_sum, m2_y, min_y, max_y)
 *
 *   p, t    1-D C-contiguous float32 or float64 buffers of one length and one dtype
 *   v       a 1-D bool (or uint8) buffer of that length, or None (every pixel valid)
 *   pp, tt  writable buffers of p's dtype and at least its length (the valid values are
 *           gathered there when v is given)
 *   centre  a float, or None for the window's own mean
 *   alone   true when the window is the whole chip (m2_y around its own mean)
 *
 * The GIL is released while it works. A large window is split in two along the top of
 * numpy's summation tree and the halves are summed on two threads (the caller's and one
 * worker), which gives the same bits as one thread. set_threads(1) keeps to one.
 * Built by setup.py where a C compiler is found; without it the harness uses numpy
 * alone, to the same bits, slower.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

typedef double v4d __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef int64_t v4l __attribute__((vector_size(32)));

typedef struct {
    double err, sq, ab, y;
} Sums4;

enum { OP_COUNT, OP_SUMS4, OP_CENTRED };

/* One piece of work on a contiguous range; what each op reads and writes:
 *   OP_COUNT    v, n -> k (nonzero bytes)
 *   OP_SUMS4    p, t, n -> sums, mn, mx; with v: the sums of the first cap valid values
 *               of those n pixels, their targets gathered to tt (pp: a chunk buffer of
 *               STREAM_CHUNK values)
 *   OP_CENTRED  t, n, c, d, square -> r */
typedef struct {
    int op;
    const void *p, *t;
    const uint8_t *v;
    Py_ssize_t n, cap;
    void *pp, *tt;
    double c, d;
    int square;
    Py_ssize_t k;
    Sums4 sums;
    double mn, mx, r;
} Task;

/* Values gathered and summed at a time, in cache (a subtree of numpy's tree). */
#define STREAM_CHUNK 2048

/* compress_lut[m]: the lanes whose bit is set in m, in order, then the others. */
static int32_t compress_lut[256][8];

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_X86_CLONES 1
#include <immintrin.h>
#else
#define HAVE_X86_CLONES 0
#endif

#define KERNEL_AVX2 0
#define ATTR
#define ELEM float
#define ELEM_IS_FLOAT 1
#define SFX _f32
#include "_ndvi_window.h"
#undef ELEM
#undef ELEM_IS_FLOAT
#undef SFX
#define ELEM double
#define ELEM_IS_FLOAT 0
#define SFX _f64
#include "_ndvi_window.h"
#undef ELEM
#undef ELEM_IS_FLOAT
#undef SFX
#undef KERNEL_AVX2
#undef ATTR

#if HAVE_X86_CLONES
#define KERNEL_AVX2 1
#define ATTR __attribute__((target("avx2")))
#define ELEM float
#define ELEM_IS_FLOAT 1
#define SFX _f32_avx2
#include "_ndvi_window.h"
#undef ELEM
#undef ELEM_IS_FLOAT
#undef SFX
#define ELEM double
#define ELEM_IS_FLOAT 0
#define SFX _f64_avx2
#include "_ndvi_window.h"
#undef ELEM
#undef ELEM_IS_FLOAT
#undef SFX
#undef KERNEL_AVX2
#undef ATTR
#endif

typedef void (*RunFn)(Task *);
static RunFn run_f32 = run_task_f32, run_f64 = run_task_f64;
static const char *isa_name = "baseline";

/* ---- the worker thread ------------------------------------------------------------ */

/* Windows below this many values are summed on one thread: waking the worker costs more. */
#define PARALLEL_MIN 65536
/* Spins (a pause instruction each, tens of ns) before a waiting thread sleeps or yields. */
#define SPINS 2000

static int threads = 2;
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER; /* one window at a time uses it */
static pthread_mutex_t wake_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cv = PTHREAD_COND_INITIALIZER;
static int worker_started = 0, worker_sleeping = 0;
static atomic_int job_state = 0; /* 0 none, 1 posted, 2 done */
static RunFn job_run;
static Task *job_task;

static inline void cpu_relax(void)
{
#if HAVE_X86_CLONES
    _mm_pause();
#endif
}

static void *worker_main(void *unused)
{
    (void)unused;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&job_state, memory_order_acquire) != 1) {
            if (++spins < SPINS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&wake_mu);
            worker_sleeping = 1;
            while (atomic_load_explicit(&job_state, memory_order_acquire) != 1)
                pthread_cond_wait(&wake_cv, &wake_mu);
            worker_sleeping = 0;
            pthread_mutex_unlock(&wake_mu);
        }
        job_run(job_task);
        atomic_store_explicit(&job_state, 2, memory_order_release);
    }
    return NULL;
}

/* After fork() the child has no worker: start afresh there. */
static void after_fork_child(void)
{
    pthread_mutex_init(&pool_mu, NULL);
    pthread_mutex_init(&wake_mu, NULL);
    pthread_cond_init(&wake_cv, NULL);
    worker_started = 0, worker_sleeping = 0;
    atomic_store(&job_state, 0);
}

static int start_worker(void)
{
    if (worker_started) return 1;
    pthread_attr_t attr;
    pthread_t tid;
    if (pthread_attr_init(&attr) != 0) return 0;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int ok = pthread_create(&tid, &attr, worker_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    worker_started = ok;
    return ok;
}

/* Runs a and b, b on the worker when the pool is free (else both here, in turn). */
static void run_pair(RunFn run, Task *a, Task *b)
{
    if (threads < 2 || pthread_mutex_trylock(&pool_mu) != 0) {
        run(a);
        run(b);
        return;
    }
    if (!start_worker()) {
        pthread_mutex_unlock(&pool_mu);
        run(a);
        run(b);
        return;
    }
    job_run = run, job_task = b;
    pthread_mutex_lock(&wake_mu);
    atomic_store_explicit(&job_state, 1, memory_order_release);
    if (worker_sleeping) pthread_cond_signal(&wake_cv);
    pthread_mutex_unlock(&wake_mu);
    run(a);
    int spins = 0;
    while (atomic_load_explicit(&job_state, memory_order_acquire) != 2) {
        if (++spins < SPINS)
            cpu_relax();
        else
            sched_yield(); /* the worker was descheduled: give it the core */
    }
    atomic_store_explicit(&job_state, 0, memory_order_relaxed);
    pthread_mutex_unlock(&pool_mu);
}

/* ---- one window --------------------------------------------------------------------- */

typedef struct {
    Py_ssize_t n;
    Sums4 sums;
    double centre, shifted_sum, m2_y, min_y, max_y;
} WindowOut;

/* Both halves of a split task: the right one starts `at` values (and pixels `px`) in. */
static void halves(const Task *whole, Task *left, Task *right, Py_ssize_t at, Py_ssize_t px,
                   size_t item)
{
    *left = *whole, *right = *whole;
    left->n = px;
    right->n = whole->n - px;
    right->p = (const char *)whole->p + px * item;
    right->t = (const char *)whole->t + px * item;
    if (whole->v != NULL) {
        left->cap = at;
        right->v = whole->v + px;
        right->pp = (char *)whole->pp + STREAM_CHUNK * item; /* each its own chunk */
        right->tt = (char *)whole->tt + at * item;
        right->cap = whole->cap - at;
    }
}

/* numpy's top split of a pairwise sum over n values. */
static Py_ssize_t top_split(Py_ssize_t n)
{
    Py_ssize_t half = n / 2;
    return half - half % 8;
}

static void window(int is_float, const void *p, const void *t, const uint8_t *v, Py_ssize_t size,
                   void *pp, void *tt, double centre, int have_centre, int alone, WindowOut *o)
{
    RunFn run = is_float ? run_f32 : run_f64;
    size_t item = is_float ? 4 : 8;
    /* n: the values summed (the valid pixels); split: at what value the two threads meet
     * (0: one thread). With a mask, each thread gathers the valid pixels on its side of
     * the split a chunk at a time and sums each chunk while it is in cache. */
    int two = threads >= 2 && size >= PARALLEL_MIN;
    Py_ssize_t n = size, split = 0, px = 0; /* px: the pixel where the right half starts */
    if (v != NULL) { /* the two halves of the mask counted at once */
        Task a = {.op = OP_COUNT, .v = v, .n = size / 2}, b = a;
        b.v = v + a.n, b.n = size - a.n;
        if (two)
            run_pair(run, &a, &b);
        else
            run(&a), run(&b);
        n = a.k + b.k;
        split = two && n >= PARALLEL_MIN ? top_split(n) : 0;
        /* from the middle of the mask, the few pixels to where `split` values lie before
         * (any such pixel will do: nodata pixels add nothing) */
        Py_ssize_t k = a.k;
        for (px = a.n; split && k > split;) k -= v[--px] != 0;
        for (; split && k < split; px++) k += v[px] != 0;
    } else if (two) {
        split = px = top_split(n);
    }
    Task whole = {.op = OP_SUMS4, .p = p, .t = t, .v = v, .n = size, .pp = pp, .tt = tt,
                  .cap = n},
         l, r;
    Sums4 s;
    double mn, mx;
    if (split) {
        halves(&whole, &l, &r, split, px, item);
        run_pair(run, &l, &r);
        s = l.sums; /* add the halves as the top of the tree does */
        s.err += r.sums.err, s.sq += r.sums.sq, s.ab += r.sums.ab, s.y += r.sums.y;
        mn = l.mn < r.mn ? l.mn : r.mn;
        mx = l.mx > r.mx ? l.mx : r.mx;
    } else {
        run(&whole);
        s = whole.sums, mn = whole.mn, mx = whole.mx;
    }
    if (v != NULL) t = tt;
    o->n = n;
    o->sums = s;
    o->min_y = n ? mn + 0.0 : INFINITY; /* + 0.0: a zero extreme is +0.0, as in numpy's path */
    o->max_y = n ? mx + 0.0 : -INFINITY;
    if (!have_centre) centre = n ? s.y / (double)n : 0.0;
    o->centre = centre;
    o->shifted_sum = 0.0;
    o->m2_y = 0.0;
    if (n && isfinite(s.y)) {
        Task c = {.op = OP_CENTRED, .t = t, .n = n, .c = centre, .d = 0.0};
        for (c.square = alone; c.square <= 1; c.square++) {
            double sum;
            if (split) {
                halves(&c, &l, &r, split, split, item);
                run_pair(run, &l, &r);
                sum = l.r + r.r;
            } else {
                run(&c);
                sum = c.r;
            }
            if (c.square) {
                o->m2_y = sum;
            } else { /* a window among others: its own m2_y around its mean, shifted */
                o->shifted_sum = sum;
                c.d = sum / (double)n;
            }
        }
    }
}

/* ---- Python ------------------------------------------------------------------------- */

static int get(PyObject *obj, Py_buffer *buf, int writable, const char *name)
{
    int flags = PyBUF_FORMAT | PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, buf, flags) < 0) {
        PyErr_Format(PyExc_TypeError, "window_sums: %s must be a C-contiguous%s buffer", name,
                     writable ? " writable" : "");
        return -1;
    }
    return 0;
}

/* The one-character format of a buffer ('f', 'd', '?', 'B'), 0 for anything else. */
static char kind(const Py_buffer *buf)
{
    const char *f = buf->format ? buf->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    return f[0] && !f[1] ? f[0] : 0;
}

static PyObject *window_sums(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *objs[5], *centre_obj;
    int alone;
    if (!PyArg_ParseTuple(args, "OOOOOOp", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4],
                          &centre_obj, &alone))
        return NULL;
    double centre = 0.0;
    int have_centre = centre_obj != Py_None;
    if (have_centre) {
        centre = PyFloat_AsDouble(centre_obj);
        if (centre == -1.0 && PyErr_Occurred()) return NULL;
    }
    static const char *names[5] = {"p", "t", "v", "pp", "tt"};
    Py_buffer b[5];
    int taken[5] = {0, 0, 0, 0, 0};
    const char *problem = NULL;
    for (int i = 0; i < 5 && !problem; i++) {
        if (i == 2 && objs[i] == Py_None) continue;
        if (get(objs[i], &b[i], i >= 3, names[i]) < 0) {
            problem = "";
            break;
        }
        taken[i] = 1;
    }
    char k = taken[0] ? kind(&b[0]) : 0;
    Py_ssize_t item = k == 'f' ? 4 : k == 'd' ? 8 : 0, n = item ? b[0].len / item : 0;
    if (problem)
        ;
    else if (!item || b[0].itemsize != item)
        problem = "p must be float32 or float64";
    else if (kind(&b[1]) != k || b[1].len != b[0].len)
        problem = "t must have p's dtype and length";
    else if (taken[2] && ((kind(&b[2]) != '?' && kind(&b[2]) != 'B') || b[2].len != n))
        problem = "v must be a bool mask of p's length";
    else if (kind(&b[3]) != k || kind(&b[4]) != k || b[3].len < b[0].len || b[4].len < b[0].len)
        problem = "pp and tt must have p's dtype and at least its length";
    if (problem) {
        for (int i = 0; i < 5; i++)
            if (taken[i]) PyBuffer_Release(&b[i]);
        if (*problem) PyErr_SetString(PyExc_ValueError, problem);
        return NULL;
    }
    WindowOut o;
    const uint8_t *v = taken[2] ? (const uint8_t *)b[2].buf : NULL;
    Py_BEGIN_ALLOW_THREADS;
    window(k == 'f', b[0].buf, b[1].buf, v, n, b[3].buf, b[4].buf, centre, have_centre, alone,
           &o);
    Py_END_ALLOW_THREADS;
    for (int i = 0; i < 5; i++)
        if (taken[i]) PyBuffer_Release(&b[i]);
    return Py_BuildValue("(nddddddddd)", o.n, o.sums.err, o.sums.sq, o.sums.ab, o.sums.y, o.centre,
                         o.shifted_sum, o.m2_y, o.min_y, o.max_y);
}

static PyObject *set_threads(PyObject *self, PyObject *arg)
{
    (void)self;
    long want = PyLong_AsLong(arg);
    if (want == -1 && PyErr_Occurred()) return NULL;
    if (want != 1 && want != 2) {
        PyErr_SetString(PyExc_ValueError, "set_threads: 1 or 2");
        return NULL;
    }
    long before = threads;
    threads = (int)want;
    return PyLong_FromLong(before);
}

static PyObject *info(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    return Py_BuildValue("{s:s,s:i}", "isa", isa_name, "threads", threads);
}

static PyMethodDef methods[] = {
    {"window_sums", window_sums, METH_VARARGS, "The ndvi statistics of one window."},
    {"set_threads", set_threads, METH_O, "Threads per window (1 or 2); returns the old value."},
    {"info", info, METH_NOARGS, "The instruction set and the threads per window."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_ndvi_window",
    .m_doc = "The ndvi window kernel (compiled).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__ndvi_window(void)
{
    for (int m = 0; m < 256; m++) {
        int out = 0;
        for (int lane = 0; lane < 8; lane++)
            if (m & (1 << lane)) compress_lut[m][out++] = lane;
        for (int lane = 0; lane < 8; lane++)
            if (!(m & (1 << lane))) compress_lut[m][out++] = lane;
    }
#if HAVE_X86_CLONES
    /* SARBENCH_KERNEL_ISA=baseline keeps to the portable code (for tests and benches) */
    const char *cap = getenv("SARBENCH_KERNEL_ISA");
    __builtin_cpu_init();
    if (!(cap && strcmp(cap, "baseline") == 0) && __builtin_cpu_supports("avx2")) {
        run_f32 = run_task_f32_avx2, run_f64 = run_task_f64_avx2;
        isa_name = "avx2";
    }
#endif
    pthread_atfork(NULL, NULL, after_fork_child);
    return PyModule_Create(&module);
}
