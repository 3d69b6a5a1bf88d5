//  registry_service: the registry actor — broker worker, outbox relay, area
//  tree refresh and key expiry on one zloop; owns the stores.
#include "registry_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli_auth.h"
#include "linli_crypto.h"
#include "linli_idem.h"
#include "linli_log.h"
#include "linli_outbox.h"
#include "registry.h"
#include "registry_import.h"
#include "registry_index.h"

const linli_cfg_entry_t registry_cfg[] = {
    {"LINLI_PII_KEY", LINLI_CFG_STRING, NULL, 0, 0, true,
     "32-byte key (64 hex chars) sealing ID numbers and phones; `make up` generates one"},
    {"LINLI_CITY_CODE", LINLI_CFG_STRING, "4201", 0, 0, false, "the city's area code (the root)"},
    {"LINLI_CITY_NAME", LINLI_CFG_STRING, "武汉市", 0, 0, false, "the city's name"},
    {"LINLI_SESSION_TTL_S", LINLI_CFG_INT, "43200", 60, 2592000, false,
     "how long a login token lives"},
    {"LINLI_LOGIN_MAX_FAILURES", LINLI_CFG_INT, "5", 1, 1000, false,
     "wrong passwords per phone within the window before 429"},
    {"LINLI_LOGIN_WINDOW_S", LINLI_CFG_INT, "60", 1, 86400, false, "the login rate-limit window"},
    {"LINLI_PASSWORD_CODE_TTL_S", LINLI_CFG_INT, "259200", 300, 2592000, false,
     "how long a one-time password code staff issue stays usable"},
    {"LINLI_LOGIN_PER_ADDR", LINLI_CFG_INT, "60", 1, 100000, false,
     "login attempts per client address within the window"},
    {"LINLI_SIGNUP_PER_ADDR", LINLI_CFG_INT, "20", 1, 1000000, false,
     "volunteer self sign-ups per client address per hour"},
    {"LINLI_BOOTSTRAP_ADMIN_PHONE", LINLI_CFG_STRING, "", 0, 0, true,
     "phone of the first city admin, created at start if missing"},
    {"LINLI_BOOTSTRAP_ADMIN_PASSWORD", LINLI_CFG_STRING, "", 0, 0, true,
     "password of the first city admin"},
    {"LINLI_ARGON2_OPS", LINLI_CFG_INT, "2", 1, 10, false, "argon2id passes (opslimit)"},
    {"LINLI_ARGON2_MEM_KB", LINLI_CFG_INT, "65536", 8, 4194304, false,
     "argon2id memory in KiB (memlimit)"},
    {"LINLI_WORKER_CREDIT", LINLI_CFG_INT, "16", 1, 1000, false,
     "requests a worker holds at once per broker"},
    {"LINLI_IMPORT_MAX_ROWS", LINLI_CFG_INT, "5000000", 1, 100000000, false,
     "most data rows one import file may hold (too_many_rows beyond)"},
    {"LINLI_DEMO_VOLUNTEERS", LINLI_CFG_INT, "200000", 0, 10000000, false,
     "volunteers seed-demo loads into the demo city (more can be added later)"},
    {"LINLI_DEMO_PASSWORD", LINLI_CFG_STRING, "", 0, 0, true,
     "password of every demo volunteer; unset: they cannot log in; `make up` generates one"},
    {"LINLI_MIGRATIONS_DIR", LINLI_CFG_STRING, LINLI_DEFAULT_MIGRATIONS, 0, 0, false,
     "folder of this service's NNN_*.sql migrations"},
    LINLI_CFG_END,
};

typedef struct {
    const linli_config_t *config; //  borrowed
    registry_t reg;               //  what the handlers share
    linli_relay_t *relay;         //  owned: outbox -> stream
    linli_worker_t *worker;       //  owned
    registry_index_t *index;      //  owned: matching read model's consumer (own thread)
    zactor_t *importer;           //  owned: the import job runner (own thread)
} s_service_t;

int
registry_open(registry_t *reg, const linli_config_t *config)
{
    memset(reg, 0, sizeof *reg);
    char err[256];
    if (linli_crypto_init(linli_config_str(config, "LINLI_PII_KEY"), err, sizeof err)) {
        linli_error("LINLI_PII_KEY: %s", err);
        return -1;
    }
    linli_password_set_limits((unsigned long long)linli_config_int(config, "LINLI_ARGON2_OPS"),
                              (size_t)linli_config_int(config, "LINLI_ARGON2_MEM_KB") * 1024);
    reg->pg = linli_pg_new(linli_config_str(config, "LINLI_PG_DSN"), "registry",
                           (int)linli_config_int(config, "LINLI_PG_STATEMENT_TIMEOUT_MS"));
    reg->redis = linli_redis_new(linli_config_str(config, "LINLI_REDIS_HOST"),
                                 (int)linli_config_int(config, "LINLI_REDIS_PORT"),
                                 linli_config_str(config, "LINLI_REDIS_SOCKET"),
                                 (int)linli_config_int(config, "LINLI_REDIS_TIMEOUT_MS"),
                                 linli_config_str(config, "LINLI_REDIS_PREFIX"));
    reg->store = reg->pg ? registry_store_new(reg->pg) : NULL;
    reg->session_ttl_s = (int)linli_config_int(config, "LINLI_SESSION_TTL_S");
    reg->login_failures = (int)linli_config_int(config, "LINLI_LOGIN_MAX_FAILURES");
    reg->login_window_s = (int)linli_config_int(config, "LINLI_LOGIN_WINDOW_S");
    reg->login_per_addr = (int)linli_config_int(config, "LINLI_LOGIN_PER_ADDR");
    reg->password_code_ttl_s = (int)linli_config_int(config, "LINLI_PASSWORD_CODE_TTL_S");
    reg->signup_per_addr = (int)linli_config_int(config, "LINLI_SIGNUP_PER_ADDR");
    if (!reg->pg || !reg->redis || !reg->store) {
        registry_close(reg);
        return -1;
    }
    return 0;
}

void
registry_close(registry_t *reg)
{
    registry_store_destroy(&reg->store);
    linli_redis_destroy(&reg->redis);
    linli_pg_destroy(&reg->pg);
}

int
registry_prepare(registry_t *reg, const linli_config_t *config)
{
    if (linli_pg_migrate(reg->pg, linli_config_str(config, "LINLI_MIGRATIONS_DIR")))
        return -1;
    if (registry_store_ensure_city(reg->store, linli_config_str(config, "LINLI_CITY_CODE"),
                                   linli_config_str(config, "LINLI_CITY_NAME")))
        return -1;
    const char *phone_in = linli_config_str(config, "LINLI_BOOTSTRAP_ADMIN_PHONE");
    const char *password = linli_config_str(config, "LINLI_BOOTSTRAP_ADMIN_PASSWORD");
    if (*phone_in) {
        char phone[32], hash[65];
        if (linli_phone_normalize(phone_in, phone, sizeof phone) || strlen(password) < 8) {
            linli_error("LINLI_BOOTSTRAP_ADMIN_PHONE must be a mobile number and "
                        "LINLI_BOOTSTRAP_ADMIN_PASSWORD at least 8 characters");
            return -1;
        }
        if (linli_pii_hash("phone", phone, hash)) {
            linli_error("bootstrap admin: the phone could not be hashed");
            return -1;
        }
        registry_account_t account;
        bool found;
        if (registry_store_account_by_phone(reg->store, hash, &account, &found))
            return -1;
        if (!found) {
            memset(&account, 0, sizeof account);
            snprintf(account.kind, sizeof account.kind, "staff");
            snprintf(account.name, sizeof account.name, "%s", "城市管理员");
            snprintf(account.area, sizeof account.area, "%s",
                     linli_config_str(config, "LINLI_CITY_CODE"));
            char *sealed = linli_pii_encrypt(phone);
            if (!sealed)
                return -1;
            snprintf(account.phone_enc, sizeof account.phone_enc, "%s", sealed);
            free(sealed);
            if (linli_password_hash(password, account.password_hash))
                return -1;
            account.n_grants = 1;
            snprintf(account.grants[0].role, sizeof account.grants[0].role, "%s",
                     LINLI_ROLE_CITY_ADMIN);
            snprintf(account.grants[0].scope, sizeof account.grants[0].scope, "%s", account.area);
            bool taken;
            if (linli_pg_begin(reg->pg) ||
                registry_store_account_insert(reg->store, &account, hash, 0, &taken) ||
                (!taken && registry_emit_staff(reg, "linli.registry.staff.created", &account,
                                               "bootstrap", NULL)) ||
                linli_pg_commit(reg->pg)) {
                linli_pg_rollback(reg->pg);
                return -1;
            }
            linli_info("bootstrap city admin created (account %lld)", (long long)account.id);
        }
    }
    return registry_store_areas_reload(reg->store);
}

static int
s_on_relay(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_service_t *self = (s_service_t *)arg;
    //  Drain what is waiting, a batch per call, without starving the worker.
    for (int i = 0; i < 4 && linli_relay_tick(self->relay) > 0; i++)
        ;
    return 0;
}

static int
s_on_housekeeping(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_service_t *self = (s_service_t *)arg;
    //  The area tree changes rarely; a minute's staleness is fine (a miss
    //  asks PostgreSQL anyway).
    registry_store_areas_reload(self->reg.store);
    linli_idem_expire(self->reg.pg, 24 * 3600);
    return 0;
}

static int
s_on_pipe(zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void)loop;
    (void)arg;
    char *command = zstr_recv(pipe);
    int rc = (!command || !strcmp(command, "$TERM")) ? -1 : 0;
    zstr_free(&command);
    return rc;
}

void
registry_service_actor(zsock_t *pipe, void *args)
{
    s_service_t self;
    memset(&self, 0, sizeof self);
    self.config = (const linli_config_t *)args;
    if (registry_open(&self.reg, self.config)) {
        zsock_signal(pipe, 1);
        return; //  the actor's end tells main it failed
    }
    zsock_signal(pipe, 0);
    //  Until PostgreSQL answers and the schema is current, nothing can be served.
    while (registry_prepare(&self.reg, self.config)) {
        linli_warn("registry not ready (PostgreSQL?); retrying in 1 s");
        zsock_set_rcvtimeo(pipe, 1000);
        char *command = zstr_recv(pipe);
        zsock_set_rcvtimeo(pipe, -1);
        if (command) {
            zstr_free(&command);
            registry_close(&self.reg);
            return;
        }
    }
    zloop_t *loop = zloop_new();
    self.relay = linli_relay_new(linli_config_str(self.config, "LINLI_PG_DSN"), "registry",
                                 self.reg.redis, "events");
    linli_worker_opts_t opts = {
        .service = "registry",
        .endpoints = linli_config_str(self.config, "LINLI_BROKER_ENDPOINTS"),
        .credit = (int)linli_config_int(self.config, "LINLI_WORKER_CREDIT"),
        .heartbeat_ms = (int)linli_config_int(self.config, "LINLI_HEARTBEAT_MS"),
        .liveness = 3,
        .routes = registry_routes(),
        .handler_self = &self.reg,
        .batches = registry_volunteer_batches,
    };
    self.worker = self.relay ? linli_worker_new(loop, &opts) : NULL;
    if (!self.worker) {
        linli_error("registry could not start its worker or relay");
    } else {
        zloop_reader(loop, pipe, s_on_pipe, &self);
        zloop_timer(loop, 50, 0, s_on_relay, &self);
        zloop_timer(loop, 60000, 0, s_on_housekeeping, &self);
        // ---- import runner: start here
        self.importer = zactor_new(registry_import_actor, (void *)self.config);
        if (!self.importer)
            linli_error("registry: import runner not running");
        // ---- read model: start here
        //  The read model is rebuildable: without it the registry still serves.
        self.index = registry_index_new_from_config(self.config);
        if (!self.index || registry_index_start(self.index))
            linli_error("registry: matching index consumer not running");
        linli_info("registry serving on %s", opts.endpoints);
        zloop_start(loop);
    }
    // ---- read model: stop here
    registry_index_destroy(&self.index);
    // ---- import runner: stop here
    zactor_destroy(&self.importer);
    linli_worker_destroy(&self.worker);
    linli_relay_destroy(&self.relay);
    zloop_destroy(&loop);
    registry_close(&self.reg);
}
