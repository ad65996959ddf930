/* ss_union: a fact table of hot and cold storage read as one virtual table,
 * `CREATE VIRTUAL TABLE temp.t USING ss_union(hot_t, cold_t, time_column)`:
 * the rows of hot_t, then those of cold_t, each read by a statement that names
 * only the columns a query uses and carries its comparisons (union.c says
 * why). Both relations must have the same columns in the same order.
 * @locality the connection's thread, as SQLite's virtual tables. */
#ifndef SS_QUERY_UNION_H
#define SS_QUERY_UNION_H

#include <sqlite3.h>

/* Registers the module on db; 0, or -1 when SQLite refuses. */
int ss_query_union_register(sqlite3 *db);

#endif
