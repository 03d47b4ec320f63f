/* A persistent thread pool: workers spin briefly, then sleep on a condition variable. */
#ifndef CHATGLM_POOL_H
#define CHATGLM_POOL_H

typedef void (*pool_task_fn)(void *ctx, int tid, int nth);

typedef struct pool pool_t;

/* nthreads counts the calling thread, which always takes part (tid 0). */
pool_t *pool_create(int nthreads);
void pool_destroy(pool_t *p);
int pool_threads(const pool_t *p);
/* Runs fn(ctx, tid, nth) on every thread and returns when all have finished. */
void pool_run(pool_t *p, pool_task_fn fn, void *ctx);

#endif
