#include "CDqlite.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *library;
static char load_error[256];

static int (*p_version)(void);
static int (*p_create)(unsigned long long, const char *, const char *, herald_dqlite_node **);
static void (*p_destroy)(herald_dqlite_node *);
static int (*p_set_bind)(herald_dqlite_node *, const char *);
static const char *(*p_get_bind)(herald_dqlite_node *);
static int (*p_set_latency)(herald_dqlite_node *, unsigned);
static int (*p_start)(herald_dqlite_node *);
static int (*p_stop)(herald_dqlite_node *);
static const char *(*p_errmsg)(herald_dqlite_node *);

static void *resolve(const char *name) {
    void *symbol = dlsym(library, name);
    if (symbol == NULL && load_error[0] == 0) {
        snprintf(load_error, sizeof load_error, "libdqlite.so.0 has no %s (Herald needs dqlite 1.10 or later)", name);
    }
    return symbol;
}

int herald_dqlite_load(char *error, size_t size) {
    pthread_mutex_lock(&lock);
    if (library == NULL && load_error[0] == 0) {
        void *opened = dlopen("libdqlite.so.0", RTLD_NOW | RTLD_LOCAL);
        if (opened == NULL) {
            const char *why = dlerror();
            snprintf(load_error, sizeof load_error,
                     "cluster mode needs dqlite: %s (Debian: apt install libdqlite0)", why ? why : "libdqlite.so.0 not found");
        } else {
            library = opened;
            p_version = resolve("dqlite_version_number");
            p_create = resolve("dqlite_node_create");
            p_destroy = resolve("dqlite_node_destroy");
            p_set_bind = resolve("dqlite_node_set_bind_address");
            p_get_bind = resolve("dqlite_node_get_bind_address");
            p_set_latency = resolve("dqlite_node_set_network_latency_ms");
            p_start = resolve("dqlite_node_start");
            p_stop = resolve("dqlite_node_stop");
            p_errmsg = resolve("dqlite_node_errmsg");
            if (load_error[0] != 0) {
                dlclose(library);
                library = NULL;
            }
        }
    }
    int loaded = library != NULL ? 0 : -1;
    if (loaded != 0 && error != NULL && size > 0) {
        snprintf(error, size, "%s", load_error);
    }
    pthread_mutex_unlock(&lock);
    return loaded;
}

int herald_dqlite_version(void) { return p_version ? p_version() : 0; }

int herald_dqlite_node_create(unsigned long long id, const char *address, const char *data_dir, herald_dqlite_node **node) {
    return p_create(id, address, data_dir, node);
}
void herald_dqlite_node_destroy(herald_dqlite_node *node) { p_destroy(node); }
int herald_dqlite_node_set_bind_address(herald_dqlite_node *node, const char *address) { return p_set_bind(node, address); }
const char *herald_dqlite_node_get_bind_address(herald_dqlite_node *node) { return p_get_bind(node); }
int herald_dqlite_node_set_network_latency_ms(herald_dqlite_node *node, unsigned milliseconds) {
    return p_set_latency(node, milliseconds);
}
int herald_dqlite_node_start(herald_dqlite_node *node) { return p_start(node); }
int herald_dqlite_node_stop(herald_dqlite_node *node) { return p_stop(node); }
const char *herald_dqlite_node_errmsg(herald_dqlite_node *node) { return p_errmsg(node); }
