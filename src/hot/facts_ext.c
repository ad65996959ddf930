/* The loadable SQLite extension shopstream_sqlite: lets any SQLite read a
 * hot store's fact tables, for example
 *   sqlite3 data/hot.db -cmd '.load build/shopstream_sqlite' 'SELECT count(*) FROM orders'
 * or, in Python, connection.load_extension("build/shopstream_sqlite"). */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include "hot/facts_vtab.h"

int sqlite3_shopstreamsqlite_init(sqlite3 *db, char **err, const sqlite3_api_routines *api);

int sqlite3_shopstreamsqlite_init(sqlite3 *db, char **err, const sqlite3_api_routines *api)
{
    SQLITE_EXTENSION_INIT2(api);
    (void)err;
    return ss_hot_facts_register(db);
}
