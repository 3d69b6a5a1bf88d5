//  linli-test-servers up|down: the ctest fixture that starts the run's shared
//  Redis and PostgreSQL, records where they are, and sweeps everything after.
#include "test_servers.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "up") && strcmp(argv[1], "down"))) {
        fprintf(stderr, "usage: linli-test-servers up|down\n");
        return 2;
    }
    if (!strcmp(argv[1], "down")) {
        ts_sweep();
        unlink(LINLI_TEST_STATE);
        printf("servers stopped and removed\n");
        return 0;
    }
    ts_sweep(); //  leftovers of an interrupted run
    ts_redis_t redis;
    ts_pg_t pg;
    if (ts_redis_start(&redis) || ts_pg_start(&pg)) {
        ts_sweep();
        return 1;
    }
    FILE *f = fopen(LINLI_TEST_STATE, "w");
    if (!f) {
        perror(LINLI_TEST_STATE);
        ts_sweep();
        return 1;
    }
    fprintf(f, "redis_port=%d\nredis_dir=%s\nredis_socket=%s\npg_port=%d\npg_dir=%s\n", redis.port,
            redis.dir, redis.socket, pg.port, pg.dir);
    fclose(f);
    printf("redis on 127.0.0.1:%d, postgresql on 127.0.0.1:%d\n", redis.port, pg.port);
    return 0;
}
