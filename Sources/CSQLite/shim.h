#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift cannot import.
static inline sqlite3_destructor_type csqlite_transient(void) { return SQLITE_TRANSIENT; }

// Extended result codes are macros with casts that Swift cannot import.
static const int csqlite_CONSTRAINT_UNIQUE = SQLITE_CONSTRAINT_UNIQUE;
static const int csqlite_CONSTRAINT_PRIMARYKEY = SQLITE_CONSTRAINT_PRIMARYKEY;
static const int csqlite_CONSTRAINT_FOREIGNKEY = SQLITE_CONSTRAINT_FOREIGNKEY;
static const int csqlite_CONSTRAINT_NOTNULL = SQLITE_CONSTRAINT_NOTNULL;
static const int csqlite_CONSTRAINT_CHECK = SQLITE_CONSTRAINT_CHECK;
static const int csqlite_CONSTRAINT_TRIGGER = SQLITE_CONSTRAINT_TRIGGER;
static const int csqlite_CONSTRAINT_DATATYPE = SQLITE_CONSTRAINT_DATATYPE;

// Memory statistics cost a global mutex on every SQLite allocation (several per row written);
// Herald never reads them. Must run before SQLite initializes; later it returns SQLITE_MISUSE,
// which is harmless (the statistics stay on).
static inline int csqlite_disable_memstatus(void) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }
