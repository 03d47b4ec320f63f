/*
 * A persistent thread pool. A job is split into chunks that threads claim with an atomic counter;
 * the caller always works too, so a job finishes even when the other threads are descheduled (a
 * busy machine), instead of every op waiting for the slowest thread to be scheduled.
 */
#ifndef CHATGLM_POOL_H
#define CHATGLM_POOL_H

/* Runs one chunk; tid (0 = the caller) selects per-thread scratch. */
typedef void (*pool_task_fn)(void *ctx, int chunk, int tid);

typedef struct pool pool_t;

/* nthreads counts the calling thread. */
pool_t *pool_create(int nthreads);
void pool_destroy(pool_t *p);
int pool_threads(const pool_t *p);
/* Runs fn over chunks 0..nchunks-1 and returns when all are done. */
void pool_run(pool_t *p, pool_task_fn fn, void *ctx, int nchunks);

#endif
