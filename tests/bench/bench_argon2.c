//  bench_argon2 [ops] [mem_kb]: milliseconds of one argon2id hash with the
//  given parameters (the cost that bounds sign-up), averaged over 10.
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "linli_crypto.h"

int
main(int argc, char **argv)
{
    unsigned long long ops = argc > 1 ? strtoull(argv[1], NULL, 10) : 2;
    size_t mem = (argc > 2 ? strtoull(argv[2], NULL, 10) : 65536) * 1024;
    if (sodium_init() < 0)
        return 1;
    linli_password_set_limits(ops, mem);
    char out[crypto_pwhash_STRBYTES];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 10; i++)
        if (linli_password_hash("bench-password-1", out))
            return 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms =
        ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / 10;
    printf("%.2f\n", ms);
    return 0;
}
