//  test_servers: real redis-server and PostgreSQL for tests.
#include "test_servers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <hiredis.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char s_root[128];

const char *
ts_root(void)
{
    if (!*s_root) {
        const char *env = getenv("LINLI_TEST_TMP");
        if (env && *env) {
            snprintf(s_root, sizeof s_root, "%s", env);
        } else {
            //  One short folder per build tree: unix socket paths stay short,
            //  and two build trees (normal, sanitizer) never sweep each other.
            unsigned long h = 5381;
            for (const char *p = LINLI_BUILD_DIR; *p; p++)
                h = h * 33 + (unsigned char)*p;
            snprintf(s_root, sizeof s_root, "/tmp/linli-test-%08lx", h & 0xffffffffUL);
        }
    }
    //  Made again every time: a sweep removes it.
    if (mkdir(s_root, 0755) == 0)
        chmod(s_root, 0755);
    return s_root;
}

int64_t
ts_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
ts_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
ts_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int
ts_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

static bool
s_is_root(void)
{
    return geteuid() == 0;
}

static pid_t
s_fork_exec(const char *const argv[], const char *const env[], const char *log_path,
            bool as_postgres, bool die_with_parent)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (die_with_parent)
            prctl(PR_SET_PDEATHSIG, SIGKILL);
        setpgid(0, 0);
        if (log_path) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, STDOUT_FILENO);
                dup2(fd, STDERR_FILENO);
                close(fd);
            }
        }
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        if (as_postgres && s_is_root()) {
            const char *wrapped[64];
            size_t n = 0;
            wrapped[n++] = "runuser";
            wrapped[n++] = "-u";
            wrapped[n++] = "postgres";
            wrapped[n++] = "--";
            for (size_t i = 0; argv[i] && n < 63; i++)
                wrapped[n++] = argv[i];
            wrapped[n] = NULL;
            execvp(wrapped[0], (char *const *)wrapped);
        } else {
            execvp(argv[0], (char *const *)argv);
        }
        fprintf(stderr, "test_servers: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

int
ts_run(const char *const argv[], bool as_postgres)
{
    pid_t pid = s_fork_exec(argv, NULL, NULL, as_postgres, false);
    if (pid < 0)
        return -1;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

pid_t
ts_spawn(const char *const argv[], const char *const env[], const char *log_path)
{
    return s_fork_exec(argv, env, log_path, false, true);
}

int
ts_kill(pid_t pid, int sig)
{
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    for (int i = 0; i < 500; i++) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return 0;
        ts_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 0;
}

const char *
ts_bin(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", LINLI_BUILD_DIR, name);
    return buf;
}

const char *
ts_pg_bindir(void)
{
    static char dir[256];
    if (*dir)
        return dir;
    const char *env = getenv("LINLI_PG_BINDIR");
    if (env && *env) {
        snprintf(dir, sizeof dir, "%s", env);
        return dir;
    }
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        //  The newest installed major version sorts last.
        snprintf(dir, sizeof dir, "%s", g.gl_pathv[g.gl_pathc - 1]);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
    } else {
        snprintf(dir, sizeof dir, "/usr/lib/postgresql/15/bin");
    }
    globfree(&g);
    return dir;
}

static int
s_make_dir(const char *kind, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s-XXXXXX", ts_root(), kind);
    if (!mkdtemp(out)) {
        fprintf(stderr, "test_servers: mkdtemp %s: %s\n", out, strerror(errno));
        return -1;
    }
    chmod(out, 0755);
    return 0;
}

static void
s_remove_dir(const char *dir)
{
    if (!*dir || strncmp(dir, "/tmp/", 5) != 0)
        return;
    const char *argv[] = {"rm", "-rf", dir, NULL};
    ts_run(argv, false);
}

// ---------------------------------------------------------------- Redis

static int
s_redis_wait(const ts_redis_t *self, int timeout_ms)
{
    int64_t until = ts_mono_ms() + timeout_ms;
    while (ts_mono_ms() < until) {
        struct timeval tv = {1, 0};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", self->port, tv);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            bool ok = r && r->type == REDIS_REPLY_STATUS;
            if (r)
                freeReplyObject(r);
            redisFree(c);
            if (ok)
                return 0;
        } else if (c) {
            redisFree(c);
        }
        ts_sleep_ms(20);
    }
    fprintf(stderr, "test_servers: redis on port %d did not answer\n", self->port);
    return -1;
}

//  Set self->socket from self->dir: dir/redis.sock, or "" when the path would
//  not fit a sockaddr_un (redis-server would cut it short).
static void
s_redis_socket_path(ts_redis_t *self)
{
    char path[sizeof self->dir + 16];
    int n = snprintf(path, sizeof path, "%s/redis.sock", self->dir);
    if (n > 0 && (size_t)n < sizeof self->socket)
        memcpy(self->socket, path, (size_t)n + 1);
    else
        self->socket[0] = '\0';
}

static int
s_redis_launch(ts_redis_t *self)
{
    char port[16], pidfile[300], logfile[300];
    snprintf(port, sizeof port, "%d", self->port);
    snprintf(pidfile, sizeof pidfile, "%s/redis.pid", self->dir);
    snprintf(logfile, sizeof logfile, "%s/redis.log", self->dir);
    s_redis_socket_path(self);
    const char *argv[32];
    size_t n = 0;
    const char *fixed[] = {"redis-server", "--port",       port,      "--bind",
                           "127.0.0.1",    "--dir",        self->dir, "--daemonize",
                           "yes",          "--pidfile",    pidfile,   "--logfile",
                           logfile,        "--appendonly", "yes",     "--appendfsync",
                           "everysec",     "--save",       ""};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[n++] = fixed[i];
    //  The Unix socket too, beside TCP: tests of same-host transport use it.
    if (*self->socket) {
        argv[n++] = "--unixsocket";
        argv[n++] = self->socket;
        argv[n++] = "--unixsocketperm";
        argv[n++] = "700";
    }
    argv[n] = NULL;
    if (ts_run(argv, false) != 0) {
        fprintf(stderr, "test_servers: redis-server failed to start (is it installed?)\n");
        return -1;
    }
    return s_redis_wait(self, 10000);
}

int
ts_redis_start(ts_redis_t *self)
{
    memset(self, 0, sizeof *self);
    if (s_make_dir("redis", self->dir, sizeof self->dir))
        return -1;
    self->port = ts_free_port();
    return s_redis_launch(self);
}

static pid_t
s_read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long pid = -1;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = -1;
    fclose(f);
    return (pid_t)pid;
}

//  True while pid runs; a zombie (its parent may never reap it here) is dead.
static bool
s_alive(pid_t pid)
{
    if (kill(pid, 0) != 0)
        return false;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return !(paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}

static void
s_kill_wait(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    for (int i = 0; i < 500 && s_alive(pid); i++)
        ts_sleep_ms(10);
}

int
ts_redis_kill(ts_redis_t *self)
{
    char pidfile[300];
    snprintf(pidfile, sizeof pidfile, "%s/redis.pid", self->dir);
    pid_t pid = s_read_pid(pidfile);
    if (pid <= 0)
        return -1;
    s_kill_wait(pid);
    unlink(pidfile);
    return 0;
}

int
ts_redis_restart(ts_redis_t *self)
{
    return s_redis_launch(self);
}

int
ts_redis_stop(ts_redis_t *self)
{
    if (!*self->dir)
        return 0;
    ts_redis_kill(self);
    s_remove_dir(self->dir);
    self->dir[0] = '\0';
    return 0;
}

// ---------------------------------------------------------------- PostgreSQL

static int
s_pg_ctl(ts_pg_t *self, const char *action)
{
    char bin[300], data[300], log[300], opts[512];
    snprintf(bin, sizeof bin, "%s/pg_ctl", ts_pg_bindir());
    snprintf(data, sizeof data, "%s/data", self->dir);
    snprintf(log, sizeof log, "%s/pg.log", self->dir);
    snprintf(opts, sizeof opts,
             "-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s "
             "-c fsync=off -c full_page_writes=off "
             "-c max_connections=200 -c shared_buffers=64MB",
             self->port, self->dir);
    if (!strcmp(action, "start")) {
        const char *argv[] = {bin,  "-D", data, "-l", log,     "-o",
                              opts, "-w", "-t", "60", "start", NULL};
        return ts_run(argv, true) == 0 ? 0 : -1;
    }
    const char *argv[] = {bin, "-D", data, "-m", "immediate", "-w", "stop", NULL};
    return ts_run(argv, true) == 0 ? 0 : -1;
}

int
ts_pg_start(ts_pg_t *self)
{
    memset(self, 0, sizeof *self);
    if (s_make_dir("pg", self->dir, sizeof self->dir))
        return -1;
    if (s_is_root()) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw) {
            fprintf(stderr, "test_servers: running as root but no postgres user exists\n");
            return -1;
        }
        if (chown(self->dir, pw->pw_uid, pw->pw_gid) != 0) {
            fprintf(stderr, "test_servers: chown %s: %s\n", self->dir, strerror(errno));
            return -1;
        }
    }
    self->port = ts_free_port();
    char bin[300], data[300];
    snprintf(bin, sizeof bin, "%s/initdb", ts_pg_bindir());
    snprintf(data, sizeof data, "%s/data", self->dir);
    const char *argv[] = {
        bin,         "-D", data, "-U", "linli", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
        "--no-sync", NULL};
    char log[320];
    snprintf(log, sizeof log, "%s/initdb.log", self->dir);
    pid_t pid = s_fork_exec(argv, NULL, log, true, false);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "test_servers: initdb failed, see %s\n", log);
        return -1;
    }
    if (s_pg_ctl(self, "start")) {
        fprintf(stderr, "test_servers: PostgreSQL failed to start, see %s/pg.log\n", self->dir);
        return -1;
    }
    return 0;
}

int
ts_pg_kill(ts_pg_t *self)
{
    return s_pg_ctl(self, "stop");
}

int
ts_pg_restart(ts_pg_t *self)
{
    return s_pg_ctl(self, "start");
}

int
ts_pg_stop(ts_pg_t *self)
{
    if (!*self->dir)
        return 0;
    s_pg_ctl(self, "stop");
    s_remove_dir(self->dir);
    self->dir[0] = '\0';
    return 0;
}

int
ts_pg_create_db(const ts_pg_t *self, const char *name, char *dsn, size_t cap)
{
    char admin[256];
    snprintf(admin, sizeof admin,
             "host=127.0.0.1 port=%d dbname=postgres user=linli connect_timeout=10", self->port);
    PGconn *conn = PQconnectdb(admin);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "test_servers: connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    //  Database names: lower-case letters, digits and '_' only.
    char db[64];
    int n = snprintf(db, sizeof db, "t_%.30s_%d_%ld", name, (int)getpid(),
                     (long)(ts_now_ms() % 100000));
    for (int i = 0; i < n && db[i]; i++)
        if (!((db[i] >= 'a' && db[i] <= 'z') || (db[i] >= '0' && db[i] <= '9')))
            db[i] = '_';
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    PGresult *res = PQexec(conn, sql);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc)
        fprintf(stderr, "test_servers: %s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
    snprintf(dsn, cap, "host=127.0.0.1 port=%d dbname=%s user=linli connect_timeout=5", self->port,
             db);
    return rc;
}

// ---------------------------------------------------------------- the run's servers

int
ts_shared(ts_redis_t *redis, ts_pg_t *pg)
{
    FILE *f = fopen(LINLI_TEST_STATE, "r");
    if (!f) {
        fprintf(stderr,
                "test_servers: %s is missing: the servers fixture did not run "
                "(run through ctest, or `linli-test-servers up` first)\n",
                LINLI_TEST_STATE);
        return -1;
    }
    memset(redis, 0, sizeof *redis);
    memset(pg, 0, sizeof *pg);
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *v = eq + 1;
        if (!strcmp(line, "redis_port"))
            redis->port = atoi(v);
        else if (!strcmp(line, "redis_dir"))
            snprintf(redis->dir, sizeof redis->dir, "%s", v);
        else if (!strcmp(line, "redis_socket"))
            snprintf(redis->socket, sizeof redis->socket, "%s", v);
        else if (!strcmp(line, "pg_port"))
            pg->port = atoi(v);
        else if (!strcmp(line, "pg_dir"))
            snprintf(pg->dir, sizeof pg->dir, "%s", v);
    }
    fclose(f);
    if (!redis->port || !pg->port) {
        fprintf(stderr, "test_servers: %s is incomplete\n", LINLI_TEST_STATE);
        return -1;
    }
    return 0;
}

int
ts_env_open(ts_env_t *env, const char *test_name)
{
    memset(env, 0, sizeof *env);
    if (ts_shared(&env->redis, &env->pg))
        return -1;
    if (ts_pg_create_db(&env->pg, test_name, env->dsn, sizeof env->dsn))
        return -1;
    snprintf(env->prefix, sizeof env->prefix, "t:%s:%d:%ld:", test_name, (int)getpid(),
             (long)(ts_now_ms() % 1000000));
    return 0;
}

void
ts_sweep(void)
{
    DIR *d = opendir(ts_root());
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s/redis.pid", ts_root(), e->d_name);
        s_kill_wait(s_read_pid(path));
        snprintf(path, sizeof path, "%s/%s/data/postmaster.pid", ts_root(), e->d_name);
        s_kill_wait(s_read_pid(path));
    }
    closedir(d);
    s_remove_dir(ts_root());
}

// ---------------------------------------------------------------- workers

//  Any command on the actor's pipe ($TERM) ends the loop.
static int
s_on_pipe(zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void)loop;
    (void)arg;
    char *cmd = zstr_recv(pipe);
    free(cmd);
    return -1;
}

void
ts_worker_run(zsock_t *pipe, const linli_worker_opts_t *opts, uint64_t *handled)
{
    zloop_t *loop = zloop_new();
    linli_worker_t *worker = linli_worker_new(loop, opts);
    zloop_reader(loop, pipe, s_on_pipe, NULL);
    zsock_signal(pipe, 0);
    if (worker)
        zloop_start(loop);
    if (handled)
        *handled = linli_worker_handled(worker);
    linli_worker_destroy(&worker);
    zloop_destroy(&loop);
}
