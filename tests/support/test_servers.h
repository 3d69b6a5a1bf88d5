//  test_servers: start real redis-server and PostgreSQL for tests, on free
//  loopback ports in temporary folders; spawn and kill service processes.
//
//  One Redis and one PostgreSQL serve a whole ctest run (the `servers` fixture,
//  linli-test-servers up/down); each test takes its own database and Redis key
//  prefix from them (ts_env_open), so `ctest -j` is safe. A test that kills or
//  restarts a server starts private ones with ts_redis_start / ts_pg_start.
#ifndef TEST_SERVERS_H
#define TEST_SERVERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "linli_worker.h"

typedef struct {
    int port;         //  loopback port
    char dir[256];    //  folder holding its AOF, log and pid file
    char socket[108]; //  its Unix socket, dir/redis.sock; "" when that path is too long
} ts_redis_t;

typedef struct {
    int port;      //  loopback port
    char dir[256]; //  folder holding data/ and the unix socket (a libpq host=dir)
} ts_pg_t;

//  The servers, database and key prefix one test works in.
typedef struct {
    ts_redis_t redis; //  shared Redis of the run
    ts_pg_t pg;       //  shared PostgreSQL of the run
    char dsn[512];    //  libpq connection string of this test's own database
    char prefix[96];  //  Redis key prefix of this test, ending in ':'
} ts_env_t;

//  Folder under which every server of this build's test run lives.
const char *ts_root(void);

//  A free TCP port on 127.0.0.1 (bound then released).
int ts_free_port(void);

//  Milliseconds since the Unix epoch / since an arbitrary start.
int64_t ts_now_ms(void);
int64_t ts_mono_ms(void);
//  Sleep ms milliseconds.
void ts_sleep_ms(int ms);

//  Start a private redis-server (appendonly, everysec) on a free port, and on
//  the Unix socket self->socket when its path fits. 0 or -1.
int ts_redis_start(ts_redis_t *self);
//  SIGKILL it, keeping its folder so ts_redis_restart finds its AOF.
int ts_redis_kill(ts_redis_t *self);
//  Start it again on the same port and folder.
int ts_redis_restart(ts_redis_t *self);
//  Stop it and remove its folder.
int ts_redis_stop(ts_redis_t *self);

//  initdb and start a private PostgreSQL (superuser "linli", trust on loopback).
int ts_pg_start(ts_pg_t *self);
//  Immediate shutdown (like a crash), keeping the data folder.
int ts_pg_kill(ts_pg_t *self);
//  Start it again on the same port and folder.
int ts_pg_restart(ts_pg_t *self);
//  Stop it and remove its folder.
int ts_pg_stop(ts_pg_t *self);
//  Create a fresh database named after name and this process; write its DSN.
int ts_pg_create_db(const ts_pg_t *self, const char *name, char *dsn, size_t cap);

//  The run's shared servers, as the fixture recorded them. -1 (with a message
//  on stderr) when the fixture did not run: a missing server is a failure.
int ts_shared(ts_redis_t *redis, ts_pg_t *pg);
//  Shared servers plus a fresh database and a unique key prefix for test_name.
int ts_env_open(ts_env_t *env, const char *test_name);

//  Run argv (argv[0] looked up in PATH) and wait; the exit status, or -1.
//  When as_postgres and we are root, run it as the postgres user.
int ts_run(const char *const argv[], bool as_postgres);
//  Start argv with extra environment entries ("NAME=VALUE", NULL-terminated,
//  may be NULL); stdout/stderr go to log_path when not NULL. The child is
//  killed if the test process dies. Returns its pid or -1.
pid_t ts_spawn(const char *const argv[], const char *const env[], const char *log_path);
//  Send sig and reap the child (waits up to 5 s, then SIGKILL).
int ts_kill(pid_t pid, int sig);

//  Path of a binary built by this build (e.g. "linli-gateway").
const char *ts_bin(const char *name, char *buf, size_t cap);

//  Folder of the PostgreSQL server binaries (initdb, pg_ctl, pg_dump).
const char *ts_pg_bindir(void);

//  Body of a zactor: run a linli worker with opts until the pipe says $TERM;
//  the requests it handled into handled (may be NULL).
void ts_worker_run(zsock_t *pipe, const linli_worker_opts_t *opts, uint64_t *handled);

//  Sweep every server left under ts_root() (the fixture's cleanup).
void ts_sweep(void);

#endif
