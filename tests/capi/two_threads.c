/* Two threads generating on one loaded model, each with its own context, give the results of
 * the same requests run one after the other: the model holds no per-request state and takes
 * no lock around a request. Usage: capi_two_threads MODEL_DIR (exit status 0 when equal). */
#include <illada/illada.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kRequests = 4, kRounds = 3 };

typedef struct job {
  const illada_model* model;
  int request;                       /* which of the kRequests settings */
  illada_generation result[kRounds]; /* one per round                   */
  illada_status status;
  char error[512];
} job;

static const illada_token kPrompts[kRequests][4] = {{1, 2, 3, 4}, {7, 8, 9, 0}, {3, 3, 3, 3}, {10, 20, 30, 40}};

/* Different settings per request, so that the threads run different code paths at once:
 * fixed canvas, variable length, threshold with dual cache, sampling with a seed. */
static illada_generate_params params_for(int request) {
  illada_generate_params p = illada_generate_default_params();
  p.gen_length = 32;
  p.block_length = 8;
  p.steps = 16;
  switch (request) {
    case 1:
      p.variable_length = 1;
      p.steps = 8;
      break;
    case 2:
      p.threshold = 0.5;
      p.cache = ILLADA_CACHE_DUAL;
      p.steps = 32;
      break;
    case 3:
      p.temperature = 1.0;
      p.seed = 11;
      break;
  }
  return p;
}

static illada_status run_request(const illada_model* model, int request, illada_generation* out, char* error,
                                 size_t error_size) {
  illada_context* ctx = NULL;
  illada_status s = illada_context_new(model, NULL, &ctx);
  if (s != ILLADA_OK) return s;
  const illada_tokens prompt = {kPrompts[request], 4};
  const illada_generate_params p = params_for(request);
  s = illada_generate(ctx, &prompt, 1, &p, out);
  if (s != ILLADA_OK) snprintf(error, error_size, "%s", illada_context_error(ctx));
  illada_context_free(ctx);
  return s;
}

static void* thread_main(void* arg) {
  job* j = (job*)arg;
  for (int round = 0; round < kRounds && j->status == ILLADA_OK; ++round) {
    j->status = run_request(j->model, j->request, &j->result[round], j->error, sizeof j->error);
  }
  return NULL;
}

static int same(const illada_generation* a, const illada_generation* b) {
  return a->n_ids == b->n_ids && a->nfe == b->nfe && memcmp(a->ids, b->ids, a->n_ids * sizeof(illada_token)) == 0;
}

/* Runs every pair of requests at once (several rounds each) and compares with `expected`. */
static int run_pairs(const illada_model* model, const illada_generation* expected, const char* label) {
  int failures = 0;
  for (int a = 0; a < kRequests; ++a) {
    for (int b = a; b < kRequests; ++b) {
      job jobs[2];
      memset(jobs, 0, sizeof jobs);
      jobs[0].model = model;
      jobs[0].request = a;
      jobs[1].model = model;
      jobs[1].request = b;
      pthread_t threads[2];
      for (int t = 0; t < 2; ++t) pthread_create(&threads[t], NULL, thread_main, &jobs[t]);
      for (int t = 0; t < 2; ++t) pthread_join(threads[t], NULL);
      for (int t = 0; t < 2; ++t) {
        if (jobs[t].status != ILLADA_OK) {
          fprintf(stderr, "FAIL (%s): requests %d and %d at once: %s\n", label, a, b, jobs[t].error);
          ++failures;
          continue;
        }
        for (int round = 0; round < kRounds; ++round) {
          if (!same(&jobs[t].result[round], &expected[jobs[t].request])) {
            fprintf(stderr, "FAIL (%s): request %d run beside request %d (round %d) differs from its sequential result\n",
                    label, jobs[t].request, t == 0 ? b : a, round);
            ++failures;
          }
          illada_generation_clear(&jobs[t].result[round], 1);
        }
      }
    }
  }
  return failures;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
    return 2;
  }
  /* Both precisions (their products and attention take different paths), with one and with
   * two OpenMP threads per request. */
  const illada_dtype dtypes[] = {ILLADA_DTYPE_F32, ILLADA_DTYPE_BF16};
  const int thread_counts[] = {1, 2};
  int failures = 0;
  for (int d = 0; d < 2; ++d) {
    for (int t = 0; t < 2; ++t) {
      char label[64];
      snprintf(label, sizeof label, "%s, %d thread(s) per request", d == 0 ? "f32" : "bf16", thread_counts[t]);
      illada_model_params mp = illada_model_default_params();
      mp.dtype = dtypes[d];
      mp.n_threads = thread_counts[t];
      illada_model* model = NULL;
      char error[512];
      if (illada_model_load(argv[1], &mp, &model, error, sizeof error) != ILLADA_OK) {
        fprintf(stderr, "FAIL: %s\n", error);
        return 1;
      }
      illada_generation expected[kRequests];
      for (int r = 0; r < kRequests; ++r) {
        if (run_request(model, r, &expected[r], error, sizeof error) != ILLADA_OK) {
          fprintf(stderr, "FAIL (%s): sequential request %d: %s\n", label, r, error);
          return 1;
        }
      }
      failures += run_pairs(model, expected, label);
      illada_generation_clear(expected, kRequests);
      illada_model_free(model);
    }
  }
  if (failures) return 1;
  printf("two_threads: %d pairs of concurrent requests equal the sequential results (f32 and bf16, 1 and 2 threads each)\n",
         kRequests * (kRequests + 1) / 2);
  return 0;
}
