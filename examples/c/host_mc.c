/*
 * host_mc.c: a small Monte Carlo program in C that owns its energy and its local moves and
 * mixes in boltzgen's learned proposals through the C ABI.
 *
 * The system is the 2-D double well U(x, y) = x^4 - 6x^2 + x + y^2/2 at beta = 1, whose
 * minor (right) well holds 3.3 % of the mass; a random walk alone almost never crosses the
 * barrier. The program prints the acceptance of both kinds of move and its estimate of the
 * left-well weight P(x < 0), with a batch-means error bar.
 *
 * Build (after `cargo build --release --features capi`):
 *   cc -O2 -std=c99 -I include examples/c/host_mc.c -L target/release -lboltzgen \
 *      -Wl,-rpath,$PWD/target/release -lm -o host_mc
 * Run:
 *   ./host_mc MODEL.json [STEPS] [SEED]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "boltzgen.h"

#define DIM 2
#define BATCHES 100
#define ENGINE_FRACTION 0.25
#define LOCAL_STEP 0.5

static double energy(const double *x) {
    double a = x[0] * x[0];
    return a * a - 6.0 * a + x[0] + 0.5 * x[1] * x[1];
}

/* The host's own random numbers: SplitMix64. */
static uint64_t rng_state;

static uint64_t next_u64(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double uniform(void) { return (double)(next_u64() >> 11) * 0x1.0p-53; }

static double gaussian(void) {
    double u1 = 1.0 - uniform(); /* (0, 1]: the logarithm stays finite */
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * uniform());
}

/* Exits with boltzgen's message when a call fails. */
static void check(BgStatus status, const char *call) {
    if (status != BG_OK) {
        const char *message = "";
        bg_last_error(&message);
        fprintf(stderr, "host_mc: %s failed (status %d): %s\n", call, (int)status, message);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.json [STEPS] [SEED]\n", argv[0]);
        return 2;
    }
    long steps = argc > 2 ? atol(argv[2]) : 200000;
    unsigned long long seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
    if (steps < BATCHES) {
        fprintf(stderr, "host_mc: STEPS must be at least %d\n", BATCHES);
        return 2;
    }
    rng_state = seed;

    char config[128];
    snprintf(config, sizeof config, "seed = %llu\nbuffer = 512\ndevice = \"cpu\"\n", seed);
    BgEngine *engine = NULL;
    check(bg_engine_open(argv[1], config, &engine), "bg_engine_open");
    size_t dim = 0;
    check(bg_engine_dim(engine, &dim), "bg_engine_dim");
    if (dim != DIM) {
        fprintf(stderr, "host_mc: the model has %zu coordinates, this host %d\n", dim, DIM);
        bg_engine_free(engine);
        return 1;
    }

    double x[DIM] = {-1.7, 0.0}, x_new[DIM];
    double u = energy(x);
    long engine_tried = 0, engine_accepted = 0, local_tried = 0, local_accepted = 0;
    long per_batch = steps / BATCHES;
    double batch_sum[BATCHES] = {0};
    for (long t = 0; t < per_batch * BATCHES; t++) {
        double log_hastings = 0.0;
        int learned = uniform() < ENGINE_FRACTION;
        if (learned) {
            check(bg_propose(engine, x, DIM, x_new, &log_hastings), "bg_propose");
            engine_tried++;
        } else {
            for (int i = 0; i < DIM; i++) x_new[i] = x[i] + LOCAL_STEP * gaussian();
            local_tried++;
        }
        double u_new = energy(x_new), log_alpha;
        int accepted;
        check(bg_log_acceptance(1.0, u, u_new, log_hastings, &log_alpha), "bg_log_acceptance");
        check(bg_accept(log_alpha, uniform(), &accepted), "bg_accept");
        if (accepted) {
            for (int i = 0; i < DIM; i++) x[i] = x_new[i];
            u = u_new;
            if (learned) engine_accepted++; else local_accepted++;
        }
        batch_sum[t / per_batch] += x[0] < 0.0;
    }
    check(bg_engine_free(engine), "bg_engine_free");

    double mean = 0.0, var = 0.0;
    for (int b = 0; b < BATCHES; b++) mean += batch_sum[b] / per_batch / BATCHES;
    for (int b = 0; b < BATCHES; b++) {
        double d = batch_sum[b] / per_batch - mean;
        var += d * d / (BATCHES - 1);
    }
    printf("engine acceptance = %.4f\n", (double)engine_accepted / (double)engine_tried);
    printf("local acceptance = %.4f\n", (double)local_accepted / (double)local_tried);
    printf("left_fraction = %.6f +- %.6f\n", mean, sqrt(var / BATCHES));
    return 0;
}
