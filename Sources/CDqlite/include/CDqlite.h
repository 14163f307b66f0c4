#ifndef HERALD_CDQLITE_H
#define HERALD_CDQLITE_H

// The dqlite node API Herald uses (dqlite.h, Debian libdqlite-dev 1.11), loaded at run time.
//
// Why not a system-library target linking -ldqlite: the default Herald (one SQLite file) must
// build and run on a machine without libdqlite; only `herald serve --cluster-dir` needs it. So
// the library is opened with dlopen when cluster mode starts, and a missing library is an error
// that says what to install, not a link failure for everyone.

#include <stddef.h>

typedef struct dqlite_node herald_dqlite_node;

/// Opens libdqlite.so.0 and resolves the functions below. Returns 0, or -1 with a reason in
/// `error` (NUL-terminated, at most `size` bytes). Idempotent and thread-safe.
int herald_dqlite_load(char *error, size_t size);

/// dqlite_version_number(), or 0 when the library is not loaded.
int herald_dqlite_version(void);

// Thin wrappers over the dqlite functions of the same name (see dqlite.h). Call only after
// herald_dqlite_load returned 0.
int herald_dqlite_node_create(unsigned long long id, const char *address, const char *data_dir, herald_dqlite_node **node);
void herald_dqlite_node_destroy(herald_dqlite_node *node);
int herald_dqlite_node_set_bind_address(herald_dqlite_node *node, const char *address);
const char *herald_dqlite_node_get_bind_address(herald_dqlite_node *node);
int herald_dqlite_node_set_network_latency_ms(herald_dqlite_node *node, unsigned milliseconds);
int herald_dqlite_node_start(herald_dqlite_node *node);
int herald_dqlite_node_stop(herald_dqlite_node *node);
const char *herald_dqlite_node_errmsg(herald_dqlite_node *node);

#endif
